//! The engine's vector operations around the matrix products, specialised to
//! the model's dims, in AVX2+FMA (8 lanes) or AVX-512F (16 lanes): RMSNorm,
//! SwiGLU and RoPE. The engine generates them at its kernel set's width.
//!
//! Generated functions (System V):
//! - RMSNorm `fn(o: *mut f32, x: *const f32, w: *const f32)`:
//!   `o = w * (s * x)` with `s = 1 / sqrt(Σx² / dim + 1e-5)`;
//! - SwiGLU `fn(hb: *mut f32, hb2: *const f32)`: `hb = hb · σ(hb) · hb2`;
//! - RoPE `fn(v: *mut f32, cs: *const f32, heads: u64)`: each head of `v`
//!   rotated by the `[cos, sin]` pairs `cs` (one head long);
//! - softmax (AVX-512) `fn(x: *mut f32, n: u64)`, in place over `1 <= n <=
//!   max` values: the max, `e^(x - max)` and their sum, `x / sum`, in
//!   `softmax_avx512`'s order (its reductions and masked last vector).
//!
//! Each computes exactly what the ahead-of-time kernel of its ISA's set
//! computes, in the same order, so results are bit for bit the same:
//! - RMSNorm's sum of squares: AVX2 as `dot_avx2(x, x)` (four 8-lane FMA
//!   chains over blocks of 32, `(a0 + a1) + (a2 + a3)`, one chain over the
//!   blocks of 8 left, then the horizontal sum); AVX-512 as `dot_avx512(x, x)`
//!   (four 16-lane chains over blocks of 64, blocks of 16 into the first, the
//!   masked rest into the second, then `_mm512_reduce_add_ps`'s order). The
//!   divisions and the square root are the scalar instructions the AOT code
//!   compiles to;
//! - SwiGLU uses the lane `e^x` of `bareflow_llm::kernels::lane_exp` with the
//!   same FMA steps, then `1 / (1 + e^-h)`, `(h · s) · g`;
//! - RoPE is the scalar kernel's bits in both (no FMA; AVX2 `vaddsubps`,
//!   AVX-512 the even lanes' product negated by its sign bit).
//!
//! Dims are immediates (RMSNorm and RoPE fully unrolled over their dim and
//! head, SwiGLU a counted loop). AVX2: RMSNorm and RoPE take whole 8-lane
//! vectors only, SwiGLU's partial last vector uses masked loads and stores.
//! AVX-512: every partial last vector goes through opmask k1 (masked-off
//! lanes read as zero and write nothing outside the slice, like the AOT
//! kernels' `maskz` loads and masked stores), and SwiGLU's constants stay in
//! zmm16-29. Constants sit in a table after the code (RIP-relative), and the
//! code touches only caller-saved registers (and k1), has no calls and no
//! stack, and reads and writes exactly the slices of its dims.
use alloc::string::ToString;
use alloc::vec::Vec;

use bareflow_llm::kernels::lane_exp::{EXP_HI, EXP_LO, LN2_HI, LN2_LO, LOG2E, P};
use iced_x86::code_asm::*;

use crate::{Isa, JitError};

/// The longest vector a kernel is made for (bounds the unrolled code).
pub const MAX_DIM: usize = 16 * 1024;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointwiseSpec {
    /// RMSNorm over `dim` values.
    RmsNorm { dim: usize },
    /// SwiGLU over `n` values.
    SwiGlu { n: usize },
    /// RoPE with heads of `head` values (`head / 2` pairs).
    Rope { head: usize },
    /// Softmax in place over any length from 1 to `max` (attention's scores:
    /// the length grows with the position, up to the context). AVX-512 only.
    Softmax { max: usize },
}

impl PointwiseSpec {
    /// The vector length baked into the code.
    pub fn len(&self) -> usize {
        match *self {
            Self::RmsNorm { dim } => dim,
            Self::SwiGlu { n } => n,
            Self::Rope { head } => head,
            Self::Softmax { max } => max,
        }
    }

