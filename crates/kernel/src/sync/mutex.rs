//! Mutex, RwLock, Condvar, Semaphore, Once: each blocking call has a variant
//! with a timeout, and the locks detect a thread re-locking what it holds.
use super::WaitQueue;
use crate::task;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

/// The monotonic time `d` from now (saturating).
pub(super) fn deadline_after(d: Duration) -> u64 {
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
        // A notify takes the waiter off the queue; a park that ends while we
        // are still queued, before the deadline, was spurious (an unpark
        // token left from an earlier wait): wait on (regression: a
        // `wait_timeout` returned after 0.2 ms of a 30 ms timeout).
        let in_time = loop {
            let in_time = wait_until(deadline);
            if !in_time || !self.waiters.contains_current() {
                break in_time;
            }
        };
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

/// How many readers an [`RwLock`] remembers by thread (for misuse detection);
/// readers beyond that still get in, they are only not checked.
const READER_SLOTS: usize = 8;

/// A blocking readers-writer lock.
///
/// Like [`Mutex`], it knows who holds it: the writer's thread ID, and the
/// IDs of up to [`READER_SLOTS`] readers. A thread that asks for the lock in
/// a way it can never get because it holds it already (write while it reads
/// or writes, read while it writes) panics, naming itself, instead of
/// hanging forever. A second read by a reader is allowed (readers share).
pub struct RwLock<T> {
    data: spin::RwLock<T>,
    /// The writing thread's ID, 0 when none.
    writer: AtomicU64,
    /// IDs of reading threads (0: a free slot).
    readers: [AtomicU64; READER_SLOTS],
    waiters: WaitQueue,
}

/// Shared access to an [`RwLock`].
pub struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    guard: Option<spin::RwLockReadGuard<'a, T>>,
    /// The reader slot that holds this thread's ID, if one was free.
    slot: Option<usize>,
}

/// Exclusive access to an [`RwLock`].
pub struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    guard: Option<spin::RwLockWriteGuard<'a, T>>,
}

impl<T> RwLock<T> {
    /// A new unlocked lock.
    pub const fn new(v: T) -> Self {
        RwLock {
            data: spin::RwLock::new(v),
            writer: AtomicU64::new(0),
            readers: [const { AtomicU64::new(0) }; READER_SLOTS],
            waiters: WaitQueue::new(),
        }
    }

    /// Shared access, blocking while a writer holds it.
    ///
    /// # Panics
    /// If the calling thread holds this lock for writing (a self-deadlock).
    #[track_caller]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.read_until(None).expect("no deadline")
    }

    /// Shared access, or `None` after `timeout`.
    ///
    /// # Panics
    /// As [`read`](Self::read).
    #[track_caller]
    pub fn read_timeout(&self, timeout: Duration) -> Option<RwLockReadGuard<'_, T>> {
        self.read_until(Some(deadline_after(timeout)))
    }

    /// Shared access if no writer holds it.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.data.try_read().map(|g| self.read_acquired(g))
    }

    /// Exclusive access, blocking while anyone holds it.
    ///
    /// # Panics
    /// If the calling thread holds this lock, for reading or writing (a self-deadlock).
    #[track_caller]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.write_until(None).expect("no deadline")
    }

    /// Exclusive access, or `None` after `timeout`.
    ///
    /// # Panics
    /// As [`write`](Self::write).
    #[track_caller]
    pub fn write_timeout(&self, timeout: Duration) -> Option<RwLockWriteGuard<'_, T>> {
        self.write_until(Some(deadline_after(timeout)))
    }

    /// Exclusive access if nobody holds it.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.data.try_write().map(|g| self.write_acquired(g))
    }

    fn read_acquired<'a>(&'a self, g: spin::RwLockReadGuard<'a, T>) -> RwLockReadGuard<'a, T> {
        let me = task::current().id();
        let slot = self
            .readers
            .iter()
            .position(|r| r.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed).is_ok());
        RwLockReadGuard { lock: self, guard: Some(g), slot }
    }

    fn write_acquired<'a>(&'a self, g: spin::RwLockWriteGuard<'a, T>) -> RwLockWriteGuard<'a, T> {
        self.writer.store(task::current().id(), Ordering::Relaxed);
        RwLockWriteGuard { lock: self, guard: Some(g) }
    }

    /// Panics if thread `me` holds the lock in a way that makes the access
    /// it waits for impossible. Only `me` writes `me` into the owner fields
    /// and clears it before it releases, so a match means `me` holds it now.
    #[track_caller]
    fn check_self_deadlock(&self, me: u64, for_write: bool) {
        let how = if self.writer.load(Ordering::Relaxed) == me {
            "for writing"
        } else if for_write && self.readers.iter().any(|r| r.load(Ordering::Relaxed) == me) {
            "for reading"
        } else {
            return;
        };
        let wants = if for_write { "write-locks" } else { "read-locks" };
        panic!("deadlock: thread {me:#x} ({}) {wants} an RwLock it already holds {how}", task::current().name());
    }

    #[track_caller]
    fn read_until(&self, deadline: Option<u64>) -> Option<RwLockReadGuard<'_, T>> {
        let me = task::current().id();
        loop {
            if let Some(g) = self.data.try_read() {
                return Some(self.read_acquired(g));
            }
            self.check_self_deadlock(me, false);
            self.waiters.enqueue();
            if let Some(g) = self.data.try_read() {
                self.waiters.remove_current();
                return Some(self.read_acquired(g));
            }
            if !wait_until(deadline) {
                self.waiters.remove_current();
                return self.try_read();
            }
        }
    }

    #[track_caller]
    fn write_until(&self, deadline: Option<u64>) -> Option<RwLockWriteGuard<'_, T>> {
        let me = task::current().id();
        loop {
            if let Some(g) = self.data.try_write() {
                return Some(self.write_acquired(g));
            }
            self.check_self_deadlock(me, true);
            self.waiters.enqueue();
            if let Some(g) = self.data.try_write() {
                self.waiters.remove_current();
                return Some(self.write_acquired(g));
            }
            if !wait_until(deadline) {
                self.waiters.remove_current();
                return self.try_write();
            }
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
        if let Some(s) = self.slot {
            self.lock.readers[s].store(0, Ordering::Relaxed);
        }
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
        self.lock.writer.store(0, Ordering::Relaxed);
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

    /// Like [`call_once`](Self::call_once), but waits at most `timeout` for
    /// another caller's initialiser to finish. True once the initialiser has
    /// run (here or elsewhere); false if it was still running elsewhere when
    /// the time was up (then `f` was not called).
    pub fn call_once_timeout(&self, timeout: Duration, f: impl FnOnce()) -> bool {
        if self.done.load(Ordering::Acquire) {
            return true;
        }
        let Some(_g) = self.lock.lock_timeout(timeout) else {
            return self.done.load(Ordering::Acquire);
        };
        if !self.done.load(Ordering::Acquire) {
            f();
            self.done.store(true, Ordering::Release);
        }
        true
    }

    /// True once the initialiser has run.
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}
