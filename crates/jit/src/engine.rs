//! The JIT as the inference engine sees it: a [`Specialiser`] that, asked
//! after the warm-up with the hottest operations, generates kernels for their
//! shapes (f32 and int8 matrix-vector products, f32 matrix-matrix products
//! and, with VNNI, batched int8 ones for the prompt's prefill, RMSNorm,
//! SwiGLU, RoPE, softmax), checks each one, and installs those that pass.
//!
//! With `--jit on` the in-place trial then times them against the
//! ahead-of-time kernels, op by op, and races the int8 variants
//! ([`Q8_VARIANTS`]): each op keeps what had the lowest median cycles per
//! call ([`Specialiser::review`]).
//!
//! The check, once per kernel before any use, on random inputs over several
//! row counts (full blocks, the one-row tail, a single row):
//! 1. bit for bit against the ahead-of-time kernel it replaces (the engine's
//!    [`KernelSet`]), so that transcripts do not change;
//! 2. within a relative error against the portable scalar kernel (run.c's
//!    order), so that a shared mistake in both SIMD paths is still caught.
//!
//! A failure keeps the ahead-of-time kernel and logs why.
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use bareflow_llm::KernelKind;
use bareflow_llm::kernels::KernelSet;
use bareflow_llm::profile::{Op, OpStats, Specialiser, Trial};

use crate::exec::{KernelSpec, MatmatKernel, MatvecKernel, PointwiseKernel, Program, Q8BatchKernel, Q8Kernel};
use crate::matmat::MatmatSpec;
use crate::matvec::MatvecSpec;
use crate::pointwise::PointwiseSpec;
use crate::q8::{GROUP, Q8BatchSpec, Q8Spec};
use crate::{Isa, JitError};

/// A reproducible xorshift stream of floats in `[-1, 1)`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream from `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    /// The next raw 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut s = self.0;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.0 = s;
        s
    }

    /// A float in `[-1, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }

    /// `n` floats.
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next_f32()).collect()
    }
}

/// Why a generated kernel was refused by the check.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckError {
    /// Not the ahead-of-time kernel's bits.
    NotBitExact { rows: usize, row: usize, jit: f32, aot: f32 },
    /// Too far from the portable kernel.
    FarFromPortable { rows: usize, row: usize, jit: f32, portable: f32 },
    /// The call itself failed.
    Call(JitError),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBitExact { rows, row, jit, aot } => write!(
                f,
                "row {row} of {rows}: {jit:e} but the ahead-of-time kernel gives {aot:e} (summation order differs)"
            ),
            Self::FarFromPortable { rows, row, jit, portable } => {
                write!(f, "row {row} of {rows}: {jit:e} but the portable kernel gives {portable:e}")
            }
            Self::Call(e) => write!(f, "{e}"),
        }
    }
}

/// Checks `k` on random inputs against `aot` (bit for bit) and the scalar
/// kernel (relative error 1e-4 of the sum of magnitudes).
pub fn check_matvec(k: &MatvecKernel, aot: KernelSet, rng: &mut Rng) -> Result<(), CheckError> {
    let cols = k.spec().cols;
    let b = k.spec().block_rows;
    for rows in [1, b, b + 1, 2 * b + 1, 4 * b + 3] {
        let x = rng.vec(cols);
        let w = rng.vec(rows * cols);
        let mut got = vec![f32::NAN; rows];
        k.run(&mut got, &x, &w).map_err(|e| CheckError::Call(e.into()))?;
        let mut want = vec![0.0; rows];
        aot.matmul(&mut want, &x, &w);
        let mut portable = vec![0.0; rows];
        KernelSet::scalar().matmul(&mut portable, &x, &w);
        compare_products(rows, &got, &want, &portable, |row| {
            w[row * cols..(row + 1) * cols].iter().zip(&x).map(|(a, b)| (a * b).abs()).sum()
        })?;
    }
    Ok(())
}

/// A generated product's values against the ahead-of-time kernel's (bit for
/// bit) and the portable kernel's (within 1e-4 of `mag(i)`, the sum of the
/// magnitudes of value `i`'s terms); `rows` is what the error reports.
fn compare_products(rows: usize, got: &[f32], want: &[f32], portable: &[f32], mag: impl Fn(usize) -> f32) -> Result<(), CheckError> {
    for row in 0..got.len() {
        if got[row].to_bits() != want[row].to_bits() {
            return Err(CheckError::NotBitExact { rows, row, jit: got[row], aot: want[row] });
        }
        if (got[row] - portable[row]).abs() > 1e-4 * mag(row) + 1e-30 || got[row].is_nan() {
            return Err(CheckError::FarFromPortable { rows, row, jit: got[row], portable: portable[row] });
        }
    }
    Ok(())
}

/// Checks a matrix-matrix kernel on random inputs against `aot`'s
/// [`KernelSet::matmat`] (bit for bit) and the scalar kernel (relative error
/// 1e-4 of the sum of magnitudes), over batches of 1 token, a full tile, a
/// tile and a remainder of each smaller size, and row counts 1 and 5.
pub fn check_matmat(k: &MatmatKernel, aot: KernelSet, rng: &mut Rng) -> Result<(), CheckError> {
    let cols = k.spec().cols;
    let tile = k.spec().tile;
    let mut batches = alloc::vec![1, tile];
    batches.extend((1..tile).map(|r| 2 * tile + r));
    for (i, &t) in batches.iter().enumerate() {
        let rows = if i % 2 == 0 { 5 } else { 1 };
        let x = rng.vec(t * cols);
        let w = rng.vec(rows * cols);
        let mut got = vec![f32::NAN; rows * t];
        k.run(&mut got, &x, &w).map_err(|e| CheckError::Call(e.into()))?;
        let mut want = vec![0.0; rows * t];
        aot.matmat(&mut want, &x, &w, cols);
        let mut portable = vec![0.0; rows * t];
        KernelSet::scalar().matmat(&mut portable, &x, &w, cols);
        compare_products(rows * t, &got, &want, &portable, |e| {
            let (row, tok) = (e / t, e % t);
            let xt = &x[tok * cols..(tok + 1) * cols];
            w[row * cols..(row + 1) * cols].iter().zip(xt).map(|(a, b)| (a * b).abs()).sum()
        })?;
    }
    Ok(())
}