    /// Whether the length is zero (always refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RmsNorm { .. } => "rmsnorm",
            Self::SwiGlu { .. } => "swiglu",
            Self::Rope { .. } => "rope",
            Self::Softmax { .. } => "softmax",
        }
    }

    /// Refuses lengths the generator cannot make correct code for `isa`.
    pub fn validate(&self, isa: Isa) -> Result<(), JitError> {
        let n = self.len();
        if n == 0 {
            return Err(JitError::ZeroColumns);
        }
        if n > MAX_DIM {
            return Err(JitError::TooManyColumns { cols: n, max: MAX_DIM });
        }
        match isa {
            // The AVX2 softmax's scalar tail (`exp_slice_avx2` per value) is not generated.
            Isa::Avx2Fma if matches!(self, Self::Softmax { .. }) => Err(JitError::UnsupportedIsa { kernel: "softmax", isa }),
            // SwiGLU takes a partial last vector (masked loads and stores, as the
            // AOT kernel's zero-padded one); the others are made for whole vectors.
            Isa::Avx2Fma if !n.is_multiple_of(8) && !matches!(self, Self::SwiGlu { .. }) => Err(JitError::NotWholeVectors(n)),
            Isa::Avx2Fma => Ok(()),
            // Opmasks take any partial last vector; RoPE needs whole pairs.
            Isa::Avx512 if matches!(self, Self::Rope { .. }) && !n.is_multiple_of(2) => Err(JitError::NotWholeVectors(n)),
            Isa::Avx512 => Ok(()),
            Isa::Sse2 => Err(JitError::UnsupportedIsa { kernel: self.name(), isa }),
        }
    }
}

/// Generates the kernel for `spec`, to be placed at `ip`.
pub fn generate(spec: &PointwiseSpec, isa: Isa, ip: u64) -> Result<Vec<u8>, JitError> {
    spec.validate(isa)?;
    let enc = |e: IcedError| JitError::Encoder(e.to_string());
    let mut a = CodeAssembler::new(64).map_err(enc)?;
    match (isa, *spec) {
        (Isa::Avx512, PointwiseSpec::RmsNorm { dim }) => rmsnorm_512(&mut a, dim),
        (Isa::Avx512, PointwiseSpec::SwiGlu { n }) => swiglu_512(&mut a, n),
        (Isa::Avx512, PointwiseSpec::Rope { head }) => rope_512(&mut a, head),
        (_, PointwiseSpec::Softmax { .. }) => softmax_512(&mut a),
        (_, PointwiseSpec::RmsNorm { dim }) => rmsnorm(&mut a, dim),
        (_, PointwiseSpec::SwiGlu { n }) => swiglu(&mut a, n),
        (_, PointwiseSpec::Rope { head }) => rope(&mut a, head),
    }
    .map_err(enc)?;
    a.assemble(ip).map_err(enc)
}

/// `vzeroupper`, return 0: the end of every AVX kernel.
pub(crate) fn epilogue(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.vzeroupper()?;
    a.xor(eax, eax)?;
    a.ret()
}

/// `xmm` = the f32 `v` (through eax).
fn load_scalar(a: &mut CodeAssembler, xmm: AsmRegisterXmm, v: f32) -> Result<(), IcedError> {
    a.mov(eax, v.to_bits())?;
    a.vmovd(xmm, eax)
}

// rdi o, rsi x, rdx w.
fn rmsnorm(a: &mut CodeAssembler, dim: usize) -> Result<(), IcedError> {
    let (n32, n8) = (dim & !31, dim & !7);
    let acc = [ymm0, ymm1, ymm2, ymm3];
    for r in acc {
        a.vxorps(r, r, r)?;
    }
    for j in (0..n32).step_by(32) {
        for (k, &r) in acc.iter().enumerate() {
            a.vmovups(ymm4, ptr(rsi + (j + 8 * k) * 4))?;
            a.vfmadd231ps(r, ymm4, ymm4)?;
        }
    }
    // (a0 + a1) + (a2 + a3): also right when there was no block of 32 (all zero).
    a.vaddps(ymm0, ymm0, ymm1)?;
    a.vaddps(ymm2, ymm2, ymm3)?;
    a.vaddps(ymm0, ymm0, ymm2)?;
    for j in (n32..n8).step_by(8) {
        a.vmovups(ymm4, ptr(rsi + j * 4))?;
        a.vfmadd231ps(ymm0, ymm4, ymm4)?;
    }
    // Horizontal sum as `hsum256`: (low + high), + movehl, + lane 1.
    a.vextractf128(xmm4, ymm0, 1)?;
    a.vaddps(xmm0, xmm0, xmm4)?;
    a.vmovhlps(xmm4, xmm0, xmm0)?;
    a.vaddps(xmm0, xmm0, xmm4)?;
    a.vmovshdup(xmm4, xmm0)?;
    a.vaddss(xmm0, xmm0, xmm4)?;
    rms_scale(a, dim)?;
    a.vbroadcastss(ymm1, xmm1)?;
    for j in (0..dim).step_by(8) {
        a.vmulps(ymm2, ymm1, ptr(rsi + j * 4))?;
        a.vmulps(ymm2, ymm2, ptr(rdx + j * 4))?;
        a.vmovups(ptr(rdi + j * 4), ymm2)?;
    }
    epilogue(a)
}

