//! run.c's sampler: greedy at temperature 0, else softmax(logits / T) and
//! either multinomial or top-p ("nucleus") sampling, with run.c's xorshift64*
//! generator so that a seed gives the same tokens.
use alloc::vec::Vec;

use crate::kernels::scalar;

/// One candidate of top-p sampling.
#[derive(Debug, Clone, Copy)]
struct ProbIndex {
    prob: f32,
    index: u32,
}

/// The sampler's settings and state.
#[derive(Debug, Clone)]
pub struct Sampler {
    temperature: f32,
    topp: f32,
    rng_state: u64,
    candidates: Vec<ProbIndex>,
}

impl Sampler {
    /// A sampler; `temperature` and `topp` are clamped as run.c's `main` does
    /// (negative temperature → 0; top-p outside \[0, 1\] → 0.9).
    pub fn new(temperature: f32, topp: f32, seed: u64) -> Self {
        let temperature = if temperature < 0.0 { 0.0 } else { temperature };
        let topp = if !(0.0..=1.0).contains(&topp) { 0.9 } else { topp };
        Sampler { temperature, topp, rng_state: seed, candidates: Vec::new() }
    }

    /// The generator's state (run.c's `rng_state`).
    pub fn rng_state(&self) -> u64 {
        self.rng_state
    }

    /// run.c's `random_u32` (xorshift64*).
    pub fn random_u32(&mut self) -> u32 {
        let s = &mut self.rng_state;
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// run.c's `random_f32`: a float in \[0, 1).
    pub fn random_f32(&mut self) -> f32 {
        (self.random_u32() >> 8) as f32 / 16_777_216.0
    }

    /// Picks the next token from `logits` (which it overwrites, as run.c does).
    pub fn sample(&mut self, logits: &mut [f32]) -> u32 {
        if logits.is_empty() {
            return 0;
        }
        if self.temperature == 0.0 {
            return argmax(logits);
        }
        for l in logits.iter_mut() {
            *l /= self.temperature;
        }
        scalar::softmax(logits);
        let coin = self.random_f32();
        if self.topp <= 0.0 || self.topp >= 1.0 {
            sample_mult(logits, coin)
        } else {
            self.sample_topp(logits, coin)
        }
    }

    fn sample_topp(&mut self, probs: &[f32], coin: f32) -> u32 {
        let n = probs.len();
        // Values below the cutoff cannot be part of the nucleus: run.c drops
        // them before sorting.
        let cutoff = (1.0 - self.topp) / (n as f32 - 1.0);
        self.candidates.clear();
        for (i, &p) in probs.iter().enumerate() {
            if p >= cutoff {
                self.candidates.push(ProbIndex { prob: p, index: i as u32 });
            }
        }
        if self.candidates.is_empty() {
            // run.c would read probindex[-1] here; only possible with NaN logits.
            return argmax(probs);
        }
        // Descending; stable like glibc's merge-sort qsort for ties.
        self.candidates.sort_by(|a, b| {
            b.prob.partial_cmp(&a.prob).unwrap_or(core::cmp::Ordering::Equal)
        });
        let mut cumulative = 0.0f32;
        let mut last = self.candidates.len() - 1;
        for (i, c) in self.candidates.iter().enumerate() {
            cumulative += c.prob;
            if cumulative > self.topp {
                last = i;
                break;
            }
        }
        let r = coin * cumulative;
        let mut cdf = 0.0f32;
        for c in &self.candidates[..=last] {
            cdf += c.prob;
            if r < cdf {
                return c.index;
            }
        }
        self.candidates[last].index
    }
}

/// run.c's `sample_argmax`: the first index of the largest value.
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for i in 1..v.len() {
        if v[i] > v[best] {
            best = i;
        }
    }
    best as u32
}

/// run.c's `sample_mult`.
fn sample_mult(probs: &[f32], coin: f32) -> u32 {
    let mut cdf = 0.0f32;
    for (i, &p) in probs.iter().enumerate() {
        cdf += p;
        if coin < cdf {
            return i as u32;
        }
    }
    probs.len() as u32 - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_matches_a_hand_computed_step() {
        // One step of xorshift64* from state 1, computed by hand:
        // 1 ^ (1>>12) = 1; 1 ^ (1<<25) = 0x2000001; x ^ (x>>27) = 0x2000001.
        let mut s = Sampler::new(1.0, 0.9, 1);
        let expect = ((0x2000001u64.wrapping_mul(0x2545_F491_4F6C_DD1D)) >> 32) as u32;
        assert_eq!(s.random_u32(), expect);
        assert_eq!(s.rng_state(), 0x2000001);
    }

    #[test]
    fn topp_only_samples_from_the_nucleus() {
        // probs 0.5, 0.3, 0.15, 0.05 at topp 0.7: nucleus is {0, 1}.
        let mut s = Sampler::new(1.0, 0.7, 42);
        for _ in 0..200 {
            let mut logits = [libm::logf(0.5), libm::logf(0.3), libm::logf(0.15), libm::logf(0.05)];
            let t = s.sample(&mut logits);
            assert!(t == 0 || t == 1, "sampled {t} outside the nucleus");
        }
    }

    #[test]
    fn clamps_like_run_c() {
        let s = Sampler::new(-1.0, 1.5, 3);
        assert_eq!(s.temperature, 0.0);
        assert_eq!(s.topp, 0.9);
    }
}
