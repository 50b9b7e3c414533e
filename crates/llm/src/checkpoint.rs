//! The llama2.c legacy ("version 0") checkpoint: a 28-byte header of seven
//! little-endian i32 values, then f32 weights, borrowed in place.
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | dim |
//! | 4..8 | hidden_dim |
//! | 8..12 | n_layers |
//! | 12..16 | n_heads |
//! | 16..20 | n_kv_heads |
//! | 20..24 | vocab_size (negative: unshared classifier, vocab = \|vocab_size\|) |
//! | 24..28 | seq_len |
//! | 28.. | weights, in the order of [`Weights`] |
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Bytes in the header.
pub const HEADER_LEN: usize = 28;

/// Why a checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    /// Fewer than 28 bytes: not even a header.
    TooShortForHeader { len: usize },
    /// A header field that must be positive is zero or negative.
    NonPositive { field: &'static str, value: i32 },
    /// `dim` is not a multiple of `n_heads`.
    DimNotDivisibleByHeads { dim: usize, n_heads: usize },
    /// `n_heads` is not a multiple of `n_kv_heads`.
    HeadsNotDivisibleByKvHeads { n_heads: usize, n_kv_heads: usize },
    /// `dim / n_heads` is odd: RoPE rotates pairs inside a head.
    OddHeadSize { head_size: usize },
    /// A tensor size overflows `usize`: the header is corrupt.
    SizeOverflow,
    /// The file is shorter than the header says.
    Truncated { needed: usize, len: usize },
    /// The weights do not start at a 4-byte-aligned address.
    Misaligned,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShortForHeader { len } => write!(
                f,
                "checkpoint is {len} bytes, shorter than the {HEADER_LEN}-byte header: is this a llama2.c .bin file?"
            ),
            Self::NonPositive { field, value } => write!(
                f,
                "checkpoint header field {field} is {value}, must be positive: the file is corrupt or not a llama2.c version-0 checkpoint"
            ),
            Self::DimNotDivisibleByHeads { dim, n_heads } => write!(
                f,
                "checkpoint header: dim {dim} is not a multiple of n_heads {n_heads}; the header is corrupt"
            ),
            Self::HeadsNotDivisibleByKvHeads { n_heads, n_kv_heads } => write!(
                f,
                "checkpoint header: n_heads {n_heads} is not a multiple of n_kv_heads {n_kv_heads}; the header is corrupt"
            ),
            Self::OddHeadSize { head_size } => write!(
                f,
                "checkpoint header: head size {head_size} is odd, RoPE needs pairs; the header is corrupt"
            ),
            Self::SizeOverflow => f.write_str(
                "checkpoint header: tensor sizes overflow; the header is corrupt",
            ),
            Self::Truncated { needed, len } => write!(
                f,
                "checkpoint is truncated: the header needs {needed} bytes, the file has {len}; copy the file again"
            ),
            Self::Misaligned => f.write_str(
                "checkpoint bytes are not 4-byte aligned: load them with AlignedBytes",
            ),
        }
    }
}

/// The model's hyperparameters, checked: every value positive, the divisibility
/// rules hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub seq_len: usize,
    /// The classifier is the token embedding table (header vocab_size > 0).
    pub shared_classifier: bool,
}

