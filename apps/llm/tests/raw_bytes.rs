//! The app writes token pieces as raw bytes, like run.c's `printf("%s")`: a
//! piece that is not UTF-8 reaches stdout unchanged (no U+FFFD replacement).
use std::path::Path;
use std::process::Command;

/// tok512.bin with the piece of token `id` replaced by `piece`
/// (llama2.c format: max_token_length, then per token score, length, bytes).
fn tokenizer_with_piece(tok: &[u8], id: usize, piece: &[u8]) -> Vec<u8> {
    let mut out = tok[..4].to_vec();
    let mut at = 4;
    for i in 0..512 {
        let score = &tok[at..at + 4];
        let len = i32::from_le_bytes(tok[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        let bytes = &tok[at + 8..at + 8 + len];
        at += 8 + len;
        let bytes = if i == id { piece } else { bytes };
        out.extend_from_slice(score);
        out.extend_from_slice(&(bytes.len() as i32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    assert_eq!(at, tok.len(), "tok512.bin has 512 tokens and nothing after");
    out
}

#[test]
fn non_utf8_piece_is_written_as_raw_bytes() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let tok = std::fs::read(models.join("tok512.bin")).expect("models/tok512.bin");
    // Greedy stories260K starts "Once upon": token 407 is " upon" (models/reference).
    let dir = std::env::temp_dir().join(format!("llm-raw-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tok_path = dir.join("tok.bin");
    std::fs::write(&tok_path, tokenizer_with_piece(&tok, 407, b" up\xffon")).expect("write tokenizer");
    let out = Command::new(env!("CARGO_BIN_EXE_llm"))
        .arg(models.join("stories260K.bin"))
        .arg("-z")
        .arg(&tok_path)
        .args(["-t", "0", "-n", "4", "--threads", "1"]) // four positions, four pieces
        .output()
        .expect("run llm");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "llm failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"Once up\xffon a time\n", "stdout: {:?}", String::from_utf8_lossy(&out.stdout));
}
