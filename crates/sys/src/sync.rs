//! Blocking synchronisation, the same API hosted (over `std::sync`) and in
//! the image (the kernel's blocking primitives): `Mutex`, `Condvar`, and
//! channels in [`mpsc`]. Locks do not poison.


#[cfg(not(target_os = "none"))]
mod imp {
    use std::ops::{Deref, DerefMut};
    use std::time::Duration;

    /// A mutual-exclusion lock.
    pub struct Mutex<T>(std::sync::Mutex<T>);
    /// Access to a [`Mutex`]'s data.
    pub struct MutexGuard<'a, T>(std::sync::MutexGuard<'a, T>);

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(v: T) -> Self {
            Mutex(std::sync::Mutex::new(v))
        }
        /// Locks, blocking while another thread holds it.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(self.0.lock().unwrap_or_else(|p| p.into_inner()))
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.0
        }
    }
    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.0
        }
    }

    /// A condition variable.
    #[derive(Default)]
    pub struct Condvar(std::sync::Condvar);

    impl Condvar {
        /// A new condition variable.
        pub const fn new() -> Self {
            Condvar(std::sync::Condvar::new())
        }
        /// Unlocks, waits for a notification, locks again.
        pub fn wait<'a, T>(&self, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            MutexGuard(self.0.wait(g.0).unwrap_or_else(|p| p.into_inner()))
        }
        /// Like `wait`, at most `timeout`; true if it timed out.
        pub fn wait_timeout<'a, T>(&self, g: MutexGuard<'a, T>, timeout: Duration) -> (MutexGuard<'a, T>, bool) {
            let (g, r) = self.0.wait_timeout(g.0, timeout).unwrap_or_else(|p| p.into_inner());
            (MutexGuard(g), r.timed_out())
        }
        /// Wakes one waiter.
        pub fn notify_one(&self) {
            self.0.notify_one()
        }
        /// Wakes all waiters.
        pub fn notify_all(&self) {
            self.0.notify_all()
        }
    }

    /// A readers-writer lock.
    pub struct RwLock<T>(std::sync::RwLock<T>);

    impl<T> RwLock<T> {
        /// A new unlocked lock.
        pub const fn new(v: T) -> Self {
            RwLock(std::sync::RwLock::new(v))
        }
        /// Shared access.
        pub fn read(&self) -> std::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|p| p.into_inner())
        }
        /// Exclusive access.
        pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|p| p.into_inner())
        }
    }

    /// A counting semaphore.
    pub struct Semaphore {
        permits: Mutex<usize>,
        cv: Condvar,
    }

    impl Semaphore {
        /// A semaphore with `n` permits.
        pub const fn new(n: usize) -> Self {
            Semaphore { permits: Mutex::new(n), cv: Condvar::new() }
        }
        /// Takes a permit, blocking while there is none.
        pub fn acquire(&self) {
            let mut p = self.permits.lock();
            while *p == 0 {
                p = self.cv.wait(p);
            }
            *p -= 1;
        }
        /// Takes a permit, or gives up after `timeout` (false).
        pub fn acquire_timeout(&self, timeout: Duration) -> bool {
            let end = std::time::Instant::now() + timeout;
            let mut p = self.permits.lock();
            while *p == 0 {
                let now = std::time::Instant::now();
                if now >= end {
                    return false;
                }
                p = self.cv.wait_timeout(p, end - now).0;
            }
            *p -= 1;
            true
        }
        /// Gives a permit back.
        pub fn release(&self) {
            *self.permits.lock() += 1;
            self.cv.notify_one();
        }
    }

    /// Runs an initialiser exactly once.
    pub struct Once(std::sync::Once);

    impl Once {
        /// A new `Once`.
        pub const fn new() -> Self {
            Once(std::sync::Once::new())
        }
        /// Runs `f` if nothing ran yet; returns when it has run.
        pub fn call_once(&self, f: impl FnOnce()) {
            self.0.call_once(f)
        }
    }

    /// Channels.
    pub mod mpsc {
        pub use std::sync::mpsc::{channel, sync_channel, Receiver, RecvError, SendError, Sender, SyncSender};
    }
}

#[cfg(target_os = "none")]
mod imp {
    pub use bareflow_kernel::sync::{Condvar, Mutex, MutexGuard, Once, RwLock, Semaphore};

    /// Channels.
    pub mod mpsc {
        pub use bareflow_kernel::sync::{channel, sync_channel, Receiver, RecvError, SendError, Sender};
        /// The sending half of a bounded channel (one type for both kinds here).
        pub type SyncSender<T> = Sender<T>;
    }
}

pub use imp::*;

