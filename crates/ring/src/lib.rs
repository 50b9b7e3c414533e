//! `bareflow-ring`: a Disruptor-style (LMAX) ring for passing messages
//! between fibers and threads without locks and without allocation after
//! construction.
//!
//! The ring is a pre-allocated power-of-two array of slots addressed by
//! 64-bit sequence numbers that never wrap in practice. Producers claim a
//! range of sequences, write the slots in place and publish the range with
//! one store; consumers read every event that is available in one batch and
//! then advance their own sequence once. Consumers form a graph: each one
//! waits on the producers' cursor and/or on the sequences of the consumers it
//! runs after, so pipelines (A → B → C) and diamonds (A → {B, C} → D) need no
//! extra queues. Producers wait on the last consumers of that graph.
//!
//! Principles kept here:
//! - `unsafe` only for slot access through `UnsafeCell`: two small
//!   accessors whose `# Safety` contracts are the Disruptor's sequence rules
//!   (a slot is written only by the claimant of its sequence after every
//!   gating consumer has left the previous lap, and read only once published).
//! - No shutdown protocol: consumers know how many events to expect, or the
//!   application sends its own end marker.
//! - All atomics come through one shim (`sync`), so the same code is model
//!   checked with `loom` (`RUSTFLAGS="--cfg loom" cargo test --release --test loom`).
//! - Waiting is a trait ([`WaitStrategy`]); parking is a trait the environment
//!   implements ([`Park`]), so the crate is `no_std` and knows no scheduler.
//!
//! ```
//! use bareflow_ring::{BusySpin, RingBuilder};
//! let mut builder = RingBuilder::new(8, BusySpin, || 0u64).unwrap();
//! let first = builder.add_consumer(&[]).unwrap();
//! let _second = builder.add_consumer(&[first]).unwrap(); // runs after `first`
//! let (mut producer, mut consumers) = builder.build_single_producer().unwrap();
//! producer.publish_batch(3, |slot, seq| *slot = seq * 10).unwrap();
//! let mut seen = Vec::new();
//! consumers[0].try_poll(|event, _seq, _end_of_batch| seen.push(*event));
//! assert_eq!(seen, [0, 10, 20]);
//! ```
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod error;
mod sync;
mod wait;

#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::vec::Vec;

pub use error::{BuildError, PublishError};
#[cfg(feature = "std")]
pub use wait::StdPark;
pub use wait::{Blocking, BusySpin, Park, WaitStrategy, Yielding};

use sync::{Arc, AtomicU64, Ordering, Padded, UnsafeCell};

/// Names a consumer while the ring is being built; consumers are returned in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsumerId(usize);

impl ConsumerId {
    /// Position of this consumer in the `Vec` returned by the build methods.
    pub fn index(self) -> usize {
        self.0
    }
}

/// State shared by all producers and consumers of one ring.
struct Shared<T, W> {
    slots: Box<[UnsafeCell<T>]>,
    mask: u64,
    /// log2(capacity): `seq >> shift` is the lap a sequence belongs to.
    shift: u32,
    /// Single producer: sequences `< cursor` are published.
    /// Multi producer: sequences `< cursor` are claimed; `available` says which are published.
    cursor: Padded<AtomicU64>,
    /// Multi producer only: per slot, 1 + the lap of the last sequence published into it.
    available: Box<[AtomicU64]>,
    /// Multi producer only: a recent minimum of the gating sequences, shared by producers.
    gating_cache: Padded<AtomicU64>,
    /// Per consumer: sequences `< value` have been fully processed.
    consumed: Box<[Padded<AtomicU64>]>,
    /// The consumers nobody runs after; producers may not lap the slowest of them.
    gating: Box<[usize]>,
    multi: bool,
    wait: W,
}

