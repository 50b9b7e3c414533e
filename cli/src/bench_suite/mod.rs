//! `cargo bareflow bench` (no name): BareFlow beside a Linux guest doing the
//! same job under the same QEMU, machine, accelerator and CPU count, each row
//! run A/B/A/B in one session so that noise on this shared machine hits both.
//!
//! Rows: `boot` (QEMU start to the app's first line and to QEMU's exit, hello,
//! microvm and q35), `footprint` (image size; the least `-m` that still runs
//! hello, httpd and llm correctly, bisected), `http` (`wrk` against httpd over
//! virtio-net and QEMU user networking), `llm` (tokens/s of apps/llm on the
//! same embedded checkpoint), and `tasks`/`jit` (their own benches' last
//! recorded figures; they are not re-run here). The Linux guest is
//! [`crate::baseline`]. Every figure is measured in this run unless its note
//! says where it comes from; a missed target is printed as MISSED.
//!
//! Output: the table on stdout, `bench/history/suite/<date>.json`, and
//! `bench/charts/<row>.svg` (each row's advantage over all recorded runs).

pub mod bisect;
pub mod report;

use crate::baseline::{self, GuestSpec, Linux, initramfs};
use crate::build::{self, Profile};
use crate::qemu::{self, Accel, Boot, Ending, Guest, Machine, Outcome};
use anyhow::{Context, Result, bail};
use bareflow_abi::cmdline::Cmdline;
use report::{Better, Measure};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Rows, in the order they run.
pub const ROWS: &[&str] = &["boot", "footprint", "http", "llm", "tasks", "jit"];

/// Targets (BareFlow's advantage as a factor).
pub const TARGET_FIRST_OUTPUT: f64 = 20.0;
pub const TARGET_MEMORY: f64 = 10.0;
pub const TARGET_HTTP: f64 = 1.5;
pub const TARGET_LLM: f64 = 1.0;

/// The line both guests' hello prints first.
const HELLO_FIRST_LINE: &str = "Hello from BareFlow!";
/// The guests' `-m` for the rows that do not bisect it.
const MEM: &str = "256M";
/// llm's arguments: greedy, so both guests must tell the same story.
const LLM_ARGS: &[&str] = &["-t", "0", "-n", "256"];
/// llm's arguments for the memory bisection (shorter; the same correctness check).
const LLM_PROBE_ARGS: &[&str] = &["-t", "0", "-n", "32"];

/// Options of `bench` (the suite).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub rows: Vec<String>,
    /// A/B rounds per row.
    pub runs: usize,
    /// wrk's duration per round, seconds.
    pub http_secs: u32,
    /// wrk's connections.
    pub http_conns: u32,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options { rows: Vec::new(), runs: 3, http_secs: 10, http_conns: 8 };
        let mut it = args.iter();
        let num = |it: &mut std::slice::Iter<String>, flag: &str| -> Result<u32> {
            let v = it.next().with_context(|| format!("`{flag}` needs a number"))?;
            v.parse().ok().filter(|&n| n > 0).with_context(|| format!("`{flag} {v}`: expected a positive number"))
        };
        while let Some(a) = it.next() {
            match a.as_str() {
                "--runs" => o.runs = num(&mut it, "--runs")? as usize,
                "--http-secs" => o.http_secs = num(&mut it, "--http-secs")?,
                "--http-conns" => o.http_conns = num(&mut it, "--http-conns")?,
                s if ROWS.contains(&s) => {
                    if !o.rows.iter().any(|r| r == s) {
                        o.rows.push(s.to_string());
                    }
                }
                s => bail!("unknown row or option `{s}`: rows are {}; options --runs N, --http-secs S, --http-conns N", ROWS.join(", ")),
            }
        }
        if o.rows.is_empty() {
            o.rows = ROWS.iter().map(|r| r.to_string()).collect();
        }
        o.rows.sort_by_key(|r| ROWS.iter().position(|x| x == r));
        Ok(o)
    }
}

/// Which guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    BareFlow,
    Linux,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::BareFlow => "BareFlow",
            Side::Linux => "Linux",
        }
    }
}

/// What one boot gave.
struct Timed {
    out: Outcome,
    /// QEMU start to the first line containing the marker.
    first_ms: Option<f64>,
    /// QEMU start to QEMU's exit.
    total_ms: f64,
}

