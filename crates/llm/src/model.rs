//! The forward pass (run.c's `forward`) with a KV cache.
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::checkpoint::{Checkpoint, Config};
use crate::kernels::{self, KernelSet};
use crate::parallel::Parallel;
use crate::profile::{Hooks, Op, Specialiser};
use crate::quant::{QBatch, QMatrix};

/// How the matrices are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightMode {
    /// The checkpoint's f32 values, borrowed in place.
    F32,
    /// Int8 groups of 32 with an f32 scale, converted at load time.
    Q8,
}

/// A weight matrix `[rows][cols]`.
#[derive(Debug, Clone)]
enum Mat<'a> {
    F32(&'a [f32]),
    Q8(QMatrix),
}

impl<'a> Mat<'a> {
    fn new(w: &'a [f32], rows: usize, cols: usize, mode: WeightMode) -> Self {
        match mode {
            WeightMode::F32 => Mat::F32(w),
            WeightMode::Q8 => Mat::Q8(QMatrix::quantize(w, rows, cols)),
        }
    }
}

#[derive(Debug, Clone)]
struct Layer<'a> {
    rms_att: &'a [f32],
    wq: Mat<'a>,
    wk: Mat<'a>,
    wv: Mat<'a>,
    wo: Mat<'a>,
    rms_ffn: &'a [f32],
    w1: Mat<'a>,
    w2: Mat<'a>,
    w3: Mat<'a>,
}

/// A forward call outside the model's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardError {
    /// The token id is not below the vocabulary size.
    TokenOutOfRange { token: u32, vocab_size: usize },
    /// The position is not below `seq_len`.
    PositionOutOfRange { pos: usize, seq_len: usize },
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TokenOutOfRange { token, vocab_size } => {
                write!(f, "token {token} is outside the vocabulary of {vocab_size}")
            }
            Self::PositionOutOfRange { pos, seq_len } => {
                write!(f, "position {pos} is beyond the context of {seq_len} tokens")
            }
        }
    }
}

/// Matrices smaller than this many weights run on one thread.
const PAR_MIN_WEIGHTS: usize = 1 << 15;
/// Attention runs its heads in parallel from this many cached key values
/// (`(pos + 1) * dim`) on.
const PAR_MIN_ATTENTION: usize = 1 << 13;

/// A model ready to run: weights, kernels, activations and KV cache.
#[derive(Debug)]
pub struct Transformer<'a> {
    config: Config,
    kernels: KernelSet,
    mode: WeightMode,
    token_embedding: &'a [f32],
    layers: Vec<Layer<'a>>,
    rms_final: &'a [f32],
    wcls: Mat<'a>,
    /// The activations of one token ([`Transformer::forward`]).
    one: Activations,
    att: Vec<f32>,
    logits: Vec<f32>,
    key_cache: Vec<f32>,
    value_cache: Vec<f32>,
    hooks: Hooks,
    /// Tokens per batch of [`Transformer::prefill`].
    prefill_batch: usize,
    /// The activations of a prefill batch, made by the first prefill.
    batch: Option<Activations>,
}

/// Tokens per batch of [`Transformer::prefill`] unless set otherwise.
pub const PREFILL_BATCH: usize = 16;

/// Activations of `t` tokens (`t` rows of each vector, one per token): one
/// for a forward call, a batch for the prefill.
#[derive(Debug)]
struct Activations {
    x: Vec<f32>,
    xb: Vec<f32>,
    xb2: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// A product's output as [`KernelSet::matmat`] writes it (rows of `t`).
    tmp: Vec<f32>,
    /// RoPE angles, `head_size / 2` pairs per token.
    rope: Vec<[f32; 2]>,
    qdim: QBatch,
    qhidden: QBatch,
}

