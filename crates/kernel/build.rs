//! Embeds the public keys this image trusts (the `TrustedKeys` list of
//! `bareflow_abi::signature`) as `$OUT_DIR/trusted_keys.bin`, which `src/fs.rs`
//! includes. `cargo bareflow build` writes the list (every key in the user's
//! key store, a `default` key created on first use) and names it in
//! `BAREFLOW_TRUSTED_KEYS`. Built without it, the image trusts no key and
//! refuses every initfs at boot, with a message saying so.

use std::path::PathBuf;
use std::process::exit;

const ENV: &str = "BAREFLOW_TRUSTED_KEYS";

/// An empty list: magic, version 1, count 0.
fn empty_list() -> Vec<u8> {
    let mut v = b"BFKEYS\0\0".to_vec();
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

fn main() {
    println!("cargo:rerun-if-env-changed={ENV}");
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        eprintln!("OUT_DIR is not set: run this build script through cargo");
        exit(1);
    };
    let out = PathBuf::from(out_dir).join("trusted_keys.bin");
    let bytes = match std::env::var_os(ENV).filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            match std::fs::read(&path) {
                Ok(b) if b.starts_with(b"BFKEYS\0\0") => b,
                Ok(_) => {
                    eprintln!("{ENV}={} is not a trusted-key list (bad magic): let `cargo bareflow build` write it", path.display());
                    exit(1);
                }
                Err(e) => {
                    eprintln!("cannot read {ENV}={} ({e}): let `cargo bareflow build` write it", path.display());
                    exit(1);
                }
            }
        }
        None => {
            println!(
                "cargo:warning={ENV} is not set: this kernel trusts no signing key and will refuse every initfs; build images with `cargo bareflow build`"
            );
            empty_list()
        }
    };
    if std::fs::read(&out).ok().as_deref() != Some(&bytes[..])
        && let Err(e) = std::fs::write(&out, &bytes)
    {
        eprintln!("cannot write {} ({e})", out.display());
        exit(1);
    }
}
