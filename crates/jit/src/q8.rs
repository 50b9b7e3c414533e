//! Int8 matrix-vector products (groups of 32 with an f32 scale each, the
//! engine's `WeightMode::Q8`) specialised to a fixed number of columns, AVX2,
//! or AVX-512 VNNI ([`Q8Spec::vnni`]) where the CPU has it.
//!
//! The generated function has the System V signature
//! `fn(out: *mut f32, qw: *const i8, sw: *const f32, qx: *const i8, sx: *const f32, rows: u64) -> u64`
//! and computes, for `i < rows`, `out[i] = Σ_g f32(Σ_{j in g} qw[i][j]·qx[j]) · (sw[i][g]·sx[g])`.
//!
//! It sums each row exactly as the ahead-of-time `q8_matmul_avx2` does (one
//! 8-lane f32 FMA chain over the groups, `vpsignb`/`vpmaddubsw`/`vpmaddwd` for
//! the integer part, the scale product rounded to f32 before the broadcast,
//! then the same horizontal sum), so a generated kernel gives the same bits.
//! Groups are fully unrolled with immediate displacements; rows go by
//! register blocks of [`Q8Spec::block_rows`], then one at a time.
#![allow(clippy::needless_range_loop)] // a row index picks registers and displacements together

use alloc::string::ToString;
use alloc::vec::Vec;

use iced_x86::code_asm::*;

use crate::JitError;

/// Values per group (the engine's `quant::GROUP`).
pub const GROUP: usize = 32;
/// The most groups a kernel unrolls.
pub const MAX_GROUPS: usize = 512;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Q8Spec {
    /// Columns, a multiple of 32 (the padded row length of the int8 matrix).
    pub cols: usize,
    /// Rows per register block, 1–6.
    pub block_rows: usize,
    /// Prefetch distance in bytes ahead of each row's weight loads
    /// (`prefetcht0`, one per 64 bytes), a multiple of 64 up to 65536; 0 for none.
    pub prefetch: u32,
    /// The integer part with AVX-512 VNNI (`vpdpbusd` on ymm, EVEX) instead of
    /// `vpmaddubsw`/`vpmaddwd`, and each scale product taken with an embedded
    /// broadcast: the same i32 lanes (four adjacent bytes each, exact, no
    /// saturation on either path for |x| <= 128), so the same bits.
    /// Needs AVX512_VNNI and AVX512VL (see [`vnni_usable`]).
    pub vnni: bool,
    /// With `block_rows == 2`: a block's second row is the row half the
    /// call's rows further on, not the next one, so the two weight streams
    /// run far apart (an odd last row goes alone). Each row's sum is the same.
    pub split: bool,
    /// Prefetch with `prefetchnta` (into L1, marked as streamed) rather than
    /// `prefetcht0`. A hint either way: the bits do not change.
    pub nta: bool,
}

impl Q8Spec {
    /// The settings used by the engine: one row at a time (measured 1.4–1.5x
    /// faster than blocks of 2–6 rows on Zen 3, one sequential weight stream,
    /// and as good as blocks on Zen 5 once prefetched), prefetching
    /// [`Q8Spec::TUNED_PREFETCH_ROWS`] rows ahead.
    pub fn tuned(cols: usize) -> Self {
        let ahead = (Self::TUNED_PREFETCH_ROWS as usize * cols).min(65536) as u32;
        Q8Spec { cols, block_rows: 1, prefetch: ahead / 64 * 64, vnni: false, split: false, nta: false }
    }

    /// How many rows ahead [`Q8Spec::tuned`] prefetches: in the `bench jit`
    /// int8 table (weights streamed from memory, Zen 5, 2026-12-03), one row
    /// per block with 16 rows ahead was 1.46x, 1.14x and 1.22x the
    /// ahead-of-time kernel on 768x288, 2048x768 and 768x2048, ahead of 8 rows
    /// (1.17x, 1.07x, 1.09x); without prefetch 0.6–1.2x.
    pub const TUNED_PREFETCH_ROWS: u32 = 16;

