//! Blocking synchronisation for threads: [`Mutex`], [`RwLock`], [`Condvar`],
//! [`Semaphore`], [`Once`], and channels ([`channel`], [`sync_channel`]).
//!
//! Every type parks the waiting thread (the CPU runs something else or
//! halts) instead of spinning; spin locks are only for interrupt context
//! (`hal::task::IrqMutex`). Every blocking call has a variant with a timeout.
//! A thread that locks a [`Mutex`] it already holds, or asks an [`RwLock`]
//! for access it can never get because it holds the lock already (write
//! while reading or writing, read while writing), is a certain deadlock:
//! that is detected and reported as a panic naming the thread. The check is
//! an owner comparison on the slow path only, so it is on in every build.
mod channel;
mod mutex;
mod wait;

pub use channel::{channel, sync_channel, Receiver, RecvError, SendError, SendTimeoutError, Sender, TryRecvError};
pub use mutex::{Condvar, Mutex, MutexGuard, Once, RwLock, RwLockReadGuard, RwLockWriteGuard, Semaphore};
pub(crate) use wait::WaitQueue;

/// A `bareflow_ring` wait strategy made for fibers: while another thread is
/// ready on this CPU it yields at once (spinning cannot help then: the side
/// being waited for may be that very thread, which runs only when we yield);
/// with nobody else here it spins `spins` times, then yields, like
/// `bareflow_ring::Yielding`. [`fiber_wait_step`] is the same policy for any
/// other spin-wait (a lock-free queue's, say).
#[derive(Debug, Clone, Copy)]
pub struct FiberWait {
    spins: u32,
}

impl FiberWait {
    /// Spins up to `spins` times (only while this CPU has nothing else to run), then yields.
    pub const fn new(spins: u32) -> Self {
        FiberWait { spins }
    }
}

impl bareflow_ring::WaitStrategy for FiberWait {
    fn wait_until<R>(&self, mut ready: impl FnMut() -> Option<R>) -> R {
        let mut tries = 0;
        loop {
            if let Some(r) = ready() {
                return r;
            }
            fiber_wait_step(&mut tries, self.spins);
        }
    }

    fn signal(&self) {}
}

/// One idle step of a spin-wait, [`FiberWait`]'s policy: `tries` counts the
/// steps so far (start at 0); yields if another thread is ready on this CPU
/// (looked at every 16th step: it takes the run queue's lock) or after
/// `spins` steps, else spins once.
pub fn fiber_wait_step(tries: &mut u32, spins: u32) {
    let others_here = tries.is_multiple_of(16) && crate::task::others_ready_here();
    if *tries < spins && !others_here {
        *tries += 1;
        core::hint::spin_loop();
    } else {
        crate::task::yield_now();
    }
}

/// Parking for `bareflow_ring`'s blocking wait strategy, on the kernel's
/// Mutex and Condvar (the condition is re-checked under the lock that
/// `unpark_all` takes, so no wake-up is lost).
pub struct RingPark {
    lock: Mutex<()>,
    cv: Condvar,
}

impl Default for RingPark {
    fn default() -> Self {
        Self::new()
    }
}

impl RingPark {
    /// A new parker.
    pub const fn new() -> Self {
        RingPark { lock: Mutex::new(()), cv: Condvar::new() }
    }
}

impl bareflow_ring::Park for RingPark {
    fn park(&self, still_blocked: &dyn Fn() -> bool) {
        let mut g = self.lock.lock();
        while still_blocked() {
            g = self.cv.wait(g);
        }
    }

    fn unpark_all(&self) {
        let _g = self.lock.lock();
        self.cv.notify_all();
    }
}
