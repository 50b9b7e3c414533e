//! `cargo bareflow bench http`: `wrk` against `apps/httpd` as an image (the
//! I/O governor adaptive, polling forced on, interrupts forced) and hosted on
//! this Linux host, rounds interleaved (A/B/C/D, A/B/C/D, ...) so that load on
//! the machine hits every variant alike. Reported: requests/s, p50/p99
//! latency, CPU time per request (QEMU's or the hosted server's user+system
//! time over the wrk run, read from /proc after the process was reaped), and
//! each image variant's ratio to the hosted server. Against a Linux guest
//! under the same QEMU: `cargo bareflow bench suite http`.
use crate::bench::{Stats, iso8601};
use crate::bench_suite::{free_port, http_get, wrk};
use crate::build::{self, Profile};
use crate::qemu::{self, Accel, Boot, Guest, Machine};
use anyhow::{Context, Result, bail};
use bareflow_abi::cmdline::Cmdline;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BODY: &str = "served by the http bench\n";

/// One server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The image, governor adaptive.
    Adaptive,
    /// The image, polling forced (`bareflow.net.poll=on`).
    Polling,
    /// The image, interrupts forced (`bareflow.net.poll=off`).
    Interrupts,
    /// The same app built for Linux, on the host.
    Hosted,
}

impl Variant {
    /// All, in the order of a round.
    pub const ALL: [Variant; 4] = [Variant::Adaptive, Variant::Polling, Variant::Interrupts, Variant::Hosted];

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Adaptive => "image, governor adaptive",
            Variant::Polling => "image, polling forced",
            Variant::Interrupts => "image, interrupts forced",
            Variant::Hosted => "hosted on Linux",
        }
    }

    /// The kernel option it sets, if any.
    pub fn poll_option(self) -> Option<&'static str> {
        match self {
            Variant::Polling => Some("on"),
            Variant::Interrupts => Some("off"),
            _ => None,
        }
    }
}

/// CPU seconds (user + system) of this process's reaped children
/// (`/proc/self/stat` fields 16 and 17, in clock ticks of 1/100 s).
pub fn children_cpu_secs(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces: count from after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field n is f[n - 3].
    let cutime: f64 = f.get(13)?.parse().ok()?;
    let cstime: f64 = f.get(14)?.parse().ok()?;
    Some((cutime + cstime) / 100.0)
}

fn cpu_now() -> Result<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").context("cannot read /proc/self/stat")?;
    children_cpu_secs(&s).context("cannot parse /proc/self/stat")
}

/// What one run measured.
struct Sample {
    rps: f64,
    p50: Option<f64>,
    p99: Option<f64>,
    cpu_us_per_req: f64,
}

