//! Numeric kernels, chosen once at start ([`KernelSet`]), and the worker pool.
//!
//! This is the only module of the crate with `unsafe`: SIMD intrinsics behind
//! `#[target_feature]` (called only after CPUID says the features are there),
//! the disjoint row split of a parallel matmul, and the pool's job hand-off.
//!
//! Exactness: [`KernelKind::Scalar`] sums in run.c's order with no FMA
//! contraction. The SIMD sets change the order of the sums (lanes, FMA), so
//! their logits differ from run.c's in the last bits; the tests measure by how
//! much and which transcripts they still reproduce (both, with every set).
//! Per kernel in the SIMD sets:
//! - RoPE: bit-identical to scalar (products rounded separately, no FMA).
//! - softmax: max and sum in lanes, `x / sum` per element as run.c; the
//!   exponential is a lane polynomial within 1 ulp of libm's `expf` (measured
//!   over every 97th float in its range) instead of libm's call per element.
//! - SwiGLU: run.c's operations per element, with the same lane exponential.
//!
//! A vectorised exp was allowed to stay only because both reference
//! transcripts remain byte-exact with it (greedy and sampled, hosted and in
//! the image); if a change to it ever breaks them, fall back to libm's `expf`
//! and keep only max, sum and scale in lanes.
use core::fmt;

use crate::parallel::Parallel;

pub mod pool;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_512;

/// The query heads of one attention task and the layer's caches.
#[derive(Debug, Clone, Copy)]
pub struct Heads<'a> {
    /// The queries of the task's heads, `head_size` values each.
    pub q: &'a [f32],
    /// The layer's key cache: row `t` (position `t`) at `keys[t * stride..]`.
    pub keys: &'a [f32],
    /// The layer's value cache, laid out as `keys`.
    pub values: &'a [f32],
    /// Values per cache row (the model's kv_dim).
    pub stride: usize,
    /// Rows to attend to (positions `0..rows`).
    pub rows: usize,
    pub head_size: usize,
    /// Query heads per key/value head (grouped-query attention).
    pub kv_mul: usize,
    /// The model's index of the task's first query head.
    pub first: usize,
}

impl Heads<'_> {
    /// The number of heads, after checking that every slice is long enough.
    fn check(&self, att_len: usize, att_stride: usize, out_len: usize) -> usize {
        let hs = self.head_size;
        assert!(hs > 0 && self.kv_mul > 0 && self.q.len().is_multiple_of(hs), "attention: queries are not whole heads");
        let n = self.q.len() / hs;
        assert!(out_len >= n * hs, "attention: output shorter than the heads");
        assert!(att_stride >= self.rows && att_len >= n * att_stride, "attention: score rows too short");
        if n > 0 {
            assert!(self.koff(n - 1) + hs <= self.stride, "attention: head past the cache row");
        }
        let cached = self.rows.checked_mul(self.stride);
        for c in [self.keys, self.values] {
            assert!(cached.is_some_and(|l| l <= c.len()), "attention: rows run past the cache");
        }
        n
    }

    /// Offset in a cache row of the key/value head of the task's head `i`.
    #[inline(always)]
    fn koff(&self, i: usize) -> usize {
        (self.first + i) / self.kv_mul * self.head_size
    }
}

/// The scores of [`KernelSet::attention`] with a set's `dot`, which the SIMD
/// sets pass from inside their `#[target_feature]` functions so that it
/// inlines here.
#[inline(always)]
fn scores_with(h: &Heads<'_>, n: usize, att: &mut [f32], att_stride: usize, div: f32, dot: impl Fn(&[f32], &[f32]) -> f32) {
    let hs = h.head_size;
    for t in 0..h.rows {
        let row = &h.keys[t * h.stride..(t + 1) * h.stride];
        for i in 0..n {
            let ko = h.koff(i);
            att[i * att_stride + t] = dot(&h.q[i * hs..(i + 1) * hs], &row[ko..ko + hs]) / div;
        }
    }
}

/// The weighted sums of [`KernelSet::attention`] with a set's `axpy` (inlined as `dot` above).
#[inline(always)]
fn sums_with(h: &Heads<'_>, n: usize, att: &[f32], att_stride: usize, out: &mut [f32], axpy: impl Fn(&mut [f32], f32, &[f32])) {
    let hs = h.head_size;
    out[..n * hs].fill(0.0);
    for t in 0..h.rows {
        let row = &h.values[t * h.stride..(t + 1) * h.stride];
        for i in 0..n {
            let ko = h.koff(i);
            axpy(&mut out[i * hs..(i + 1) * hs], att[i * att_stride + t], &row[ko..ko + hs]);
        }
    }
}

/// Which kernel implementation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// Portable, run.c's order of operations.
    Scalar,
    /// 4-lane SSE2 (every x86-64 CPU).
    Sse2,
    /// 8-lane AVX2 + FMA, when CPUID and XCR0 allow it.
    Avx2,
    /// 16-lane AVX-512 (F), when CPUID and XCR0 allow it.
    Avx512,
}

impl KernelKind {
    /// The name used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Scalar => "scalar",
            KernelKind::Sse2 => "sse2",
            KernelKind::Avx2 => "avx2",
            KernelKind::Avx512 => "avx512",
        }
    }

    /// Parses `scalar`, `sse2`, `avx2` or `avx512`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scalar" => Some(KernelKind::Scalar),
            "sse2" => Some(KernelKind::Sse2),
            "avx2" => Some(KernelKind::Avx2),
            "avx512" => Some(KernelKind::Avx512),
            _ => None,
        }
    }
}

/// The CPU cannot run the requested kernel set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported(pub KernelKind);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "this CPU (or its OS state) does not support the {} kernels: choose another kernel set", self.0.name())
    }
}

