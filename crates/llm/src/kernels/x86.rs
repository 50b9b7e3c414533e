//! SSE2 and AVX2+FMA kernels. Every function here is `unsafe` only because of
//! `#[target_feature]`: the caller ([`super::KernelSet`]) must have checked the
//! CPU. Memory is touched only through slices whose lengths are checked by the
//! safe wrappers in `super` before the call; loads are unaligned (`loadu`).
use core::arch::x86_64::*;

use crate::quant::GROUP;

// ---------------------------------------------------------------- SSE2 ----

#[inline]
#[target_feature(enable = "sse2")]
fn hsum128(v: __m128) -> f32 {
    let hi = _mm_movehl_ps(v, v);
    let s = _mm_add_ps(v, hi);
    let sh = _mm_shuffle_ps::<0b01>(s, s);
    _mm_cvtss_f32(_mm_add_ss(s, sh))
}

/// Dot product, 4 lanes.
///
/// # Safety
/// The CPU supports SSE2 (always true on x86-64); `a.len() == b.len()`.
#[target_feature(enable = "sse2")]
pub unsafe fn dot_sse2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let n4 = n & !3;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm_setzero_ps();
    let mut j = 0;
    while j < n4 {
        // SAFETY: j + 4 <= n4 <= len of both slices.
        unsafe { acc = _mm_add_ps(acc, _mm_mul_ps(_mm_loadu_ps(pa.add(j)), _mm_loadu_ps(pb.add(j)))) };
        j += 4;
    }
    let mut s = hsum128(acc);
    for k in n4..n {
        s += a[k] * b[k];
    }
    s
}

/// Matrix-vector product, four rows at a time.
///
/// # Safety
/// SSE2 available; `w.len() >= out.len() * x.len()`.
#[target_feature(enable = "sse2")]
pub unsafe fn matmul_sse2(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    let rows = out.len();
    debug_assert!(w.len() >= rows * n);
    let n4 = n & !3;
    let px = x.as_ptr();
    let mut i = 0;
    while i + 4 <= rows {
        let r = w[i * n..(i + 4) * n].as_ptr();
        let (mut a0, mut a1, mut a2, mut a3) = (_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps());
        let mut j = 0;
        while j < n4 {
            // SAFETY: rows i..i+4 of length n lie in the slice taken above; j + 4 <= n.
            unsafe {
                let xv = _mm_loadu_ps(px.add(j));
                a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_loadu_ps(r.add(j)), xv));
                a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_loadu_ps(r.add(n + j)), xv));
                a2 = _mm_add_ps(a2, _mm_mul_ps(_mm_loadu_ps(r.add(2 * n + j)), xv));
                a3 = _mm_add_ps(a3, _mm_mul_ps(_mm_loadu_ps(r.add(3 * n + j)), xv));
            }
            j += 4;
        }
        let mut s = [hsum128(a0), hsum128(a1), hsum128(a2), hsum128(a3)];
        for (k, sk) in s.iter_mut().enumerate() {
            let row = &w[(i + k) * n..(i + k + 1) * n];
            for t in n4..n {
                *sk += row[t] * x[t];
            }
        }
        out[i..i + 4].copy_from_slice(&s);
        i += 4;
    }
    while i < rows {
        // SAFETY: SSE2 is available (caller's contract).
        out[i] = unsafe { dot_sse2(&w[i * n..(i + 1) * n], x) };
        i += 1;
    }
}

/// `out += a * v`, 4 lanes.
///
/// # Safety
/// SSE2 available.
#[target_feature(enable = "sse2")]
pub unsafe fn axpy_sse2(out: &mut [f32], a: f32, v: &[f32]) {
    let n = out.len().min(v.len());
    let n4 = n & !3;
    let av = _mm_set1_ps(a);
    let (po, pv) = (out.as_mut_ptr(), v.as_ptr());
    let mut j = 0;
    while j < n4 {
        // SAFETY: j + 4 <= n <= both lengths.
        unsafe { _mm_storeu_ps(po.add(j), _mm_add_ps(_mm_loadu_ps(po.add(j)), _mm_mul_ps(av, _mm_loadu_ps(pv.add(j))))) };
        j += 4;
    }
    for k in n4..n {
        out[k] += a * v[k];
    }
}

