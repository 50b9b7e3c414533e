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