impl Activations {
    fn new(c: &Config, t: usize) -> Self {
        let (d, h, kv) = (c.dim, c.hidden_dim, c.kv_dim());
        Activations {
            x: vec![0.0; t * d],
            xb: vec![0.0; t * d],
            xb2: vec![0.0; t * d],
            hb: vec![0.0; t * h],
            hb2: vec![0.0; t * h],
            q: vec![0.0; t * d],
            k: vec![0.0; t * kv],
            v: vec![0.0; t * kv],
            tmp: vec![0.0; t * d.max(h)],
            rope: vec![[0.0, 0.0]; t * (c.head_size() / 2)],
            qdim: QBatch::new(t, d),
            qhidden: QBatch::new(t, h),
        }
    }
}

/// The run state a checkpoint asks for does not fit in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateError {
    /// Layers.
    pub n_layers: usize,
    /// Context length the checkpoint declares.
    pub seq_len: usize,
    /// Key/value width.
    pub kv_dim: usize,
    /// Attention heads.
    pub n_heads: usize,
}

impl core::fmt::Display for StateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let bytes = (self.n_layers as u128) * (self.seq_len as u128) * (self.kv_dim as u128) * 8;
        write!(
            f,
            "the checkpoint's KV cache ({} layers x seq_len {} x kv_dim {} x 2 x 4 bytes = {} MiB) does not fit in memory; \
             the header's seq_len may be corrupt, or give the guest more memory",
            self.n_layers,
            self.seq_len,
            self.kv_dim,
            bytes >> 20
        )
    }
}

impl core::error::Error for StateError {}