// ---------------------------------------------------------------- AVX2 ----

/// One row at a time with four FMA chains measured faster here (Zen 3, 15M and
/// 110M shapes: the single sequential stream suits the prefetcher) than four
/// interleaved rows; the four-row path is kept for other CPUs.
const ONE_ROW: bool = true;

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum256(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let hi2 = _mm_movehl_ps(s, s);
    let s = _mm_add_ps(s, hi2);
    let sh = _mm_shuffle_ps::<0b01>(s, s);
    _mm_cvtss_f32(_mm_add_ss(s, sh))
}

/// Dot product, 4×8 lanes with FMA (four independent chains).
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: AVX2 and FMA available (caller's contract); b[..n] is as long as a[..n].
    unsafe { dot_n_avx2::<1>(&a[..n], [&b[..n]])[0] }
}

/// Matrix-vector product: four rows at a time, two 8-lane FMA chains per row
/// (eight independent chains hide the FMA latency; four row streams keep the
/// hardware prefetcher busy).
///
/// # Safety
/// AVX2 and FMA available; `w.len() >= out.len() * x.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matmul_avx2(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    let rows = out.len();
    let n16 = n & !15;
    let n8 = n & !7;
    let px = x.as_ptr();
    let mut i = 0;
    if ONE_ROW {
        for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
            // SAFETY: AVX2 and FMA are available (caller's contract).
            // No software prefetch: two rows ahead measured within noise of
            // none on Zen 5 (33.5 vs 33.1 GB/s) and 15-20% slower than none on
            // Zen 4 (2026-12-06, greedy, one thread, alternated runs: 15M
            // 380-388 against 429-472 tok/s, 110M 50-53 against 55-62; two
            // threads 110M 65-68 against 70-74): it competes with the
            // hardware prefetcher over the one sequential stream.
            *o = unsafe { dot_avx2(row, x) };
        }
        return;
    }
    while i + 4 <= rows {
        let r = w[i * n..(i + 4) * n].as_ptr();
        let z = _mm256_setzero_ps();
        let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
        let (mut b0, mut b1, mut b2, mut b3) = (z, z, z, z);
        let mut j = 0;
        while j < n16 {
            // SAFETY: rows i..i+4 of length n lie in the slice taken above; j + 16 <= n.
            unsafe {
                let x0 = _mm256_loadu_ps(px.add(j));
                let x1 = _mm256_loadu_ps(px.add(j + 8));
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(j)), x0, a0);
                b0 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(j + 8)), x1, b0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(n + j)), x0, a1);
                b1 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(n + j + 8)), x1, b1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(2 * n + j)), x0, a2);
                b2 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(2 * n + j + 8)), x1, b2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(3 * n + j)), x0, a3);
                b3 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(3 * n + j + 8)), x1, b3);
            }
            j += 16;
        }
        if j < n8 {
            // SAFETY: as above, j + 8 <= n.
            unsafe {
                let x0 = _mm256_loadu_ps(px.add(j));
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(j)), x0, a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(n + j)), x0, a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(2 * n + j)), x0, a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(3 * n + j)), x0, a3);
            }
        }
        let mut s = [
            hsum256(_mm256_add_ps(a0, b0)),
            hsum256(_mm256_add_ps(a1, b1)),
            hsum256(_mm256_add_ps(a2, b2)),
            hsum256(_mm256_add_ps(a3, b3)),
        ];
        for (k, sk) in s.iter_mut().enumerate() {
            let row = &w[(i + k) * n..(i + k + 1) * n];
            for t in n8..n {
                *sk += row[t] * x[t];
            }
        }
        out[i..i + 4].copy_from_slice(&s);
        i += 4;
    }
    while i < rows {
        // SAFETY: AVX2 and FMA are available (caller's contract).
        out[i] = unsafe { dot_avx2(&w[i * n..(i + 1) * n], x) };
        i += 1;
    }
}

