//! `bareflow-jit`: run-time machine code for the inference engine's hot loops,
//! specialised to the model's exact shapes and to the CPU it finds.
//!
//! Principles it keeps:
//! - Kernels: f32 matrix-vector products ([`matvec`], AVX2 or SSE2), int8
//!   ones ([`q8`], AVX2, or AVX-512 VNNI where CPUID has it: the ahead-of-time
//!   int8 kernel is AVX2 only, and VNNI gives the same i32 lanes, so the same
//!   bits), and RMSNorm, SwiGLU, RoPE and softmax ([`pointwise`], AVX2
//!   or AVX-512), each made for the model's exact dims. The products stay
//!   8-lane under the AVX-512 set: its own products are the AVX2 ones
//!   (16-lane measured slower on this memory-bound work), and the generated
//!   code must give the set's bits. Attention's softmax is generated for the
//!   AVX-512 set (its length grows with the position, so it is made for any
//!   length up to the context, asserted at the call). f32 matrix-matrix
//!   products ([`matmat`], AVX2, or AVX-512 with rows in pairs) for the
//!   prompt's batched prefill: tiles of tokens per weight load, rows in
//!   blocks that stay in L2, the next block prefetched into L2 (the batched
//!   int8 products run on the int8 kernels, a call per token over chunks of
//!   rows that stay in L1).
//! - It only makes bytes. Generation ([`matvec::generate`], [`Program`]) turns
//!   a small kernel description into x86-64 code and entry offsets;
//!   [`Program::place`] puts the code in W^X pages from `bareflow-hal` (the
//!   kernel's page tables in the image, `mmap`/`mprotect` hosted), through
//!   [`platform::Code`]. Entering generated code is the one `unsafe`
//!   operation: `Code::call` is a crate-private `unsafe fn`, and only the
//!   kernels' `run` methods call it, for code this crate generated for the
//!   dims they assert. `unsafe` is denied everywhere else in the crate.
//! - Generated code is simple by construction: no calls out, no stack, only
//!   caller-saved registers, memory reached only through the argument
//!   pointers at displacements bounded by the shape it was made for. The safe
//!   wrapper ([`MatvecKernel::run`]) asserts the slice lengths before the call.
//! - Nothing generated is used before it is checked: [`engine::LlmJit`] runs
//!   each kernel against the engine's own kernels on random inputs and keeps
//!   the ahead-of-time kernel, with a logged reason, on any mismatch.
//! - Encoder: `iced-x86` (VEX and EVEX encodings), chosen by measurement:
//!   `cargo bareflow bench jit-backends` compiles the same fixed-column f32
//!   matrix-vector kernel with Cranelift 0.135 ([`cranelift`], feature
//!   `cranelift`, whose vectors are 128-bit): on 2026-12-03 its code took
//!   3.1-5.1x the time per call of iced's AVX2 kernels (and 2.5-3.4x that of
//!   iced's SSE2 ones, same order of operations and bits), and compiling it
//!   took 400-2,600x as long (5.6 ms for 288 columns, 138 ms for 2048,
//!   against 0.01-0.06 ms).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

#[cfg(feature = "cranelift")]
pub mod cranelift;
pub mod engine;
pub mod exec;
pub mod matmat;
pub mod matvec;
pub mod platform;
pub mod pointwise;
pub mod q8;

use alloc::string::String;
use core::fmt;

pub use exec::{
    ExecError, KernelSpec, MatmatKernel, MatvecKernel, Placed, PointwiseKernel, Program, Q8BatchKernel, Q8Kernel,
};
pub use matmat::MatmatSpec;
pub use matvec::MatvecSpec;
pub use pointwise::PointwiseSpec;
pub use q8::{Q8BatchSpec, Q8Spec};

/// The instruction set a kernel is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// 8-lane AVX2 with FMA (VEX encoded).
    Avx2Fma,
    /// 4-lane SSE2 (every x86-64 CPU).
    Sse2,
    /// 16-lane AVX-512F (EVEX encoded, opmasks for partial vectors).
    Avx512,
}

impl Isa {
    /// A short name for logs and tables.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx2Fma => "avx2+fma",
            Isa::Sse2 => "sse2",
            Isa::Avx512 => "avx512",
        }
    }
}

/// Why a kernel could not be generated or placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JitError {
    /// A product over zero columns has nothing to generate.
    ZeroColumns,
    /// The row is longer than the generator unrolls.
    TooManyColumns { cols: usize, max: usize },
    /// The register block does not fit the ISA's registers.
    BadBlockRows { rows: usize, max: usize, isa: Isa },
    /// Int8 rows must be whole groups of 32 values.
    NotWholeGroups(usize),
    /// Vector kernels work on whole 8-lane vectors.
    NotWholeVectors(usize),
    /// The generator has no code of this kind for this instruction set.
    UnsupportedIsa { kernel: &'static str, isa: Isa },
    /// The prefetch distance is not a multiple of 64 bytes up to 65536.
    BadPrefetch(u32),
    /// The encoder refused an instruction (a bug in the generator).
    Encoder(String),
    /// The executable memory could not be set up.
    Exec(ExecError),
}

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroColumns => write!(f, "a matrix-vector product needs at least one column"),
            Self::TooManyColumns { cols, max } => {
                write!(f, "{cols} columns is more than the {max} the generator unrolls: use the ahead-of-time kernel")
            }
            Self::BadBlockRows { rows, max, isa } => {
                write!(f, "a block of {rows} rows does not fit the {} registers: use 1 to {max}", isa.name())
            }
            Self::NotWholeGroups(c) => write!(f, "{c} columns is not a whole number of int8 groups of 32: pad the rows"),
            Self::NotWholeVectors(n) => {
                write!(f, "{n} values is not a whole number of 8-lane vectors: use the ahead-of-time kernel")
            }
            Self::UnsupportedIsa { kernel, isa } => {
                write!(f, "no {kernel} kernel is generated for {}: use the ahead-of-time kernel", isa.name())
            }
            Self::BadPrefetch(d) => write!(f, "prefetch distance {d} must be a multiple of 64 bytes, at most 65536"),
            Self::Encoder(e) => write!(f, "the x86 encoder refused the generated code ({e}): this is a generator bug"),
            Self::Exec(e) => write!(f, "{e}"),
        }
    }
}

impl From<ExecError> for JitError {
    fn from(e: ExecError) -> Self {
        JitError::Exec(e)
    }
}

impl core::error::Error for JitError {}