/// Checks an int8 kernel on random inputs against `aot` (bit for bit) and
/// the scalar kernel (relative error 1e-4 of the sum of magnitudes).
pub fn check_q8(k: &Q8Kernel, aot: KernelSet, rng: &mut Rng) -> Result<(), CheckError> {
    let cols = k.spec().cols;
    let groups = cols / GROUP;
    let b = k.spec().block_rows;
    // Quantized values lie in [-127, 127] (the quantizer never makes -128).
    let i8s = |rng: &mut Rng, n: usize| -> Vec<i8> { (0..n).map(|_| ((rng.next_u64() % 255) as i32 - 127) as i8).collect() };
    for rows in [1, b, b + 1, 2 * b + 1, 4 * b + 3] {
        let (qw, qx) = (i8s(rng, rows * cols), i8s(rng, cols));
        let sw: Vec<f32> = (0..rows * groups).map(|_| rng.next_f32().abs() / 127.0).collect();
        let sx: Vec<f32> = (0..groups).map(|_| rng.next_f32().abs() / 127.0).collect();
        let mut got = vec![f32::NAN; rows];
        k.run(&mut got, &qw, &sw, &qx, &sx).map_err(|e| CheckError::Call(e.into()))?;
        let mut want = vec![0.0; rows];
        aot.q8_matmul(&mut want, &qw, &sw, &qx, &sx);
        let mut portable = vec![0.0; rows];
        KernelSet::scalar().q8_matmul(&mut portable, &qw, &sw, &qx, &sx);
        compare_products(rows, &got, &want, &portable, |row| {
            (0..groups)
                .map(|g| {
                    let s: f32 = (0..GROUP).map(|j| (qw[row * cols + g * GROUP + j] as f32 * qx[g * GROUP + j] as f32).abs()).sum();
                    s * sw[row * groups + g] * sx[g]
                })
                .sum()
        })?;
    }
    Ok(())
}

/// The `qxa` layout of [`Q8BatchSpec`] for tokens `qx` (`cols` each):
/// each token's values, then their `wrapping_abs`.
pub fn q8_batch_input(qx: &[i8], cols: usize) -> Vec<i8> {
    let mut v = Vec::with_capacity(qx.len() * 2);
    for t in qx.chunks(cols) {
        v.extend_from_slice(t);
        v.extend(t.iter().map(|b| b.wrapping_abs()));
    }
    v
}

/// Checks a batched int8 kernel on random inputs (the whole byte range)
/// against `aot`'s `q8_matmat` (bit for bit).
pub fn check_q8_batch(k: &Q8BatchKernel, aot: KernelSet, rng: &mut Rng) -> Result<(), CheckError> {
    let (cols, tk) = (k.spec().cols, k.spec().tokens);
    let groups = cols / GROUP;
    for rows in [1, 2, 7] {
        let qw: Vec<i8> = (0..rows * cols).map(|_| rng.next_u64() as i8).collect();
        let qx: Vec<i8> = (0..tk * cols).map(|_| rng.next_u64() as i8).collect();
        let sw: Vec<f32> = (0..rows * groups).map(|_| rng.next_f32().abs() / 127.0).collect();
        let sx: Vec<f32> = (0..tk * groups).map(|_| rng.next_f32().abs() / 127.0).collect();
        let mut got = vec![f32::NAN; rows * tk];
        k.run(&mut got, &qw, &sw, &q8_batch_input(&qx, cols), &sx).map_err(|e| CheckError::Call(e.into()))?;
        let mut want = vec![0.0; rows * tk];
        aot.q8_matmat(&mut want, &qw, &sw, &qx, &sx, groups);
        if let Some(i) = (0..rows * tk).find(|&i| got[i].to_bits() != want[i].to_bits()) {
            return Err(CheckError::NotBitExact { rows, row: i / tk, jit: got[i], aot: want[i] });
        }
    }
    Ok(())
}

/// Checks an RMSNorm, SwiGLU, RoPE or softmax kernel on random inputs against `aot`
/// (bit for bit) and the scalar kernel (relative error 1e-5, and 1e-30
/// absolute, per element). SwiGLU's inputs reach ±100, past the lane `e^x`'s
/// clamps.
pub fn check_pointwise(k: &PointwiseKernel, aot: KernelSet, rng: &mut Rng) -> Result<(), CheckError> {
    let n = k.spec().len();
    let portable = KernelSet::scalar();
    let compare = |rows: usize, got: &[f32], want: &[f32], port: &[f32], tol: f32| -> Result<(), CheckError> {
        for i in 0..got.len() {
            if got[i].to_bits() != want[i].to_bits() {
                return Err(CheckError::NotBitExact { rows, row: i, jit: got[i], aot: want[i] });
            }
            if (got[i] - port[i]).abs() > tol * port[i].abs() + 1e-30 || got[i].is_nan() {
                return Err(CheckError::FarFromPortable { rows, row: i, jit: got[i], portable: port[i] });
            }
        }
        Ok(())
    };
    for round in 0..4 {
        match *k.spec() {
            PointwiseSpec::RmsNorm { .. } => {
                let (x, w) = (rng.vec(n), rng.vec(n));
                let mut got = vec![f32::NAN; n];
                k.rmsnorm(&mut got, &x, &w).map_err(|e| CheckError::Call(e.into()))?;
                let (mut want, mut port) = (vec![0.0; n], vec![0.0; n]);
                aot.rmsnorm(&mut want, &x, &w);
                portable.rmsnorm(&mut port, &x, &w);
                compare(1, &got, &want, &port, 1e-5)?;
            }
            PointwiseSpec::SwiGlu { .. } => {
                let scale = [1.0, 8.0, 30.0, 100.0][round];
                let h: Vec<f32> = rng.vec(n).into_iter().map(|v| v * scale).collect();
                let g = rng.vec(n);
                let mut got = h.clone();
                k.swiglu(&mut got, &g).map_err(|e| CheckError::Call(e.into()))?;
                let (mut want, mut port) = (h.clone(), h);
                aot.swiglu(&mut want, &g);
                portable.swiglu(&mut port, &g);
                // The lane e^x is within a few ulp of libm's: compare loosely to scalar.
                compare(1, &got, &want, &port, 1e-5)?;
            }
            PointwiseSpec::Softmax { max } => {
                // Lengths 1, max and two between (with and without a partial
                // last vector); scores up to ±40.
                let len = [1, max, 1 + (rng.next_u64() as usize) % max, (max / 16 * 16).max(1)][round];
                let x: Vec<f32> = rng.vec(len).into_iter().map(|v| v * 40.0).collect();
                let mut got = x.clone();
                k.softmax(&mut got).map_err(|e| CheckError::Call(e.into()))?;
                let (mut want, mut port) = (x.clone(), x);
                aot.softmax(&mut want);
                portable.softmax(&mut port);
                compare(1, &got, &want, &port, 1e-5)?;
            }
            PointwiseSpec::Rope { .. } => {
                let heads = round + 1;
                let v = rng.vec(n * heads);
                let pairs: Vec<[f32; 2]> = (0..n / 2).map(|_| [rng.next_f32(), rng.next_f32()]).collect();
                let mut got = v.clone();
                k.rope(&mut got, pairs.as_flattened()).map_err(|e| CheckError::Call(e.into()))?;
                let (mut want, mut port) = (v.clone(), v);
                aot.rope(&mut want, &pairs);
                portable.rope(&mut port, &pairs);
                compare(heads, &got, &want, &port, 0.0)?;
            }
        }
    }
    Ok(())
}