    /// [`Q8Spec::tuned`] with VNNI, used by the engine where [`vnni_usable`].
    /// On a Zen 4 (2026-12-06, the 15M and 110M shapes rotating through
    /// 14-24 MiB, that is in L3, best of 5): one VNNI row ran at 1.20-1.49x
    /// the ahead-of-time AVX2 kernel and the AVX2 code with one row at
    /// 1.08-1.39x. The engine also races a two-row variant in place
    /// ([`crate::engine::Q8_VARIANTS`]).
    pub fn tuned_vnni(cols: usize) -> Self {
        Q8Spec { vnni: true, ..Self::tuned(cols) }
    }

    /// Refuses shapes the generator cannot make correct code for.
    pub fn validate(&self) -> Result<(), JitError> {
        if self.cols == 0 {
            return Err(JitError::ZeroColumns);
        }
        if !self.cols.is_multiple_of(GROUP) {
            return Err(JitError::NotWholeGroups(self.cols));
        }
        if self.cols / GROUP > MAX_GROUPS {
            return Err(JitError::TooManyColumns { cols: self.cols, max: MAX_GROUPS * GROUP });
        }
        if self.block_rows == 0 || self.block_rows > 6 {
            return Err(JitError::BadBlockRows { rows: self.block_rows, max: 6, isa: crate::Isa::Avx2Fma });
        }
        if self.prefetch > 65536 || !self.prefetch.is_multiple_of(64) {
            return Err(JitError::BadPrefetch(self.prefetch));
        }
        if self.split && self.block_rows != 2 {
            return Err(JitError::BadBlockRows { rows: self.block_rows, max: 2, isa: crate::Isa::Avx2Fma });
        }
        Ok(())
    }
}

const YMM: [AsmRegisterYmm; 16] = [
    ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13, ymm14, ymm15,
];
const XMM: [AsmRegisterXmm; 16] = [
    xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15,
];

/// Whether the CPU runs the [`Q8Spec::vnni`] code: AVX512_VNNI and AVX512VL
/// (CPUID leaf 7), with the OS saving the opmask and ZMM state.
pub fn vnni_usable(f: &bareflow_llm::kernels::CpuFeatures) -> bool {
    f.avx512 && f.avx512_vnni_vl
}

/// Generates the kernel for `spec`, to be placed at `ip`.
pub fn generate(spec: &Q8Spec, ip: u64) -> Result<Vec<u8>, JitError> {
    spec.validate()?;
    let mut a = CodeAssembler::new(64).map_err(|e| JitError::Encoder(e.to_string()))?;
    // EVEX where VNNI is asked for (the VEX `vpdpbusd` is AVX-VNNI, another extension).
    a.set_prefer_vex(!spec.vnni);
    emit(&mut a, spec).map_err(|e| JitError::Encoder(e.to_string()))?;
    a.assemble(ip).map_err(|e| JitError::Encoder(e.to_string()))
}

