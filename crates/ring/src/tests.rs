//! Single-threaded unit tests of the ring's bookkeeping: capacity, gating,
//! batching and the consumer graph. Concurrency lives in `tests/prop.rs`
//! (threads, random graphs) and `tests/loom.rs` (model checking).

use super::*;
use alloc::vec;

fn drain<T: Copy + Send + Sync, W: WaitStrategy>(c: &mut Consumer<T, W>) -> Vec<T> {
    let mut out = Vec::new();
    c.try_poll(|e, _, _| out.push(*e));
    out
}

#[test]
fn rejects_capacities_that_are_not_powers_of_two() {
    for cap in [0usize, 3, 6, 100] {
        let err = RingBuilder::new(cap, BusySpin, || 0u8).err();
        assert_eq!(err, Some(BuildError::CapacityNotPowerOfTwo(cap)));
    }
    assert!(RingBuilder::new(1, BusySpin, || 0u8).is_ok());
    assert!(RingBuilder::new(64, BusySpin, || 0u8).is_ok());
}

#[test]
fn rejects_rings_without_consumers_and_unknown_dependencies() {
    let b = RingBuilder::new(4, BusySpin, || 0u8).unwrap();
    assert!(matches!(
        b.build_single_producer(),
        Err(BuildError::NoConsumers)
    ));
    let b = RingBuilder::new(4, BusySpin, || 0u8).unwrap();
    assert!(matches!(
        b.build_multi_producer(),
        Err(BuildError::NoConsumers)
    ));
    let mut b = RingBuilder::new(4, BusySpin, || 0u8).unwrap();
    assert_eq!(
        b.add_consumer(&[ConsumerId(0)]),
        Err(BuildError::UnknownConsumer(0))
    );
}

#[test]
fn full_ring_refuses_until_the_slowest_consumer_advances() {
    let mut b = RingBuilder::new(4, BusySpin, || 0u32).unwrap();
    b.add_consumer(&[]).unwrap();
    b.add_consumer(&[]).unwrap();
    let (mut p, mut cs) = b.build_single_producer().unwrap();
    p.try_publish_batch(4, |s, seq| *s = seq as u32).unwrap();
    assert_eq!(p.try_publish_batch(1, |_, _| {}), Err(PublishError::Full));
    // One consumer catching up is not enough: the other still holds the slots.
    assert_eq!(drain(&mut cs[0]), [0, 1, 2, 3]);
    assert_eq!(p.try_publish_batch(1, |_, _| {}), Err(PublishError::Full));
    assert_eq!(drain(&mut cs[1]), [0, 1, 2, 3]);
    p.try_publish_batch(3, |s, seq| *s = seq as u32).unwrap();
    assert_eq!(drain(&mut cs[0]), [4, 5, 6]);
    assert_eq!(
        p.try_publish_batch(5, |_, _| {}),
        Err(PublishError::BatchTooLarge {
            requested: 5,
            capacity: 4
        })
    );
}

#[test]
fn batches_are_reported_with_end_of_batch_and_advance_once() {
    let mut b = RingBuilder::new(8, BusySpin, || 0u64).unwrap();
    b.add_consumer(&[]).unwrap();
    let (mut p, mut cs) = b.build_single_producer().unwrap();
    p.publish_batch(3, |s, seq| *s = 100 + seq).unwrap();
    let mut seen = vec![];
    let n = cs[0].try_poll(|e, seq, end| seen.push((*e, seq, end)));
    assert_eq!(n, 3);
    assert_eq!(seen, [(100, 0, false), (101, 1, false), (102, 2, true)]);
    assert_eq!(cs[0].sequence(), 3);
    assert_eq!(cs[0].try_poll(|_, _, _| panic!("nothing is available")), 0);
}

