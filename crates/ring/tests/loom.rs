//! Model checking with loom: every interleaving (within a preemption bound)
//! and every memory-ordering outcome loom can produce, on rings small enough
//! to wrap. Loom's `UnsafeCell` flags any slot read that races a write.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p bareflow-ring --release --test loom`
//! (`tests/loom_in_cargo_test.rs` does this under a plain `cargo test`).
#![cfg(loom)]

use bareflow_ring::{Blocking, BusySpin, RingBuilder, StdPark, WaitStrategy};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

/// Consumes `n` events and returns them.
fn take<W: WaitStrategy>(c: &mut bareflow_ring::Consumer<u64, W>, n: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.len() < n {
        c.poll(|e, _, _| seen.push(*e));
    }
    seen
}

#[test]
fn spsc_wraps_a_one_slot_ring_in_order() {
    model(|| {
        let mut b = RingBuilder::new(1, BusySpin, || 0u64).unwrap();
        b.add_consumer(&[]).unwrap();
        let (mut p, mut cs) = b.build_single_producer().unwrap();
        let mut c = cs.pop().unwrap();
        let t = thread::spawn(move || take(&mut c, 2));
        p.publish(|s| *s = 10);
        p.publish(|s| *s = 11);
        assert_eq!(t.join().unwrap(), [10, 11]);
    });
}

#[test]
fn mpsc_two_producers_share_a_two_slot_ring() {
    model(|| {
        let mut b = RingBuilder::new(2, BusySpin, || 0u64).unwrap();
        b.add_consumer(&[]).unwrap();
        let (p, mut cs) = b.build_multi_producer().unwrap();
        let mut c = cs.pop().unwrap();
        // Each producer on its own thread, the consumer on the main one.
        let p2 = p.clone();
        let t1 = thread::spawn(move || p.publish(|s| *s = 1));
        let t2 = thread::spawn(move || p2.publish(|s| *s = 2));
        let mut seen = take(&mut c, 2);
        t1.join().unwrap();
        t2.join().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
    });
}

#[test]
fn mpsc_batches_stay_contiguous() {
    model(|| {
        let mut b = RingBuilder::new(4, BusySpin, || 0u64).unwrap();
        b.add_consumer(&[]).unwrap();
        let (p, mut cs) = b.build_multi_producer().unwrap();
        let mut c = cs.pop().unwrap();
        let p2 = p.clone();
        let t = thread::spawn(move || p2.publish_batch(2, |s, _| *s = 20).unwrap());
        p.publish(|s| *s = 10);
        let seen = take(&mut c, 3);
        t.join().unwrap();
        assert!(seen == [10, 20, 20] || seen == [20, 20, 10], "{seen:?}");
    });
}

#[test]
fn pipeline_consumer_waits_for_its_upstream() {
    model(|| {
        let mut b = RingBuilder::new(2, BusySpin, || 0u64).unwrap();
        let first = b.add_consumer(&[]).unwrap();
        b.add_consumer(&[first]).unwrap();
        let (mut p, mut cs) = b.build_single_producer().unwrap();
        let mut second = cs.pop().unwrap();
        let mut first = cs.pop().unwrap();
        let first_saw = Arc::new(AtomicBool::new(false));
        let flag = first_saw.clone();
        let t = thread::spawn(move || {
            first.poll(|e, _, _| {
                assert_eq!(*e, 5);
                flag.store(true, Ordering::Relaxed);
            })
        });
        p.publish(|s| *s = 5);
        // The main thread is the downstream consumer: when it sees the event, the
        // upstream's effects must be visible (Relaxed here: only the ring orders it).
        second.poll(|e, _, _| {
            assert_eq!(*e, 5);
            assert!(
                first_saw.load(Ordering::Relaxed),
                "downstream ran before upstream"
            );
        });
        assert_eq!(t.join().unwrap(), 1);
    });
}

#[test]
fn blocking_strategy_never_loses_a_wakeup() {
    model(|| {
        let mut b = RingBuilder::new(1, Blocking::new(0, StdPark::new()), || 0u64).unwrap();
        b.add_consumer(&[]).unwrap();
        let (mut p, mut cs) = b.build_single_producer().unwrap();
        let mut c = cs.pop().unwrap();
        let t = thread::spawn(move || take(&mut c, 1));
        p.publish(|s| *s = 1);
        assert_eq!(t.join().unwrap(), [1]);
    });
}

#[test]
fn mpsc_one_producer_wraps_a_one_slot_ring() {
    model(|| {
        let mut b = RingBuilder::new(1, BusySpin, || 0u64).unwrap();
        b.add_consumer(&[]).unwrap();
        let (p, mut cs) = b.build_multi_producer().unwrap();
        let mut c = cs.pop().unwrap();
        let t = thread::spawn(move || {
            p.publish(|s| *s = 1);
            p.publish(|s| *s = 2);
        });
        assert_eq!(take(&mut c, 2), [1, 2]);
        t.join().unwrap();
    });
}

/// Two producers on a one-slot ring: the second claim must wait for the
/// consumer. Three threads that may all spin: checked with a preemption
/// bound of 1 (with 2, loom exceeds its branch limit on the spinning paths).
#[test]
fn mpsc_two_producers_wrap_a_one_slot_ring() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(1);
    b.check(|| {
        let mut b = RingBuilder::new(1, BusySpin, || 0u64).unwrap();
        b.add_consumer(&[]).unwrap();
        let (p, mut cs) = b.build_multi_producer().unwrap();
        let mut c = cs.pop().unwrap();
        let p2 = p.clone();
        let t1 = thread::spawn(move || p.publish(|s| *s = 1));
        let t2 = thread::spawn(move || p2.publish(|s| *s = 2));
        let mut seen = take(&mut c, 2);
        t1.join().unwrap();
        t2.join().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
    });
}