/// xmm1 = 1 / sqrt(xmm0 / dim + 1e-5) (xmm0 = the sum of squares; clobbered),
/// the scalar instructions the AOT RMSNorm compiles to.
fn rms_scale(a: &mut CodeAssembler, dim: usize) -> Result<(), IcedError> {
    load_scalar(a, xmm1, dim as f32)?;
    a.vdivss(xmm0, xmm0, xmm1)?;
    load_scalar(a, xmm1, 1e-5)?;
    a.vaddss(xmm0, xmm0, xmm1)?;
    a.vsqrtss(xmm0, xmm0, xmm0)?;
    load_scalar(a, xmm1, 1.0)?;
    a.vdivss(xmm1, xmm1, xmm0)
}

// rdi hb, rsi hb2; rcx counts blocks of 8.
fn swiglu(a: &mut CodeAssembler, n: usize) -> Result<(), IcedError> {
    // The constant table after the code, one 32-byte vector each.
    let mut c_neg = a.create_label();
    let mut c_one = a.create_label();
    let mut c_lo = a.create_label();
    let mut c_hi = a.create_label();
    let mut c_log2e = a.create_label();
    let mut c_ln2hi = a.create_label();
    let mut c_ln2lo = a.create_label();
    let mut c_bias = a.create_label();
    let mut c_p: Vec<CodeLabel> = (0..P.len()).map(|_| a.create_label()).collect();
    let mut top = a.create_label();
    let mut c_mask = a.create_label();
    let rem = n % 8;
    {
        let consts = SwiGluConsts { c_neg, c_one, c_lo, c_hi, c_log2e, c_ln2hi, c_ln2lo, c_bias, c_p: &c_p };
        if n >= 8 {
            a.mov(ecx, (n / 8) as u32)?;
            a.set_label(&mut top)?;
            a.vmovups(ymm0, ptr(rdi))?; // h
            a.vmovups(ymm6, ptr(rsi))?; // g
            swiglu_vector(a, &consts)?;
            a.vmovups(ptr(rdi), ymm0)?;
            a.add(rdi, 32)?;
            a.add(rsi, 32)?;
            a.dec(ecx)?;
            a.jnz(top)?;
        }
        if rem > 0 {
            // The last `rem` values: masked-off lanes load as zero and are not stored.
            a.vmovups(ymm7, ptr(c_mask))?;
            a.vmaskmovps(ymm0, ymm7, ptr(rdi))?;
            a.vmaskmovps(ymm6, ymm7, ptr(rsi))?;
            swiglu_vector(a, &consts)?;
            a.vmaskmovps(ptr(rdi), ymm7, ymm0)?;
        }
    }
    epilogue(a)?;

    let table_f32 = |a: &mut CodeAssembler, l: &mut CodeLabel, v: f32| -> Result<(), IcedError> {
        a.set_label(l)?;
        a.dd_f32(&[v; 8])
    };
    // (VEX memory operands need no alignment.)
    table_f32(a, &mut c_neg, -0.0)?;
    table_f32(a, &mut c_one, 1.0)?;
    table_f32(a, &mut c_lo, EXP_LO)?;
    table_f32(a, &mut c_hi, EXP_HI)?;
    table_f32(a, &mut c_log2e, LOG2E)?;
    table_f32(a, &mut c_ln2hi, LN2_HI)?;
    table_f32(a, &mut c_ln2lo, LN2_LO)?;
    for (l, &v) in c_p.iter_mut().zip(P.iter()) {
        table_f32(a, l, v)?;
    }
    a.set_label(&mut c_bias)?;
    a.dd(&[127u32; 8])?;
    a.set_label(&mut c_mask)?;
    let mask: [u32; 8] = core::array::from_fn(|i| if i < rem { u32::MAX } else { 0 });
    a.dd(&mask)
}