/// `N` dot products of one row `w` with `N` vectors at once, each summed in
/// the AVX2 set's order (four 8-lane FMA chains per vector over blocks of 32,
/// `(a0+a1)+(a2+a3)`, one chain over blocks of 8, `hsum256`, then the last
/// values one by one): each weight vector is loaded once for the `N`
/// vectors. `4 * N` accumulators: `N` up to 3 stays in the 16 ymm registers.
/// `N = 1` is [`dot_avx2`].
///
/// # Safety
/// AVX2 and FMA available; every `xs[t]` at least `w.len()` long.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // a chain index picks the offset and the accumulator together
unsafe fn dot_n_avx2<const N: usize>(w: &[f32], xs: [&[f32]; N]) -> [f32; N] {
    let n = w.len();
    debug_assert!(xs.iter().all(|x| x.len() >= n));
    let (n8, n32) = (n & !7, n & !31);
    let pw = w.as_ptr();
    let px = xs.map(|x| x.as_ptr());
    let z = _mm256_setzero_ps();
    let mut acc = [[z; 4]; N];
    let mut j = 0;
    while j < n32 {
        for k in 0..4 {
            // SAFETY: j + 8k + 8 <= n32 <= n <= every length.
            let wv = unsafe { _mm256_loadu_ps(pw.add(j + 8 * k)) };
            for t in 0..N {
                // SAFETY: as above.
                acc[t][k] = _mm256_fmadd_ps(wv, unsafe { _mm256_loadu_ps(px[t].add(j + 8 * k)) }, acc[t][k]);
            }
        }
        j += 32;
    }
    let mut one = [z; N];
    for t in 0..N {
        one[t] = _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3]));
    }
    while j < n8 {
        // SAFETY: j + 8 <= n8 <= every length.
        let wv = unsafe { _mm256_loadu_ps(pw.add(j)) };
        for t in 0..N {
            // SAFETY: as above.
            one[t] = _mm256_fmadd_ps(wv, unsafe { _mm256_loadu_ps(px[t].add(j)) }, one[t]);
        }
        j += 8;
    }
    let mut s = [0.0f32; N];
    for t in 0..N {
        s[t] = hsum256(one[t]);
        for k in n8..n {
            s[t] += w[k] * xs[t][k];
        }
    }
    s
}

/// Matrix-matrix product for a batch (see `KernelSet::matmat`: `out[i*t + k]`
/// for `t = x.len() / cols` tokens): rows in blocks of about 128 KiB of
/// weights (kept in L2), and within a block the tokens by tiles of 3, each
/// row loaded once per tile ([`dot_n_avx2`]). Every value has the bits of
/// [`matmul_avx2`] (one row at a time, [`dot_n_avx2`] with `N = 1`).
///
/// # Safety
/// AVX2 and FMA available; `w.len() >= rows * cols`, `x.len() == t * cols`,
/// `out.len() == rows * t`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn matmat_avx2(out: &mut [f32], x: &[f32], w: &[f32], cols: usize) {
    let t = x.len() / cols;
    let rows = out.len() / t;
    let block = ((128 << 10) / (cols * 4)).max(1);
    let xt = |k: usize| &x[k * cols..(k + 1) * cols];
    for r0 in (0..rows).step_by(block) {
        let r1 = (r0 + block).min(rows);
        let mut k = 0;
        while k < t {
            let n = (t - k).min(3);
            for i in r0..r1 {
                let row = &w[i * cols..(i + 1) * cols];
                let o = &mut out[i * t + k..i * t + k + n];
                // SAFETY: AVX2 and FMA available (caller's contract); each x is cols long.
                unsafe {
                    match n {
                        3 => o.copy_from_slice(&dot_n_avx2::<3>(row, [xt(k), xt(k + 1), xt(k + 2)])),
                        2 => o.copy_from_slice(&dot_n_avx2::<2>(row, [xt(k), xt(k + 1)])),
                        _ => o.copy_from_slice(&dot_n_avx2::<1>(row, [xt(k)])),
                    }
                }
            }
            k += n;
        }
    }
}