/// The instruction set whose generated RMSNorm, SwiGLU, RoPE (and, AVX-512 only, softmax) code gives
/// `kind`'s bits: each of the AVX2 and AVX-512 sets has its own (RMSNorm's sum
/// of squares is in another order in each; SwiGLU's lane `e^x` is the same
/// steps; RoPE is the scalar bits in both). The AVX-512 kernels are 16-lane,
/// as the set's own (the 8-lane ones measured 0.54-0.70x its SwiGLU).
pub fn pointwise_isa_for(kind: KernelKind) -> Option<Isa> {
    match kind {
        KernelKind::Avx2 => Some(Isa::Avx2Fma),
        KernelKind::Avx512 => Some(Isa::Avx512),
        KernelKind::Sse2 | KernelKind::Scalar => None,
    }
}

/// The ISA of the generated f32 matrix-matrix (prefill) kernel for `kind`'s
/// set: both SIMD sets' product is the AVX2 one; with the AVX-512 set (the
/// CPU has AVX-512 F) the row-pair zmm kernel gives its bits.
pub fn matmat_isa_for(kind: KernelKind) -> Option<Isa> {
    match kind {
        KernelKind::Avx512 => Some(Isa::Avx512),
        KernelKind::Avx2 => Some(Isa::Avx2Fma),
        KernelKind::Sse2 | KernelKind::Scalar => None,
    }
}

/// The ISA whose generated f32 matrix-vector code sums like `kind`'s
/// (the AVX-512 set's f32 product is the AVX2 one, see `KernelSet::matmul`).
pub fn isa_for(kind: KernelKind) -> Option<Isa> {
    match kind {
        KernelKind::Avx2 | KernelKind::Avx512 => Some(Isa::Avx2Fma),
        KernelKind::Sse2 => Some(Isa::Sse2),
        KernelKind::Scalar => None,
    }
}

/// Whether `kind`'s int8 matmul is the AVX2 one that generated int8 code sums
/// like (the AVX-512 set uses it too, see `KernelSet::q8_matmul`).
pub fn q8_generated_for(kind: KernelKind) -> bool {
    matches!(kind, KernelKind::Avx2 | KernelKind::Avx512)
}

/// How the report names a generated kernel: its op, or for attention's softmax the softmax.
fn kernel_name(g: &Generated) -> String {
    match g.spec {
        KernelSpec::Pointwise(PointwiseSpec::Softmax { max }, _) => format!("softmax <= {max}"),
        KernelSpec::Q8Batch(b) => format!("q8 matmat *x{}", b.cols),
        _ => format!("{}", g.op),
    }
}

/// Whether a kernel made for `spec` runs `op` when installed.
fn serves(spec: &KernelSpec, op: Op) -> bool {
    match (*spec, op) {
        (KernelSpec::Matvec(m), Op::Matmul { cols, .. }) => cols == m.cols,
        (KernelSpec::Q8(q), Op::Q8Matmul { cols, .. } | Op::Q8Matmat { cols, .. }) => cols.div_ceil(GROUP) * GROUP == q.cols,
        (KernelSpec::Matmat(m), Op::Matmat { cols, .. }) => cols == m.cols,
        (KernelSpec::Pointwise(PointwiseSpec::RmsNorm { dim }, _), Op::RmsNorm { dim: d }) => dim == d,
        (KernelSpec::Pointwise(PointwiseSpec::SwiGlu { n }, _), Op::SwiGlu { n: m }) => n == m,
        (KernelSpec::Pointwise(PointwiseSpec::Rope { head }, _), Op::Rope { head: h }) => head == h,
        (KernelSpec::Pointwise(PointwiseSpec::Softmax { .. }, _), Op::Attention { .. }) => true,
        _ => false,
    }
}

/// One kernel generated for the engine.
#[derive(Debug, Clone)]
pub struct Generated {
    pub op: Op,
    pub spec: KernelSpec,
    pub code_bytes: usize,
    /// Cycles the profile gave this op during the warm-up.
    pub warm_cycles: u64,
    /// Installed (passed the check), or why not.
    pub verdict: Result<(), String>,
    /// After the in-place trial: the ops it serves, AOT cycles over JIT
    /// cycles there, and whether it was kept.
    pub trial: Option<(f64, bool)>,
    /// Which of the raced variants it is (int8 products; 0 for the others).
    pub variant: usize,
}

/// One way to run an int8 product, raced in the in-place trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Q8Variant {
    /// Rows per block ([`Q8Spec::block_rows`]).
    pub block_rows: usize,
    /// A block's rows half the call apart ([`Q8Spec::split`]).
    pub split: bool,
    /// Prefetch distance in rows ahead: at least this many...
    pub ahead_rows: usize,
    /// ...and at least this many bytes (0: rows only).
    pub ahead_bytes: usize,
    /// `prefetchnta` ([`Q8Spec::nta`]).
    pub nta: bool,
}