// SAFETY: the slots are the only non-Sync part. A slot is written (through
// `slot_mut`) only by the producer that claimed its sequence, after every
// consumer has finished the sequence one lap earlier, and read (through
// `slot`) only by consumers, after the claim was published; the Acquire/
// Release pairs on the cursors order those accesses. Consumers on several
// threads read the same `T` at once (needs `T: Sync`), and values written on
// one thread are read on others (needs `T: Send`).
unsafe impl<T: Send + Sync, W: Sync> Sync for Shared<T, W> {}
// SAFETY: moving the ring moves its `T`s and `W` to another thread, which is
// fine when they are `Send`; the atomics are `Send` anyway.
unsafe impl<T: Send, W: Send> Send for Shared<T, W> {}

impl<T, W: WaitStrategy> Shared<T, W> {
    fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Smallest sequence among the consumers producers wait on.
    fn min_gating(&self) -> u64 {
        self.gating
            .iter()
            .map(|&i| self.consumed[i].load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// First unpublished sequence in `from..claimed` (multi producer), or `claimed`.
    fn highest_published(&self, from: u64, claimed: u64) -> u64 {
        let mut seq = from;
        while seq < claimed {
            let flag = self.available[(seq & self.mask) as usize].load(Ordering::Acquire);
            if flag != (seq >> self.shift) + 1 {
                return seq;
            }
            seq += 1;
        }
        claimed
    }

    /// Runs `f` on the slot of `seq` for writing.
    ///
    /// # Safety
    /// The caller claimed `seq` (no other producer holds it) and has observed,
    /// with Acquire, every gating consumer at a sequence `> seq - capacity`
    /// (so no consumer still reads this slot).
    #[inline]
    unsafe fn slot_mut<R>(&self, seq: u64, f: impl FnOnce(&mut T) -> R) -> R {
        self.slots[(seq & self.mask) as usize].with_mut(|p| {
            // SAFETY: the caller's contract makes this the only access to the
            // slot until it publishes `seq`; `p` points into the live boxed slice.
            f(unsafe { &mut *p })
        })
    }

    /// Runs `f` on the slot of `seq` for reading.
    ///
    /// # Safety
    /// The caller observed, with Acquire, that `seq` is published (directly, or
    /// through a consumer it runs after) and has not yet advanced its own
    /// sequence past `seq` (so no producer can reuse the slot meanwhile).
    #[inline]
    unsafe fn slot<R>(&self, seq: u64, f: impl FnOnce(&T) -> R) -> R {
        self.slots[(seq & self.mask) as usize].with(|p| {
            // SAFETY: per the caller's contract no producer writes this slot
            // while we hold the reference; readers may share it.
            f(unsafe { &*p })
        })
    }
}

type SharedRef<T, W> = Arc<Shared<T, W>>;

/// A built ring: its producer and its consumers, in id order.
pub type Built<P, T, W> = (P, Vec<Consumer<T, W>>);

/// Declares the consumer graph, then builds the ring with one or many producers.
pub struct RingBuilder<T, W> {
    slots: Box<[UnsafeCell<T>]>,
    wait: W,
    /// For each consumer, the consumers it runs after (all with smaller ids: the graph is acyclic).
    after: Vec<Box<[usize]>>,
}

impl<T: Send + Sync, W: WaitStrategy> RingBuilder<T, W> {
    /// A ring of `capacity` slots (a power of two), each filled by `factory`.
    pub fn new(
        capacity: usize,
        wait: W,
        mut factory: impl FnMut() -> T,
    ) -> Result<Self, BuildError> {
        if !capacity.is_power_of_two() {
            return Err(BuildError::CapacityNotPowerOfTwo(capacity));
        }
        let slots = (0..capacity).map(|_| UnsafeCell::new(factory())).collect();
        Ok(Self {
            slots,
            wait,
            after: Vec::new(),
        })
    }

    /// Adds a consumer that sees an event only after every consumer in `after`
    /// has processed it (with `after` empty: as soon as it is published).
    pub fn add_consumer(&mut self, after: &[ConsumerId]) -> Result<ConsumerId, BuildError> {
        if let Some(bad) = after.iter().find(|id| id.0 >= self.after.len()) {
            return Err(BuildError::UnknownConsumer(bad.0));
        }
        let mut deps: Vec<usize> = after.iter().map(|id| id.0).collect();
        deps.sort_unstable();
        deps.dedup();
        self.after.push(deps.into_boxed_slice());
        Ok(ConsumerId(self.after.len() - 1))
    }

    /// Builds the ring for one producer: publishing is a plain Release store.
    pub fn build_single_producer(self) -> Result<Built<Producer<T, W>, T, W>, BuildError> {
        let (shared, consumers) = self.build(false)?;
        Ok((
            Producer {
                shared,
                next: 0,
                gate_limit: 0,
            },
            consumers,
        ))
    }

    /// Builds the ring for any number of producers (the returned one is `Clone`):
    /// claims are a `fetch_add`, publication a per-slot availability flag.
    pub fn build_multi_producer(self) -> Result<Built<MultiProducer<T, W>, T, W>, BuildError> {
        let (shared, consumers) = self.build(true)?;
        Ok((MultiProducer { shared }, consumers))
    }

    fn build(self, multi: bool) -> Result<Built<SharedRef<T, W>, T, W>, BuildError> {
        let n = self.after.len();
        if n == 0 {
            return Err(BuildError::NoConsumers);
        }
        let mut has_dependents = alloc::vec![false; n];
        for deps in &self.after {
            for &d in deps.iter() {
                has_dependents[d] = true;
            }
        }
        let gating = (0..n).filter(|&i| !has_dependents[i]).collect();
        let capacity = self.slots.len();
        let available: Box<[AtomicU64]> = if multi {
            (0..capacity).map(|_| AtomicU64::new(0)).collect()
        } else {
            Box::new([])
        };
        let shared = Arc::new(Shared {
            mask: capacity as u64 - 1,
            shift: capacity.trailing_zeros(),
            slots: self.slots,
            cursor: Padded(AtomicU64::new(0)),
            available,
            gating_cache: Padded(AtomicU64::new(0)),
            consumed: (0..n).map(|_| Padded(AtomicU64::new(0))).collect(),
            gating,
            multi,
            wait: self.wait,
        });
        let consumers = self
            .after
            .into_iter()
            .enumerate()
            .map(|(index, after)| Consumer {
                shared: shared.clone(),
                index,
                after,
                next: 0,
            })
            .collect();
        Ok((shared, consumers))
    }
}

/// The producer of a single-producer ring. Not `Clone`: its claims are plain
/// local arithmetic.
pub struct Producer<T, W> {
    shared: Arc<Shared<T, W>>,
    /// Next sequence to claim (and, between calls, the published cursor).
    next: u64,
    /// Sequences below this are known to be free (the slowest consumer + capacity, when last read).
    gate_limit: u64,
}

impl<T: Send + Sync, W: WaitStrategy> Producer<T, W> {
    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.shared.slots.len()
    }

    /// Claims one slot (waiting for room), lets `fill` write it, publishes it.
    pub fn publish(&mut self, fill: impl FnOnce(&mut T)) {
        let mut fill = Some(fill);
        // A batch of one always fits a ring of at least one slot.
        let _ = self.publish_batch(1, |slot, _| {
            if let Some(f) = fill.take() {
                f(slot)
            }
        });
    }

    /// Claims `n` consecutive slots (waiting for room), calls `fill(slot, seq)`
    /// for each in order, then publishes the whole range with one store.
    pub fn publish_batch(
        &mut self,
        n: usize,
        fill: impl FnMut(&mut T, u64),
    ) -> Result<(), PublishError> {
        let end = self.check_batch(n)?;
        if end > self.gate_limit {
            let shared = &*self.shared;
            let cap = shared.capacity();
            self.gate_limit = shared.wait.wait_until(|| {
                let limit = shared.min_gating() + cap;
                (end <= limit).then_some(limit)
            });
        }
        self.write_and_publish(end, fill);
        Ok(())
    }

    /// Like [`publish_batch`](Self::publish_batch), but returns
    /// [`PublishError::Full`] instead of waiting.
    pub fn try_publish_batch(
        &mut self,
        n: usize,
        fill: impl FnMut(&mut T, u64),
    ) -> Result<(), PublishError> {
        let end = self.check_batch(n)?;
        if end > self.gate_limit {
            self.gate_limit = self.shared.min_gating() + self.shared.capacity();
            if end > self.gate_limit {
                return Err(PublishError::Full);
            }
        }
        self.write_and_publish(end, fill);
        Ok(())
    }

    fn check_batch(&self, n: usize) -> Result<u64, PublishError> {
        if n > self.capacity() {
            return Err(PublishError::BatchTooLarge {
                requested: n,
                capacity: self.capacity(),
            });
        }
        Ok(self.next + n as u64)
    }

    fn write_and_publish(&mut self, end: u64, mut fill: impl FnMut(&mut T, u64)) {
        let shared = &*self.shared;
        for seq in self.next..end {
            // SAFETY: this is the only producer, so `seq` is ours; `end <=
            // gate_limit` was read with Acquire from the gating consumers, so
            // each of them is past `seq - capacity` and done with this slot.
            unsafe { shared.slot_mut(seq, |slot| fill(slot, seq)) };
        }
        self.next = end;
        shared.cursor.store(end, Ordering::Release);
        shared.wait.signal();
    }
}

/// A producer of a multi-producer ring; clone it for each producing thread or fiber.
pub struct MultiProducer<T, W> {
    shared: Arc<Shared<T, W>>,
}

impl<T, W> Clone for MultiProducer<T, W> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send + Sync, W: WaitStrategy> MultiProducer<T, W> {
    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.shared.slots.len()
    }