/// The app's exit code: isa-debug-exit for BareFlow, the init script's mark for Linux.
fn app_code(side: Side, out: &Outcome) -> Option<i32> {
    match (side, &out.ending) {
        (Side::BareFlow, Ending::Code(c)) => Some(*c),
        (Side::Linux, Ending::NoCode) => out.lines.iter().find_map(|l| initramfs::parse_exit(l)),
        _ => None,
    }
}

fn describe(out: &Outcome) -> String {
    let tail: Vec<&String> = out.lines.iter().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
    let tail: Vec<&str> = tail.iter().map(|s| s.as_str()).collect();
    format!("ended {:?} after {:.1} s; last lines:\n    {}\n  {}", out.ending, out.elapsed.as_secs_f64(), tail.join("\n    "), out.stderr.trim())
}

struct Suite {
    opts: Options,
    linux: Linux,
    accel: Accel,
    tsc_khz: Option<u64>,
    images: HashMap<String, PathBuf>,
    /// The initfs with `index.html` for BareFlow's httpd.
    www_initfs: PathBuf,
    /// The story llm tells on the host (hosted build), per argument list: the check for both guests.
    reference: HashMap<Vec<String>, String>,
}

fn words(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

impl Suite {
    fn spec(&self, machine: Machine, mem: &str, timeout: Duration, net: Option<Vec<(u16, u16)>>) -> GuestSpec {
        GuestSpec { machine, accel: self.accel, cpus: 1, mem: mem.into(), timeout, net, tsc_khz: self.tsc_khz }
    }

    /// The guest for `side` running `app args`. httpd gets the static address
    /// of QEMU's user network on both sides, and `index.html` to serve.
    fn guest(&self, side: Side, spec: &GuestSpec, app: &str, args: &[String]) -> Result<Guest> {
        match side {
            Side::Linux => {
                let mut a = args.to_vec();
                if app == "httpd" {
                    a.extend(words(&["--bind", "0.0.0.0", "--root", "/www"]));
                }
                self.linux.guest(spec, app, &a)
            }
            Side::BareFlow => {
                let elf = self.images.get(app).with_context(|| format!("no image built for {app}"))?.clone();
                let mut c = Cmdline::default().with_option("bareflow.app", app);
                if spec.net.is_some() {
                    c = c.with_option("net.ip", "10.0.2.15/24").with_option("net.gw", "10.0.2.2");
                }
                c.args = args.to_vec();
                let initrd = (app == "httpd").then(|| self.www_initfs.clone());
                Ok(Guest {
                    machine: spec.machine,
                    accel: spec.accel,
                    cpus: spec.cpus,
                    mem: spec.mem.clone(),
                    boot: Boot::Kernel { elf, initrd, cmdline: c.encode() },
                    timeout: spec.timeout,
                    net: spec.net.clone(),
                    disks: Vec::new(),
                    extra: Vec::new(),
                    debug_exit: true,
                })
            }
        }
    }

    /// Boots `guest`, timing the first line containing `marker` and the exit; stops it early once `stop` is set.
    fn timed(&self, guest: &Guest, marker: &str, stop: &AtomicBool) -> Result<Timed> {
        let start = Instant::now();
        let mut first = None;
        let out = qemu::boot_until(
            guest,
            &mut |l| {
                if first.is_none() && l.contains(marker) {
                    first = Some(start.elapsed());
                }
                l.to_string()
            },
            stop,
        )?;
        let total = start.elapsed();
        if qemu::interrupted() {
            bail!("interrupted (Ctrl-C): stopped the guest (QEMU pid {})", out.pid);
        }
        Ok(Timed { first_ms: first.map(|d| d.as_secs_f64() * 1000.0), total_ms: total.as_secs_f64() * 1000.0, out })
    }

    // ---- boot ----

    fn row_boot(&self, out: &mut Vec<Measure>) -> Result<()> {
        for machine in [Machine::Microvm, Machine::Q35] {
            let mut first = Measure::new("boot", &format!("{}: start -> first output", machine.name()), "ms", Better::Lower, Some(TARGET_FIRST_OUTPUT));
            first.note = format!("hello, -m {MEM}, 1 vCPU; QEMU spawn to the line `{HELLO_FIRST_LINE}`");
            let mut exit = Measure::new("boot", &format!("{}: start -> QEMU exit", machine.name()), "ms", Better::Lower, None);
            let spec = self.spec(machine, MEM, Duration::from_secs(90), None);
            for round in 0..self.opts.runs {
                for side in [Side::BareFlow, Side::Linux] {
                    eprintln!("bench boot: {} {} round {}/{}...", machine.name(), side.name(), round + 1, self.opts.runs);
                    let t = self.timed(&self.guest(side, &spec, "hello", &[])?, HELLO_FIRST_LINE, &AtomicBool::new(false))?;
                    match (app_code(side, &t.out), t.first_ms) {
                        (Some(0), Some(f)) => {
                            first.push(round, side == Side::BareFlow, f);
                            exit.push(round, side == Side::BareFlow, t.total_ms);
                        }
                        _ => eprintln!("bench boot: {} hello on {} did not run correctly: {}", side.name(), machine.name(), describe(&t.out)),
                    }
                }
            }
            out.push(first);
            out.push(exit);
        }
        Ok(())
    }

    // ---- footprint ----

    /// Whether `app` runs correctly on `side` with `-m mem_mib`.
    fn runs_with(&self, side: Side, app: &str, mem_mib: u32) -> Result<bool> {
        let mem = format!("{mem_mib}M");
        let timeout = Duration::from_secs(match (side, app) {
            (Side::BareFlow, _) => 40,
            (Side::Linux, _) => 60,
        });
        let ok = match app {
            "hello" => {
                let spec = self.spec(Machine::Microvm, &mem, timeout, None);
                let t = self.timed(&self.guest(side, &spec, "hello", &[])?, HELLO_FIRST_LINE, &AtomicBool::new(false))?;
                app_code(side, &t.out) == Some(0) && t.first_ms.is_some()
            }
            "llm" => {
                let args = words(LLM_PROBE_ARGS);
                let spec = self.spec(Machine::Microvm, &mem, timeout, None);
                let t = self.timed(&self.guest(side, &spec, "llm", &args)?, "achieved tok/s", &AtomicBool::new(false))?;
                let story = self.reference.get(&args).map(String::as_str).unwrap_or("");
                app_code(side, &t.out) == Some(0) && t.first_ms.is_some() && t.out.lines.iter().any(|l| l.contains(story))
            }
            "httpd" => {
                let port = free_port()?;
                let spec = self.spec(Machine::Microvm, &mem, timeout, Some(vec![(port, 80)]));
                let guest = self.guest(side, &spec, "httpd", &words(&["--port", "80"]))?;
                let (served, _t) = self.with_server(&guest, port, timeout, &mut |port| {
                    let (status, body) = http_get(port, "/index.html")?;
                    Ok(status == 200 && body == baseline::INDEX_HTML)
                })?;
                served.unwrap_or(false)
            }
            other => bail!("no footprint check for app `{other}`"),
        };
        eprintln!("bench footprint: {} {app} -m {mem}: {}", side.name(), if ok { "runs" } else { "fails" });
        Ok(ok)
    }

    fn row_footprint(&self, out: &mut Vec<Measure>) -> Result<()> {
        let linux_size = self.linux.size()? as f64 / 1024.0;
        for app in ["hello", "httpd", "llm"] {
            let elf = self.images.get(app).with_context(|| format!("no image for {app}"))?;
            let mut size = Measure::new("footprint", &format!("{app}: image size"), "KiB", Better::Lower, None);
            size.bareflow.push(baseline::stripped(elf)?.len() as f64 / 1024.0);
            size.baseline.push(linux_size);
            size.note = "BareFlow: the stripped ELF; Linux: vmlinuz + initramfs (busybox, modules and all three apps)".into();
            out.push(size);
        }
        for app in ["hello", "httpd", "llm"] {
            let target = (app != "llm").then_some(TARGET_MEMORY);
            let mut mem = Measure::new("footprint", &format!("{app}: least -m that runs"), "MiB", Better::Lower, target);
            mem.note = "microvm, bisected 1..1024 MiB (one boot per probe, A/B in turn)".into();
            let mut bf = bisect::Bisect::new(1, 1024);
            let mut lx = bisect::Bisect::new(1, 1024);
            loop {
                let (a, b) = (bf.next(), lx.next());
                if a.is_none() && b.is_none() {
                    break;
                }
                if let Some(m) = a {
                    let ok = self.runs_with(Side::BareFlow, app, m)?;
                    bf.record(m, ok);
                }
                if let Some(m) = b {
                    let ok = self.runs_with(Side::Linux, app, m)?;
                    lx.record(m, ok);
                }
            }
            mem.bareflow.extend(bf.result().map(f64::from));
            mem.baseline.extend(lx.result().map(f64::from));
            if bf.result().is_none() || lx.result().is_none() {
                mem.note.push_str("; a side did not run even with 1024 MiB");
            }
            out.push(mem);
        }
        Ok(())
    }

    // ---- http ----

    /// Boots `guest` (an httpd listening on the forwarded `port`), waits until
    /// it serves `/index.html`, runs `drive`, then stops the guest by PID.
    fn with_server<T: Send>(
        &self,
        guest: &Guest,
        port: u16,
        ready_within: Duration,
        drive: &mut (dyn FnMut(u16) -> Result<T> + Send),
    ) -> Result<(Option<T>, Timed)> {
        let stop = AtomicBool::new(false);
        let gone = AtomicBool::new(false);
        std::thread::scope(|s| {
            let driver = s.spawn(|| {
                // Stops the guest however this thread ends, a panic included.
                struct StopOnDrop<'a>(&'a AtomicBool);
                impl Drop for StopOnDrop<'_> {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
                let _stop = StopOnDrop(&stop);
                let deadline = Instant::now() + ready_within;
                loop {
                    if gone.load(Ordering::SeqCst) || Instant::now() > deadline {
                        break None;
                    }
                    match http_get(port, "/index.html") {
                        Ok((200, _)) => break Some(drive(port)),
                        _ => std::thread::sleep(Duration::from_millis(200)),
                    }
                }
            });
            let timed = self.timed(guest, "httpd: serving", &stop);
            gone.store(true, Ordering::SeqCst);
            let driven = driver.join().map_err(|_| anyhow::anyhow!("the HTTP driver thread panicked"))?;
            let timed = timed?;
            Ok((driven.transpose()?, timed))
        })
    }

    fn row_http(&self, out: &mut Vec<Measure>) -> Result<()> {
        crate::setup::ensure_wrk()?;
        let (secs, conns) = (self.opts.http_secs, self.opts.http_conns);
        let mut rps = Measure::new("http", "wrk requests/s, index.html", "req/s", Better::Higher, Some(TARGET_HTTP));
        rps.note = format!("microvm, 1 vCPU, virtio-net, user net hostfwd; warm-up wrk -c2 -d2s, then wrk -t2 -c{conns} -d{secs}s");
        let mut p99 = Measure::new("http", "wrk latency p99", "ms", Better::Lower, None);
        for round in 0..self.opts.runs {
            for side in [Side::BareFlow, Side::Linux] {
                eprintln!("bench http: {} round {}/{}...", side.name(), round + 1, self.opts.runs);
                let port = free_port()?;
                let spec = self.spec(Machine::Microvm, MEM, Duration::from_secs(120 + u64::from(secs)), Some(vec![(port, 80)]));
                let guest = self.guest(side, &spec, "httpd", &words(&["--port", "80", "--max-conns", "256"]))?;
                let url = format!("http://127.0.0.1:{port}/index.html");
                let (res, t) = self.with_server(&guest, port, Duration::from_secs(90), &mut |_| {
                    wrk(&url, 1, 2, 2)?;
                    wrk(&url, 2, conns, secs)
                })?;
                match res {
                    Some(w) if w.errors == 0 && w.requests_per_s > 0.0 => {
                        rps.push(round, side == Side::BareFlow, w.requests_per_s);
                        if let Some(p) = w.p99_ms {
                            p99.push(round, side == Side::BareFlow, p);
                        }
                    }
                    Some(w) => {
                        eprintln!("bench http: {} round {}: wrk saw {} errors ({:.1} req/s); not counted", side.name(), round + 1, w.errors, w.requests_per_s);
                        rps.note.push_str(&format!("; {} round {}: {} wrk errors, not counted", side.name(), round + 1, w.errors));
                    }
                    None => eprintln!("bench http: {} httpd never served /index.html: {}", side.name(), describe(&t.out)),
                }
            }
        }
        out.push(rps);
        out.push(p99);
        Ok(())
    }

    // ---- llm ----

    fn row_llm(&self, out: &mut Vec<Measure>) -> Result<()> {
        let args = words(LLM_ARGS);
        let story = self.reference.get(&args).cloned().unwrap_or_default();
        let mut tok = Measure::new("llm", "stories260K greedy 256 tokens", "tok/s", Better::Higher, Some(TARGET_LLM));
        tok.note = "microvm, 1 vCPU, -m 256M, the embedded checkpoint in both guests (`llm -t 0 -n 256`); text checked against the host run".into();
        for round in 0..self.opts.runs {
            for side in [Side::BareFlow, Side::Linux] {
                eprintln!("bench llm: {} round {}/{}...", side.name(), round + 1, self.opts.runs);
                let spec = self.spec(Machine::Microvm, MEM, Duration::from_secs(300), None);
                let t = self.timed(&self.guest(side, &spec, "llm", &args)?, "achieved tok/s", &AtomicBool::new(false))?;
                let rate = t.out.lines.iter().find_map(|l| parse_tok_s(l));
                let same = !story.is_empty() && t.out.lines.iter().any(|l| l.contains(&story));
                match (app_code(side, &t.out), rate, same) {
                    (Some(0), Some(r), true) => tok.push(round, side == Side::BareFlow, r),
                    (Some(0), Some(r), false) => {
                        eprintln!("bench llm: {} told a different story than the host run ({r:.1} tok/s): not counted", side.name());
                        tok.note.push_str(&format!("; {} round {}: text differs, not counted", side.name(), round + 1));
                    }
                    _ => eprintln!("bench llm: {} did not finish: {}", side.name(), describe(&t.out)),
                }
            }
        }
        out.push(tok);
        out.extend(history_llm_host());
        Ok(())
    }
}

