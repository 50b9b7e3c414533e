//! Threads: spawn, join, scoped threads, sleep, yield. In the image they are
//! the kernel's threads (spread over every CPU by its scheduler); hosted,
//! `std::thread`.
pub use core::time::Duration;

#[cfg(not(target_os = "none"))]
mod imp {
    use super::Duration;

    /// A handle to wait for a thread.
    pub struct JoinHandle<T>(std::thread::JoinHandle<T>);

    impl<T> JoinHandle<T> {
        /// Waits for the thread and returns its result.
        ///
        /// # Panics
        /// If the thread panicked.
        pub fn join(self) -> T {
            match self.0.join() {
                Ok(v) => v,
                Err(e) => std::panic::resume_unwind(e),
            }
        }
    }

    /// Starts `f` on a new thread.
    pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
        JoinHandle(std::thread::spawn(f))
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
