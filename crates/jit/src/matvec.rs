//! Matrix-vector products specialised to a fixed number of columns.
//!
//! The generated function has the System V signature
//! `fn(out: *mut f32, x: *const f32, w: *const f32, rows: u64) -> u64` and
//! computes `out[i] = Σ_j w[i*cols + j] * x[j]` for `i < rows`, returning 0.
//! `cols` is baked in: every load uses an immediate displacement, the inner
//! loop over the columns is fully unrolled, and the rows go by blocks of
//! [`MatvecSpec::block_rows`] (register blocking: the x vector is loaded once
//! per block and feeds every row's accumulators), then one row at a time.
//!
//! Summation order. Each row is summed exactly as the ahead-of-time kernel of
//! the same ISA sums it (`crates/llm/src/kernels/x86.rs`), so a generated
//! kernel gives the same bits:
//! - AVX2+FMA (`dot_avx2`): four 8-lane FMA chains over blocks of 32 columns,
//!   combined as `(a0 + a1) + (a2 + a3)`, then one chain over the remaining
//!   blocks of 8, a horizontal sum `((l+h) + movehl) + lane 1`, then the last
//!   `cols % 8` columns one by one (multiply, then add: no FMA);
//! - SSE2 (`matmul_sse2`): one 4-lane chain (multiply, then add) over blocks
//!   of 4 columns, the horizontal sum, then the last `cols % 4` columns.
//!
//! The code touches only caller-saved registers, has no calls, no stack, and
//! reads `w[..rows*cols]`, `x[..cols]` and writes `out[..rows]` only (prefetch
//! hints may name addresses past the end; they never fault).
#![allow(clippy::needless_range_loop)] // a row index picks registers and displacements together

use alloc::string::ToString;
use alloc::vec::Vec;

use iced_x86::code_asm::*;

use crate::{Isa, JitError};

/// The widest row a kernel is made for: bounds the unrolled code (about 40
/// bytes per 32 columns per row of the block) and keeps displacements small.
pub const MAX_COLS: usize = 16 * 1024;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatvecSpec {
    /// The number of columns (the length of `x`), baked into the code.
    pub cols: usize,
    /// Instruction set.
    pub isa: Isa,
    /// Rows per register block: 1–3 for AVX2 (four 8-lane accumulators per
    /// row), 1–8 for SSE2 (one 4-lane accumulator per row).
    pub block_rows: usize,
    /// Prefetch distance in bytes ahead of each row's loads (`prefetcht0`),
    /// or 0 for none; `block_rows * cols * 4` fetches the next block.
    pub prefetch: u32,
}

impl MatvecSpec {
    /// The settings measured best for this ISA. AVX2: one row at a time, no
    /// software prefetch, like the AOT kernel (on Zen 4, 2026-12-06, two rows
    /// ahead made both 15-20% slower, 15M `--jit only` one thread 293-310
    /// against 323-366 tok/s; on Zen 5, 2026-12-03, the next row prefetched
    /// was 1.04-1.08x the then unprefetched AOT kernel, within that host's
    /// noise; Zen 3's blocks of 3 rows gave 0.76-0.81x). SSE2: blocks of 4
    /// rows, no prefetch (Zen 3).
    pub fn tuned(cols: usize, isa: Isa) -> Self {
        match isa {
            // (AVX-512 f32 products are not generated: `validate` refuses them.)
            Isa::Avx2Fma | Isa::Avx512 => MatvecSpec { cols, isa, block_rows: 1, prefetch: 0 },
            Isa::Sse2 => MatvecSpec { cols, isa, block_rows: 4, prefetch: 0 },
        }
    }

    /// The most rows a register block may hold for `isa`.
    pub fn max_block_rows(isa: Isa) -> usize {
        match isa {
            Isa::Avx2Fma | Isa::Avx512 => 3,
            Isa::Sse2 => 8,
        }
    }

