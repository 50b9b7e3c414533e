//! Messages per second through the Disruptor ring against crossbeam's
//! `ArrayQueue` and std's `sync_channel`, side by side in one run: each round
//! runs every contender once (A/B/C/A/B/C...), then medians and ratios are
//! printed. u64 messages, ring/queue capacity 1024, producers publish batches
//! of 64 (the ring claims and publishes a batch at once; the queues have no
//! batch API and push one by one). Waiting everywhere: spin 64 times, then
//! `thread::yield_now` (the machine's cores are shared).
//!
//! `cargo bench -p bareflow-ring` (env: RING_BENCH_MSGS, RING_BENCH_ROUNDS).
//! Besides the table, each median is printed as a `bench: <name> <value> msg/s`
//! line, which `cargo bareflow bench tasks` reads.

use std::hint::black_box;
use std::sync::mpsc::sync_channel;
use std::thread;
use std::time::Instant;

use bareflow_ring::{RingBuilder, Yielding};
use crossbeam_queue::ArrayQueue;

const CAPACITY: usize = 1024;
const BATCH: usize = 64;

fn wait() -> Yielding<fn()> {
    Yielding::new(64, thread::yield_now as fn())
}

/// Spins, then yields: the queues' equivalent of the ring's `Yielding` strategy.
struct Backoff(u32);
impl Backoff {
    fn snooze(&mut self) {
        if self.0 < 64 {
            self.0 += 1;
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// Runs `producers` producers of `msgs` messages in total and one consumer; returns msgs/s.
fn ring(msgs: u64, producers: u64) -> f64 {
    let mut b = RingBuilder::new(CAPACITY, wait(), || 0u64).expect("capacity is a power of two");
    b.add_consumer(&[]).expect("no dependencies");
    let per = msgs / producers;
    let start = Instant::now();
    let sum = if producers == 1 {
        let (mut p, mut cs) = b.build_single_producer().expect("one consumer");
        let mut c = cs.pop().expect("one consumer");
        thread::scope(|s| {
            s.spawn(move || {
                let mut v = 0;
                while v < per {
                    let n = BATCH.min((per - v) as usize);
                    p.publish_batch(n, |slot, _| {
                        *slot = v;
                        v += 1;
                    })
                    .expect("batch fits");
                }
            });
            let (mut got, mut sum) = (0u64, 0u64);
            while got < per {
                got += c.poll(|e, _, _| sum = sum.wrapping_add(*e)) as u64;
            }
            sum
        })
    } else {
        let (p, mut cs) = b.build_multi_producer().expect("one consumer");
        let mut c = cs.pop().expect("one consumer");
        thread::scope(|s| {
            for _ in 0..producers {
                let p = p.clone();
                s.spawn(move || {
                    let mut v = 0;
                    while v < per {
                        let n = BATCH.min((per - v) as usize);
                        p.publish_batch(n, |slot, _| {
                            *slot = v;
                            v += 1;
                        })
                        .expect("batch fits");
                    }
                });
            }
            let (mut got, mut sum) = (0u64, 0u64);
            while got < per * producers {
                got += c.poll(|e, _, _| sum = sum.wrapping_add(*e)) as u64;
            }
            sum
        })
    };
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        sum,
        producers * per * (per - 1) / 2,
        "ring lost or duplicated messages"
    );
    msgs as f64 / secs
}

fn array_queue(msgs: u64, producers: u64) -> f64 {
    let q = ArrayQueue::<u64>::new(CAPACITY);
    let per = msgs / producers;
    let start = Instant::now();
    let sum = thread::scope(|s| {
        for _ in 0..producers {
            let q = &q;
            s.spawn(move || {
                let mut v = 0;
                while v < per {
                    for _ in 0..BATCH.min((per - v) as usize) {
                        let mut b = Backoff(0);
                        while q.push(v).is_err() {
                            b.snooze();
                        }
                        v += 1;
                    }
                }
            });
        }
        let (mut got, mut sum) = (0u64, 0u64);
        let mut b = Backoff(0);
        while got < per * producers {
            match q.pop() {
                Some(e) => {
                    sum = sum.wrapping_add(e);
                    got += 1;
                    b.0 = 0;
                }
                None => b.snooze(),
            }
        }
        sum
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        sum,
        producers * per * (per - 1) / 2,
        "ArrayQueue lost messages"
    );
    msgs as f64 / secs
}

fn channel(msgs: u64, producers: u64) -> f64 {
    let (tx, rx) = sync_channel::<u64>(CAPACITY);
    let per = msgs / producers;
    let start = Instant::now();
    let sum = thread::scope(|s| {
        for _ in 0..producers {
            let tx = tx.clone();
            s.spawn(move || {
                for v in 0..per {
                    tx.send(v).expect("receiver lives until all are sent");
                }
            });
        }
        drop(tx);
        rx.iter().fold(0u64, |a, e| a.wrapping_add(e))
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        sum,
        producers * per * (per - 1) / 2,
        "sync_channel lost messages"
    );
    msgs as f64 / secs
}

/// One thread alternates "publish a batch of 64" and "consume it": the CPU
/// cost per message with no cross-core traffic and no scheduler in the way
/// (the threaded figures depend on both, and this machine's cores are shared).
fn ring_one_thread(msgs: u64) -> f64 {
    let mut b = RingBuilder::new(CAPACITY, wait(), || 0u64).expect("capacity is a power of two");
    b.add_consumer(&[]).expect("no dependencies");
    let (mut p, mut cs) = b.build_single_producer().expect("one consumer");
    let c = &mut cs[0];
    let start = Instant::now();
    let mut sum = 0u64;
    let mut v = 0u64;
    while v < msgs {
        p.publish_batch(BATCH, |slot, _| {
            *slot = v;
            v += 1;
        })
        .expect("batch fits");
        c.try_poll(|e, _, _| sum = sum.wrapping_add(*e));
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(sum, v * (v - 1) / 2, "ring lost messages");
    v as f64 / secs
}

fn array_queue_one_thread(msgs: u64) -> f64 {
    let q = ArrayQueue::<u64>::new(CAPACITY);
    let start = Instant::now();
    let mut sum = 0u64;
    let mut v = 0u64;
    while v < msgs {
        for _ in 0..BATCH {
            q.push(v).expect("a batch fits the empty queue");
            v += 1;
        }
        while let Some(e) = q.pop() {
            sum = sum.wrapping_add(e);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(sum, v * (v - 1) / 2, "ArrayQueue lost messages");
    v as f64 / secs
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let msgs = env("RING_BENCH_MSGS", 4_000_000);
    let rounds = env("RING_BENCH_ROUNDS", 7) as usize;
    let (mut r, mut q) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        r.push(black_box(ring_one_thread(msgs)));
        q.push(black_box(array_queue_one_thread(msgs)));
    }
    let (r, q) = (median(&mut r), median(&mut q));
    println!("one thread, batch of {BATCH} in then out, {msgs} msgs, median of {rounds}:");
    println!("  ring          {:>8.1} M msgs/s", r / 1e6);
    println!(
        "  ArrayQueue    {:>8.1} M msgs/s   ring/ArrayQueue = {:.2}x",
        q / 1e6,
        r / q
    );
    println!("bench: hosted_one_thread_ring_msgs_per_s {r:.0} msg/s");
    println!("bench: hosted_one_thread_arrayqueue_msgs_per_s {q:.0} msg/s");
    for producers in [1u64, 2] {
        let mut r = Vec::new();
        let mut q = Vec::new();
        let mut c = Vec::new();
        for _ in 0..rounds {
            r.push(black_box(ring(msgs, producers)));
            q.push(black_box(array_queue(msgs, producers)));
            c.push(black_box(channel(msgs, producers)));
        }
        let (r, q, c) = (median(&mut r), median(&mut q), median(&mut c));
        let kind = if producers == 1 {
            "SPSC"
        } else {
            "MPSC (2 producers)"
        };
        println!(
            "{kind}, u64, batches of {BATCH}, capacity {CAPACITY}, {msgs} msgs, median of {rounds}:"
        );
        println!("  ring          {:>8.1} M msgs/s", r / 1e6);
        println!(
            "  ArrayQueue    {:>8.1} M msgs/s   ring/ArrayQueue = {:.2}x",
            q / 1e6,
            r / q
        );
        println!(
            "  sync_channel  {:>8.1} M msgs/s   ring/sync_channel = {:.2}x",
            c / 1e6,
            r / c
        );
        let tag = if producers == 1 { "spsc" } else { "mpsc2" };
        println!("bench: hosted_{tag}_ring_msgs_per_s {r:.0} msg/s");
        println!("bench: hosted_{tag}_arrayqueue_msgs_per_s {q:.0} msg/s");
        println!("bench: hosted_{tag}_sync_channel_msgs_per_s {c:.0} msg/s");
    }
}