// Registers: rdi out, rsi qw, rdx sw, rcx qx, r8 sx, r9 rows.
// ymm0..5 accumulators, ymm6 x, ymm7 |x|, ymm8/9 weights, ymm10/11 scales, xmm12 sx[g], ymm15 ones (i16)
// (AVX2); with VNNI see `HI`; rax, r10, r11 the second row's offsets with `split`.
fn emit(a: &mut CodeAssembler, s: &Q8Spec) -> Result<(), IcedError> {
    let groups = s.cols / GROUP;
    let r = s.block_rows;
    let mut block_loop = a.create_label();
    let mut tail = a.create_label();
    let mut tail_loop = a.create_label();
    let mut done = a.create_label();
    a.vpcmpeqw(ymm15, ymm15, ymm15)?;
    a.vpsrlw(ymm15, ymm15, 15)?;
    if s.split {
        // rax = rows / 2; the second row of a block is at +r10 (weights),
        // +r11 (scales), +rax*4 (out). r9 drops by 2 a block, to rows % 2.
        a.mov(rax, r9)?;
        a.shr(rax, 1)?;
        a.imul_3(r10, rax, s.cols as i32)?;
        a.imul_3(r11, rax, (groups * 4) as i32)?;
        a.set_label(&mut block_loop)?;
        a.cmp(r9, 2)?;
        a.jb(tail)?;
        block(a, s, 2)?;
        a.add(rsi, s.cols as i32)?;
        a.add(rdx, (groups * 4) as i32)?;
        a.add(rdi, 4)?;
        a.sub(r9, 2)?;
        a.jmp(block_loop)?;
        // The odd row, if any, is row 2 * (rows / 2): past the second half.
        a.set_label(&mut tail)?;
        a.test(r9, r9)?;
        a.jz(done)?;
        a.add(rsi, r10)?;
        a.add(rdx, r11)?;
        a.lea(rdi, ptr(rdi + rax * 4))?;
        block(a, &Q8Spec { split: false, ..*s }, 1)?;
        a.set_label(&mut done)?;
        crate::pointwise::epilogue(a)?;
        return Ok(());
    }
    if r > 1 {
        a.set_label(&mut block_loop)?;
        a.cmp(r9, r as i32)?;
        a.jb(tail)?;
        block(a, s, r)?;
        a.add(rsi, (r * s.cols) as i32)?;
        a.add(rdx, (r * groups * 4) as i32)?;
        a.add(rdi, (r * 4) as i32)?;
        a.sub(r9, r as i32)?;
        a.jmp(block_loop)?;
    }
    a.set_label(&mut tail)?;
    a.test(r9, r9)?;
    a.jz(done)?;
    a.set_label(&mut tail_loop)?;
    block(a, s, 1)?;
    a.add(rsi, s.cols as i32)?;
    a.add(rdx, (groups * 4) as i32)?;
    a.add(rdi, 4)?;
    a.dec(r9)?;
    a.jnz(tail_loop)?;
    a.set_label(&mut done)?;
    crate::pointwise::epilogue(a)?;
    Ok(())
}

/// The prefetch hint of `s` at `m` (it never faults, wherever it points).
fn prefetch(a: &mut CodeAssembler, s: &Q8Spec, m: AsmMemoryOperand) -> Result<(), IcedError> {
    if s.nta { a.prefetchnta(byte_ptr(m)) } else { a.prefetcht0(byte_ptr(m)) }
}

/// Row `row`'s weights at byte `off` of the row (see [`Q8Spec::split`]).
fn wmem(s: &Q8Spec, row: usize, off: usize) -> AsmMemoryOperand {
    if s.split && row == 1 { rsi + r10 + off } else { rsi + (row * s.cols + off) }
}

/// Row `row`'s scale of group `g`.
fn smem(s: &Q8Spec, row: usize, g: usize) -> AsmMemoryOperand {
    if s.split && row == 1 { rdx + r11 + g * 4 } else { rdx + (row * (s.cols / GROUP) + g) * 4 }
}

/// Row `row`'s output.
fn omem(s: &Q8Spec, row: usize) -> AsmMemoryOperand {
    if s.split && row == 1 { rdi + rax * 4 } else { rdi + row * 4 }
}

// VNNI: ymm8..11 weights (VEX `vpsignb` reaches only ymm0..15), ymm12 sx[g]
// broadcast, ymm16..23 integer products, ymm24..31 scale products.
const HI: [AsmRegisterYmm; 16] = [
    ymm16, ymm17, ymm18, ymm19, ymm20, ymm21, ymm22, ymm23, ymm24, ymm25, ymm26, ymm27, ymm28, ymm29, ymm30, ymm31,
];

