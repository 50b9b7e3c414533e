//! Runs the loom model checks (`tests/loom.rs`) as part of a plain `cargo test`:
//! they need the crate rebuilt with `--cfg loom`, so this test builds it in a
//! target folder of its own (`target/loom`, about 25 s the first time) and
//! fails if any model fails or if no model ran.
#![cfg(not(loom))]

use std::path::Path;
use std::process::Command;

#[test]
fn loom_models_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["test", "-q", "-p", "bareflow-ring", "--release", "--test", "loom"])
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", root.join("target/loom"))
        .output()
        .expect("run cargo for the loom build");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "loom models failed:\n{text}");
    let passed: usize = text
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|r| r.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 7, "expected the 7 loom models to run, {passed} passed:\n{text}");
}