fn wait_ready(port: u16, deadline: Duration) -> Result<()> {
    let t = Instant::now();
    loop {
        match http_get(port, "/index.html") {
            Ok((200, body)) if body == BODY.as_bytes() => return Ok(()),
            Ok((st, _)) if t.elapsed() > deadline => bail!("httpd answered {st}, not the page"),
            Err(e) if t.elapsed() > deadline => bail!("httpd did not answer within {deadline:?}: {e}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn drive(port: u16, secs: u32, conns: u32) -> Result<crate::bench_suite::Wrk> {
    wait_ready(port, Duration::from_secs(60))?;
    let url = format!("http://127.0.0.1:{port}/index.html");
    wrk(&url, 1, 2, 2)?; // warm-up
    wrk(&url, 2, conns, secs)
}

fn sample(w: &crate::bench_suite::Wrk, cpu: f64, secs: u32) -> Result<Sample> {
    if w.errors > 0 || w.requests_per_s <= 0.0 {
        bail!("wrk saw {} errors at {:.0} req/s", w.errors, w.requests_per_s);
    }
    let reqs = w.requests_per_s * f64::from(secs);
    Ok(Sample { rps: w.requests_per_s, p50: w.p50_ms, p99: w.p99_ms, cpu_us_per_req: cpu * 1e6 / reqs })
}

fn run_image(v: Variant, elf: &Path, initfs: &Path, secs: u32, conns: u32) -> Result<Sample> {
    let port = free_port()?;
    let mut cmd = Cmdline::default().with_option("bareflow.app", "httpd");
    if let Some(p) = v.poll_option() {
        cmd = cmd.with_option("bareflow.net.poll", p);
    }
    for a in ["--port", "80", "--max-conns", "256"] {
        cmd = cmd.with_arg(a);
    }
    let guest = Guest {
        machine: Machine::Microvm,
        accel: Accel::Tcg,
        cpus: 1,
        mem: "128M".into(),
        boot: Boot::Kernel { elf: elf.to_path_buf(), initrd: Some(initfs.to_path_buf()), cmdline: cmd.encode() },
        timeout: Duration::from_secs(120 + u64::from(secs)),
        net: Some(vec![(port, 80)]),
        disks: Vec::new(),
        extra: Vec::new(),
        debug_exit: true,
    };
    let stop = AtomicBool::new(false);
    let before = cpu_now()?;
    let (w, out) = std::thread::scope(|s| {
        let g = s.spawn(|| qemu::boot_until(&guest, &mut |l| l.to_string(), &stop));
        let w = drive(port, secs, conns);
        stop.store(true, Ordering::SeqCst);
        (w, g.join())
    });
    let out = out.map_err(|_| anyhow::anyhow!("the guest thread panicked"))??;
    if qemu::interrupted() {
        bail!("interrupted (Ctrl-C): stopped the guest (QEMU pid {})", out.pid);
    }
    let w = w.with_context(|| format!("{}:\n{}", v.name(), out.output()))?;
    sample(&w, cpu_now()? - before, secs)
}

fn run_hosted(bin: &Path, root: &Path, secs: u32, conns: u32) -> Result<Sample> {
    let port = free_port()?;
    let before = cpu_now()?;
    let mut child = std::process::Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--max-conns", "256", "--root"])
        .arg(root)
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let w = drive(port, secs, conns);
    // Stopped by its PID, and reaped, so its CPU time lands in ours.
    let _ = child.kill();
    let _ = child.wait();
    sample(&w?, cpu_now()? - before, secs)
}

/// Entry point.
pub fn main(args: &[String]) -> Result<i32> {
    let (mut runs, mut secs, mut conns) = (3usize, 5u32, 8u32);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |flag: &str| -> Result<u64> {
            it.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0).with_context(|| format!("`{flag}` needs a positive number"))
        };
        match a.as_str() {
            "--runs" => runs = num("--runs")? as usize,
            "--secs" => secs = num("--secs")? as u32,
            "--conns" => conns = num("--conns")? as u32,
            other => bail!("unknown option `{other}`: usage `cargo bareflow bench http [--runs N] [--secs S] [--conns N]` (the Linux-guest comparison is `bench suite http`)"),
        }
    }
    crate::setup::ensure_wrk()?;
    crate::setup::ensure_qemu()?;
    let elf = build::build_image("httpd", Profile::Release)?;
    let root = crate::root::repo_root();
    eprintln!("building httpd for the host...");
    let st = std::process::Command::new(crate::root::cargo())
        .args(["build", "-q", "--release", "-p", "httpd"])
        .current_dir(&root)
        .status()
        .context("cannot run cargo")?;
    if !st.success() {
        bail!("building the hosted httpd failed (cargo's messages are above)");
    }
    let bin = root.join("target").join("release").join("httpd");
    let dir = root.join("target").join("bareflow").join("bench-http");
    std::fs::create_dir_all(&dir)?;
    let page = dir.join("index.html");
    std::fs::write(&page, BODY)?;
    let initfs = dir.join("initfs.img");
    crate::trust::pack_files_default(&[(page.clone(), "index.html".into())], &initfs)?;
    let load_start = crate::llm::load_average();
    let mut samples: Vec<(Variant, Vec<Sample>)> = Variant::ALL.iter().map(|&v| (v, Vec::new())).collect();
    for round in 0..runs {
        for (v, got) in samples.iter_mut() {
            eprintln!("bench http: {} round {}/{runs} (wrk -t2 -c{conns} -d{secs}s)...", v.name(), round + 1);
            let r = match v {
                Variant::Hosted => run_hosted(&bin, &dir, secs, conns),
                _ => run_image(*v, &elf, &initfs, secs, conns),
            };
            match r {
                Ok(s) => got.push(s),
                Err(e) => eprintln!("bench http: {} round {}: {e:#}; not counted", v.name(), round + 1),
            }
        }
    }
    let med = |xs: Vec<f64>| Stats::of(&xs).map(|s| s.median);
    let hosted_rps = med(samples[3].1.iter().map(|s| s.rps).collect());
    println!(
        "\n{:<26} {:>10} {:>9} {:>9} {:>12} {:>10}",
        "httpd (median of rounds)", "req/s", "p50 ms", "p99 ms", "CPU us/req", "vs hosted"
    );
    let mut rows = Vec::new();
    for (v, got) in &samples {
        let rps = med(got.iter().map(|s| s.rps).collect());
        let p50 = med(got.iter().filter_map(|s| s.p50).collect());
        let p99 = med(got.iter().filter_map(|s| s.p99).collect());
        let cpu = med(got.iter().map(|s| s.cpu_us_per_req).collect());
        let ratio = rps.zip(hosted_rps).map(|(a, b)| a / b);
        let f = |x: Option<f64>, p: usize| x.map_or("-".to_string(), |x| format!("{x:.p$}"));
        println!(
            "{:<26} {:>10} {:>9} {:>9} {:>12} {:>10}",
            v.name(),
            f(rps, 0),
            f(p50, 2),
            f(p99, 2),
            f(cpu, 0),
            ratio.map_or("-".into(), |r| format!("{r:.2}x"))
        );
        rows.push(json!({ "variant": v.name(), "rounds": got.len(), "req_per_s": rps, "p50_ms": p50, "p99_ms": p99, "cpu_us_per_req": cpu, "vs_hosted": ratio }));
    }
    println!("(the image runs under TCG on 1 vCPU; hosted runs natively: the ratio is what emulation costs, not a target)");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let record = json!({
        "date": iso8601(now),
        "host_kernel": crate::accel::host_kernel(),
        "qemu": crate::accel::qemu_version().unwrap_or_default(),
        "accel": "tcg",
        "wrk": format!("-t2 -c{conns} -d{secs}s"),
        "runs": runs,
        "load_average": [load_start, crate::llm::load_average()],
        "rows": rows,
    });
    let hist = root.join("bench").join("history");
    std::fs::create_dir_all(&hist)?;
    let path = hist.join("http.jsonl");
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
    fn reads_childrens_cpu_time_from_proc_stat() {
        // pid (comm with a space) state ppid ... utime stime cutime cstime ...
        let stat = "1234 (my prog) S 1 2 3 4 5 6 7 8 9 10 11 12 250 130 16 17 18 19";
        assert_eq!(children_cpu_secs(stat), Some(3.8));
        assert_eq!(children_cpu_secs("1234 (x) S 1 2"), None);
    }

    #[test]
    fn each_image_variant_sets_its_governor_option() {
        assert_eq!(Variant::Polling.poll_option(), Some("on"));
        assert_eq!(Variant::Interrupts.poll_option(), Some("off"));
        assert_eq!(Variant::Adaptive.poll_option(), None);
        assert_eq!(Variant::Hosted.poll_option(), None);
    }
}
