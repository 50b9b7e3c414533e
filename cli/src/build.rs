//! `bareflow build`: compiles an app crate into a bootable ELF image for the
//! hard-float target, with its own target dir (an outer `cargo test` may hold
//! the main one's lock). The ELF keeps its symbols: the runner symbolizes
//! backtraces with them.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

/// Which cargo profile to build the image with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Release,
    Debug,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "debug",
        }
    }
}

/// The target dir of image builds.
pub fn image_target_dir() -> PathBuf {
    crate::root::repo_root().join("target").join("image")
}

/// Where `build_image` leaves the ELF of `app`.
pub fn image_path(app: &str, profile: Profile) -> PathBuf {
    image_target_dir().join("x86_64-bareflow").join(profile.dir()).join(app)
}

/// Builds `app` as an image and returns the ELF's path. Progress goes to stderr.
pub fn build_image(app: &str, profile: Profile) -> Result<PathBuf> {
    if app.is_empty() || app.starts_with('-') {
        bail!("`{app}` is not an app name: give the app crate's package name, e.g. `hello`");
    }
    crate::setup::ensure_rust_src()?;
    let root = crate::root::repo_root();
    let target = root.join("targets").join("x86_64-bareflow.json");
    if !target.is_file() {
        bail!(
            "target spec {} not found: is BAREFLOW_ROOT ({}) the BareFlow repo root?",
            target.display(),
            root.display()
        );
    }
    let linker_script = root.join("crates").join("hal").join("linker.ld");
    // The public keys the image trusts (crates/kernel/build.rs embeds them).
    let trusted_keys = crate::trust::image_trusted_keys()?;
    eprintln!("building {app} image...");
    let mut cmd = Command::new(crate::root::cargo());
    cmd.arg("build");
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    cmd.args(["-p", app, "--target"])
        .arg(&target)
        .args([
            "-Zbuild-std=core,alloc,compiler_builtins",
            "-Zbuild-std-features=compiler-builtins-mem",
            "-Zjson-target-spec",
        ])
        .env("CARGO_TARGET_DIR", image_target_dir())
        .env(crate::trust::TRUSTED_KEYS_ENV, &trusted_keys)
        .env(
            "RUSTFLAGS",
            format!("-C link-arg=-T{} -C force-frame-pointers=yes", linker_script.display()),
        )
        // Flags meant for the host build that runs us must not leak into the image's.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(&root);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`: is Rust installed?", crate::root::cargo().display()))?;
    if !status.success() {
        bail!("building the {app} image failed (cargo's messages are above); `cargo bareflow build {app}` repeats it");
    }
    let elf = image_path(app, profile);
    let size = std::fs::metadata(&elf)
        .with_context(|| format!("cargo succeeded but {} is missing: is `{app}` a binary crate?", elf.display()))?
        .len();
    eprintln!("image: {} ({:.1} KiB)", elf.display(), size as f64 / 1024.0);
    Ok(elf)
}

/// `bareflow build <app> [--debug]`.
pub fn cli_main(args: &[String]) -> Result<i32> {
    let mut app = None;
    let mut profile = Profile::Release;
    for a in args {
        match a.as_str() {
            "--debug" => profile = Profile::Debug,
            s if s.starts_with('-') => bail!("unknown option `{s}` for build: usage `cargo bareflow build <app> [--debug]`"),
            s if app.is_none() => app = Some(s.to_string()),
            s => bail!("unexpected argument `{s}`: build takes one app name"),
        }
    }
    let Some(app) = app else {
        bail!("build needs an app name: `cargo bareflow build <app> [--debug]`");
    };
    build_image(&app, profile)?;
    Ok(0)
}
