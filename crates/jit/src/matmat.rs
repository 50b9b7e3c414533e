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
//! registers of AVX2 a tile is at most 3 tokens.
//!
//! With AVX-512 F ([`Isa::Avx512`]) rows go in pairs and tokens by tiles of
//! up to 4, two zmm accumulators per (row, token), each zmm holding two of
//! the AVX2 order's chains side by side (see the notes above `emit512`), so
//! the bits are the same; and each block's code prefetches the next block of
//! rows into L2 while it works, so the first token tile of that block does
//! not wait on memory. On a Zen 4 (2026-12-06, 16 tokens, the 15M and 110M
//! shapes, weights rotating through 64 MiB so each call reads them from
//! memory, best of 5 alternated rounds): 1.63-2.02x the AOT product, against
//! 1.01-1.12x for the AVX2 tiles; without the L2 prefetch 0.93-1.48x (with
//! the weights in cache 1.62-1.78x). An earlier try, one row and tiles of 7
//! tokens over ymm0-31 without the prefetch, was 0.84-1.33x and not kept. The
//! code touches only caller-saved
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
    /// Instruction set: AVX2+FMA, or AVX-512 (F) for the row-pair kernel
    /// (see the module's notes).
    pub isa: Isa,
    /// Tokens per register tile: 1-3 (AVX2), 1-4 (AVX-512).
    pub tile: usize,
}

impl MatmatSpec {
    /// The widest tile the ISA's registers hold (four accumulators a token,
    /// one register for the weights, one spare).
    pub fn max_tile(isa: Isa) -> usize {
        match isa {
            Isa::Avx2Fma => 3,
            // Two zmm accumulators per (row, token), two rows: 16 of zmm10-25.
            Isa::Avx512 => 4,
            Isa::Sse2 => 0,
        }
    }

    /// The widest tile for `isa`.
    pub fn tuned(cols: usize, isa: Isa) -> Self {
        MatmatSpec { cols, isa, tile: Self::max_tile(isa) }
    }

