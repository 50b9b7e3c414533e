//! A queue of parked threads.
use crate::task::{self, Thread};
use alloc::collections::VecDeque;
use bareflow_hal::task::IrqMutex;

/// Threads waiting for something; wakers unpark them. Wake-ups may be
/// spurious, so every waiter re-checks its condition in a loop.
pub(crate) struct WaitQueue {
    q: IrqMutex<VecDeque<&'static Thread>>,
}

impl WaitQueue {
    pub(crate) const fn new() -> Self {
        WaitQueue { q: IrqMutex::new(VecDeque::new()) }
    }

    /// Registers the current thread as a waiter (before re-checking the condition).
    pub(crate) fn enqueue(&self) {
        let me = task::current();
        let mut q = self.q.lock();
        if !q.iter().any(|t| core::ptr::eq(*t, me)) {
            q.push_back(me);
        }
    }

    /// True while the current thread is queued (no waker took it off yet).
    pub(crate) fn contains_current(&self) -> bool {
        let me = task::current();
        self.q.lock().iter().any(|t| core::ptr::eq(*t, me))
    }

    /// Forgets the current thread (it stopped waiting).
    pub(crate) fn remove_current(&self) {
        let me = task::current();
        self.q.lock().retain(|t| !core::ptr::eq(*t, me));
    }

    /// Wakes one waiter.
    pub(crate) fn wake_one(&self) {
        let t = self.q.lock().pop_front();
        if let Some(t) = t {
            t.unpark();
        }
    }

    /// Wakes every waiter.
    pub(crate) fn wake_all(&self) {
        let all: VecDeque<&'static Thread> = core::mem::take(&mut *self.q.lock());
        for t in all {
            t.unpark();
        }
    }
}
