//! `--jit on`: after the warm-up the app generates kernels, times them in
//! place against the ahead-of-time ones (the trial) and keeps the faster;
//! whichever it keeps, the story is byte for byte the one `--jit off` tells.
use std::path::Path;
use std::process::{Command, Output};

fn llm(jit: &str) -> Output {
    llm_with(jit, &[])
}

/// The greedy story of stories260K with `--jit jit --jit-stats` and `extra` arguments.
fn llm_with(jit: &str, extra: &[&str]) -> Output {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    Command::new(env!("CARGO_BIN_EXE_llm"))
        .arg(models.join("stories260K.bin"))
        .arg("-z")
        .arg(models.join("tok512.bin"))
        .args(["-t", "0", "-n", "256", "--threads", "1", "--jit", jit, "--jit-stats"])
        .args(extra)
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

fn llm_int8(jit: &str) -> Output {
    llm_with(jit, &["--int8", "--kernels", "avx2"])
}

/// int8 with `--jit on`: the trial races the int8 variants op by op (one row
/// per block, or two rows half the call apart) and each op keeps its fastest
/// or the AOT kernel; the story stays the AOT int8 one, which is the recorded
/// `bareflow_int8_avx2_greedy_no_prompt_n256.txt` (what the image is checked against).
#[test]
fn int8_the_variant_race_keeps_the_aot_int8_story() {
    if !std::arch::is_x86_feature_detected!("avx2") || !std::arch::is_x86_feature_detected!("fma") {
        eprintln!("no AVX2+FMA here: the AVX2 set cannot run");
        return;
    }
    let (off, on) = (llm_int8("off"), llm_int8("on"));
    let err = String::from_utf8_lossy(&on.stderr);
    assert!(off.status.success() && on.status.success(), "{err}");
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let golden = std::fs::read_to_string(models.join("reference/bareflow_int8_avx2_greedy_no_prompt_n256.txt")).expect("golden");
    let want: String = golden.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&off.stdout), want, "the AOT int8 story moved: re-record the file only if that was meant");
    assert_eq!(on.stdout, off.stdout, "the int8 text differs with the JIT on\n{err}");
    assert!(err.contains("(2 variants)"), "{err}");
    let choices = err.lines().filter(|l| l.contains("note: q8 matmul") && l.contains("(in place, AOT/JIT:")).count();
    assert_eq!(choices, 5, "a choice per int8 shape:\n{err}");
}