impl<'a> Transformer<'a> {
    /// Builds the model from a parsed checkpoint (converting to int8 in `Q8` mode).
    ///
    /// # Panics
    /// If the run state (KV cache and attention scores, sized by the
    /// checkpoint's `seq_len`) cannot be allocated; [`Transformer::try_new`]
    /// says so as an error instead, for checkpoints from outside.
    pub fn new(ckpt: &Checkpoint<'a>, kernels: KernelSet, mode: WeightMode) -> Self {
        match Self::try_new(ckpt, kernels, mode) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`Transformer::new`], with an error when the run state does not fit
    /// in memory (its size overflows, or the allocator refuses it).
    pub fn try_new(ckpt: &Checkpoint<'a>, kernels: KernelSet, mode: WeightMode) -> Result<Self, StateError> {
        let c = ckpt.config;
        let too_big = || StateError { n_layers: c.n_layers, seq_len: c.seq_len, kv_dim: c.kv_dim(), n_heads: c.n_heads };
        let cache = c.n_layers.checked_mul(c.seq_len).and_then(|n| n.checked_mul(c.kv_dim())).ok_or_else(too_big)?;
        let att = c.n_heads.checked_mul(c.seq_len).ok_or_else(too_big)?;
        let zeros = |n: usize| -> Result<Vec<f32>, StateError> {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| too_big())?;
            v.resize(n, 0.0);
            Ok(v)
        };
        let (key_cache, value_cache, att) = (zeros(cache)?, zeros(cache)?, zeros(att)?);
        Ok(Self::with_state(ckpt, kernels, mode, key_cache, value_cache, att))
    }

    fn with_state(
        ckpt: &Checkpoint<'a>,
        kernels: KernelSet,
        mode: WeightMode,
        key_cache: Vec<f32>,
        value_cache: Vec<f32>,
        att: Vec<f32>,
    ) -> Self {
        let c = ckpt.config;
        let (d, h, kv) = (c.dim, c.hidden_dim, c.kv_dim());
        let layers = ckpt
            .layers
            .iter()
            .map(|l| Layer {
                rms_att: l.rms_att,
                wq: Mat::new(l.wq, d, d, mode),
                wk: Mat::new(l.wk, kv, d, mode),
                wv: Mat::new(l.wv, kv, d, mode),
                wo: Mat::new(l.wo, d, d, mode),
                rms_ffn: l.rms_ffn,
                w1: Mat::new(l.w1, h, d, mode),
                w2: Mat::new(l.w2, d, h, mode),
                w3: Mat::new(l.w3, h, d, mode),
            })
            .collect();
        Transformer {
            config: c,
            kernels,
            mode,
            token_embedding: ckpt.token_embedding,
            layers,
            rms_final: ckpt.rms_final,
            wcls: Mat::new(ckpt.wcls, c.vocab_size, d, mode),
            one: Activations::new(&c, 1),
            att,
            logits: vec![0.0; c.vocab_size],
            key_cache,
            value_cache,
            hooks: Hooks::off(),
            prefill_batch: PREFILL_BATCH,
            batch: None,
        }
    }

    /// Sets how many prompt tokens [`Transformer::prefill`] runs at once
    /// (at least 1; 1 runs them one by one, as [`Transformer::forward`]).
    pub fn set_prefill_batch(&mut self, tokens: usize) {
        self.prefill_batch = tokens.max(1);
        self.batch = None;
    }

    /// Tokens per batch of [`Transformer::prefill`].
    pub fn prefill_batch(&self) -> usize {
        self.prefill_batch
    }

    /// The model's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The kernel set in use.
    pub fn kernels(&self) -> KernelSet {
        self.kernels
    }

    /// The weight storage mode.
    pub fn mode(&self) -> WeightMode {
        self.mode
    }

    /// Attaches profiling and JIT hooks (see [`crate::profile`]).
    pub fn set_hooks(&mut self, hooks: Hooks) {
        self.hooks = hooks;
    }

    /// The profiling counters and the JIT.
    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// The matrix-vector products, the vector operations and the attention
    /// of a forward call, and the matrix-matrix products of a prefill, as the
    /// profiler names them.
    fn shapes(&self) -> [Op; 13] {
        let (c, q) = (self.config, self.mode == WeightMode::Q8);
        let op = |rows, cols| if q { Op::Q8Matmul { rows, cols } } else { Op::Matmul { rows, cols } };
        let mm = |rows, cols| if q { Op::Q8Matmat { rows, cols } } else { Op::Matmat { rows, cols } };
        [
            mm(c.dim, c.dim),
            mm(c.kv_dim(), c.dim),
            mm(c.hidden_dim, c.dim),
            mm(c.dim, c.hidden_dim),
            op(c.dim, c.dim),
            op(c.kv_dim(), c.dim),
            op(c.hidden_dim, c.dim),
            op(c.dim, c.hidden_dim),
            op(c.vocab_size, c.dim),
            Op::RmsNorm { dim: c.dim },
            Op::Rope { head: c.head_size() },
            Op::SwiGlu { n: c.hidden_dim },
            Op::Attention { seq_len: c.seq_len },
        ]
    }

    /// Runs the model on the prompt `tokens` at positions `pos..pos + tokens.len()`,
    /// filling the KV cache exactly as that many [`Transformer::forward`] calls
    /// would (same bits), but without the logits, which a prompt does not need.
    /// The tokens go in batches of [`Transformer::prefill_batch`]: each weight
    /// matrix is read once per batch (see [`KernelSet::matmat`]) instead of
    /// once per token. For the hooks each batch is one call of its tokens.
    pub fn prefill(&mut self, tokens: &[u32], pos: usize, par: &dyn Parallel) -> Result<(), ForwardError> {
        let c = self.config;
        if let Some(&token) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(ForwardError::TokenOutOfRange { token, vocab_size: c.vocab_size });
        }
        // The last position (saturated: a position past usize is past the context too).
        if let Some(last) = tokens.len().checked_sub(1).map(|n| pos.saturating_add(n)).filter(|&l| l >= c.seq_len) {
            return Err(ForwardError::PositionOutOfRange { pos: last, seq_len: c.seq_len });
        }
        if self.prefill_batch == 1 {
            for (i, &t) in tokens.iter().enumerate() {
                self.forward(t, pos + i, par)?;
            }
            return Ok(());
        }
        let mut b = self.batch.take().unwrap_or_else(|| Activations::new(&c, self.prefill_batch));
        for (i, chunk) in tokens.chunks(self.prefill_batch).enumerate() {
            self.prefill_batch_at(&mut b, chunk, pos + i * self.prefill_batch, par);
        }
        self.batch = Some(b);
        Ok(())
    }

    /// One batch of [`Transformer::prefill`] (tokens and positions checked).
    fn prefill_batch_at(&mut self, b: &mut Activations, tokens: &[u32], pos0: usize, par: &dyn Parallel) {
        let c = self.config;
        let ks = self.kernels;
        let ops = self.shapes();
        let t = tokens.len();
        self.hooks.token(ks, &ops, t);
        let (d, h, kv_dim, hs) = (c.dim, c.hidden_dim, c.kv_dim(), c.head_size());
        for (x, &tok) in b.x.chunks_exact_mut(d).zip(tokens) {
            let tok = tok as usize;
            x.copy_from_slice(&self.token_embedding[tok * d..(tok + 1) * d]);
        }
        let half = hs / 2;
        for (k, r) in b.rope.chunks_exact_mut(half.max(1)).take(t).enumerate() {
            rope_angles(r, pos0 + k, hs);
        }
        let sqrt_hs = libm::sqrtf(hs as f32);
        let (x, xb, xb2) = (&mut b.x[..t * d], &mut b.xb[..t * d], &mut b.xb2[..t * d]);
        let (hb, hb2) = (&mut b.hb[..t * h], &mut b.hb2[..t * h]);
        let (q, kk, vv) = (&mut b.q[..t * d], &mut b.k[..t * kv_dim], &mut b.v[..t * kv_dim]);
        let tmp = &mut b.tmp;
        for (l, layer) in self.layers.iter().enumerate() {
            let hk = &mut self.hooks;
            rmsnorm_rows(hk, ks, xb, x, layer.rms_att, d);
            matmat(hk, ks, par, q, xb, &layer.wq, tmp, &mut b.qdim, true, t);
            matmat(hk, ks, par, kk, xb, &layer.wk, tmp, &mut b.qdim, false, t);
            matmat(hk, ks, par, vv, xb, &layer.wv, tmp, &mut b.qdim, false, t);
            let loff = l * c.seq_len * kv_dim;
            for k in 0..t {
                let (qt, kt) = (&mut q[k * d..(k + 1) * d], &mut kk[k * kv_dim..(k + 1) * kv_dim]);
                rope_token(hk, ks, qt, kt, &b.rope[k * half..(k + 1) * half], hs);
                let at = loff + (pos0 + k) * kv_dim;
                self.key_cache[at..at + kv_dim].copy_from_slice(kt);
                self.value_cache[at..at + kv_dim].copy_from_slice(&vv[k * kv_dim..(k + 1) * kv_dim]);
            }
            // Token k attends to positions 0..=pos0+k: the rows the batch wrote
            // past it are not read.
            for k in 0..t {
                let t0 = hk.start(Op::Attention { seq_len: c.seq_len });
                let qk = &q[k * d..(k + 1) * d];
                let xk = &mut xb[k * d..(k + 1) * d];
                attend(ks, par, hk.specialiser(), &c, qk, &self.key_cache, &self.value_cache, loff, pos0 + k, sqrt_hs, &mut self.att, xk);
                hk.record(Op::Attention { seq_len: c.seq_len }, t0);
            }
            matmat(hk, ks, par, xb2, xb, &layer.wo, tmp, &mut b.qdim, true, t);
            for (x, y) in x.iter_mut().zip(xb2.iter()) {
                *x += y;
            }
            rmsnorm_rows(hk, ks, xb, x, layer.rms_ffn, d);
            matmat(hk, ks, par, hb, xb, &layer.w1, tmp, &mut b.qdim, true, t);
            matmat(hk, ks, par, hb2, xb, &layer.w3, tmp, &mut b.qdim, false, t);
            swiglu_rows(hk, ks, hb, hb2, h);
            matmat(hk, ks, par, xb, hb, &layer.w2, tmp, &mut b.qhidden, true, t);
            for (x, y) in x.iter_mut().zip(xb.iter()) {
                *x += y;
            }
        }
    }

    /// Runs the model on `token` at position `pos` and returns the logits.
    /// Positions must be fed in order from 0 (the KV cache holds 0..pos).
    pub fn forward(&mut self, token: u32, pos: usize, par: &dyn Parallel) -> Result<&mut [f32], ForwardError> {
        let c = self.config;
        if token as usize >= c.vocab_size {
            return Err(ForwardError::TokenOutOfRange { token, vocab_size: c.vocab_size });
        }
        if pos >= c.seq_len {
            return Err(ForwardError::PositionOutOfRange { pos, seq_len: c.seq_len });
        }
        let ks = self.kernels;
        let ops = self.shapes();
        self.hooks.token(ks, &ops, 1);
        let (d, h, kv_dim, hs) = (c.dim, c.hidden_dim, c.kv_dim(), c.head_size());
        let a = &mut self.one;
        let t = token as usize;
        a.x.copy_from_slice(&self.token_embedding[t * d..(t + 1) * d]);

        rope_angles(&mut a.rope, pos, hs);
        let sqrt_hs = libm::sqrtf(hs as f32);

        for (l, layer) in self.layers.iter().enumerate() {
            let hk = &mut self.hooks;
            rmsnorm_rows(hk, ks, &mut a.xb, &a.x, layer.rms_att, d);
            matmul(hk, ks, par, &mut a.q, &a.xb, &layer.wq, &mut a.qdim, true);
            matmul(hk, ks, par, &mut a.k, &a.xb, &layer.wk, &mut a.qdim, false);
            matmul(hk, ks, par, &mut a.v, &a.xb, &layer.wv, &mut a.qdim, false);
            rope_token(hk, ks, &mut a.q, &mut a.k, &a.rope, hs);
            let loff = l * c.seq_len * kv_dim;
            let at = loff + pos * kv_dim;
            self.key_cache[at..at + kv_dim].copy_from_slice(&a.k);
            self.value_cache[at..at + kv_dim].copy_from_slice(&a.v);

            let t0 = hk.start(Op::Attention { seq_len: c.seq_len });
            let jit = hk.specialiser();
            attend(ks, par, jit, &c, &a.q, &self.key_cache, &self.value_cache, loff, pos, sqrt_hs, &mut self.att, &mut a.xb);
            hk.record(Op::Attention { seq_len: c.seq_len }, t0);
            matmul(hk, ks, par, &mut a.xb2, &a.xb, &layer.wo, &mut a.qdim, true);
            for (x, y) in a.x.iter_mut().zip(&a.xb2) {
                *x += y;
            }

            rmsnorm_rows(hk, ks, &mut a.xb, &a.x, layer.rms_ffn, d);
            matmul(hk, ks, par, &mut a.hb, &a.xb, &layer.w1, &mut a.qdim, true);
            matmul(hk, ks, par, &mut a.hb2, &a.xb, &layer.w3, &mut a.qdim, false);
            swiglu_rows(hk, ks, &mut a.hb, &a.hb2, h);
            matmul(hk, ks, par, &mut a.xb, &a.hb, &layer.w2, &mut a.qhidden, true);
            for (x, y) in a.x.iter_mut().zip(&a.xb) {
                *x += y;
            }
        }
        ks.rmsnorm_in_place(&mut a.x, self.rms_final);
        matmul(&mut self.hooks, ks, par, &mut self.logits, &a.x, &self.wcls, &mut a.qdim, true);
        Ok(&mut self.logits)
    }
}

