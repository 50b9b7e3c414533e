//! The engine's vector operations around the matrix products, specialised to
//! the model's dims, AVX2+FMA: RMSNorm, SwiGLU and RoPE.
//!
//! Generated functions (System V):
//! - RMSNorm `fn(o: *mut f32, x: *const f32, w: *const f32)`:
//!   `o = w * (s * x)` with `s = 1 / sqrt(Σx² / dim + 1e-5)`;
//! - SwiGLU `fn(hb: *mut f32, hb2: *const f32)`: `hb = hb · σ(hb) · hb2`;
//! - RoPE `fn(v: *mut f32, cs: *const f32, heads: u64)`: each head of `v`
//!   rotated by the `[cos, sin]` pairs `cs` (one head long).
//!
//! Each computes exactly what the ahead-of-time AVX2 kernel computes, in the
//! same order, so results are bit for bit the same (and the AVX-512 set's
//! SwiGLU and RoPE are the same bits too: its lane `e^x` uses the AVX2
//! steps, and both RoPEs equal the scalar one):
//! - RMSNorm's sum of squares is `dot_avx2(x, x)`: four 8-lane FMA chains
//!   over blocks of 32, `(a0 + a1) + (a2 + a3)`, one chain over the blocks of
//!   8 left, then the horizontal sum; the divisions and the square root are
//!   the scalar instructions the AOT code compiles to;
//! - SwiGLU uses the lane `e^x` of `bareflow_llm::kernels::lane_exp` with the
//!   same FMA steps, then `1 / (1 + e^-h)`, `(h · s) · g`.
//!
//! Dims are immediates (RMSNorm and RoPE fully unrolled over their dim and
//! head, whole 8-lane vectors only; SwiGLU a counted loop, then its partial
//! last vector with masked loads and stores, which read as zero and write
//! nothing outside the slice, like the AOT kernel's zero-padded tail), constants sit in a table after the code
//! (RIP-relative), and the code touches only caller-saved registers, has no
//! calls and no stack, and reads and writes exactly the slices of its dims.
use alloc::string::ToString;
use alloc::vec::Vec;

use bareflow_llm::kernels::lane_exp::{EXP_HI, EXP_LO, LN2_HI, LN2_LO, LOG2E, P};
use iced_x86::code_asm::*;

use crate::JitError;

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
}

impl PointwiseSpec {
    /// The vector length baked into the code.
    pub fn len(&self) -> usize {
        match *self {
            Self::RmsNorm { dim } => dim,
            Self::SwiGlu { n } => n,
            Self::Rope { head } => head,
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
        }
    }

    /// Refuses lengths the generator cannot make correct code for.
    pub fn validate(&self) -> Result<(), JitError> {
        let n = self.len();
        if n == 0 {
            return Err(JitError::ZeroColumns);
        }
        if n > MAX_DIM {
            return Err(JitError::TooManyColumns { cols: n, max: MAX_DIM });
        }
        // SwiGLU takes a partial last vector (masked loads and stores, as the
        // AOT kernel's zero-padded one); the others are made for whole vectors.
        if !n.is_multiple_of(8) && !matches!(self, Self::SwiGlu { .. }) {
            return Err(JitError::NotWholeVectors(n));
        }
        Ok(())
    }
}

/// Generates the kernel for `spec`, to be placed at `ip`.
pub fn generate(spec: &PointwiseSpec, ip: u64) -> Result<Vec<u8>, JitError> {
    spec.validate()?;
    let enc = |e: IcedError| JitError::Encoder(e.to_string());
    let mut a = CodeAssembler::new(64).map_err(enc)?;
    match *spec {
        PointwiseSpec::RmsNorm { dim } => rmsnorm(&mut a, dim),
        PointwiseSpec::SwiGlu { n } => swiglu(&mut a, n),
        PointwiseSpec::Rope { head } => rope(&mut a, head),
    }
    .map_err(enc)?;
    a.assemble(ip).map_err(enc)
}

fn epilogue(a: &mut CodeAssembler) -> Result<(), IcedError> {
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
    // s = 1 / sqrt(ss / dim + 1e-5)
    load_scalar(a, xmm1, dim as f32)?;
    a.vdivss(xmm0, xmm0, xmm1)?;
    load_scalar(a, xmm1, 1e-5)?;
    a.vaddss(xmm0, xmm0, xmm1)?;
    a.vsqrtss(xmm0, xmm0, xmm0)?;
    load_scalar(a, xmm1, 1.0)?;
    a.vdivss(xmm1, xmm1, xmm0)?;
    a.vbroadcastss(ymm1, xmm1)?;
    for j in (0..dim).step_by(8) {
        a.vmulps(ymm2, ymm1, ptr(rsi + j * 4))?;
        a.vmulps(ymm2, ymm2, ptr(rdx + j * 4))?;
        a.vmovups(ptr(rdi + j * 4), ymm2)?;
    }
    epilogue(a)
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