/// One block of `rows` rows. Per group and row, the same steps either way:
/// w with the sign of x, the i32 sum of each 4 bytes times |x| (AVX2:
/// `vpmaddubsw` then `vpmaddwd` by ones; VNNI: `vpdpbusd` into a zeroed
/// register), to f32, times the scale product, into the row's accumulator.
fn block(a: &mut CodeAssembler, s: &Q8Spec, rows: usize) -> Result<(), IcedError> {
    let groups = s.cols / GROUP;
    for row in 0..rows {
        a.vxorps(YMM[row], YMM[row], YMM[row])?;
    }
    let mut t = 0;
    for g in 0..groups {
        a.vmovdqu(ymm6, ptr(rcx + g * GROUP))?;
        a.vpsignb(ymm7, ymm6, ymm6)?;
        if s.vnni {
            a.vbroadcastss(ymm12, dword_ptr(r8 + g * 4))?;
        } else {
            a.vmovss(xmm12, dword_ptr(r8 + g * 4))?;
        }
        for row in 0..rows {
            if s.prefetch != 0 && g % 2 == 0 {
                // A hint: it never faults, wherever it points.
                prefetch(a, s, wmem(s, row, g * GROUP + s.prefetch as usize))?;
            }
            let w = if s.vnni { YMM[8 + t % 4] } else { YMM[8 + t % 2] };
            a.vmovdqu(w, ptr(wmem(s, row, g * GROUP)))?;
            a.vpsignb(w, w, ymm6)?;
            if s.vnni {
                let (p, sc) = (HI[t % 8], HI[8 + t % 8]);
                a.vpxord(p, p, p)?;
                a.vpdpbusd(p, ymm7, w)?;
                a.vcvtdq2ps(p, p)?;
                a.vmulps(sc, ymm12, dword_bcst(smem(s, row, g)))?;
                a.vfmadd231ps(YMM[row], p, sc)?;
            } else {
                let sc = 10 + t % 2;
                a.vpmaddubsw(w, ymm7, w)?;
                a.vpmaddwd(w, w, ymm15)?;
                a.vcvtdq2ps(w, w)?;
                a.vmulss(XMM[sc], xmm12, dword_ptr(smem(s, row, g)))?;
                a.vbroadcastss(YMM[sc], XMM[sc])?;
                a.vfmadd231ps(YMM[row], w, YMM[sc])?;
            }
            t += 1;
        }
    }
    hsum_rows(a, s, rows)
}

/// Each accumulator's 8 lanes summed as the ahead-of-time `hsum256` does, stored to `out[row]`.
fn hsum_rows(a: &mut CodeAssembler, s: &Q8Spec, rows: usize) -> Result<(), IcedError> {
    for row in 0..rows {
        hsum_store(a, row, omem(s, row))?;
    }
    Ok(())
}

/// Accumulator `i`'s 8 lanes summed as `hsum256` does (xmm13 scratch), stored at `m`.
fn hsum_store(a: &mut CodeAssembler, i: usize, m: AsmMemoryOperand) -> Result<(), IcedError> {
    let v = XMM[i];
    a.vextractf128(xmm13, YMM[i], 1)?;
    a.vaddps(v, v, xmm13)?;
    a.vmovhlps(xmm13, v, v)?;
    a.vaddps(v, v, xmm13)?;
    a.vmovshdup(xmm13, v)?;
    a.vaddss(v, v, xmm13)?;
    a.vmovss(dword_ptr(m), v)
}

// ------------------------------------------------------- batched (VNNI) --

/// A batched int8 product (a prompt's prefill), VNNI only: each weight group
/// is loaded once for [`Q8BatchSpec::tokens`] tokens, one FMA chain per token.
///
/// The generated function has the System V signature
/// `fn(out: *mut f32, qw: *const i8, sw: *const f32, qxa: *const i8, sx: *const f32, rows: u64) -> u64`.
/// `qxa` holds, per token `t < tokens`, the token's `cols` quantized values
/// and then their absolute values (`wrapping_abs`, as `vpsignb` makes them),
/// `2 * cols` bytes a token; `sx` the tokens' scales, `groups` a token; `out`
/// gets `tokens` values a row: `out[i * tokens + t]`. Each value is summed
/// exactly as the one-token kernels sum it (the groups in order into one
/// 8-lane chain, then the same horizontal sum), so it has their bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Q8BatchSpec {
    /// Columns, a multiple of 32.
    pub cols: usize,
    /// Tokens per call, 1-4.
    pub tokens: usize,
}

