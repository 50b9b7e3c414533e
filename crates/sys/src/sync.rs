//! Blocking synchronisation, the same API hosted (over `std::sync`) and in
//! the image (the kernel's blocking primitives): `Mutex`, `Condvar`,
//! `RwLock`, `Semaphore`, `Once`, and channels in [`mpsc`]. Every blocking
//! call has a variant with a timeout (`lock_timeout`, `read_timeout`,
//! `write_timeout`, `wait_timeout`, `acquire_timeout`, `call_once_timeout`,
//! `send_timeout`, `recv_timeout`). Locks do not poison.


#[cfg(not(target_os = "none"))]
mod imp {
    //! Hosted, on `std::sync` only. std has no timed lock, so each lock here
    //! is a *gate* (a `std::sync::Mutex` over who holds the lock, with a
    //! `Condvar` that waiters block on, `wait_timeout` giving the timeouts)
    //! in front of the std lock that owns the data; the std lock is only
    //! taken by the gate's holder, so it never blocks. No polling, no
    //! `unsafe`, no extra dependency (parking_lot's `try_lock_for` would do
    //! the same for Mutex and RwLock, but not for Once, join or a bounded
    //! send, which need this structure anyway).
    use std::ops::{Deref, DerefMut};
    use std::sync::{Condvar as StdCondvar, Mutex as StdMutex, MutexGuard as StdGuard, PoisonError};
    use std::thread::ThreadId;
    use std::time::{Duration, Instant};

    /// The calling thread's ID.
    fn me() -> ThreadId {
        std::thread::current().id()
    }

    /// Reports a certain self-deadlock the way the kernel does.
    #[track_caller]
    fn self_deadlock(what: &str) -> ! {
        let t = std::thread::current();
        panic!("deadlock: thread {:?} ({}) {what}", t.id(), t.name().unwrap_or(""))
    }