/// The labels of SwiGLU's constant table.
struct SwiGluConsts<'a> {
    c_neg: CodeLabel,
    c_one: CodeLabel,
    c_lo: CodeLabel,
    c_hi: CodeLabel,
    c_log2e: CodeLabel,
    c_ln2hi: CodeLabel,
    c_ln2lo: CodeLabel,
    c_bias: CodeLabel,
    c_p: &'a [CodeLabel],
}

/// ymm0 = h (in: h, ymm6 = g); uses ymm1-5.
fn swiglu_vector(a: &mut CodeAssembler, c: &SwiGluConsts<'_>) -> Result<(), IcedError> {
    let SwiGluConsts { c_neg, c_one, c_lo, c_hi, c_log2e, c_ln2hi, c_ln2lo, c_bias, c_p } = *c;
    // e^-h, as `exp_ps_avx2(h ^ -0.0)`
    a.vxorps(ymm1, ymm0, ptr(c_neg))?;
    a.vmaxps(ymm1, ymm1, ptr(c_lo))?;
    a.vminps(ymm1, ymm1, ptr(c_hi))?;
    a.vmulps(ymm2, ymm1, ptr(c_log2e))?;
    a.vcvtps2dq(ymm2, ymm2)?; // n
    a.vcvtdq2ps(ymm3, ymm2)?; // nf
    a.vfnmadd231ps(ymm1, ymm3, ptr(c_ln2hi))?; // r = x - nf * ln2_hi
    a.vfnmadd231ps(ymm1, ymm3, ptr(c_ln2lo))?; // r -= nf * ln2_lo
    a.vmovups(ymm4, ptr(c_p[0]))?;
    for l in &c_p[1..] {
        a.vfmadd213ps(ymm4, ymm1, ptr(*l))?; // p = p * r + c
    }
    a.vmulps(ymm5, ymm1, ymm1)?; // r2
    a.vfmadd213ps(ymm4, ymm5, ymm1)?; // p * r2 + r
    a.vaddps(ymm4, ymm4, ptr(c_one))?; // e
    a.vpsrad(ymm5, ymm2, 1)?; // n1
    a.vpsubd(ymm2, ymm2, ymm5)?; // n2
    a.vpaddd(ymm5, ymm5, ptr(c_bias))?;
    a.vpslld(ymm5, ymm5, 23)?; // 2^n1
    a.vpaddd(ymm2, ymm2, ptr(c_bias))?;
    a.vpslld(ymm2, ymm2, 23)?; // 2^n2
    a.vmulps(ymm4, ymm4, ymm5)?;
    a.vmulps(ymm4, ymm4, ymm2)?; // e^-h
    // s = 1 / (1 + e^-h); h = (h * s) * g
    a.vmovups(ymm5, ptr(c_one))?;
    a.vaddps(ymm4, ymm5, ymm4)?;
    a.vdivps(ymm5, ymm5, ymm4)?;
    a.vmulps(ymm0, ymm0, ymm5)?;
    a.vmulps(ymm0, ymm0, ymm6)
}

// rdi v, rsi cs, rdx heads.
fn rope(a: &mut CodeAssembler, head: usize) -> Result<(), IcedError> {
    let mut top = a.create_label();
    let mut done = a.create_label();
    a.test(rdx, rdx)?;
    a.jz(done)?;
    a.set_label(&mut top)?;
    for j in (0..head).step_by(8) {
        a.vmovups(ymm0, ptr(rdi + j * 4))?; // x
        a.vmovups(ymm1, ptr(rsi + j * 4))?; // [c0 s0 c1 s1 ...]
        a.vpermilps(ymm2, ymm1, 0b10_10_00_00)?; // cos, cos
        a.vpermilps(ymm3, ymm1, 0b11_11_01_01)?; // sin, sin
        a.vpermilps(ymm4, ymm0, 0b10_11_00_01)?; // pairs swapped
        a.vmulps(ymm0, ymm0, ymm2)?;
        a.vmulps(ymm4, ymm4, ymm3)?;
        a.vaddsubps(ymm0, ymm0, ymm4)?; // even lanes minus, odd lanes plus
        a.vmovups(ptr(rdi + j * 4), ymm0)?;
    }
    a.add(rdi, (head * 4) as i32)?;
    a.dec(rdx)?;
    a.jnz(top)?;
    a.set_label(&mut done)?;
    epilogue(a)
}

