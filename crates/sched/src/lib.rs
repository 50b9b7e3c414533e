//! `bareflow-sched`: the scheduler's policies as pure logic, host-tested.
//!
//! The kernel's per-CPU scheduler (LWKT style: each CPU owns its run queue
//! and its threads; others only post messages to it) asks these types what
//! to do; they never touch hardware or read a clock: time comes in as an
//! argument (`now`, in nanoseconds), so every decision is reproducible.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod governor;

use alloc::collections::{BinaryHeap, VecDeque};
use core::cmp::{Ordering, Reverse};

/// Timers ordered by deadline (a binary heap: O(log n) insert and pop).
/// Ties fire in insertion order. Cancelling is lazy: the owner of an item
/// ignores an item that has gone stale when it fires.
#[derive(Debug)]
pub struct TimerHeap<T> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    seq: u64,
}

#[derive(Debug)]
struct Entry<T> {
    deadline: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.deadline, self.seq) == (o.deadline, o.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(o.deadline, o.seq))
    }
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerHeap<T> {
    /// An empty heap.
    pub const fn new() -> Self {
        TimerHeap { heap: BinaryHeap::new(), seq: 0 }
    }

    /// Adds `item`, due at `deadline` (ns).
    pub fn insert(&mut self, deadline: u64, item: T) {
        self.seq += 1;
        self.heap.push(Reverse(Entry { deadline, seq: self.seq, item }));
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|r| r.0.deadline)
    }

    /// Removes and returns one item due at or before `now`.
    pub fn pop_expired(&mut self, now: u64) -> Option<T> {
        if self.next_deadline()? <= now {
            self.heap.pop().map(|r| r.0.item)
        } else {
            None
        }
    }

    /// Number of pending timers (stale ones included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// No timers pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// A CPU's run queue: FIFO, with round-robin time slices.
#[derive(Debug)]
pub struct RunQueue<T> {
    queue: VecDeque<T>,
    /// Length of a time slice, ns.
    pub slice_ns: u64,
}

impl<T> RunQueue<T> {
    /// An empty queue with the given slice.
    pub const fn new(slice_ns: u64) -> Self {
        RunQueue { queue: VecDeque::new(), slice_ns }
    }

    /// Makes `t` runnable (behind everything already waiting).
    pub fn push(&mut self, t: T) {
        self.queue.push_back(t);
    }

    /// The next thread to run.
    pub fn pop(&mut self) -> Option<T> {
        self.queue.pop_front()
    }

    /// Threads waiting to run.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Should the running thread, which started its slice at `since`, give
    /// the CPU to the next one at `now`? Only when someone is waiting and the
    /// slice is used up: a busy loop cannot starve the queue, and a lone
    /// thread is never interrupted for nothing.
    pub fn should_preempt(&self, since: u64, now: u64) -> bool {
        !self.queue.is_empty() && now.saturating_sub(since) >= self.slice_ns
    }
}

/// Where a new thread goes: the CPU with the fewest threads, ties broken by
/// rotating from `hint` (so equal loads still spread across CPUs).
pub fn place(loads: &[usize], hint: usize) -> usize {
    let n = loads.len().max(1);
    (0..n).map(|i| (hint + i) % n).min_by_key(|&c| loads.get(c).copied().unwrap_or(usize::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[test]
    fn timers_fire_in_deadline_then_insertion_order() {
        let mut h = TimerHeap::new();
        h.insert(30, 'c');
        h.insert(10, 'a');
        h.insert(10, 'b');
        h.insert(50, 'd');
        assert_eq!(h.next_deadline(), Some(10));
        assert_eq!(h.pop_expired(5), None);
        let mut got = Vec::new();
        while let Some(x) = h.pop_expired(30) {
            got.push(x);
        }
        assert_eq!(got, ['a', 'b', 'c']);
        assert_eq!(h.len(), 1);
        assert_eq!(h.pop_expired(49), None);
        assert_eq!(h.pop_expired(50), Some('d'));
        assert!(h.is_empty());
    }

    #[test]
    fn preemption_needs_a_waiter_and_a_used_slice() {
        let mut q = RunQueue::new(10);
        assert!(!q.should_preempt(0, 1000), "alone: never preempted");
        q.push(1);
        assert!(!q.should_preempt(0, 9));
        assert!(q.should_preempt(0, 10));
        assert_eq!(q.pop(), Some(1));
    }

    #[test]
    fn round_robin_keeps_fifo_order() {
        let mut q = RunQueue::new(1);
        for i in 0..3 {
            q.push(i);
        }
        // The running thread yields: it goes to the back.
        let running = q.pop().unwrap_or(99);
        q.push(running);
        assert_eq!((q.pop(), q.pop(), q.pop()), (Some(1), Some(2), Some(0)));
    }

    #[test]
    fn placement_prefers_least_loaded_and_rotates_ties() {
        assert_eq!(place(&[3, 1, 2], 0), 1);
        assert_eq!(place(&[0, 0, 0, 0], 2), 2);
        assert_eq!(place(&[0, 0, 0, 0], 3), 3);
        assert_eq!(place(&[], 5), 0);
    }

    proptest! {
        #[test]
        fn timers_pop_sorted_and_none_lost(deadlines in proptest::collection::vec(0u64..1000, 0..200), now in 0u64..1200) {
            let mut h = TimerHeap::new();
            for (i, d) in deadlines.iter().enumerate() {
                h.insert(*d, (*d, i));
            }
            let mut fired = Vec::new();
            while let Some(x) = h.pop_expired(now) {
                fired.push(x);
            }
            let mut expect: Vec<(u64, usize)> = deadlines.iter().enumerate().map(|(i, d)| (*d, i)).filter(|(d, _)| *d <= now).collect();
            expect.sort();
            prop_assert_eq!(&fired, &expect);
            prop_assert_eq!(h.len(), deadlines.len() - fired.len());
        }

        #[test]
        fn placement_picks_a_minimum(loads in proptest::collection::vec(0usize..10, 1..16), hint in 0usize..64) {
            let c = place(&loads, hint);
            prop_assert!(c < loads.len());
            prop_assert_eq!(loads[c], *loads.iter().min().unwrap_or(&0));
        }
    }
}