impl Q8BatchSpec {
    /// The most tokens a call takes (accumulators ymm0-3).
    pub const MAX_TOKENS: usize = 4;

    /// Refuses shapes the generator cannot make correct code for.
    pub fn validate(&self) -> Result<(), JitError> {
        Q8Spec { cols: self.cols, block_rows: 1, prefetch: 0, vnni: true, split: false, nta: false }.validate()?;
        if self.tokens == 0 || self.tokens > Self::MAX_TOKENS {
            return Err(JitError::BadBlockRows { rows: self.tokens, max: Self::MAX_TOKENS, isa: crate::Isa::Avx512 });
        }
        Ok(())
    }
}

/// Generates the batched kernel for `spec`, to be placed at `ip`. Code for
/// it must only run where [`vnni_usable`].
pub fn generate_batch(spec: &Q8BatchSpec, ip: u64) -> Result<Vec<u8>, JitError> {
    spec.validate()?;
    let mut a = CodeAssembler::new(64).map_err(|e| JitError::Encoder(e.to_string()))?;
    a.set_prefer_vex(false);
    emit_batch(&mut a, spec).map_err(|e| JitError::Encoder(e.to_string()))?;
    a.assemble(ip).map_err(|e| JitError::Encoder(e.to_string()))
}

// Registers: rdi out, rsi qw, rdx sw, rcx qxa, r8 sx, r9 rows. ymm0-3 the
// tokens' accumulators, ymm8 the weights, ymm9 the row's scale, ymm10-13 the
// sign-adjusted weights (VEX `vpsignb`), ymm16-19 |x|, ymm20-23 the i32
// sums, ymm24-27 the scale products.
fn emit_batch(a: &mut CodeAssembler, s: &Q8BatchSpec) -> Result<(), IcedError> {
    let (n, groups, tk) = (s.cols, s.cols / GROUP, s.tokens);
    let mut row_loop = a.create_label();
    let mut done = a.create_label();
    a.test(r9, r9)?;
    a.jz(done)?;
    a.set_label(&mut row_loop)?;
    for t in 0..tk {
        a.vxorps(YMM[t], YMM[t], YMM[t])?;
    }
    for g in 0..groups {
        a.vmovdqu(ymm8, ptr(rsi + g * GROUP))?;
        a.vbroadcastss(ymm9, dword_ptr(rdx + g * 4))?;
        for t in 0..tk {
            let (wt, absx, p, sc) = (YMM[10 + t], HI[t], HI[4 + t], HI[8 + t]);
            let x = t * 2 * n + g * GROUP;
            a.vpsignb(wt, ymm8, ptr(rcx + x))?;
            a.vmovdqu8(absx, ptr(rcx + (x + n)))?;
            a.vpxord(p, p, p)?;
            a.vpdpbusd(p, absx, wt)?;
            a.vcvtdq2ps(p, p)?;
            a.vmulps(sc, ymm9, dword_bcst(r8 + (t * groups + g) * 4))?;
            a.vfmadd231ps(YMM[t], p, sc)?;
        }
    }
    for t in 0..tk {
        hsum_store(a, t, rdi + t * 4)?;
    }
    a.add(rsi, n as i32)?;
    a.add(rdx, (groups * 4) as i32)?;
    a.add(rdi, (tk * 4) as i32)?;
    a.dec(r9)?;
    a.jnz(row_loop)?;
    a.set_label(&mut done)?;
    crate::pointwise::epilogue(a)?;
    Ok(())
}