// ------------------------------------------------------------- AVX-512 ----
//
// The AVX-512 set's bits (`crates/llm/src/kernels/x86_512.rs`), AVX512F
// instructions only (integer xor for the sign flips: `vxorps zmm` is DQ).
// Partial last vectors go through opmask k1 (masked-off lanes load as zero
// and are not stored), as the AOT kernels' `maskz` loads and masked stores.

/// k1 = lanes `0..n` (`1 <= n <= 16`), through eax.
fn set_k1(a: &mut CodeAssembler, n: usize) -> Result<(), IcedError> {
    a.mov(eax, ((1u32 << n) - 1) & 0xffff)?;
    a.kmovw(k1, eax)
}

/// Lane 0 of `r`'s xmm = the sum (or with `max` the maximum) of the 16 lanes
/// of `r`, in `_mm512_reduce_add_ps`'s (`_mm512_reduce_max_ps`'s) order:
/// 256-bit halves, 128-bit halves, `[2, 3, 0, 1]`, then lane 0 with lane 1.
/// `t` is scratch.
fn reduce_512(
    a: &mut CodeAssembler,
    r: (AsmRegisterZmm, AsmRegisterYmm, AsmRegisterXmm),
    t: (AsmRegisterYmm, AsmRegisterXmm),
    max: bool,
) -> Result<(), IcedError> {
    let (z, y, x) = r;
    let (ty, tx) = t;
    a.vextractf64x4(ty, z, 1)?;
    if max { a.vmaxps(y, y, ty)? } else { a.vaddps(y, y, ty)? }
    a.vextractf128(tx, y, 1)?;
    if max { a.vmaxps(x, x, tx)? } else { a.vaddps(x, x, tx)? }
    a.vpermilps(tx, x, 0b01_00_11_10)?;
    if max { a.vmaxps(x, x, tx)? } else { a.vaddps(x, x, tx)? }
    a.vmovshdup(tx, x)?;
    if max { a.vmaxss(x, x, tx) } else { a.vaddss(x, x, tx) }
}

/// A 64-byte table entry: `v` in all 16 lanes.
fn table16(a: &mut CodeAssembler, l: &mut CodeLabel, v: u32) -> Result<(), IcedError> {
    a.set_label(l)?;
    a.dd(&[v; 16])
}

// rdi o, rsi x, rdx w. The sum of squares is `dot_avx512(x, x)`: four 16-lane
// chains over blocks of 64, then blocks of 16 into the first, the masked
// rest into the second, `(a0 + a1) + (a2 + a3)`, then `_mm512_reduce_add_ps`
// (256-bit halves, 128-bit halves, `+ [2, 3, 0, 1]`, lane 0 + lane 1).
fn rmsnorm_512(a: &mut CodeAssembler, dim: usize) -> Result<(), IcedError> {
    let (n64, n16) = (dim & !63, dim & !15);
    let acc = [zmm0, zmm1, zmm2, zmm3];
    for r in acc {
        a.vpxord(r, r, r)?;
    }
    for j in (0..n64).step_by(64) {
        for (k, &r) in acc.iter().enumerate() {
            a.vmovups(zmm4, zmmword_ptr(rsi + (j + 16 * k) * 4))?;
            a.vfmadd231ps(r, zmm4, zmm4)?;
        }
    }
    for j in (n64..n16).step_by(16) {
        a.vmovups(zmm4, zmmword_ptr(rsi + j * 4))?;
        a.vfmadd231ps(zmm0, zmm4, zmm4)?;
    }
    if dim > n16 {
        set_k1(a, dim - n16)?;
        a.vmovups(zmm4.k1().z(), zmmword_ptr(rsi + n16 * 4))?;
        a.vfmadd231ps(zmm1, zmm4, zmm4)?;
    }
    a.vaddps(zmm0, zmm0, zmm1)?;
    a.vaddps(zmm2, zmm2, zmm3)?;
    a.vaddps(zmm0, zmm0, zmm2)?;
    reduce_512(a, (zmm0, ymm0, xmm0), (ymm4, xmm4), false)?;
    rms_scale(a, dim)?;
    a.vbroadcastss(zmm1, xmm1)?;
    // o = w * (s * x), as `scale_mul_avx512`
    for j in (0..n16).step_by(16) {
        a.vmulps(zmm2, zmm1, zmmword_ptr(rsi + j * 4))?;
        a.vmulps(zmm2, zmm2, zmmword_ptr(rdx + j * 4))?;
        a.vmovups(zmmword_ptr(rdi + j * 4), zmm2)?;
    }
    if dim > n16 {
        a.vmovups(zmm3.k1().z(), zmmword_ptr(rsi + n16 * 4))?;
        a.vmovups(zmm4.k1().z(), zmmword_ptr(rdx + n16 * 4))?;
        a.vmulps(zmm2, zmm1, zmm3)?;
        a.vmulps(zmm2, zmm4, zmm2)?;
        a.vmovups(zmmword_ptr(rdi + n16 * 4).k1(), zmm2)?;
    }
    epilogue(a)
}

