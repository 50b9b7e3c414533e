//! `hello` hosted: the same source as the image, run as a Linux process
//! (the image side is the in-QEMU suite's `args`, `env` and `exit-code` cases).
use std::process::Command;

#[test]
fn runs_hosted_with_args_env_and_exit_code() {
    let out = Command::new(env!("CARGO_BIN_EXE_hello"))
        .args(["a", "b", "--exit", "3"])
        .env("GREET", "tester")
        .output()
        .expect("run the hosted hello");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "exit code; output:\n{text}");
    assert!(text.contains("Hello from BareFlow!"), "{text}");
    assert!(text.contains(r#"args: ["a", "b", "--exit", "3"]"#), "{text}");
    assert!(text.contains("greetings, tester"), "{text}");
    assert!(text.contains("sum 1/n^2 (n<=20) = 1.596163"), "{text}");
}