/// `achieved tok/s: X` (run.c's line, printed by apps/llm on stderr).
pub fn parse_tok_s(line: &str) -> Option<f64> {
    line.trim().strip_prefix("achieved tok/s:")?.trim().parse().ok().filter(|x: &f64| x.is_finite())
}

/// The host figure of `cargo bareflow bench llm` (engine vs the C forward pass),
/// from its last history record: not re-run here (it takes minutes).
fn history_llm_host() -> Option<Measure> {
    let path = crate::root::repo_root().join("bench/history/llm.jsonl");
    let text = std::fs::read_to_string(&path).ok()?;
    let last: serde_json::Value = serde_json::from_str(text.lines().rev().find(|l| !l.trim().is_empty())?).ok()?;
    let row = last["rows"].as_array()?.iter().find(|r| r["model"] == "15M" && r["threads"] == 1)?;
    let mut m = Measure::new("llm", "host, 15M shape, 1 thread: engine vs C", "tok/s", Better::Higher, Some(TARGET_LLM));
    m.bareflow.push(row["fp32_tok_s"].as_f64()?);
    m.baseline.push(row["c_tok_s"].as_f64()?);
    m.baseline_name = "llama2.c-style C forward pass (bench/baselines/llm.c, -O3 -march=native -ffast-math)".into();
    let when = last["unix_time"].as_u64().map(crate::bench::iso8601).unwrap_or_else(|| "an unknown date".into());
    m.note = format!("not re-run: the last `cargo bareflow bench llm` record ({when}, bench/history/llm.jsonl)");
    Some(m)
}

