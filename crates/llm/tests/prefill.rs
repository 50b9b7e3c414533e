//! The batched prefill leaves the model exactly where one-by-one forward calls
//! leave it: after feeding a prompt either way, the next token's logits have
//! the same bits, for every kernel set, both weight modes, any batch size, on
//! one thread and on a worker pool.
use bareflow_llm::checkpoint::{Config, aligned};
use bareflow_llm::kernels::pool::WorkerPool;
use bareflow_llm::kernels::{KernelKind, KernelSet};
use bareflow_llm::model::ForwardError;
use bareflow_llm::r#gen::random_checkpoint_for;
use bareflow_llm::{Checkpoint, Parallel, Sequential, Transformer, WeightMode};

fn sets() -> Vec<KernelSet> {
    [KernelKind::Scalar, KernelKind::Sse2, KernelKind::Avx2, KernelKind::Avx512]
        .into_iter()
        .filter_map(|k| KernelSet::new(k).ok())
        .collect()
}

/// Odd shapes: grouped-query attention, row counts that are not multiples of
/// 4 (102, and kv_dim 36 + ...), columns that are not multiples of 8 or 32.
fn small() -> Config {
    Config {
        dim: 72,
        hidden_dim: 102,
        n_layers: 2,
        n_heads: 6,
        n_kv_heads: 2,
        vocab_size: 61,
        seq_len: 48,
        shared_classifier: false,
    }
}

/// Big enough for the products to be split over threads (hidden x dim is over
/// 2^15 weights) and attention to run its heads in parallel late in the context.
fn wide() -> Config {
    Config {
        dim: 144,
        hidden_dim: 230,
        n_layers: 2,
        n_heads: 6,
        n_kv_heads: 3,
        vocab_size: 64,
        seq_len: 80,
        shared_classifier: true,
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn prompt(c: &Config, n: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7 + 3) % c.vocab_size) as u32).collect()
}

/// Logits at position `n` after feeding `n` tokens one by one, and after
/// feeding them by `prefill` with `batch`.
fn both(c: &Config, ks: KernelSet, mode: WeightMode, n: usize, batch: usize, par: &dyn Parallel) -> (Vec<u32>, Vec<u32>) {
    let bytes = random_checkpoint_for(c, 0x5eed ^ n as u64);
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).expect("checkpoint");
    let p = prompt(c, n + 1);
    let mut one = Transformer::new(&ckpt, ks, mode);
    for (pos, &t) in p[..n].iter().enumerate() {
        one.forward(t, pos, par).expect("in range");
    }
    let a = bits(one.forward(p[n], n, par).expect("in range"));
    let mut batched = Transformer::new(&ckpt, ks, mode);
    batched.set_prefill_batch(batch);
    batched.prefill(&p[..n], 0, par).expect("in range");
    let b = bits(batched.forward(p[n], n, par).expect("in range"));
    (a, b)
}

#[test]
fn prefill_gives_the_bits_of_one_token_at_a_time() {
    for ks in sets() {
        for mode in [WeightMode::F32, WeightMode::Q8] {
            for (n, batch) in [(1, 16), (5, 16), (16, 16), (37, 16), (20, 3), (9, 1)] {
                let (a, b) = both(&small(), ks, mode, n, batch, &Sequential);
                assert_eq!(a, b, "{:?} {mode:?}: {n} tokens in batches of {batch}", ks.kind());
            }
        }
    }
}

#[test]
fn prefill_on_a_pool_gives_the_bits_of_one_token_at_a_time() {
    let (pool, workers) = WorkerPool::new(2);
    // Results first, assertions after the pool has stopped (a failed assertion
    // inside the scope would leave the workers spinning).
    let results = std::thread::scope(|s| {
        for w in &workers {
            s.spawn(|| w.run(&std::thread::yield_now));
        }
        let mut r = Vec::new();
        for ks in sets() {
            for mode in [WeightMode::F32, WeightMode::Q8] {
                for (n, batch) in [(70, 16), (33, 8)] {
                    let (a, b) = both(&wide(), ks, mode, n, batch, &pool);
                    let (c, _) = both(&wide(), ks, mode, n, batch, &Sequential);
                    r.push((format!("{:?} {mode:?}: {n} tokens in batches of {batch}", ks.kind()), a, b, c));
                }
            }
        }
        pool.stop();
        r
    });
    for (what, a, b, c) in results {
        assert_eq!(a, b, "{what}, 2 threads: prefill against one by one");
        assert_eq!(a, c, "{what}: 2 threads against one");
    }
}

#[test]
fn prefill_refuses_positions_past_the_context_and_unknown_tokens() {
    let c = small();
    let bytes = random_checkpoint_for(&c, 1);
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).expect("checkpoint");
    let mut m = Transformer::new(&ckpt, KernelSet::best(), WeightMode::F32);
    let long = prompt(&c, c.seq_len + 1);
    assert_eq!(
        m.prefill(&long, 0, &Sequential),
        Err(ForwardError::PositionOutOfRange { pos: c.seq_len, seq_len: c.seq_len })
    );
    assert_eq!(
        m.prefill(&long[..4], c.seq_len - 3, &Sequential),
        Err(ForwardError::PositionOutOfRange { pos: c.seq_len, seq_len: c.seq_len })
    );
    assert_eq!(
        m.prefill(&[1, 2, 61], 0, &Sequential),
        Err(ForwardError::TokenOutOfRange { token: 61, vocab_size: 61 })
    );
    assert_eq!(
        m.prefill(&[1], usize::MAX, &Sequential),
        Err(ForwardError::PositionOutOfRange { pos: usize::MAX, seq_len: c.seq_len })
    );
    // The whole context fits; nothing to run is fine at any position.
    assert_eq!(m.prefill(&[], usize::MAX, &Sequential), Ok(()));
    assert_eq!(m.prefill(&long[..c.seq_len], 0, &Sequential), Ok(()));
    assert_eq!(m.prefill(&[], 0, &Sequential), Ok(()));
}