/// `out += a * v`, 8 lanes with FMA.
///
/// # Safety
/// AVX2 and FMA available.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn axpy_avx2(out: &mut [f32], a: f32, v: &[f32]) {
    let n = out.len().min(v.len());
    let n8 = n & !7;
    let av = _mm256_set1_ps(a);
    let (po, pv) = (out.as_mut_ptr(), v.as_ptr());
    let mut j = 0;
    while j < n8 {
        // SAFETY: j + 8 <= n <= both lengths.
        unsafe { _mm256_storeu_ps(po.add(j), _mm256_fmadd_ps(av, _mm256_loadu_ps(pv.add(j)), _mm256_loadu_ps(po.add(j)))) };
        j += 8;
    }
    for k in n8..n {
        out[k] += a * v[k];
    }
}

/// The scores of [`super::KernelSet::attention`] with this set's dot inlined.
///
/// # Safety
/// AVX2 and FMA available; `h` checked for `n` heads and `att`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn attention_scores_avx2(h: &super::Heads<'_>, n: usize, att: &mut [f32], att_stride: usize, div: f32) {
    // SAFETY: AVX2 and FMA available (caller's contract).
    super::scores_with(h, n, att, att_stride, div, |a, b| unsafe { dot_avx2(a, b) })
}

/// The weighted sums of [`super::KernelSet::attention`] with this set's axpy inlined.
///
/// # Safety
/// AVX2 and FMA available; `h` checked for `n` heads, `att` and `out`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn attention_sums_avx2(h: &super::Heads<'_>, n: usize, att: &[f32], att_stride: usize, out: &mut [f32]) {
    // SAFETY: AVX2 and FMA available (caller's contract).
    super::sums_with(h, n, att, att_stride, out, |o, a, v| unsafe { axpy_avx2(o, a, v) })
}

/// Sum of squares, 8 lanes with FMA (for RMSNorm).
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn sumsq_avx2(x: &[f32]) -> f32 {
    // SAFETY: same contract.
    unsafe { dot_avx2(x, x) }
}

/// `o[i] = w[i] * (s * x[i])`, 8 lanes (the RMSNorm scale step).
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn scale_mul_avx2(o: &mut [f32], x: &[f32], w: &[f32], s: f32) {
    let n = o.len().min(x.len()).min(w.len());
    let n8 = n & !7;
    let sv = _mm256_set1_ps(s);
    let (po, px, pw) = (o.as_mut_ptr(), x.as_ptr(), w.as_ptr());
    let mut j = 0;
    while j < n8 {
        // SAFETY: j + 8 <= n <= every length.
        unsafe {
            let v = _mm256_mul_ps(_mm256_loadu_ps(pw.add(j)), _mm256_mul_ps(sv, _mm256_loadu_ps(px.add(j))));
            _mm256_storeu_ps(po.add(j), v);
        }
        j += 8;
    }
    for k in n8..n {
        o[k] = w[k] * (s * x[k]);
    }
}

/// Rows per block of [`q8_matmul_avx2`]: one row, one sequential weight
/// stream, prefetched [`Q8_AHEAD`] rows ahead, as the generated int8 kernels
/// do. Against the earlier 4 rows and 8 ahead, 2026-12-03 on an AVX2 Zen 3-class
/// host, 110M int8 greedy 64 tokens, 4 alternated runs each: one thread
/// 58-79 tok/s against 59-65, two threads 84-104 against 73-93; 15M 367
/// against 334. (Each row's sum is independent of the blocking: same bits.)
const Q8_ROWS: usize = 1;
/// Rows ahead that [`q8_matmul_avx2`] prefetches.
const Q8_AHEAD: usize = 16;

