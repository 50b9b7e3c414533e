//! Error types, one per operation.

use core::fmt;

/// Why a ring could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// The capacity must be a power of two (and not zero) so that a sequence maps to a slot with a mask.
    CapacityNotPowerOfTwo(usize),
    /// A consumer was declared to run after a consumer this builder does not know.
    UnknownConsumer(usize),
    /// A ring without consumers would let the producer overwrite every slot unseen.
    NoConsumers,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CapacityNotPowerOfTwo(n) => write!(
                f,
                "ring capacity {n} is not a power of two; pick one such as {}",
                n.checked_next_power_of_two().unwrap_or(1 << 20).max(1)
            ),
            Self::UnknownConsumer(id) => write!(
                f,
                "consumer {id} was not added to this builder; pass ids returned by this builder's add_consumer"
            ),
            Self::NoConsumers => write!(
                f,
                "the ring has no consumers; add at least one with add_consumer before building"
            ),
        }
    }
}

impl core::error::Error for BuildError {}

/// Why a batch could not be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The batch is larger than the ring: it could never fit. Split it.
    BatchTooLarge {
        /// Slots asked for.
        requested: usize,
        /// Slots in the ring.
        capacity: usize,
    },
    /// (`try_*` only) the slowest consumer has not freed enough slots yet; retry later.
    Full,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BatchTooLarge {
                requested,
                capacity,
            } => write!(
                f,
                "a batch of {requested} events cannot fit a ring of {capacity} slots; publish it in smaller batches"
            ),
            Self::Full => write!(
                f,
                "the ring is full until the slowest consumer catches up; retry, or use the waiting publish"
            ),
        }
    }
}

impl core::error::Error for PublishError {}