/// One matrix-vector product, split by rows over `par` when it is big enough.
/// In int8 mode `x` is quantized into `qx` first when `quantize` is set (a run of
/// products on the same `x` quantizes it once).
#[allow(clippy::too_many_arguments)] // the hooks ride along with the original six
fn matmul(
    hk: &mut Hooks,
    ks: KernelSet,
    par: &dyn Parallel,
    out: &mut [f32],
    x: &[f32],
    w: &Mat<'_>,
    qx: &mut QBatch,
    quantize: bool,
) {
    let (rows, cols) = (out.len(), x.len());
    let op = if matches!(w, Mat::Q8(_)) { Op::Q8Matmul { rows, cols } } else { Op::Matmul { rows, cols } };
    let t0 = hk.start(op);
    let jit = hk.specialiser();
    let weights = out.len() * x.len();
    let tasks = if weights >= PAR_MIN_WEIGHTS { par.threads() * 4 } else { 1 };
    match w {
        Mat::F32(w) => kernels::split_rows(par, out, tasks, 4, &|start, rows| {
            let n = x.len();
            let w = &w[start * n..(start + rows.len()) * n];
            if !jit.is_some_and(|j| j.matmul(rows, x, w)) {
                ks.matmul(rows, x, w);
            }
        }),
        Mat::Q8(m) => {
            if quantize {
                qx.set(x, 1);
            }
            let qx = &*qx;
            let (n, g) = (qx.q.len(), qx.scales.len());
            kernels::split_rows(par, out, tasks, 4, &|start, rows| {
                let end = start + rows.len();
                let (qw, sw) = (&m.q[start * n..end * n], &m.scales[start * g..end * g]);
                if !jit.is_some_and(|j| j.q8_matmul(rows, qw, sw, &qx.q, &qx.scales)) {
                    ks.q8_matmul(rows, qw, sw, &qx.q, &qx.scales);
                }
            })
        }
    }
    hk.record(op, t0);
}

