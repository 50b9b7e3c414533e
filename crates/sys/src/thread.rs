//! Threads: spawn, join, scoped threads, sleep, yield. In the image they are
//! the kernel's threads (spread over every CPU by its scheduler); hosted,
//! `std::thread`.
pub use core::time::Duration;

#[cfg(not(target_os = "none"))]
mod imp {
    use super::Duration;
    use crate::sync::{deadline_after, relock, wait_for};
    use std::sync::{Arc, Condvar, Mutex};

    /// Set when the thread's function returned or unwound.
    #[derive(Default)]
    struct Finished {
        done: Mutex<bool>,
        cv: Condvar,
    }

    /// Marks the thread finished when dropped: at the end of its function or
    /// while it unwinds from a panic.
    struct MarkOnDrop(Arc<Finished>);
    impl Drop for MarkOnDrop {
        fn drop(&mut self) {
            *relock(&self.0.done) = true;
            self.0.cv.notify_all();
        }
    }

    /// A handle to wait for a thread.
    pub struct JoinHandle<T> {
        inner: std::thread::JoinHandle<T>,
        finished: Arc<Finished>,
    }

    impl<T> JoinHandle<T> {
        /// Waits for the thread and returns its result.
        ///
        /// # Panics
        /// If the thread panicked.
        pub fn join(self) -> T {
            match self.inner.join() {
                Ok(v) => v,
                Err(e) => std::panic::resume_unwind(e),
            }
        }

        /// Like [`join`](Self::join), waiting at most `timeout`; the handle
        /// comes back if the thread is still running then.
        ///
        /// # Panics
        /// If the thread panicked.
        pub fn join_timeout(self, timeout: Duration) -> Result<T, JoinHandle<T>> {
            let (g, done) = wait_for(&self.finished.cv, relock(&self.finished.done), deadline_after(timeout), |d| *d);
            drop(g);
            // Finished: its function is over; `join` only waits for the OS
            // thread's exit, which follows at once.
            if done { Ok(self.join()) } else { Err(self) }
        }

        /// True once the thread's function returned.
        pub fn is_finished(&self) -> bool {
            *relock(&self.finished.done)
        }
    }

    /// Starts `f` on a new thread.
    pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
        let finished = Arc::new(Finished::default());
        let mark = MarkOnDrop(finished.clone());
        let inner = std::thread::spawn(move || {
            let _mark = mark;
            f()
        });
        JoinHandle { inner, finished }
    }

    /// A scope for threads that borrow from the caller; see [`scope`].
    pub struct Scope<'scope, 'env: 'scope> {
        inner: &'scope std::thread::Scope<'scope, 'env>,
    }

    impl<'scope, 'env> Scope<'scope, 'env> {
        /// Runs `f` on another thread; it has finished when `scope` returns.
        pub fn spawn(&self, f: impl FnOnce() + Send + 'scope) {
            self.inner.spawn(f);
        }
    }

    /// Runs `f`; every thread it spawns in the scope has finished on return.
    pub fn scope<'env, R>(f: impl for<'scope> FnOnce(&Scope<'scope, 'env>) -> R) -> R {
        std::thread::scope(|s| f(&Scope { inner: s }))
    }

    /// Sleeps at least `d`.
    pub fn sleep(d: Duration) {
        std::thread::sleep(d)
    }

    /// Lets other threads run.
    pub fn yield_now() {
        std::thread::yield_now()
    }

    /// How many threads can run at once.
    pub fn available_parallelism() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// The running thread: (id, name).
    pub fn current() -> (u64, String) {
        let t = std::thread::current();
        let id = format!("{:?}", t.id()).bytes().filter(u8::is_ascii_digit).fold(0u64, |a, d| a * 10 + (d - b'0') as u64);
        (id, t.name().unwrap_or("").to_string())
    }
}

#[cfg(target_os = "none")]
mod imp {
    use super::Duration;
    use bareflow_kernel::task;

    /// A handle to wait for a thread.
    pub struct JoinHandle<T>(task::JoinHandle<T>);

    impl<T> JoinHandle<T> {
        /// Waits for the thread and returns its result.
        pub fn join(self) -> T {
            self.0.join()
        }

        /// Like [`join`](Self::join), waiting at most `timeout`; the handle
        /// comes back if the thread is still running then.
        pub fn join_timeout(self, timeout: Duration) -> Result<T, JoinHandle<T>> {
            self.0.join_timeout(timeout).map_err(JoinHandle)
        }

        /// True once the thread finished.
        pub fn is_finished(&self) -> bool {
            self.0.is_finished()
        }
    }

    /// Starts `f` on a new thread.
    ///
    /// # Panics
    /// If there is no memory for the thread's stack (as `std::thread::spawn`).
    pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
        match task::spawn(f) {
            Ok(h) => JoinHandle(h),
            Err(e) => panic!("cannot start a thread: {e:?}"),
        }
    }

    /// A scope for threads that borrow from the caller; see [`scope`].
    pub struct Scope<'scope, 'env: 'scope> {
        inner: &'scope bareflow_kernel::hal::task::Scope<'scope, 'env>,
    }

    impl<'scope, 'env> Scope<'scope, 'env> {
        /// Runs `f` on another thread; it has finished when `scope` returns.
        pub fn spawn(&self, f: impl FnOnce() + Send + 'scope) {
            self.inner.spawn(f);
        }
    }

    /// Runs `f`; every thread it spawns in the scope has finished on return.
    pub fn scope<'env, R>(f: impl for<'scope> FnOnce(&Scope<'scope, 'env>) -> R) -> R {
        task::scope(|s| f(&Scope { inner: s }))
    }

    /// Sleeps at least `d`.
    pub fn sleep(d: Duration) {
        task::sleep(d)
    }

    /// Lets other threads run.
    pub fn yield_now() {
        task::yield_now()
    }

    /// How many threads can run at once (the CPUs the kernel schedules on).
    pub fn available_parallelism() -> usize {
        task::available_parallelism()
    }

    /// The running thread: (its unguessable ID, its name).
    pub fn current() -> (u64, alloc::string::String) {
        let t = task::current();
        (t.id(), t.name())
    }
}

pub use imp::*;