/// The last records of the tasks and jit benches, as info lines (not re-run).
fn history_row(row: &str) -> Vec<Measure> {
    let file = crate::root::repo_root().join(format!("bench/history/{row}.jsonl"));
    let Some(last) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()).and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok()))
    else {
        let mut m = Measure::new(row, "no record", "-", Better::Higher, None);
        m.note = format!("run `cargo bareflow bench {row}` (not run by the suite)");
        return vec![m];
    };
    let when = last["date"]
        .as_str()
        .map(str::to_string)
        .or_else(|| last["unix_time"].as_u64().map(crate::bench::iso8601))
        .unwrap_or_default();
    let note = format!("not re-run by the suite: last `cargo bareflow bench {row}` record ({when}); no Linux-guest counterpart yet");
    let mut out = Vec::new();
    match row {
        "tasks" => {
            let med = &last["unikernel_medians"];
            if let (Some(r), Some(c)) = (med["ring_msgs_per_s"].as_f64(), med["channel_msgs_per_s"].as_f64()) {
                let mut m = Measure::new("tasks", "in-image ring vs kernel channel", "msg/s", Better::Higher, None);
                m.bareflow.push(r);
                m.baseline.push(c);
                m.baseline_name = "the kernel's bounded channel (same image)".into();
                m.note = note.clone();
                out.push(m);
            }
        }
        "jit" => {
            let kernels = last["kernels"].as_array().cloned().unwrap_or_default();
            // The per-token kernels (the prefill's batched products have their own rows).
            let (aot, jit): (f64, f64) = kernels
                .iter()
                .filter(|k| !k["model"].as_str().unwrap_or("").contains("matmat"))
                .filter_map(|k| Some((k["aot_ns"].as_f64()?, k["jit_ns"].as_f64()?)))
                .fold((0.0, 0.0), |(a, j), (x, y)| (a + x, j + y));
            if aot > 0.0 && jit > 0.0 {
                let mut m = Measure::new("jit", "matvec kernels, summed time", "ns", Better::Lower, None);
                m.bareflow.push(jit);
                m.baseline.push(aot);
                m.baseline_name = "the ahead-of-time SIMD kernels (host)".into();
                m.note = note.clone();
                out.push(m);
            }
        }
        _ => {}
    }
    if out.is_empty() {
        let mut m = Measure::new(row, "unreadable record", "-", Better::Higher, None);
        m.note = format!("{} has no figure the suite knows; run `cargo bareflow bench {row}`", file.display());
        out.push(m);
    }
    out
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a local TCP port")?;
    Ok(l.local_addr()?.port())
}

