//! The hosted backend of the thread and sync API behaves like the kernel's.
use bareflow_sys::sync::{mpsc, Condvar, Mutex, Once, RwLock, Semaphore};
use bareflow_sys::thread;
use std::time::Duration;

#[test]
fn scope_parallel_sum_equals_serial() {
    let data: Vec<u64> = (0..100_000).collect();
    let parts = Mutex::new(Vec::new());
    thread::scope(|s| {
        for chunk in data.chunks(25_000) {
            let parts = &parts;
            s.spawn(move || parts.lock().push(chunk.iter().sum::<u64>()));
        }
    });
    assert_eq!(parts.lock().iter().sum::<u64>(), data.iter().sum::<u64>());
}

#[test]
fn channels_keep_order() {
    let (tx, rx) = mpsc::sync_channel(8);
    let h = thread::spawn(move || (0..1000u32).for_each(|i| tx.send(i).unwrap()));
    let got: Vec<u32> = rx.iter().collect();
    h.join();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[test]
fn semaphore_times_out_and_counts() {
    let s = Semaphore::new(1);
    s.acquire();
    assert!(!s.acquire_timeout(Duration::from_millis(20)));
    s.release();
    assert!(s.acquire_timeout(Duration::from_millis(20)));
}

#[test]
fn condvar_wait_timeout_reports_timeout() {
    let m = Mutex::new(0);
    let cv = Condvar::new();
    let (_g, timed_out) = cv.wait_timeout(m.lock(), Duration::from_millis(10));
    assert!(timed_out);
}

#[test]
fn rwlock_and_once() {
    let l = RwLock::new(1);
    *l.write() += 1;
    assert_eq!(*l.read(), 2);
    let o = Once::new();
    let mut n = 0;
    o.call_once(|| n += 1);
    o.call_once(|| n += 1);
    assert_eq!(n, 1);
    assert!(thread::available_parallelism() >= 1);
}

/// Runs `f` and returns how long it took.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = std::time::Instant::now();
    let r = f();
    (r, t.elapsed())
}

#[test]
fn mutex_try_lock_and_lock_timeout() {
    let m = std::sync::Arc::new(Mutex::new(5));
    let g = m.lock();
    assert!(m.try_lock().is_none(), "try_lock succeeded on a held mutex");
    let m2 = m.clone();
    let h = thread::spawn(move || timed(|| m2.lock_timeout(Duration::from_millis(50)).is_some()));
    let (got, took) = h.join();
    assert!(!got, "lock_timeout got a mutex held elsewhere");
    assert!(took >= Duration::from_millis(50), "gave up early: {took:?}");
    // Released in time: the waiter gets it long before its timeout.
    let m2 = m.clone();
    let h = thread::spawn(move || timed(|| m2.lock_timeout(Duration::from_secs(10)).map(|g| *g)));
    thread::sleep(Duration::from_millis(20));
    drop(g);
    let (v, took) = h.join();
    assert_eq!(v, Some(5));
    assert!(took < Duration::from_secs(5), "waited {took:?} for a released mutex");
    assert_eq!(*m.try_lock().expect("free now"), 5);
}

#[test]
fn mutex_excludes_under_contention() {
    let m = Mutex::new(0u64);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    let mut g = m.lock();
                    let v = *g;
                    *g = v + 1;
                }
            });
        }
    });
    assert_eq!(*m.lock(), 40_000);
}

#[test]
fn condvar_wakes_a_waiter_before_its_timeout() {
    let pair = std::sync::Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = pair.clone();
    let h = thread::spawn(move || {
        timed(|| {
            let mut g = p2.0.lock();
            while !*g {
                let (ng, timed_out) = p2.1.wait_timeout(g, Duration::from_secs(10));
                g = ng;
                if timed_out {
                    return false;
                }
            }
            true
        })
    });
    thread::sleep(Duration::from_millis(20));
    *pair.0.lock() = true;
    pair.1.notify_all();
    let (woke, took) = h.join();
    assert!(woke && took < Duration::from_secs(5), "woke {woke} after {took:?}");
}