// rdi hb, rsi hb2; rcx counts whole vectors of 16. `swiglu_avx512`'s steps
// with `exp_ps_avx512` (the AVX2 steps and constants in 16 lanes).
fn swiglu_512(a: &mut CodeAssembler, n: usize) -> Result<(), IcedError> {
    let mut l = exp_consts_512(a)?;
    let mut top = a.create_label();
    let rem = n % 16;
    let c = const_regs_512();
    if n >= 16 {
        a.mov(ecx, (n / 16) as u32)?;
        a.set_label(&mut top)?;
        a.vmovups(zmm0, zmmword_ptr(rdi))?; // h
        a.vmovups(zmm6, zmmword_ptr(rsi))?; // g
        swiglu_vector_512(a, &c)?;
        a.vmovups(zmmword_ptr(rdi), zmm0)?;
        a.add(rdi, 64)?;
        a.add(rsi, 64)?;
        a.dec(ecx)?;
        a.jnz(top)?;
    }
    if rem > 0 {
        set_k1(a, rem)?;
        a.vmovups(zmm0.k1().z(), zmmword_ptr(rdi))?;
        a.vmovups(zmm6.k1().z(), zmmword_ptr(rsi))?;
        swiglu_vector_512(a, &c)?;
        a.vmovups(zmmword_ptr(rdi).k1(), zmm0)?;
    }
    epilogue(a)?;
    exp_table_512(a, &mut l)
}

/// Labels for the constant table of the lane `e^x` (and SwiGLU), loaded
/// into zmm16.. here, at the start of the code: they stay in registers for
/// the whole call (AVX-512 has 32; memory operands in SwiGLU's loop measured
/// 0.80x the AOT kernel).
fn exp_consts_512(a: &mut CodeAssembler) -> Result<Vec<CodeLabel>, IcedError> {
    let l: Vec<CodeLabel> = (0..EXP_CONSTS).map(|_| a.create_label()).collect();
    for (r, lab) in const_regs_512().iter().zip(&l) {
        a.vmovups(*r, zmmword_ptr(*lab))?;
    }
    Ok(l)
}

/// The table of [`exp_consts_512`], after the code.
fn exp_table_512(a: &mut CodeAssembler, l: &mut [CodeLabel]) -> Result<(), IcedError> {
    let bits = [(-0.0f32).to_bits(), 1.0f32.to_bits(), EXP_LO.to_bits(), EXP_HI.to_bits(), LOG2E.to_bits()];
    let more = [LN2_HI.to_bits(), LN2_LO.to_bits(), 127u32];
    for (lab, v) in l.iter_mut().zip(bits.into_iter().chain(more).chain(P.iter().map(|p| p.to_bits()))) {
        table16(a, lab, v)?;
    }
    Ok(())
}

