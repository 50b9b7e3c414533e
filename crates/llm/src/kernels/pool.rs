//! A spinning worker pool that implements [`Parallel`] without knowing how
//! threads are made: [`WorkerPool::new`] returns [`Worker`]s, and the host
//! (a `std::thread::scope` hosted, kernel threads in the image) runs each
//! worker's [`Worker::run`] on its own thread.
//!
//! Protocol: the caller publishes a job (a pointer to a `&dyn Fn(usize)` on its
//! own stack) and then `state = (epoch << 32) | 0`; every thread, the caller
//! included, claims task indices with a compare-and-swap on `state` that only
//! succeeds in the same epoch; the caller returns when `done == n_tasks`. A task
//! claimed in epoch `e` keeps the caller inside `run` for epoch `e`, so the job
//! pointer read before the claim is still the live one when it is called.
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::parallel::Parallel;

type Job<'a> = &'a (dyn Fn(usize) + Sync);

struct Shared {
    state: AtomicU64,
    n_tasks: AtomicUsize,
    job: AtomicPtr<()>,
    done: AtomicUsize,
    stop: AtomicBool,
}

/// The caller's side of the pool.
pub struct WorkerPool {
    shared: Arc<Shared>,
    threads: usize,
    epoch: AtomicU32,
}

/// One worker; hand it to a thread and call [`Worker::run`].
pub struct Worker {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "WorkerPool({} threads)", self.threads)
    }
}

impl core::fmt::Debug for Worker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Worker")
    }
}

impl WorkerPool {
    /// A pool of `threads` threads in all: the caller plus `threads - 1`
    /// returned workers.
    pub fn new(threads: usize) -> (WorkerPool, Vec<Worker>) {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            n_tasks: AtomicUsize::new(0),
            job: AtomicPtr::new(core::ptr::null_mut()),
            done: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let workers = (1..threads.max(1)).map(|_| Worker { shared: shared.clone() }).collect();
        (WorkerPool { shared, threads: threads.max(1), epoch: AtomicU32::new(0) }, workers)
    }

    /// Tells the workers to return from [`Worker::run`] (also done on drop).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Claims and runs tasks of `epoch` until none are left.
fn work(shared: &Shared, epoch: u32) {
    loop {
        let s = shared.state.load(Ordering::Acquire);
        if (s >> 32) as u32 != epoch {
            return;
        }
        let n = shared.n_tasks.load(Ordering::Relaxed);
        let idx = (s & 0xffff_ffff) as usize;
        if idx >= n {
            return;
        }
        let job = shared.job.load(Ordering::Relaxed);
        if shared
            .state
            .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // SAFETY: the claim succeeded in `epoch`, so the caller of `run` for
            // this epoch is still waiting for this task: the `Job` that `job`
            // points to (a local of that `run` call) is alive, and it was
            // published before `state` (release/acquire on `state`).
            let f: Job<'_> = unsafe { *(job as *const Job<'_>) };
            f(idx);
            shared.done.fetch_add(1, Ordering::Release);
        }
    }
}

impl Parallel for WorkerPool {
    fn threads(&self) -> usize {
        self.threads
    }

    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        if self.threads == 1 || n_tasks <= 1 {
            (0..n_tasks).for_each(task);
            return;
        }
        let job: Job<'_> = task;
        let sh = &*self.shared;
        let epoch = self.epoch.load(Ordering::Relaxed).wrapping_add(1);
        self.epoch.store(epoch, Ordering::Relaxed);
        sh.done.store(0, Ordering::Relaxed);
        sh.n_tasks.store(n_tasks, Ordering::Relaxed);
        sh.job.store(&job as *const Job<'_> as *mut (), Ordering::Relaxed);
        sh.state.store((epoch as u64) << 32, Ordering::Release);
        work(sh, epoch);
        while sh.done.load(Ordering::Acquire) < n_tasks {
            core::hint::spin_loop();
        }
    }
}

impl Worker {
    /// Serves jobs until the pool stops. `idle` is called after a while
    /// without work (e.g. `std::thread::yield_now`).
    pub fn run(&self, idle: &dyn Fn()) {
        let sh = &*self.shared;
        let mut seen = 0u32;
        let mut spins = 0u32;
        loop {
            if sh.stop.load(Ordering::Acquire) {
                return;
            }
            let epoch = (sh.state.load(Ordering::Acquire) >> 32) as u32;
            if epoch != seen {
                work(sh, epoch);
                seen = epoch;
                spins = 0;
            } else {
                spins = spins.saturating_add(1);
                if spins > 20_000 {
                    idle();
                } else {
                    core::hint::spin_loop();
                }
            }
        }
    }
}