/// The status and body of an HTTP/1.1 response, once complete (by Content-Length).
pub fn parse_http_response(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.strip_prefix("HTTP/1.")?.get(2..)?.split_whitespace().next()?.parse().ok()?;
    let len: usize = lines
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")).map(|(_, v)| v.trim().parse().ok()))
        .flatten()?;
    let body = bytes.get(head_end + 4..head_end + 4 + len)?;
    Some((status, body))
}

/// `GET path` on 127.0.0.1:port; (status, body).
pub(crate) fn http_get(port: u16, path: &str) -> Result<(u16, Vec<u8>)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((st, body)) = parse_http_response(&buf) {
            return Ok((st, body.to_vec()));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed after {} bytes without a complete response", buf.len());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What wrk reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Wrk {
    pub requests_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Socket errors plus non-2xx/3xx responses.
    pub errors: u64,
}

fn parse_duration_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (s.strip_suffix('s')?, 1000.0)
    };
    num.parse::<f64>().ok().map(|x| x * scale)
}

/// Parses wrk's report (with `--latency`).
pub fn parse_wrk(text: &str) -> Option<Wrk> {
    let mut w = Wrk { requests_per_s: f64::NAN, p50_ms: None, p99_ms: None, errors: 0 };
    for l in text.lines().map(str::trim) {
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            w.requests_per_s = v.trim().parse().ok()?;
        } else if let Some(v) = l.strip_prefix("50%") {
            w.p50_ms = parse_duration_ms(v);
        } else if let Some(v) = l.strip_prefix("99%") {
            w.p99_ms = parse_duration_ms(v);
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            w.errors += v.trim().parse::<u64>().ok()?;
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            for part in v.split(',') {
                w.errors += part.split_whitespace().nth(1)?.parse::<u64>().ok()?;
            }
        }
    }
    w.requests_per_s.is_finite().then_some(w)
}