/// Int8 (Q8, groups of 32) matrix-vector product, [`Q8_ROWS`] rows at a time:
/// `maddubs` on |x| and sign-adjusted w, `madd` to i32, then an f32 FMA with
/// the two group scales.
///
/// # Safety
/// AVX2 and FMA available; `qw.len() >= rows * qx.len()`,
/// `sw.len() >= rows * groups`, `qx.len() == groups * 32 == sx.len() * 32`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn q8_matmul_avx2(out: &mut [f32], qw: &[i8], sw: &[f32], qx: &[i8], sx: &[f32]) {
    let groups = sx.len();
    let n = groups * GROUP;
    let rows = out.len();
    let ones = _mm256_set1_epi16(1);
    let px = qx.as_ptr();
    let mut i = 0;
    while i < rows {
        let nr = (rows - i).min(Q8_ROWS);
        let mut acc = [_mm256_setzero_ps(); 4];
        let wrows = &qw[i * n..(i + nr) * n];
        let srows = &sw[i * groups..(i + nr) * groups];
        let pw = wrows.as_ptr();
        for g in 0..groups {
            // SAFETY: g * 32 + 32 <= n = qx.len().
            let xv = unsafe { _mm256_loadu_si256(px.add(g * GROUP) as *const __m256i) };
            let ax = _mm256_sign_epi8(xv, xv);
            let xs = sx[g];
            for (k, a) in acc.iter_mut().enumerate().take(nr) {
                if g % 2 == 0 {
                    // Q8_AHEAD rows ahead, a line per 64 bytes (a hint: it never
                    // faults; measured 15 -> 24-30 GB/s over 110M-shape matrices).
                    _mm_prefetch::<_MM_HINT_T0>(pw.wrapping_add(Q8_AHEAD * n + k * n + g * GROUP));
                }
                // SAFETY: row k < nr lies in `wrows`; g * 32 + 32 <= n.
                let wv = unsafe { _mm256_loadu_si256(pw.add(k * n + g * GROUP) as *const __m256i) };
                let sw8 = _mm256_sign_epi8(wv, xv);
                let p16 = _mm256_maddubs_epi16(ax, sw8);
                let p32 = _mm256_madd_epi16(p16, ones);
                let scale = _mm256_set1_ps(srows[k * groups + g] * xs);
                *a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), scale, *a);
            }
        }
        for k in 0..nr {
            out[i + k] = hsum256(acc[k]);
        }
        i += nr;
    }
}

// ------------------------------------------- exp, softmax, SwiGLU, RoPE ----
//
// `expf` in lanes: n = round(x·log2 e), r = x − n·ln 2 (ln 2 in two parts so
// that n·ln2_hi is exact), e^r by a degree-7 minimax-style polynomial
// (Cephes' expf coefficients), then 2^n applied as two exact power-of-two
// factors so that results in the subnormal range round once, like libm.
// Inputs are clamped to [EXP_LO, EXP_HI]: below EXP_LO libm's expf is 0 or the
// smallest subnormals, above EXP_HI it overflows.
// Measured against libm::expf over every f32 in [-104, 88.7]: see the tests.

use super::lane_exp::{EXP_HI, EXP_LO, LN2_HI, LN2_LO, LOG2E, P};

/// e^x in 4 lanes.
#[inline]
#[target_feature(enable = "sse2")]
fn exp_ps_sse2(x: __m128) -> __m128 {
    let x = _mm_min_ps(_mm_max_ps(x, _mm_set1_ps(EXP_LO)), _mm_set1_ps(EXP_HI));
    let n = _mm_cvtps_epi32(_mm_mul_ps(x, _mm_set1_ps(LOG2E)));
    let nf = _mm_cvtepi32_ps(n);
    let r = _mm_sub_ps(x, _mm_mul_ps(nf, _mm_set1_ps(LN2_HI)));
    let r = _mm_sub_ps(r, _mm_mul_ps(nf, _mm_set1_ps(LN2_LO)));
    let mut p = _mm_set1_ps(P[0]);
    for &c in &P[1..] {
        p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(c));
    }
    let r2 = _mm_mul_ps(r, r);
    let e = _mm_add_ps(_mm_add_ps(_mm_mul_ps(p, r2), r), _mm_set1_ps(1.0));
    let n1 = _mm_srai_epi32::<1>(n);
    let n2 = _mm_sub_epi32(n, n1);
    let bias = _mm_set1_epi32(127);
    let s1 = _mm_castsi128_ps(_mm_slli_epi32::<23>(_mm_add_epi32(n1, bias)));
    let s2 = _mm_castsi128_ps(_mm_slli_epi32::<23>(_mm_add_epi32(n2, bias)));
    _mm_mul_ps(_mm_mul_ps(e, s1), s2)
}