impl Config {
    /// `dim / n_heads`.
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }
    /// `dim * n_kv_heads / n_heads`.
    pub fn kv_dim(&self) -> usize {
        self.head_size() * self.n_kv_heads
    }
    /// Query heads per key/value head.
    pub fn kv_mul(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// Reads and checks the 28-byte header.
    pub fn parse(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let Some(header) = bytes.get(..HEADER_LEN) else {
            return Err(CheckpointError::TooShortForHeader { len: bytes.len() });
        };
        let field = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&header[i * 4..i * 4 + 4]);
            i32::from_le_bytes(w)
        };
        let positive = |name: &'static str, v: i32| {
            if v > 0 {
                Ok(v as usize)
            } else {
                Err(CheckpointError::NonPositive { field: name, value: v })
            }
        };
        let raw_vocab = field(5);
        let c = Config {
            dim: positive("dim", field(0))?,
            hidden_dim: positive("hidden_dim", field(1))?,
            n_layers: positive("n_layers", field(2))?,
            n_heads: positive("n_heads", field(3))?,
            n_kv_heads: positive("n_kv_heads", field(4))?,
            vocab_size: if raw_vocab == 0 || raw_vocab == i32::MIN {
                return Err(CheckpointError::NonPositive { field: "vocab_size", value: raw_vocab });
            } else {
                raw_vocab.unsigned_abs() as usize
            },
            seq_len: positive("seq_len", field(6))?,
            shared_classifier: raw_vocab > 0,
        };
        if !c.dim.is_multiple_of(c.n_heads) {
            return Err(CheckpointError::DimNotDivisibleByHeads { dim: c.dim, n_heads: c.n_heads });
        }
        if !c.n_heads.is_multiple_of(c.n_kv_heads) {
            return Err(CheckpointError::HeadsNotDivisibleByKvHeads {
                n_heads: c.n_heads,
                n_kv_heads: c.n_kv_heads,
            });
        }
        if !c.head_size().is_multiple_of(2) {
            return Err(CheckpointError::OddHeadSize { head_size: c.head_size() });
        }
        Ok(c)
    }

    /// The header's 28 bytes for this configuration.
    pub fn to_header(&self) -> [u8; HEADER_LEN] {
        let vocab = if self.shared_classifier {
            self.vocab_size as i32
        } else {
            -(self.vocab_size as i32)
        };
        let vals = [
            self.dim as i32,
            self.hidden_dim as i32,
            self.n_layers as i32,
            self.n_heads as i32,
            self.n_kv_heads as i32,
            vocab,
            self.seq_len as i32,
        ];
        let mut out = [0u8; HEADER_LEN];
        for (i, v) in vals.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Tensor sizes (in f32 values) in file order, with their names; checked.
    pub fn tensor_sizes(&self) -> Result<[(&'static str, usize); 13], CheckpointError> {
        let m = |a: usize, b: usize| a.checked_mul(b).ok_or(CheckpointError::SizeOverflow);
        let (l, d, h, kv) = (self.n_layers, self.dim, self.hidden_dim, self.kv_dim());
        let half_head = self.head_size() / 2;
        Ok([
            ("token_embedding_table", m(self.vocab_size, d)?),
            ("rms_att_weight", m(l, d)?),
            ("wq", m(l, m(d, d)?)?),
            ("wk", m(l, m(kv, d)?)?),
            ("wv", m(l, m(kv, d)?)?),
            ("wo", m(l, m(d, d)?)?),
            ("rms_ffn_weight", m(l, d)?),
            ("w1", m(l, m(h, d)?)?),
            ("w2", m(l, m(d, h)?)?),
            ("w3", m(l, m(h, d)?)?),
            ("rms_final_weight", d),
            ("freq_cis", m(2, m(self.seq_len, half_head)?)?),
            ("wcls", if self.shared_classifier { 0 } else { m(self.vocab_size, d)? }),
        ])
    }

    /// Bytes a checkpoint with this header needs.
    pub fn file_len(&self) -> Result<usize, CheckpointError> {
        let mut floats = 0usize;
        for (_, n) in self.tensor_sizes()? {
            floats = floats.checked_add(n).ok_or(CheckpointError::SizeOverflow)?;
        }
        floats
            .checked_mul(4)
            .and_then(|b| b.checked_add(HEADER_LEN))
            .ok_or(CheckpointError::SizeOverflow)
    }

    /// Bytes of weights read per generated token in fp32 (every matrix once,
    /// plus the classifier); the memory-bandwidth bound's numerator.
    pub fn weight_bytes_per_token(&self) -> usize {
        let (l, d, h, kv, v) = (self.n_layers, self.dim, self.hidden_dim, self.kv_dim(), self.vocab_size);
        4 * (l * (2 * d * d + 2 * kv * d + 3 * h * d + 2 * d) + v * d + d)
    }
}

/// One layer's weights, borrowed from the checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct LayerWeights<'a> {
    pub rms_att: &'a [f32],
    pub wq: &'a [f32],
    pub wk: &'a [f32],
    pub wv: &'a [f32],
    pub wo: &'a [f32],
    pub rms_ffn: &'a [f32],
    pub w1: &'a [f32],
    pub w2: &'a [f32],
    pub w3: &'a [f32],
}

