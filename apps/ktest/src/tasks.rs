//! Cases for threads, scheduling, timers, sync and task IDs (issue 4).
use bareflow_kernel::sync::{channel, sync_channel, Mutex};
use bareflow_kernel::task;
use bareflow_sys::prelude::*;
use bareflow_sys::time::{Duration, Instant};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Every CPU runs work; a parallel sum equals the serial one.
pub fn threads() -> i32 {
    let cpus = task::cpu_count();
    println!("threads: {cpus} cpus");
    let n = 4 * cpus;
    let handles: Vec<_> = (0..n)
        .map(|i| {
            task::spawn(move || {
                // Some real work so that threads overlap.
                let mut x = i as u64;
                for _ in 0..400_000 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                }
                (task::current_cpu(), x)
            })
            .expect("spawn")
        })
        .collect();
    let mut seen = vec![false; cpus];
    for h in handles {
        let (cpu, _) = h.join();
        seen[cpu] = true;
    }
    let list = |seen: &[bool]| seen.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i).collect::<Vec<_>>();
    println!("threads: spawned threads ran on cpus {:?}", list(&seen));
    let data: Vec<u64> = (0..1_000_000u64).map(|i| i * i % 1_000_003).collect();
    let serial: u64 = data.iter().sum();
    let chunk = data.len().div_ceil(cpus);
    let parts: Vec<AtomicU64> = (0..cpus).map(|_| AtomicU64::new(0)).collect();
    let ran_on: Vec<AtomicU64> = (0..cpus).map(|_| AtomicU64::new(0)).collect();
    task::parallel_for(cpus, &|c| {
        let lo = c * chunk;
        let hi = ((c + 1) * chunk).min(data.len());
        parts[c].store(data[lo..hi].iter().sum(), Ordering::Relaxed);
        ran_on[task::current_cpu()].fetch_add(1, Ordering::Relaxed);
    });
    for (c, n) in ran_on.iter().enumerate() {
        seen[c] |= n.load(Ordering::Relaxed) > 0;
    }
    println!("threads: work ran on cpus {:?}", list(&seen));
    let parallel: u64 = parts.iter().map(|p| p.load(Ordering::Relaxed)).sum();
    println!("threads: serial sum {serial}, parallel sum {parallel}");
    let all = seen.iter().all(|s| *s);
    if all && serial == parallel {
        println!("threads: ok");
        0
    } else {
        println!("threads: FAILED (all cpus ran: {all})");
        1
    }
}

/// 100k messages through channels and the ring, in order, none lost.
pub fn channels() -> i32 {
    const N: u64 = 100_000;
    let t0 = Instant::now();
    let (tx, rx) = sync_channel::<u64>(256);
    let producer = task::spawn_on(1.min(task::cpu_count() - 1), "producer", move || {
        for i in 0..N {
            tx.send(i).expect("receiver alive");
        }
    })
    .expect("spawn");
    let mut expect = 0;
    while let Ok(v) = rx.recv() {
        if v != expect {
            println!("channels: got {v}, expected {expect}");
            return 1;
        }
        expect += 1;
    }
    producer.join();
    println!("channels: bounded channel {expect}/{N} in order in {} ms", t0.elapsed().as_millis());
    // Unbounded, two producers: each producer's messages in order, none lost.
    let (tx, rx) = channel::<(u8, u64)>();
    let tx2 = tx.clone();
    let a = task::spawn(move || (0..N / 2).for_each(|i| tx.send((0, i)).expect("alive"))).expect("spawn");
    let b = task::spawn(move || (0..N / 2).for_each(|i| tx2.send((1, i)).expect("alive"))).expect("spawn");
    let mut next = [0u64; 2];
    while let Ok((p, v)) = rx.recv() {
        if v != next[p as usize] {
            println!("channels: producer {p} sent {v}, expected {}", next[p as usize]);
            return 1;
        }
        next[p as usize] += 1;
    }
    a.join();
    b.join();
    println!("channels: unbounded 2-producer {}/{N}", next[0] + next[1]);
    if expect == N && next == [N / 2, N / 2] {
        println!("channels: ok");
        0
    } else {
        1
    }
}

/// A busy loop does not starve a sleeper on the same CPU.
pub fn preempt() -> i32 {
    static STOP: AtomicBool = AtomicBool::new(false);
    let busy = task::spawn_on(0, "busy", || {
        let mut n = 0u64;
        while !STOP.load(Ordering::Relaxed) {
            n = n.wrapping_add(1);
        }
        n
    })
    .expect("spawn");
    let sleeper = task::spawn_on(0, "sleeper", || {
        let mut late_max = 0u64;
        for _ in 0..5 {
            let t = Instant::now();
            task::sleep(Duration::from_millis(20));
            late_max = late_max.max(t.elapsed().as_millis() as u64);
        }
        late_max
    })
    .expect("spawn");
    let worst = sleeper.join();
    STOP.store(true, Ordering::Relaxed);
    let spins = busy.join();
    let st = task::stats(0);
    println!("preempt: sleeper's worst 20 ms sleep took {worst} ms beside a busy loop ({spins} spins); cpu0 preemptions {}", st.preemptions);
    if worst < 80 && st.preemptions > 0 {
        println!("preempt: ok");
        0
    } else {
        println!("preempt: FAILED");
        1
    }
}

/// Deadlines fire within the stated tolerance: never early, at most 10 ms late
/// (the LAPIC timer is armed one-shot for the earliest deadline; typically < 1 ms
/// late, the rest is slack for TCG on a loaded host).
pub fn deadlines() -> i32 {
    let mut worst_late = 0i64;
    let mut early = false;
    for ms in [5u64, 20, 50] {
        let t = Instant::now();
        task::sleep(Duration::from_millis(ms));
        let took = t.elapsed().as_micros() as i64;
        early |= took < (ms * 1000) as i64;
        worst_late = worst_late.max(took - (ms * 1000) as i64);
    }
    // park_timeout and a timed channel receive.
    // On a fresh thread (no unpark token left over from earlier joins).
    let (timed_out, park_ms) = task::spawn(|| {
        let t = Instant::now();
        let timed_out = task::park_timeout(Duration::from_millis(30));
        (timed_out, t.elapsed().as_millis())
    })
    .expect("spawn")
    .join();
    let (_tx, rx) = channel::<u8>();
    let t = Instant::now();
    let r = rx.recv_timeout(Duration::from_millis(30));
    let recv_ms = t.elapsed().as_millis();
    static M: Mutex<u32> = Mutex::new(0);
    let g = M.lock();
    let other = task::spawn(|| {
        let t = Instant::now();
        let got = M.lock_timeout(Duration::from_millis(30)).is_some();
        (got, t.elapsed().as_millis())
    })
    .expect("spawn");
    let (got, lock_ms) = other.join();
    drop(g);
    println!("deadlines: worst lateness {} us, early {early}; park_timeout {timed_out} after {park_ms} ms; recv_timeout {r:?} after {recv_ms} ms; lock_timeout got={got} after {lock_ms} ms", worst_late);
    let ok = !early
        && worst_late < 10_000
        && timed_out
        && (30..50).contains(&park_ms)
        && r.is_err()
        && (30..50).contains(&recv_ms)
        && !got
        && (30..50).contains(&lock_ms);
    println!("deadlines: {}", if ok { "ok" } else { "FAILED" });
    if ok { 0 } else { 1 }
}

