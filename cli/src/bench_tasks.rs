//! `cargo bareflow bench tasks`: threads, scheduling and message passing.
//!
//! Two parts, each side by side in one run:
//! - hosted: the Disruptor ring against crossbeam's `ArrayQueue` and
//!   `std::sync::mpsc` (`cargo bench -p bareflow-ring --bench ring`, which runs
//!   them A/B/A/B and prints medians and ratios);
//! - in the unikernel (microvm, 2 vCPUs, TCG): context switch, spawn+join,
//!   cross-CPU round trip, the ring against `ArrayQueue` (crossbeam-queue built
//!   no_std for the image) and against the kernel's bounded channel, from the
//!   `ktest bench-tasks` case, `runs` boots, medians.
//!
//! It ends with the ratios against the target (the ring at least 2x
//! `ArrayQueue` for batched SPSC), each with a verdict, MET or MISSED; a
//! figure that could not be measured is NOT MEASURED, never left out. In the
//! image the SPSC pair is judged twice: with the hosted bench's wait (spin,
//! then yield) and with the ring's `Blocking` wait on both sides (spin, then
//! park: a waiting vCPU halts). The first swings with the host's load (the
//! two vCPUs need two free host cores); the second does not, much.
use crate::build::{self, Profile};
use crate::qemu::{Accel, Boot, Ending, Guest, Machine};
use anyhow::{Context, Result, bail};
use bareflow_abi::cmdline::Cmdline;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Parses a `bench: <name> <value> <unit>` line.
pub fn parse_line(line: &str) -> Option<(String, f64, String)> {
    let mut it = line.strip_prefix("bench: ")?.split_whitespace();
    let name = it.next()?.to_string();
    let value = it.next()?.parse().ok()?;
    let unit = it.next().unwrap_or("").to_string();
    Some((name, value, unit))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Entry point.
pub fn main(args: &[String]) -> Result<i32> {
    let runs: usize = match args {
        [] => 3,
        [flag, n] if flag == "--runs" => n.parse().ok().filter(|&n| n > 0).context("--runs needs a positive number")?,
        _ => bail!("usage: cargo bareflow bench tasks [--runs N]"),
    };
    println!("== hosted: the ring against ArrayQueue and std::sync::mpsc (cargo bench -p bareflow-ring --bench ring)");
    let out = std::process::Command::new(crate::root::cargo())
        .args(["bench", "-q", "-p", "bareflow-ring", "--bench", "ring"])
        .current_dir(crate::root::repo_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo bench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut hosted = BTreeMap::new();
    for line in text.lines() {
        match parse_line(line) {
            Some((name, v, _)) => {
                hosted.insert(name, v);
            }
            None => println!("{line}"),
        }
    }
    if !out.status.success() {
        eprintln!("bench tasks: the hosted ring bench failed ({}); continuing with the unikernel part", out.status);
    }

    println!("\n== in the unikernel: microvm, 2 vCPUs, TCG, {runs} boots");
    let elf = build::build_image("ktest", Profile::Release)?;
    let cmdline = Cmdline::default().with_option("bareflow.app", "ktest").with_arg("bench-tasks");
    let guest = Guest {
        machine: Machine::Microvm,
        accel: Accel::Tcg,
        cpus: 2,
        mem: "128M".into(),
        boot: Boot::Kernel { elf, initrd: None, cmdline: cmdline.encode() },
        timeout: Duration::from_secs(120),
        net: None,
        disks: Vec::new(),
        extra: Vec::new(),
        debug_exit: true,
    };
    let load_before = host_load();
    let mut samples: BTreeMap<String, (Vec<f64>, String)> = BTreeMap::new();
    for i in 0..runs {
        eprintln!("bench tasks: boot {}/{runs}...", i + 1);
        let out = crate::qemu::boot(&guest, &mut |l| l.to_string())?;
        if out.ending != Ending::Code(0) {
            bail!("the bench guest ended with {:?}:\n{}{}", out.ending, out.output(), out.stderr);
        }
        if let Some(l) = out.lines.iter().find(|l| l.contains("messages lost")) {
            bail!("the bench guest reports: {l}");
        }
        for (name, v, unit) in out.lines.iter().filter_map(|l| parse_line(l)) {
            let e = samples.entry(name).or_insert_with(|| (Vec::new(), unit));
            e.0.push(v);
        }
    }
    let load_after = host_load();
    println!("host load average (1 min) before the boots {load_before}, after {load_after}, on {} host cores: the cross-CPU figures need both vCPUs running at once, so a busy host lowers them, unevenly", std::thread::available_parallelism().map_or(0, |n| n.get()));
    let mut medians = BTreeMap::new();
    println!("{:<40} {:>14} {:>14} {:>14}  unit", "measure", "median", "lowest", "highest");
    for (name, (v, unit)) in samples.iter_mut() {
        let m = median(v);
        let (lo, hi) = (v.first().copied().unwrap_or(f64::NAN), v.last().copied().unwrap_or(f64::NAN));
        let digits = if unit == "x" { 3 } else { 0 };
        println!("{name:<40} {m:>14.digits$} {lo:>14.digits$} {hi:>14.digits$}  {unit}");
        medians.insert(name.clone(), m);
    }
    let rows = ratios(&hosted, &medians);
    println!("\n== ratios (messages/s, each pair measured side by side in one run)");
    println!("{:<60} {:>9}  {:<8} verdict", "ratio", "value", "target");
    for r in &rows {
        let value = r.value.map_or("-".to_string(), |v| format!("{v:.2}x"));
        let target = r.target.map_or("-".to_string(), |t| format!(">= {t}x"));
        println!("{:<60} {value:>9}  {target:<8} {}", r.name, r.verdict());
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let record = json!({
        "date": crate::bench::iso8601(now),
        "qemu": crate::accel::qemu_version().unwrap_or_default(),
        "accel": "tcg",
        "machine": "microvm",
        "cpus": 2,
        "runs": runs,
        "unikernel_medians": medians,
        "hosted_medians": hosted,
        "host_load_1min": [load_before, load_after],
        "ratios": rows.iter().map(|r| json!({"name": r.name, "value": r.value, "target": r.target, "verdict": r.verdict()})).collect::<Vec<_>>(),
    });
    let dir = crate::root::repo_root().join("bench").join("history");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("tasks.jsonl");
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    writeln!(f, "{record}")?;
    println!("appended to {}", path.display());
    Ok(0)
}

/// The host's 1-minute load average, as `/proc/loadavg` says (`?` if unreadable).
fn host_load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The target: the ring at least this many times `ArrayQueue`'s
/// messages/s for batched single-producer/single-consumer.
pub const SPSC_TARGET: f64 = 2.0;

/// One ratio of the closing table.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    /// What is divided by what, and where.
    pub name: &'static str,
    /// `None`: one of the two figures is missing (the run that makes it failed).
    pub value: Option<f64>,
    /// The target, for the ratios that have one.
    pub target: Option<f64>,
}

impl Ratio {
    /// MET / MISSED against the target, NOT MEASURED without a value, `-` without a target.
    pub fn verdict(&self) -> &'static str {
        match (self.value, self.target) {
            (None, _) => "NOT MEASURED",
            (Some(v), Some(t)) if v >= t => "MET",
            (Some(_), Some(_)) => "MISSED",
            (Some(_), None) => "-",
        }
    }
}

/// The ratios from the hosted bench's and the image's medians.
pub fn ratios(hosted: &BTreeMap<String, f64>, guest: &BTreeMap<String, f64>) -> Vec<Ratio> {
    let r = |m: &BTreeMap<String, f64>, a: &str, b: &str| match (m.get(a), m.get(b)) {
        (Some(x), Some(y)) if *y > 0.0 && x.is_finite() && y.is_finite() => Some(x / y),
        _ => None,
    };
    let t = Some(SPSC_TARGET);
    vec![
        Ratio {
            name: "hosted: ring / ArrayQueue, SPSC, batches of 64",
            value: r(hosted, "hosted_spsc_ring_msgs_per_s", "hosted_spsc_arrayqueue_msgs_per_s"),
            target: t,
        },
        Ratio {
            name: "hosted: ring / std sync_channel, SPSC",
            value: r(hosted, "hosted_spsc_ring_msgs_per_s", "hosted_spsc_sync_channel_msgs_per_s"),
            target: None,
        },
        Ratio {
            name: "hosted: ring / ArrayQueue, MPSC (2 producers)",
            value: r(hosted, "hosted_mpsc2_ring_msgs_per_s", "hosted_mpsc2_arrayqueue_msgs_per_s"),
            target: None,
        },
        Ratio {
            name: "hosted: ring / std sync_channel, MPSC (2 producers)",
            value: r(hosted, "hosted_mpsc2_ring_msgs_per_s", "hosted_mpsc2_sync_channel_msgs_per_s"),
            target: None,
        },
        Ratio {
            name: "hosted: ring / ArrayQueue, one thread",
            value: r(hosted, "hosted_one_thread_ring_msgs_per_s", "hosted_one_thread_arrayqueue_msgs_per_s"),
            target: None,
        },
        Ratio {
            name: "image (TCG): ring / ArrayQueue, SPSC, batches of 64",
            // The median of per-round ratios (each ring run over the queue run
            // right after it), else the ratio of the medians.
            value: guest
                .get("spsc_ring_over_arrayqueue_paired")
                .copied()
                .filter(|v| v.is_finite())
                .or_else(|| r(guest, "spsc_ring_msgs_per_s", "spsc_arrayqueue_msgs_per_s")),
            target: t,
        },
        Ratio {
            name: "image (TCG): ring / ArrayQueue, SPSC, batches of 64, Blocking",
            value: guest
                .get("spsc_blocking_ring_over_arrayqueue_paired")
                .copied()
                .filter(|v| v.is_finite())
                .or_else(|| r(guest, "spsc_blocking_ring_msgs_per_s", "spsc_blocking_arrayqueue_msgs_per_s")),
            target: t,
        },
        Ratio {
            name: "image (TCG): ring / ArrayQueue, SPSC, one CPU, spin+yield",
            value: r(guest, "same_cpu_spsc_ring_msgs_per_s", "same_cpu_spsc_arrayqueue_msgs_per_s"),
            target: None,
        },
        Ratio {
            name: "image (TCG): ring / ArrayQueue, SPSC, one CPU, FiberWait",
            value: r(guest, "same_cpu_fiberwait_ring_msgs_per_s", "same_cpu_fiberwait_arrayqueue_msgs_per_s"),
            target: None,
        },
        Ratio {
            name: "image (TCG): ring FiberWait / ring spin+yield, one CPU",
            value: r(guest, "same_cpu_fiberwait_ring_msgs_per_s", "same_cpu_spsc_ring_msgs_per_s"),
            target: None,
        },
        Ratio {
            name: "image (TCG): ring / ArrayQueue, one thread",
            value: r(guest, "one_thread_ring_msgs_per_s", "one_thread_arrayqueue_msgs_per_s"),
            target: None,
        },
        Ratio {
            name: "image (TCG): ring (blocking) / kernel sync_channel",
            value: r(guest, "ring_msgs_per_s", "channel_msgs_per_s"),
            target: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_lines() {
        assert_eq!(parse_line("bench: ring_msgs_per_s 2706625 msg/s"), Some(("ring_msgs_per_s".into(), 2706625.0, "msg/s".into())));
        assert_eq!(parse_line("bench: x nope"), None);
        assert_eq!(parse_line("threads: ok"), None);
    }

    #[test]
    fn verdicts_are_never_hidden() {
        let mut hosted = BTreeMap::new();
        hosted.insert("hosted_spsc_ring_msgs_per_s".to_string(), 250.0);
        hosted.insert("hosted_spsc_arrayqueue_msgs_per_s".to_string(), 100.0);
        let mut guest = BTreeMap::new();
        guest.insert("spsc_ring_msgs_per_s".to_string(), 150.0);
        guest.insert("spsc_arrayqueue_msgs_per_s".to_string(), 100.0);
        let rows = ratios(&hosted, &guest);
        let get = |n: &str| rows.iter().find(|r| r.name == n).expect("row").clone();
        let h = get("hosted: ring / ArrayQueue, SPSC, batches of 64");
        assert_eq!((h.value, h.verdict()), (Some(2.5), "MET"));
        let g = get("image (TCG): ring / ArrayQueue, SPSC, batches of 64");
        assert_eq!((g.value, g.verdict()), (Some(1.5), "MISSED"));
        // The paired per-round ratio, when the guest printed it, is the one judged.
        guest.insert("spsc_ring_over_arrayqueue_paired".to_string(), 2.2);
        let g = ratios(&hosted, &guest).into_iter().find(|r| r.name == g.name).expect("row");
        assert_eq!((g.value, g.verdict()), (Some(2.2), "MET"));
        // A missing figure is a row that says so, not an absent row.
        assert_eq!(get("hosted: ring / std sync_channel, SPSC").verdict(), "NOT MEASURED");
        assert_eq!(rows.len(), 12);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
