//! `cargo bareflow llm ...` and `cargo bareflow bench llm` (owned by the inference engine work).
//!
//! The bench runs the apps/llm binary (release) and a plain C forward pass
//! (`bench/baselines/llm.c`, gcc `-O3 -march=native -ffast-math`) side by side,
//! A/B/A/B, greedy, on generated checkpoints, and reports tokens/s and ratios.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use bareflow_llm::r#gen::{Shape, random_checkpoint, random_tokenizer};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

/// `cargo bareflow llm <subcommand>`.
pub fn main(args: &[String]) -> anyhow::Result<i32> {
    match args.first().map(String::as_str) {
        Some("gen-checkpoint") => {
            let rest = &args[1..];
            let shape_s = flag(rest, "--shape").context("--shape 15M|42M|110M is required")?;
            let shape = Shape::parse(shape_s).with_context(|| format!("unknown shape {shape_s:?}: use 15M, 42M or 110M"))?;
            let seed: u64 = flag(rest, "--seed").unwrap_or("1").parse().context("--seed must be an integer")?;
            let out = PathBuf::from(flag(rest, "-o").context("-o FILE is required")?);
            let tok_out = flag(rest, "--tokenizer-out").map_or_else(|| with_ext(&out, "tok"), PathBuf::from);
            write_model(shape, seed, &out, &tok_out)?;
            println!("wrote {} and {}", out.display(), tok_out.display());
            Ok(0)
        }
        // Also reachable as `cargo bareflow bench llm` once the CLI's `bench` dispatches here.
        Some("bench") => bench(&args[1..]),
        _ => bail!("usage: cargo bareflow llm bench [--shapes 15M,110M] [--tokens N] [--reps R] | llm gen-checkpoint --shape 15M|42M|110M [--seed S] -o FILE [--tokenizer-out FILE]"),
    }
}

fn with_ext(p: &Path, ext: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn write_model(shape: Shape, seed: u64, out: &Path, tok_out: &Path) -> anyhow::Result<()> {
    let c = shape.config();
    let bytes = random_checkpoint(shape, seed);
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    std::fs::write(tok_out, random_tokenizer(c.vocab_size, seed)).with_context(|| format!("writing {}", tok_out.display()))?;
    Ok(())
}

fn run_tok_s(cmd: &mut Command) -> anyhow::Result<f64> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{cmd:?} failed: {err}");
    }
    err.lines()
        .find_map(|l| l.strip_prefix("achieved tok/s: "))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("{cmd:?} printed no tok/s: {err}"))
}

