//! `cargo bareflow bench jit`: the JIT's generated matrix-vector kernels
//! against the ahead-of-time kernels, per kernel (in this process, in hosted
//! W^X pages) and end to end (apps/llm with `--jit off` against `--jit on`,
//! alternated), on the 15M and 110M shapes, plus the time to generate every
//! kernel of a model.
//!
//! Per-kernel timings rotate over at least 256 MiB of distinct matrices so
//! that every call streams its weights from memory, as inference does.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use bareflow_jit::engine::{Rng, check_matmat, check_matvec, isa_for};
use bareflow_jit::engine::Q8_VARIANTS;
use bareflow_jit::{MatmatKernel, MatmatSpec, MatvecKernel, MatvecSpec, Program, Q8Kernel, Q8Spec};
use bareflow_llm::kernels::KernelSet;
use bareflow_llm::r#gen::{Shape, random_checkpoint, random_tokenizer};

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n == 0 { 0.0 } else if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn shape_name(s: Shape) -> String {
    format!("{s:?}").trim_start_matches('S').to_string()
}

/// The distinct matrix shapes of one forward pass: (rows, cols, calls per token).
fn matmul_shapes(s: Shape) -> Vec<(usize, usize, usize)> {
    let c = s.config();
    let l = c.n_layers;
    let mut v: Vec<(usize, usize, usize)> = Vec::new();
    for (r, k, n) in [
        (c.dim, c.dim, 2 * l),
        (c.kv_dim(), c.dim, 2 * l),
        (c.hidden_dim, c.dim, 2 * l),
        (c.dim, c.hidden_dim, l),
        (c.vocab_size, c.dim, 1),
    ] {
        match v.iter_mut().find(|e| e.0 == r && e.1 == k) {
            Some(e) => e.2 += n,
            None => v.push((r, k, n)),
        }
    }
    v
}

/// The RMSNorm, SwiGLU, RoPE and softmax kernels of one forward pass, at the
/// shape's dims (softmax up to the context length; AVX-512 only).
fn vector_specs(s: Shape) -> [bareflow_jit::PointwiseSpec; 4] {
    let c = s.config();
    [
        bareflow_jit::PointwiseSpec::RmsNorm { dim: c.dim },
        bareflow_jit::PointwiseSpec::SwiGlu { n: c.hidden_dim },
        bareflow_jit::PointwiseSpec::Rope { head: c.head_size() },
        bareflow_jit::PointwiseSpec::Softmax { max: c.seq_len },
    ]
}

/// Nanoseconds per call of `f(i)` over rotating matrices, median of `reps` rounds.
fn time_calls(reps: usize, calls: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut t = Vec::new();
    let mut i = 0;
    for _ in 0..reps {
        let t0 = Instant::now();
        for _ in 0..calls {
            f(i);
            i += 1;
        }
        t.push(t0.elapsed().as_nanos() as f64 / calls as f64);
    }
    median(&mut t)
}

struct KernelRow {
    model: String,
    rows: usize,
    cols: usize,
    aot_ns: f64,
    jit_ns: f64,
    gbs: f64,
}

fn bench_kernel(
    model: &str,
    ks: KernelSet,
    k: &MatvecKernel,
    rows: usize,
    cols: usize,
    reps: usize,
) -> anyhow::Result<KernelRow> {
    let mut rng = Rng::new((rows * 31 + cols) as u64);
    let per = rows * cols;
    let copies = ((256usize << 20) / (per * 4)).max(2);
    let w = rng.vec(per * copies);
    let x = rng.vec(cols);
    let mut out = vec![0.0f32; rows];
    let calls = copies.max(8);
    let (mut a, mut j) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        a.push(time_calls(1, calls, |i| {
            let m = &w[(i % copies) * per..(i % copies + 1) * per];
            ks.matmul(&mut out, &x, m);
        }));
        let mut err = None;
        j.push(time_calls(1, calls, |i| {
            let m = &w[(i % copies) * per..(i % copies + 1) * per];
            if let Err(e) = k.run(&mut out, &x, m) {
                err = Some(e);
            }
        }));
        if let Some(e) = err {
            bail!("JIT kernel {rows}x{cols} failed: {e}");
        }
    }
    // The best of the rounds: other processes on the shared cores only ever add time.
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (aot_ns, jit_ns) = (best(&a), best(&j));
    Ok(KernelRow { model: model.to_string(), rows, cols, aot_ns, jit_ns, gbs: (per * 4) as f64 / jit_ns })
}

/// The int8 twin of [`bench_kernel`]: ns per call (best of `reps`) for the AOT and the JIT kernel.
fn bench_q8(ks: KernelSet, k: &Q8Kernel, rows: usize, reps: usize) -> anyhow::Result<(f64, f64)> {
    bench_q8_in(ks, k, rows, reps, 256 << 20)
}

