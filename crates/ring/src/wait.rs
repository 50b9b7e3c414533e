//! Wait strategies: what a producer does while the ring is full and what a
//! consumer does while nothing new is available.
//!
//! Every strategy is told two things: "wait until this check succeeds"
//! ([`WaitStrategy::wait_until`]) and "some sequence just moved"
//! ([`WaitStrategy::signal`], called after every publish and every consumer
//! advance). Spinning strategies ignore the signal; [`Blocking`] uses it to
//! wake parked waiters, and costs the signaller one fence and one load while
//! nobody is parked.

use crate::sync::{AtomicU64, Ordering, Padded, fence, spin_hint};

/// How a producer or consumer waits for a sequence to move.
pub trait WaitStrategy: Send + Sync {
    /// Calls `ready` until it returns `Some`, idling in between, and returns that value.
    fn wait_until<R>(&self, ready: impl FnMut() -> Option<R>) -> R;

    /// Called after a sequence moved (a publish, or a consumer finishing a batch).
    fn signal(&self);
}

/// Spins on the CPU without ever giving it up: lowest latency, burns a core.
#[derive(Debug, Default, Clone, Copy)]
pub struct BusySpin;

impl WaitStrategy for BusySpin {
    #[inline]
    fn wait_until<R>(&self, mut ready: impl FnMut() -> Option<R>) -> R {
        loop {
            if let Some(r) = ready() {
                return r;
            }
            spin_hint();
        }
    }

    #[inline]
    fn signal(&self) {}
}

/// Spins `spins` times, then calls the caller's `yield_now` hook between
/// checks. `no_std` has no `thread::yield_now`: the environment supplies it
/// (the kernel's fiber yield, or `std::thread::yield_now` on a host).
#[derive(Debug, Clone, Copy)]
pub struct Yielding<H> {
    spins: u32,
    yield_now: H,
}

impl<H: Fn() + Send + Sync> Yielding<H> {
    /// A strategy that spins `spins` times before it starts yielding with `yield_now`.
    pub const fn new(spins: u32, yield_now: H) -> Self {
        Self { spins, yield_now }
    }
}

impl<H: Fn() + Send + Sync> WaitStrategy for Yielding<H> {
    fn wait_until<R>(&self, mut ready: impl FnMut() -> Option<R>) -> R {
        let mut tries = 0u32;
        loop {
            if let Some(r) = ready() {
                return r;
            }
            if tries < self.spins {
                tries += 1;
                spin_hint();
            } else {
                (self.yield_now)();
            }
        }
    }

    #[inline]
    fn signal(&self) {}
}

/// Parking, as the environment provides it: a wait queue with the semantics
/// of a condition variable.
///
/// `park` must re-evaluate `still_blocked` under the same lock that
/// `unpark_all` takes before it wakes anyone; then a wake-up that comes
/// between the check and the sleep is never lost. Spurious returns from
/// `park` are allowed.
pub trait Park: Send + Sync {
    /// Puts the caller to sleep while `still_blocked()` is true.
    fn park(&self, still_blocked: &dyn Fn() -> bool);
    /// Wakes every parked caller so that it re-evaluates its condition.
    fn unpark_all(&self);
}

/// Spins a little, then parks through `P` until signalled. For consumers
/// that may sit idle for long: they cost no CPU while parked.
pub struct Blocking<P> {
    spins: u32,
    parker: P,
    /// Bumped by every signal that found a waiter; a parked waiter sleeps while it is unchanged.
    epoch: Padded<AtomicU64>,
    /// How many callers are between "about to park" and "done parking".
    waiters: Padded<AtomicU64>,
}

impl<P: Park> Blocking<P> {
    /// A strategy that spins `spins` times before it parks through `parker`.
    pub fn new(spins: u32, parker: P) -> Self {
        Self {
            spins,
            parker,
            epoch: Padded(AtomicU64::new(0)),
            waiters: Padded(AtomicU64::new(0)),
        }
    }
}

impl<P: Park> WaitStrategy for Blocking<P> {
    fn wait_until<R>(&self, mut ready: impl FnMut() -> Option<R>) -> R {
        for _ in 0..self.spins {
            if let Some(r) = ready() {
                return r;
            }
            spin_hint();
        }
        loop {
            // Announce ourselves, then re-check. The two SeqCst fences (here and
            // in `signal`) order "announce; check" against "publish; look for
            // waiters": either the signaller sees us, or our check sees its publish.
            self.waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let seen = self.epoch.load(Ordering::SeqCst);
            if let Some(r) = ready() {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                return r;
            }
            self.parker
                .park(&|| self.epoch.load(Ordering::SeqCst) == seen);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            if let Some(r) = ready() {
                return r;
            }
        }
    }

    fn signal(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) != 0 {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            self.parker.unpark_all();
        }
    }
}

/// [`Park`] on std's `Mutex` and `Condvar` (or loom's, under `--cfg loom`).
#[cfg(feature = "std")]
pub struct StdPark {
    lock: crate::sync::Mutex<()>,
    cond: crate::sync::Condvar,
}

#[cfg(feature = "std")]
impl StdPark {
    /// A parker with nobody parked.
    pub fn new() -> Self {
        Self {
            lock: crate::sync::Mutex::new(()),
            cond: crate::sync::Condvar::new(),
        }
    }
}

#[cfg(feature = "std")]
impl Default for StdPark {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl Park for StdPark {
    fn park(&self, still_blocked: &dyn Fn() -> bool) {
        // A poisoned lock only means another waiter panicked; the `()` it guards cannot be torn.
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while still_blocked() {
            guard = self.cond.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn unpark_all(&self) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cond.notify_all();
    }
}