    /// Refuses shapes the generator cannot make correct code for.
    pub fn validate(&self) -> Result<(), JitError> {
        if self.isa == Isa::Avx512 {
            return Err(JitError::UnsupportedIsa { kernel: "f32 matrix-vector", isa: self.isa });
        }
        if self.cols == 0 {
            return Err(JitError::ZeroColumns);
        }
        if self.cols > MAX_COLS {
            return Err(JitError::TooManyColumns { cols: self.cols, max: MAX_COLS });
        }
        let max = Self::max_block_rows(self.isa);
        if self.block_rows == 0 || self.block_rows > max {
            return Err(JitError::BadBlockRows { rows: self.block_rows, max, isa: self.isa });
        }
        if self.prefetch > 65536 || !self.prefetch.is_multiple_of(64) {
            return Err(JitError::BadPrefetch(self.prefetch));
        }
        Ok(())
    }
}

pub(crate) const YMM: [AsmRegisterYmm; 16] = [
    ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13, ymm14, ymm15,
];
pub(crate) const XMM: [AsmRegisterXmm; 16] = [
    xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15,
];

pub(crate) fn enc(e: IcedError) -> JitError {
    JitError::Encoder(e.to_string())
}

/// Generates the kernel for `spec`, to be placed at address `ip` (the code is
/// position independent; `ip` only matters for the encoder's branch choice).
pub fn generate(spec: &MatvecSpec, ip: u64) -> Result<Vec<u8>, JitError> {
    spec.validate()?;
    let mut a = CodeAssembler::new(64).map_err(enc)?;
    emit(&mut a, spec).map_err(enc)?;
    a.assemble(ip).map_err(enc)
}

fn emit(a: &mut CodeAssembler, s: &MatvecSpec) -> Result<(), IcedError> {
    let n = s.cols;
    let r = s.block_rows;
    let row_bytes = n * 4;
    let mut block_loop = a.create_label();
    let mut tail = a.create_label();
    let mut tail_loop = a.create_label();
    let mut done = a.create_label();

    if r > 1 {
        a.set_label(&mut block_loop)?;
        a.cmp(rcx, r as i32)?;
        a.jb(tail)?;
        block(a, s, r)?;
        a.add(rdx, (r * row_bytes) as i32)?;
        a.add(rdi, (r * 4) as i32)?;
        a.sub(rcx, r as i32)?;
        a.jmp(block_loop)?;
    }
    a.set_label(&mut tail)?;
    a.test(rcx, rcx)?;
    a.jz(done)?;
    a.set_label(&mut tail_loop)?;
    block(a, s, 1)?;
    a.add(rdx, row_bytes as i32)?;
    a.add(rdi, 4)?;
    a.dec(rcx)?;
    a.jnz(tail_loop)?;
    a.set_label(&mut done)?;
    if s.isa == Isa::Avx2Fma {
        a.vzeroupper()?;
    }
    a.xor(eax, eax)?;
    a.ret()?;
    Ok(())
}

/// One block of `rows` rows at `rdx`, results to `rdi[0..rows]`.
fn block(a: &mut CodeAssembler, s: &MatvecSpec, rows: usize) -> Result<(), IcedError> {
    match s.isa {
        // (`validate` refused AVX-512 before any code was emitted.)
        Isa::Avx2Fma | Isa::Avx512 => block_avx2(a, s, rows),
        Isa::Sse2 => block_sse2(a, s, rows),
    }
}

fn prefetch_rows(a: &mut CodeAssembler, s: &MatvecSpec, rows: usize, j: usize, lines: usize) -> Result<(), IcedError> {
    if s.prefetch == 0 {
        return Ok(());
    }
    for row in 0..rows {
        for l in 0..lines {
            a.prefetcht0(byte_ptr(rdx + (row * s.cols * 4 + j * 4 + l * 64 + s.prefetch as usize)))?;
        }
    }
    Ok(())
}

