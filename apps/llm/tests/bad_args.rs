//! Arguments the app must refuse with a clear error rather than misread.
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};

/// `llm` on the repo's stories260K model, greedy, 8 steps, one thread, with `prompt`.
fn llm_with_prompt(prompt: &OsStr) -> Output {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    Command::new(env!("CARGO_BIN_EXE_llm"))
        .arg(models.join("stories260K.bin"))
        .arg("-z")
        .arg(models.join("tok512.bin"))
        .args(["-t", "0", "-n", "8", "--threads", "1", "-i"])
        .arg(prompt)
        .output()
        .expect("run llm")
}

/// A prompt that is not UTF-8 is refused, naming the prompt and the byte, before
/// anything is generated (a lossy conversion would feed U+FFFD to the tokenizer).
#[test]
fn non_utf8_prompt_is_refused_with_its_place() {
    let out = llm_with_prompt(OsStr::from_bytes(b"Once \xff upon"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(out.stdout.is_empty(), "nothing may be generated: {:?}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("the prompt (-i): argument 11"), "{err}");
    assert!(err.contains("byte 0xff at offset 5"), "{err}");
}

/// The same prompt as UTF-8 runs (the refusal above is about the bytes, not the option).
#[test]
fn utf8_prompt_with_non_ascii_runs() {
    let out = llm_with_prompt(OsStr::new("Once \u{e9} upon"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.starts_with(b"Once \xc3\xa9 upon"), "{:?}", String::from_utf8_lossy(&out.stdout));
}