    /// Claims one slot (waiting for room), lets `fill` write it, publishes it.
    pub fn publish(&self, fill: impl FnOnce(&mut T)) {
        let mut fill = Some(fill);
        // A batch of one always fits a ring of at least one slot.
        let _ = self.publish_batch(1, |slot, _| {
            if let Some(f) = fill.take() {
                f(slot)
            }
        });
    }

    /// Claims `n` consecutive sequences with one `fetch_add` (waiting for room
    /// afterwards), calls `fill(slot, seq)` for each, then publishes them.
    /// Other producers' events may come before or after the batch, never inside it.
    pub fn publish_batch(
        &self,
        n: usize,
        fill: impl FnMut(&mut T, u64),
    ) -> Result<(), PublishError> {
        self.check_batch(n)?;
        let shared = &*self.shared;
        let start = shared.cursor.fetch_add(n as u64, Ordering::Relaxed);
        let end = start + n as u64;
        let cap = shared.capacity();
        if end > shared.gating_cache.load(Ordering::Acquire) + cap {
            let gate = shared.wait.wait_until(|| {
                let gate = shared.min_gating();
                (end <= gate + cap).then_some(gate)
            });
            shared.gating_cache.fetch_max(gate, Ordering::AcqRel);
        }
        self.write_and_publish(start, end, fill);
        Ok(())
    }

