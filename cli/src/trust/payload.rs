//! `cargo bareflow payload build CRATE`: a signed code payload from a
//! `no_std` cdylib crate written against `bareflow-payload` (payloads/rt).
//!
//! The crate is built for `targets/x86_64-bareflow-payload.json` (the image's
//! hard-float target, position independent, a shared object with every
//! import bound at load), then packed with its manifest (name, kernel ABI
//! version, entry `run`, capabilities) and signed
//! (`bareflow_abi::payload::build`). The kernel checks all of it again.
use super::keys::{DEFAULT_KEY, KeyStore, key_hex};
use anyhow::{Context, Result, bail};
use bareflow_abi::payload::{self, Manifest, caps};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The payload target spec.
pub fn target_spec() -> PathBuf {
    crate::root::repo_root().join("targets").join("x86_64-bareflow-payload.json")
}

/// Where payload builds go.
pub fn target_dir() -> PathBuf {
    crate::root::repo_root().join("target").join("payload")
}

/// Capability names for `--caps`.
pub fn parse_caps(s: &str) -> Result<u64> {
    let mut bits = 0;
    for c in s.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        bits |= match c {
            "console" => caps::CONSOLE,
            "fs" | "fs_read" => caps::FS_READ,
            "net" => caps::NET,
            "time" => caps::TIME,
            other => bail!("unknown capability `{other}`: known are console, fs_read, net, time"),
        };
    }
    Ok(bits)
}

/// The package name in `dir/Cargo.toml` (`cargo metadata`).
fn package_name(dir: &Path) -> Result<String> {
    let out = Command::new(crate::root::cargo())
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .output()
        .with_context(|| format!("cannot run cargo metadata in {}", dir.display()))?;
    if !out.status.success() {
        bail!("{} is not a cargo package: {}", dir.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("cargo metadata printed no JSON")?;
    let manifest = std::fs::canonicalize(dir.join("Cargo.toml"))?;
    v["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["manifest_path"].as_str().map(PathBuf::from).as_deref() == Some(manifest.as_path())))
        .and_then(|p| p["name"].as_str())
        .map(str::to_string)
        .with_context(|| format!("no package in {}", dir.display()))
}

/// Builds the crate in `dir` and returns the path of its shared object.
pub fn build_elf(dir: &Path) -> Result<(String, PathBuf)> {
    crate::setup::ensure_rust_src()?;
    let name = package_name(dir)?;
    eprintln!("building payload {name} (first build compiles core for the payload target, ~30 s)...");
    let status = Command::new(crate::root::cargo())
        .args(["build", "--release", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target")
        .arg(target_spec())
        .args(["-Zbuild-std=core,compiler_builtins", "-Zbuild-std-features=compiler-builtins-mem", "-Zjson-target-spec"])
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(crate::root::repo_root())
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("building payload {name} failed (cargo's messages are above)");
    }
    let so = target_dir().join("x86_64-bareflow-payload").join("release").join(format!("lib{}.so", name.replace('-', "_")));
    if !so.is_file() {
        bail!("cargo built {name} but {} is missing: is it a `crate-type = [\"cdylib\"]` crate?", so.display());
    }
    Ok((name, so))
}

/// Builds, packs and signs the payload in `dir`; returns where it was written.
pub fn build(dir: &Path, key_name: &str, out: Option<&Path>, capabilities: u64) -> Result<PathBuf> {
    let (name, so) = build_elf(dir)?;
    let elf = std::fs::read(&so).with_context(|| format!("cannot read {}", so.display()))?;
    let key = KeyStore::from_env()?.secret(key_name)?;
    let manifest = Manifest { name: name.clone(), abi_version: payload::ABI_VERSION, entry: "run".into(), capabilities };
    // Check it the way the kernel will (the loader at base 0), so a payload
    // the kernel would refuse is refused here, with the same message.
    payload::load_elf(&elf, 0x1000_0000, manifest.abi_version, &current_exports(), &manifest.entry)
        .map_err(|e| anyhow::anyhow!("the kernel would refuse {}: {e}", so.display()))?;
    let bytes = payload::build(&manifest, &elf, &key);
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| target_dir().join(format!("{name}.bfp")));
    std::fs::write(&out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "payload {name}: {} bytes of code, {} bytes signed (ABI {}, entry `run`), key `{key_name}` ({}), written to {}",
        elf.len(),
        bytes.len(),
        manifest.abi_version,
        key_hex(&key.public()),
        out.display()
    );
    Ok(out)
}

/// The current ABI's exports at made-up addresses (for the build-time check).
fn current_exports() -> Vec<(&'static str, u64)> {
    let row = payload::COMPAT.iter().find(|a| a.version == payload::ABI_VERSION).map_or(&[][..], |a| a.exports);
    row.iter().enumerate().map(|(i, n)| (*n, 0x2000_0000 + 16 * i as u64)).collect()
}

/// `bareflow payload build CRATE [--key N] [-o OUT] [--caps LIST]`.
pub fn main(args: &[String]) -> Result<i32> {
    let usage = "usage: cargo bareflow payload build CRATE_DIR [--key NAME] [-o OUT] [--caps console,fs_read,time,net]";
    let Some((cmd, rest)) = args.split_first() else { bail!("{usage}") };
    if cmd != "build" {
        bail!("unknown payload command `{cmd}`\n{usage}");
    }
    let (pos, opts) = super::options(rest, &["-o", "--key", "--caps"])?;
    let [dir] = pos.as_slice() else { bail!("`payload build` takes one crate directory\n{usage}") };
    let key = super::opt(&opts, "--key").unwrap_or(DEFAULT_KEY);
    let caps = parse_caps(super::opt(&opts, "--caps").unwrap_or("console,fs_read,time"))?;
    build(Path::new(dir), key, super::opt(&opts, "-o").map(Path::new), caps)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        assert_eq!(parse_caps("console,time").unwrap(), caps::CONSOLE | caps::TIME);
        assert_eq!(parse_caps("").unwrap(), 0);
        assert!(parse_caps("console,root").unwrap_err().to_string().contains("unknown capability `root`"));
    }

    #[test]
    fn the_build_check_knows_every_current_export() {
        let e = current_exports();
        assert!(e.iter().any(|(n, _)| *n == "bf_write") && e.iter().any(|(n, _)| *n == "bf_read_file"));
    }
}