/// e^x in 8 lanes (FMA in the reduction and the polynomial).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp_ps_avx2(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    let n = _mm256_cvtps_epi32(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)));
    let nf = _mm256_cvtepi32_ps(n);
    let r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(LN2_LO), r);
    let mut p = _mm256_set1_ps(P[0]);
    for &c in &P[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let r2 = _mm256_mul_ps(r, r);
    let e = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
    let n1 = _mm256_srai_epi32::<1>(n);
    let n2 = _mm256_sub_epi32(n, n1);
    let bias = _mm256_set1_epi32(127);
    let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
    let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
    _mm256_mul_ps(_mm256_mul_ps(e, s1), s2)
}

/// `out[i] = e^x[i]` with the SSE2 lanes (for tests and the scalar tails'
/// consistency: tails go through the same lanes, padded).
///
/// # Safety
/// SSE2 available.
#[target_feature(enable = "sse2")]
pub unsafe fn exp_slice_sse2(x: &mut [f32]) {
    for c in x.chunks_mut(4) {
        let mut b = [0.0f32; 4];
        b[..c.len()].copy_from_slice(c);
        // SAFETY: `b` holds 4 floats.
        unsafe { _mm_storeu_ps(b.as_mut_ptr(), exp_ps_sse2(_mm_loadu_ps(b.as_ptr()))) };
        let n = c.len();
        c.copy_from_slice(&b[..n]);
    }
}

/// `out[i] = e^x[i]` with the AVX2 lanes.
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn exp_slice_avx2(x: &mut [f32]) {
    for c in x.chunks_mut(8) {
        let mut b = [0.0f32; 8];
        b[..c.len()].copy_from_slice(c);
        // SAFETY: `b` holds 8 floats.
        unsafe { _mm256_storeu_ps(b.as_mut_ptr(), exp_ps_avx2(_mm256_loadu_ps(b.as_ptr()))) };
        let n = c.len();
        c.copy_from_slice(&b[..n]);
    }
}

/// run.c's softmax in 4 lanes: max (order does not matter), `e^(x - max)`
/// (lanes), sum (lanes, then across), and `x / sum` (IEEE division per element,
/// the same values as the scalar loop for a given sum).
///
/// # Safety
/// SSE2 available.
#[target_feature(enable = "sse2")]
pub unsafe fn softmax_sse2(x: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let n4 = n & !3;
    let p = x.as_mut_ptr();
    let mut mv = _mm_set1_ps(x[0]);
    let mut j = 0;
    while j < n4 {
        // SAFETY: j + 4 <= n.
        unsafe { mv = _mm_max_ps(mv, _mm_loadu_ps(p.add(j))) };
        j += 4;
    }
    let mv = _mm_max_ps(mv, _mm_movehl_ps(mv, mv));
    let mv = _mm_max_ss(mv, _mm_shuffle_ps::<0b01>(mv, mv));
    let mut max = _mm_cvtss_f32(mv);
    for &v in &x[n4..] {
        if v > max {
            max = v;
        }
    }
    let maxv = _mm_set1_ps(max);
    let mut acc = _mm_setzero_ps();
    let mut j = 0;
    while j < n4 {
        // SAFETY: j + 4 <= n.
        unsafe {
            let e = exp_ps_sse2(_mm_sub_ps(_mm_loadu_ps(p.add(j)), maxv));
            _mm_storeu_ps(p.add(j), e);
            acc = _mm_add_ps(acc, e);
        }
        j += 4;
    }
    let mut sum = hsum128(acc);
    let tail = &mut x[n4..];
    for v in tail.iter_mut() {
        *v -= max;
    }
    // SAFETY: SSE2 available (caller's contract).
    unsafe { exp_slice_sse2(tail) };
    for &v in tail.iter() {
        sum += v;
    }
    let sv = _mm_set1_ps(sum);
    let mut j = 0;
    while j < n4 {
        // SAFETY: j + 4 <= n.
        unsafe { _mm_storeu_ps(p.add(j), _mm_div_ps(_mm_loadu_ps(p.add(j)), sv)) };
        j += 4;
    }
    for v in &mut x[n4..] {
        *v /= sum;
    }
}

