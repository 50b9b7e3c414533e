//! `--jit on`: after the warm-up the app generates kernels, times them in
//! place against the ahead-of-time ones (the trial) and keeps the faster;
//! whichever it keeps, the story is byte for byte the one `--jit off` tells.
use std::path::Path;
use std::process::{Command, Output};

fn llm(jit: &str) -> Output {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    Command::new(env!("CARGO_BIN_EXE_llm"))
        .arg(models.join("stories260K.bin"))
        .arg("-z")
        .arg(models.join("tok512.bin"))
        .args(["-t", "0", "-n", "256", "--threads", "1", "--jit", jit, "--jit-stats"])
        .output()
        .expect("run llm")
}

#[test]
fn the_in_place_trial_runs_and_the_story_does_not_change() {
    let (off, on) = (llm("off"), llm("on"));
    let err = String::from_utf8_lossy(&on.stderr);
    assert!(off.status.success() && on.status.success(), "{err}");
    assert!(!off.stdout.is_empty());
    assert_eq!(on.stdout, off.stdout, "the text differs with the JIT on\n{err}");
    assert!(err.contains("in-place trial after the swap: 8 tokens"), "{err}");
    // Every kernel that passed its check has a trial verdict.
    let kernels: Vec<&str> = err.lines().filter(|l| l.contains(" bytes, warm-up cycles ")).collect();
    assert!(!kernels.is_empty(), "{err}");
    assert!(kernels.iter().all(|l| l.contains("after the trial") || l.ends_with("refused")), "{err}");
}