    pub(crate) fn relock<T>(m: &StdMutex<T>) -> StdGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `timeout` from now; `None` (forever) if that is past what `Instant` holds.
    pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
        Instant::now().checked_add(timeout)
    }

    /// Waits on `cv` (with `g`, the guard of its mutex) until `ready` holds
    /// or `deadline` passes; the bool says whether it is ready.
    pub(crate) fn wait_for<'a, S>(
        cv: &StdCondvar,
        mut g: StdGuard<'a, S>,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&S) -> bool,
    ) -> (StdGuard<'a, S>, bool) {
        loop {
            if ready(&g) {
                return (g, true);
            }
            match deadline {
                None => g = cv.wait(g).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return (g, false);
                    }
                    g = cv.wait_timeout(g, d - now).unwrap_or_else(PoisonError::into_inner).0;
                }
            }
        }
    }

    /// A mutual-exclusion lock. Like the kernel's, it knows its holder: a
    /// thread that locks it again while holding it panics instead of hanging.
    pub struct Mutex<T> {
        /// The gate: the holder while a guard exists.
        held: StdMutex<Option<ThreadId>>,
        freed: StdCondvar,
        data: StdMutex<T>,
    }

    /// Access to a [`Mutex`]'s data; unlocks on drop.
    pub struct MutexGuard<'a, T> {
        lock: &'a Mutex<T>,
        data: Option<StdGuard<'a, T>>,
    }

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(v: T) -> Self {
            Mutex { held: StdMutex::new(None), freed: StdCondvar::new(), data: StdMutex::new(v) }
        }
        /// Locks, blocking while another thread holds it.
        ///
        /// # Panics
        /// If the calling thread holds it already (a self-deadlock).
        #[track_caller]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.lock_until(None).expect("no deadline")
        }
        /// Locks, or gives up after `timeout`.
        ///
        /// # Panics
        /// As [`lock`](Self::lock).
        #[track_caller]
        pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
            match deadline_after(timeout) {
                Some(d) => self.lock_until(Some(d)),
                None => Some(self.lock()),
            }
        }
        /// Locks if free.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            let mut h = relock(&self.held);
            if h.is_some() {
                return None;
            }
            *h = Some(me());
            drop(h);
            Some(self.enter())
        }
        #[track_caller]
        fn lock_until(&self, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
            let me = me();
            let h = relock(&self.held);
            if *h == Some(me) {
                drop(h);
                self_deadlock("locks a Mutex it already holds");
            }
            let (mut h, free) = wait_for(&self.freed, h, deadline, |held| held.is_none());
            if !free {
                return None;
            }
            *h = Some(me);
            drop(h);
            Some(self.enter())
        }
        /// Takes the data lock; the caller holds the gate, so this never waits.
        fn enter(&self) -> MutexGuard<'_, T> {
            MutexGuard { lock: self, data: Some(relock(&self.data)) }
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.data.as_ref().expect("held until drop")
        }
    }
    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.data.as_mut().expect("held until drop")
        }
    }
    impl<T> Drop for MutexGuard<'_, T> {
        fn drop(&mut self) {
            self.data = None;
            *relock(&self.lock.held) = None;
            self.lock.freed.notify_one();
        }
    }

    /// A condition variable, used with a [`Mutex`].
    #[derive(Default)]
    pub struct Condvar(StdCondvar);

    impl Condvar {
        /// A new condition variable.
        pub const fn new() -> Self {
            Condvar(StdCondvar::new())
        }
        /// Unlocks, waits for a notification, locks again.
        pub fn wait<'a, T>(&self, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.wait_until(g, None).0
        }
        /// Like `wait`, at most `timeout`; true if it timed out.
        pub fn wait_timeout<'a, T>(&self, g: MutexGuard<'a, T>, timeout: Duration) -> (MutexGuard<'a, T>, bool) {
            match deadline_after(timeout) {
                Some(d) => self.wait_until(g, Some(d)),
                None => (self.wait(g), false),
            }
        }
        fn wait_until<'a, T>(&self, mut g: MutexGuard<'a, T>, deadline: Option<Instant>) -> (MutexGuard<'a, T>, bool) {
            let lock = g.lock;
            g.data = None;
            // Open the gate while holding its mutex until the wait below
            // releases it atomically: a notifier must pass the gate to
            // change the condition, so it cannot notify before we wait.
            let mut h = relock(&lock.held);
            *h = None;
            lock.freed.notify_one();
            // The guard's work is done by hand (its Drop would lock `held` again).
            std::mem::forget(g);
            let (h, timed_out) = match deadline {
                None => (self.0.wait(h).unwrap_or_else(PoisonError::into_inner), false),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    None => (h, true),
                    Some(left) => {
                        let (h, r) = self.0.wait_timeout(h, left).unwrap_or_else(PoisonError::into_inner);
                        (h, r.timed_out())
                    }
                },
            };
            let (mut h, _) = wait_for(&lock.freed, h, None, |held| held.is_none());
            *h = Some(me());
            drop(h);
            (lock.enter(), timed_out)
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

    /// Who holds an [`RwLock`].
    struct RwGate {
        /// One entry per read guard.
        readers: Vec<ThreadId>,
        writer: Option<ThreadId>,
    }

    /// A readers-writer lock. Like the kernel's, it knows its holders: a
    /// thread asking for access it cannot get because it holds the lock
    /// (write while reading or writing, read while writing) panics.
    pub struct RwLock<T> {
        gate: StdMutex<RwGate>,
        freed: StdCondvar,
        data: std::sync::RwLock<T>,
    }

    /// Shared access to an [`RwLock`].
    pub struct RwLockReadGuard<'a, T> {
        lock: &'a RwLock<T>,
        data: Option<std::sync::RwLockReadGuard<'a, T>>,
        reader: ThreadId,
    }

    /// Exclusive access to an [`RwLock`].
    pub struct RwLockWriteGuard<'a, T> {
        lock: &'a RwLock<T>,
        data: Option<std::sync::RwLockWriteGuard<'a, T>>,
    }

    impl<T> RwLock<T> {
        /// A new unlocked lock.
        pub const fn new(v: T) -> Self {
            RwLock {
                gate: StdMutex::new(RwGate { readers: Vec::new(), writer: None }),
                freed: StdCondvar::new(),
                data: std::sync::RwLock::new(v),
            }
        }
        /// Shared access, blocking while a writer holds it.
        ///
        /// # Panics
        /// If the calling thread holds it for writing (a self-deadlock).
        #[track_caller]
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.read_until(None, true).expect("no deadline")
        }
        /// Shared access, or `None` after `timeout`.
        ///
        /// # Panics
        /// As [`read`](Self::read).
        #[track_caller]
        pub fn read_timeout(&self, timeout: Duration) -> Option<RwLockReadGuard<'_, T>> {
            match deadline_after(timeout) {
                Some(d) => self.read_until(Some(d), true),
                None => Some(self.read()),
            }
        }
        /// Shared access if no writer holds it.
        pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
            self.read_until(Some(Instant::now()), false)
        }
        /// Exclusive access, blocking while anyone holds it.
        ///
        /// # Panics
        /// If the calling thread holds it, for reading or writing (a self-deadlock).
        #[track_caller]
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.write_until(None, true).expect("no deadline")
        }
        /// Exclusive access, or `None` after `timeout`.
        ///
        /// # Panics
        /// As [`write`](Self::write).
        #[track_caller]
        pub fn write_timeout(&self, timeout: Duration) -> Option<RwLockWriteGuard<'_, T>> {
            match deadline_after(timeout) {
                Some(d) => self.write_until(Some(d), true),
                None => Some(self.write()),
            }
        }
        /// Exclusive access if nobody holds it.
        pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
            self.write_until(Some(Instant::now()), false)
        }
        #[track_caller]
        fn read_until(&self, deadline: Option<Instant>, check: bool) -> Option<RwLockReadGuard<'_, T>> {
            let me = me();
            let g = relock(&self.gate);
            if check && g.writer == Some(me) {
                drop(g);
                self_deadlock("read-locks an RwLock it already holds for writing");
            }
            let (mut g, ok) = wait_for(&self.freed, g, deadline, |g| g.writer.is_none());
            if !ok {
                return None;
            }
            g.readers.push(me);
            drop(g);
            let data = self.data.read().unwrap_or_else(PoisonError::into_inner);
            Some(RwLockReadGuard { lock: self, data: Some(data), reader: me })
        }
        #[track_caller]
        fn write_until(&self, deadline: Option<Instant>, check: bool) -> Option<RwLockWriteGuard<'_, T>> {
            let me = me();
            let g = relock(&self.gate);
            if check && g.writer == Some(me) {
                drop(g);
                self_deadlock("write-locks an RwLock it already holds for writing");
            }
            if check && g.readers.contains(&me) {
                drop(g);
                self_deadlock("write-locks an RwLock it already holds for reading");
            }
            let (mut g, ok) = wait_for(&self.freed, g, deadline, |g| g.writer.is_none() && g.readers.is_empty());
            if !ok {
                return None;
            }
            g.writer = Some(me);
            drop(g);
            let data = self.data.write().unwrap_or_else(PoisonError::into_inner);
            Some(RwLockWriteGuard { lock: self, data: Some(data) })
        }
    }

    impl<T> Deref for RwLockReadGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.data.as_ref().expect("held until drop")
        }
    }
    impl<T> Drop for RwLockReadGuard<'_, T> {
        fn drop(&mut self) {
            self.data = None;
            let mut g = relock(&self.lock.gate);
            if let Some(i) = g.readers.iter().position(|r| *r == self.reader) {
                g.readers.swap_remove(i);
            }
            if g.readers.is_empty() {
                self.lock.freed.notify_all();
            }
        }
    }
    impl<T> Deref for RwLockWriteGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.data.as_ref().expect("held until drop")
        }
    }
    impl<T> DerefMut for RwLockWriteGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.data.as_mut().expect("held until drop")
        }
    }
    impl<T> Drop for RwLockWriteGuard<'_, T> {
        fn drop(&mut self) {
            self.data = None;
            relock(&self.lock.gate).writer = None;
            self.lock.freed.notify_all();
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
            let Some(end) = deadline_after(timeout) else {
                self.acquire();
                return true;
            };
            let mut p = self.permits.lock();
            while *p == 0 {
                let now = Instant::now();
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
        /// Permits available now.
        pub fn available(&self) -> usize {
            *self.permits.lock()
        }
    }

    const NEW: u8 = 0;
    const RUNNING: u8 = 1;
    const DONE: u8 = 2;

    /// Runs an initialiser exactly once; other callers block until it is done.
    pub struct Once {
        state: StdMutex<u8>,
        cv: StdCondvar,
    }

    impl Default for Once {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Puts a `Once` whose initialiser panicked back to NEW (a later call retries).
    struct ResetOnUnwind<'a>(&'a Once);
    impl Drop for ResetOnUnwind<'_> {
        fn drop(&mut self) {
            *relock(&self.0.state) = NEW;
            self.0.cv.notify_all();
        }
    }

    impl Once {
        /// A new `Once`.
        pub const fn new() -> Self {
            Once { state: StdMutex::new(NEW), cv: StdCondvar::new() }
        }
        /// Runs `f` if nothing ran yet; returns when it has run.
        pub fn call_once(&self, f: impl FnOnce()) {
            self.call_once_until(None, f);
        }
        /// Like `call_once`, but waits at most `timeout` for another caller's
        /// initialiser; true once it has run, false if it was still running
        /// elsewhere when the time was up (then `f` was not called).
        pub fn call_once_timeout(&self, timeout: Duration, f: impl FnOnce()) -> bool {
            self.call_once_until(deadline_after(timeout), f)
        }
        /// True once the initialiser has run.
        pub fn is_completed(&self) -> bool {
            *relock(&self.state) == DONE
        }
        fn call_once_until(&self, deadline: Option<Instant>, f: impl FnOnce()) -> bool {
            let (mut s, settled) = wait_for(&self.cv, relock(&self.state), deadline, |s| *s != RUNNING);
            if !settled {
                return false;
            }
            if *s == DONE {
                return true;
            }
            *s = RUNNING;
            drop(s);
            let reset = ResetOnUnwind(self);
            f();
            std::mem::forget(reset);
            *relock(&self.state) = DONE;
            self.cv.notify_all();
            true
        }
    }

    /// Channels, the same API as the kernel's: unbounded ([`channel`]) and
    /// bounded ([`sync_channel`], senders block while full; a capacity of 0
    /// counts as 1), with timeouts on both ends.
    pub mod mpsc {
        use super::{deadline_after, Condvar, Mutex};
        use std::collections::VecDeque;
        use std::fmt;
        use std::sync::Arc;
        use std::time::{Duration, Instant};

        struct Shared<T> {
            state: Mutex<State<T>>,
            not_empty: Condvar,
            not_full: Condvar,
            cap: Option<usize>,
        }

        struct State<T> {
            q: VecDeque<T>,
            senders: usize,
            receiver: bool,
        }

        /// The sending half.
        pub struct Sender<T> {
            s: Arc<Shared<T>>,
        }

        /// The sending half of a bounded channel (one type for both kinds).
        pub type SyncSender<T> = Sender<T>;

        /// The receiving half.
        pub struct Receiver<T> {
            s: Arc<Shared<T>>,
        }

        /// The receiver is gone; the value comes back.
        #[derive(PartialEq, Eq)]
        pub struct SendError<T>(pub T);

        impl<T> fmt::Debug for SendError<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("SendError: the receiver was dropped")
            }
        }

        /// Why `send_timeout` gave the value back.
        #[derive(PartialEq, Eq)]
        pub enum SendTimeoutError<T> {
            /// The channel stayed full until the timeout passed.
            Timeout(T),
            /// The receiver is gone.
            Disconnected(T),
        }

        impl<T> SendTimeoutError<T> {
            /// The value that was not sent.
            pub fn into_inner(self) -> T {
                match self {
                    SendTimeoutError::Timeout(v) | SendTimeoutError::Disconnected(v) => v,
                }
            }
        }

        impl<T> fmt::Debug for SendTimeoutError<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    SendTimeoutError::Timeout(_) => f.write_str("SendTimeoutError: the channel stayed full until the timeout"),
                    SendTimeoutError::Disconnected(_) => f.write_str("SendTimeoutError: the receiver was dropped"),
                }
            }
        }

        /// Every sender is gone and the channel is empty.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct RecvError;

        /// Why `try_recv`/`recv_timeout` returned nothing.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum TryRecvError {
            /// Nothing there (yet), or the timeout passed.
            Empty,
            /// Every sender is gone and the channel is empty.
            Disconnected,
        }

        fn new<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
            let s = Arc::new(Shared {
                state: Mutex::new(State { q: VecDeque::new(), senders: 1, receiver: true }),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
                cap,
            });
            (Sender { s: s.clone() }, Receiver { s })
        }

        /// An unbounded channel.
        pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
            new(None)
        }

        /// A channel holding at most `cap` messages (at least 1).
        pub fn sync_channel<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
            new(Some(cap.max(1)))
        }

        impl<T> Sender<T> {
            /// Sends `v`, blocking while a bounded channel is full.
            pub fn send(&self, v: T) -> Result<(), SendError<T>> {
                self.send_until(v, None).map_err(|e| SendError(e.into_inner()))
            }

            /// Sends `v`, waiting at most `timeout` while a bounded channel is full.
            pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
                self.send_until(v, deadline_after(timeout))
            }

            fn send_until(&self, v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
                let mut st = self.s.state.lock();
                loop {
                    if !st.receiver {
                        return Err(SendTimeoutError::Disconnected(v));
                    }
                    if self.s.cap.is_none_or(|c| st.q.len() < c) {
                        st.q.push_back(v);
                        drop(st);
                        self.s.not_empty.notify_one();
                        return Ok(());
                    }
                    st = match deadline {
                        None => self.s.not_full.wait(st),
                        Some(d) => match d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
                            None => return Err(SendTimeoutError::Timeout(v)),
                            Some(left) => self.s.not_full.wait_timeout(st, left).0,
                        },
                    };
                }
            }
        }

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                self.s.state.lock().senders += 1;
                Sender { s: self.s.clone() }
            }
        }

        impl<T> Drop for Sender<T> {
            fn drop(&mut self) {
                self.s.state.lock().senders -= 1;
                self.s.not_empty.notify_all();
            }
        }

        impl<T> Receiver<T> {
            /// Receives, blocking while the channel is empty.
            pub fn recv(&self) -> Result<T, RecvError> {
                self.recv_until(None).map_err(|_| RecvError)
            }

            /// Receives, or gives up after `timeout` (`Empty`).
            pub fn recv_timeout(&self, timeout: Duration) -> Result<T, TryRecvError> {
                self.recv_until(deadline_after(timeout))
            }

            /// Receives if something is there.
            pub fn try_recv(&self) -> Result<T, TryRecvError> {
                self.recv_until(Some(Instant::now()))
            }

            /// The messages until every sender is gone.
            pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
                std::iter::from_fn(move || self.recv().ok())
            }

            fn recv_until(&self, deadline: Option<Instant>) -> Result<T, TryRecvError> {
                let mut st = self.s.state.lock();
                loop {
                    if let Some(v) = st.q.pop_front() {
                        drop(st);
                        self.s.not_full.notify_one();
                        return Ok(v);
                    }
                    if st.senders == 0 {
                        return Err(TryRecvError::Disconnected);
                    }
                    st = match deadline {
                        None => self.s.not_empty.wait(st),
                        Some(d) => match d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
                            None => return Err(TryRecvError::Empty),
                            Some(left) => self.s.not_empty.wait_timeout(st, left).0,
                        },
                    };
                }
            }
        }

        impl<T> Drop for Receiver<T> {
            fn drop(&mut self) {
                self.s.state.lock().receiver = false;
                self.s.not_full.notify_all();
            }
        }
    }
}

#[cfg(target_os = "none")]
mod imp {
    pub use bareflow_kernel::sync::{
        Condvar, Mutex, MutexGuard, Once, RwLock, RwLockReadGuard, RwLockWriteGuard, Semaphore,
    };

    /// Channels.
    pub mod mpsc {
        pub use bareflow_kernel::sync::{
            channel, sync_channel, Receiver, RecvError, SendError, SendTimeoutError, Sender, TryRecvError,
        };
        /// The sending half of a bounded channel (one type for both kinds here).
        pub type SyncSender<T> = Sender<T>;
    }
}

pub use imp::*;

