//! GRUB ISOs (`run --iso`): the image booted through its Multiboot2 entry, the
//! file archive as a Multiboot2 module, built with `grub-mkrescue`.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};

/// Quotes one command-line token for grub.cfg when GRUB's script syntax would touch it.
/// Tokens come from [`bareflow_abi::cmdline::Cmdline::encode`], so they hold no spaces.
pub fn grub_quote(token: &str) -> String {
    let plain = token.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+,/:@%=".contains(&b));
    if plain && !token.is_empty() {
        token.to_string()
    } else {
        format!("'{}'", token.replace('\'', "'\\''"))
    }
}

/// The grub.cfg that boots `/boot/kernel.elf` with `cmdline` and the archive as a module.
pub fn grub_cfg(cmdline: &str) -> String {
    let args: Vec<String> = cmdline.split(' ').filter(|t| !t.is_empty()).map(grub_quote).collect();
    format!(
        "set timeout=0\nset default=0\nmenuentry \"bareflow\" {{\n    multiboot2 /boot/kernel.elf {}\n    module2 /boot/files.img\n    boot\n}}\n",
        args.join(" ")
    )
}

/// Builds a bootable ISO at `out` from the ELF, the archive and the command line.
pub fn build_iso(elf: &Path, archive: &Path, cmdline: &str, out: &Path) -> Result<()> {
    crate::setup::ensure_grub()?;
    let stage = out.with_extension("iso.d");
    let _ = std::fs::remove_dir_all(&stage);
    let grub_dir = stage.join("boot").join("grub");
    std::fs::create_dir_all(&grub_dir).with_context(|| format!("cannot create {}", grub_dir.display()))?;
    std::fs::copy(elf, stage.join("boot/kernel.elf")).with_context(|| format!("cannot copy {}", elf.display()))?;
    std::fs::copy(archive, stage.join("boot/files.img")).with_context(|| format!("cannot copy {}", archive.display()))?;
    std::fs::write(grub_dir.join("grub.cfg"), grub_cfg(cmdline))?;
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(out)
        .arg(&stage)
        .stdin(Stdio::null())
        .output()
        .context("could not run grub-mkrescue")?;
    let _ = std::fs::remove_dir_all(&stage);
    if !output.status.success() {
        bail!(
            "grub-mkrescue failed: {}\n(needs grub-pc-bin, xorriso and mtools)",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_grub_would_interpret() {
        assert_eq!(grub_quote("bareflow.app=hello"), "bareflow.app=hello");
        assert_eq!(grub_quote("b%20c"), "b%20c");
        assert_eq!(grub_quote("$x"), "'$x'");
        assert_eq!(grub_quote("it's"), "'it'\\''s'");
        assert_eq!(grub_quote("a;b"), "'a;b'");
    }

    #[test]
    fn cfg_has_multiboot2_and_module2() {
        let cfg = grub_cfg("bareflow.app=hello -- a b%20c");
        assert!(cfg.contains("multiboot2 /boot/kernel.elf bareflow.app=hello -- a b%20c\n"), "{cfg}");
        assert!(cfg.contains("module2 /boot/files.img\n"), "{cfg}");
    }
}
