//! `cargo bareflow bench tasks`: threads, scheduling and message passing.
//!
//! Two parts, each side by side in one run:
//! - hosted: the Disruptor ring against crossbeam's `ArrayQueue` and
//!   `std::sync::mpsc` (`cargo bench -p bareflow-ring --bench ring`, which runs
//!   them A/B/A/B and prints medians and ratios);
//! - in the unikernel (microvm, 2 vCPUs, TCG): context switch, spawn+join,
//!   cross-CPU round trip, and the ring against the kernel's bounded channel,
//!   from the `ktest bench-tasks` case, `runs` boots, medians.
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
    let status = std::process::Command::new(crate::root::cargo())
        .args(["bench", "-q", "-p", "bareflow-ring", "--bench", "ring"])
        .current_dir(crate::root::repo_root())
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        eprintln!("bench tasks: the hosted ring bench failed ({status}); continuing with the unikernel part");
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
    };
    let mut samples: BTreeMap<String, (Vec<f64>, String)> = BTreeMap::new();
    for i in 0..runs {
        eprintln!("bench tasks: boot {}/{runs}...", i + 1);
        let out = crate::qemu::boot(&guest, &mut |l| l.to_string())?;
        if out.ending != Ending::Code(0) {
            bail!("the bench guest ended with {:?}:\n{}{}", out.ending, out.output(), out.stderr);
        }
        for (name, v, unit) in out.lines.iter().filter_map(|l| parse_line(l)) {
            let e = samples.entry(name).or_insert_with(|| (Vec::new(), unit));
            e.0.push(v);
        }
    }
    let mut medians = BTreeMap::new();
    println!("{:<28} {:>16}  unit", "measure (median)", "value");
    for (name, (v, unit)) in samples.iter_mut() {
        let m = median(v);
        println!("{name:<28} {m:>16.0}  {unit}");
        medians.insert(name.clone(), m);
    }
    if let (Some(r), Some(c)) = (medians.get("ring_msgs_per_s"), medians.get("channel_msgs_per_s")) {
        println!("ratio ring / kernel channel (messages/s, same run): {:.2}x", r / c);
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
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