/// Re-locking a Mutex from its owner is caught (panics, exit 101).
pub fn deadlock() -> i32 {
    let m = Mutex::new(1);
    let _a = m.lock();
    println!("deadlock: locking again from the same thread...");
    let _b = m.lock();
    println!("deadlock: NOT detected");
    1
}

/// 1M task IDs without collision; the first IDs, to compare across boots.
pub fn ids() -> i32 {
    let mut v: Vec<u64> = (0..1_000_000u64).map(bareflow_kernel::ids::task_id).collect();
    println!("ids: first {:#018x} {:#018x}", v[0], v[1]);
    let sequential = v.windows(2).filter(|w| w[1] == w[0] + 1).count();
    v.sort_unstable();
    let dups = v.windows(2).filter(|w| w[0] == w[1]).count();
    println!("ids: 1000000 ids, {dups} duplicates, {sequential} sequential neighbours");
    if dups == 0 && sequential < 10 { 0 } else { 1 }
}

/// 100k messages through the Disruptor ring between threads on different
/// CPUs, in order, none lost: single producer (blocking wait, batches) and
/// two producers (yielding wait).
pub fn ring() -> i32 {
    use bareflow_kernel::sync::RingPark;
    use bareflow_ring::{Blocking, RingBuilder, Yielding};
    const N: u64 = 100_000;
    let other = 1.min(task::cpu_count() - 1);
    // SPSC with a blocking consumer, batches of 64.
    let mut b = RingBuilder::new(1024, Blocking::new(100, RingPark::new()), || 0u64).expect("ring");
    b.add_consumer(&[]).expect("consumer");
    let (mut producer, mut consumers) = b.build_single_producer().expect("build");
    let mut consumer = consumers.pop().expect("one consumer");
    let t0 = Instant::now();
    let p = task::spawn_on(other, "ring-producer", move || {
        let mut next = 0u64;
        while next < N {
            let n = 64.min(N - next) as usize;
            producer.publish_batch(n, |slot, seq| *slot = seq * 3).expect("batch fits");
            next += n as u64;
        }
    })
    .expect("spawn");
    let mut got = 0u64;
    let mut bad = None;
    while got < N {
        consumer.poll(|v, seq, _| {
            if *v != seq * 3 || seq != got {
                bad.get_or_insert((seq, *v, got));
            }
            got += 1;
        });
    }
    p.join();
    let spsc_ms = t0.elapsed().as_millis();
    if let Some((seq, v, at)) = bad {
        println!("ring: SPSC out of order: seq {seq} value {v} at {at}");
        return 1;
    }
    // MPSC, two producers on two CPUs, yielding wait.
    let mut b = RingBuilder::new(512, Yielding::new(50, task::yield_now), || (0u8, 0u64)).expect("ring");
    b.add_consumer(&[]).expect("consumer");
    let (producer, mut consumers) = b.build_multi_producer().expect("build");
    let mut consumer = consumers.pop().expect("one consumer");
    let producer = alloc::sync::Arc::new(producer);
    let hs: Vec<_> = (0..2u8)
        .map(|id| {
            let pr = producer.clone();
            task::spawn(move || (0..N / 2).for_each(|i| pr.publish(|slot| *slot = (id, i)))).expect("spawn")
        })
        .collect();
    let mut next = [0u64; 2];
    let mut total = 0;
    let mut order_ok = true;
    while total < N {
        consumer.poll(|&(id, i), _, _| {
            order_ok &= next[id as usize] == i;
            next[id as usize] += 1;
            total += 1;
        });
    }
    for h in hs {
        h.join();
    }
    // SPSC between two threads of this CPU with the kernel's FiberWait.
    let mut b = RingBuilder::new(256, bareflow_kernel::sync::FiberWait::new(64), || 0u64).expect("ring");
    b.add_consumer(&[]).expect("consumer");
    let (mut producer, mut consumers) = b.build_single_producer().expect("build");
    let mut consumer = consumers.pop().expect("one consumer");
    let p = task::spawn_on(task::current_cpu(), "ring-fiber-p", move || {
        let mut next = 0u64;
        while next < N {
            let n = 48.min(N - next) as usize;
            producer.publish_batch(n, |slot, seq| *slot = seq ^ 0x5555).expect("batch fits");
            next += n as u64;
        }
    })
    .expect("spawn");
    let mut fib = 0u64;
    let mut fib_ok = true;
    while fib < N {
        consumer.poll(|v, seq, _| {
            fib_ok &= *v == seq ^ 0x5555 && seq == fib;
            fib += 1;
        });
    }
    p.join();
    println!("ring: SPSC {got}/{N} in order in {spsc_ms} ms; MPSC {total}/{N}, per-producer order {order_ok}; one-CPU FiberWait {fib}/{N} in order {fib_ok}");
    if got == N && total == N && order_ok && fib == N && fib_ok {
        println!("ring: ok");
        0
    } else {
        1
    }
}

