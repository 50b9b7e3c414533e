//! Matrix-matrix products for a batch of tokens (the prompt's prefill),
//! specialised to a fixed number of columns.
//!
//! The generated function has the System V signature
//! `fn(out: *mut f32, x: *const f32, w: *const f32, rows: u64, tokens: u64, stride: u64) -> u64`
//! and computes `out[i*stride + t] = Σ_j w[i*cols + j] * x[t*cols + j]` for
//! `i < rows`, `t < tokens`, returning 0. With `stride` the batch's token
//! count, that is the layout of the engine's `KernelSet::matmat` (each task's
//! rows are one slice); [`crate::MatmatKernel::run`] calls it on blocks of
//! rows and tiles of tokens of such a product.
//!
//! For each row, the tokens go by tiles of [`MatmatSpec::tile`]: the row's
//! weights are loaded into a register once per 8 columns and feed one FMA per
//! token of the tile (x comes from L1). The columns are a loop of 32 per step
//! (the displacements of every load, the trip count and the tails are
//! immediates); the tails are unrolled.
//!
//! Summation order. Each `(row, token)` value is summed exactly as the AVX2
//! set's `dot_avx2` sums it (and so as the matrix-vector kernel of
//! [`crate::matvec`] does): four 8-lane FMA chains over blocks of 32 columns,
//! `(a0 + a1) + (a2 + a3)`, one chain over the remaining blocks of 8, the
//! horizontal sum `((l+h) + movehl) + lane 1`, then the last `cols % 8`
//! columns one by one (multiply, then add). So a generated kernel gives the
//! bits of `KernelSet::matmat` for the AVX2 and AVX-512 sets (both use the
//! AVX2 product).
//!
//! Registers: four accumulators per token of a tile, so with the 16 ymm
//! registers of AVX2 a tile is at most 3 tokens. (EVEX encoding reaches
//! ymm16-31 and 7 tokens a tile on AVX-512VL CPUs. Made and measured on a
//! Zen 4 on 2026-12-06: bit-exact, 0.93-1.33x the AOT product per kernel
//! with tiles chosen so x stays in L1, but no faster end to end (prompt of
//! 129 positions, 4 alternated rounds: 15M 2324-2637 against 2360-2854
//! tok/s, 110M 218-263 against 229-255), so not kept.) The code touches only caller-saved
//! registers, has no calls and no stack, reads `w[..rows*cols]` and
//! `x[..tokens*cols]`, and writes `out[i*stride..][..tokens]` for `i < rows` only.
use alloc::vec::Vec;

use iced_x86::code_asm::*;

use crate::matvec::{MAX_COLS, XMM, YMM, enc, hsum256};
use crate::{Isa, JitError};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmatSpec {
    /// The number of columns (the length of each token's x), baked into the code.
    pub cols: usize,
    /// Instruction set: AVX2+FMA only (see the module's notes).
    pub isa: Isa,
    /// Tokens per register tile: 1-3.
    pub tile: usize,
}

impl MatmatSpec {
    /// The widest tile the ISA's registers hold (four accumulators a token,
    /// one register for the weights, one spare).
    pub fn max_tile(isa: Isa) -> usize {
        match isa {
            Isa::Avx2Fma => 3,
            Isa::Avx512 | Isa::Sse2 => 0,
        }
    }

    /// The widest tile for `isa`.
    pub fn tuned(cols: usize, isa: Isa) -> Self {
        MatmatSpec { cols, isa, tile: Self::max_tile(isa) }
    }

    /// Refuses shapes the generator cannot make correct code for.
    pub fn validate(&self) -> Result<(), JitError> {
        if self.isa != Isa::Avx2Fma {
            return Err(JitError::UnsupportedIsa { kernel: "f32 matrix-matrix", isa: self.isa });
        }
        if self.cols == 0 {
            return Err(JitError::ZeroColumns);
        }
        if self.cols > MAX_COLS {
            return Err(JitError::TooManyColumns { cols: self.cols, max: MAX_COLS });
        }
        let max = Self::max_tile(self.isa);
        if self.tile == 0 || self.tile > max {
            return Err(JitError::BadBlockRows { rows: self.tile, max, isa: self.isa });
        }
        Ok(())
    }
}

/// Generates the kernel for `spec`, to be placed at address `ip`.
pub fn generate(spec: &MatmatSpec, ip: u64) -> Result<Vec<u8>, JitError> {
    spec.validate()?;
    let mut a = CodeAssembler::new(64).map_err(enc)?;
    emit(&mut a, spec).map_err(enc)?;
    a.assemble(ip).map_err(enc)
}

