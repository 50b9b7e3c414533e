//! `bareflow-llm`: a llama2-family inference engine that reproduces Karpathy's
//! llama2.c `run.c` token for token, for the host and for the BareFlow image.
//!
//! Principles it keeps:
//! - `no_std` + `alloc`; the caller hands in the bytes of a checkpoint and a
//!   tokenizer (no file system, no clock, no threads are assumed).
//! - Untrusted bytes are parsed once, with every size checked against the file
//!   length in checked arithmetic ([`Checkpoint::parse`], [`Tokenizer::parse`]);
//!   after that no accessor can panic on the file's contents.
//! - The weights are borrowed in place as `&[f32]` (no copy of the file);
//!   [`AlignedBytes`] loads a file into f32-aligned storage.
//! - `unsafe` lives only in [`kernels`] (SIMD and the worker pool), each block
//!   justified; everything else is safe code.
//! - The math is run.c's; the scalar kernel set sums in run.c's order.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod checkpoint;
pub mod r#gen; // `gen` is a reserved word in edition 2024
pub mod generate;
#[allow(unsafe_code)] // the one module with unsafe: SIMD intrinsics and the worker pool
pub mod kernels;
pub mod model;
pub mod parallel;
pub mod profile;
pub mod quant;
pub mod sampler;
pub mod tokenizer;

pub use checkpoint::{AlignedBytes, Checkpoint, CheckpointError, Config};
pub use generate::{GenerateError, Generation, generate};
pub use kernels::{KernelKind, KernelSet};
pub use model::{StateError, Transformer, WeightMode};
pub use parallel::{Parallel, Sequential};
pub use sampler::Sampler;
pub use tokenizer::{Tokenizer, TokenizerError};
