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
    println!("ring: SPSC {got}/{N} in order in {spsc_ms} ms; MPSC {total}/{N}, per-producer order {order_ok}");
    if got == N && total == N && order_ok {
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
    0
}