/// RoPE angles for position `pos` and heads of `hs` values, as run.c computes them.
fn rope_angles(rope: &mut [[f32; 2]], pos: usize, hs: usize) {
    for (p, cs) in rope.iter_mut().enumerate() {
        let head_dim = (2 * p) as f32;
        let freq = 1.0 / libm::powf(10000.0, head_dim / hs as f32);
        let val = pos as f32 * freq;
        *cs = [libm::cosf(val), libm::sinf(val)];
    }
}

/// RoPE on one token's `q` and `k` (heads of `hs` values) with its `[cos, sin]` pairs `r`.
fn rope_token(hk: &mut Hooks, ks: KernelSet, q: &mut [f32], k: &mut [f32], r: &[[f32; 2]], hs: usize) {
    let op = Op::Rope { head: hs };
    let t0 = hk.start(op);
    let cs = r.as_flattened();
    for v in [q, k] {
        if !hk.specialiser().is_some_and(|j| j.rope(v, cs)) {
            ks.rope(v, r);
        }
    }
    hk.record(op, t0);
}

/// SwiGLU of each of the `hb.len() / n` token rows of `hb` with those of `hb2`.
fn swiglu_rows(hk: &mut Hooks, ks: KernelSet, hb: &mut [f32], hb2: &[f32], n: usize) {
    for (a, g) in hb.chunks_exact_mut(n).zip(hb2.chunks_exact(n)) {
        let t0 = hk.start(Op::SwiGlu { n });
        if !hk.specialiser().is_some_and(|j| j.swiglu(a, g)) {
            ks.swiglu(a, g);
        }
        hk.record(Op::SwiGlu { n }, t0);
    }
}