impl Q8Variant {
    /// Rows ahead for rows of `cols` bytes.
    pub fn ahead(self, cols: usize) -> usize {
        self.ahead_rows.max(self.ahead_bytes.div_ceil(cols.max(1)))
    }

    /// The spec for `cols` (padded) columns, with VNNI or not.
    pub fn spec(self, cols: usize, vnni: bool) -> Q8Spec {
        let prefetch = ((self.ahead(cols) * cols).min(65536) / 64 * 64) as u32;
        Q8Spec { cols, block_rows: self.block_rows, prefetch, vnni, split: self.split, nta: self.nta }
    }

    /// How the report names it.
    pub fn name(self) -> String {
        let halves = if self.split { " (halves)" } else { "" };
        let hint = if self.nta { ", nta" } else { "" };
        if self.ahead_bytes > 0 {
            format!("{} row(s){halves}, {}+ rows/{} B ahead{hint}", self.block_rows, self.ahead_rows, self.ahead_bytes)
        } else {
            format!("{} row(s){halves}, {} ahead{hint}", self.block_rows, self.ahead_rows)
        }
    }
}

/// The int8 variants raced in the in-place trial, op by op (see
/// [`Specialiser::variants`]). The first is [`Q8Spec::tuned`] (one row per
/// block, 16 rows ahead), used alone with `--jit only` (no trial). The second
/// runs two rows at once, half the call's rows apart: two FMA chains, so it
/// is not bound by one chain's latency as one row is, and two streams far
/// apart, where adjacent rows (two streams a row apart) fell to 0.67-0.71x
/// the AOT kernel streamed from memory; it prefetches with `prefetchnta`
/// about 3 KiB (at least 4 rows) ahead. On a Zen 4 (VNNI, 2026-12-06, best of
/// 5 alternated rounds, AOT/JIT), the halves with `prefetcht0` 8 rows ahead
/// were 1.04-1.14x streamed (256 MiB rotating) and 1.42-1.83x in L3 (16
/// MiB); with `prefetchnta` 4 rows ahead on the 110M shapes 1.30-1.48x
/// streamed and 1.41-1.79x in L3 (so the hint did not cost L3 residency
/// there), 8 rows ahead on the 15M ones 0.95-1.26x and 1.27-1.56x; one row
/// 0.98-1.18x streamed and 1.10-1.32x in L3. Which pays depends on the shape
/// and on where the weights live, hence the race.
pub const Q8_VARIANTS: [Q8Variant; 2] = [
    Q8Variant { block_rows: 1, split: false, ahead_rows: Q8Spec::TUNED_PREFETCH_ROWS as usize, ahead_bytes: 0, nta: false },
    Q8Variant { block_rows: 2, split: true, ahead_rows: 4, ahead_bytes: 3072, nta: true },
];

/// What the trial chose for one int8 op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub op: Op,
    /// The variant kept for it, or `None`: the ahead-of-time kernel.
    pub variant: Option<usize>,
    /// Each variant's AOT/JIT cycles per call in the trial.
    pub ratios: [Option<f64>; Q8_VARIANTS.len()],
}

/// Int8 rows shorter than this stay on the AOT kernel with `--jit on`. It was
/// 512 on Zen 3 (288 columns measured 0.89–0.98x the AOT kernel there); with
/// prefetch 16 rows ahead the generated kernel measured 1.46x on 288 columns
/// and 1.14–1.22x on 768 and 2048 here (`bench jit`, Zen 5), so every shape of
/// the stories models is generated.
pub const DEFAULT_MIN_Q8_COLS: usize = 0;

/// The engine's JIT: generates f32 matrix-vector kernels for the hottest shapes.
pub struct LlmJit {
    clock_ns: fn() -> u64,
    /// How many of the hottest matmul shapes to specialise.
    max_kernels: usize,
    /// Forces every shape to be specialised (`--jit only`).
    all: bool,
    /// Int8 rows shorter than this are left to the AOT kernel (unless `all`).
    min_q8_cols: usize,
    /// Int8 products with AVX-512 VNNI ([`Q8Spec::tuned_vnni`]): the CPU has it.
    vnni: bool,
    installed: Vec<MatvecKernel>,
    /// Int8 kernels with their variant (an index into [`Q8_VARIANTS`]).
    installed_q8: Vec<(usize, Q8Kernel)>,
    /// The int8 variant the current op call runs ([`Specialiser::select`]).
    current: usize,
    /// Variants generated per int8 shape: all of [`Q8_VARIANTS`] when a trial
    /// will race them (not with `all`, which has none), else the first.
    q8_variants: usize,
    /// The trial's choice per int8 op.
    choices: Vec<Choice>,
    /// Batched int8 kernels (VNNI) for the prefill, by width.
    installed_q8_batch: Vec<Q8BatchKernel>,
    installed_pointwise: Vec<PointwiseKernel>,
    installed_matmat: Vec<MatmatKernel>,
    generated: Vec<Generated>,
    gen_ns: u64,
    place_ns: u64,
    check_ns: u64,
    log: Vec<String>,
}

impl fmt::Debug for LlmJit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmJit").field("installed", &self.installed.len()).field("log", &self.log).finish()
    }
}

impl LlmJit {
    /// A JIT placing code with `alloc` and timing itself with `clock_ns`
    /// (nanoseconds). It specialises at most `max_kernels` shapes, or every
    /// shape with `all`.
    pub fn new(clock_ns: fn() -> u64, max_kernels: usize, all: bool) -> Self {
        LlmJit {
            clock_ns,
            max_kernels,
            all,
            min_q8_cols: DEFAULT_MIN_Q8_COLS,
            vnni: crate::q8::vnni_usable(&bareflow_llm::kernels::CpuFeatures::detect()),
            installed: Vec::new(),
            installed_q8: Vec::new(),
            current: 0,
            q8_variants: if all { 1 } else { Q8_VARIANTS.len() },
            choices: Vec::new(),
            installed_q8_batch: Vec::new(),
            installed_pointwise: Vec::new(),
            installed_matmat: Vec::new(),
            generated: Vec::new(),
            gen_ns: 0,
            place_ns: 0,
            check_ns: 0,
            log: Vec::new(),
        }
    }

