//! Prompt encoding and decoding cases, and every bad-input case with its own error.
use bareflow_llm::checkpoint::{AlignedBytes, Config, HEADER_LEN, aligned};
use bareflow_llm::generate::{GenerateError, clamp_steps};
use bareflow_llm::model::ForwardError;
use bareflow_llm::r#gen::{Shape, random_checkpoint_for, random_tokenizer};
use bareflow_llm::{Checkpoint, CheckpointError, KernelSet, Sampler, Sequential, Tokenizer, TokenizerError, Transformer, WeightMode, generate};

fn read(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn tok512() -> Tokenizer {
    Tokenizer::parse(&read("tok512.bin"), 512).unwrap()
}

// --- encoding -------------------------------------------------------------

/// Expected ids derived from the rules. Checked by hand:
/// - "he": BOS, " " (410), "h" (415), "e" (411); best pair "he" (260, score -1)
///   beats " h" (270, -11); then " he" (281, -22) → [1, 281].
/// - "日本" is not in the vocabulary: its six UTF-8 bytes E6 97 A5 E6 9C AC go
///   to byte pieces +3 = 233 154 168 233 159 175, and no pair of byte pieces
///   concatenates to a piece.
/// - "" gives only BOS (no dummy prefix).
///
/// The others were derived with an independent 30-line Python transcription of
/// the same rules (first-occurrence lookup, scores from the file); "Once upon a
/// time" also matches the first four tokens of run.c's greedy transcript.
#[test]
fn encode_cases() {
    let t = tok512();
    let cases: &[(&str, &[u32])] = &[
        ("", &[1]),
        ("he", &[1, 281]),
        ("Hi!", &[1, 320, 417, 443]),
        ("é", &[1, 410, 485]),
        ("Once upon a time", &[1, 403, 407, 261, 378]),
        ("Lily's mom said, \"Hello!\"", &[1, 317, 439, 419, 357, 336, 432, 313, 440, 411, 306, 414, 443, 436]),
        ("日本", &[1, 410, 233, 154, 168, 233, 159, 175]),
    ];
    for (text, ids) in cases {
        assert_eq!(t.encode(text, true, false).unwrap(), *ids, "prompt {text:?}");
    }
    assert_eq!(t.encode("he", false, true).unwrap(), [281, 2]);
}

#[test]
fn decode_cases() {
    let t = tok512();
    assert_eq!(t.decode(1, 281), b"he", "leading space dropped after BOS");
    assert_eq!(t.decode(5, 281), b" he");
    assert_eq!(t.decode(1, 3 + 0x41), b"A", "<0x41> is the raw byte");
    assert_eq!(t.decode_printable(7, 3 + 0x0A), b"\n", "whitespace byte printed");
    assert_eq!(t.decode_printable(7, 3 + 0x07), b"", "BEL dropped by safe_printf");
    assert_eq!(t.decode_printable(7, 3 + 0xC3), b"", "lone non-ASCII byte dropped by safe_printf");
    assert_eq!(t.decode_printable(7, 3), b"", "<0x00> prints nothing");
    assert_eq!(t.decode_printable(7, 485), "é".as_bytes(), "multi-byte piece printed whole");
}

// --- checkpoint errors ----------------------------------------------------

fn header(vals: [i32; 7]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn parse(bytes: &[u8]) -> Result<Config, CheckpointError> {
    let store = AlignedBytes::copy_from(bytes);
    Checkpoint::parse(store.as_bytes()).map(|c| c.config)
}

#[test]
fn checkpoint_errors() {
    let good = read("stories260K.bin");
    assert!(parse(&good).is_ok());
    assert!(matches!(parse(&good[..good.len() - 1]), Err(CheckpointError::Truncated { needed: 1_056_540, .. })));
    assert!(matches!(parse(&good[..27]), Err(CheckpointError::TooShortForHeader { len: 27 })));
    assert!(matches!(parse(&header([0, 172, 5, 8, 4, 512, 512])), Err(CheckpointError::NonPositive { field: "dim", .. })));
    assert!(matches!(parse(&header([64, 172, -5, 8, 4, 512, 512])), Err(CheckpointError::NonPositive { field: "n_layers", .. })));
    assert!(matches!(parse(&header([64, 172, 5, 8, 4, i32::MIN, 512])), Err(CheckpointError::NonPositive { field: "vocab_size", .. })));
    assert!(matches!(parse(&header([66, 172, 5, 8, 4, 512, 512])), Err(CheckpointError::DimNotDivisibleByHeads { dim: 66, n_heads: 8 })));
    assert!(matches!(parse(&header([64, 172, 5, 8, 3, 512, 512])), Err(CheckpointError::HeadsNotDivisibleByKvHeads { .. })));
    assert!(matches!(parse(&header([24, 172, 5, 8, 4, 512, 512])), Err(CheckpointError::OddHeadSize { head_size: 3 })));
    let max = i32::MAX;
    assert!(matches!(parse(&header([max - 1, max, max, 1, 1, max, max])), Err(CheckpointError::SizeOverflow)));
    // Huge but not overflowing: caught by the length check, not by an allocation.
    assert!(matches!(parse(&header([4096, 4096, 4096, 1, 1, 32000, 4096])), Err(CheckpointError::Truncated { .. })));
    // Misaligned bytes are refused, and `aligned` fixes them.
    let mut shifted = vec![0u8; good.len() + 4];
    shifted[1..1 + good.len()].copy_from_slice(&good);
    let view = &shifted[1..1 + good.len()];
    if !(view.as_ptr() as usize).is_multiple_of(4) {
        assert_eq!(Checkpoint::parse(view).unwrap_err(), CheckpointError::Misaligned);
        let mut s = None;
        assert!(Checkpoint::parse(aligned(view, &mut s)).is_ok());
    }
    // Unshared classifier (negative vocab) is read from after freq_cis.
    let c = Config { dim: 16, hidden_dim: 24, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 300, seq_len: 8, shared_classifier: false };
    let bytes = random_checkpoint_for(&c, 7);
    let store = AlignedBytes::copy_from(&bytes);
    let ck = Checkpoint::parse(store.as_bytes()).unwrap();
    assert_eq!(ck.config, c);
    assert_eq!(ck.wcls.len(), 300 * 16);
    assert_ne!(ck.wcls.as_ptr(), ck.token_embedding.as_ptr());
    let wcls_off = (bytes.len() - 300 * 16 * 4 - HEADER_LEN) / 4;
    let floats = decode_floats(&store.as_bytes()[HEADER_LEN..]);
    assert_eq!(ck.wcls, &floats[wcls_off..]);
    assert_eq!(ck.token_embedding, &floats[..300 * 16]);
}

/// The file's floats decoded independently of the parser's in-place view.
fn decode_floats(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

// --- tokenizer errors -----------------------------------------------------

fn tokenizer_bytes(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = 8i32.to_le_bytes().to_vec();
    for p in pieces {
        out.extend_from_slice(&0f32.to_le_bytes());
        out.extend_from_slice(&(p.len() as i32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Fuzz find (fuzz target `tokenizer`, 2026-12-02): a tokenizer whose header claims
/// `max_token_length` = 2^31 - 1 parsed (its pieces are short), and `encode` then
/// reserved `2 * max_token_length + 1` bytes, a 4 GiB allocation, which aborts in the
/// kernel. Encoding must size its buffer by the pieces there are.
#[test]
fn huge_max_token_length_does_not_drive_an_allocation() {
    let mut bytes = tokenizer_bytes(&[b"<unk>", b"<s>", b"</s>", b" ", b"a", b"b", b"ab"]);
    bytes[..4].copy_from_slice(&i32::MAX.to_le_bytes());
    let t = Tokenizer::parse(&bytes, 7).unwrap();
    assert_eq!(t.max_token_length(), i32::MAX as usize);
    assert_eq!(t.encode("ab", false, false).unwrap(), vec![3, 6]);
}

#[test]
fn tokenizer_errors() {
    let bytes = read("tok512.bin");
    assert_eq!(Tokenizer::parse(&bytes, 32000).unwrap_err(), TokenizerError::VocabSizeMismatch { expected: 32000, found: 512 });
    assert_eq!(Tokenizer::parse(&bytes, 500).unwrap_err(), TokenizerError::VocabSizeMismatch { expected: 500, found: 512 });
    assert!(matches!(Tokenizer::parse(&bytes[..bytes.len() - 2], 512), Err(TokenizerError::Truncated { token: 511 })));
    assert_eq!(Tokenizer::parse(&bytes[..3], 512).unwrap_err(), TokenizerError::TooShort);
    assert_eq!(Tokenizer::parse(&tokenizer_bytes(&[b"a", b"b"]), 2).unwrap_err(), TokenizerError::NoSpaceToken);
    let mut neg = tokenizer_bytes(&[b" ", b"a"]);
    neg[8..12].copy_from_slice(&(-5i32).to_le_bytes());
    assert_eq!(Tokenizer::parse(&neg, 2).unwrap_err(), TokenizerError::NegativeLength { token: 0, len: -5 });
    let long = tokenizer_bytes(&[b" ", b"abcdefghij"]);
    assert!(matches!(Tokenizer::parse(&long, 2), Err(TokenizerError::PieceTooLong { token: 1, .. })));
    let mut zero = tokenizer_bytes(&[b" "]);
    zero[..4].copy_from_slice(&0i32.to_le_bytes());
    assert_eq!(Tokenizer::parse(&zero, 1).unwrap_err(), TokenizerError::BadMaxTokenLength(0));
    // A tiny vocabulary without byte pieces: a character it lacks is an error, not a panic.
    let tiny = Tokenizer::parse(&tokenizer_bytes(&[b"<unk>", b"<s>", b"</s>", b" ", b"a"]), 5).unwrap();
    assert!(matches!(tiny.encode("z", true, false), Err(TokenizerError::NoBytePiece { byte: b'z', .. })));
    // Prompt bytes.
    let t = tok512();
    assert_eq!(t.encode_bytes(b"ab\xffcd", true, false).unwrap_err(), TokenizerError::PromptNotUtf8 { offset: 2 });
    assert_eq!(t.encode("a\0b", true, false).unwrap_err(), TokenizerError::PromptHasNul { offset: 1 });
}

// --- generation limits ----------------------------------------------------

#[test]
fn generation_limits() {
    let bytes = read("stories260K.bin");
    let mut s = None;
    let ck = Checkpoint::parse(aligned(&bytes, &mut s)).unwrap();
    let t = tok512();
    let mut m = Transformer::new(&ck, KernelSet::best(), WeightMode::F32);
    // 300 × "日" = 900 byte tokens: far beyond the 512-token context.
    let long = "日".repeat(300);
    let err = generate(&mut m, &t, &mut Sampler::new(0.0, 0.9, 1), &long, 0, &Sequential, &mut |_, _| {}).unwrap_err();
    assert_eq!(err, GenerateError::PromptTooLong { tokens: 902, seq_len: 512 });
    // -n beyond seq_len clamps to seq_len (and 0 means seq_len).
    assert_eq!(clamp_steps(100_000, 512), 512);
    assert_eq!(clamp_steps(0, 512), 512);
    assert_eq!(clamp_steps(7, 512), 7);
    let g = generate(&mut m, &t, &mut Sampler::new(0.0, 0.9, 1), "", 100_000, &Sequential, &mut |_, _| {}).unwrap();
    assert!(g.positions == 512 || g.stopped_at_bos, "ran {} positions", g.positions);
    assert!(g.positions <= 512);
    // A prompt longer than -n stops inside the prompt, printing prompt pieces.
    let g = generate(&mut m, &t, &mut Sampler::new(0.0, 0.9, 1), "Once upon a time", 3, &Sequential, &mut |_, _| {}).unwrap();
    assert_eq!(g.tokens, [403, 407, 261]);
    assert_eq!(g.text, b"Once upon a\n");
    // Tokenizer for another model.
    let other = Tokenizer::parse(&random_tokenizer(600, 3), 600).unwrap();
    let err = generate(&mut m, &other, &mut Sampler::new(0.0, 0.9, 1), "", 4, &Sequential, &mut |_, _| {}).unwrap_err();
    assert_eq!(err, GenerateError::VocabMismatch { tokenizer: 600, model: 512 });
    // Forward out of range.
    assert_eq!(m.forward(512, 0, &Sequential).unwrap_err(), ForwardError::TokenOutOfRange { token: 512, vocab_size: 512 });
    assert_eq!(m.forward(0, 512, &Sequential).unwrap_err(), ForwardError::PositionOutOfRange { pos: 512, seq_len: 512 });
}

// --- generated models -----------------------------------------------------

#[test]
fn generated_models_are_valid() {
    for shape in [Shape::S15M, Shape::S42M, Shape::S110M] {
        let c = shape.config();
        assert_eq!(Config::parse(&c.to_header()).unwrap(), c);
    }
    let c = Config { dim: 32, hidden_dim: 48, n_layers: 2, n_heads: 4, n_kv_heads: 4, vocab_size: 1000, seq_len: 16, shared_classifier: true };
    let bytes = random_checkpoint_for(&c, 1);
    assert_eq!(bytes.len(), c.file_len().unwrap());
    let store = AlignedBytes::copy_from(&bytes);
    let ck = Checkpoint::parse(store.as_bytes()).unwrap();
    let tok_bytes = random_tokenizer(1000, 1);
    let t = Tokenizer::parse(&tok_bytes, 1000).unwrap();
    assert_eq!(t.encode("a b", true, false).unwrap().first(), Some(&1));
    let mut m = Transformer::new(&ck, KernelSet::best(), WeightMode::F32);
    let g = generate(&mut m, &t, &mut Sampler::new(0.0, 0.9, 1), "", 16, &Sequential, &mut |_, _| {}).unwrap();
    assert_eq!(g.positions, 16, "BOS has logit 0 and must never win");
    assert!(!g.stopped_at_bos);
    // Same seed, same bytes; another seed, other bytes.
    assert_eq!(random_checkpoint_for(&c, 1), bytes);
    assert_ne!(random_checkpoint_for(&c, 2), bytes);
}

/// A header whose seq_len makes the KV cache far larger than memory (4 TiB
/// here, from a 40 MiB file): a clear error, not an abort in the allocator.
#[test]
fn a_kv_cache_that_cannot_fit_is_an_error() {
    let c = Config { dim: 2, hidden_dim: 2, n_layers: 1 << 18, n_heads: 1, n_kv_heads: 1, vocab_size: 4, seq_len: 1 << 20, shared_classifier: true };
    let bytes = random_checkpoint_for(&c, 7);
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).expect("a well-formed checkpoint");
    let e = Transformer::try_new(&ckpt, KernelSet::best(), WeightMode::F32).expect_err("4 TiB of KV cache cannot be allocated");
    let msg = e.to_string();
    assert!(msg.contains("KV cache") && msg.contains("seq_len 1048576") && msg.contains("4194304 MiB"), "{msg}");
}
