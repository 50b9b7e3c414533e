//! `cargo bareflow bench fs`: the file paths of the image, each against the
//! same bytes without the layer on top, measured side by side in one boot:
//! the signed initfs read the first time (SHA-256 checked) against the same
//! file read again (already verified), and FAT on virtio-blk against raw
//! block I/O on the same disk, and a signed payload's check-and-map time
//! against reading its bytes. Medians over several boots go to the table
//! and `bench/history/fs.jsonl`.
use crate::bench::{Stats, iso8601};
use crate::build::{self, Profile};
use crate::qemu::{Accel, Boot, Ending, Guest, Machine};
use anyhow::{Context, Result, bail};
use bareflow_abi::cmdline::Cmdline;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Size of the FAT file system on the bench disk (KiB) and of the raw area after it.
const FAT_KIB: u64 = 65536;
const RAW_KIB: u64 = 8192;
/// Size of the boot-time file read through the initfs.
const BIG_MIB: usize = 16;

/// `fsbench: NAME VALUE UNIT` → (NAME, VALUE, UNIT).
pub fn parse_line(line: &str) -> Option<(String, f64, String)> {
    let mut w = line.strip_prefix("fsbench: ")?.split_whitespace();
    let (name, value, unit) = (w.next()?, w.next()?.parse().ok()?, w.next()?);
    Some((name.to_string(), value, unit.to_string()))
}

fn tool(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {:?} (install dosfstools and mtools)", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A FAT32 file system of [`FAT_KIB`] followed by [`RAW_KIB`] of raw blocks.
fn make_disk(path: &Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mkfs = Path::new("/usr/sbin/mkfs.fat");
    let mut c = Command::new(if mkfs.exists() { mkfs } else { Path::new("mkfs.fat") });
    tool(c.args(["-F", "32", "-C"]).arg(path).arg(FAT_KIB.to_string()))?;
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.set_len((FAT_KIB + RAW_KIB) * 1024)?;
    Ok(())
}

/// A row of the table: a measure over its baseline.
fn ratio(m: &BTreeMap<String, f64>, name: &str, over: &str) -> Option<f64> {
    Some(m.get(name)? / m.get(over)?)
}

/// Entry point.
pub fn main(args: &[String]) -> Result<i32> {
    let runs: usize = match args {
        [] => 3,
        [flag, n] if flag == "--runs" => n.parse().ok().filter(|&n| n > 0).context("--runs needs a positive number")?,
        _ => bail!("usage: cargo bareflow bench fs [--runs N]"),
    };
    crate::setup::ensure_qemu()?;
    let elf = build::build_image("ktest", Profile::Release)?;
    let dir = crate::root::repo_root().join("target").join("bareflow").join("bench-fs");
    std::fs::create_dir_all(&dir)?;
    let big = dir.join("big.bin");
    let bytes: Vec<u8> = (0..BIG_MIB << 20).map(|i| (i as u32).wrapping_mul(2_246_822_519).rotate_left(13) as u8).collect();
    std::fs::write(&big, &bytes)?;
    let initfs = dir.join("initfs.img");
    let hello = crate::root::repo_root().join("payloads").join("hello");
    let payload = crate::trust::payload::build(&hello, crate::trust::keys::DEFAULT_KEY, Some(&dir.join("hello.bfp")), crate::trust::payload::parse_caps("console,fs_read,time")?)?;
    crate::trust::pack_files_default(&[(big.clone(), "big.bin".into()), (payload, "hello.bfp".into())], &initfs)?;
    let disk = dir.join("disk.img");
    let raw_first = FAT_KIB * 2;
    let cmdline = Cmdline::default().with_option("bareflow.app", "ktest").with_arg("bench-fs").with_arg(raw_first.to_string()).with_arg("4096");
    let mut samples: BTreeMap<String, (Vec<f64>, String)> = BTreeMap::new();
    for i in 0..runs {
        make_disk(&disk)?;
        eprintln!("bench fs: boot {}/{runs} (microvm, TCG, {BIG_MIB} MiB initfs file, 4 MiB on FAT and raw)...", i + 1);
        let guest = Guest {
            machine: Machine::Microvm,
            accel: Accel::Tcg,
            cpus: 1,
            mem: "256M".into(),
            boot: Boot::Kernel { elf: elf.clone(), initrd: Some(initfs.clone()), cmdline: cmdline.encode() },
            timeout: Duration::from_secs(300),
            net: None,
            disks: vec![disk.clone()],
            extra: Vec::new(),
            debug_exit: true,
        };
        let out = crate::qemu::boot(&guest, &mut |l| l.to_string())?;
        if out.ending != Ending::Code(0) {
            bail!("the bench guest ended with {:?}:\n{}{}", out.ending, out.output(), out.stderr);
        }
        for (name, v, unit) in out.lines.iter().filter_map(|l| parse_line(l)) {
            samples.entry(name).or_insert_with(|| (Vec::new(), unit)).0.push(v);
        }
    }
    let mut medians = BTreeMap::new();
    println!("{:<24} {:>10}  {:<6} (median of {runs} boots; min..max)", "measure", "value", "unit");
    for (name, (v, unit)) in &samples {
        let Some(s) = Stats::of(v) else { continue };
        println!("{name:<24} {:>10.2}  {unit:<6} ({:.2}..{:.2})", s.median, s.min, s.max);
        medians.insert(name.clone(), s.median);
    }
    println!("\nratios (each pair measured in the same boot):");
    let rows = [
        ("initfs read, verified / already verified", ratio(&medians, "initfs_verified_read", "initfs_plain_read")),
        ("FAT write / raw block write", ratio(&medians, "fat_write", "raw_write")),
        ("FAT read / raw block read", ratio(&medians, "fat_read", "raw_read")),
        ("payload check+map time / reading its bytes", ratio(&medians, "payload_load", "payload_plain_read")),
    ];
    for (name, r) in &rows {
        println!("  {name:<42} {}", r.map_or("-".into(), |r| format!("{r:.2}x")));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let record = json!({
        "date": iso8601(now),
        "host_kernel": crate::accel::host_kernel(),
        "qemu": crate::accel::qemu_version().unwrap_or_default(),
        "accel": "tcg",
        "machine": "microvm",
        "runs": runs,
        "medians": medians,
        "ratios": rows.iter().map(|(n, r)| json!({ "name": n, "value": r })).collect::<Vec<_>>(),
    });
    let hist = crate::root::repo_root().join("bench").join("history");
    std::fs::create_dir_all(&hist)?;
    let path = hist.join("fs.jsonl");
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    writeln!(f, "{record}")?;
    println!("appended to {}", path.display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_lines_and_refuses_others() {
        assert_eq!(parse_line("fsbench: fat_read 3.50 MB/s"), Some(("fat_read".into(), 3.5, "MB/s".into())));
        assert_eq!(parse_line("fsbench: fat_read x MB/s"), None);
        assert_eq!(parse_line("fsbench: done"), None);
        assert_eq!(parse_line("other: a 1 b"), None);
    }

    #[test]
    fn ratios_need_both_sides() {
        let m: BTreeMap<String, f64> = [("a".to_string(), 6.0), ("b".to_string(), 2.0)].into();
        assert_eq!(ratio(&m, "a", "b"), Some(3.0));
        assert_eq!(ratio(&m, "a", "c"), None);
    }
}