/// The constants of the SIMD sets' lane `e^x` (algorithm in `x86.rs`), shared
/// by the AVX2 and AVX-512 kernels and by generated code that must give the
/// same bits.
pub mod lane_exp {
    pub const LOG2E: f32 = core::f32::consts::LOG2_E;
    /// ln 2 to 9 bits: `n * LN2_HI` is exact.
    pub const LN2_HI: f32 = 355.0 / 512.0;
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    pub const EXP_HI: f32 = 88.722_83;
    pub const EXP_LO: f32 = -104.0;
    /// Polynomial coefficients, highest degree first (Cephes' expf; its
    /// 5.0000001e-1 rounds to 0.5 in f32).
    pub const P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5];
}

/// What the CPU offers, read with CPUID and XGETBV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuFeatures {
    pub sse2: bool,
    /// AVX2 and FMA instructions, and the OS saves YMM state (XCR0 bits 1|2).
    pub avx2_fma: bool,
    /// AVX-512 F (with AVX2 and FMA), and the OS saves the opmask and ZMM
    /// state (XCR0 bits 5-7 as well as 1-2).
    pub avx512: bool,
    /// AVX512_VNNI and AVX512VL (the 256-bit EVEX `vpdpbusd`), with `avx512`.
    pub avx512_vnni_vl: bool,
}

impl CpuFeatures {
    /// Probes the CPU.
    #[cfg(target_arch = "x86_64")]
    pub fn detect() -> Self {
        use core::arch::x86_64::{__cpuid, __cpuid_count};
        #[allow(unused_unsafe)] // `__cpuid` is safe on newer toolchains
        // SAFETY: CPUID exists on every x86-64 CPU.
        let l0 = unsafe { __cpuid(0) };
        #[allow(unused_unsafe)]
        // SAFETY: as above; leaf 1 always exists.
        let l1 = unsafe { __cpuid(1) };
        let sse2 = l1.edx & (1 << 26) != 0;
        let fma = l1.ecx & (1 << 12) != 0;
        let osxsave = l1.ecx & (1 << 27) != 0;
        let avx = l1.ecx & (1 << 28) != 0;
        let (l7b, l7c) = if l0.eax >= 7 {
            #[allow(unused_unsafe)]
            // SAFETY: leaf 7 exists (max leaf checked just before).
            let l7 = unsafe { __cpuid_count(7, 0) };
            (l7.ebx, l7.ecx)
        } else {
            (0, 0)
        };
        let avx2 = l7b & (1 << 5) != 0;
        // AVX512F is leaf 7 EBX bit 16 (the kernels use nothing beyond F).
        let avx512 = l7b & (1 << 16) != 0;
        let xcr0 = if osxsave {
            // SAFETY: OSXSAVE is set, so XGETBV is enabled (CR4.OSXSAVE).
            unsafe { xgetbv0() }
        } else {
            0
        };
        let ymm_state = xcr0 & 0b110 == 0b110;
        let zmm_state = xcr0 & 0xe6 == 0xe6;
        let avx2_fma = fma && avx && avx2 && ymm_state;
        let avx512 = avx2_fma && avx512 && zmm_state;
        // AVX512VL is leaf 7 EBX bit 31, AVX512_VNNI leaf 7 ECX bit 11.
        let avx512_vnni_vl = avx512 && l7b & (1 << 31) != 0 && l7c & (1 << 11) != 0;
        CpuFeatures { sse2, avx2_fma, avx512, avx512_vnni_vl }
    }

    /// Non-x86 CPUs: only the scalar kernels.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn detect() -> Self {
        CpuFeatures { sse2: false, avx2_fma: false, avx512: false, avx512_vnni_vl: false }
    }
}

/// # Safety
/// CPUID.1:ECX.OSXSAVE must be set.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    // SAFETY: XGETBV with ECX=0 is valid when OSXSAVE is set (caller's contract).
    unsafe { core::arch::x86_64::_xgetbv(0) }
}

/// A kernel implementation, chosen once and checked against the CPU: holding a
/// `KernelSet` proves the CPU supports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSet {
    kind: KernelKind,
}

impl KernelSet {
    /// The fastest set this CPU supports.
    pub fn best() -> Self {
        let f = CpuFeatures::detect();
        let kind = if f.avx512 {
            KernelKind::Avx512
        } else if f.avx2_fma {
            KernelKind::Avx2
        } else if f.sse2 {
            KernelKind::Sse2
        } else {
            KernelKind::Scalar
        };
        KernelSet { kind }
    }

    /// The portable set (run.c's order of operations).
    pub fn scalar() -> Self {
        KernelSet { kind: KernelKind::Scalar }
    }

    /// A given set, if this CPU supports it.
    pub fn new(kind: KernelKind) -> Result<Self, Unsupported> {
        let f = CpuFeatures::detect();
        let ok = match kind {
            KernelKind::Scalar => true,
            KernelKind::Sse2 => f.sse2,
            KernelKind::Avx2 => f.avx2_fma,
            KernelKind::Avx512 => f.avx512,
        };
        if ok { Ok(KernelSet { kind }) } else { Err(Unsupported(kind)) }
    }

    /// Which set this is.
    pub fn kind(&self) -> KernelKind {
        self.kind
    }