    /// Refuses shapes the generator cannot make correct code for.
    pub fn validate(&self) -> Result<(), JitError> {
        if self.isa == Isa::Sse2 {
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
    match spec.isa {
        Isa::Avx512 => {
            // EVEX wherever an instruction has it (the accumulators reach zmm25).
            a.set_prefer_vex(false);
            emit512(&mut a, spec).map_err(enc)?
        }
        _ => emit(&mut a, spec).map_err(enc)?,
    }
    a.assemble(ip).map_err(enc)
}

// Registers: rdi out (row), rsi x, rdx w (row), rcx rows left, r8 the end
// of x, r9 out's row stride in bytes; per row r10 x of the tile and r11 out
// of the tile; rax the column offset in bytes (and a scratch between tiles).
fn emit(a: &mut CodeAssembler, s: &MatmatSpec) -> Result<(), IcedError> {
    let row_bytes = (s.cols * 4) as i32;
    let mut row_loop = a.create_label();
    let mut done = a.create_label();
    prologue(a, s, done)?;
    a.set_label(&mut row_loop)?;
    token_tiles(a, s, &mut |a, n| tile(a, s, n))?;
    a.add(rdi, r9)?;
    a.add(rdx, row_bytes)?;
    a.dec(rcx)?;
    a.jnz(row_loop)?;
    a.set_label(&mut done)?;
    crate::pointwise::epilogue(a)?;
    Ok(())
}

/// To `done` with no rows or no tokens; else r8 becomes the end of x and r9
/// out's row stride in bytes (both kernels' registers).
fn prologue(a: &mut CodeAssembler, s: &MatmatSpec, done: CodeLabel) -> Result<(), IcedError> {
    a.test(rcx, rcx)?;
    a.jz(done)?;
    a.test(r8, r8)?;
    a.jz(done)?;
    a.imul_3(r8, r8, (s.cols * 4) as i32)?;
    a.add(r8, rsi)?;
    a.shl(r9, 2)
}

/// Every token of the call, x from rsi and out from rdi on (r10 and r11
/// move): full tiles of `s.tile`, then one tile of the remainder's size, each
/// made by `body(a, n)`. Each size's test jumps to the next size's test, the
/// last one past the tiles, to a label on the next instruction the caller emits.
fn token_tiles(
    a: &mut CodeAssembler,
    s: &MatmatSpec,
    body: &mut dyn FnMut(&mut CodeAssembler, usize) -> Result<(), IcedError>,
) -> Result<(), IcedError> {
    let xb = (s.cols * 4) as i32;
    a.mov(r10, rsi)?;
    a.mov(r11, rdi)?;
    let mut full = a.create_label();
    let mut next = a.create_label();
    let mut test = a.create_label();
    a.set_label(&mut full)?;
    a.lea(rax, ptr(r10 + s.tile as i32 * xb))?;
    a.cmp(rax, r8)?;
    a.ja(if s.tile > 1 { test } else { next })?;
    body(a, s.tile)?;
    a.jmp(full)?;
    for size in (1..s.tile).rev() {
        a.set_label(&mut test)?;
        test = a.create_label();
        a.lea(rax, ptr(r10 + size as i32 * xb))?;
        a.cmp(rax, r8)?;
        a.ja(if size > 1 { test } else { next })?;
        body(a, size)?;
        if size > 1 {
            a.jmp(next)?;
        }
    }
    a.set_label(&mut next)
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
        // The next block of rows into L2, as the AVX-512 code does (see `tile512`).
        let ahead = (crate::exec::MATMAT_BLOCK_BYTES / xb).max(1) * xb;
        a.prefetcht1(byte_ptr(rdx + rax + ahead))?;
        a.prefetcht1(byte_ptr(rdx + rax + (ahead + 64)))?;
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

// ---------------------------------------------------------------- AVX-512 --
//
// Rows in pairs, tokens by tiles of up to 4. A zmm holds two of the AVX2
// order's 8-lane chains side by side: over a block of 32 columns, `A` takes
// columns 0-15 (chain 0 in lanes 0-7, chain 1 in lanes 8-15) and `B` columns
// 16-31 (chains 2 and 3), so each lane sums exactly the values, in exactly
// the order, of its AVX2 chain; `(a0 + a1) + (a2 + a3)` is then the low and
// high halves of `A`, of `B`, and their sum, and the rest is the AVX2 code's.
// Per block of 32 columns a pair of rows and a tile of `n` tokens take
// 4 weight loads and 2n x loads for 4n FMAs of 16 lanes (the AVX2 tile: 4
// weight and 4n x loads for 4n FMAs of 8 lanes).
//
// Registers: rdi out (row pair), rsi x, rdx w (row pair), rcx rows left, r8
// the end of x, r9 out's row stride in bytes; per pair r10 x of the tile and
// r11 out of the tile; rax the column offset in bytes (and a scratch between
// tiles). zmm4-7 weights, zmm8-9 x, zmm10-25 accumulators, ymm0-2 the
// combined sums (low registers, for the VEX horizontal sum).

const ZMM: [AsmRegisterZmm; 32] = [
    zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17,
    zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25, zmm26, zmm27, zmm28, zmm29, zmm30, zmm31,
];
const YMM_ALL: [AsmRegisterYmm; 32] = [
    ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13, ymm14, ymm15, ymm16, ymm17,
    ymm18, ymm19, ymm20, ymm21, ymm22, ymm23, ymm24, ymm25, ymm26, ymm27, ymm28, ymm29, ymm30, ymm31,
];

fn emit512(a: &mut CodeAssembler, s: &MatmatSpec) -> Result<(), IcedError> {
    let row_bytes = (s.cols * 4) as i32;
    let mut pair_loop = a.create_label();
    let mut single = a.create_label();
    let mut done = a.create_label();
    prologue(a, s, done)?;
    a.set_label(&mut pair_loop)?;
    a.cmp(rcx, 2)?;
    a.jb(single)?;
    token_tiles(a, s, &mut |a, n| tile512(a, s, 2, n))?;
    a.add(rdx, 2 * row_bytes)?;
    a.lea(rdi, ptr(rdi + r9 * 2))?;
    a.sub(rcx, 2)?;
    a.jmp(pair_loop)?;
    a.set_label(&mut single)?;
    a.test(rcx, rcx)?;
    a.jz(done)?;
    token_tiles(a, s, &mut |a, n| tile512(a, s, 1, n))?;
    // (The tiles' last label needs an instruction of its own.)
    a.jmp(done)?;
    a.set_label(&mut done)?;
    crate::pointwise::epilogue(a)?;
    Ok(())
}

/// One tile of `n` tokens (x at r10) for `rows` rows at rdx, results to
/// r11[0..n] (and r11 + r9 for the second row); then r10 and r11 move past the tile.
fn tile512(a: &mut CodeAssembler, s: &MatmatSpec, rows: usize, n: usize) -> Result<(), IcedError> {
    let cols = s.cols;
    let (n32, n8) = (cols & !31, cols & !7);
    let xb = cols * 4;
    let rb = cols * 4;
    let acc = |r: usize, t: usize, h: usize| 10 + 2 * (r * n + t) + h;
    let (wlo, whi) = (|r: usize| ZMM[4 + 2 * r], |r: usize| ZMM[5 + 2 * r]);
    if n32 > 0 {
        for r in 0..rows {
            for t in 0..n {
                for h in 0..2 {
                    let z = ZMM[acc(r, t, h)];
                    a.vpxord(z, z, z)?;
                }
            }
        }
        let mut cols_loop = a.create_label();
        a.xor(eax, eax)?;
        a.set_label(&mut cols_loop)?;
        for r in 0..rows {
            a.vmovups(wlo(r), zmmword_ptr(rdx + rax + r * rb))?;
            a.vmovups(whi(r), zmmword_ptr(rdx + rax + (r * rb + 64)))?;
        }
        // The next block of rows (`MatmatKernel::run` calls the code per block
        // of `MATMAT_BLOCK_BYTES` and tile of tokens) into L2, a hint that never
        // faults: the block's first token tile then finds its weights there
        // instead of waiting on memory, and the later tiles' hints hit L2.
        let ahead = (crate::exec::MATMAT_BLOCK_BYTES / rb).max(1);
        for r in 0..rows {
            a.prefetcht1(byte_ptr(rdx + rax + (r + ahead) * rb))?;
            a.prefetcht1(byte_ptr(rdx + rax + ((r + ahead) * rb + 64)))?;
        }
        for t in 0..n {
            a.vmovups(zmm8, zmmword_ptr(r10 + rax + t * xb))?;
            a.vmovups(zmm9, zmmword_ptr(r10 + rax + (t * xb + 64)))?;
            for r in 0..rows {
                a.vfmadd231ps(ZMM[acc(r, t, 0)], wlo(r), zmm8)?;
                a.vfmadd231ps(ZMM[acc(r, t, 1)], whi(r), zmm9)?;
            }
        }
        a.add(rax, 128)?;
        a.cmp(rax, (n32 * 4) as i32)?;
        a.jb(cols_loop)?;
    }
    for r in 0..rows {
        for t in 0..n {
            if n32 > 0 {
                let (za, zb) = (acc(r, t, 0), acc(r, t, 1));
                a.vextractf64x4(ymm1, ZMM[za], 1)?;
                a.vaddps(ymm0, YMM_ALL[za], ymm1)?;
                a.vextractf64x4(ymm2, ZMM[zb], 1)?;
                a.vaddps(ymm2, YMM_ALL[zb], ymm2)?;
                a.vaddps(ymm0, ymm0, ymm2)?;
            } else {
                a.vxorps(ymm0, ymm0, ymm0)?;
            }
            for j in (n32..n8).step_by(8) {
                a.vmovups(ymm1, ptr(rdx + (r * rb + j * 4)))?;
                a.vfmadd231ps(ymm0, ymm1, ptr(r10 + (t * xb + j * 4)))?;
            }
            hsum256(a, xmm0, ymm0, xmm1)?;
            for c in n8..cols {
                a.vmovss(xmm1, dword_ptr(rdx + (r * rb + c * 4)))?;
                a.vmulss(xmm1, xmm1, dword_ptr(r10 + (t * xb + c * 4)))?;
                a.vaddss(xmm0, xmm0, xmm1)?;
            }
            if r == 0 {
                a.vmovss(dword_ptr(r11 + t * 4), xmm0)?;
            } else {
                a.vmovss(dword_ptr(r11 + r9 + t * 4), xmm0)?;
            }
        }
    }
    a.add(r10, (n * xb) as i32)?;
    a.add(r11, (n * 4) as i32)?;
    Ok(())
}