    /// Specialises int8 products only from `cols` columns on (unless every
    /// shape is asked for); see [`DEFAULT_MIN_Q8_COLS`].
    pub fn with_min_q8_cols(mut self, cols: usize) -> Self {
        self.min_q8_cols = cols;
        self
    }

    /// What was generated, in order.
    pub fn generated(&self) -> &[Generated] {
        &self.generated
    }

    /// Nanoseconds spent generating machine code (encoding only), placing it
    /// (W^X pages) and checking it.
    pub fn times_ns(&self) -> (u64, u64, u64) {
        (self.gen_ns, self.place_ns, self.check_ns)
    }

    /// Every f32 kernel installed and in use.
    pub fn installed(&self) -> &[MatvecKernel] {
        &self.installed
    }

    /// Every int8 kernel installed and in use, with its variant.
    pub fn installed_q8(&self) -> &[(usize, Q8Kernel)] {
        &self.installed_q8
    }

    /// What the in-place trial chose for each int8 op.
    pub fn choices(&self) -> &[Choice] {
        &self.choices
    }

    /// Every RMSNorm, SwiGLU, RoPE and softmax kernel installed and in use.
    pub fn installed_pointwise(&self) -> &[PointwiseKernel] {
        &self.installed_pointwise
    }

    /// Every matrix-matrix kernel installed and in use.
    pub fn installed_matmat(&self) -> &[MatmatKernel] {
        &self.installed_matmat
    }

    fn pointwise(&self, spec: PointwiseSpec) -> Option<&PointwiseKernel> {
        self.installed_pointwise.iter().find(|k| *k.spec() == spec)
    }

    /// Messages (refusals, failures).
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// After a trial that raced the int8 variants: per int8 op, the variant
    /// with the fewest cycles per call, kept if it beat the ahead-of-time
    /// kernel there; a kernel no op chose is removed.
    fn choose_q8(&mut self, trial: &Trial) {
        self.choices.clear();
        for a in trial.aot.stats().iter().filter(|a| matches!(a.op, Op::Q8Matmul { .. } | Op::Q8Matmat { .. })) {
            let Some(aot) = trial.median(a.op, None).map(|m| m as f64) else { continue };
            let mut ratios = [None; Q8_VARIANTS.len()];
            for (v, r) in ratios.iter_mut().enumerate() {
                let served = self.installed_q8.iter().any(|(kv, k)| *kv == v && serves(&KernelSpec::Q8(*k.spec()), a.op));
                let cpc = trial.median(a.op, Some(v));
                if let (true, Some(c)) = (served, cpc.filter(|&c| c > 0)) {
                    *r = Some(aot / c as f64);
                }
            }
            let best = ratios.iter().enumerate().filter_map(|(v, r)| Some((v, (*r)?))).max_by(|x, y| x.1.total_cmp(&y.1));
            let variant = best.filter(|b| b.1 >= 1.0).map(|b| b.0);
            self.choices.push(Choice { op: a.op, variant, ratios });
        }
        for g in self.generated.iter_mut().filter(|g| g.verdict.is_ok()) {
            let KernelSpec::Q8(q) = g.spec else { continue };
            // Over the ops that chose this kernel: AOT/JIT, weighted by calls.
            let (mut aot, mut jit, mut any) = (0.0f64, 0.0f64, false);
            for c in self.choices.iter().filter(|c| serves(&g.spec, c.op)) {
                let (Some(am), Some(jm)) = (trial.median(c.op, None), trial.median(c.op, Some(g.variant))) else { continue };
                any = true;
                if c.variant == Some(g.variant) {
                    let calls = (trial.calls(c.op, None) + trial.calls(c.op, Some(g.variant))) as f64;
                    aot += am as f64 * calls;
                    jit += jm as f64 * calls;
                }
            }
            if !any {
                continue;
            }
            let keep = jit > 0.0;
            g.trial = Some((if keep { aot / jit } else { 0.0 }, keep));
            if !keep {
                let v = g.variant;
                self.installed_q8.retain(|(kv, k)| !(*kv == v && *k.spec() == q));
            }
        }
        // A batched kernel serves the batched ops of its width that chose a variant.
        for g in self.generated.iter_mut().filter(|g| g.verdict.is_ok()) {
            let KernelSpec::Q8Batch(b) = g.spec else { continue };
            let mine: Vec<&Choice> = self
                .choices
                .iter()
                .filter(|c| matches!(c.op, Op::Q8Matmat { cols, .. } if cols.div_ceil(GROUP) * GROUP == b.cols))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let best = mine.iter().filter_map(|c| c.variant.and_then(|v| c.ratios[v])).fold(0.0f64, f64::max);
            let keep = mine.iter().any(|c| c.variant.is_some());
            g.trial = Some((best, keep));
            if !keep {
                self.installed_q8_batch.retain(|k| k.spec().cols != b.cols);
            }
        }
        for c in &self.choices {
            let r = |v: usize| c.ratios[v].map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"));
            let all: Vec<String> = Q8_VARIANTS.iter().enumerate().map(|(v, q)| format!("{} {}", q.name(), r(v))).collect();
            let chosen = match c.variant {
                Some(v) => Q8_VARIANTS[v].name(),
                None => "the ahead-of-time kernel".to_string(),
            };
            self.log.push(format!("{}: {chosen} (in place, AOT/JIT: {})", c.op, all.join(", ")));
        }
    }

