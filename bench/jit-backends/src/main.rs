//! `cargo bareflow bench jit-backends`: the two code generators the JIT
//! could be built on, measured on the same kernel, the f32 matrix-vector
//! product with fixed columns:
//! - iced-x86 (what `crates/jit` uses): SSE2 and AVX2+FMA kernels;
//! - Cranelift 0.135 (`bareflow_jit::cranelift`): the SSE2-order kernel from
//!   Cranelift IR, with and without its AVX/FMA settings (128-bit vectors).
//!
//! For each shape: time to generate one kernel (median of 21), the kernel's
//! time per call with its weights in cache (median of 9 rounds, calls
//! alternated between the kernels), and whether its output has the bits of
//! the ahead-of-time kernel whose order it follows (Cranelift's and iced's
//! SSE2 ones: the SSE2 set; iced's AVX2 one: the AVX2 set).
#![forbid(unsafe_code)]

use std::time::Instant;

use bareflow_jit::cranelift::Target;
use bareflow_jit::engine::Rng;
use bareflow_jit::{Isa, MatvecKernel, MatvecSpec, Program};
use bareflow_llm::kernels::{KernelKind, KernelSet};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Milliseconds to make one kernel with `make` (median of 21).
fn gen_ms(mut make: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    let mut v = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        make()?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(v))
}

fn place(add: impl FnOnce(&mut Program) -> Result<usize, bareflow_jit::JitError>) -> Result<MatvecKernel, String> {
    let mut p = Program::new();
    add(&mut p).map_err(|e| e.to_string())?;
    let mut placed = p.place().map_err(|e| e.to_string())?;
    placed.matvec.pop().ok_or_else(|| "no kernel placed".to_string())
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench jit-backends: error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let (sse2, avx2) = (KernelSet::new(KernelKind::Sse2).map_err(|e| e.to_string())?, KernelSet::new(KernelKind::Avx2).ok());
    let cl = Target::new(false).map_err(|e| e.to_string())?;
    let cl_avx = Target::new(true).map_err(|e| e.to_string())?;
    println!("JIT code generators on the f32 matrix-vector kernel (hosted, one thread; weights in cache)");
    println!();
    println!("| matrix | generator | ISA | generate ms | code bytes | ns per call | vs iced AVX2 | bits of the AOT kernel |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut verdict = Vec::new();
    for (rows, cols) in [(288usize, 288usize), (768, 288), (288, 768), (768, 768), (256, 2048)] {
        let (w, x) = (Rng::new(1).vec(rows * cols), Rng::new(2).vec(cols));
        let mut want_sse2 = vec![0.0f32; rows];
        sse2.matmul(&mut want_sse2, &x, &w);
        let want_avx2 = avx2.map(|k| {
            let mut o = vec![0.0f32; rows];
            k.matmul(&mut o, &x, &w);
            o
        });
        struct Row {
            name: &'static str,
            isa: &'static str,
            gen_ms: f64,
            k: MatvecKernel,
            exact: Option<bool>,
        }
        let mut list: Vec<Row> = Vec::new();
        let iced = |isa: Isa| -> Result<(f64, MatvecKernel), String> {
            let spec = MatvecSpec::tuned(cols, isa);
            let ms = gen_ms(|| bareflow_jit::matvec::generate(&spec, 0).map(|_| ()).map_err(|e| e.to_string()))?;
            Ok((ms, place(|p| p.add_matvec(spec))?))
        };
        let cran = |t: &Target| -> Result<(f64, MatvecKernel), String> {
            let ms = gen_ms(|| t.matvec(cols).map(|_| ()).map_err(|e| e.to_string()))?;
            Ok((ms, place(|p| p.add_cranelift_matvec(t, cols))?))
        };
        for (name, isa, made, want) in [
            ("iced-x86", "SSE2", iced(Isa::Sse2)?, Some(&want_sse2)),
            ("Cranelift", "SSE2 order, 128-bit", cran(&cl)?, Some(&want_sse2)),
            ("Cranelift", "+AVX/FMA settings, 128-bit", cran(&cl_avx)?, Some(&want_sse2)),
        ]
        .into_iter()
        .chain(avx2.is_some().then(|| ("iced-x86", "AVX2+FMA", iced(Isa::Avx2Fma), want_avx2.as_ref())).and_then(
            |(n, i, r, w)| r.ok().map(|m| (n, i, m, w)),
        )) {
            let (gen_ms, k) = made;
            let mut out = vec![0.0f32; rows];
            k.run(&mut out, &x, &w).map_err(|e| e.to_string())?;
            list.push(Row { name, isa, gen_ms, k, exact: want.map(|w| bits(w) == bits(&out)) });
        }
        // Time every kernel, alternating, 9 rounds of enough calls for ~2 ms each.
        let calls = (2_000_000 / (rows * cols / 4).max(1)).max(20);
        let mut ns: Vec<Vec<f64>> = vec![Vec::new(); list.len()];
        let mut out = vec![0.0f32; rows];
        for _ in 0..9 {
            for (i, r) in list.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..calls {
                    r.k.run(&mut out, &x, &w).map_err(|e| e.to_string())?;
                }
                ns[i].push(t.elapsed().as_nanos() as f64 / calls as f64);
            }
        }
        let ns: Vec<f64> = ns.into_iter().map(median).collect();
        let base = list.iter().position(|r| r.isa == "AVX2+FMA").map(|i| ns[i]);
        for (i, r) in list.iter().enumerate() {
            let rel = base.map_or("-".into(), |b| format!("{:.2}x", b / ns[i]));
            let exact = match r.exact {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            println!(
                "| {rows}x{cols} | {} | {} | {:.3} | {} | {:.0} | {rel} | {exact} |",
                r.name,
                r.isa,
                r.gen_ms,
                r.k.code_size(),
                ns[i]
            );
        }
        let find = |n: &str, isa: &str| list.iter().position(|r| r.name == n && r.isa == isa);
        if let (Some(c), Some(a)) = (find("Cranelift", "+AVX/FMA settings, 128-bit"), find("iced-x86", "AVX2+FMA")) {
            verdict.push((ns[c] / ns[a], list[c].gen_ms / list[a].gen_ms));
        }
        if list.iter().any(|r| r.exact == Some(false)) {
            return Err(format!("{rows}x{cols}: a kernel's output differs from the AOT kernel it follows (table above)"));
        }
    }
    if !verdict.is_empty() {
        let (lo, hi) = verdict.iter().fold((f64::MAX, 0.0f64), |(l, h), v| (l.min(v.0), h.max(v.0)));
        let (glo, ghi) = verdict.iter().fold((f64::MAX, 0.0f64), |(l, h), v| (l.min(v.1), h.max(v.1)));
        println!();
        println!(
            "Cranelift's best (128-bit) code against iced-x86's AVX2 kernels: {:.2}-{:.2}x their time per call, {glo:.0}-{ghi:.0}x their generation time",
            lo, hi
        );
        let pick = if lo > 1.0 && glo > 1.0 {
            "iced-x86 is faster on both counts on every shape: the JIT keeps iced-x86"
        } else {
            "iced-x86 is not faster on both counts on every shape: the JIT's choice of iced-x86 needs revisiting"
        };
        println!("verdict: {pick}");
    }
    Ok(())
}
