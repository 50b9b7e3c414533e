//! `bareflow-taskid`: task IDs that are unique within a boot and that an
//! observer cannot predict from the IDs it has seen.
//!
//! How uniqueness is guaranteed. A keyed hash of a counter is not enough:
//! SipHash-2-4 maps 64-bit inputs to 64-bit outputs with no promise of being
//! a bijection, so two counters could collide. Instead the counter goes
//! through a keyed *permutation* of the 64-bit space: a balanced Feistel
//! network of four rounds over two 32-bit halves, whose round function is
//! SipHash-2-4 keyed by the 128-bit per-boot key (with the round number mixed
//! into the input). Every Feistel round is invertible whatever its round
//! function is, so the whole network is a bijection: distinct counters give
//! distinct IDs, and [`TaskIdGen::decode`] inverts it. The counter is an
//! atomic that only goes up, so every counter value is handed out once, and
//! so is every ID (until 2^64 IDs are spent: [`TaskIdGen::try_next`] reports
//! exhaustion instead of wrapping). Four rounds with a pseudorandom round
//! function give a strong pseudorandom permutation (Luby–Rackoff), which is
//! what makes IDs unguessable without the key.
//!
//! The key is the caller's: the kernel draws it from RDSEED/RDRAND at boot.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;
use core::hash::Hasher;
use core::sync::atomic::{AtomicU64, Ordering};

use siphasher::sip::SipHasher24;

const ROUNDS: u8 = 4;

/// A task ID: unique within one boot (one key), unguessable without the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Every one of the 2^64 IDs of this key has been handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "all 2^64 task IDs of this key are spent; a new key (a new boot) is needed for more",
        )
    }
}

impl core::error::Error for Exhausted {}

/// The keyed permutation of the 64-bit space that turns counters into IDs.
#[derive(Clone)]
pub struct Permutation {
    k0: u64,
    k1: u64,
}

impl fmt::Debug for Permutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.write_str("Permutation { .. }")
    }
}

impl Permutation {
    /// The permutation for a 128-bit key.
    pub fn new(key: [u8; 16]) -> Self {
        let (lo, hi) = key.split_at(8);
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(lo);
        k1.copy_from_slice(hi);
        Self {
            k0: u64::from_le_bytes(k0),
            k1: u64::from_le_bytes(k1),
        }
    }

    /// Round function: SipHash-2-4 of (round, half), truncated to 32 bits.
    fn round(&self, round: u8, half: u32) -> u32 {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        h.write_u8(round);
        h.write_u32(half);
        h.finish() as u32
    }

    /// Maps `x` to its image: a bijection on `u64`.
    pub fn forward(&self, x: u64) -> u64 {
        let (mut l, mut r) = ((x >> 32) as u32, x as u32);
        for round in 0..ROUNDS {
            (l, r) = (r, l ^ self.round(round, r));
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    /// The inverse of [`forward`](Self::forward).
    pub fn inverse(&self, y: u64) -> u64 {
        let (mut l, mut r) = ((y >> 32) as u32, y as u32);
        for round in (0..ROUNDS).rev() {
            (l, r) = (r ^ self.round(round, l), l);
        }
        (u64::from(l) << 32) | u64::from(r)
    }
}

/// Hands out task IDs; thread-safe (one atomic increment per ID).
#[derive(Debug)]
pub struct TaskIdGen {
    perm: Permutation,
    counter: AtomicU64,
}

impl TaskIdGen {
    /// A generator for a 128-bit per-boot key, starting at counter 0.
    pub fn new(key: [u8; 16]) -> Self {
        Self {
            perm: Permutation::new(key),
            counter: AtomicU64::new(0),
        }
    }

    /// The next ID, or [`Exhausted`] once all 2^64 have been handed out.
    pub fn try_next(&self) -> Result<TaskId, Exhausted> {
        let n = self
            .counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1))
            .map_err(|_| Exhausted)?;
        Ok(TaskId(self.perm.forward(n)))
    }

    /// The next ID.
    ///
    /// # Panics
    /// After 2^64 − 1 IDs (centuries at one per nanosecond); use
    /// [`try_next`](Self::try_next) to handle that as an error.
    pub fn next(&self) -> TaskId {
        match self.try_next() {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        }
    }

    /// The counter value `id` was made from (its creation order within this
    /// boot). Any `u64` decodes; only IDs this generator has handed out
    /// decode below [`issued`](Self::issued).
    pub fn decode(&self, id: TaskId) -> u64 {
        self.perm.inverse(id.0)
    }

    /// How many IDs have been handed out.
    pub fn issued(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
