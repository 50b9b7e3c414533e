//! Property tests with real threads: random ring sizes, producer counts,
//! batch sizes and consumer graphs (pipelines, diamonds, fans). Every consumer
//! must see every event exactly once, in the one global ring order, each
//! producer's events in the order it published them and each batch
//! contiguous, and never before all its upstream consumers processed it.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use bareflow_ring::{Blocking, RingBuilder, StdPark, WaitStrategy, Yielding};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Scenario {
    capacity: usize,
    multi: bool,
    /// Per producer, the sizes of the batches it publishes.
    batches: Vec<Vec<usize>>,
    /// Per consumer, a bitmask of the earlier consumers it runs after.
    after: Vec<u32>,
    blocking: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        0u32..=5,
        1usize..=3,
        any::<bool>(),
        1usize..=5,
        any::<bool>(),
    )
        .prop_flat_map(|(cap_log, producers, multi_if_one, consumers, blocking)| {
            let capacity = 1usize << cap_log;
            let batches =
                prop::collection::vec(prop::collection::vec(1..=capacity, 0..40), producers);
            let after = (0..consumers)
                .map(|i| {
                    if i == 0 {
                        Just(0u32).boxed()
                    } else {
                        (0u32..(1 << i)).boxed()
                    }
                })
                .collect::<Vec<_>>();
            (batches, after).prop_map(move |(batches, after)| Scenario {
                capacity,
                multi: producers > 1 || multi_if_one,
                batches,
                after,
                blocking,
            })
        })
}

const fn tag(producer: usize, k: u64) -> u64 {
    ((producer as u64) << 32) | k
}

/// Runs the scenario and returns, per consumer, the events in the order it saw them.
fn run<W: WaitStrategy + 'static>(s: &Scenario, wait: W) -> Result<Vec<Vec<u64>>, String> {
    let mut builder = RingBuilder::new(s.capacity, wait, || u64::MAX).map_err(|e| e.to_string())?;
    let mut deps = Vec::new();
    for (i, mask) in s.after.iter().enumerate() {
        deps.push(
            (0..i)
                .filter(|d| mask & (1 << d) != 0)
                .collect::<Vec<usize>>(),
        );
    }
    // Ids are handed out in order, so consumer i's id is the i-th returned.
    let mut ids = Vec::new();
    for d in &deps {
        let after: Vec<_> = d.iter().map(|&j| ids[j]).collect();
        ids.push(builder.add_consumer(&after).map_err(|e| e.to_string())?);
    }
    let total: u64 = s.batches.iter().flatten().map(|&n| n as u64).sum();
    let progress: Vec<AtomicU64> = (0..s.after.len()).map(|_| AtomicU64::new(0)).collect();
    let progress = &progress;

    let consume = |mut c: bareflow_ring::Consumer<u64, W>, deps: Vec<usize>| {
        let me = c.id().index();
        let mut seen = Vec::with_capacity(total as usize);
        let mut early = None;
        while (seen.len() as u64) < total {
            c.poll(|e, seq, _| {
                for &d in &deps {
                    if progress[d].load(Ordering::Acquire) <= seq && early.is_none() {
                        early = Some((seq, d));
                    }
                }
                seen.push(*e);
                progress[me].store(seq + 1, Ordering::Release);
            });
        }
        match early {
            Some((seq, d)) => Err(format!(
                "consumer {me} read event {seq} before upstream {d} did"
            )),
            None => Ok(seen),
        }
    };

    thread::scope(|scope| {
        let handles: Vec<_>;
        if s.multi {
            let (p, consumers) = builder.build_multi_producer().map_err(|e| e.to_string())?;
            handles = consumers
                .into_iter()
                .zip(deps)
                .map(|(c, d)| scope.spawn(move || consume(c, d)))
                .collect();
            for (pi, batches) in s.batches.iter().enumerate() {
                let p = p.clone();
                scope.spawn(move || {
                    let mut k = 0;
                    for &n in batches {
                        p.publish_batch(n, |slot, _| {
                            *slot = tag(pi, k);
                            k += 1;
                        })
                        .expect("batch sizes are at most the capacity");
                    }
                });
            }
        } else {
            let (mut p, consumers) = builder.build_single_producer().map_err(|e| e.to_string())?;
            handles = consumers
                .into_iter()
                .zip(deps)
                .map(|(c, d)| scope.spawn(move || consume(c, d)))
                .collect();
            let batches = &s.batches[0];
            scope.spawn(move || {
                let mut k = 0;
                for &n in batches {
                    p.publish_batch(n, |slot, _| {
                        *slot = tag(0, k);
                        k += 1;
                    })
                    .expect("batch sizes are at most the capacity");
                }
            });
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| "consumer thread panicked".to_string())?
            })
            .collect()
    })
}

fn check(s: &Scenario, seen: &[Vec<u64>]) -> Result<(), TestCaseError> {
    let order = &seen[0];
    for (i, other) in seen.iter().enumerate() {
        prop_assert_eq!(
            other,
            order,
            "consumer {} saw a different order than consumer 0",
            i
        );
    }
    let mut pos = Vec::new();
    for (pi, batches) in s.batches.iter().enumerate() {
        let count: u64 = batches.iter().map(|&n| n as u64).sum();
        let mine: Vec<(usize, u64)> = order
            .iter()
            .enumerate()
            .filter(|(_, e)| **e >> 32 == pi as u64)
            .map(|(i, e)| (i, *e))
            .collect();
        let expect: Vec<u64> = (0..count).map(|k| tag(pi, k)).collect();
        let got: Vec<u64> = mine.iter().map(|(_, e)| *e).collect();
        prop_assert_eq!(
            got,
            expect,
            "producer {}'s events lost, duplicated or reordered",
            pi
        );
        pos.push(mine.into_iter().map(|(i, _)| i).collect::<Vec<_>>());
    }
    // Each batch occupies consecutive ring sequences.
    for (pi, batches) in s.batches.iter().enumerate() {
        let mut k = 0;
        for &n in batches {
            let first = pos[pi][k];
            prop_assert_eq!(
                pos[pi][k + n - 1],
                first + n - 1,
                "producer {}'s batch at {} was split",
                pi,
                k
            );
            k += n;
        }
    }
    prop_assert_eq!(order.len(), s.batches.iter().flatten().sum::<usize>());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_consumer_sees_every_event_once_in_order(s in scenario()) {
        let seen = if s.blocking {
            run(&s, Blocking::new(16, StdPark::new()))
        } else {
            run(&s, Yielding::new(16, std::thread::yield_now))
        };
        let seen = seen.map_err(TestCaseError::fail)?;
        check(&s, &seen)?;
    }
}
