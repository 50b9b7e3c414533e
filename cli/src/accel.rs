//! Choosing the accelerator by probing, never by the existence of `/dev/kvm`.
//!
//! Some hosts have a `/dev/kvm` on which ring-0 SSE fails (a software PVM). The
//! probe boots the real image under KVM with `bareflow.probe=1`; the kernel then
//! runs SSE code, prints `bareflow: probe ok` and exits 0. If that happens within
//! 10 s, KVM is used, else TCG. The verdict is cached in
//! `target/bareflow/accel-probe.json`, keyed by QEMU's version and the host
//! kernel's release.

use crate::qemu::{Accel, Boot, Ending, Guest, Machine};
use anyhow::{Result, bail};
use bareflow_abi::cmdline::Cmdline;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// What `--accel` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    Auto,
    Kvm,
    Tcg,
}

impl AccelChoice {
    pub fn parse(s: &str) -> Result<AccelChoice> {
        Ok(match s {
            "auto" => AccelChoice::Auto,
            "kvm" => AccelChoice::Kvm,
            "tcg" => AccelChoice::Tcg,
            _ => bail!("unknown accelerator `{s}`: use auto, kvm or tcg"),
        })
    }
}

/// The cached verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub qemu_version: String,
    pub host_kernel: String,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Why (the probe's failure, or "probe ok").
    pub reason: String,
}

/// The probe's time limit.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// QEMU's version line, e.g. `QEMU emulator version 7.2.22 (...)`.
pub fn qemu_version() -> Result<String> {
    let out = std::process::Command::new(crate::setup::QEMU).arg("--version").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_string())
}

/// The host kernel's release (`uname -r`).
pub fn host_kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn cache_path() -> PathBuf {
    crate::root::work_dir().join("accel-probe.json")
}

/// Reads a cached verdict if it matches this QEMU and host kernel.
pub fn read_cache(path: &Path, qemu_version: &str, host_kernel: &str) -> Option<Verdict> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: Verdict = serde_json::from_str(&text).ok()?;
    (v.qemu_version == qemu_version && v.host_kernel == host_kernel && matches!(v.accel.as_str(), "kvm" | "tcg"))
        .then_some(v)
}

/// Boots `elf` under KVM with `bareflow.probe=1`; Ok(()) if it printed `bareflow: probe ok` and exited 0.
fn probe_kvm(elf: &Path) -> Result<(), String> {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        return Err("/dev/kvm cannot be opened".into());
    }
    let cmdline = Cmdline::default().with_option("bareflow.app", "probe").with_option("bareflow.probe", "1");
    let guest = Guest {
        machine: Machine::Microvm,
        accel: Accel::Kvm,
        cpus: 1,
        mem: "128M".into(),
        boot: Boot::Kernel { elf: elf.to_path_buf(), initrd: None, cmdline: cmdline.encode() },
        timeout: PROBE_TIMEOUT,
        net: None,
        disks: Vec::new(),
        extra: Vec::new(),
        debug_exit: true,
    };
    let out = crate::qemu::boot(&guest, &mut |l| l.to_string()).map_err(|e| format!("{e:#}"))?;
    let said_ok = out.lines.iter().any(|l| l.contains("bareflow: probe ok"));
    match out.ending {
        Ending::Code(0) if said_ok => Ok(()),
        Ending::TimedOut => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        Ending::Interrupted => Err("interrupted".into()),
        Ending::QemuFailed(_) => Err(format!("QEMU failed: {}", out.stderr.trim())),
        e => Err(format!("guest ended with {e:?}{}", if said_ok { "" } else { " without `probe ok`" })),
    }
}

/// One decision per process (tests boot many guests in parallel).
static DECIDED: Mutex<Option<Accel>> = Mutex::new(None);

/// Resolves `choice` to an accelerator, probing with `elf` if needed; tells stderr once.
pub fn resolve(choice: AccelChoice, elf: &Path) -> Result<Accel> {
    match choice {
        AccelChoice::Kvm => return Ok(Accel::Kvm),
        AccelChoice::Tcg => return Ok(Accel::Tcg),
        AccelChoice::Auto => {}
    }
    let mut decided = DECIDED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(a) = *decided {
        return Ok(a);
    }
    crate::setup::ensure_qemu()?;
    let qv = qemu_version()?;
    let hk = host_kernel();
    let path = cache_path();
    let (verdict, cached) = match read_cache(&path, &qv, &hk) {
        Some(v) => (v, true),
        None => {
            eprintln!("accel: probing KVM (boots the image once, at most {} s)...", PROBE_TIMEOUT.as_secs());
            let probe = probe_kvm(elf);
            if crate::qemu::interrupted() {
                bail!("interrupted during the KVM probe (nothing cached)");
            }
            let (accel, reason) = match probe {
                Ok(()) => ("kvm", "probe ok".to_string()),
                Err(why) => ("tcg", format!("kvm probe failed: {why}")),
            };
            let v = Verdict { qemu_version: qv, host_kernel: hk, accel: accel.into(), reason };
            crate::root::ensure_work_dir()?;
            let written = serde_json::to_string_pretty(&v)
                .map_err(std::io::Error::other)
                .and_then(|text| std::fs::write(&path, text));
            if let Err(e) = written {
                eprintln!("accel: could not cache the verdict in {} ({e}); will probe again next time", path.display());
            }
            (v, false)
        }
    };
    let accel = if verdict.accel == "kvm" { Accel::Kvm } else { Accel::Tcg };
    let cached = if cached { "cached in target/bareflow/accel-probe.json: " } else { "" };
    eprintln!("accel: {} ({cached}{})", accel.name(), verdict.reason);
    *decided = Some(accel);
    Ok(accel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_keyed_by_qemu_and_kernel() {
        let dir = std::env::temp_dir().join(format!("bareflow-accel-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("accel-probe.json");
        let v = Verdict { qemu_version: "Q 7.2".into(), host_kernel: "6.1".into(), accel: "tcg".into(), reason: "r".into() };
        std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(read_cache(&path, "Q 7.2", "6.1"), Some(v.clone()));
        assert_eq!(read_cache(&path, "Q 8.0", "6.1"), None);
        assert_eq!(read_cache(&path, "Q 7.2", "6.2"), None);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(read_cache(&path, "Q 7.2", "6.1"), None);
        let bad = Verdict { accel: "hvf".into(), ..v };
        std::fs::write(&path, serde_json::to_string(&bad).unwrap()).unwrap();
        assert_eq!(read_cache(&path, "Q 7.2", "6.1"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
