//! Fuzz target: any bytes given to `Checkpoint::parse` give a checkpoint or an
//! error, never a panic; a parsed checkpoint small enough to run goes through a
//! few forward positions (attention over several positions, so softmax, RoPE
//! and SwiGLU see the weights' values, NaN and infinity included) with the
//! scalar and the best kernel set, in fp32 and int8.
//! Seeds: `fuzz/seeds/checkpoint` (valid tiny models; see its README).
#![no_main]
use bareflow_llm::checkpoint::AlignedBytes;
use bareflow_llm::{Checkpoint, KernelSet, Sequential, Transformer, WeightMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let store = AlignedBytes::copy_from(data);
    if let Ok(ck) = Checkpoint::parse(store.as_bytes()) {
        let c = ck.config;
        // Keep the KV cache small: only run models whose state fits easily.
        if c.n_layers * c.seq_len * c.kv_dim() <= 1 << 20 && c.n_heads * c.seq_len <= 1 << 20 {
            for ks in [KernelSet::scalar(), KernelSet::best()] {
                for mode in [WeightMode::F32, WeightMode::Q8] {
                    let mut m = Transformer::new(&ck, ks, mode);
                    let mut token = 0u32;
                    for pos in 0..c.seq_len.min(4) {
                        let Ok(logits) = m.forward(token, pos, &Sequential) else { break };
                        token = bareflow_llm::sampler::argmax(logits);
                    }
                    // Out of range is an error, not a panic.
                    assert!(m.forward(c.vocab_size as u32, 0, &Sequential).is_err());
                    assert!(m.forward(0, c.seq_len, &Sequential).is_err());
                }
            }
        }
    }
});