// Registers: rdi out (row), rsi x, rdx w (row), rcx rows left, r8 the end
// of x, r9 out's row stride in bytes; per row r10 x of the tile and r11 out
// of the tile; rax the column offset in bytes (and a scratch between tiles).
fn emit(a: &mut CodeAssembler, s: &MatmatSpec) -> Result<(), IcedError> {
    let row_bytes = (s.cols * 4) as i32;
    let xb = (s.cols * 4) as i32; // bytes between two tokens' x
    let mut row_loop = a.create_label();
    let mut done = a.create_label();
    a.test(rcx, rcx)?;
    a.jz(done)?;
    a.test(r8, r8)?;
    a.jz(done)?;
    a.imul_3(r8, r8, xb)?;
    a.add(r8, rsi)?;
    a.shl(r9, 2)?;
    a.set_label(&mut row_loop)?;
    a.mov(r10, rsi)?;
    a.mov(r11, rdi)?;
    // Full tiles, then one tile of the remainder's size (below `tile`). Each
    // test jumps to the next size's test, the last one to the next row.
    let mut full = a.create_label();
    let mut next = a.create_label();
    let mut test = a.create_label();
    a.set_label(&mut full)?;
    a.lea(rax, ptr(r10 + s.tile as i32 * xb))?;
    a.cmp(rax, r8)?;
    a.ja(if s.tile > 1 { test } else { next })?;
    tile(a, s, s.tile)?;
    a.jmp(full)?;
    for size in (1..s.tile).rev() {
        a.set_label(&mut test)?;
        test = a.create_label();
        a.lea(rax, ptr(r10 + size as i32 * xb))?;
        a.cmp(rax, r8)?;
        a.ja(if size > 1 { test } else { next })?;
        tile(a, s, size)?;
        if size > 1 {
            a.jmp(next)?;
        }
    }
    a.set_label(&mut next)?;
    a.add(rdi, r9)?;
    a.add(rdx, row_bytes)?;
    a.dec(rcx)?;
    a.jnz(row_loop)?;
    a.set_label(&mut done)?;
    a.vzeroupper()?;
    a.xor(eax, eax)?;
    a.ret()?;
    Ok(())
}

/// One tile of `n` tokens (x at r10) of the row at rdx, results to r11[0..n];
/// then r10 and r11 move past the tile.
fn tile(a: &mut CodeAssembler, s: &MatmatSpec, n: usize) -> Result<(), IcedError> {
    let cols = s.cols;
    let (n32, n8) = (cols & !31, cols & !7);
    let xb = cols * 4; // bytes between two tokens' x
    let acc = |t: usize, k: usize| YMM[4 * t + k];
    let wr = YMM[4 * n];
    let tmp = XMM[4 * n + 1];
    let chains = if n32 > 0 { 4 } else { 1 };
    for t in 0..n {
        for k in 0..chains {
            a.vxorps(acc(t, k), acc(t, k), acc(t, k))?;
        }
    }
    if n32 > 0 {
        let mut cols_loop = a.create_label();
        a.xor(eax, eax)?;
        a.set_label(&mut cols_loop)?;
        for k in 0..4 {
            a.vmovups(wr, ptr(rdx + rax + 32 * k))?;
            for t in 0..n {
                a.vfmadd231ps(acc(t, k), wr, ptr(r10 + rax + (t * xb + 32 * k)))?;
            }
        }
        a.add(rax, 128)?;
        a.cmp(rax, (n32 * 4) as i32)?;
        a.jb(cols_loop)?;
        for t in 0..n {
            a.vaddps(acc(t, 0), acc(t, 0), acc(t, 1))?;
            a.vaddps(acc(t, 2), acc(t, 2), acc(t, 3))?;
            a.vaddps(acc(t, 0), acc(t, 0), acc(t, 2))?;
        }
    }
    for j in (n32..n8).step_by(8) {
        a.vmovups(wr, ptr(rdx + j * 4))?;
        for t in 0..n {
            a.vfmadd231ps(acc(t, 0), wr, ptr(r10 + (t * xb + j * 4)))?;
        }
    }
    for t in 0..n {
        let v = XMM[4 * t];
        hsum256(a, v, acc(t, 0), tmp)?;
        for c in n8..cols {
            a.vmovss(tmp, dword_ptr(rdx + c * 4))?;
            a.vmulss(tmp, tmp, dword_ptr(r10 + (t * xb + c * 4)))?;
            a.vaddss(v, v, tmp)?;
        }
        a.vmovss(dword_ptr(r11 + t * 4), v)?;
    }
    a.add(r10, (n * xb) as i32)?;
    a.add(r11, (n * 4) as i32)?;
    Ok(())
}