/// Runs wrk (it stops itself after `secs`).
pub(crate) fn wrk(url: &str, threads: u32, conns: u32, secs: u32) -> Result<Wrk> {
    let out = std::process::Command::new("wrk")
        .args([format!("-t{threads}"), format!("-c{conns}"), format!("-d{secs}s"), "--latency".into(), "--timeout".into(), "5s".into(), url.into()])
        .output()
        .context("could not run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed ({}): {}{}", out.status, text, String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("cannot read wrk's report:\n{text}"))
}

/// The first line of llm's story for `args`, from the hosted (musl) build run on the host.
fn reference_story(args: &[String]) -> Result<String> {
    let bin = baseline::cache_dir().join("cargo").join(baseline::MUSL).join("release").join("llm");
    let out = std::process::Command::new(&bin).args(args).output().with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!("{} {} failed: {}", bin.display(), args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| l.len() >= 8)
        .map(str::to_string)
        .with_context(|| format!("{} printed no story", bin.display()))
}

/// CPU model and count, memory: the "machine" of a figure.
fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_string())).unwrap_or_default();
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cpus} x {model}, {mem_gib:.0} GiB")
}

/// Redraws `bench/charts/<row>.svg` from every record in `bench/history/suite/`.
pub fn write_charts() -> Result<()> {
    let root = crate::root::repo_root();
    let records = report::read_records(&root.join("bench/history/suite"))?;
    let charts = root.join("bench/charts");
    std::fs::create_dir_all(&charts).with_context(|| format!("cannot create {}", charts.display()))?;
    for row in ROWS {
        let p = charts.join(format!("{row}.svg"));
        if report::write_chart(&p, row, &records)? {
            println!("chart: {}", p.display());
        }
    }
    Ok(())
}