/// Measurements for `cargo bareflow bench tasks`, one `bench: <name> <value> <unit>` line each.
pub fn bench() -> i32 {
    use bareflow_kernel::sync::RingPark;
    use bareflow_ring::{Blocking, RingBuilder};
    use core::sync::atomic::AtomicU32;
    let ns = |t: Instant| t.elapsed().as_nanos() as f64;
    // Context switch on one CPU: two threads yielding to each other.
    const SWITCHES: u32 = 20_000;
    static TURN: AtomicU32 = AtomicU32::new(0);
    let t = Instant::now();
    let a = task::spawn_on(0, "yield-a", || {
        for _ in 0..SWITCHES / 2 {
            task::yield_now();
        }
    })
    .expect("spawn");
    let b = task::spawn_on(0, "yield-b", || {
        for _ in 0..SWITCHES / 2 {
            TURN.fetch_add(1, Ordering::Relaxed);
            task::yield_now();
        }
    })
    .expect("spawn");
    a.join();
    b.join();
    println!("bench: context_switch_ns {:.0} ns", ns(t) / SWITCHES as f64);
    // Spawn + join.
    const SPAWNS: u32 = 2_000;
    let t = Instant::now();
    for i in 0..SPAWNS {
        let h = task::spawn_on(0, "short", move || i).expect("spawn");
        h.join();
    }
    println!("bench: spawn_join_ns {:.0} ns", ns(t) / SPAWNS as f64);
    // Cross-CPU wake-up: ping-pong over two bounded channels between CPU 0 and CPU 1.
    if task::cpu_count() > 1 {
        const PINGS: u32 = 2_000;
        let (tx1, rx1) = sync_channel::<u32>(1);
        let (tx2, rx2) = sync_channel::<u32>(1);
        let h = task::spawn_on(1, "pong", move || {
            while let Ok(v) = rx1.recv() {
                if tx2.send(v).is_err() {
                    break;
                }
            }
        })
        .expect("spawn");
        let t = Instant::now();
        for i in 0..PINGS {
            tx1.send(i).expect("pong alive");
            rx2.recv().expect("pong alive");
        }
        println!("bench: cross_cpu_roundtrip_ns {:.0} ns", ns(t) / PINGS as f64);
        drop(tx1);
        h.join();
    }
    // Messages per second: the ring (SPSC, batches of 64) and a bounded channel, producer on another CPU.
    const MSGS: u64 = 200_000;
    let other = 1.min(task::cpu_count() - 1);
    let mut bld = RingBuilder::new(1024, Blocking::new(200, RingPark::new()), || 0u64).expect("ring");
    bld.add_consumer(&[]).expect("consumer");
    let (mut producer, mut consumers) = bld.build_single_producer().expect("build");
    let mut consumer = consumers.pop().expect("consumer");
    let t = Instant::now();
    let p = task::spawn_on(other, "ring-p", move || {
        let mut sent = 0;
        while sent < MSGS {
            producer.publish_batch(64, |s, seq| *s = seq).expect("fits");
            sent += 64;
        }
    })
    .expect("spawn");
    let mut got = 0u64;
    while got < MSGS {
        got += consumer.poll(|_, _, _| {}) as u64;
    }
    p.join();
    println!("bench: ring_msgs_per_s {:.0} msg/s", MSGS as f64 / (ns(t) / 1e9));
    let (tx, rx) = sync_channel::<u64>(1024);
    let t = Instant::now();
    let p = task::spawn_on(other, "chan-p", move || (0..MSGS).for_each(|i| tx.send(i).expect("alive"))).expect("spawn");
    let mut n = 0;
    while rx.recv().is_ok() {
        n += 1;
    }
    p.join();
    println!("bench: channel_msgs_per_s {:.0} msg/s ({n} msgs)", MSGS as f64 / (ns(t) / 1e9));
    bench_ring_vs_array_queue(other);
    0
}

/// The ring against crossbeam's `ArrayQueue` (built no_std for the image) in
/// the image, the same shapes as the hosted bench: u64 messages, capacity
/// 1024, the producer publishes batches of 64 (the ring claims and publishes
/// a batch at once; the queue has no batch API and pushes one by one), both
/// sides wait by spinning 64 times, then yielding. SPSC across two CPUs (and
/// again with both waiting by the ring's `Blocking` strategy: spin, then park,
/// so that a waiting vCPU halts and leaves the host core to the other),
/// SPSC between two threads of one CPU (they take turns through the yields:
/// no host scheduling in the figure), the same with the kernel's `FiberWait`
/// policy on both (no spinning while the other side is ready here), and one
/// thread alternating a batch in and out (the CPU cost per message).
/// Each pair runs A/B/A/B for `ROUNDS` rounds; medians are printed (the
/// vCPUs share the host's two cores with everything else, so single runs
/// vary by several times).
fn bench_ring_vs_array_queue(other: usize) {
    const ROUNDS: usize = 7;
    let mut lost = false;
    use bareflow_kernel::sync::{fiber_wait_step, FiberWait};
    use bareflow_ring::Yielding;
    let here = task::current_cpu();
    let yielding = || Yielding::new(64, task::yield_now as fn());
    let fiber_step = |t: &mut u32| fiber_wait_step(t, 64);
    use bareflow_kernel::sync::RingPark;
    use bareflow_ring::Blocking;
    let mut figures: [Vec<f64>; 10] = Default::default();
    for _ in 0..ROUNDS {
        let runs = [
            spsc_ring(other, yielding()),
            spsc_array_queue(other, backoff),
            spsc_ring(other, Blocking::new(64, RingPark::new())),
            spsc_array_queue_blocking(other),
            spsc_ring(here, yielding()),
            spsc_array_queue(here, backoff),
            spsc_ring(here, FiberWait::new(64)),
            spsc_array_queue(here, fiber_step),
            one_thread_ring(),
            one_thread_array_queue(),
        ];
        for (f, (v, ok)) in figures.iter_mut().zip(runs) {
            f.push(v);
            lost |= !ok;
        }
    }
    let names = ["spsc_ring", "spsc_arrayqueue", "spsc_blocking_ring", "spsc_blocking_arrayqueue", "same_cpu_spsc_ring", "same_cpu_spsc_arrayqueue", "same_cpu_fiberwait_ring", "same_cpu_fiberwait_arrayqueue", "one_thread_ring", "one_thread_arrayqueue"];
    for (name, f) in names.iter().zip(&figures) {
        let m: Vec<u64> = f.iter().map(|v| (*v / 1e6) as u64).collect();
        println!("rounds: {name} {m:?} M msg/s");
    }
    let mut paired_blocking: Vec<f64> = figures[2].iter().zip(&figures[3]).map(|(a, b)| a / b).collect();
    paired_blocking.sort_by(f64::total_cmp);
    let paired_blocking = paired_blocking[paired_blocking.len() / 2];
    println!("bench: spsc_blocking_ring_over_arrayqueue_paired {paired_blocking:.3} x");
    let [r, q, rb, qb, rf, qf, rw, qw, r1, q1] = figures.clone().map(|mut v| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    });
    // Each round's ring figure over the ArrayQueue figure measured right after
    // it: the pairs share the host's conditions better than the medians do.
    let mut paired: Vec<f64> = figures[0].iter().zip(&figures[1]).map(|(a, b)| a / b).collect();
    paired.sort_by(f64::total_cmp);
    let paired = paired[paired.len() / 2];
    println!("bench: spsc_ring_over_arrayqueue_paired {paired:.3} x");
    println!("bench: spsc_ring_msgs_per_s {r:.0} msg/s");
    println!("bench: spsc_arrayqueue_msgs_per_s {q:.0} msg/s");
    println!("bench: spsc_blocking_ring_msgs_per_s {rb:.0} msg/s");
    println!("bench: spsc_blocking_arrayqueue_msgs_per_s {qb:.0} msg/s");
    println!("bench: same_cpu_spsc_ring_msgs_per_s {rf:.0} msg/s");
    println!("bench: same_cpu_spsc_arrayqueue_msgs_per_s {qf:.0} msg/s");
    println!("bench: same_cpu_fiberwait_ring_msgs_per_s {rw:.0} msg/s");
    println!("bench: same_cpu_fiberwait_arrayqueue_msgs_per_s {qw:.0} msg/s");
    println!("bench: one_thread_ring_msgs_per_s {r1:.0} msg/s");
    println!("bench: one_thread_arrayqueue_msgs_per_s {q1:.0} msg/s");
    if lost {
        println!("bench: messages lost or duplicated in the ring/ArrayQueue runs");
    }
}