/// As [`bench_q8`], over copies of the matrix that fill `set` bytes (the
/// working set: 256 MiB streams from memory; 16 MiB stays in a 32 MiB L3, as
/// the 15M model's 15 MiB of int8 weights do).
fn bench_q8_in(ks: KernelSet, k: &Q8Kernel, rows: usize, reps: usize, set: usize) -> anyhow::Result<(f64, f64)> {
    let cols = k.spec().cols;
    let groups = cols / 32;
    let mut rng = Rng::new((rows * 17 + cols) as u64);
    let per = rows * cols;
    let copies = (set / per).max(2);
    let qw: Vec<i8> = (0..per * copies).map(|_| ((rng.next_u64() % 255) as i32 - 127) as i8).collect();
    // Scales rotate with the weights (a model's scales are not in cache either).
    let sw: Vec<f32> = (0..rows * groups * copies).map(|_| rng.next_f32().abs() / 127.0).collect();
    let sper = rows * groups;
    let qx: Vec<i8> = (0..cols).map(|_| ((rng.next_u64() % 255) as i32 - 127) as i8).collect();
    let sx: Vec<f32> = (0..groups).map(|_| rng.next_f32().abs() / 127.0).collect();
    let mut out = vec![0.0f32; rows];
    let calls = copies.max(8);
    let (mut a, mut j) = (Vec::new(), Vec::new());
    let mut err = None;
    for _ in 0..reps {
        a.push(time_calls(1, calls, |i| {
            let m = &qw[(i % copies) * per..(i % copies + 1) * per];
            let sw = &sw[(i % copies) * sper..(i % copies + 1) * sper];
            ks.q8_matmul(&mut out, m, sw, &qx, &sx);
        }));
        j.push(time_calls(1, calls, |i| {
            let m = &qw[(i % copies) * per..(i % copies + 1) * per];
            let sw = &sw[(i % copies) * sper..(i % copies + 1) * sper];
            if let Err(e) = k.run(&mut out, m, sw, &qx, &sx) {
                err = Some(e);
            }
        }));
    }
    if let Some(e) = err {
        bail!("JIT int8 kernel {rows}x{cols} failed: {e}");
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((best(&a), best(&j)))
}

/// Tokens per batch in the batched-product rows: the engine's prefill batch.
const BATCH: usize = bareflow_llm::model::PREFILL_BATCH;

/// The prefill's batched product: ns per call (best of `reps`) of the AOT
/// `KernelSet::matmat` and the generated kernel, for a batch of [`BATCH`]
/// tokens, over rotating matrices (each call reads its weights from memory once).
fn bench_matmat(ks: KernelSet, k: &MatmatKernel, rows: usize, reps: usize) -> anyhow::Result<(f64, f64)> {
    let cols = k.spec().cols;
    let mut rng = Rng::new((rows * 13 + cols) as u64);
    let per = rows * cols;
    let copies = ((256usize << 20) / (per * 4)).max(2);
    let w = rng.vec(per * copies);
    let x = rng.vec(BATCH * cols);
    let mut out = vec![0.0f32; rows * BATCH];
    let calls = copies.max(8);
    let (mut a, mut j) = (Vec::new(), Vec::new());
    let mut err = None;
    for _ in 0..reps {
        a.push(time_calls(1, calls, |i| ks.matmat(&mut out, &x, &w[(i % copies) * per..(i % copies + 1) * per], cols)));
        j.push(time_calls(1, calls, |i| {
            if let Err(e) = k.run(&mut out, &x, &w[(i % copies) * per..(i % copies + 1) * per]) {
                err = Some(e);
            }
        }));
    }
    if let Some(e) = err {
        bail!("JIT matmat kernel {rows}x{cols} failed: {e}");
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((best(&a), best(&j)))
}

/// A prompt long enough for [`PROMPT_POSITIONS`] positions with the random
/// tokenizers (`random_tokenizer`: single characters and short pieces; about
/// 2.8 tokens a word) and short enough for the 15M context of 256.
fn long_prompt() -> String {
    let words = ["once", "upon", "a", "time", "there", "was", "little", "girl", "named", "lily", "she", "loved", "to", "play", "outside", "in", "the", "park"];
    (0..60).map(|i| words[(i * 7 + i / 3) % words.len()]).collect::<Vec<_>>().join(" ")
}

/// Prompt positions the end-to-end prefill rows run (`-n`: no token is sampled).
const PROMPT_POSITIONS: usize = 128;

fn compile(specs: &[MatvecSpec]) -> anyhow::Result<Vec<MatvecKernel>> {
    let mut p = Program::new();
    for s in specs {
        p.add_matvec(*s).with_context(|| format!("generating {s:?}"))?;
    }
    Ok(p.place()?.matvec)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo bareflow bench jit [--shapes 15M,110M] [--tokens N] [--reps R] [--no-e2e] [--no-tuning] [--prompt-only]`.
/// `bareflow bench jit-backends`: iced-x86 against Cranelift on the same
/// kernel (`bench/jit-backends`, built on demand: it compiles Cranelift, which
/// nothing else needs).
pub fn backends(args: &[String]) -> anyhow::Result<i32> {
    if let Some(a) = args.first() {
        bail!("unknown option `{a}` for bench jit-backends (it takes none)");
    }
    eprintln!("bench jit-backends: building bench/jit-backends (Cranelift; about a minute the first time)...");
    let root = crate::root::repo_root();
    let status = Command::new(crate::root::cargo())
        .args(["run", "--release", "-q", "-p", "bareflow-jit-backends"])
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(&root)
        .status()
        .with_context(|| format!("could not start `{}`", crate::root::cargo().display()))?;
    if !status.success() {
        bail!("bench jit-backends failed (its messages are above); rerun with `cargo run --release -p bareflow-jit-backends`");
    }
    Ok(0)
}

pub fn bench(args: &[String]) -> anyhow::Result<i32> {
    let shapes: Vec<Shape> = flag(args, "--shapes")
        .unwrap_or("15M,110M")
        .split(',')
        .map(|s| Shape::parse(s).with_context(|| format!("unknown shape {s:?}: use 15M, 42M or 110M")))
        .collect::<anyhow::Result<_>>()?;
    let tokens: usize = flag(args, "--tokens").unwrap_or("96").parse().context("--tokens must be a count")?;
    let reps: usize = flag(args, "--reps").unwrap_or("3").parse().context("--reps must be a count")?;
    // The best set: its f32 and int8 products are the AVX2 ones the generated code sums like.
    let ks = KernelSet::best();
    let Some(isa) = isa_for(ks.kind()) else {
        bail!("this CPU has only the portable kernels: the JIT generates SSE2 or AVX2 code only");
    };
    // The engine generates int8 products with AVX-512 VNNI where the CPU has it.
    let vnni = bareflow_jit::q8::vnni_usable(&bareflow_llm::kernels::CpuFeatures::detect());
    println!(
        "ahead-of-time kernels: {}; JIT ISA: {}; int8 products: {}",
        ks.kind().name(),
        isa.name(),
        if vnni { "AVX-512 VNNI (the AOT int8 kernel is AVX2)" } else { "AVX2 (no AVX-512 VNNI here)" }
    );

    // 1. Choice of register block and prefetch, by measurement, on the 15M w1 shape.
    // `--prompt-only`: only the generate-time table and the prompt rows.
    let prompt_only = args.iter().any(|a| a == "--prompt-only");
    let kshapes: &[Shape] = if prompt_only { &[] } else { &shapes };
    let tuning = !prompt_only && !args.iter().any(|a| a == "--no-tuning");
    println!("\n[1/4] tuning (15M w1 and 110M w1 shapes, rotating over 256 MiB, ns per call, best of {reps})");
    println!("| matrix | block rows | prefetch B | JIT ns | AOT ns | AOT/JIT |");
    println!("|---|---|---|---|---|---|");
    let tuning_shapes: &[(usize, usize)] = if tuning { &[(768, 288), (2048, 768)] } else { &[] };
    if !tuning {
        println!("(skipped: --no-tuning)");
    }
    for &(rows, cols) in tuning_shapes {
        for block_rows in 1..=MatvecSpec::max_block_rows(isa) {
            let next_block = (block_rows * cols * 4) as u32 / 64 * 64;
            for prefetch in [0u32, 256, 1024, next_block] {
                let spec = MatvecSpec { cols, isa, block_rows, prefetch };
                let k = compile(&[spec])?.pop().context("no kernel")?;
                let r = bench_kernel("", ks, &k, rows, cols, reps)?;
                println!(
                    "| {rows}x{cols} | {block_rows} | {prefetch} | {:.0} | {:.0} | {:.2}x |",
                    r.jit_ns,
                    r.aot_ns,
                    r.aot_ns / r.jit_ns
                );
            }
        }
    }

    // 2. Time to generate every kernel of each model (encoding; then placing in W^X pages and the check).
    println!("\n[2/4] time to generate all kernels of a model: f32 products, int8 ones (each variant raced in place), the prefill's f32 batched products (and int8 ones with VNNI), RMSNorm, SwiGLU, RoPE, softmax (AVX-512) (median of 21)");
    println!("| model | kernels | code bytes | generate ms | place ms | check ms |");
    println!("|---|---|---|---|---|---|");
    let mut gen_json = Vec::new();
    for &s in &shapes {
        let mut cols: Vec<usize> = matmul_shapes(s).iter().map(|e| e.1).collect();
        cols.dedup();
        cols.sort_unstable();
        cols.dedup();
        // Everything the JIT makes for a model: f32 and int8 products for each
        // width, and RMSNorm, SwiGLU, RoPE and softmax at its dims (those its ISA makes).
        let specs: Vec<MatvecSpec> = cols.iter().map(|&c| MatvecSpec::tuned(c, isa)).collect();
        // (`--jit on` makes every variant it races: two per width.)
        let q8_specs: Vec<Q8Spec> = if isa == bareflow_jit::Isa::Avx2Fma {
            cols.iter().flat_map(|&c| Q8_VARIANTS.map(|v| v.spec(c.div_ceil(32) * 32, vnni))).collect()
        } else {
            Vec::new()
        };
        // At the set's own vector width (the bits of its AOT kernels).
        let vec_isa = bareflow_jit::engine::pointwise_isa_for(ks.kind());
        let vec_specs: Vec<_> = match vec_isa {
            Some(i) => vector_specs(s).into_iter().filter(|v| v.validate(i).is_ok()).collect(),
            None => Vec::new(),
        };
        // The prefill's batched f32 products (AVX2 order; the AVX-512 row-pair
        // kernel with the AVX-512 set), one per width, and with VNNI the batched
        // int8 ones, as the engine makes them for a prompt.
        let mm_specs: Vec<MatmatSpec> = match bareflow_jit::engine::matmat_isa_for(ks.kind()) {
            Some(mm_isa) => cols.iter().map(|&c| MatmatSpec::tuned(c, mm_isa)).collect(),
            None => Vec::new(),
        };
        let qb_specs: Vec<bareflow_jit::Q8BatchSpec> = if vnni {
            cols.iter().map(|&c| bareflow_jit::Q8BatchSpec { cols: c.div_ceil(32) * 32, tokens: bareflow_jit::Q8BatchSpec::MAX_TOKENS }).collect()
        } else {
            Vec::new()
        };
        let n_kernels = specs.len() + q8_specs.len() + vec_specs.len() + mm_specs.len() + qb_specs.len();
        let (mut g, mut p, mut c) = (Vec::new(), Vec::new(), Vec::new());
        let mut bytes = 0;
        for _ in 0..21 {
            let t0 = Instant::now();
            let mut prog = Program::new();
            for sp in &specs {
                prog.add_matvec(*sp)?;
            }
            for sp in &q8_specs {
                prog.add_q8(*sp)?;
            }
            for sp in &vec_specs {
                prog.add_pointwise(*sp, vec_isa.context("vector kernels without an ISA")?)?;
            }
            for sp in &mm_specs {
                prog.add_matmat(*sp)?;
            }
            for sp in &qb_specs {
                prog.add_q8_batch(*sp)?;
            }
            let t1 = Instant::now();
            let placed = prog.place()?;
            let t2 = Instant::now();
            let mut rng = Rng::new(1);
            for k in &placed.matvec {
                check_matvec(k, ks, &mut rng).map_err(|e| anyhow::anyhow!("{s:?}: {e}"))?;
            }
            for k in &placed.q8 {
                bareflow_jit::engine::check_q8(k, ks, &mut rng).map_err(|e| anyhow::anyhow!("{s:?}: {e}"))?;
            }
            for k in &placed.pointwise {
                bareflow_jit::engine::check_pointwise(k, ks, &mut rng).map_err(|e| anyhow::anyhow!("{s:?}: {e}"))?;
            }
            for k in &placed.matmat {
                check_matmat(k, ks, &mut rng).map_err(|e| anyhow::anyhow!("{s:?}: {e}"))?;
            }
            for k in &placed.q8_batch {
                bareflow_jit::engine::check_q8_batch(k, ks, &mut rng).map_err(|e| anyhow::anyhow!("{s:?}: {e}"))?;
            }
            let t3 = Instant::now();
            bytes = prog.code().len();
            g.push((t1 - t0).as_secs_f64() * 1e3);
            p.push((t2 - t1).as_secs_f64() * 1e3);
            c.push((t3 - t2).as_secs_f64() * 1e3);
        }
        let (g, p, c) = (median(&mut g), median(&mut p), median(&mut c));
        println!("| {} | {n_kernels} | {bytes} | {g:.3} | {p:.3} | {c:.3} |", shape_name(s));
        gen_json.push(format!("{{\"model\":\"{}\",\"kernels\":{n_kernels},\"bytes\":{bytes},\"generate_ms\":{g:.4},\"place_ms\":{p:.4},\"check_ms\":{c:.4}}}", shape_name(s)));
    }

    // 3. Per kernel.
    println!("\n[3/4] per kernel, one thread, weights streamed from memory (best of {reps} rounds)");
    // The 128-bit column is what an encoder limited to 128-bit vectors (cranelift 0.135) could reach at best.
    println!("| model | matrix | calls/token | AOT ns | JIT ns | AOT/JIT | JIT GB/s | JIT 128-bit (SSE2) ns |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut krows = Vec::new();
    for &s in kshapes {
        for (rows, cols, n) in matmul_shapes(s) {
            let k = compile(&[MatvecSpec::tuned(cols, isa)])?.pop().context("no kernel")?;
            let r = bench_kernel(&shape_name(s), ks, &k, rows, cols, reps)?;
            let k128 = compile(&[MatvecSpec::tuned(cols, bareflow_jit::Isa::Sse2)])?.pop().context("no kernel")?;
            let sse = KernelSet::new(bareflow_llm::KernelKind::Sse2).map_err(|e| anyhow::anyhow!("{e}"))?;
            let r128 = bench_kernel(&shape_name(s), sse, &k128, rows, cols, reps)?;
            println!(
                "| {} | {rows}x{cols} | {n} | {:.0} | {:.0} | {:.2}x | {:.1} | {:.0} |",
                r.model,
                r.aot_ns,
                r.jit_ns,
                r.aot_ns / r.jit_ns,
                r.gbs,
                r128.jit_ns
            );
            krows.push(r);
        }
    }

    if isa == bareflow_jit::Isa::Avx2Fma {
        println!("\nint8 tuning: instructions, rows per register block and prefetch distance in rows ahead (best of {reps})");
        println!("| matrix | code | block rows | prefetch rows ahead | AOT ns | JIT ns | AOT/JIT |");
        println!("|---|---|---|---|---|---|---|");
        let q8_tuning: &[(usize, usize)] = if tuning { &[(768, 288), (2048, 768), (768, 2048)] } else { &[] };
        let codes: &[bool] = if vnni { &[false, true] } else { &[false] };
        for &(rows, cols) in q8_tuning {
            for &v in codes {
                for (block_rows, split) in [(1usize, false), (2, false), (2, true), (4, false)] {
                    for ahead in [0u32, 8, 16] {
                        let prefetch = (ahead * cols as u32).min(65536) / 64 * 64;
                        let mut p = Program::new();
                        p.add_q8(Q8Spec { cols, block_rows, prefetch, vnni: v, split, nta: split })?;
                        let k = p.place()?.q8.pop().context("no kernel")?;
                        let (a, j) = bench_q8(ks, &k, rows, reps)?;
                        let code = if v { "vnni" } else { "avx2" };
                        let b = if split { "2 (halves)".to_string() } else { block_rows.to_string() };
                        println!("| {rows}x{cols} | {code} | {b} | {ahead} | {a:.0} | {j:.0} | {:.2}x |", a / j);
                    }
                }
            }
        }
        // The variants the engine races in place, each against the AOT kernel,
        // streamed from memory and in L3; and the AVX2 code beside VNNI.
        let names: Vec<String> = Q8_VARIANTS.iter().map(|v| v.name()).collect();
        println!(
            "\nint8 weights (groups of 32), same method, {} code: the variants the engine races in place (AOT/JIT), streamed (256 MiB) and in L3 (16 MiB)",
            if vnni { "VNNI" } else { "AVX2" }
        );
        println!("| model | matrix | AOT ns streamed | {} | AOT ns in L3 | {} | JIT AVX2 one row, streamed |", names.join(" | "), names.join(" | "));
        println!("|---|---|---|{}---|{}---|", "---|".repeat(names.len()), "---|".repeat(names.len()));
        for &s in kshapes {
            for (rows, cols, _) in matmul_shapes(s) {
                let padded = cols.div_ceil(32) * 32;
                let mut p = Program::new();
                for v in Q8_VARIANTS {
                    p.add_q8(v.spec(padded, vnni))?;
                }
                if vnni {
                    p.add_q8(Q8Spec::tuned(padded))?;
                }
                let placed = p.place()?.q8;
                let mut cells = Vec::new();
                for set in [256usize << 20, 16 << 20] {
                    let mut aot = f64::INFINITY;
                    let mut js = Vec::new();
                    for k in &placed[..Q8_VARIANTS.len()] {
                        let (a, j) = bench_q8_in(ks, k, rows, reps, set)?;
                        aot = aot.min(a);
                        js.push(j);
                    }
                    let best = js.iter().copied().fold(f64::INFINITY, f64::min);
                    if set == 256 << 20 {
                        krows.push(KernelRow { model: format!("{} int8", shape_name(s)), rows, cols, aot_ns: aot, jit_ns: best, gbs: 0.0 });
                    }
                    cells.push(format!("{aot:.0}"));
                    cells.extend(js.iter().map(|j| format!("{:.2}x", aot / j)));
                }
                let avx2 = match placed.get(Q8_VARIANTS.len()) {
                    Some(k2) => format!("{:.0} ns", bench_q8(ks, k2, rows, reps)?.1),
                    None => "-".into(),
                };
                println!("| {} | {rows}x{cols} | {} | {avx2} |", shape_name(s), cells.join(" | "));
            }
        }
    }

    if isa == bareflow_jit::Isa::Avx2Fma {
        // The engine's kernel: AVX-512 row pairs with the AVX-512 set, else AVX2 tiles.
        let mm_isa = bareflow_jit::engine::matmat_isa_for(ks.kind()).unwrap_or(isa);
        println!("\nbatched products (the prompt's prefill), {BATCH} tokens a call, f32, same method; JIT: {}", mm_isa.name());
        println!("| model | matrix | AOT ns | JIT ns | AOT/JIT | JIT GFLOP/s | JIT AVX2 tiles AOT/JIT |");
        println!("|---|---|---|---|---|---|---|");
        for &s in kshapes {
            // (The classifier does not run in the prefill.)
            for (rows, cols, _) in matmul_shapes(s).into_iter().filter(|e| e.0 != s.config().vocab_size) {
                let mut p = Program::new();
                p.add_matmat(MatmatSpec::tuned(cols, mm_isa))?;
                if mm_isa != isa {
                    p.add_matmat(MatmatSpec::tuned(cols, isa))?;
                }
                let mut placed = p.place()?.matmat.into_iter();
                let k = placed.next().context("no kernel")?;
                let (a, j) = bench_matmat(ks, &k, rows, reps)?;
                let avx2 = match placed.next() {
                    Some(k2) => {
                        let (a2, j2) = bench_matmat(ks, &k2, rows, reps)?;
                        format!("{:.2}x", a2 / j2)
                    }
                    None => "-".into(),
                };
                let gflops = 2.0 * (rows * cols * BATCH) as f64 / j;
                println!("| {} | {rows}x{cols} | {a:.0} | {j:.0} | {:.2}x | {gflops:.1} | {avx2} |", shape_name(s), a / j);
                krows.push(KernelRow { model: format!("{} matmat x{BATCH}", shape_name(s)), rows, cols, aot_ns: a, jit_ns: j, gbs: 0.0 });
            }
        }
    }

    // RMSNorm, SwiGLU, RoPE and softmax at each model's dims (in cache: these are the
    // vectors of one token), generated at each set's width against that set's
    // AOT kernels (the same bits).
    println!("\nvector operations, ns per call (median of {reps} rounds of 20000 calls)");
    println!("| model | op | set (JIT ISA) | AOT ns | JIT ns | AOT/JIT |");
    println!("|---|---|---|---|---|---|");
    let vec_sets: Vec<(KernelSet, bareflow_jit::Isa)> = [bareflow_llm::KernelKind::Avx2, bareflow_llm::KernelKind::Avx512]
        .into_iter()
        .filter_map(|k| Some((KernelSet::new(k).ok()?, bareflow_jit::engine::pointwise_isa_for(k)?)))
        .collect();
    for &s in kshapes {
        let c = s.config();
        for (aot, visa) in vec_sets.iter().copied() {
            for spec in vector_specs(s).into_iter().filter(|v| v.validate(visa).is_ok()) {
                let mut p = Program::new();
                p.add_pointwise(spec, visa)?;
                let k = p.place()?.pointwise.pop().context("no kernel")?;
                let mut rng = Rng::new(9);
                let (x, w) = (rng.vec(c.dim.max(c.hidden_dim)), rng.vec(c.dim.max(c.hidden_dim)));
                // Unit rotations, so that repeated calls keep the values bounded.
                let pairs: Vec<[f32; 2]> = (0..c.head_size() / 2).map(|_| rng.next_f32() * 3.0).map(|t| [t.cos(), t.sin()]).collect();
                let mut o = vec![0.0f32; c.dim.max(c.hidden_dim)];
                let mut err = None;
                let (a, j) = match spec {
                    bareflow_jit::PointwiseSpec::RmsNorm { dim } => (
                        time_calls(reps, 20_000, |_| aot.rmsnorm(&mut o[..dim], &x[..dim], &w[..dim])),
                        time_calls(reps, 20_000, |_| {
                            if let Err(e) = k.rmsnorm(&mut o[..dim], &x[..dim], &w[..dim]) {
                                err = Some(e);
                            }
                        }),
                    ),
                    bareflow_jit::PointwiseSpec::SwiGlu { n } => (
                        // Inputs of moderate size: repeated calls keep them bounded.
                        time_calls(reps, 20_000, |_| {
                            o[..n].copy_from_slice(&x[..n]);
                            aot.swiglu(&mut o[..n], &w[..n])
                        }),
                        time_calls(reps, 20_000, |_| {
                            o[..n].copy_from_slice(&x[..n]);
                            if let Err(e) = k.swiglu(&mut o[..n], &w[..n]) {
                                err = Some(e);
                            }
                        }),
                    ),
                    bareflow_jit::PointwiseSpec::Softmax { max } => {
                        // Attention's scores half-way through the context.
                        let n = max / 2;
                        let xs: Vec<f32> = x.iter().cycle().take(n).map(|v| v * 10.0).collect();
                        let mut buf = vec![0.0f32; n];
                        (
                            time_calls(reps, 20_000, |_| {
                                buf.copy_from_slice(&xs);
                                aot.softmax(&mut buf)
                            }),
                            time_calls(reps, 20_000, |_| {
                                buf.copy_from_slice(&xs);
                                if let Err(e) = k.softmax(&mut buf) {
                                    err = Some(e);
                                }
                            }),
                        )
                    }
                    bareflow_jit::PointwiseSpec::Rope { .. } => {
                        let q = c.dim;
                        (
                            time_calls(reps, 20_000, |_| aot.rope(&mut o[..q], &pairs)),
                            time_calls(reps, 20_000, |_| {
                                if let Err(e) = k.rope(&mut o[..q], pairs.as_flattened()) {
                                    err = Some(e);
                                }
                            }),
                        )
                    }
                };
                if let Some(e) = err {
                    bail!("JIT {} failed: {e}", spec.name());
                }
                println!(
                    "| {} | {} {} | {} ({}) | {a:.0} | {j:.0} | {:.2}x |",
                    shape_name(s),
                    spec.name(),
                    spec.len(),
                    aot.kind().name(),
                    visa.name(),
                    a / j
                );
                krows.push(KernelRow {
                    model: format!("{} {} {}", shape_name(s), spec.name(), visa.name()),
                    rows: 1,
                    cols: spec.len(),
                    aot_ns: a,
                    jit_ns: j,
                    gbs: 0.0,
                });
            }
        }
    }

    // 4. End to end.
    let mut e2e = Vec::new();
    if !args.iter().any(|a| a == "--no-e2e") {
        let root = repo_root();
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        println!("\n[4/4] end to end: apps/llm --jit off vs on, {tokens} tokens greedy, {reps} rounds alternated");
        let st = Command::new("cargo").args(["build", "--release", "-q", "-p", "llm"]).current_dir(&root).status()?;
        if !st.success() {
            bail!("cargo build -p llm failed");
        }
        let bin = target.join("release/llm");
        let work = target.join("bench-jit");
        std::fs::create_dir_all(&work)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // The C baseline of `bench llm` (one thread, f32), for scale.
        let c_bin = work.join("llm_c");
        let src = root.join("bench/baselines/llm.c");
        let st = Command::new("gcc")
            .args(["-O3", "-march=native", "-ffast-math", "-o"])
            .arg(&c_bin)
            .arg(&src)
            .arg("-lm")
            .status()
            .context("running gcc (apt-get install gcc)")?;
        if !st.success() {
            bail!("gcc failed on {}", src.display());
        }
        println!("| model | weights | threads | AOT tok/s | JIT tok/s | JIT/AOT | same text | C -O3 -ffast-math tok/s |");
        println!("|---|---|---|---|---|---|---|---|");
        for &s in kshapes {
            let name = shape_name(s);
            let ckpt = work.join(format!("{name}.bin"));
            let tok = work.join(format!("{name}.tok"));
            if !ckpt.exists() || !tok.exists() {
                std::fs::write(&ckpt, random_checkpoint(s, 1))?;
                std::fs::write(&tok, random_tokenizer(s.config().vocab_size, 1))?;
            }
            for (t, int8) in [(1, false), (threads, false), (1, true), (threads, true)] {
                let (mut a, mut j, mut cv) = (Vec::new(), Vec::new(), Vec::new());
                let mut same = true;
                for _ in 0..reps {
                    if t == 1 && !int8 {
                        let out = Command::new(&c_bin).arg(&ckpt).arg(tokens.to_string()).output()?;
                        let err = String::from_utf8_lossy(&out.stderr);
                        if let Some(v) = err.lines().find_map(|l| l.strip_prefix("achieved tok/s: ")).and_then(|v| v.trim().parse::<f64>().ok()) {
                            cv.push(v);
                        }
                    }
                    let mut outs = Vec::new();
                    for mode in ["off", "on"] {
                        let mut cmd = Command::new(&bin);
                        cmd.arg(&ckpt).arg("-z").arg(&tok);
                        cmd.args(["-t", "0", "-n", &tokens.to_string(), "--threads", &t.to_string(), "--jit", mode]);
                        cmd.args(["--kernels", ks.kind().name()]);
                        if int8 {
                            cmd.arg("--int8");
                        }
                        let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
                        let err = String::from_utf8_lossy(&out.stderr).to_string();
                        let v: f64 = err
                            .lines()
                            .find_map(|l| l.strip_prefix("achieved tok/s: "))
                            .and_then(|v| v.trim().parse().ok())
                            .with_context(|| format!("{cmd:?} printed no tok/s: {err}"))?;
                        if mode == "off" { a.push(v) } else { j.push(v) }
                        outs.push(out.stdout);
                    }
                    same &= outs[0] == outs[1];
                }
                let (a, j) = (median(&mut a), median(&mut j));
                let wname = if int8 { "int8" } else { "f32" };
                let c = if cv.is_empty() { "-".to_string() } else { format!("{:.1}", median(&mut cv)) };
                println!("| {name} | {wname} | {t} | {a:.1} | {j:.1} | {:.2}x | {} | {c} |", j / a, if same { "yes" } else { "NO" });
                e2e.push(format!("{{\"model\":\"{name}\",\"weights\":\"{wname}\",\"threads\":{t},\"aot_tok_s\":{a:.2},\"jit_tok_s\":{j:.2},\"same_text\":{same}}}"));
            }
        }

        // The prompt: {PROMPT_POSITIONS} positions of a long prompt, fed one by
        // one (run.c's way, and the C baseline's speed), batched with the AOT
        // kernels, and batched with `--jit on` (the swap after the warm-up's
        // 8 tokens, then the in-place trial: batches on both sides).
        println!("\nend to end, the prompt: {PROMPT_POSITIONS} prompt positions (prefill), one thread, {reps} rounds alternated, prompt tok/s");
        println!("| model | weights | one by one (--prefill 1) | batched, AOT | batched, JIT on | JIT/AOT batched | batched AOT/one by one | same text | C tok/s |");
        println!("|---|---|---|---|---|---|---|---|---|");
        let prompt = long_prompt();
        for (s, int8) in shapes.iter().flat_map(|&s| [(s, false), (s, true)]) {
            let name = shape_name(s);
            let ckpt = work.join(format!("{name}.bin"));
            let tok = work.join(format!("{name}.tok"));
            let (mut one, mut a, mut j, mut cv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut same = true;
            for _ in 0..reps {
                if !int8 {
                    let out = Command::new(&c_bin).arg(&ckpt).arg(PROMPT_POSITIONS.to_string()).output()?;
                    let err = String::from_utf8_lossy(&out.stderr);
                    if let Some(v) = err.lines().find_map(|l| l.strip_prefix("achieved tok/s: ")).and_then(|v| v.trim().parse::<f64>().ok()) {
                        cv.push(v);
                    }
                }
                let mut outs = Vec::new();
                for (batch, mode) in [("1", "off"), ("16", "off"), ("16", "on")] {
                    let mut cmd = Command::new(&bin);
                    cmd.arg(&ckpt).arg("-z").arg(&tok).args(["-t", "0", "-n", &PROMPT_POSITIONS.to_string(), "-i", &prompt]);
                    cmd.args(["--threads", "1", "--jit", mode, "--prefill", batch, "--kernels", ks.kind().name()]);
                    if int8 {
                        cmd.arg("--int8");
                    }
                    let out = cmd.output().with_context(|| format!("running llm --prefill {batch} --jit {mode}"))?;
                    let err = String::from_utf8_lossy(&out.stderr).to_string();
                    let (n, v) = parse_prompt_line(&err).with_context(|| format!("llm --prefill {batch} --jit {mode} printed no prompt line: {err}"))?;
                    if n != PROMPT_POSITIONS {
                        bail!("the prompt ran {n} positions, not {PROMPT_POSITIONS}: make `long_prompt` longer");
                    }
                    match (batch, mode) {
                        ("1", _) => one.push(v),
                        (_, "off") => a.push(v),
                        _ => j.push(v),
                    }
                    outs.push(out.stdout);
                }
                same &= outs.iter().all(|o| *o == outs[0]);
            }
            let (one, a, j) = (median(&mut one), median(&mut a), median(&mut j));
            let c = if cv.is_empty() { "-".to_string() } else { format!("{:.1}", median(&mut cv)) };
            let wname = if int8 { "int8" } else { "f32" };
            println!("| {name} | {wname} | {one:.1} | {a:.1} | {j:.1} | {:.2}x | {:.2}x | {} | {c} |", j / a, a / one, if same { "yes" } else { "NO" });
            e2e.push(format!("{{\"model\":\"{name}\",\"weights\":\"{wname}\",\"threads\":1,\"prompt_positions\":{PROMPT_POSITIONS},\"one_by_one_tok_s\":{one:.2},\"aot_tok_s\":{a:.2},\"jit_tok_s\":{j:.2},\"same_text\":{same}}}"));
        }
    }

    let kj: Vec<String> = krows
        .iter()
        .map(|r| format!("{{\"model\":\"{}\",\"rows\":{},\"cols\":{},\"aot_ns\":{:.1},\"jit_ns\":{:.1}}}", r.model, r.rows, r.cols, r.aot_ns, r.jit_ns))
        .collect();
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let line = format!(
        "{{\"bench\":\"jit\",\"unix_time\":{stamp},\"isa\":\"{}\",\"int8\":\"{}\",\"generate\":[{}],\"kernels\":[{}],\"end_to_end\":[{}]}}\n",
        isa.name(),
        if vnni { "avx512 vnni" } else { "avx2" },
        gen_json.join(","),
        kj.join(","),
        e2e.join(",")
    );
    let hist = repo_root().join("bench/history");
    std::fs::create_dir_all(&hist)?;
    use std::io::Write;
    std::fs::OpenOptions::new().create(true).append(true).open(hist.join("jit.jsonl"))?.write_all(line.as_bytes())?;
    println!("\nappended to bench/history/jit.jsonl");
    Ok(0)
}

/// `(positions, tok/s)` from apps/llm's `prompt: N tokens in X ms, Y tok/s (batches of B)`.
fn parse_prompt_line(stderr: &str) -> Option<(usize, f64)> {
    let mut parts = stderr.lines().find_map(|l| l.strip_prefix("prompt: "))?.split(", ");
    let n = parts.next()?.split_whitespace().next()?.parse().ok()?;
    let v = parts.next()?.split_whitespace().next()?.parse().ok()?;
    Some((n, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_line_is_parsed() {
        let e = "x\nprompt: 128 tokens in 212.500 ms, 602.4 tok/s (batches of 16)\nachieved tok/s: 3.0\n";
        assert_eq!(parse_prompt_line(e), Some((128, 602.4)));
        assert_eq!(parse_prompt_line("achieved tok/s: 3.0"), None);
    }
}
