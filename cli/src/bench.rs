//! `bareflow bench boot`: how fast and how small the `hello` image is, per
//! machine type under TCG, beside the targets; appends a JSON line to
//! `bench/history/boot.jsonl`.

use crate::build::{self, Profile};
use crate::qemu::{Accel, Boot, Ending, Guest, Machine};
use anyhow::{Context, Result, bail};
use bareflow_abi::cmdline::Cmdline;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Target: stripped image size.
pub const TARGET_STRIPPED_KIB: f64 = 300.0;
/// Target: guest time from the first instruction to `main`.
pub const TARGET_ENTRY_TO_MAIN_MS: f64 = 2.0;
/// Target: whole QEMU process on microvm.
pub const TARGET_WHOLE_MICROVM_MS: f64 = 80.0;

/// Median, min and max of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// `None` for an empty sample.
    pub fn of(xs: &[f64]) -> Option<Stats> {
        let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Stats { median, min: v[0], max: v[n - 1] })
    }

    fn json(&self) -> serde_json::Value {
        json!({ "median": round3(self.median), "min": round3(self.min), "max": round3(self.max) })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `N` of a `bareflow: boot entry->main <N> ns` line.
pub fn parse_entry_to_main(line: &str) -> Option<u64> {
    line.trim().strip_prefix("bareflow: boot entry->main ")?.strip_suffix(" ns")?.trim().parse().ok()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (UTC, proleptic Gregorian).
pub fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Size of `elf` after `strip` (or `objcopy --strip-all`) into a temp file.
fn stripped_size(elf: &Path) -> Result<u64> {
    let tmp = std::env::temp_dir().join(format!("bareflow-stripped-{}", std::process::id()));
    let ok = |prog: &str, args: &[&std::ffi::OsStr]| {
        std::process::Command::new(prog).args(args).output().map(|o| o.status.success()).unwrap_or(false)
    };
    let o = std::ffi::OsStr::new("-o");
    let done = ok("strip", &[o, tmp.as_os_str(), elf.as_os_str()])
        || ok("objcopy", &[std::ffi::OsStr::new("--strip-all"), elf.as_os_str(), tmp.as_os_str()]);
    if !done {
        bail!("neither `strip` nor `objcopy --strip-all` worked on {}: install binutils", elf.display());
    }
    let size = std::fs::metadata(&tmp)?.len();
    let _ = std::fs::remove_file(&tmp);
    Ok(size)
}

struct MachineFigures {
    machine: Machine,
    wall_ms: Stats,
    entry_ms: Option<Stats>,
}

fn bench_machine(elf: &Path, machine: Machine, runs: usize) -> Result<MachineFigures> {
    let guest = hello_guest(elf, machine);
    let mut wall = Vec::new();
    let mut entry = Vec::new();
    for i in 0..runs {
        let out = crate::qemu::boot(&guest, &mut |l| l.to_string())?;
        if out.ending != Ending::Code(0) {
            bail!(
                "run {} on {} ended with {:?} instead of exit 0; output:\n{}{}",
                i + 1,
                machine.name(),
                out.ending,
                out.output(),
                out.stderr
            );
        }
        wall.push(out.elapsed.as_secs_f64() * 1000.0);
        if let Some(ns) = out.lines.iter().find_map(|l| parse_entry_to_main(l)) {
            entry.push(ns as f64 / 1e6);
        }
    }
    let wall_ms = Stats::of(&wall).context("no runs")?;
    Ok(MachineFigures { machine, wall_ms, entry_ms: Stats::of(&entry) })
}

/// The code QEMU translated from the image's entry to `main`, read from a
/// `-d in_asm` log: how many distinct blocks, and the functions with most.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub blocks: usize,
    pub top: Vec<(String, usize)>,
}

/// Counts the translated blocks that start inside the image's functions, in
/// log order, until the first block of the function at `main_at` (the
/// kernel's `bareflow_main_reached`). Firmware blocks (outside the image) are
/// not counted. `None` if the log never reaches `main_at`.
pub fn count_translated(log: &str, syms: &crate::symbolize::Symbolizer, main_at: u64) -> Option<Translated> {
    let mut per: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut blocks = 0;
    let mut want_pc = false;
    for line in log.lines() {
        if line.starts_with("IN:") {
            want_pc = true;
            continue;
        }
        if !want_pc {
            continue;
        }
        let Some(hex) = line.strip_prefix("0x").and_then(|r| r.split(':').next()) else { continue };
        want_pc = false;
        let Ok(pc) = u64::from_str_radix(hex.trim(), 16) else { continue };
        let Some((name, off)) = syms.lookup(pc) else { continue };
        if pc - off == main_at {
            let mut top: Vec<(String, usize)> = per.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(5);
            return Some(Translated { blocks, top });
        }
        blocks += 1;
        *per.entry(name).or_default() += 1;
    }
    None
}

/// Boots `elf` on microvm with QEMU's `-d in_asm` log and counts what was
/// translated before `main`. Under `-icount shift=0` the guest's clock runs
/// by instructions, so its first timer tick never lands before `main` (with
/// the logging slowing a real-time guest, it sometimes did and added the
/// interrupt path's blocks): the same count on every run, whatever the
/// host's load, unlike the times. (icount ends blocks at I/O too: the count
/// is ~5% above a plain boot's.)
pub fn translated_before_main(elf: &Path) -> Result<Translated> {
    let syms = crate::symbolize::Symbolizer::from_file(elf)?;
    let main_at = syms
        .address_of("bareflow_main_reached")
        .context("the image has no `bareflow_main_reached` symbol (stripped, or an older kernel)")?;
    let log = std::env::temp_dir().join(format!("bareflow-in-asm-{}.log", std::process::id()));
    let log_arg = log.to_str().context("the temporary directory's path is not UTF-8")?;
    let mut guest = hello_guest(elf, Machine::Microvm);
    guest.timeout = Duration::from_secs(60);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let out = crate::qemu::boot_with_args(&guest, &["-icount", "shift=0", "-d", "in_asm", "-D", log_arg], &mut |l| l.to_string(), &stop);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let out = out?;
    if out.ending != Ending::Code(0) {
        bail!("the logged boot ended with {:?} instead of exit 0; output:\n{}{}", out.ending, out.output(), out.stderr);
    }
    count_translated(&text, &syms, main_at).context("QEMU's -d in_asm log never reached `bareflow_main_reached`")
}

fn hello_guest(elf: &Path, machine: Machine) -> Guest {
    let cmdline = Cmdline::default().with_option("bareflow.app", "hello").with_option("bareflow.bootstat", "1");
    Guest {
        machine,
        accel: Accel::Tcg,
        cpus: 1,
        mem: "128M".into(),
        boot: Boot::Kernel { elf: elf.to_path_buf(), initrd: None, cmdline: cmdline.encode() },
        timeout: Duration::from_secs(30),
        net: None,
        disks: Vec::new(),
        extra: Vec::new(),
        debug_exit: true,
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// `bareflow bench boot [--runs N]`.
pub fn boot_main(args: &[String]) -> Result<i32> {
    let mut runs = 10usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                let v = it.next().context("`--runs` needs a number")?;
                runs = v.parse().ok().filter(|&n| n > 0).with_context(|| format!("`--runs {v}`: expected a positive number"))?;
            }
            s => bail!("unknown option `{s}` for bench boot: usage `cargo bareflow bench boot [--runs N]`"),
        }
    }
    crate::setup::ensure_qemu()?;
    let elf = build::build_image("hello", Profile::Release)?;
    let elf_size = std::fs::metadata(&elf)?.len();
    let stripped = stripped_size(&elf)?;
    let mut figures = Vec::new();
    for m in [Machine::Microvm, Machine::Q35, Machine::Pc] {
        eprintln!("bench boot: {} x{runs} (TCG)...", m.name());
        figures.push(bench_machine(&elf, m, runs)?);
    }
    eprintln!("bench boot: microvm once more with QEMU's -d in_asm log (icount)...");
    let translated = translated_before_main(&elf)?;
    let kib = |b: u64| b as f64 / 1024.0;
    println!("boot benchmark: hello, TCG, {runs} runs per machine");
    println!(
        "image: {:.1} KiB as built, {:.1} KiB stripped (target <= {TARGET_STRIPPED_KIB} KiB: {})",
        kib(elf_size),
        kib(stripped),
        verdict(kib(stripped) <= TARGET_STRIPPED_KIB)
    );
    println!("{:<8}  {:>32}  {:>32}", "machine", "whole process ms (med/min/max)", "entry->main ms (med/min/max)");
    for f in &figures {
        let entry = f
            .entry_ms
            .map(|s| format!("{:.3}/{:.3}/{:.3}", s.median, s.min, s.max))
            .unwrap_or_else(|| "not reported".into());
        println!(
            "{:<8}  {:>32}  {:>32}",
            f.machine.name(),
            format!("{:.1}/{:.1}/{:.1}", f.wall_ms.median, f.wall_ms.min, f.wall_ms.max),
            entry
        );
    }
    let top: Vec<String> = translated.top.iter().map(|(f, n)| format!("{f} {n}")).collect();
    println!(
        "code translated entry->main on microvm: {} distinct blocks (QEMU -d in_asm under -icount: the same every run); most in: {}",
        translated.blocks,
        top.join(", ")
    );
    if let Some(micro) = figures.iter().find(|f| f.machine == Machine::Microvm) {
        if let Some(e) = micro.entry_ms {
            println!(
                "  that is {:.1} us of entry->main per translated block (TCG pays per block it translates)",
                e.median * 1000.0 / translated.blocks.max(1) as f64
            );
        }
        println!(
            "targets: whole process on microvm <= {TARGET_WHOLE_MICROVM_MS} ms: {} ({:.1} ms); entry->main <= {TARGET_ENTRY_TO_MAIN_MS} ms: {}",
            verdict(micro.wall_ms.median <= TARGET_WHOLE_MICROVM_MS),
            micro.wall_ms.median,
            match micro.entry_ms {
                Some(s) => format!("{} ({:.3} ms)", verdict(s.median <= TARGET_ENTRY_TO_MAIN_MS), s.median),
                None => "not reported (kernel did not print `bareflow: boot entry->main`)".into(),
            }
        );
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let mut machines = serde_json::Map::new();
    for f in &figures {
        machines.insert(
            f.machine.name().into(),
            json!({ "runs": runs, "whole_process_ms": f.wall_ms.json(), "entry_to_main_ms": f.entry_ms.map(|s| s.json()) }),
        );
    }
    let record = json!({
        "date": iso8601(now),
        "host": host,
        "host_kernel": crate::accel::host_kernel(),
        "qemu": crate::accel::qemu_version().unwrap_or_default(),
        "accel": "tcg",
        "image_bytes": elf_size,
        "image_stripped_bytes": stripped,
        "machines": machines,
        "microvm_blocks_translated_before_main": translated.blocks,
    });
    let dir = crate::root::repo_root().join("bench").join("history");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("boot.jsonl");
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "{record}")?;
    println!("appended to {}", path.display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_median_min_max() {
        assert_eq!(Stats::of(&[3.0, 1.0, 2.0]), Some(Stats { median: 2.0, min: 1.0, max: 3.0 }));
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]), Some(Stats { median: 2.5, min: 1.0, max: 4.0 }));
        assert_eq!(Stats::of(&[]), None);
    }

    #[test]
    fn counts_image_blocks_until_main() {
        // Two functions of a made-up image: `f` at 0x1000 (size 0x100) and `main_reached` at 0x2000.
        let elf_syms = crate::symbolize::Symbolizer::from_pairs(&[(0x1000, 0x100, "f"), (0x2000, 0x10, "bareflow_main_reached")]);
        let log = "IN: \n0xfffffff0:  jmp 0x1000\n\nIN: f\n0x00001000:  mov eax, 1\n0x00001003:  jmp 0x1010\n\n\
                   IN: f\n0x00001010:  ret\n\nIN: \n0x00009000:  nop\n\nIN: bareflow_main_reached\n0x00002000:  ret\n\n\
                   IN: f\n0x00001020:  ret\n";
        let t = count_translated(log, &elf_syms, 0x2000).expect("main is in the log");
        assert_eq!(t.blocks, 2, "firmware and the block after main are not counted");
        assert_eq!(t.top, vec![("f".to_string(), 2)]);
        assert_eq!(count_translated("IN: f\n0x00001000:  ret\n", &elf_syms, 0x2000), None, "a log that never reaches main");
    }

    #[test]
    fn parses_the_bootstat_line() {
        assert_eq!(parse_entry_to_main("bareflow: boot entry->main 412345 ns"), Some(412_345));
        assert_eq!(parse_entry_to_main("bareflow: boot entry->main x ns"), None);
        assert_eq!(parse_entry_to_main("Hello"), None);
    }

    #[test]
    fn dates_are_utc_civil() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
