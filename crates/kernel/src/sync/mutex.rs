//! Mutex, RwLock, Condvar, Semaphore, Once.
use super::WaitQueue;
use crate::task;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

fn deadline_after(d: Duration) -> u64 {
    crate::time::monotonic_nanos().saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
}

/// Parks until `deadline` (None: forever). False once the deadline passed.
fn wait_until(deadline: Option<u64>) -> bool {
    match deadline {
        None => {
            task::park();
            true
        }
        Some(d) => {
            let now = crate::time::monotonic_nanos();
            if now >= d {
                return false;
            }
            task::park_timeout(Duration::from_nanos(d - now));
            crate::time::monotonic_nanos() < d
        }
    }
}

/// A blocking mutual-exclusion lock.
pub struct Mutex<T> {
    data: spin::Mutex<T>,
    owner: AtomicU64,
    waiters: WaitQueue,
}

/// Access to a [`Mutex`]'s data; unlocks on drop.
pub struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
    guard: Option<spin::MutexGuard<'a, T>>,
}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    pub const fn new(v: T) -> Self {
        Mutex { data: spin::Mutex::new(v), owner: AtomicU64::new(0), waiters: WaitQueue::new() }
    }

    /// Locks, blocking the thread while another holds it.
    ///
    /// # Panics
    /// If the calling thread already holds this mutex (a self-deadlock).
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.lock_until(None).expect("no deadline")
    }

    /// Locks, or gives up after `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.lock_until(Some(deadline_after(timeout)))
    }

    /// Locks if free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.data.try_lock().map(|g| self.acquired(g))
    }

    fn acquired<'a>(&'a self, g: spin::MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.owner.store(task::current().id(), Ordering::Relaxed);
        MutexGuard { lock: self, guard: Some(g) }
    }

    #[track_caller]
    fn lock_until(&self, deadline: Option<u64>) -> Option<MutexGuard<'_, T>> {
        let me = task::current().id();
        loop {
            if let Some(g) = self.data.try_lock() {
                return Some(self.acquired(g));
            }
            if self.owner.load(Ordering::Relaxed) == me {
                panic!(
                    "deadlock: thread {me:#x} ({}) locks a Mutex it already holds",
                    task::current().name()
                );
            }
            self.waiters.enqueue();
            if let Some(g) = self.data.try_lock() {
                self.waiters.remove_current();
                return Some(self.acquired(g));
            }
            if !wait_until(deadline) {
                self.waiters.remove_current();
                return self.data.try_lock().map(|g| self.acquired(g));
            }
        }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held until drop")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("held until drop")
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.owner.store(0, Ordering::Relaxed);
        self.guard = None;
        self.lock.waiters.wake_one();
    }
}

/// A condition variable, used with a [`Mutex`].
pub struct Condvar {
    waiters: WaitQueue,
}

impl Default for Condvar {
    fn default() -> Self {
        Self::new()
    }
}

impl Condvar {
    /// A new condition variable.
    pub const fn new() -> Self {
        Condvar { waiters: WaitQueue::new() }
    }

    /// Unlocks, waits for a notification, locks again.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until(guard, None).0
    }

    /// Like `wait`, giving up after `timeout`; the bool is true on timeout.
    pub fn wait_timeout<'a, T>(&self, guard: MutexGuard<'a, T>, timeout: Duration) -> (MutexGuard<'a, T>, bool) {
        self.wait_until(guard, Some(deadline_after(timeout)))
    }

    fn wait_until<'a, T>(&self, guard: MutexGuard<'a, T>, deadline: Option<u64>) -> (MutexGuard<'a, T>, bool) {
        let lock = guard.lock;
        self.waiters.enqueue();
        drop(guard);
        let in_time = wait_until(deadline);
        self.waiters.remove_current();
        (lock.lock(), !in_time)
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.waiters.wake_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.waiters.wake_all();
    }
}

/// A blocking readers-writer lock.
pub struct RwLock<T> {
    data: spin::RwLock<T>,
    waiters: WaitQueue,
}

/// Shared access to an [`RwLock`].
pub struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    guard: Option<spin::RwLockReadGuard<'a, T>>,
}

/// Exclusive access to an [`RwLock`].
pub struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    guard: Option<spin::RwLockWriteGuard<'a, T>>,
}

impl<T> RwLock<T> {
    /// A new unlocked lock.
    pub const fn new(v: T) -> Self {
        RwLock { data: spin::RwLock::new(v), waiters: WaitQueue::new() }
    }

    /// Shared access, blocking while a writer holds it.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        loop {
            if let Some(g) = self.data.try_read() {
                return RwLockReadGuard { lock: self, guard: Some(g) };
            }
            self.waiters.enqueue();
            if let Some(g) = self.data.try_read() {
                self.waiters.remove_current();
                return RwLockReadGuard { lock: self, guard: Some(g) };
            }
            task::park();
        }
    }

    /// Exclusive access, blocking while anyone holds it.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        loop {
            if let Some(g) = self.data.try_write() {
                return RwLockWriteGuard { lock: self, guard: Some(g) };
            }
            self.waiters.enqueue();
            if let Some(g) = self.data.try_write() {
                self.waiters.remove_current();
                return RwLockWriteGuard { lock: self, guard: Some(g) };
            }
            task::park();
        }
    }
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held until drop")
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.guard = None;
        self.lock.waiters.wake_all();
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held until drop")
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("held until drop")
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.guard = None;
        self.lock.waiters.wake_all();
    }
}

/// A counting semaphore.
pub struct Semaphore {
    permits: AtomicUsize,
    waiters: WaitQueue,
}

impl Semaphore {
    /// A semaphore with `n` permits.
    pub const fn new(n: usize) -> Self {
        Semaphore { permits: AtomicUsize::new(n), waiters: WaitQueue::new() }
    }

    fn try_take(&self) -> bool {
        self.permits.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| p.checked_sub(1)).is_ok()
    }

    /// Takes a permit, blocking while there is none.
    pub fn acquire(&self) {
        self.acquire_until(None);
    }

    /// Takes a permit, or gives up after `timeout` (false).
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_until(Some(deadline_after(timeout)))
    }

    fn acquire_until(&self, deadline: Option<u64>) -> bool {
        loop {
            if self.try_take() {
                return true;
            }
            self.waiters.enqueue();
            if self.try_take() {
                self.waiters.remove_current();
                return true;
            }
            if !wait_until(deadline) {
                self.waiters.remove_current();
                return self.try_take();
            }
        }
    }

    /// Gives a permit back.
    pub fn release(&self) {
        self.permits.fetch_add(1, Ordering::AcqRel);
        self.waiters.wake_one();
    }

    /// Permits available now.
    pub fn available(&self) -> usize {
        self.permits.load(Ordering::Acquire)
    }
}

/// Runs an initialiser exactly once; other callers block until it is done.
pub struct Once {
    done: AtomicBool,
    lock: Mutex<()>,
}

impl Default for Once {
    fn default() -> Self {
        Self::new()
    }
}

impl Once {
    /// A new, not yet run, `Once`.
    pub const fn new() -> Self {
        Once { done: AtomicBool::new(false), lock: Mutex::new(()) }
    }

    /// Runs `f` if no call has yet; returns when it has run.
    pub fn call_once(&self, f: impl FnOnce()) {
        if self.done.load(Ordering::Acquire) {
            return;
        }
        let _g = self.lock.lock();
        if !self.done.load(Ordering::Acquire) {
            f();
            self.done.store(true, Ordering::Release);
        }
    }

    /// True once the initialiser has run.
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}