/// A parsed checkpoint: the config and the weights, borrowed in place.
#[derive(Debug, Clone)]
pub struct Checkpoint<'a> {
    pub config: Config,
    pub token_embedding: &'a [f32],
    pub layers: Vec<LayerWeights<'a>>,
    pub rms_final: &'a [f32],
    /// The classifier, `[vocab][dim]` (the embedding table when shared).
    pub wcls: &'a [f32],
}

impl<'a> Checkpoint<'a> {
    /// Parses a checkpoint. `bytes` must start at a 4-byte-aligned address
    /// (see [`AlignedBytes`]); trailing bytes after the last tensor are ignored,
    /// as run.c does.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CheckpointError> {
        let config = Config::parse(bytes)?;
        let needed = config.file_len()?;
        if bytes.len() < needed {
            return Err(CheckpointError::Truncated { needed, len: bytes.len() });
        }
        let floats: &'a [f32] = bytemuck::try_cast_slice(&bytes[HEADER_LEN..needed])
            .map_err(|_| CheckpointError::Misaligned)?;
        let sizes = config.tensor_sizes()?;
        // Every size was checked above: the splits below stay in bounds.
        let mut rest = floats;
        let mut take = |n: usize| {
            let (a, b) = rest.split_at(n);
            rest = b;
            a
        };
        let t: Vec<&'a [f32]> = sizes.iter().map(|&(_, n)| take(n)).collect();
        let (l, d, h, kv) = (config.n_layers, config.dim, config.hidden_dim, config.kv_dim());
        let layers = (0..l)
            .map(|i| LayerWeights {
                rms_att: &t[1][i * d..(i + 1) * d],
                wq: &t[2][i * d * d..(i + 1) * d * d],
                wk: &t[3][i * kv * d..(i + 1) * kv * d],
                wv: &t[4][i * kv * d..(i + 1) * kv * d],
                wo: &t[5][i * d * d..(i + 1) * d * d],
                rms_ffn: &t[6][i * d..(i + 1) * d],
                w1: &t[7][i * h * d..(i + 1) * h * d],
                w2: &t[8][i * d * h..(i + 1) * d * h],
                w3: &t[9][i * h * d..(i + 1) * h * d],
            })
            .collect();
        Ok(Checkpoint {
            config,
            token_embedding: t[0],
            layers,
            rms_final: t[10],
            wcls: if config.shared_classifier { t[0] } else { t[12] },
        })
    }
}

/// Bytes held in f32-aligned storage, placed so that the weights (which start
/// at byte 28) begin on a 64-byte cache line: [`Checkpoint::parse`] borrows
/// them in place and SIMD loads never straddle two lines.
#[derive(Debug, Clone)]
pub struct AlignedBytes {
    words: Vec<f32>,
    start: usize,
    len: usize,
}

/// Where the weights should start, modulo this, for full-speed SIMD loads.
pub const WEIGHT_ALIGN: usize = 64;

impl AlignedBytes {
    /// Copies `bytes` into aligned storage.
    pub fn copy_from(bytes: &[u8]) -> Self {
        let mut words = vec![0f32; bytes.len().div_ceil(4) + WEIGHT_ALIGN / 4];
        let addr = words.as_ptr() as usize;
        // Bytes to skip so that byte HEADER_LEN lands on a WEIGHT_ALIGN boundary;
        // a multiple of 4 because addr and HEADER_LEN are.
        let skip = (WEIGHT_ALIGN - (addr + HEADER_LEN) % WEIGHT_ALIGN) % WEIGHT_ALIGN;
        let start = skip / 4;
        bytemuck::cast_slice_mut::<f32, u8>(&mut words[start..])[..bytes.len()].copy_from_slice(bytes);
        AlignedBytes { words, start, len: bytes.len() }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<f32, u8>(&self.words[self.start..])[..self.len]
    }
}

/// Borrows `bytes` if their weights already start on a cache line, else copies
/// them into `store` (see [`AlignedBytes`]) and borrows that: the one copy
/// happens only when it must.
pub fn aligned<'a>(bytes: &'a [u8], store: &'a mut Option<AlignedBytes>) -> &'a [u8] {
    if (bytes.as_ptr() as usize + HEADER_LEN).is_multiple_of(WEIGHT_ALIGN) {
        bytes
    } else {
        store.insert(AlignedBytes::copy_from(bytes)).as_bytes()
    }
}