    fn try_specialise(&mut self, hot: &[OpStats], ks: KernelSet) -> Result<(), JitError> {
        let Some(isa) = isa_for(ks.kind()) else {
            self.log.push(format!("the {} kernels are in use: nothing to specialise", ks.kind().name()));
            return Ok(());
        };
        let q8 = q8_generated_for(ks.kind());
        let pisa = pointwise_isa_for(ks.kind());
        // The hottest matmul shapes; several row counts share one kernel (same cols).
        let mut picked: Vec<(Op, KernelSpec, u64, usize)> = Vec::new();
        let mut matmuls = 0;
        let mut matmats = 0;
        for s in hot {
            // RMSNorm, SwiGLU, RoPE and softmax: small kernels, generated whenever the
            // profile saw them (or every shape is asked for), without counting
            // against the matmul budget.
            let vector = match s.op {
                Op::RmsNorm { dim } => Some(PointwiseSpec::RmsNorm { dim }),
                Op::SwiGlu { n } => Some(PointwiseSpec::SwiGlu { n }),
                Op::Rope { head } => Some(PointwiseSpec::Rope { head }),
                Op::Attention { seq_len } if pisa == Some(Isa::Avx512) => {
                    Some(PointwiseSpec::Softmax { max: seq_len })
                }
                Op::Attention { .. } if pisa.is_some() => {
                    self.log.push(format!(
                        "attention's softmax: generated for the AVX-512 set only (the {} set's softmax is kept)",
                        ks.kind().name()
                    ));
                    None
                }
                _ => None,
            };
            if let Some(spec) = vector {
                let Some(pisa) = pisa else { continue };
                let kspec = KernelSpec::Pointwise(spec, pisa);
                if !(self.all || s.calls > 0) || picked.iter().any(|p| p.1 == kspec) {
                    continue;
                }
                picked.push((s.op, kspec, s.cycles, 0));
                continue;
            }
            if let Op::Matmat { cols, .. } = s.op {
                // Only for batches that ran (a prompt), or every shape asked for.
                let Some(mm_isa) = matmat_isa_for(ks.kind()) else { continue };
                let spec = KernelSpec::Matmat(MatmatSpec::tuned(cols, mm_isa));
                if !(self.all || s.calls > 0) || picked.iter().any(|p| p.1 == spec) {
                    continue;
                }
                if !self.all && matmats >= self.max_kernels {
                    continue;
                }
                matmats += 1;
                picked.push((s.op, spec, s.cycles, 0));
                continue;
            }
            let spec = match s.op {
                Op::Matmul { cols, .. } => KernelSpec::Matvec(MatvecSpec::tuned(cols, isa)),
                Op::Q8Matmul { cols, .. } if q8 && !self.all && cols < self.min_q8_cols => {
                    self.log.push(format!(
                        "{}: left to the AOT int8 kernel (generated int8 code pays from {} columns on)",
                        s.op, self.min_q8_cols
                    ));
                    continue;
                }
                Op::Q8Matmul { cols, .. } if q8 => KernelSpec::Q8(Q8_VARIANTS[0].spec(cols.div_ceil(GROUP) * GROUP, self.vnni)),
                Op::Q8Matmul { .. } => {
                    self.log.push(format!("{}: int8 products are generated for AVX2 only (ahead-of-time kernel kept)", s.op));
                    continue;
                }
                _ => continue,
            };
            if picked.iter().any(|p| p.1 == spec) {
                continue;
            }
            if !self.all && matmuls >= self.max_kernels {
                continue;
            }
            matmuls += 1;
            picked.push((s.op, spec, s.cycles, 0));
            // Variant 0 is the tuned spec; the others are raced beside it.
            if let KernelSpec::Q8(q) = spec {
                for (v, qv) in Q8_VARIANTS.iter().enumerate().take(self.q8_variants).skip(1) {
                    picked.push((s.op, KernelSpec::Q8(qv.spec(q.cols, q.vnni)), s.cycles, v));
                }
                // With VNNI, the prefill's batched products get a kernel that
                // loads each weight group once for 4 tokens, if a prompt ran
                // (or every shape is asked for).
                let prompt = hot.iter().any(|h| matches!(h.op, Op::Q8Matmat { cols, .. } if cols.div_ceil(GROUP) * GROUP == q.cols) && h.calls > 0);
                if q.vnni && (self.all || prompt) {
                    let b = Q8BatchSpec { cols: q.cols, tokens: Q8BatchSpec::MAX_TOKENS };
                    let op = Op::Q8Matmat { rows: 0, cols: q.cols };
                    picked.push((op, KernelSpec::Q8Batch(b), 0, 0));
                }
            }
        }
        let t0 = (self.clock_ns)();
        let mut prog = Program::new();
        let mut ops = Vec::new();
        for &(op, spec, warm, variant) in &picked {
            let r = match spec {
                KernelSpec::Matvec(m) => prog.add_matvec(m),
                KernelSpec::Q8(q) => prog.add_q8(q),
                KernelSpec::Q8Batch(b) => prog.add_q8_batch(b),
                KernelSpec::Pointwise(p, pisa) => prog.add_pointwise(p, pisa),
                KernelSpec::Matmat(m) => prog.add_matmat(m),
            };
            match r {
                Ok(_) => ops.push((op, spec, warm, variant)),
                Err(e) => self.log.push(format!("{op}: not generated: {e}")),
            }
        }
        let t1 = (self.clock_ns)();
        let placed = prog.place()?;
        let t2 = (self.clock_ns)();
        let mut rng = Rng::new(0x005e_ed0f_u64 ^ (ks.kind() as u64));
        let (mut mv, mut q8, mut pw) = (placed.matvec.into_iter(), placed.q8.into_iter(), placed.pointwise.into_iter());
        let mut mm = placed.matmat.into_iter();
        let mut qb = placed.q8_batch.into_iter();
        for (op, spec, warm, variant) in ops {
            let (verdict, size) = match spec {
                KernelSpec::Matvec(_) => {
                    let Some(k) = mv.next() else { continue };
                    let v = check_matvec(&k, ks, &mut rng).map_err(|e| format!("{e}"));
                    let size = k.code_size();
                    if v.is_ok() {
                        self.installed.push(k);
                    }
                    (v, size)
                }
                KernelSpec::Q8(_) => {
                    let Some(k) = q8.next() else { continue };
                    let v = check_q8(&k, ks, &mut rng).map_err(|e| format!("{e}"));
                    let size = k.code_size();
                    if v.is_ok() {
                        self.installed_q8.push((variant, k));
                    }
                    (v, size)
                }
                KernelSpec::Q8Batch(_) => {
                    let Some(k) = qb.next() else { continue };
                    let v = check_q8_batch(&k, ks, &mut rng).map_err(|e| format!("{e}"));
                    let size = k.code_size();
                    if v.is_ok() {
                        self.installed_q8_batch.push(k);
                    }
                    (v, size)
                }
                KernelSpec::Matmat(_) => {
                    let Some(k) = mm.next() else { continue };
                    let v = check_matmat(&k, ks, &mut rng).map_err(|e| format!("{e}"));
                    let size = k.code_size();
                    if v.is_ok() {
                        self.installed_matmat.push(k);
                    }
                    (v, size)
                }
                KernelSpec::Pointwise(..) => {
                    let Some(k) = pw.next() else { continue };
                    let v = check_pointwise(&k, ks, &mut rng).map_err(|e| format!("{e}"));
                    let size = k.code_size();
                    if v.is_ok() {
                        self.installed_pointwise.push(k);
                    }
                    (v, size)
                }
            };
            if let Err(e) = &verdict {
                self.log.push(format!("{op}: generated kernel refused, ahead-of-time kernel kept: {e}"));
            }
            self.generated.push(Generated { op, spec, code_bytes: size, warm_cycles: warm, verdict, trial: None, variant });
        }
        let t3 = (self.clock_ns)();
        self.gen_ns += t1.wrapping_sub(t0);
        self.place_ns += t2.wrapping_sub(t1);
        self.check_ns += t3.wrapping_sub(t2);
        Ok(())
    }
}

