//! AVX-512 kernels (AVX512F only). The matrix-vector products are not here:
//! the set uses the AVX2 f32 and int8 ones, which measured faster on this
//! memory-bound work (see `KernelSet::matmul` and `KernelSet::q8_matmul`).
//! Like [`super::x86`], every function is `unsafe` only because of
//! `#[target_feature]`: [`super::KernelSet`] checked CPUID and XCR0 (opmask
//! and both ZMM state components) before any call, and the safe wrappers there
//! checked the slice lengths. Tails are handled with
//! masked loads and stores, which never touch memory outside the mask (so a
//! masked load past the end of a slice does not fault and reads nothing).
//!
//! Exactness follows the AVX2 set: RoPE bit-identical to scalar, softmax and
//! SwiGLU per element as run.c except for the lane exponential, which is the
//! AVX2 polynomial in 16 lanes (same coefficients, same FMA steps, so the same
//! bits lane for lane as the AVX2 one).
use core::arch::x86_64::*;

/// Lanes `0..n` of a 16-lane mask (`n <= 16`).
#[inline]
fn mask16(n: usize) -> __mmask16 {
    if n >= 16 { 0xffff } else { ((1u32 << n) - 1) as __mmask16 }
}

/// Dot product, 4×16 lanes with FMA (four independent chains), masked tail.
///
/// # Safety
/// AVX-512F available.
#[inline]
#[target_feature(enable = "avx512f")]
pub unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let n64 = n & !63;
    let n16 = n & !15;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let z = _mm512_setzero_ps();
    let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
    let mut j = 0;
    while j < n64 {
        // SAFETY: j + 64 <= n64 <= both lengths.
        unsafe {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(j)), _mm512_loadu_ps(pb.add(j)), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(j + 16)), _mm512_loadu_ps(pb.add(j + 16)), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(j + 32)), _mm512_loadu_ps(pb.add(j + 32)), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(j + 48)), _mm512_loadu_ps(pb.add(j + 48)), a3);
        }
        j += 64;
    }
    while j < n16 {
        // SAFETY: j + 16 <= n16 <= both lengths.
        unsafe { a0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(j)), _mm512_loadu_ps(pb.add(j)), a0) };
        j += 16;
    }
    if j < n {
        let m = mask16(n - j);
        // SAFETY: the mask covers lanes j..n only; masked-off lanes are not read.
        unsafe { a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, pa.add(j)), _mm512_maskz_loadu_ps(m, pb.add(j)), a1) };
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)))
}

/// `out += a * v`, 16 lanes with FMA, masked tail.
///
/// # Safety
/// AVX-512F available.
#[inline]
#[target_feature(enable = "avx512f")]
pub unsafe fn axpy_avx512(out: &mut [f32], a: f32, v: &[f32]) {
    let n = out.len().min(v.len());
    let av = _mm512_set1_ps(a);
    let (po, pv) = (out.as_mut_ptr(), v.as_ptr());
    let mut j = 0;
    // Plain loads and stores while 16 lanes remain (masked ones measured
    // slower on memory not in cache, and attention's value rows often are not).
    while j + 16 <= n {
        // SAFETY: lanes j..j+16, inside both slices.
        unsafe {
            let r = _mm512_fmadd_ps(av, _mm512_loadu_ps(pv.add(j)), _mm512_loadu_ps(po.add(j)));
            _mm512_storeu_ps(po.add(j), r);
        }
        j += 16;
    }
    if j < n {
        let m = mask16(n - j);
        // SAFETY: lanes j..n only, inside both slices.
        unsafe {
            let r = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, pv.add(j)), _mm512_maskz_loadu_ps(m, po.add(j)));
            _mm512_mask_storeu_ps(po.add(j), m, r);
        }
    }
}

/// The scores of [`super::KernelSet::attention`] with this set's dot inlined.
///
/// # Safety
/// AVX-512F available; `h` checked for `n` heads and `att`.
#[target_feature(enable = "avx512f")]
pub unsafe fn attention_scores_avx512(h: &super::Heads<'_>, n: usize, att: &mut [f32], att_stride: usize, div: f32) {
    // SAFETY: AVX-512F available (caller's contract).
    super::scores_with(h, n, att, att_stride, div, |a, b| unsafe { dot_avx512(a, b) })
}

/// The weighted sums of [`super::KernelSet::attention`] with this set's axpy inlined.
///
/// # Safety
/// AVX-512F available; `h` checked for `n` heads, `att` and `out`.
#[target_feature(enable = "avx512f")]
pub unsafe fn attention_sums_avx512(h: &super::Heads<'_>, n: usize, att: &[f32], att_stride: usize, out: &mut [f32]) {
    // SAFETY: AVX-512F available (caller's contract).
    super::sums_with(h, n, att, att_stride, out, |o, a, v| unsafe { axpy_avx512(o, a, v) })
}

/// `o[i] = w[i] * (s * x[i])`, 16 lanes (the RMSNorm scale step, the same
/// two roundings per element as scalar).
///
/// # Safety
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
pub unsafe fn scale_mul_avx512(o: &mut [f32], x: &[f32], w: &[f32], s: f32) {
    let n = o.len().min(x.len()).min(w.len());
    let sv = _mm512_set1_ps(s);
    let (po, px, pw) = (o.as_mut_ptr(), x.as_ptr(), w.as_ptr());
    let mut j = 0;
    while j < n {
        let m = mask16(n - j);
        // SAFETY: lanes j..min(j+16, n) only, inside the three slices.
        unsafe {
            let r = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, pw.add(j)), _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(m, px.add(j))));
            _mm512_mask_storeu_ps(po.add(j), m, r);
        }
        j += 16;
    }
}