fn block_avx2(a: &mut CodeAssembler, s: &MatvecSpec, rows: usize) -> Result<(), IcedError> {
    let n = s.cols;
    let (n32, n8) = (n & !31, n & !7);
    let acc = |row: usize, k: usize| YMM[4 * row + k];
    let xv = [ymm12, ymm13];
    let t = xmm14;
    let w = |row: usize, col: usize| ptr(rdx + (row * n * 4 + col * 4));
    let chains = if n32 > 0 { 4 } else { 1 };
    for row in 0..rows {
        for k in 0..chains {
            a.vxorps(acc(row, k), acc(row, k), acc(row, k))?;
        }
    }
    let mut step = 0;
    for j in (0..n32).step_by(32) {
        prefetch_rows(a, s, rows, j, 2)?;
        for k in 0..4 {
            let x = xv[step % 2];
            step += 1;
            a.vmovups(x, ptr(rsi + (j + 8 * k) * 4))?;
            for row in 0..rows {
                a.vfmadd231ps(acc(row, k), x, w(row, j + 8 * k))?;
            }
        }
    }
    if n32 > 0 {
        for row in 0..rows {
            a.vaddps(acc(row, 0), acc(row, 0), acc(row, 1))?;
            a.vaddps(acc(row, 2), acc(row, 2), acc(row, 3))?;
            a.vaddps(acc(row, 0), acc(row, 0), acc(row, 2))?;
        }
    }
    for j in (n32..n8).step_by(8) {
        let x = xv[step % 2];
        step += 1;
        a.vmovups(x, ptr(rsi + j * 4))?;
        for row in 0..rows {
            a.vfmadd231ps(acc(row, 0), x, w(row, j))?;
        }
    }
    for row in 0..rows {
        let v = XMM[4 * row];
        hsum256(a, v, acc(row, 0), t)?;
        for c in n8..n {
            a.vmovss(t, dword_ptr(rdx + (row * n * 4 + c * 4)))?;
            a.vmulss(t, t, dword_ptr(rsi + c * 4))?;
            a.vaddss(v, v, t)?;
        }
        a.vmovss(dword_ptr(rdi + row * 4), v)?;
    }
    Ok(())
}

/// `v` (the low half of `acc`) = `hsum256(acc)` as `dot_avx2` sums it:
/// `((l+h) + movehl) + lane 1`; `t` is clobbered.
pub(crate) fn hsum256(a: &mut CodeAssembler, v: AsmRegisterXmm, acc: AsmRegisterYmm, t: AsmRegisterXmm) -> Result<(), IcedError> {
    a.vextractf128(t, acc, 1)?;
    a.vaddps(v, v, t)?;
    a.vmovhlps(t, v, v)?;
    a.vaddps(v, v, t)?;
    a.vmovshdup(t, v)?;
    a.vaddss(v, v, t)
}

fn block_sse2(a: &mut CodeAssembler, s: &MatvecSpec, rows: usize) -> Result<(), IcedError> {
    let n = s.cols;
    let n4 = n & !3;
    let (x, t) = (xmm8, xmm9);
    let w = |row: usize, col: usize| ptr(rdx + (row * n * 4 + col * 4));
    for row in 0..rows {
        a.xorps(XMM[row], XMM[row])?;
    }
    for j in (0..n4).step_by(4) {
        if j % 16 == 0 {
            prefetch_rows(a, s, rows, j, 1)?;
        }
        a.movups(x, ptr(rsi + j * 4))?;
        for row in 0..rows {
            // Alternate two temporaries so that consecutive rows do not wait on one register.
            let tr = XMM[10 + row % 2];
            a.movups(tr, w(row, j))?;
            a.mulps(tr, x)?;
            a.addps(XMM[row], tr)?;
        }
    }
    for row in 0..rows {
        let v = XMM[row];
        a.movaps(t, v)?;
        a.movhlps(t, v)?;
        a.addps(v, t)?;
        a.movaps(t, v)?;
        a.shufps(t, t, 1)?;
        a.addss(v, t)?;
        for c in n4..n {
            a.movss(t, dword_ptr(rdx + (row * n * 4 + c * 4)))?;
            a.mulss(t, dword_ptr(rsi + c * 4))?;
            a.addss(v, t)?;
        }
        a.movss(dword_ptr(rdi + row * 4), v)?;
    }
    Ok(())
}