const BQ_MSGS: u64 = 1_000_000;
const BQ_CAP: usize = 1024;
const BQ_BATCH: u64 = 64;

fn per_s(n: u64, t: Instant) -> f64 {
    n as f64 / (t.elapsed().as_nanos() as f64 / 1e9)
}

/// Spins 64 times, then yields (the queue's equivalent of the ring's `Yielding`).
fn backoff(spins: &mut u32) {
    if *spins < 64 {
        *spins += 1;
        core::hint::spin_loop();
    } else {
        task::yield_now();
    }
}

/// SPSC with the producer on CPU `other` (this CPU: two fibers taking turns).
fn spsc_ring<W: bareflow_ring::WaitStrategy + 'static>(other: usize, wait: W) -> (f64, bool) {
    use bareflow_ring::RingBuilder;
    let mut b = RingBuilder::new(BQ_CAP, wait, || 0u64).expect("ring");
    b.add_consumer(&[]).expect("consumer");
    let (mut producer, mut consumers) = b.build_single_producer().expect("build");
    let mut consumer = consumers.pop().expect("consumer");
    let t = Instant::now();
    let p = task::spawn_on(other, "ring-y-p", move || {
        let mut v = 0u64;
        while v < BQ_MSGS {
            producer
                .publish_batch(BQ_BATCH.min(BQ_MSGS - v) as usize, |s, _| {
                    *s = v;
                    v += 1;
                })
                .expect("fits");
        }
    })
    .expect("spawn");
    let (mut got, mut sum) = (0u64, 0u64);
    while got < BQ_MSGS {
        got += consumer.poll(|e, _, _| sum = sum.wrapping_add(*e)) as u64;
    }
    p.join();
    (per_s(BQ_MSGS, t), sum == BQ_MSGS * (BQ_MSGS - 1) / 2)
}

/// The same with an `ArrayQueue`, idling with `step` while full or empty.
fn spsc_array_queue(other: usize, step: fn(&mut u32)) -> (f64, bool) {
    use alloc::sync::Arc;
    use crossbeam_queue::ArrayQueue;
    let q = Arc::new(ArrayQueue::<u64>::new(BQ_CAP));
    let qp = q.clone();
    let t = Instant::now();
    let p = task::spawn_on(other, "aq-p", move || {
        let mut spins = 0;
        for v in 0..BQ_MSGS {
            while qp.push(v).is_err() {
                step(&mut spins);
            }
            spins = 0;
        }
    })
    .expect("spawn");
    let (mut got, mut sum, mut spins) = (0u64, 0u64, 0u32);
    while got < BQ_MSGS {
        match q.pop() {
            Some(e) => {
                sum = sum.wrapping_add(e);
                got += 1;
                spins = 0;
            }
            None => step(&mut spins),
        }
    }
    p.join();
    (per_s(BQ_MSGS, t), sum == BQ_MSGS * (BQ_MSGS - 1) / 2)
}

/// SPSC through an `ArrayQueue` with the ring's `Blocking` wait strategy
/// (spin 64 times, then park on the kernel's Mutex/Condvar) shared by both
/// sides; the queue has no batches, so each push and pop signals.
fn spsc_array_queue_blocking(other: usize) -> (f64, bool) {
    use alloc::sync::Arc;
    use bareflow_kernel::sync::RingPark;
    use bareflow_ring::{Blocking, WaitStrategy};
    use crossbeam_queue::ArrayQueue;
    let q = Arc::new(ArrayQueue::<u64>::new(BQ_CAP));
    let wait = Arc::new(Blocking::new(64, RingPark::new()));
    let (qp, wp) = (q.clone(), wait.clone());
    let t = Instant::now();
    let p = task::spawn_on(other, "aq-b-p", move || {
        for v in 0..BQ_MSGS {
            let mut item = Some(v);
            wp.wait_until(|| match qp.push(item.take()?) {
                Ok(()) => Some(()),
                Err(back) => {
                    item = Some(back);
                    None
                }
            });
            wp.signal();
        }
    })
    .expect("spawn");
    let (mut got, mut sum) = (0u64, 0u64);
    while got < BQ_MSGS {
        let e = wait.wait_until(|| q.pop());
        wait.signal();
        sum = sum.wrapping_add(e);
        got += 1;
    }
    p.join();
    (per_s(BQ_MSGS, t), sum == BQ_MSGS * (BQ_MSGS - 1) / 2)
}

fn one_thread_ring() -> (f64, bool) {
    use bareflow_ring::{RingBuilder, Yielding};
    let mut b = RingBuilder::new(BQ_CAP, Yielding::new(64, task::yield_now as fn()), || 0u64).expect("ring");
    b.add_consumer(&[]).expect("consumer");
    let (mut producer, mut consumers) = b.build_single_producer().expect("build");
    let c = &mut consumers[0];
    let t = Instant::now();
    let (mut v, mut sum) = (0u64, 0u64);
    while v < BQ_MSGS {
        producer
            .publish_batch(BQ_BATCH as usize, |s, _| {
                *s = v;
                v += 1;
            })
            .expect("fits");
        c.try_poll(|e, _, _| sum = sum.wrapping_add(*e));
    }
    (per_s(v, t), sum == v * (v - 1) / 2)
}

fn one_thread_array_queue() -> (f64, bool) {
    use crossbeam_queue::ArrayQueue;
    let q = ArrayQueue::<u64>::new(BQ_CAP);
    let t = Instant::now();
    let (mut w, mut sum) = (0u64, 0u64);
    while w < BQ_MSGS {
        for _ in 0..BQ_BATCH {
            if q.push(w).is_err() {
                break;
            }
            w += 1;
        }
        while let Some(e) = q.pop() {
            sum = sum.wrapping_add(e);
        }
    }
    (per_s(w, t), sum == w * (w - 1) / 2)
}