// rdi x, rsi n (1 <= n <= max, asserted by the caller). r10 = n % 16 (k1
// its mask), r11 = n / 16, rax walks x, r8 counts. `softmax_avx512`'s steps:
// 1. the max over lanes, starting from x[0] in every lane (the masked-off
//    lanes of the last vector keep x[0]), reduced as `_mm512_reduce_max_ps`;
// 2. e = e^(x - max) stored, summed in lanes (masked add on the last vector);
// 3. the sum reduced as `_mm512_reduce_add_ps`, then x / sum.
fn softmax_512(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut l = exp_consts_512(a)?;
    let c = const_regs_512();
    a.mov(r10, rsi)?;
    a.and(r10d, 15)?;
    a.mov(r11, rsi)?;
    a.shr(r11, 4)?;
    a.mov(ecx, r10d)?;
    a.mov(eax, 1)?;
    a.shl(eax, cl)?;
    a.dec(eax)?;
    a.kmovw(k1, eax)?;
    // One pass over the full vectors and the masked last one; `body(a, mem,
    // last)` emits the work on one vector.
    let pass = |a: &mut CodeAssembler,
                body: &dyn Fn(&mut CodeAssembler, AsmMemoryOperand, bool) -> Result<(), IcedError>|
     -> Result<(), IcedError> {
        let (mut top, mut tail, mut done) = (a.create_label(), a.create_label(), a.create_label());
        a.mov(rax, rdi)?;
        a.mov(r8, r11)?;
        a.test(r8, r8)?;
        a.jz(tail)?;
        a.set_label(&mut top)?;
        body(a, zmmword_ptr(rax), false)?;
        a.add(rax, 64)?;
        a.dec(r8)?;
        a.jnz(top)?;
        a.set_label(&mut tail)?;
        a.test(r10, r10)?;
        a.jz(done)?;
        body(a, zmmword_ptr(rax), true)?;
        a.set_label(&mut done)?;
        a.nop() // (a label needs an instruction after it)
    };
    // 1. max
    a.vbroadcastss(zmm7, dword_ptr(rdi))?; // x[0] in every lane
    a.vmovaps(zmm6, zmm7)?; // mv
    pass(a, &|a, m, last| {
        if last {
            a.vmovaps(zmm1, zmm7)?;
            a.vmovups(zmm1.k1(), m)?; // lanes past n keep x[0]
            a.vmaxps(zmm6, zmm6, zmm1)
        } else {
            a.vmaxps(zmm6, zmm6, m)
        }
    })?;
    reduce_512(a, (zmm6, ymm6, xmm6), (ymm1, xmm1), true)?;
    a.vbroadcastss(zmm7, xmm6)?; // maxv
    // 2. e^(x - max), stored and summed
    a.vpxord(zmm8, zmm8, zmm8)?;
    pass(a, &|a, m, last| {
        if last {
            a.vmovups(zmm1.k1().z(), m)?;
        } else {
            a.vmovups(zmm1, m)?;
        }
        a.vsubps(zmm1, zmm1, zmm7)?;
        exp_512(a, &c)?;
        if last {
            a.vmovups(m.k1(), zmm4)?;
            a.vaddps(zmm8.k1(), zmm8, zmm4)
        } else {
            a.vmovups(m, zmm4)?;
            a.vaddps(zmm8, zmm8, zmm4)
        }
    })?;
    // 3. sum, then x / sum
    reduce_512(a, (zmm8, ymm8, xmm8), (ymm1, xmm1), false)?;
    a.vbroadcastss(zmm8, xmm8)?;
    pass(a, &|a, m, last| {
        if last {
            a.vmovups(zmm1.k1().z(), m)?;
            a.vdivps(zmm1, zmm1, zmm8)?;
            a.vmovups(m.k1(), zmm1)
        } else {
            a.vmovups(zmm1, m)?;
            a.vdivps(zmm1, zmm1, zmm8)?;
            a.vmovups(m, zmm1)
        }
    })?;
    epilogue(a)?;
    exp_table_512(a, &mut l)
}

/// The constants of the 16-lane `e^x` and SwiGLU: -0.0, 1, EXP_LO, EXP_HI,
/// LOG2E, LN2_HI, LN2_LO, 127, then the polynomial `P` from index [`P_AT`].
const P_AT: usize = 8;
const EXP_CONSTS: usize = P_AT + P.len();

/// The registers that hold SwiGLU's constants, in table order.
fn const_regs_512() -> [AsmRegisterZmm; EXP_CONSTS] {
    [zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25, zmm26, zmm27, zmm28, zmm29]
}

/// zmm0 = h·σ(h)·g (in: zmm0 = h, zmm6 = g); uses zmm1-5. `c`: the registers
/// holding -0.0, 1, EXP_LO, EXP_HI, LOG2E, LN2_HI, LN2_LO, 127, then P.
fn swiglu_vector_512(a: &mut CodeAssembler, c: &[AsmRegisterZmm]) -> Result<(), IcedError> {
    a.vpxord(zmm1, zmm0, c[0])?; // -h
    exp_512(a, c)?; // e^-h
    a.vaddps(zmm4, zmm4, c[1])?; // 1 + e^-h (IEEE addition commutes)
    a.vdivps(zmm5, c[1], zmm4)?; // s
    a.vmulps(zmm0, zmm0, zmm5)?;
    a.vmulps(zmm0, zmm0, zmm6)
}