    /// Like [`publish_batch`](Self::publish_batch), but returns
    /// [`PublishError::Full`] instead of waiting (the claim is a CAS that only
    /// succeeds when there is room).
    pub fn try_publish_batch(
        &self,
        n: usize,
        fill: impl FnMut(&mut T, u64),
    ) -> Result<(), PublishError> {
        self.check_batch(n)?;
        let shared = &*self.shared;
        let cap = shared.capacity();
        let mut start = shared.cursor.load(Ordering::Relaxed);
        loop {
            let end = start + n as u64;
            if end > shared.gating_cache.load(Ordering::Acquire) + cap {
                let gate = shared.min_gating();
                shared.gating_cache.fetch_max(gate, Ordering::AcqRel);
                if end > gate + cap {
                    return Err(PublishError::Full);
                }
            }
            match shared.cursor.compare_exchange_weak(
                start,
                end,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => start = now,
            }
        }
        self.write_and_publish(start, start + n as u64, fill);
        Ok(())
    }

    fn check_batch(&self, n: usize) -> Result<(), PublishError> {
        if n > self.capacity() {
            return Err(PublishError::BatchTooLarge {
                requested: n,
                capacity: self.capacity(),
            });
        }
        Ok(())
    }

    fn write_and_publish(&self, start: u64, end: u64, mut fill: impl FnMut(&mut T, u64)) {
        let shared = &*self.shared;
        for seq in start..end {
            // SAFETY: the claim handed `start..end` to this producer alone, and
            // a gating minimum with `end <= gate + capacity` was observed with
            // Acquire (directly or through `gating_cache`'s Release/Acquire chain),
            // so every consumer is done with the previous lap of these slots.
            unsafe { shared.slot_mut(seq, |slot| fill(slot, seq)) };
        }
        for seq in start..end {
            let flag = (seq >> shared.shift) + 1;
            shared.available[(seq & shared.mask) as usize].store(flag, Ordering::Release);
        }
        shared.wait.signal();
    }
}