/// run.c's softmax in 8 lanes (see [`softmax_sse2`]).
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn softmax_avx2(x: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let n8 = n & !7;
    let p = x.as_mut_ptr();
    let mut mv = _mm256_set1_ps(x[0]);
    let mut j = 0;
    while j < n8 {
        // SAFETY: j + 8 <= n.
        unsafe { mv = _mm256_max_ps(mv, _mm256_loadu_ps(p.add(j))) };
        j += 8;
    }
    let m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps::<1>(mv));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let m4 = _mm_max_ss(m4, _mm_shuffle_ps::<0b01>(m4, m4));
    let mut max = _mm_cvtss_f32(m4);
    for &v in &x[n8..] {
        if v > max {
            max = v;
        }
    }
    let maxv = _mm256_set1_ps(max);
    let mut acc = _mm256_setzero_ps();
    let mut j = 0;
    while j < n8 {
        // SAFETY: j + 8 <= n.
        unsafe {
            let e = exp_ps_avx2(_mm256_sub_ps(_mm256_loadu_ps(p.add(j)), maxv));
            _mm256_storeu_ps(p.add(j), e);
            acc = _mm256_add_ps(acc, e);
        }
        j += 8;
    }
    let mut sum = hsum256(acc);
    let tail = &mut x[n8..];
    for v in tail.iter_mut() {
        *v -= max;
    }
    // SAFETY: AVX2 and FMA available (caller's contract).
    unsafe { exp_slice_avx2(tail) };
    for &v in tail.iter() {
        sum += v;
    }
    let sv = _mm256_set1_ps(sum);
    let mut j = 0;
    while j < n8 {
        // SAFETY: j + 8 <= n.
        unsafe { _mm256_storeu_ps(p.add(j), _mm256_div_ps(_mm256_loadu_ps(p.add(j)), sv)) };
        j += 8;
    }
    for v in &mut x[n8..] {
        *v /= sum;
    }
}

/// SwiGLU in 4 lanes: `h = h · (1 / (1 + e^-h)) · g`, run.c's operations in
/// run.c's order (only `e^x` differs from libm's).
///
/// # Safety
/// SSE2 available.
#[target_feature(enable = "sse2")]
pub unsafe fn swiglu_sse2(hb: &mut [f32], hb2: &[f32]) {
    let one = _mm_set1_ps(1.0);
    let neg = _mm_set1_ps(-0.0);
    for (h, g) in hb.chunks_mut(4).zip(hb2.chunks(4)) {
        let (mut bh, mut bg) = ([0.0f32; 4], [0.0f32; 4]);
        let n = h.len().min(g.len());
        bh[..n].copy_from_slice(&h[..n]);
        bg[..n].copy_from_slice(&g[..n]);
        // SAFETY: the buffers hold 4 floats each.
        unsafe {
            let v = _mm_loadu_ps(bh.as_ptr());
            let s = _mm_div_ps(one, _mm_add_ps(one, exp_ps_sse2(_mm_xor_ps(v, neg))));
            let r = _mm_mul_ps(_mm_mul_ps(v, s), _mm_loadu_ps(bg.as_ptr()));
            _mm_storeu_ps(bh.as_mut_ptr(), r);
        }
        h[..n].copy_from_slice(&bh[..n]);
    }
}