/// How late a timeout may fire under TCG (it must never fire early).
const TIMEOUT_SLACK_US: u64 = 20_000;

/// Runs `f`, returning its answer and how long it took in µs.
fn timed<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_micros() as u64)
}

/// A CPU other than this one, when there is one.
fn other_cpu() -> usize {
    (task::current_cpu() + 1) % task::cpu_count()
}

/// RwLock under real contention: writers keep `a == b` (with a yield between
/// the two halves of the update), readers check it; writers exclude everyone,
/// readers share.
pub fn rwlock() -> i32 {
    use bareflow_kernel::sync::RwLock;
    use core::sync::atomic::AtomicUsize;
    const WRITES: u64 = 300;
    const READS: u64 = 600;
    static L: RwLock<(u64, u64)> = RwLock::new((0, 0));
    static WRITERS_IN: AtomicUsize = AtomicUsize::new(0);
    static READERS_IN: AtomicUsize = AtomicUsize::new(0);
    static MAX_READERS: AtomicUsize = AtomicUsize::new(0);
    static BAD: AtomicU64 = AtomicU64::new(0);
    let cpus = task::cpu_count();
    let writers = cpus.max(2);
    let readers = 2 * cpus;
    let mut hs = Vec::new();
    for w in 0..writers {
        hs.push(
            task::spawn_on(w % cpus, "rw-writer", || {
                for _ in 0..WRITES {
                    let mut g = L.write();
                    if WRITERS_IN.fetch_add(1, Ordering::AcqRel) != 0 || READERS_IN.load(Ordering::Acquire) != 0 {
                        BAD.fetch_add(1, Ordering::Relaxed);
                    }
                    g.0 += 1;
                    task::yield_now();
                    g.1 += 1;
                    WRITERS_IN.fetch_sub(1, Ordering::AcqRel);
                    drop(g);
                    task::yield_now();
                }
            })
            .expect("spawn"),
        );
    }
    for r in 0..readers {
        hs.push(
            task::spawn_on(r % cpus, "rw-reader", || {
                for _ in 0..READS {
                    let g = L.read();
                    let inside = READERS_IN.fetch_add(1, Ordering::AcqRel) + 1;
                    MAX_READERS.fetch_max(inside, Ordering::Relaxed);
                    if WRITERS_IN.load(Ordering::Acquire) != 0 || g.0 != g.1 {
                        BAD.fetch_add(1, Ordering::Relaxed);
                    }
                    // Stay a while so that readers overlap.
                    for _ in 0..200 {
                        core::hint::spin_loop();
                    }
                    task::yield_now();
                    READERS_IN.fetch_sub(1, Ordering::AcqRel);
                    drop(g);
                }
            })
            .expect("spawn"),
        );
    }
    for h in hs {
        h.join();
    }
    let (a, b) = *L.read();
    let want = writers as u64 * WRITES;
    let bad = BAD.load(Ordering::Relaxed);
    let max_readers = MAX_READERS.load(Ordering::Relaxed);
    println!(
        "rwlock: {writers} writers x {WRITES}, {readers} readers x {READS} on {cpus} cpus: a={a} b={b} (want {want}), {bad} exclusion violations, up to {max_readers} readers at once"
    );
    // Readers share: with a yield inside every read section, several are in at once.
    if a == want && b == want && bad == 0 && max_readers > 1 {
        println!("rwlock: ok");
        0
    } else {
        println!("rwlock: FAILED");
        1
    }
}

/// A semaphore of 2 permits under contention: never more than 2 inside.
pub fn semaphore() -> i32 {
    use bareflow_kernel::sync::Semaphore;
    use core::sync::atomic::AtomicUsize;
    const PERMITS: usize = 2;
    const ROUNDS: u64 = 400;
    static S: Semaphore = Semaphore::new(PERMITS);
    static INSIDE: AtomicUsize = AtomicUsize::new(0);
    static MAX_INSIDE: AtomicUsize = AtomicUsize::new(0);
    static ENTRIES: AtomicU64 = AtomicU64::new(0);
    let cpus = task::cpu_count();
    let threads = 3 * cpus.max(2);
    let hs: Vec<_> = (0..threads)
        .map(|i| {
            task::spawn_on(i % cpus, "sem", || {
                for _ in 0..ROUNDS {
                    S.acquire();
                    let n = INSIDE.fetch_add(1, Ordering::AcqRel) + 1;
                    MAX_INSIDE.fetch_max(n, Ordering::Relaxed);
                    ENTRIES.fetch_add(1, Ordering::Relaxed);
                    task::yield_now();
                    INSIDE.fetch_sub(1, Ordering::AcqRel);
                    S.release();
                }
            })
            .expect("spawn")
        })
        .collect();
    for h in hs {
        h.join();
    }
    let max = MAX_INSIDE.load(Ordering::Relaxed);
    let entries = ENTRIES.load(Ordering::Relaxed);
    let left = S.available();
    println!(
        "semaphore: {threads} threads x {ROUNDS} on {cpus} cpus, {PERMITS} permits: {entries} entries, at most {max} inside at once, {left} permits left"
    );
    if entries == threads as u64 * ROUNDS && max <= PERMITS && max == PERMITS && left == PERMITS {
        println!("semaphore: ok");
        0
    } else {
        println!("semaphore: FAILED");
        1
    }
}

/// Once under contention: many threads on every CPU race into `call_once`;
/// the initialiser runs once per `Once`, and nobody returns before it finished.
pub fn once() -> i32 {
    use alloc::sync::Arc;
    use bareflow_kernel::sync::Once;
    use core::sync::atomic::AtomicUsize;
    const ROUNDS: u64 = 20;
    let cpus = task::cpu_count();
    let threads = 2 * cpus.max(2);
    let mut inits_total = 0;
    let mut early_total = 0;
    for round in 0..ROUNDS {
        struct Shared {
            once: Once,
            go: AtomicBool,
            inits: AtomicUsize,
            value: AtomicU64,
            early: AtomicUsize,
        }
        let s = Arc::new(Shared {
            once: Once::new(),
            go: AtomicBool::new(false),
            inits: AtomicUsize::new(0),
            value: AtomicU64::new(0),
            early: AtomicUsize::new(0),
        });
        let hs: Vec<_> = (0..threads)
            .map(|i| {
                let s = s.clone();
                task::spawn_on(i % cpus, "once", move || {
                    while !s.go.load(Ordering::Acquire) {
                        task::yield_now();
                    }
                    s.once.call_once(|| {
                        s.inits.fetch_add(1, Ordering::AcqRel);
                        // A slow initialiser, so that others arrive while it runs.
                        task::sleep(Duration::from_millis(2));
                        s.value.store(round + 1, Ordering::Release);
                    });
                    if s.value.load(Ordering::Acquire) != round + 1 || !s.once.is_completed() {
                        s.early.fetch_add(1, Ordering::AcqRel);
                    }
                })
                .expect("spawn")
            })
            .collect();
        s.go.store(true, Ordering::Release);
        for h in hs {
            h.join();
        }
        inits_total += s.inits.load(Ordering::Acquire);
        early_total += s.early.load(Ordering::Acquire);
    }
    println!(
        "once: {ROUNDS} rounds of {threads} threads on {cpus} cpus: {inits_total} initialiser runs (want {ROUNDS}), {early_total} callers returned before it finished"
    );
    if inits_total == ROUNDS as usize && early_total == 0 {
        println!("once: ok");
        0
    } else {
        println!("once: FAILED");
        1
    }
}