    /// `out[i] = Σ_j w[i*n + j] * x[j]`, `n = x.len()`, `rows = out.len()`.
    ///
    /// # Panics
    /// If `w` is shorter than `rows * n` (a programming error).
    pub fn matmul(&self, out: &mut [f32], x: &[f32], w: &[f32]) {
        let need = out.len() * x.len();
        assert!(w.len() >= need, "matmul: weight slice too short");
        let w = &w[..need];
        match self.kind {
            KernelKind::Scalar => scalar::matmul(out, x, w),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the set was checked against CPUID when made; w holds rows*n values.
            KernelKind::Sse2 => unsafe { x86::matmul_sse2(out, x, w) },
            // The AVX-512 set uses the AVX2 matrix-vector product: bound by memory,
            // it streamed 33.5 GB/s against 30.4 for the 16-lane one (both with
            // prefetch; 340 MB of 110M-shape matrices, 5 alternated rounds, Zen 5).
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above (AVX2+FMA checked, including XCR0; the AVX-512 set implies both).
            KernelKind::Avx2 | KernelKind::Avx512 => unsafe { x86::matmul_avx2(out, x, w) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::matmul(out, x, w),
        }
    }

    /// `Σ a[i] * b[i]` over the shorter length.
    pub fn dot(&self, a: &[f32], b: &[f32]) -> f32 {
        match self.kind {
            KernelKind::Scalar => scalar::dot(a, b),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Sse2 => unsafe { x86::dot_sse2(a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx2 => unsafe { x86::dot_avx2(a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx512 => unsafe { x86_512::dot_avx512(a, b) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::dot(a, b),
        }
    }

    /// `out[i] += a * v[i]`.
    pub fn axpy(&self, out: &mut [f32], a: f32, v: &[f32]) {
        match self.kind {
            KernelKind::Scalar => scalar::axpy(out, a, v),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Sse2 => unsafe { x86::axpy_sse2(out, a, v) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx2 => unsafe { x86::axpy_avx2(out, a, v) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx512 => unsafe { x86_512::axpy_avx512(out, a, v) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::axpy(out, a, v),
        }
    }

    /// Attention for a group of query heads (see [`Heads`]): for each head,
    /// scores against every cached row divided by `div`, softmax (`jit`'s
    /// kernel when it has one for the length, else the set's), and the
    /// weighted sum of the value rows into that head's slice of `out`. Head
    /// `i`'s scores go to `att[i * att_stride..]`.
    ///
    /// The rows are read in order, every head of the group from each row
    /// before the next row, so the caches stream sequentially. Per head and
    /// row the same bits as [`KernelSet::dot`] divided by `div`, then
    /// [`KernelSet::softmax`], then `out.fill(0.0)` and [`KernelSet::axpy`]
    /// for each row in order.
    ///
    /// # Panics
    /// If a slice is shorter than the heads need (a programming error).
    pub fn attention(
        &self,
        h: &Heads<'_>,
        att: &mut [f32],
        att_stride: usize,
        out: &mut [f32],
        div: f32,
        jit: Option<&dyn crate::profile::Specialiser>,
    ) {
        let n = h.check(att.len(), att_stride, out.len());
        match self.kind {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made; slices checked above.
            KernelKind::Avx2 => unsafe { x86::attention_scores_avx2(h, n, att, att_stride, div) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            KernelKind::Avx512 => unsafe { x86_512::attention_scores_avx512(h, n, att, att_stride, div) },
            _ => scores_with(h, n, att, att_stride, div, |a, b| self.dot(a, b)),
        }
        for i in 0..n {
            let a = &mut att[i * att_stride..i * att_stride + h.rows];
            if !jit.is_some_and(|j| j.softmax(a)) {
                self.softmax(a);
            }
        }
        match self.kind {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made; slices checked above.
            KernelKind::Avx2 => unsafe { x86::attention_sums_avx2(h, n, att, att_stride, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            KernelKind::Avx512 => unsafe { x86_512::attention_sums_avx512(h, n, att, att_stride, out) },
            _ => sums_with(h, n, att, att_stride, out, |o, a, v| self.axpy(o, a, v)),
        }
    }

    /// RMSNorm `o = w * (x / sqrt(mean(x²) + 1e-5))`.
    pub fn rmsnorm(&self, o: &mut [f32], x: &[f32], w: &[f32]) {
        match self.kind {
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => {
                // SAFETY: CPU support checked when the set was made.
                let ss = unsafe { x86::sumsq_avx2(x) };
                let s = 1.0 / libm::sqrtf(ss / x.len() as f32 + 1e-5);
                // SAFETY: as above.
                unsafe { x86::scale_mul_avx2(o, x, w, s) }
            }
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512 => {
                // SAFETY: CPU support checked when the set was made.
                let ss = unsafe { x86_512::dot_avx512(x, x) };
                let s = 1.0 / libm::sqrtf(ss / x.len() as f32 + 1e-5);
                // SAFETY: as above.
                unsafe { x86_512::scale_mul_avx512(o, x, w, s) }
            }
            _ => scalar::rmsnorm(o, x, w),
        }
    }

    /// RMSNorm in place.
    pub fn rmsnorm_in_place(&self, x: &mut [f32], w: &[f32]) {
        scalar::rmsnorm_in_place(x, w)
    }

    /// Softmax in place, run.c's steps. The SIMD sets take the max and the sum
    /// in lanes and use their own lane `exp` (within a few ulp of libm's
    /// `expf`, see [`KernelSet::exp`]); the division is per element as in run.c.
    pub fn softmax(&self, x: &mut [f32]) {
        match self.kind {
            KernelKind::Scalar => scalar::softmax(x),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Sse2 => unsafe { x86::softmax_sse2(x) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx2 => unsafe { x86::softmax_avx2(x) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx512 => unsafe { x86_512::softmax_avx512(x) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::softmax(x),
        }
    }

    /// SwiGLU `hb = silu(hb) * hb2` in run.c's order of operations (the SIMD
    /// sets differ from scalar only through their lane `exp`).
    pub fn swiglu(&self, hb: &mut [f32], hb2: &[f32]) {
        match self.kind {
            KernelKind::Scalar => scalar::swiglu(hb, hb2),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Sse2 => unsafe { x86::swiglu_sse2(hb, hb2) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx2 => unsafe { x86::swiglu_avx2(hb, hb2) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx512 => unsafe { x86_512::swiglu_avx512(hb, hb2) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::swiglu(hb, hb2),
        }
    }

    /// RoPE over whole heads with a `[cos, sin]` per pair index inside a head
    /// (`cs.len() == head_size / 2`). Every set gives the scalar kernel's bits.
    pub fn rope(&self, v: &mut [f32], cs: &[[f32; 2]]) {
        match self.kind {
            KernelKind::Scalar => scalar::rope(v, cs),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Sse2 => unsafe { x86::rope_sse2(v, cs.as_flattened()) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx2 => unsafe { x86::rope_avx2(v, cs.as_flattened()) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx512 => unsafe { x86_512::rope_avx512(v, cs.as_flattened()) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::rope(v, cs),
        }
    }

    /// `x[i] = e^x[i]` with this set's exponential (libm's `expf` for the
    /// scalar set; the lane polynomial for the SIMD sets).
    pub fn exp(&self, x: &mut [f32]) {
        match self.kind {
            KernelKind::Scalar => x.iter_mut().for_each(|v| *v = libm::expf(*v)),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Sse2 => unsafe { x86::exp_slice_sse2(x) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx2 => unsafe { x86::exp_slice_avx2(x) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: CPU support checked when the set was made.
            KernelKind::Avx512 => unsafe { x86_512::exp_slice_avx512(x) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => x.iter_mut().for_each(|v| *v = libm::expf(*v)),
        }
    }

    /// Int8 matrix-vector product (see [`crate::quant`]).
    ///
    /// # Panics
    /// If the slices do not have the documented shapes (a programming error).
    pub fn q8_matmul(&self, out: &mut [f32], qw: &[i8], sw: &[f32], qx: &[i8], sx: &[f32]) {
        let groups = sx.len();
        let n = groups * crate::quant::GROUP;
        let rows = out.len();
        assert!(qx.len() == n && qw.len() >= rows * n && sw.len() >= rows * groups, "q8_matmul: bad shapes");
        match self.kind {
            // The AVX-512 set uses the AVX2 int8 kernel: a VNNI one (vpdpbusd, 64
            // bytes a step) measured 20-30% slower end to end on the 110M shape
            // here (Zen 5, both with software prefetch; the int8 matmul is bound by
            // memory, not arithmetic), so it was removed (see git history, 2026-12-03).
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2+FMA checked when the set was made (the AVX-512 set
            // implies both); shapes asserted above.
            KernelKind::Avx2 | KernelKind::Avx512 => unsafe { x86::q8_matmul_avx2(out, qw, sw, qx, sx) },
            _ => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = scalar::q8_dot(&qw[i * n..(i + 1) * n], &sw[i * groups..(i + 1) * groups], qx, sx);
                }
            }
        }
    }

    /// Matrix-matrix product for a batch of tokens:
    /// `out[i*t + k] = Σ_j w[i*cols + j] * x[k*cols + j]`, with `t = x.len() / cols`
    /// tokens and `rows = out.len() / t` (out is row-major over rows, one
    /// column per token, so that a task's rows are one slice).
    ///
    /// Each value has the bits the matrix-vector product gives. The AVX2 and
    /// AVX-512 sets tile it (`x86::matmat_avx2`: three tokens per weight load,
    /// rows in blocks kept in L2). The others go by chunks of rows of
    /// [`matmat_chunk_rows`] (a multiple of 4 that stays in L1): each chunk is
    /// read from memory once and multiplied by every token with
    /// [`KernelSet::matmul`]; the bits match provided the first row is a
    /// multiple of 4 rows into the matrix (the SSE2 set sums blocks of 4 rows;
    /// `split_rows` with `align` a multiple of `4 * t` keeps that).
    ///
    /// # Panics
    /// If `cols` is 0, `x` is not whole tokens, `out` is not whole rows of `t`,
    /// or `w` is shorter than `rows * cols` (programming errors).
    pub fn matmat(&self, out: &mut [f32], x: &[f32], w: &[f32], cols: usize) {
        let (t, rows) = batch_shape(out.len(), x.len(), cols, "matmat");
        assert!(w.len() >= rows * cols, "matmat: weight slice too short");
        #[cfg(target_arch = "x86_64")]
        if matches!(self.kind, KernelKind::Avx2 | KernelKind::Avx512) {
            // SAFETY: AVX2+FMA checked when the set was made (the AVX-512 set
            // implies both); the shapes were checked just above.
            unsafe { x86::matmat_avx2(out, x, &w[..rows * cols], cols) };
            return;
        }
        by_chunks(out, t, matmat_chunk_rows(cols * 4), |r0, k, o| {
            self.matmul(o, &x[k * cols..(k + 1) * cols], &w[r0 * cols..(r0 + o.len()) * cols]);
        });
    }

    /// [`KernelSet::matmat`] with int8 weights: `qx` holds `t` quantized
    /// tokens of `n = groups * 32` values and `sx` their `t * groups` scales;
    /// each value has the bits of [`KernelSet::q8_matmul`].
    ///
    /// # Panics
    /// If the slices do not have these shapes (a programming error).
    pub fn q8_matmat(&self, out: &mut [f32], qw: &[i8], sw: &[f32], qx: &[i8], sx: &[f32], groups: usize) {
        let n = groups * crate::quant::GROUP;
        let (t, rows) = batch_shape(out.len(), qx.len(), n, "q8_matmat");
        assert!(sx.len() == t * groups && qw.len() >= rows * n && sw.len() >= rows * groups, "q8_matmat: bad shapes");
        by_chunks(out, t, matmat_chunk_rows(n), |r0, k, o| {
            let (r1, (qt, st)) = (r0 + o.len(), (&qx[k * n..(k + 1) * n], &sx[k * groups..(k + 1) * groups]));
            self.q8_matmul(o, &qw[r0 * n..r1 * n], &sw[r0 * groups..r1 * groups], qt, st);
        });
    }
}

/// Fills `out` (rows of `t` values, as [`KernelSet::matmat`] lays it out) by
/// chunks of `chunk` rows, each chunk token by token: `f(first_row, k, o)`
/// writes token `k`'s values of the chunk's rows into `o` (one per row), so
/// a chunk's weights stay in cache while every token goes over them.
fn by_chunks(out: &mut [f32], t: usize, chunk: usize, mut f: impl FnMut(usize, usize, &mut [f32])) {
    let mut buf = [0f32; MATMAT_MAX_CHUNK];
    for (c, o) in out.chunks_mut(chunk * t).enumerate() {
        let r = o.len() / t;
        for k in 0..t {
            f(c * chunk, k, &mut buf[..r]);
            for (i, v) in buf[..r].iter().enumerate() {
                o[i * t + k] = *v;
            }
        }
    }
}

/// The most rows a chunk of [`KernelSet::matmat`] holds.
const MATMAT_MAX_CHUNK: usize = 64;
/// The weight bytes a chunk of [`KernelSet::matmat`] aims at (it stays in L1
/// while every token of the batch is multiplied by it).
const MATMAT_CHUNK_BYTES: usize = 16 * 1024;

/// Rows per chunk of a batched product over rows of `row_bytes`: a multiple of
/// 4 from 4 to [`MATMAT_MAX_CHUNK`].
fn matmat_chunk_rows(row_bytes: usize) -> usize {
    (MATMAT_CHUNK_BYTES / row_bytes.max(1)).clamp(4, MATMAT_MAX_CHUNK) & !3
}

/// `(tokens, rows)` of a batched product with `out_len` outputs and `x_len`
/// inputs of `cols` columns.
fn batch_shape(out_len: usize, x_len: usize, cols: usize, what: &str) -> (usize, usize) {
    assert!(cols > 0 && x_len > 0 && x_len.is_multiple_of(cols), "{what}: x is not whole tokens of {cols} columns");
    let t = x_len / cols;
    assert!(out_len.is_multiple_of(t), "{what}: out is not whole rows of {t} tokens");
    (t, out_len / t)
}

/// Transposes `src` (`rows` rows of `t` values, as [`KernelSet::matmat`]
/// writes them) into `dst` (`t` rows of `rows` values, one per token).
pub fn untranspose(dst: &mut [f32], src: &[f32], t: usize) {
    let rows = src.len() / t.max(1);
    assert!(dst.len() == rows * t && src.len() == rows * t, "untranspose: shapes differ");
    for (k, d) in dst.chunks_exact_mut(rows).enumerate() {
        for (i, v) in d.iter_mut().enumerate() {
            *v = src[i * t + k];
        }
    }
}

/// A raw pointer to an output buffer shared by tasks that write disjoint ranges.
struct RowsOut(*mut f32, usize);
// SAFETY: tasks only write disjoint ranges through it (see `split_rows`).
unsafe impl Sync for RowsOut {}

impl RowsOut {
    /// # Safety
    /// No two live results may overlap, `start + len <= self.1`, and `'a` may
    /// not outlive the borrow of the buffer this was made from.
    unsafe fn slice<'a>(&self, start: usize, len: usize) -> &'a mut [f32] {
        debug_assert!(start + len <= self.1);
        // SAFETY: in bounds and unaliased by the caller's contract.
        unsafe { core::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

/// Runs `f(task, rows)` over `out` split into `n_tasks` disjoint row ranges
/// (each a multiple of `align` rows except the last), on `par`.
pub fn split_rows(
    par: &dyn Parallel,
    out: &mut [f32],
    n_tasks: usize,
    align: usize,
    f: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    let rows = out.len();
    let n_tasks = n_tasks.max(1);
    let per = rows.div_ceil(n_tasks).div_ceil(align) * align;
    if n_tasks == 1 || per >= rows {
        f(0, out);
        return;
    }
    let tasks = rows.div_ceil(per);
    let ptr = RowsOut(out.as_mut_ptr(), rows);
    let ptr = &ptr;
    par.run(tasks, &|t| {
        let start = t * per;
        if start >= rows {
            return;
        }
        let len = per.min(rows - start);
        // SAFETY: task t owns rows [t*per, t*per+len), disjoint from every other
        // task's range and inside `out`, which outlives `par.run`.
        let chunk = unsafe { ptr.slice(start, len) };
        f(start, chunk);
    });
}

/// A task of [`split_pairs`]: index, then its slice of each buffer.
pub type PairTask<'a> = dyn Fn(usize, &mut [f32], &mut [f32]) + Sync + 'a;

/// Runs `f(h, &mut a[h*a_stride..][..a_stride], &mut b[h*b_stride..][..b_stride])`
/// for every `h` in `0..n`, on `par` when `parallel` is set (one task per `h`),
/// else in order on the calling thread. Used to run attention heads, each with
/// its own scores row and output slice.
///
/// # Panics
/// If `a` or `b` is shorter than `n` strides (a programming error).
pub fn split_pairs(
    par: &dyn Parallel,
    parallel: bool,
    n: usize,
    (a, a_stride): (&mut [f32], usize),
    (b, b_stride): (&mut [f32], usize),
    f: &PairTask<'_>,
) {
    let (a_len, b_len) = (n.checked_mul(a_stride), n.checked_mul(b_stride));
    assert!(
        a_len.is_some_and(|l| l <= a.len()) && b_len.is_some_and(|l| l <= b.len()),
        "split_pairs: buffers shorter than {n} strides"
    );
    if a_stride == 0 || b_stride == 0 {
        (0..n).for_each(|h| f(h, &mut [], &mut []));
        return;
    }
    if !parallel || n <= 1 || par.threads() <= 1 {
        for (h, (ac, bc)) in a.chunks_exact_mut(a_stride).zip(b.chunks_exact_mut(b_stride)).take(n).enumerate() {
            f(h, ac, bc);
        }
        return;
    }
    let pa = RowsOut(a.as_mut_ptr(), a.len());
    let pb = RowsOut(b.as_mut_ptr(), b.len());
    let (pa, pb) = (&pa, &pb);
    par.run(n, &|h| {
        if h >= n {
            return;
        }
        // SAFETY: task h owns a[h*a_stride..(h+1)*a_stride] and the same range
        // of b (strides checked above to fit in n strides); the ranges of two
        // tasks are disjoint, each index runs once, and both buffers outlive
        // `par.run`.
        let (ac, bc) = unsafe { (pa.slice(h * a_stride, a_stride), pb.slice(h * b_stride, b_stride)) };
        f(h, ac, bc);
    });
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec::Vec;

    fn simd_sets() -> Vec<KernelSet> {
        [KernelKind::Sse2, KernelKind::Avx2, KernelKind::Avx512].into_iter().filter_map(|k| KernelSet::new(k).ok()).collect()
    }

    /// Distance in units in the last place between two finite f32 of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    /// A reproducible spread of values (xorshift), scaled into `[lo, hi)`.
    fn values(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
            })
            .collect()
    }

    /// `attention` gives, per head, the bits of the per-head steps it
    /// replaces (dot / div, softmax, zero then axpy row by row), for every
    /// set, with grouped-query heads, groups that start past head 0, and head
    /// sizes with and without a vector tail.
    #[test]
    fn attention_matches_the_per_head_steps_bit_for_bit() {
        let mut sets = simd_sets();
        sets.push(KernelSet::scalar());
        for ks in sets {
            for (hs, n_heads, kv_mul, rows, group) in
                [(48, 6, 1, 129, 6), (64, 4, 2, 7, 2), (20, 6, 3, 33, 3), (136, 2, 1, 300, 1), (8, 4, 4, 1, 4)]
            {
                let stride = n_heads / kv_mul * hs;
                let (keys, vals) = (values(rows * stride, -1.0, 1.0, 1), values(rows * stride, -2.0, 2.0, 2));
                let q = values(n_heads * hs, -1.0, 1.0, 3);
                let (seq, div) = (rows + 5, libm::sqrtf(hs as f32));
                for first in (0..n_heads).step_by(group) {
                    let heads = Heads {
                        q: &q[first * hs..(first + group) * hs],
                        keys: &keys,
                        values: &vals,
                        stride,
                        rows,
                        head_size: hs,
                        kv_mul,
                        first,
                    };
                    let (mut att, mut out) = (alloc::vec![0.0f32; group * seq], alloc::vec![0.0f32; group * hs]);
                    ks.attention(&heads, &mut att, seq, &mut out, div, None);
                    for i in 0..group {
                        let h = first + i;
                        let ko = h / kv_mul * hs;
                        let qh = &q[h * hs..(h + 1) * hs];
                        let mut a: Vec<f32> =
                            (0..rows).map(|t| ks.dot(qh, &keys[t * stride + ko..t * stride + ko + hs]) / div).collect();
                        ks.softmax(&mut a);
                        let mut o = alloc::vec![0.0f32; hs];
                        for (t, &w) in a.iter().enumerate() {
                            ks.axpy(&mut o, w, &vals[t * stride + ko..t * stride + ko + hs]);
                        }
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        let what = (ks.kind(), hs, kv_mul, rows, h);
                        assert_eq!(bits(&att[i * seq..i * seq + rows]), bits(&a), "scores {what:?}");
                        assert_eq!(bits(&out[i * hs..(i + 1) * hs]), bits(&o), "sums {what:?}");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "rows run past the cache")]
    fn attention_refuses_rows_past_the_cache() {
        let (keys, q) = (alloc::vec![0.0f32; 2 * 16], alloc::vec![0.0f32; 16]);
        let heads = Heads { q: &q, keys: &keys, values: &keys, stride: 16, rows: 3, head_size: 16, kv_mul: 1, first: 0 };
        let (mut att, mut out) = (alloc::vec![0.0f32; 3], alloc::vec![0.0f32; 16]);
        KernelSet::scalar().attention(&heads, &mut att, 3, &mut out, 4.0, None);
    }

    /// Runs `f` with a worker pool of `threads` on scoped std threads.
    fn with_pool(threads: usize, f: impl FnOnce(&pool::WorkerPool)) {
        let (pool, workers) = pool::WorkerPool::new(threads);
        std::thread::scope(|s| {
            for w in &workers {
                s.spawn(|| w.run(&std::thread::yield_now));
            }
            f(&pool);
            pool.stop();
        });
    }

    #[test]
    fn split_pairs_gives_each_index_its_own_slices() {
        with_pool(3, |pool| {
            for parallel in [false, true] {
                let (mut a, mut b) = (alloc::vec![0.0f32; 7 * 5], alloc::vec![0.0f32; 7 * 3 + 2]);
                split_pairs(pool, parallel, 7, (&mut a, 5), (&mut b, 3), &|h, x, y| {
                    assert_eq!((x.len(), y.len()), (5, 3));
                    x.fill(h as f32 + 1.0);
                    y.fill(-(h as f32) - 1.0);
                });
                for h in 0..7 {
                    assert!(a[h * 5..(h + 1) * 5].iter().all(|&v| v == h as f32 + 1.0), "a, head {h}");
                    assert!(b[h * 3..(h + 1) * 3].iter().all(|&v| v == -(h as f32) - 1.0), "b, head {h}");
                }
                assert_eq!(&b[21..], &[0.0, 0.0], "wrote past the last stride");
            }
        });
    }

    /// Threads split matmul rows and attention heads, never a sum: logits on a
    /// pool are bit-identical to sequential ones at every position (the
    /// parallel attention starts at position 127 on this model).
    #[test]
    fn forward_on_a_pool_is_bit_identical_to_sequential() {
        static MODEL: &[u8] = include_bytes!("../../../../models/stories260K.bin");
        let mut store = None;
        let ckpt = crate::Checkpoint::parse(crate::checkpoint::aligned(MODEL, &mut store)).expect("stories260K parses");
        let ks = KernelSet::best();
        let mut seq = crate::Transformer::new(&ckpt, ks, crate::WeightMode::F32);
        let mut par = crate::Transformer::new(&ckpt, ks, crate::WeightMode::F32);
        with_pool(2, |pool| {
            let mut token = 1;
            for pos in 0..ckpt.config.seq_len {
                let a: Vec<u32> = seq.forward(token, pos, &crate::Sequential).expect("in range").iter().map(|v| v.to_bits()).collect();
                let b: Vec<u32> = par.forward(token, pos, pool).expect("in range").iter().map(|v| v.to_bits()).collect();
                assert_eq!(a, b, "position {pos}");
                token = crate::sampler::argmax(&f32s(&a));
            }
        });
    }

    fn f32s(bits: &[u32]) -> Vec<f32> {
        bits.iter().map(|&b| f32::from_bits(b)).collect()
    }

    #[test]
    fn lane_exp_is_within_two_ulp_of_libm() {
        // Every 97th f32 bit pattern between -104 and 88.7 (both signs).
        let mut xs = Vec::new();
        for bits in (0u32..0x42b1_7000).step_by(97) {
            let x = f32::from_bits(bits);
            xs.push(x);
            if x <= 104.0 {
                xs.push(-x);
            }
        }
        for ks in simd_sets() {
            let mut got = xs.clone();
            ks.exp(&mut got);
            let mut worst = (0u32, 0.0f32);
            for (&x, &g) in xs.iter().zip(&got) {
                let want = libm::expf(x);
                // Positive floats (subnormals and zero included) are ordered like their bits.
                let u = ulps(g, want);
                if u > worst.0 {
                    worst = (u, x);
                }
            }
            std::eprintln!("{}: max error of the lane exp against libm: {} ulp at x = {:e}", ks.kind().name(), worst.0, worst.1);
            assert!(worst.0 <= 2, "{}: {} ulp at {:e}", ks.kind().name(), worst.0, worst.1);
            // The ends: overflow region and underflow to zero.
            let mut ends = [-1000.0f32, -104.5, 0.0, 88.0, -0.0];
            ks.exp(&mut ends);
            assert_eq!(ends[0], 0.0);
            assert_eq!(ends[1], 0.0);
            assert_eq!(ends[2], 1.0);
            assert_eq!(ends[4], 1.0);
            assert!(ulps(ends[3], libm::expf(88.0)) <= 2);
        }
    }

    #[test]
    fn simd_softmax_matches_scalar_for_every_length() {
        for ks in simd_sets() {
            for n in 1..70 {
                let x = values(n, -30.0, 12.0, n as u64 + 7);
                let (mut a, mut b) = (x.clone(), x.clone());
                scalar::softmax(&mut a);
                ks.softmax(&mut b);
                let mut sum = 0.0f32;
                for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                    assert!((p - q).abs() <= 1e-6 + 4e-7 * p, "{} n={n} i={i}: {p} vs {q}", ks.kind().name());
                    sum += q;
                }
                assert!((sum - 1.0).abs() < 1e-5, "{} n={n}: sums to {sum}", ks.kind().name());
                // The argmax survives.
                assert_eq!(crate::sampler::argmax(&a), crate::sampler::argmax(&b));
            }
        }
    }

    #[test]
    fn simd_swiglu_matches_scalar_for_every_length() {
        for ks in simd_sets() {
            for n in 0..40 {
                let h = values(n, -12.0, 12.0, 3 * n as u64 + 1);
                let g = values(n, -3.0, 3.0, 5 * n as u64 + 2);
                let (mut a, mut b) = (h.clone(), h.clone());
                scalar::swiglu(&mut a, &g);
                ks.swiglu(&mut b, &g);
                for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                    assert!((p - q).abs() <= 1e-6 * (1.0 + p.abs()), "{} n={n} i={i}: {p} vs {q}", ks.kind().name());
                }
            }
        }
    }

    #[test]
    fn simd_rope_is_bit_identical_to_scalar() {
        for ks in simd_sets() {
            // Head sizes with and without full vectors, several heads.
            for hs in [2usize, 4, 6, 8, 10, 16, 48, 64] {
                let cs: Vec<[f32; 2]> = (0..hs / 2)
                    .map(|p| {
                        let a = 3.7 * libm::powf(10000.0, -((2 * p) as f32) / hs as f32);
                        [libm::cosf(a), libm::sinf(a)]
                    })
                    .collect();
                let v = values(hs * 3, -2.0, 2.0, hs as u64);
                let (mut a, mut b) = (v.clone(), v.clone());
                scalar::rope(&mut a, &cs);
                ks.rope(&mut b, &cs);
                assert_ne!(a, v, "rope did nothing");
                let ab: Vec<u32> = a.iter().map(|x| x.to_bits()).collect();
                let bb: Vec<u32> = b.iter().map(|x| x.to_bits()).collect();
                assert_eq!(ab, bb, "{} head size {hs}", ks.kind().name());
            }
        }
    }

    /// Every SIMD int8 product against the scalar one, over shapes with odd
    /// and even group counts, more and fewer than 16 groups, and row counts
    /// that leave a tail after the blocks of four. The integer dots are exact
    /// in every set; only the order of the f32 scale sums differs.
    #[test]
    fn simd_q8_matmul_matches_scalar_over_shapes() {
        use crate::quant::{QBatch, QMatrix};
        let sets: Vec<KernelSet> = simd_sets().into_iter().filter(|k| k.kind() != KernelKind::Sse2).collect();
        for (rows, cols) in [(1usize, 32usize), (3, 64), (5, 96), (4, 288), (7, 512), (9, 544), (13, 768), (6, 1056), (2, 2048)] {
            let w = values(rows * cols, -1.0, 1.0, (rows * 131 + cols) as u64);
            let x = values(cols, -3.0, 3.0, cols as u64 + 5);
            let m = QMatrix::quantize(&w, rows, cols);
            let mut qx = QBatch::new(1, cols);
            qx.set(&x, 1);
            let mut want = alloc::vec![0.0f32; rows];
            KernelSet::scalar().q8_matmul(&mut want, &m.q, &m.scales, &qx.q, &qx.scales);
            for ks in &sets {
                let mut got = alloc::vec![f32::NAN; rows];
                ks.q8_matmul(&mut got, &m.q, &m.scales, &qx.q, &qx.scales);
                for (r, (a, b)) in want.iter().zip(&got).enumerate() {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{} {rows}x{cols} row {r}: {a} vs {b}", ks.kind().name());
                }
            }
        }
    }

    /// The f32 products of every SIMD set against scalar, odd lengths included.
    #[test]
    fn simd_matmul_matches_scalar_over_shapes() {
        for (rows, cols) in [(1usize, 1usize), (3, 7), (5, 16), (4, 17), (7, 63), (9, 64), (3, 65), (2, 288), (5, 1000)] {
            let w = values(rows * cols, -1.0, 1.0, (rows * 7 + cols) as u64);
            let x = values(cols, -2.0, 2.0, cols as u64 + 9);
            let mut want = alloc::vec![0.0f32; rows];
            KernelSet::scalar().matmul(&mut want, &x, &w);
            for ks in simd_sets() {
                let mut got = alloc::vec![f32::NAN; rows];
                ks.matmul(&mut got, &x, &w);
                for (r, (a, b)) in want.iter().zip(&got).enumerate() {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{} {rows}x{cols} row {r}: {a} vs {b}", ks.kind().name());
                }
                let mut y = values(cols, -1.0, 1.0, 3);
                let mut z = y.clone();
                ks.axpy(&mut y, 0.37, &x);
                KernelSet::scalar().axpy(&mut z, 0.37, &x);
                for (a, b) in y.iter().zip(&z) {
                    assert!((a - b).abs() <= 1e-6 * (1.0 + a.abs()), "{} axpy {cols}", ks.kind().name());
                }
                let (mut o1, mut o2) = (alloc::vec![0.0; cols], alloc::vec![0.0; cols]);
                ks.rmsnorm(&mut o1, &x, &w[..cols]);
                KernelSet::scalar().rmsnorm(&mut o2, &x, &w[..cols]);
                for (a, b) in o1.iter().zip(&o2) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{} rmsnorm {cols}: {a} vs {b}", ks.kind().name());
                }
            }
        }
    }

    /// The batched product of every set, token by token, has the bits of its
    /// matrix-vector product: every column count up to 70 (all tails), long
    /// rows, batches from 1 to 8 (tiles of 3 and both remainders), row counts
    /// across a 128 KiB block.
    #[test]
    fn matmat_gives_the_bits_of_matmul_token_by_token() {
        let mut sets = simd_sets();
        sets.push(KernelSet::scalar());
        let mut shapes: alloc::vec::Vec<(usize, usize, usize)> = (1..=70).map(|c| (1 + c % 9, c, 1 + c % 8)).collect();
        shapes.extend([(45, 768, 16), (20, 2048, 7), (130, 288, 5)]);
        for (rows, cols, t) in shapes {
            let w = values(rows * cols, -1.0, 1.0, (rows * 5 + cols) as u64);
            let x = values(t * cols, -2.0, 2.0, (cols * 3 + t) as u64);
            for ks in &sets {
                let mut got = alloc::vec![f32::NAN; rows * t];
                ks.matmat(&mut got, &x, &w, cols);
                for k in 0..t {
                    let mut want = alloc::vec![0.0f32; rows];
                    ks.matmul(&mut want, &x[k * cols..(k + 1) * cols], &w);
                    for i in 0..rows {
                        assert_eq!(
                            got[i * t + k].to_bits(),
                            want[i].to_bits(),
                            "{} {rows}x{cols}, token {k} of {t}, row {i}",
                            ks.kind().name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rope_with_no_pairs_is_a_no_op() {
        // A head size of 1 (dim == n_heads) leaves no pairs to rotate.
        for ks in [KernelSet::scalar()].into_iter().chain(simd_sets()) {
            let mut v = [1.0f32, 2.0, 3.0];
            ks.rope(&mut v, &[]);
            assert_eq!(v, [1.0, 2.0, 3.0]);
        }
    }
}