impl Specialiser for LlmJit {
    fn specialise(&mut self, hot: &[OpStats], kernels: KernelSet) {
        if let Err(e) = self.try_specialise(hot, kernels) {
            self.log.push(format!("JIT off, ahead-of-time kernels kept: {e}"));
        }
    }

    fn matmul(&self, out: &mut [f32], x: &[f32], w: &[f32]) -> bool {
            let cols = x.len();
        match self.installed.iter().find(|k| k.spec().cols == cols) {
            Some(k) => k.run(out, x, w).is_ok(),
            None => false,
        }
    }

    fn has_matmul(&self, cols: usize) -> bool {
        self.installed.iter().any(|k| k.spec().cols == cols)
    }

    fn matmat(&self, out: &mut [f32], x: &[f32], w: &[f32], cols: usize) -> bool {
        match self.installed_matmat.iter().find(|k| k.spec().cols == cols) {
            Some(k) => k.run(out, x, w).is_ok(),
            None => false,
        }
    }

    fn q8_matmul(&self, out: &mut [f32], qw: &[i8], sw: &[f32], qx: &[i8], sx: &[f32]) -> bool {
        let cols = qx.len();
        match self.installed_q8.iter().find(|(v, k)| *v == self.current && k.spec().cols == cols) {
            Some((_, k)) => k.run(out, qw, sw, qx, sx).is_ok(),
            None => false,
        }
    }

    /// The batched int8 product (a prompt's prefill) on the installed int8
    /// kernels: rows by chunks of about 16 KiB of weights (they stay in L1
    /// while every token of the batch goes over them); whole tiles of tokens
    /// on the batched kernel where there is one (VNNI), the other tokens one
    /// call each of the current variant's kernel, as `KernelSet::q8_matmat`
    /// does with its `q8_matmul`; so each value has that kernel's bits. With
    /// the ahead-of-time kernel chosen for the op (no kernel of the current
    /// variant), it declines.
    fn q8_matmat(&self, out: &mut [f32], qw: &[i8], sw: &[f32], qx: &[i8], sx: &[f32], groups: usize) -> bool {
        let n = groups * GROUP;
        let Some((_, k)) = self.installed_q8.iter().find(|(v, k)| *v == self.current && k.spec().cols == n) else {
            return false;
        };
        if n == 0 || qx.is_empty() || !qx.len().is_multiple_of(n) {
            return false;
        }
        let t = qx.len() / n;
        if !out.len().is_multiple_of(t) || sx.len() != t * groups {
            return false;
        }
        let rows = out.len() / t;
        if qw.len() < rows * n || sw.len() < rows * groups {
            return false;
        }
        const MAX_CHUNK: usize = 64;
        let chunk = ((16 << 10) / n).clamp(4, MAX_CHUNK) & !3;
        let mut buf = [0f32; MAX_CHUNK];
        // Whole tiles of tokens on the batched kernel (VNNI), if there is one;
        // the rest token by token.
        let batch = self.installed_q8_batch.iter().find(|b| b.spec().cols == n);
        let tk = batch.map_or(1, |b| b.spec().tokens);
        let full = if batch.is_some() { t / tk * tk } else { 0 };
        let qxa = if full > 0 { q8_batch_input(&qx[..full * n], n) } else { Vec::new() };
        let mut bbuf = [0f32; MAX_CHUNK * Q8BatchSpec::MAX_TOKENS];
        for (c, o) in out.chunks_mut(chunk * t).enumerate() {
            let (r0, r) = (c * chunk, o.len() / t);
            let (w, s) = (&qw[r0 * n..(r0 + r) * n], &sw[r0 * groups..(r0 + r) * groups]);
            if let Some(b) = batch {
                for k0 in (0..full).step_by(tk) {
                    let (xa, xs) = (&qxa[k0 * 2 * n..(k0 + tk) * 2 * n], &sx[k0 * groups..(k0 + tk) * groups]);
                    if b.run(&mut bbuf[..r * tk], w, s, xa, xs).is_err() {
                        return false;
                    }
                    for i in 0..r {
                        o[i * t + k0..i * t + k0 + tk].copy_from_slice(&bbuf[i * tk..(i + 1) * tk]);
                    }
                }
            }
            for kk in full..t {
                // On an error nothing is promised of `out`: the caller runs the AOT product, which writes all of it.
                if k.run(&mut buf[..r], w, s, &qx[kk * n..(kk + 1) * n], &sx[kk * groups..(kk + 1) * groups]).is_err() {
                    return false;
                }
                for (i, v) in buf[..r].iter().enumerate() {
                    o[i * t + kk] = *v;
                }
            }
        }
        true
    }

    fn has_q8_matmul(&self, cols: usize) -> bool {
        let padded = cols.div_ceil(GROUP) * GROUP;
        self.installed_q8.iter().any(|(_, k)| k.spec().cols == padded)
    }