/// One timeout that must fire: it returned without the resource, not before
/// `ms`, and at most `TIMEOUT_SLACK_US` late.
fn fired(name: &str, (got, us): (bool, u64), ms: u64) -> bool {
    let ok = !got && us >= ms * 1000 && us < ms * 1000 + TIMEOUT_SLACK_US;
    println!("timeouts: {name} {ms} ms, nothing came: gave up after {us} us{}", if ok { "" } else { " FAILED" });
    ok
}

/// One timeout that must not fire: the resource came ~10 ms after the call
/// began (of a 2 s timeout); the call got it, having really waited.
fn in_time(name: &str, (got, us): (bool, u64)) -> bool {
    let ok = got && (5_000..500_000).contains(&us);
    println!("timeouts: {name} 2 s, freed after 10 ms: got={got} after {us} us{}", if ok { "" } else { " FAILED" });
    ok
}

/// Starts `f` as a thread on another CPU (when there is one) that says when it
/// begins, timed; returns once it began.
fn timed_waiter(f: impl FnOnce() -> bool + Send + 'static) -> task::JoinHandle<(bool, u64)> {
    use alloc::sync::Arc;
    let began = Arc::new(AtomicBool::new(false));
    let b = began.clone();
    let h = task::spawn_on(other_cpu(), "waiter", move || {
        b.store(true, Ordering::Release);
        timed(f)
    })
    .expect("spawn");
    while !began.load(Ordering::Acquire) {
        task::yield_now();
    }
    h
}

/// Runs `f` on a helper thread after 10 ms (to free a resource in time).
fn after_10ms(f: impl FnOnce() + Send + 'static) -> task::JoinHandle<()> {
    task::spawn_on(other_cpu(), "freer", move || {
        task::sleep(Duration::from_millis(10));
        f();
    })
    .expect("spawn")
}

/// Every blocking call's timeout fires within tolerance (never early, at most
/// 20 ms late) when the resource never comes, and does not fire when it comes
/// in time.
pub fn timeouts() -> i32 {
    use alloc::sync::Arc;
    use bareflow_kernel::sync::{Condvar, Once, RwLock, SendTimeoutError, Semaphore, TryRecvError};
    const T: u64 = 30;
    let short = Duration::from_millis(T);
    let long = Duration::from_secs(2);
    let mut ok = true;

    // Mutex::lock_timeout.
    let m = Arc::new(Mutex::new(0u32));
    let g = m.lock();
    let m2 = m.clone();
    ok &= fired("Mutex::lock_timeout", timed_waiter(move || m2.lock_timeout(short).is_some()).join(), T);
    let m2 = m.clone();
    let h = timed_waiter(move || m2.lock_timeout(long).is_some());
    task::sleep(Duration::from_millis(10));
    drop(g);
    ok &= in_time("Mutex::lock_timeout", h.join());

    // RwLock::read_timeout while a writer holds it; write_timeout while a reader does.
    let l = Arc::new(RwLock::new(0u32));
    let w = l.write();
    let l2 = l.clone();
    ok &= fired("RwLock::read_timeout", timed_waiter(move || l2.read_timeout(short).is_some()).join(), T);
    let l2 = l.clone();
    let h = timed_waiter(move || l2.read_timeout(long).is_some());
    task::sleep(Duration::from_millis(10));
    drop(w);
    ok &= in_time("RwLock::read_timeout", h.join());
    let r = l.read();
    let l2 = l.clone();
    ok &= fired("RwLock::write_timeout", timed_waiter(move || l2.write_timeout(short).is_some()).join(), T);
    let l2 = l.clone();
    let h = timed_waiter(move || l2.write_timeout(long).is_some());
    task::sleep(Duration::from_millis(10));
    drop(r);
    ok &= in_time("RwLock::write_timeout", h.join());

    // Semaphore::acquire_timeout.
    let s = Arc::new(Semaphore::new(0));
    ok &= fired("Semaphore::acquire_timeout", timed(|| s.acquire_timeout(short)), T);
    let s2 = s.clone();
    let f = after_10ms(move || s2.release());
    ok &= in_time("Semaphore::acquire_timeout", timed(|| s.acquire_timeout(long)));
    f.join();

    // Condvar::wait_timeout.
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    // One wait, no notify: the kernel's Condvar has no spurious wake-ups, so
    // this returns at the timeout.
    let (timed_out, us) = timed(|| pair.1.wait_timeout(pair.0.lock(), short).1);
    ok &= fired("Condvar::wait_timeout", (!timed_out, us), T);
    let p2 = pair.clone();
    let f = after_10ms(move || {
        *p2.0.lock() = true;
        p2.1.notify_all();
    });
    let r = timed(|| {
        let mut g = pair.0.lock();
        let t = Instant::now();
        while !*g {
            let left = long.saturating_sub(t.elapsed());
            if left.is_zero() {
                return false;
            }
            g = pair.1.wait_timeout(g, left).0;
        }
        true
    });
    ok &= in_time("Condvar::wait_timeout", r);
    f.join();

    // Sender::send_timeout on a full bounded channel.
    let (tx, rx) = sync_channel::<u32>(1);
    tx.send(1).expect("receiver alive");
    let r = timed(|| tx.send_timeout(2, short));
    let timeout_kind = matches!(r.0, Err(SendTimeoutError::Timeout(2)));
    ok &= timeout_kind;
    ok &= fired("Sender::send_timeout", (r.0.is_ok(), r.1), T);
    let f = task::spawn_on(other_cpu(), "drain", move || {
        task::sleep(Duration::from_millis(10));
        let a = rx.recv();
        let b = rx.recv();
        (a, b)
    })
    .expect("spawn");
    ok &= in_time("Sender::send_timeout", timed(|| tx.send_timeout(3, long).is_ok()));
    let (a, b) = f.join();
    let order_ok = a == Ok(1) && b == Ok(3);
    println!("timeouts: channel delivered {a:?} then {b:?}; the timed-out send's value came back: {timeout_kind}");
    ok &= order_ok;

    // Receiver::recv_timeout.
    let (tx, rx) = channel::<u32>();
    let r = timed(|| rx.recv_timeout(short));
    ok &= matches!(r.0, Err(TryRecvError::Empty));
    ok &= fired("Receiver::recv_timeout", (r.0.is_ok(), r.1), T);
    let f = after_10ms(move || tx.send(9).expect("receiver alive"));
    ok &= in_time("Receiver::recv_timeout", timed(|| rx.recv_timeout(long) == Ok(9)));
    f.join();

    // JoinHandle::join_timeout.
    let (go_tx, go_rx) = channel::<()>();
    let h = task::spawn_on(other_cpu(), "joinee", move || {
        let _ = go_rx.recv();
        5u32
    })
    .expect("spawn");
    let (r, us) = timed(|| h.join_timeout(short));
    let h = match r {
        Ok(v) => {
            println!("timeouts: join_timeout returned {v} from a thread that was blocked");
            return 1;
        }
        Err(h) => h,
    };
    ok &= fired("JoinHandle::join_timeout", (false, us), T);
    go_tx.send(()).expect("joinee alive");
    ok &= h.join_timeout(long).ok() == Some(5);
    let h = task::spawn_on(other_cpu(), "joinee", || {
        task::sleep(Duration::from_millis(10));
        6u32
    })
    .expect("spawn");
    ok &= in_time("JoinHandle::join_timeout", timed(|| h.join_timeout(long).ok() == Some(6)));

    // Once::call_once_timeout while another thread's initialiser runs.
    for (name, init_ms, wait, fire) in [("Once::call_once_timeout", 150u64, short, true), ("Once::call_once_timeout", 10, long, false)] {
        let o = Arc::new(Once::new());
        let started = Arc::new(AtomicBool::new(false));
        let (o2, s2) = (o.clone(), started.clone());
        let init = task::spawn_on(other_cpu(), "initialiser", move || {
            o2.call_once(|| {
                s2.store(true, Ordering::Release);
                task::sleep(Duration::from_millis(init_ms));
            })
        })
        .expect("spawn");
        while !started.load(Ordering::Acquire) {
            task::yield_now();
        }
        let mut ran_here = false;
        let r = timed(|| o.call_once_timeout(wait, || ran_here = true));
        ok &= !ran_here;
        ok &= if fire { fired(name, r, T) } else { in_time(name, r) };
        init.join();
        ok &= o.is_completed();
    }

    println!("timeouts: {}", if ok { "ok" } else { "FAILED" });
    if ok { 0 } else { 1 }
}