/// One consumer of the ring: reads events in sequence order, in batches.
pub struct Consumer<T, W> {
    shared: Arc<Shared<T, W>>,
    index: usize,
    /// Consumers this one runs after.
    after: Box<[usize]>,
    /// Next sequence to read; equals our published `consumed` value between calls.
    next: u64,
}

impl<T: Send + Sync, W: WaitStrategy> Consumer<T, W> {
    /// This consumer's id, as returned by [`RingBuilder::add_consumer`].
    pub fn id(&self) -> ConsumerId {
        ConsumerId(self.index)
    }

    /// How many events this consumer has processed (its sequence).
    pub fn sequence(&self) -> u64 {
        self.next
    }

    /// Exclusive end of the events this consumer may read now.
    #[inline]
    fn available(&self) -> u64 {
        let shared = &*self.shared;
        if !self.after.is_empty() {
            // Upstream consumers only pass published events, so they are the bound.
            self.after
                .iter()
                .map(|&i| shared.consumed[i].load(Ordering::Acquire))
                .min()
                .unwrap_or(self.next)
        } else if shared.multi {
            let claimed = shared.cursor.load(Ordering::Acquire);
            shared.highest_published(self.next, claimed)
        } else {
            shared.cursor.load(Ordering::Acquire)
        }
    }

    /// Processes every event available now, calling `handler(event, seq,
    /// end_of_batch)` for each, then advances this consumer's sequence once.
    /// Returns how many events it processed (0 if none were available).
    pub fn try_poll(&mut self, handler: impl FnMut(&T, u64, bool)) -> usize {
        let end = self.available();
        self.process(end, handler)
    }

    /// Waits (per the ring's wait strategy) until at least one event is
    /// available, then behaves as [`try_poll`](Self::try_poll).
    pub fn poll(&mut self, handler: impl FnMut(&T, u64, bool)) -> usize {
        let next = self.next;
        let end = self.shared.wait.wait_until(|| {
            let end = self.available();
            (end > next).then_some(end)
        });
        self.process(end, handler)
    }

    fn process(&mut self, end: u64, mut handler: impl FnMut(&T, u64, bool)) -> usize {
        let start = self.next;
        if end <= start {
            return 0;
        }
        let shared = &*self.shared;
        for seq in start..end {
            // SAFETY: `end` was read with Acquire from the cursor, the
            // availability flags or upstream consumers, so `seq < end` is
            // published and its write is visible; our own sequence is still
            // `start <= seq`, so producers cannot reuse the slot yet.
            unsafe { shared.slot(seq, |event| handler(event, seq, seq + 1 == end)) };
        }
        self.next = end;
        shared.consumed[self.index].store(end, Ordering::Release);
        shared.wait.signal();
        (end - start) as usize
    }
}