    fn variants(&self) -> usize {
        if self.installed_q8.iter().any(|(v, _)| *v > 0) { self.q8_variants } else { 1 }
    }

    fn select(&mut self, op: Op, variant: Option<usize>) {
        self.current = match (variant, op) {
            (Some(v), _) => v,
            // After the trial: the choice for this op; an op the trial did
            // not see keeps the first variant; `usize::MAX` matches no kernel
            // (the ahead-of-time one runs).
            (None, Op::Q8Matmul { .. } | Op::Q8Matmat { .. }) => {
                self.choices.iter().find(|c| c.op == op).map_or(0, |c| c.variant.unwrap_or(usize::MAX))
            }
            (None, _) => 0,
        };
    }

    fn rmsnorm(&self, o: &mut [f32], x: &[f32], w: &[f32]) -> bool {
            let spec = PointwiseSpec::RmsNorm { dim: x.len() };
        o.len() == x.len() && w.len() == x.len() && self.pointwise(spec).is_some_and(|k| k.rmsnorm(o, x, w).is_ok())
    }

    fn swiglu(&self, hb: &mut [f32], hb2: &[f32]) -> bool {
            let spec = PointwiseSpec::SwiGlu { n: hb.len() };
        hb2.len() == hb.len() && self.pointwise(spec).is_some_and(|k| k.swiglu(hb, hb2).is_ok())
    }

    fn rope(&self, v: &mut [f32], cs: &[f32]) -> bool {
            let spec = PointwiseSpec::Rope { head: cs.len() };
        !cs.is_empty() && v.len().is_multiple_of(cs.len()) && self.pointwise(spec).is_some_and(|k| k.rope(v, cs).is_ok())
    }

    fn softmax(&self, x: &mut [f32]) -> bool {
            let n = x.len();
        n > 0
            && self
                .installed_pointwise
                .iter()
                .find(|k| matches!(*k.spec(), PointwiseSpec::Softmax { max } if n <= max))
                .is_some_and(|k| k.softmax(x).is_ok())
    }

    fn review(&mut self, trial: &Trial) {
        let raced = trial.variants > 1;
        if raced {
            self.choose_q8(trial);
        }
        for g in self.generated.iter_mut().filter(|g| g.verdict.is_ok()) {
            if raced && matches!(g.spec, KernelSpec::Q8(_)) {
                continue;
            }
            // Cycles of the ops this kernel serves: each side's median cycles
            // per call in the trial, weighted by the calls of both sides.
            let (mut aot, mut jit) = (0.0f64, 0.0f64);
            for a in trial.aot.stats().iter().filter(|a| serves(&g.spec, a.op)) {
                if let (Some(j), Some(am), Some(jm)) = (trial.jit.get(a.op), trial.median(a.op, None), trial.median_generated(a.op)) {
                    let calls = (a.calls + j.calls) as f64;
                    aot += am as f64 * calls;
                    jit += jm as f64 * calls;
                }
            }
            if aot == 0.0 || jit == 0.0 {
                continue;
            }
            let ratio = aot / jit;
            let keep = ratio >= 1.0;
            g.trial = Some((ratio, keep));
            if !keep {
                let spec = g.spec;
                self.installed.retain(|k| KernelSpec::Matvec(*k.spec()) != spec);
                self.installed_q8.retain(|(_, k)| KernelSpec::Q8(*k.spec()) != spec);
                self.installed_matmat.retain(|k| KernelSpec::Matmat(*k.spec()) != spec);
                self.installed_pointwise.retain(|k| KernelSpec::Pointwise(*k.spec(), k.isa()) != spec);
                self.log.push(format!(
                    "{}: the generated kernel ran at {ratio:.3}x the ahead-of-time one in place ({} trial tokens): removed",
                    kernel_name(g), trial.tokens
                ));
            }
        }
    }

    fn report(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let (g, p, c) = self.times_ns();
        writeln!(
            out,
            "jit: {} kernels generated, {} installed; generate {:.3} ms, place (W^X) {:.3} ms, check {:.3} ms",
            self.generated.len(),
            self.installed.len() + self.installed_q8.len() + self.installed_pointwise.len() + self.installed_matmat.len(),
            g as f64 / 1e6,
            p as f64 / 1e6,
            c as f64 / 1e6
        )?;
        for k in &self.generated {
            // What was specialised beyond the dims: blocking and prefetch for
            // the products, the vector width for the others.
            let (isa, tuning) = match k.spec {
                KernelSpec::Matvec(m) => (m.isa.name(), format!("block {} rows, prefetch {:>5} B", m.block_rows, m.prefetch)),
                KernelSpec::Q8(q) => (if q.vnni { "avx512 vnni int8" } else { "avx2 int8" }, format!("block {} rows, prefetch {:>5} B", q.block_rows, q.prefetch)),
                KernelSpec::Q8Batch(b) => ("avx512 vnni int8", format!("{} tokens per weight load", b.tokens)),
                KernelSpec::Matmat(m) if m.isa == Isa::Avx512 => {
                    (m.isa.name(), format!("rows in pairs, tiles of {} tokens", m.tile))
                }
                KernelSpec::Matmat(m) => (m.isa.name(), format!("tiles of {} tokens, 8 lanes", m.tile)),
                KernelSpec::Pointwise(_, isa) => {
                    (isa.name(), format!("{} lanes", if isa == Isa::Avx512 { 16 } else { 8 }))
                }
            };
            writeln!(
                out,
                "  {:<20} {:<9} {:<30} {:>6} bytes, warm-up cycles {:>12}: {}",
                kernel_name(k),
                isa,
                tuning,
                k.code_bytes,
                k.warm_cycles,
                match (&k.verdict, k.trial) {
                    (Err(_), _) => "refused".to_string(),
                    (Ok(()), None) => "installed".to_string(),
                    (Ok(()), Some((r, true))) => format!("installed, kept after the trial ({r:.3}x in place)"),
                    (Ok(()), Some((0.0, false))) => "removed after the trial (no op chose it)".to_string(),
                    (Ok(()), Some((r, false))) => format!("removed after the trial ({r:.3}x in place)"),
                }
            )?;
        }
        for l in &self.log {
            writeln!(out, "  note: {l}")?;
        }
        Ok(())
    }
}