/// RMSNorm of each of the `x.len() / dim` token rows of `x` into `o`.
fn rmsnorm_rows(hk: &mut Hooks, ks: KernelSet, o: &mut [f32], x: &[f32], w: &[f32], dim: usize) {
    for (o, x) in o.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
        let t0 = hk.start(Op::RmsNorm { dim });
        if !hk.specialiser().is_some_and(|j| j.rmsnorm(o, x, w)) {
            ks.rmsnorm(o, x, w);
        }
        hk.record(Op::RmsNorm { dim }, t0);
    }
}

/// Attention of one token at `pos` (query `q`, the layer's cache rows from
/// `loff`), into `out`, in groups of heads: one group with one thread or
/// little work, else one group per thread (when the heads divide evenly; one
/// head per task if not). Each group reads the cache rows in order.
#[allow(clippy::too_many_arguments)] // the pieces of the model's state it reads
fn attend(
    ks: KernelSet,
    par: &dyn Parallel,
    jit: Option<&dyn Specialiser>,
    c: &Config,
    q: &[f32],
    key_cache: &[f32],
    value_cache: &[f32],
    loff: usize,
    pos: usize,
    sqrt_hs: f32,
    att: &mut [f32],
    out: &mut [f32],
) {
    let (d, kv_dim, hs, kv_mul) = (c.dim, c.kv_dim(), c.head_size(), c.kv_mul());
    let rows = pos + 1;
    let (kc, vc) = (&key_cache[loff..loff + rows * kv_dim], &value_cache[loff..loff + rows * kv_dim]);
    let parallel = rows * d >= PAR_MIN_ATTENTION && par.threads() > 1;
    let nh = c.n_heads;
    let group = if !parallel {
        nh
    } else if nh.is_multiple_of(par.threads()) {
        nh / par.threads()
    } else {
        1
    };
    let task = |g: usize, att: &mut [f32], xb: &mut [f32]| {
        let first = g * group;
        let heads = kernels::Heads {
            q: &q[first * hs..(first + group) * hs],
            keys: kc,
            values: vc,
            stride: kv_dim,
            rows,
            head_size: hs,
            kv_mul,
            first,
        };
        ks.attention(&heads, att, c.seq_len, xb, sqrt_hs, jit);
    };
    let (att_stride, xb_stride) = (group * c.seq_len, group * hs);
    kernels::split_pairs(par, parallel, nh / group, (att, att_stride), (out, xb_stride), &task);
}