/// The fastest of the rounds: on a shared machine other work only slows a run
/// down, so the best round is the least disturbed one (shown beside the
/// medians, which the targets use).
fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n == 0 { 0.0 } else if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// The 1-minute load average (Linux `/proc/loadavg`), if readable: other
/// processes on these cores distort the timings, the multi-thread rows most
/// (OpenMP's barriers collapse when a core is taken).
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// `cargo bareflow bench llm [--shapes 15M,110M] [--tokens N] [--reps R]`.
pub fn bench(args: &[String]) -> anyhow::Result<i32> {
    let root = repo_root();
    let shapes: Vec<Shape> = flag(args, "--shapes")
        .unwrap_or("15M,110M")
        .split(',')
        .map(|s| Shape::parse(s).with_context(|| format!("unknown shape {s:?}")))
        .collect::<anyhow::Result<_>>()?;
    let tokens: usize = flag(args, "--tokens").unwrap_or("128").parse().context("--tokens must be a count")?;
    let reps: usize = flag(args, "--reps").unwrap_or("2").parse().context("--reps must be a count")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let work = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("bench-llm");
    std::fs::create_dir_all(&work)?;

    let load_start = load_average();
    eprintln!("[1/4] building apps/llm (release)");
    let status = Command::new("cargo").args(["build", "--release", "-q", "-p", "llm"]).current_dir(&root).status()?;
    if !status.success() {
        bail!("cargo build -p llm failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let ours = target.join("release/llm");
    eprintln!("[2/4] compiling bench/baselines/llm.c with gcc -O3 -march=native -ffast-math");
    let src = root.join("bench/baselines/llm.c");
    let c1 = work.join("llm_c");
    let c_omp = work.join("llm_c_omp");
    for (out, omp) in [(&c1, false), (&c_omp, true)] {
        let mut cmd = Command::new("gcc");
        cmd.args(["-O3", "-march=native", "-ffast-math"]);
        if omp {
            cmd.arg("-fopenmp");
        }
        let st = cmd.arg("-o").arg(out).arg(&src).arg("-lm").status().context("running gcc")?;
        if !st.success() {
            bail!("gcc failed on {}", src.display());
        }
    }
    eprintln!("[3/4] measuring memory bandwidth (sum over 512 MiB)");
    let bw = |n: usize| -> anyhow::Result<f64> {
        let out = Command::new(&c_omp).args(["--bandwidth", "512"]).env("OMP_NUM_THREADS", n.to_string()).output()?;
        let s = String::from_utf8_lossy(&out.stdout);
        s.lines()
            .find_map(|l| l.strip_prefix("bandwidth GB/s: "))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .context("bandwidth run printed nothing")
    };
    let bw1 = bw(1)?;
    let bwn = bw(threads)?;
    eprintln!("      {bw1:.1} GB/s one thread, {bwn:.1} GB/s with {threads}");

    eprintln!("[4/4] running, {tokens} tokens greedy, {reps} rounds A/B/A/B");
    let mut rows = Vec::new();
    let mut bests = Vec::new();
    for shape in &shapes {
        let name = format!("{:?}", shape).trim_start_matches('S').to_string();
        let ckpt = work.join(format!("{name}.bin"));
        let tok = with_ext(&ckpt, "tok");
        if !ckpt.exists() || !tok.exists() {
            eprintln!("      generating {name} checkpoint");
            write_model(*shape, 1, &ckpt, &tok)?;
        }
        let cfg = shape.config();
        let wbytes = cfg.weight_bytes_per_token() as f64;
        let n = tokens.to_string();
        let configs: Vec<(&str, usize)> = vec![("1 thread", 1), ("all cores", threads)];
        for (label, t) in configs {
            let (mut c, mut f, mut q) = (Vec::new(), Vec::new(), Vec::new());
            for r in 0..reps {
                let t0 = Instant::now();
                let cbin = if t == 1 { &c1 } else { &c_omp };
                c.push(run_tok_s(Command::new(cbin).arg(&ckpt).arg(&n).env("OMP_NUM_THREADS", t.to_string()))?);
                f.push(run_tok_s(
                    Command::new(&ours).arg(&ckpt).args(["-z"]).arg(&tok).args(["-t", "0", "-n", &n, "--threads", &t.to_string()]),
                )?);
                q.push(run_tok_s(
                    Command::new(&ours)
                        .arg(&ckpt)
                        .args(["-z"])
                        .arg(&tok)
                        .args(["-t", "0", "-n", &n, "--int8", "--threads", &t.to_string()]),
                )?);
                eprintln!(
                    "      {name} {label} round {}: C {:.1}, fp32 {:.1}, int8 {:.1} tok/s ({:.1}s)",
                    r + 1,
                    c[r],
                    f[r],
                    q[r],
                    t0.elapsed().as_secs_f64()
                );
            }
            let bwt = if t == 1 { bw1 } else { bwn };
            bests.push((name.clone(), label, t, best(&c), best(&f), best(&q), bwt * 1e9 / wbytes));
            rows.push((name.clone(), label, t, median(&mut c), median(&mut f), median(&mut q), bwt * 1e9 / wbytes));
        }
    }
    println!("\nmedian of {reps} rounds:\n");
    println!("| model | threads | C tok/s | fp32 tok/s | fp32/C | int8 tok/s | int8/C | fp32 bandwidth bound tok/s |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut json_rows = Vec::new();
    for (name, label, t, c, f, q, bound) in &rows {
        println!("| {name} | {label} ({t}) | {c:.1} | {f:.1} | {:.2}x | {q:.1} | {:.2}x | {bound:.1} |", f / c, q / c);
    }
    println!("\nbest of {reps} rounds (the least disturbed; for reference, the targets below use the medians):\n");
    println!("| model | threads | C tok/s | fp32 tok/s | fp32/C | int8 tok/s | int8/C |");
    println!("|---|---|---|---|---|---|---|");
    for (name, label, t, c, f, q, _) in &bests {
        println!("| {name} | {label} ({t}) | {c:.1} | {f:.1} | {:.2}x | {q:.1} | {:.2}x |", f / c, q / c);
    }
    for ((name, _, t, c, f, q, bound), (_, _, _, bc, bf, bq, _)) in rows.iter().zip(&bests) {
        json_rows.push(format!(
            "{{\"model\":\"{name}\",\"threads\":{t},\"c_tok_s\":{c:.2},\"fp32_tok_s\":{f:.2},\"int8_tok_s\":{q:.2},\"best_c_tok_s\":{bc:.2},\"best_fp32_tok_s\":{bf:.2},\"best_int8_tok_s\":{bq:.2},\"fp32_bound_tok_s\":{bound:.2}}}"
        ));
    }
    let load_end = load_average();
    let show = |l: Option<f64>| l.map_or_else(|| "unknown".to_string(), |l| format!("{l:.2}"));
    println!(
        "\nload average before the runs {}, after them {} (this bench's own load included) on {threads} cores{}",
        show(load_start),
        show(load_end),
        if load_start.unwrap_or(0.0) > 0.5 {
            ": the machine was busy before the runs, the timings (all-cores rows above all) are not trustworthy"
        } else {
            ""
        }
    );
    // The targets, on the 110M shape, judged on the medians; said plainly when missed.
    println!();
    for (name, _, t, c, f, q, _) in &rows {
        if name != "110M" {
            continue;
        }
        let checks: Vec<(&str, f64, f64)> = if *t == 1 {
            vec![("fp32 single-threaded", f / c, 1.3), ("int8 single-threaded", q / c, 3.0)]
        } else {
            vec![("fp32 with all cores", f / c, 2.0), ("int8 with all cores", q / c, 3.0)]
        };
        for (what, got, want) in checks {
            let verdict = if got >= want { "met" } else { "target missed" };
            println!("110M {what}: {got:.2}x the C baseline (target >= {want:.1}x): {verdict}");
        }
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let line = format!(
        "{{\"bench\":\"llm\",\"unix_time\":{stamp},\"tokens\":{tokens},\"reps\":{reps},\"bandwidth_gbs_1\":{bw1:.2},\"bandwidth_gbs_all\":{bwn:.2},\"load_start\":{},\"load_end\":{},\"rows\":[{}]}}\n",
        load_start.map_or_else(|| "null".to_string(), |l| format!("{l:.2}")),
        load_end.map_or_else(|| "null".to_string(), |l| format!("{l:.2}")),
        json_rows.join(","),
    );
    let hist = root.join("bench/history");
    std::fs::create_dir_all(&hist)?;
    use std::io::Write;
    std::fs::OpenOptions::new().create(true).append(true).open(hist.join("llm.jsonl"))?.write_all(line.as_bytes())?;
    println!("\nappended to bench/history/llm.jsonl");
    Ok(0)
}