/// RwLock misuse from one thread, caught (panics, exit 101): `how` is
/// `write-after-read`, `read-after-write` or `write-after-write`. A second
/// read by a reader is fine and is done first.
pub fn rwlock_misuse(how: &str) -> i32 {
    use bareflow_kernel::sync::RwLock;
    let l = RwLock::new(1);
    {
        let a = l.read();
        let b = l.read();
        println!("rwlock-misuse: two reads by one thread share the lock ({} {})", *a, *b);
    }
    match how {
        "write-after-read" => {
            let _r = l.read();
            println!("rwlock-misuse: write-locking while this thread reads...");
            let _w = l.write();
        }
        "read-after-write" => {
            let _w = l.write();
            println!("rwlock-misuse: read-locking while this thread writes...");
            let _r = l.read();
        }
        "write-after-write" => {
            let _w = l.write();
            println!("rwlock-misuse: write-locking again while this thread writes...");
            let _w2 = l.write();
        }
        other => {
            println!("rwlock-misuse: unknown kind `{other}`");
            return 2;
        }
    }
    println!("rwlock-misuse: NOT detected");
    1
}

/// `migrate_to` hands the running thread to each CPU in turn, 10 round
/// trips: after each hand-off it runs there (the CPU it executes on, and the
/// CPU that owns it), and stays there across yields, a sleep and a busy
/// stretch (preemption by the tick).
pub fn migrate() -> i32 {
    const ROUNDS: usize = 10;
    let cpus = task::cpu_count();
    if cpus < 2 {
        println!("migrate: needs 2 cpus or more, have {cpus}");
        return 2;
    }
    let h = task::spawn_on(0, "migrant", move || {
        let mut path = alloc::vec![task::current_cpu()];
        let mut bad = Vec::new();
        let targets: Vec<usize> = (1..cpus).chain([0]).collect();
        for round in 0..ROUNDS {
            for &to in &targets {
                task::migrate_to(to);
                let (ran, owner) = (task::current_cpu(), task::current().cpu());
                if round == 0 {
                    path.push(ran);
                }
                if ran != to || owner != to {
                    bad.push((round, to, ran, owner, "right after"));
                }
                for _ in 0..3 {
                    task::yield_now();
                }
                task::sleep(Duration::from_millis(1));
                let t = Instant::now();
                let mut x = 0u64;
                while t.elapsed() < Duration::from_millis(if round == 0 { 25 } else { 3 }) {
                    x = core::hint::black_box(x.wrapping_add(1));
                }
                let (ran, owner) = (task::current_cpu(), task::current().cpu());
                if ran != to || owner != to {
                    bad.push((round, to, ran, owner, "after yields, a sleep and a busy stretch"));
                }
            }
        }
        (path, bad)
    })
    .expect("spawn");
    let (path, bad) = h.join();
    println!("migrate: ran on cpus {path:?}, then {} more round trips", ROUNDS - 1);
    for (round, to, ran, owner, when) in &bad {
        println!("migrate: round {round}, sent to cpu {to}, {when}: running on cpu {ran}, owned by cpu {owner}");
    }
    if bad.is_empty() {
        println!("migrate: ok");
        0
    } else {
        println!("migrate: FAILED");
        1
    }
}