/// [`matmul`] for a batch of `t` token rows of `x` into `t` rows of `out`,
/// through `tmp` (the product's rows-of-`t` layout, see [`KernelSet::matmat`]).
#[allow(clippy::too_many_arguments)] // matmul's, plus the batch's scratch and size
fn matmat(
    hk: &mut Hooks,
    ks: KernelSet,
    par: &dyn Parallel,
    out: &mut [f32],
    x: &[f32],
    w: &Mat<'_>,
    tmp: &mut [f32],
    qx: &mut QBatch,
    quantize: bool,
    t: usize,
) {
    let (rows, cols) = (out.len() / t, x.len() / t);
    let op = if matches!(w, Mat::Q8(_)) { Op::Q8Matmat { rows, cols } } else { Op::Matmat { rows, cols } };
    let t0 = hk.start(op);
    let jit = hk.specialiser();
    let tmp = &mut tmp[..rows * t];
    let tasks = if rows * cols >= PAR_MIN_WEIGHTS { par.threads() * 4 } else { 1 };
    // Tasks start at multiples of 4 rows (see `KernelSet::matmat`).
    match w {
        Mat::F32(w) => kernels::split_rows(par, tmp, tasks, 4 * t, &|start, o| {
            let (r0, nr) = (start / t, o.len() / t);
            let w = &w[r0 * cols..(r0 + nr) * cols];
            if !jit.is_some_and(|j| j.matmat(o, x, w, cols)) {
                ks.matmat(o, x, w, cols);
            }
        }),
        Mat::Q8(m) => {
            if quantize {
                qx.set(x, t);
            }
            let (g, (qt, st)) = (qx.groups, qx.tokens(t));
            let n = g * crate::quant::GROUP;
            kernels::split_rows(par, tmp, tasks, 4 * t, &|start, o| {
                let (r0, nr) = (start / t, o.len() / t);
                let (qw, sw) = (&m.q[r0 * n..(r0 + nr) * n], &m.scales[r0 * g..(r0 + nr) * g]);
                if !jit.is_some_and(|j| j.q8_matmat(o, qw, sw, qt, st, g)) {
                    ks.q8_matmat(o, qw, sw, qt, st, g);
                }
            })
        }
    }
    kernels::untranspose(out, tmp, t);
    hk.record(op, t0);
}