/// `cargo bareflow bench [ROW...] [--runs N] [--http-secs S] [--http-conns N]`.
pub fn main(args: &[String]) -> Result<i32> {
    let opts = Options::parse(args)?;
    crate::setup::ensure_qemu()?;
    let load_start = crate::llm::load_average();
    let needs_guests = opts.rows.iter().any(|r| ["boot", "footprint", "http", "llm"].contains(&r.as_str()));
    let mut measures = Vec::new();
    let mut linux_package = String::new();
    let mut accel_name = "tcg".to_string();
    if needs_guests {
        let linux = baseline::ensure()?;
        linux_package = linux.package.clone();
        let mut images = HashMap::new();
        for app in baseline::APPS {
            images.insert(app.to_string(), build::build_image(app, Profile::Release)?);
        }
        // The image decides the accelerator; the Linux guest gets the same one.
        let accel = crate::accel::resolve(crate::accel::AccelChoice::Auto, &images["hello"])?;
        accel_name = accel.name().to_string();
        let work = crate::root::ensure_work_dir()?;
        let index = work.join("bench-index.html");
        std::fs::write(&index, baseline::INDEX_HTML).with_context(|| format!("cannot write {}", index.display()))?;
        let www_initfs = work.join("bench-www.img");
        crate::run::pack_files(&[(index, "index.html".into())], &www_initfs)?;
        let mut reference = HashMap::new();
        for a in [LLM_ARGS, LLM_PROBE_ARGS] {
            let a = words(a);
            reference.insert(a.clone(), reference_story(&a)?);
        }
        let tsc_khz = baseline::host_tsc_khz();
        if tsc_khz.is_none() {
            eprintln!("bench: warning: the host TSC frequency is unknown; Linux on microvm may hang calibrating it");
        }
        let suite = Suite { opts: opts.clone(), linux, accel, tsc_khz, images, www_initfs, reference };
        for row in &opts.rows {
            let before = measures.len();
            let r = match row.as_str() {
                "boot" => suite.row_boot(&mut measures),
                "footprint" => suite.row_footprint(&mut measures),
                "http" => suite.row_http(&mut measures),
                "llm" => suite.row_llm(&mut measures),
                _ => Ok(()),
            };
            if let Err(e) = r {
                if qemu::interrupted() {
                    return Err(e);
                }
                let mut m = Measure::new(row, "row failed", "-", Better::Higher, Some(1.0));
                m.note = format!("{e:#}");
                eprintln!("bench {row}: failed: {e:#}");
                measures.truncate(before);
                measures.push(m);
            }
        }
    }
    for row in opts.rows.iter().filter(|r| ["tasks", "jit"].contains(&r.as_str())) {
        measures.extend(history_row(row));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let record = report::Record {
        date: crate::bench::iso8601(now),
        machine: machine_description(),
        host_kernel: crate::accel::host_kernel(),
        qemu: crate::accel::qemu_version().unwrap_or_default(),
        accel: accel_name,
        linux_package,
        runs: opts.runs,
        load: load_start.zip(crate::llm::load_average()),
        measures: measures.iter().map(report::RecordedMeasure::of).collect(),
    };
    println!(
        "bench: BareFlow vs {} under {} ({}), {} A/B rounds per row, {}",
        if record.linux_package.is_empty() { "recorded baselines" } else { &record.linux_package },
        record.qemu,
        record.accel,
        opts.runs,
        record.date
    );
    match record.load {
        Some((a, b)) => println!("machine: {}; load average {a:.2} at the start, {b:.2} at the end", record.machine),
        None => println!("machine: {}", record.machine),
    }
    print!("{}", report::table(&measures));
    let root = crate::root::repo_root();
    let path = report::write_record(&root.join("bench/history/suite"), &record)?;
    println!("history: {}", path.display());
    write_charts()?;
    let missed = measures.iter().filter(|m| matches!(m.verdict(), report::Verdict::Missed | report::Verdict::NoData)).count();
    if missed > 0 {
        println!("{missed} target(s) MISSED or without data (see the table)");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_select_rows_in_suite_order() {
        let o = Options::parse(&words(&["llm", "boot", "--runs", "2", "boot"])).unwrap();
        assert_eq!(o.rows, words(&["boot", "llm"]));
        assert_eq!(o.runs, 2);
        assert_eq!(Options::parse(&[]).unwrap().rows.len(), ROWS.len());
        let e = Options::parse(&words(&["bogus"])).unwrap_err();
        assert!(format!("{e}").contains("rows are boot, footprint"), "{e}");
        assert!(Options::parse(&words(&["--runs", "0"])).is_err());
    }

    #[test]
    fn wrk_report_is_read() {
        let text = "Running 10s test @ http://127.0.0.1:8080/index.html
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    61.63ms   10.20ms 130.00ms   80.00%
  Latency Distribution
     50%   60.10ms
     75%   65.00ms
     90%   70.00ms
     99%    1.20s
  1300 requests in 10.01s, 300.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:    129.87
Transfer/sec:     29.97KB
";
        let w = parse_wrk(text).unwrap();
        assert_eq!(w.requests_per_s, 129.87);
        assert_eq!(w.p50_ms, Some(60.1));
        assert_eq!(w.p99_ms, Some(1200.0));
        assert_eq!(w.errors, 7);
        assert_eq!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused"), None);
        assert_eq!(parse_duration_ms("250.00us"), Some(0.25));
    }

    #[test]
    fn http_responses_complete_by_content_length() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\ncontent-length: 3\r\n\r\nhi\nextra";
        assert_eq!(parse_http_response(r), Some((200, &b"hi\n"[..])));
        assert_eq!(parse_http_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi"), None);
        assert_eq!(parse_http_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), Some((404, &b""[..])));
        assert_eq!(parse_http_response(b"garbage\r\n\r\n"), None);
    }

    fn args_of(g: &Guest) -> Vec<String> {
        g.command().get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    /// The value after `flag` in a QEMU command line.
    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].as_str()).collect()
    }

    #[test]
    fn both_sides_get_the_same_qemu_machine_and_nic() {
        let linux = Linux {
            package: "linux-image-6.1.0-48-amd64".into(),
            vmlinuz: "/c/vmlinuz".into(),
            initramfs: "/c/initramfs.cpio.gz".into(),
            modules: vec![],
        };
        let suite = Suite {
            opts: Options::parse(&[]).unwrap(),
            linux,
            accel: Accel::Tcg,
            tsc_khz: Some(2_596_118),
            images: HashMap::from([("httpd".to_string(), PathBuf::from("/img/httpd"))]),
            www_initfs: "/w/www.img".into(),
            reference: HashMap::new(),
        };
        let spec = suite.spec(Machine::Microvm, "64M", Duration::from_secs(5), Some(vec![(8123, 80)]));
        let bf = args_of(&suite.guest(Side::BareFlow, &spec, "httpd", &words(&["--port", "80"])).unwrap());
        let lx = args_of(&suite.guest(Side::Linux, &spec, "httpd", &words(&["--port", "80"])).unwrap());
        for flag in ["-M", "-m", "-smp", "-accel", "-cpu", "-netdev", "-device"] {
            assert_eq!(after(&bf, flag), after(&lx, flag), "{flag}: {bf:?} vs {lx:?}");
        }
        assert_eq!(after(&bf, "-kernel"), vec!["/img/httpd"]);
        assert_eq!(after(&bf, "-initrd"), vec!["/w/www.img"]);
        assert_eq!(after(&lx, "-kernel"), vec!["/c/vmlinuz"]);
        let bf_cmd = Cmdline::parse(after(&bf, "-append")[0]);
        assert_eq!(bf_cmd.get("net.ip"), Some("10.0.2.15/24"));
        assert_eq!(bf_cmd.args, words(&["--port", "80"]));
        let lx_cmd = after(&lx, "-append")[0];
        assert!(lx_cmd.contains("tsc_early_khz=2596118 bf_net=1 -- httpd --port 80 --bind 0.0.0.0 --root /www"), "{lx_cmd}");
        // No image for an app is an error, not a panic.
        assert!(suite.guest(Side::BareFlow, &spec, "hello", &[]).is_err());
    }

    #[test]
    fn tok_s_line() {
        assert_eq!(parse_tok_s("achieved tok/s: 17.912000"), Some(17.912));
        assert_eq!(parse_tok_s("achieved tok/s: inf"), None);
        assert_eq!(parse_tok_s("Once upon a time"), None);
    }

    #[test]
    fn exit_codes_of_both_sides() {
        let out = |ending, lines: &[&str]| Outcome { ending, lines: words(lines), stderr: String::new(), pid: 1, elapsed: Duration::ZERO };
        assert_eq!(app_code(Side::BareFlow, &out(Ending::Code(3), &[])), Some(3));
        assert_eq!(app_code(Side::Linux, &out(Ending::NoCode, &["x", "bareflow-baseline: exit 0"])), Some(0));
        assert_eq!(app_code(Side::Linux, &out(Ending::TimedOut, &["bareflow-baseline: exit 0"])), None);
        assert_eq!(app_code(Side::BareFlow, &out(Ending::NoCode, &[])), None);
    }
}