#[test]
fn diamond_consumers_see_events_only_after_their_upstreams() {
    let mut b = RingBuilder::new(8, BusySpin, || 0u64).unwrap();
    let a = b.add_consumer(&[]).unwrap();
    let l = b.add_consumer(&[a]).unwrap();
    let r = b.add_consumer(&[a]).unwrap();
    let d = b.add_consumer(&[l, r]).unwrap();
    let (p, mut cs) = b.build_multi_producer().unwrap();
    assert_eq!(cs[d.index()].id(), d);
    p.publish_batch(2, |s, seq| *s = seq + 1).unwrap();
    // Nothing flows past a consumer that has not run yet.
    assert!(drain(&mut cs[l.index()]).is_empty());
    assert!(drain(&mut cs[d.index()]).is_empty());
    assert_eq!(drain(&mut cs[a.index()]), [1, 2]);
    assert_eq!(drain(&mut cs[l.index()]), [1, 2]);
    assert!(
        drain(&mut cs[d.index()]).is_empty(),
        "d must wait for r too"
    );
    assert_eq!(drain(&mut cs[r.index()]), [1, 2]);
    assert_eq!(drain(&mut cs[d.index()]), [1, 2]);
}

#[test]
fn producers_gate_on_the_last_consumers_of_a_pipeline() {
    let mut b = RingBuilder::new(2, BusySpin, || 0u8).unwrap();
    let a = b.add_consumer(&[]).unwrap();
    let _z = b.add_consumer(&[a]).unwrap();
    let (p, mut cs) = b.build_multi_producer().unwrap();
    p.try_publish_batch(2, |s, _| *s = 7).unwrap();
    assert_eq!(drain(&mut cs[0]), [7, 7]);
    // `a` is done but `z` is not: the slots are still in use.
    assert_eq!(p.try_publish_batch(1, |_, _| {}), Err(PublishError::Full));
    assert_eq!(drain(&mut cs[1]), [7, 7]);
    p.try_publish_batch(1, |s, _| *s = 9).unwrap();
    assert_eq!(drain(&mut cs[0]), [9]);
}

#[test]
fn multi_producer_consumer_stops_at_the_first_unpublished_claim() {
    let mut b = RingBuilder::new(8, BusySpin, || 0u64).unwrap();
    b.add_consumer(&[]).unwrap();
    let (p, mut cs) = b.build_multi_producer().unwrap();
    let shared = p.shared.clone();
    // Claim 0..2 without publishing (as a slow producer would), then publish 2..4.
    shared.cursor.fetch_add(2, Ordering::Relaxed);
    p.publish_batch(2, |s, seq| *s = seq).unwrap();
    assert!(drain(&mut cs[0]).is_empty());
    for seq in 0..2u64 {
        // SAFETY: test stands in for the producer that claimed 0..2; the ring is on its first lap.
        unsafe { shared.slot_mut(seq, |s| *s = seq) };
        shared.available[seq as usize].store(1, Ordering::Release);
    }
    assert_eq!(drain(&mut cs[0]), [0, 1, 2, 3]);
}

#[test]
fn sequences_wrap_around_the_ring_many_times() {
    let mut b = RingBuilder::new(4, BusySpin, || 0u64).unwrap();
    b.add_consumer(&[]).unwrap();
    let (p, mut cs) = b.build_multi_producer().unwrap();
    let mut expect = 0u64;
    for round in 0..100u64 {
        let n = (round % 4 + 1) as usize;
        p.publish_batch(n, |s, seq| *s = seq * 3).unwrap();
        for e in drain(&mut cs[0]) {
            assert_eq!(e, expect * 3);
            expect += 1;
        }
    }
    assert_eq!(expect, (0..100u64).map(|r| r % 4 + 1).sum::<u64>());
}

#[test]
fn yielding_strategy_calls_the_hook_after_its_spins() {
    use core::sync::atomic::AtomicUsize;
    let calls = AtomicUsize::new(0);
    let w = Yielding::new(3, || {
        calls.fetch_add(1, Ordering::Relaxed);
    });
    let mut tries = 0;
    let got = w.wait_until(|| {
        tries += 1;
        (tries == 10).then_some(tries)
    });
    assert_eq!(got, 10);
    // 9 failed checks: 3 spins, then 6 yields.
    assert_eq!(calls.load(Ordering::Relaxed), 6);
}
