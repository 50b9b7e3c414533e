//! Where things are: the repo root and the folders the CLI writes to.

use std::path::PathBuf;

/// The repo root: `BAREFLOW_ROOT` if set, else the parent of this crate's folder at compile time.
pub fn repo_root() -> PathBuf {
    match std::env::var_os("BAREFLOW_ROOT") {
        Some(r) if !r.is_empty() => PathBuf::from(r),
        _ => {
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().map(PathBuf::from).unwrap_or(manifest)
        }
    }
}

/// The cargo to run: `$CARGO` (set when we run under cargo) or `cargo` from PATH.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("cargo"))
}

/// `target/bareflow`: archives, ISOs and the accelerator probe's verdict.
pub fn work_dir() -> PathBuf {
    repo_root().join("target").join("bareflow")
}

/// Creates the work dir and returns it.
pub fn ensure_work_dir() -> anyhow::Result<PathBuf> {
    let d = work_dir();
    std::fs::create_dir_all(&d)
        .map_err(|e| anyhow::anyhow!("cannot create {} ({e}): check the repo's permissions", d.display()))?;
    Ok(d)
}
