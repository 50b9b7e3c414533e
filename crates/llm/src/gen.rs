//! Random checkpoints and tokenizers of the llama2.c model shapes, for
//! benchmarks and tests. Deterministic for a seed. The weights are random, so
//! the text is nonsense, but the shapes and memory traffic are the real ones.
//!
//! The BOS row of the (shared) embedding table is zero, so BOS's logit is
//! exactly 0 while the largest of the others is positive: greedy generation
//! runs the full number of steps instead of stopping at a sampled BOS.
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::vec::Vec;

use crate::checkpoint::{Config, HEADER_LEN};

/// The llama2.c tinystories model shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// dim 288, hidden 768, 6 layers, 6 heads, vocab 32000, seq 256.
    S15M,
    /// dim 512, hidden 1376, 8 layers, 8 heads, vocab 32000, seq 1024.
    S42M,
    /// dim 768, hidden 2048, 12 layers, 12 heads, vocab 32000, seq 1024.
    S110M,
}

impl Shape {
    /// Parses `15M`, `42M` or `110M`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "15M" | "15m" => Some(Shape::S15M),
            "42M" | "42m" => Some(Shape::S42M),
            "110M" | "110m" => Some(Shape::S110M),
            _ => None,
        }
    }

    /// The shape's configuration (shared classifier).
    pub fn config(self) -> Config {
        let (dim, hidden_dim, n_layers, n_heads, seq_len) = match self {
            Shape::S15M => (288, 768, 6, 6, 256),
            Shape::S42M => (512, 1376, 8, 8, 1024),
            Shape::S110M => (768, 2048, 12, 12, 1024),
        };
        Config { dim, hidden_dim, n_layers, n_heads, n_kv_heads: n_heads, vocab_size: 32000, seq_len, shared_classifier: true }
    }
}

/// xorshift64* as a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
    /// Uniform in [-a, a).
    fn uniform(&mut self, a: f32) -> f32 {
        ((self.next_u32() >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0) * a
    }
}

/// A random checkpoint of `shape`.
pub fn random_checkpoint(shape: Shape, seed: u64) -> Vec<u8> {
    random_checkpoint_for(&shape.config(), seed)
}

/// A random checkpoint for any valid configuration.
///
/// # Panics
/// If the configuration's file size overflows `usize`.
pub fn random_checkpoint_for(c: &Config, seed: u64) -> Vec<u8> {
    let len = c.file_len().expect("config too large");
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&c.to_header());
    let mut rng = Rng::new(seed);
    let sizes = c.tensor_sizes().expect("config too large");
    let put = |out: &mut Vec<u8>, v: f32| out.extend_from_slice(&v.to_le_bytes());
    for (name, n) in sizes {
        // Scale ~ 1/sqrt(fan-in) keeps activations in a sane range.
        let fan_in = match name {
            "w2" => c.hidden_dim,
            _ => c.dim,
        };
        let a = 1.7 / libm::sqrtf(fan_in as f32);
        for i in 0..n {
            let v = match name {
                "rms_att_weight" | "rms_ffn_weight" | "rms_final_weight" => 1.0,
                "freq_cis" => 0.0,
                "token_embedding_table" if i / c.dim == 1 => 0.0,
                "token_embedding_table" | "wcls" => rng.uniform(1.0),
                _ => rng.uniform(a),
            };
            put(&mut out, v);
        }
    }
    debug_assert_eq!(out.len(), len);
    debug_assert!(out.len() >= HEADER_LEN);
    out
}

/// A random tokenizer with `vocab_size` tokens (at least 354): `<unk>`, BOS,
/// EOS, the 256 byte pieces, `" "`, the printable ASCII characters, then
/// distinct random lowercase pieces (half with a leading space), scores
/// descending.
pub fn random_tokenizer(vocab_size: usize, seed: u64) -> Vec<u8> {
    let mut pieces: Vec<Vec<u8>> = Vec::with_capacity(vocab_size);
    pieces.push(b"<unk>".to_vec());
    pieces.push(b"\n<s>\n".to_vec());
    pieces.push(b"\n</s>\n".to_vec());
    for b in 0..=255u8 {
        pieces.push(format!("<0x{b:02X}>").into_bytes());
    }
    pieces.push(b" ".to_vec());
    for ch in 0x21u8..0x7f {
        pieces.push(alloc::vec![ch]);
    }
    let mut seen: BTreeSet<Vec<u8>> = pieces.iter().cloned().collect();
    let mut rng = Rng::new(seed);
    while pieces.len() < vocab_size {
        let len = 2 + (rng.next_u32() % 7) as usize;
        let mut p = Vec::with_capacity(len + 1);
        if rng.next_u32().is_multiple_of(2) {
            p.push(b' ');
        }
        for _ in 0..len {
            p.push(b'a' + (rng.next_u32() % 26) as u8);
        }
        if seen.insert(p.clone()) {
            pieces.push(p);
        }
    }
    pieces.truncate(vocab_size);
    let max_len = pieces.iter().map(|p| p.len()).max().unwrap_or(1);
    let mut out = Vec::new();
    out.extend_from_slice(&(max_len as i32).to_le_bytes());
    for (i, p) in pieces.iter().enumerate() {
        let score = if i < 260 { 0.0 } else { -((i - 260) as f32) };
        out.extend_from_slice(&score.to_le_bytes());
        out.extend_from_slice(&(p.len() as i32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}