#[test]
fn rwlock_timeouts() {
    let l = std::sync::Arc::new(RwLock::new(1));
    let r = l.read();
    assert!(l.try_read().is_some(), "readers share");
    assert!(l.try_write().is_none(), "a writer got in beside a reader");
    let l2 = l.clone();
    let (got, took) = thread::spawn(move || timed(|| l2.write_timeout(Duration::from_millis(40)).is_some())).join();
    assert!(!got && took >= Duration::from_millis(40), "write_timeout: got {got} after {took:?}");
    drop(r);
    let w = l.write();
    let l2 = l.clone();
    let (got, took) = thread::spawn(move || timed(|| l2.read_timeout(Duration::from_millis(40)).is_some())).join();
    assert!(!got && took >= Duration::from_millis(40), "read_timeout: got {got} after {took:?}");
    let l2 = l.clone();
    let h = thread::spawn(move || timed(|| l2.read_timeout(Duration::from_secs(10)).map(|g| *g)));
    thread::sleep(Duration::from_millis(20));
    drop(w);
    let (v, took) = h.join();
    assert_eq!(v, Some(1));
    assert!(took < Duration::from_secs(5));
}

#[test]
fn once_timeout_while_another_initialises() {
    let o = std::sync::Arc::new(Once::new());
    let o2 = o.clone();
    let (tx, rx) = mpsc::channel();
    let init = thread::spawn(move || {
        o2.call_once(|| {
            tx.send(()).unwrap();
            thread::sleep(Duration::from_millis(150));
        })
    });
    rx.recv().unwrap();
    let mut ran = false;
    let (done, took) = timed(|| o.call_once_timeout(Duration::from_millis(30), || ran = true));
    assert!(!done && !ran && took >= Duration::from_millis(30), "done {done} ran {ran} after {took:?}");
    let (done, _) = timed(|| o.call_once_timeout(Duration::from_secs(10), || ran = true));
    assert!(done && !ran && o.is_completed());
    init.join();
}

#[test]
fn send_timeout_on_a_full_channel() {
    let (tx, rx) = mpsc::sync_channel::<u32>(1);
    tx.send(1).unwrap();
    let (r, took) = timed(|| tx.send_timeout(2, Duration::from_millis(30)));
    assert_eq!(r, Err(mpsc::SendTimeoutError::Timeout(2)));
    assert!(took >= Duration::from_millis(30));
    let h = thread::spawn(move || timed(|| tx.send_timeout(3, Duration::from_secs(10))));
    thread::sleep(Duration::from_millis(20));
    assert_eq!(rx.recv(), Ok(1));
    let (r, took) = h.join();
    assert!(r.is_ok() && took < Duration::from_secs(5));
    assert_eq!(rx.recv(), Ok(3));
    assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(mpsc::TryRecvError::Disconnected));
}

#[test]
fn join_timeout_gives_the_handle_back() {
    let (tx, rx) = mpsc::channel::<()>();
    let h = thread::spawn(move || {
        rx.recv().unwrap();
        42
    });
    let (r, took) = timed(|| h.join_timeout(Duration::from_millis(30)));
    let Err(h) = r else { panic!("a blocked thread cannot be joined") };
    assert!(took >= Duration::from_millis(30));
    tx.send(()).unwrap();
    assert_eq!(h.join_timeout(Duration::from_secs(10)).ok(), Some(42));
}

#[test]
#[should_panic(expected = "locks a Mutex it already holds")]
fn mutex_relock_by_its_holder_is_caught() {
    let m = Mutex::new(0);
    let _a = m.lock();
    let _b = m.lock();
}

#[test]
#[should_panic(expected = "write-locks an RwLock it already holds for reading")]
fn rwlock_write_while_reading_is_caught() {
    let l = RwLock::new(0);
    let _r = l.read();
    let _r2 = l.read(); // readers share: fine
    let _w = l.write();
}

#[test]
#[should_panic(expected = "read-locks an RwLock it already holds for writing")]
fn rwlock_read_while_writing_is_caught() {
    let l = RwLock::new(0);
    let _w = l.write();
    let _r = l.read();
}

#[test]
fn try_locks_by_the_holder_fail_without_panicking() {
    let m = Mutex::new(0);
    let _g = m.lock();
    assert!(m.try_lock().is_none());
    let l = RwLock::new(0);
    let _w = l.write();
    assert!(l.try_read().is_none() && l.try_write().is_none());
}
