//! Host set-up: finds what building and booting images need, installs what is
//! missing when it can (root: apt-get; rustup for `rust-src`), and otherwise fails
//! with the exact command to run. Non-interactive; each check runs once per process.

use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The QEMU binary the runner uses.
pub const QEMU: &str = "qemu-system-x86_64";

/// Whether `program --version` (or the given probe args) runs successfully.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Installs Debian packages (root only), running `apt-get update` first if the install fails.
fn apt_install(packages: &[&str], why: &str) -> Result<()> {
    let cmd = format!("apt-get install -y {}", packages.join(" "));
    if !is_root() {
        bail!("{why} is missing: install it with `sudo {cmd}` (Debian/Ubuntu), then retry");
    }
    eprintln!("setup: {why} is missing; running `{cmd}`");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if install() {
        return Ok(());
    }
    eprintln!("setup: install failed; running `apt-get update` and retrying");
    let updated = Command::new("apt-get")
        .args(["update", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if updated && install() {
        return Ok(());
    }
    bail!("could not install {why} with `{cmd}` (see apt-get's messages above): install it by hand and retry")
}

/// Remembers which checks passed in this process.
static DONE: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn once(name: &'static str, check: impl FnOnce() -> Result<()>) -> Result<()> {
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if done.contains(&name) {
        return Ok(());
    }
    check()?;
    done.push(name);
    Ok(())
}

/// Makes sure `qemu-system-x86_64` runs.
pub fn ensure_qemu() -> Result<()> {
    once("qemu", || {
        if runs(QEMU, &["--version"]) {
            return Ok(());
        }
        apt_install(&["qemu-system-x86"], "QEMU (`qemu-system-x86_64`)")?;
        if !runs(QEMU, &["--version"]) {
            bail!("`{QEMU} --version` still fails after installing qemu-system-x86: check the installation");
        }
        Ok(())
    })
}

/// Makes sure the toolchain used at the repo root has `rust-src` (needed by `-Zbuild-std`).
pub fn ensure_rust_src() -> Result<()> {
    once("rust-src", || {
        let root = crate::root::repo_root();
        let sysroot = Command::new("rustc")
            .args(["--print", "sysroot"])
            .current_dir(&root)
            .stderr(Stdio::null())
            .output()
            .context("could not run `rustc --print sysroot`: is Rust installed and on PATH?")?;
        let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
        let src = std::path::Path::new(&sysroot).join("lib/rustlib/src/rust/library/core");
        if src.is_dir() {
            return Ok(());
        }
        eprintln!("setup: the toolchain's rust-src component is missing; running `rustup component add rust-src`");
        let ok = Command::new("rustup")
            .args(["component", "add", "rust-src"])
            .current_dir(&root)
            .stdin(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            bail!("`rustup component add rust-src` failed: run it by hand at {} and retry", root.display());
        }
        Ok(())
    })
}

/// Makes sure `grub-mkrescue` and what it needs for a BIOS ISO are there.
pub fn ensure_grub() -> Result<()> {
    once("grub", || {
        let have = || {
            runs("grub-mkrescue", &["--version"])
                && runs("xorriso", &["-version"])
                && runs("mformat", &["--version"])
                && std::path::Path::new("/usr/lib/grub/i386-pc").is_dir()
        };
        if have() {
            return Ok(());
        }
        apt_install(
            &["grub-common", "grub-pc-bin", "xorriso", "mtools"],
            "GRUB's ISO tools (grub-mkrescue, grub-pc-bin, xorriso, mtools)",
        )?;
        if !have() {
            bail!("grub-mkrescue, xorriso, mtools or /usr/lib/grub/i386-pc still missing after installing them");
        }
        Ok(())
    })
}

/// Makes sure `wrk` (the HTTP load generator of `bench http`) runs.
pub fn ensure_wrk() -> Result<()> {
    once("wrk", || {
        // `wrk` with no arguments prints its usage and exits 1; `-v` prints the version and exits 1 too.
        let present = Command::new("wrk").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        if present {
            return Ok(());
        }
        apt_install(&["wrk"], "wrk (the HTTP benchmark tool)")?;
        if Command::new("wrk").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            bail!("`wrk` still does not run after installing the wrk package: check the installation");
        }
        Ok(())
    })
}
