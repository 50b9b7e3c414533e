//! Threads (fibers) and the per-CPU scheduler, LWKT style.
//!
//! - Each CPU owns a run queue and the threads on it; only that CPU runs,
//!   queues or dequeues them. A thread changes CPU only by an explicit
//!   hand-off ([`migrate_to`]).
//! - Other CPUs never touch a queue: a wake-up or hand-off for a thread of
//!   CPU `c` is a message posted to `c`'s inbox, with an IPI that wakes `c` if
//!   it is halted. `c` drains its inbox whenever it schedules.
//! - Scheduling is cooperative ([`yield_now`], blocking) plus preemption: at
//!   each timer tick a thread whose time slice is used up yields to a waiting
//!   one, so a busy loop cannot starve the others.
//! - An idle CPU halts (`sti; hlt`) until an interrupt: a tick, or a wake IPI.
//!
//! Threads are `&'static`: a finished thread's context (and stack) is kept
//! and reused by the next spawn, so nothing is freed while a CPU may still be
//! switching away from it.
mod sched;
mod thread;

pub use sched::{
    available_parallelism, cpu_count, current_cpu, init, migrate_to, others_ready_here, start_secondary_cpus, stats, CpuStats,
};
pub use thread::{
    current, park, park_timeout, sleep, sleep_until, spawn, spawn_on, yield_now, JoinHandle, Thread, ThreadId,
};

/// Runs `f` with a scope in which closures borrowing local data may be
/// spawned as threads; all of them have finished when `scope` returns.
pub fn scope<'env, R>(f: impl for<'s> FnOnce(&'s bareflow_hal::task::Scope<'s, 'env>) -> R) -> R {
    bareflow_hal::task::scope(
        &|job| {
            // No thread to be had: run the job here rather than lose it.
            if let Err(job) = thread::spawn_job(job) {
                job();
            }
        },
        &|| {
            let _ = park_timeout(core::time::Duration::from_micros(200));
        },
        f,
    )
}

/// Runs `f(i)` for every `i` in `0..n`, spread over the CPUs (one thread per
/// CPU, each taking a contiguous block of indices; the caller takes the first).
pub fn parallel_for(n: usize, f: &(dyn Fn(usize) + Sync)) {
    let cpus = available_parallelism().min(n.max(1));
    if cpus <= 1 {
        (0..n).for_each(f);
        return;
    }
    let chunk = n.div_ceil(cpus);
    scope(|s| {
        for c in 1..cpus {
            let lo = c * chunk;
            let hi = ((c + 1) * chunk).min(n);
            s.spawn(move || (lo..hi).for_each(f));
        }
        (0..chunk.min(n)).for_each(f);
    });
}
