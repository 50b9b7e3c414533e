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