/// TLB shootdown: a thread on the last CPU writes a page over and over (its
/// TLB holds the writable entry); CPU 0 makes the page read-only; the next
/// write on the other CPU must fault (exit 102, CR2 = the page). Had that CPU
/// kept its stale entry, the write would go through and this returns 1.
pub fn tlb() -> i32 {
    use bareflow_kernel::hal::selftest::ProbePage;
    static WRITES: AtomicU64 = AtomicU64::new(0);
    static READ_ONLY: AtomicBool = AtomicBool::new(false);
    let cpus = task::cpu_count();
    if cpus < 2 {
        println!("tlb: needs 2 cpus or more, have {cpus}");
        return 2;
    }
    let probe = match ProbePage::new() {
        Ok(p) => p,
        Err(e) => {
            println!("tlb: no probe page: {e:?}");
            return 1;
        }
    };
    println!("tlb: probe page at {:#018x}", probe.addr());
    let writer_cpu = cpus - 1;
    let w = task::spawn_on(writer_cpu, "tlb-writer", move || {
        let mut n = 0u64;
        while !READ_ONLY.load(Ordering::Acquire) {
            n += 1;
            probe.write(n);
            WRITES.store(n, Ordering::Release);
        }
        println!("tlb: cpu {} writes the page after cpu 0 made it read-only...", task::current_cpu());
        probe.write(u64::MAX);
        println!("tlb: the write went through: cpu {} kept a stale writable TLB entry", task::current_cpu());
    })
    .expect("spawn");
    while WRITES.load(Ordering::Acquire) < 10_000 {
        task::yield_now();
    }
    if let Err(e) = probe.make_read_only() {
        println!("tlb: protect failed: {e:?}");
        return 1;
    }
    let seen = probe.read();
    println!("tlb: cpu {} made the page read-only after {seen} writes from cpu {writer_cpu}", task::current_cpu());
    READ_ONLY.store(true, Ordering::Release);
    match w.join_timeout(Duration::from_secs(10)) {
        Ok(()) => println!("tlb: FAILED (value now {:#x})", probe.read()),
        Err(_) => println!("tlb: FAILED: the writer neither faulted nor finished"),
    }
    1
}

/// FP state across context switches: threads on one CPU, each with its own
/// SSE rounding mode and its own values, compute long float chains with
/// yields between steps (and get preempted inside them), and hold patterns
/// in all 16 vector registers (ymm with AVX) while spinning through ticks.
/// Each result must equal the one computed alone beforehand.
pub fn fpu() -> i32 {
    use bareflow_kernel::hal::cpu::{rounding, set_rounding, Rounding};
    use bareflow_kernel::hal::selftest::{hold_vector_registers, VectorFile};
    const STEPS: u32 = 40;
    const INNER: u32 = 20_000;
    const MODES: [Rounding; 4] = [Rounding::Nearest, Rounding::Down, Rounding::Up, Rounding::TowardZero];
    /// The float chain, `STEPS` steps of `INNER` iterations; `between` runs after each step.
    fn chain(seed: u32, mut between: impl FnMut()) -> u64 {
        let c = core::hint::black_box(1.000_000_1f64 + seed as f64 * 1e-9);
        let d = core::hint::black_box(0.333_333_333_333f64);
        let e = core::hint::black_box(1.000_000_07f64);
        let mut x = core::hint::black_box(1.0f64 + seed as f64);
        let mut y = core::hint::black_box(0.1f32 * seed as f32);
        // Negative: rounding down and toward zero differ only below zero.
        let mut z = core::hint::black_box(-1.0f64 - seed as f64);
        for _ in 0..STEPS {
            for _ in 0..INNER {
                x = x * c + d;
                x /= e;
                y = y * 1.000_1 + 0.7;
                y /= 1.000_13;
                z = z * c - d;
                z /= e;
            }
            // LLVM takes float math to ignore MXCSR and may move it across
            // the `ldmxcsr` of `set_rounding`; passing every step's values
            // through `black_box` (ordered with that asm) pins each step
            // between the mode changes around it.
            (x, y, z) = core::hint::black_box((x, y, z));
            between();
        }
        core::hint::black_box(x.to_bits() ^ ((y.to_bits() as u64) << 17) ^ z.to_bits().rotate_left(29))
    }
    fn pattern(t: usize) -> VectorFile {
        core::array::from_fn(|r| core::array::from_fn(|w| ((t as u64 + 1) << 56) | ((r as u64) << 8) | w as u64 | 0xa5a5_0000))
    }
    // References, one per thread, computed alone on this CPU.
    let n = MODES.len();
    let refs: Vec<u64> = (0..n)
        .map(|i| {
            set_rounding(MODES[i]);
            let r = chain(i as u32, || {});
            set_rounding(Rounding::Nearest);
            r
        })
        .collect();
    let distinct = (0..n).all(|i| (0..i).all(|j| refs[i] != refs[j]));
    let same_seed: Vec<u64> = MODES
        .iter()
        .map(|&m| {
            set_rounding(m);
            let r = chain(0, || {});
            set_rounding(Rounding::Nearest);
            r
        })
        .collect();
    let modes_matter = (0..n).all(|i| (0..i).all(|j| same_seed[i] != same_seed[j]));
    let pre = task::stats(0).preemptions;
    let hs: Vec<_> = (0..n)
        .map(|i| {
            task::spawn_on(0, "fpu", move || {
                set_rounding(MODES[i]);
                let mut mode_lost = 0u32;
                let mut clobbered = 0u16;
                let mut ymm = false;
                let pat = pattern(i);
                let r = chain(i as u32, || {
                    task::yield_now();
                    if rounding() != MODES[i] {
                        mode_lost += 1;
                    }
                    // Longer than the 10 ms slice: the tick preempts inside the hold.
                    let h = hold_vector_registers(&pat, 12_000_000);
                    clobbered |= h.clobbered;
                    ymm = h.ymm;
                    if rounding() != MODES[i] {
                        mode_lost += 1;
                    }
                });
                (r, mode_lost, clobbered, ymm)
            })
            .expect("spawn")
        })
        .collect();
    let mut ok = distinct && modes_matter;
    let mut ymm_used = false;
    for (i, h) in hs.into_iter().enumerate() {
        let (r, lost, clobbered, ymm) = h.join();
        ymm_used = ymm;
        let good = r == refs[i] && lost == 0 && clobbered == 0;
        println!(
            "fpu: thread {i} ({:?}): result {r:#018x}, alone {:#018x}, rounding mode lost {lost} times, clobbered registers {clobbered:#06x}{}",
            MODES[i],
            refs[i],
            if good { "" } else { " FAILED" }
        );
        ok &= good;
    }
    let preemptions = task::stats(0).preemptions - pre;
    println!(
        "fpu: {n} threads on cpu 0, {} registers held, {preemptions} preemptions; results differ by seed {distinct}, by rounding mode {modes_matter}",
        if ymm_used { "ymm0-15" } else { "xmm0-15" }
    );
    ok &= preemptions >= n as u64;
    println!("fpu: {}", if ok { "ok" } else { "FAILED" });
    if ok { 0 } else { 1 }
}