/// SwiGLU in 8 lanes (see [`swiglu_sse2`]).
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn swiglu_avx2(hb: &mut [f32], hb2: &[f32]) {
    let one = _mm256_set1_ps(1.0);
    let neg = _mm256_set1_ps(-0.0);
    for (h, g) in hb.chunks_mut(8).zip(hb2.chunks(8)) {
        let (mut bh, mut bg) = ([0.0f32; 8], [0.0f32; 8]);
        let n = h.len().min(g.len());
        bh[..n].copy_from_slice(&h[..n]);
        bg[..n].copy_from_slice(&g[..n]);
        // SAFETY: the buffers hold 8 floats each.
        unsafe {
            let v = _mm256_loadu_ps(bh.as_ptr());
            let s = _mm256_div_ps(one, _mm256_add_ps(one, exp_ps_avx2(_mm256_xor_ps(v, neg))));
            let r = _mm256_mul_ps(_mm256_mul_ps(v, s), _mm256_loadu_ps(bg.as_ptr()));
            _mm256_storeu_ps(bh.as_mut_ptr(), r);
        }
        h[..n].copy_from_slice(&bh[..n]);
    }
}

/// RoPE in 4 lanes (two pairs at a time), bit-identical to the scalar
/// kernel: products rounded separately (no FMA), then one subtraction (even
/// lanes) or addition (odd lanes). `cs` is `[cos0, sin0, cos1, sin1, ...]` for
/// one head; `v` is whole heads.
///
/// # Safety
/// SSE2 available.
#[target_feature(enable = "sse2")]
pub unsafe fn rope_sse2(v: &mut [f32], cs: &[f32]) {
    let head = cs.len() & !1;
    if head == 0 {
        return;
    }
    let h4 = head & !3;
    // Flip the sign of the even lanes: a + (b ^ sign) == a - b exactly.
    let even_sign = _mm_castsi128_ps(_mm_set_epi32(0, i32::MIN, 0, i32::MIN));
    let pc = cs.as_ptr();
    for chunk in v.chunks_exact_mut(head) {
        let p = chunk.as_mut_ptr();
        let mut j = 0;
        while j < h4 {
            // SAFETY: j + 4 <= h4 <= head == chunk.len() <= cs.len().
            unsafe {
                let x = _mm_loadu_ps(p.add(j));
                let c = _mm_loadu_ps(pc.add(j));
                let cc = _mm_shuffle_ps::<0b10_10_00_00>(c, c);
                let ss = _mm_shuffle_ps::<0b11_11_01_01>(c, c);
                let xs = _mm_shuffle_ps::<0b10_11_00_01>(x, x);
                let r = _mm_add_ps(_mm_mul_ps(x, cc), _mm_xor_ps(_mm_mul_ps(xs, ss), even_sign));
                _mm_storeu_ps(p.add(j), r);
            }
            j += 4;
        }
        if j < head {
            let (v0, v1, fcr, fci) = (chunk[j], chunk[j + 1], cs[j], cs[j + 1]);
            chunk[j] = v0 * fcr - v1 * fci;
            chunk[j + 1] = v0 * fci + v1 * fcr;
        }
    }
}

/// RoPE in 8 lanes (four pairs at a time; `addsub` does the even/odd signs),
/// bit-identical to the scalar kernel (see [`rope_sse2`]).
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn rope_avx2(v: &mut [f32], cs: &[f32]) {
    let head = cs.len() & !1;
    if head == 0 {
        return;
    }
    let h8 = head & !7;
    let pc = cs.as_ptr();
    for chunk in v.chunks_exact_mut(head) {
        let p = chunk.as_mut_ptr();
        let mut j = 0;
        while j < h8 {
            // SAFETY: j + 8 <= h8 <= head == chunk.len() <= cs.len().
            unsafe {
                let x = _mm256_loadu_ps(p.add(j));
                let c = _mm256_loadu_ps(pc.add(j));
                let cc = _mm256_permute_ps::<0b10_10_00_00>(c);
                let ss = _mm256_permute_ps::<0b11_11_01_01>(c);
                let xs = _mm256_permute_ps::<0b10_11_00_01>(x);
                let r = _mm256_addsub_ps(_mm256_mul_ps(x, cc), _mm256_mul_ps(xs, ss));
                _mm256_storeu_ps(p.add(j), r);
            }
            j += 8;
        }
        while j < head {
            let (v0, v1, fcr, fci) = (chunk[j], chunk[j + 1], cs[j], cs[j + 1]);
            chunk[j] = v0 * fcr - v1 * fci;
            chunk[j + 1] = v0 * fci + v1 * fcr;
            j += 2;
        }
    }
}