/// zmm4 = e^zmm1 as `exp_ps_avx512`; uses zmm1-3 and zmm5. `c` as for SwiGLU.
fn exp_512(a: &mut CodeAssembler, c: &[AsmRegisterZmm]) -> Result<(), IcedError> {
    a.vmaxps(zmm1, zmm1, c[2])?;
    a.vminps(zmm1, zmm1, c[3])?;
    a.vmulps(zmm2, zmm1, c[4])?;
    a.vcvtps2dq(zmm2, zmm2)?; // n
    a.vcvtdq2ps(zmm3, zmm2)?; // nf
    a.vfnmadd231ps(zmm1, zmm3, c[5])?; // r = x - nf * ln2_hi
    a.vfnmadd231ps(zmm1, zmm3, c[6])?; // r -= nf * ln2_lo
    a.vmovaps(zmm4, c[P_AT])?;
    for &k in &c[P_AT + 1..] {
        a.vfmadd213ps(zmm4, zmm1, k)?; // p = p * r + c
    }
    a.vmulps(zmm5, zmm1, zmm1)?; // r2
    a.vfmadd213ps(zmm4, zmm5, zmm1)?; // p * r2 + r
    a.vaddps(zmm4, zmm4, c[1])?; // e
    a.vpsrad(zmm5, zmm2, 1)?; // n1
    a.vpsubd(zmm2, zmm2, zmm5)?; // n2
    a.vpaddd(zmm5, zmm5, c[7])?;
    a.vpslld(zmm5, zmm5, 23)?; // 2^n1
    a.vpaddd(zmm2, zmm2, c[7])?;
    a.vpslld(zmm2, zmm2, 23)?; // 2^n2
    a.vmulps(zmm4, zmm4, zmm5)?;
    a.vmulps(zmm4, zmm4, zmm2) // e^x
}

// rdi v, rsi cs, rdx heads. `rope_avx512`: `x·cos + (swapped·sin ^ even
// sign)`, no FMA (the scalar kernel's bits).
fn rope_512(a: &mut CodeAssembler, head: usize) -> Result<(), IcedError> {
    let mut top = a.create_label();
    let mut done = a.create_label();
    let mut c_sign = a.create_label();
    let n16 = head & !15;
    a.vmovups(zmm5, zmmword_ptr(c_sign))?;
    if head > n16 {
        set_k1(a, head - n16)?;
    }
    a.test(rdx, rdx)?;
    a.jz(done)?;
    a.set_label(&mut top)?;
    let mut j = 0;
    while j < head {
        let (x, c) = (zmmword_ptr(rdi + j * 4), zmmword_ptr(rsi + j * 4));
        if j < n16 {
            a.vmovups(zmm0, x)?;
            a.vmovups(zmm1, c)?;
        } else {
            a.vmovups(zmm0.k1().z(), x)?;
            a.vmovups(zmm1.k1().z(), c)?;
        }
        a.vpermilps(zmm2, zmm1, 0b10_10_00_00)?; // cos, cos
        a.vpermilps(zmm3, zmm1, 0b11_11_01_01)?; // sin, sin
        a.vpermilps(zmm4, zmm0, 0b10_11_00_01)?; // pairs swapped
        a.vmulps(zmm4, zmm4, zmm3)?;
        a.vpxord(zmm4, zmm4, zmm5)?; // even lanes negated
        a.vmulps(zmm0, zmm0, zmm2)?;
        a.vaddps(zmm0, zmm0, zmm4)?;
        if j < n16 {
            a.vmovups(zmmword_ptr(rdi + j * 4), zmm0)?;
        } else {
            a.vmovups(zmmword_ptr(rdi + j * 4).k1(), zmm0)?;
        }
        j += 16;
    }
    a.add(rdi, (head * 4) as i32)?;
    a.dec(rdx)?;
    a.jnz(top)?;
    a.set_label(&mut done)?;
    epilogue(a)?;
    a.set_label(&mut c_sign)?;
    let sign: [u32; 16] = core::array::from_fn(|i| if i % 2 == 0 { 0x8000_0000 } else { 0 });
    a.dd(&sign)
}