// Lane exponential: the AVX2 set's algorithm and constants (see x86.rs).
use super::lane_exp::{EXP_HI, EXP_LO, LN2_HI, LN2_LO, LOG2E, P};

/// e^x in 16 lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp_ps_avx512(x: __m512) -> __m512 {
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LO)), _mm512_set1_ps(EXP_HI));
    let n = _mm512_cvtps_epi32(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)));
    let nf = _mm512_cvtepi32_ps(n);
    let r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(LN2_HI), x);
    let r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(LN2_LO), r);
    let mut p = _mm512_set1_ps(P[0]);
    for c in &P[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(*c));
    }
    let r2 = _mm512_mul_ps(r, r);
    let e = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0));
    let n1 = _mm512_srai_epi32::<1>(n);
    let n2 = _mm512_sub_epi32(n, n1);
    let bias = _mm512_set1_epi32(127);
    let s1 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n1, bias)));
    let s2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n2, bias)));
    _mm512_mul_ps(_mm512_mul_ps(e, s1), s2)
}

/// `out[i] = e^x[i]` with the 16-lane exponential.
///
/// # Safety
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
pub unsafe fn exp_slice_avx512(x: &mut [f32]) {
    let n = x.len();
    let p = x.as_mut_ptr();
    let mut j = 0;
    while j < n {
        let m = mask16(n - j);
        // SAFETY: lanes j..min(j+16, n) only.
        unsafe { _mm512_mask_storeu_ps(p.add(j), m, exp_ps_avx512(_mm512_maskz_loadu_ps(m, p.add(j)))) };
        j += 16;
    }
}

/// run.c's softmax in 16 lanes: max, `e^(x - max)`, sum (lanes, then across)
/// and `x / sum` per element (IEEE division, as the scalar loop).
///
/// # Safety
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
pub unsafe fn softmax_avx512(x: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let p = x.as_mut_ptr();
    let first = _mm512_set1_ps(x[0]);
    let mut mv = first;
    let mut j = 0;
    while j < n {
        let m = mask16(n - j);
        // SAFETY: lanes j..min(j+16, n) only; the others keep x[0].
        unsafe { mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(first, m, p.add(j))) };
        j += 16;
    }
    let maxv = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
    let mut acc = _mm512_setzero_ps();
    let mut j = 0;
    while j < n {
        let m = mask16(n - j);
        // SAFETY: as above.
        unsafe {
            let e = exp_ps_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p.add(j)), maxv));
            _mm512_mask_storeu_ps(p.add(j), m, e);
            acc = _mm512_mask_add_ps(acc, m, acc, e);
        }
        j += 16;
    }
    let sv = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
    let mut j = 0;
    while j < n {
        let m = mask16(n - j);
        // SAFETY: as above.
        unsafe { _mm512_mask_storeu_ps(p.add(j), m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, p.add(j)), sv)) };
        j += 16;
    }
}

/// SwiGLU in 16 lanes: `h = h · (1 / (1 + e^-h)) · g`, run.c's operations in
/// run.c's order.
///
/// # Safety
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
pub unsafe fn swiglu_avx512(hb: &mut [f32], hb2: &[f32]) {
    let n = hb.len().min(hb2.len());
    let one = _mm512_set1_ps(1.0);
    let sign = _mm512_set1_epi32(i32::MIN);
    let (ph, pg) = (hb.as_mut_ptr(), hb2.as_ptr());
    let mut j = 0;
    while j < n {
        let m = mask16(n - j);
        // SAFETY: lanes j..min(j+16, n) only, inside both slices.
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, ph.add(j));
            let neg = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sign));
            let s = _mm512_div_ps(one, _mm512_add_ps(one, exp_ps_avx512(neg)));
            let r = _mm512_mul_ps(_mm512_mul_ps(v, s), _mm512_maskz_loadu_ps(m, pg.add(j)));
            _mm512_mask_storeu_ps(ph.add(j), m, r);
        }
        j += 16;
    }
}

/// RoPE in 16 lanes (eight pairs at a time), bit-identical to the scalar
/// kernel: products rounded separately (no FMA), the even lanes' product
/// negated by its sign bit (`a + (-b) == a - b` exactly), one addition.
///
/// # Safety
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
pub unsafe fn rope_avx512(v: &mut [f32], cs: &[f32]) {
    let head = cs.len() & !1;
    if head == 0 {
        return;
    }
    let even_sign = _mm512_castsi512_ps(_mm512_set1_epi64(i32::MIN as u32 as i64));
    let pc = cs.as_ptr();
    for chunk in v.chunks_exact_mut(head) {
        let p = chunk.as_mut_ptr();
        let mut j = 0;
        while j < head {
            // `head` is even, so the mask always covers whole pairs.
            let m = mask16(head - j);
            // SAFETY: lanes j..min(j+16, head) only; head == chunk.len() <= cs.len().
            unsafe {
                let x = _mm512_maskz_loadu_ps(m, p.add(j));
                let c = _mm512_maskz_loadu_ps(m, pc.add(j));
                let cc = _mm512_permute_ps::<0b10_10_00_00>(c);
                let ss = _mm512_permute_ps::<0b11_11_01_01>(c);
                let xs = _mm512_permute_ps::<0b10_11_00_01>(x);
                let prod = _mm512_castps_si512(_mm512_mul_ps(xs, ss));
                let signed = _mm512_castsi512_ps(_mm512_xor_si512(prod, _mm512_castps_si512(even_sign)));
                let r = _mm512_add_ps(_mm512_mul_ps(x, cc), signed);
                _mm512_mask_storeu_ps(p.add(j), m, r);
            }
            j += 16;
        }
    }
}

