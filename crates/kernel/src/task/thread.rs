//! Threads: spawn, join, park/unpark, sleep.
use super::sched;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bareflow_hal::task::{Context, IrqMutex};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use core::time::Duration;

/// A thread's state.
pub(crate) const READY: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const BLOCKED: u8 = 2;
pub(crate) const EXITED: u8 = 3;

/// Stack size of a spawned thread.
pub const STACK_PAGES: u64 = 64; // 256 KiB

/// A thread's identity: unique for the whole boot, never reused.
pub type ThreadId = u64;

/// A kernel thread.
pub struct Thread {
    pub(crate) ctx: Context,
    id: AtomicU64,
    pub(crate) cpu: AtomicUsize,
    pub(crate) state: AtomicU8,
    token: AtomicBool,
    name: IrqMutex<String>,
    job: IrqMutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Bumped at each park; a timer that fires for an older park is stale.
    pub(crate) park_gen: AtomicU64,
    /// Set by a timer that woke this thread (for `park_timeout`'s answer).
    timed_out: AtomicBool,
    pub(crate) slice_start: AtomicU64,
}

impl core::fmt::Debug for Thread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Thread").field("id", &self.id()).field("name", &*self.name.lock()).finish()
    }
}

/// Every thread ever created, by slot (slots of finished threads are reused).
static ALL: IrqMutex<Vec<&'static Thread>> = IrqMutex::new(Vec::new());
/// Slots of finished threads, ready for reuse.
static FREE: IrqMutex<Vec<usize>> = IrqMutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Stands in a reserved slot until its thread is built (never scheduled).
static PLACEHOLDER: Thread = Thread {
    ctx: Context::placeholder(),
    id: AtomicU64::new(0),
    cpu: AtomicUsize::new(0),
    state: AtomicU8::new(EXITED),
    token: AtomicBool::new(false),
    name: IrqMutex::new(String::new()),
    job: IrqMutex::new(None),
    park_gen: AtomicU64::new(0),
    timed_out: AtomicBool::new(false),
    slice_start: AtomicU64::new(0),
};

fn new_id() -> ThreadId {
    crate::ids::task_id(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

impl Thread {
    /// Its ID.
    pub fn id(&self) -> ThreadId {
        self.id.load(Ordering::Relaxed)
    }

    /// Its name.
    pub fn name(&self) -> String {
        self.name.lock().clone()
    }

    /// The CPU that owns it.
    pub fn cpu(&self) -> usize {
        self.cpu.load(Ordering::Relaxed)
    }

    /// Makes a parked thread runnable (or makes its next `park` return at once).
    pub fn unpark(&'static self) {
        self.token.store(true, Ordering::Release);
        if self.state.compare_exchange(BLOCKED, READY, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            sched::make_ready(self);
        }
    }

    /// The thread running the current code on this CPU, when it was adopted
    /// rather than spawned (a CPU's boot flow).
    pub(crate) fn adopt(name: &str, cpu: usize) -> &'static Thread {
        let t: &'static Thread = Box::leak(Box::new(Thread {
            ctx: Context::for_running_flow(),
            id: AtomicU64::new(new_id()),
            cpu: AtomicUsize::new(cpu),
            state: AtomicU8::new(RUNNING),
            token: AtomicBool::new(false),
            name: IrqMutex::new(String::from(name)),
            job: IrqMutex::new(None),
            park_gen: AtomicU64::new(0),
            timed_out: AtomicBool::new(false),
            slice_start: AtomicU64::new(0),
        }));
        t.ctx.register_current().expect("a CPU adopts its boot flow once");
        ALL.lock().push(t);
        t
    }

    /// A new thread (or a reused finished one) that will run `job`, not yet queued.
    pub(crate) fn create(name: &str, cpu: usize, job: Job) -> Result<&'static Thread, (SpawnError, Job)> {
        Self::create_with_stack(name, cpu, STACK_PAGES, job)
    }

    /// Like `create`, with a stack of `pages` pages (for a new context only).
    pub(crate) fn create_with_stack(
        name: &str,
        cpu: usize,
        pages: u64,
        job: Job,
    ) -> Result<&'static Thread, (SpawnError, Job)> {
        let reuse = FREE.lock().pop();
        let (slot, t) = match reuse {
            Some(slot) => {
                let t = ALL.lock()[slot];
                if t.ctx.reset(thread_main, slot).is_err() {
                    FREE.lock().push(slot);
                    return Err((SpawnError::Busy, job));
                }
                (slot, t)
            }
            None => {
                // Reserve the slot, then build the context without holding the
                // lock (allocating a stack may wait for other CPUs' TLB flushes).
                let slot = {
                    let mut all = ALL.lock();
                    all.push(&PLACEHOLDER);
                    all.len() - 1
                };
                let ctx = match Context::new(pages, "thread stack", thread_main, slot) {
                    Ok(c) => c,
                    Err(_) => return Err((SpawnError::OutOfMemory, job)),
                };
                let t: &'static Thread = Box::leak(Box::new(Thread {
                    ctx,
                    id: AtomicU64::new(0),
                    cpu: AtomicUsize::new(cpu),
                    state: AtomicU8::new(BLOCKED),
                    token: AtomicBool::new(false),
                    name: IrqMutex::new(String::new()),
                    job: IrqMutex::new(None),
                    park_gen: AtomicU64::new(0),
                    timed_out: AtomicBool::new(false),
                    slice_start: AtomicU64::new(0),
                }));
                ALL.lock()[slot] = t;
                (slot, t)
            }
        };
        let _ = slot;
        t.id.store(new_id(), Ordering::Relaxed);
        t.cpu.store(cpu, Ordering::Relaxed);
        t.token.store(false, Ordering::Relaxed);
        *t.name.lock() = String::from(name);
        *t.job.lock() = Some(job);
        t.state.store(READY, Ordering::Release);
        Ok(t)
    }
}

/// The work a new thread runs.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Why a thread could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// No memory for its stack.
    OutOfMemory,
    /// A reused context was still in use (retry).
    Busy,
}

fn thread_main(slot: usize) -> ! {
    let t = ALL.lock()[slot];
    sched::thread_started(t);
    let job = t.job.lock().take();
    if let Some(job) = job {
        job();
    }
    // Finished: leave for good. The context switched to next gives the slot
    // back (`sched::reap`), once this context is suspended.
    t.state.store(EXITED, Ordering::Release);
    sched::exit_current(slot)
}

struct JoinState<T> {
    result: IrqMutex<Option<T>>,
    done: AtomicBool,
    waiter: IrqMutex<Option<&'static Thread>>,
}

/// Owned permission to wait for a thread and take its result.
pub struct JoinHandle<T> {
    state: Arc<JoinState<T>>,
    thread: &'static Thread,
    id: ThreadId,
}

impl<T> JoinHandle<T> {
    /// Waits for the thread to finish and returns its result.
    pub fn join(self) -> T {
        loop {
            *self.state.waiter.lock() = Some(current());
            if self.state.done.load(Ordering::Acquire) {
                break;
            }
            park();
        }
        self.state.result.lock().take().expect("a finished thread leaves its result")
    }

    /// Like [`join`](Self::join), waiting at most `timeout`; the handle comes
    /// back if the thread is still running then.
    pub fn join_timeout(self, timeout: Duration) -> Result<T, JoinHandle<T>> {
        let deadline = crate::time::monotonic_nanos().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64);
        loop {
            *self.state.waiter.lock() = Some(current());
            if self.state.done.load(Ordering::Acquire) {
                break;
            }
            if crate::time::monotonic_nanos() >= deadline {
                // Stop being the waiter (a finish racing with this leaves an
                // unpark token: a spurious wake-up later, which parks allow).
                *self.state.waiter.lock() = None;
                if self.state.done.load(Ordering::Acquire) {
                    break;
                }
                return Err(self);
            }
            park_until(deadline);
        }
        Ok(self.state.result.lock().take().expect("a finished thread leaves its result"))
    }

    /// The thread's ID.
    pub fn id(&self) -> ThreadId {
        self.id
    }

    /// True once the thread finished.
    pub fn is_finished(&self) -> bool {
        self.state.done.load(Ordering::Acquire)
    }

    /// The thread (while it runs; the slot is reused after it finished).
    pub fn thread(&self) -> &'static Thread {
        self.thread
    }
}

/// Starts `f` on a new thread, on the CPU the placement policy picks.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<JoinHandle<T>, SpawnError> {
    spawn_on(sched::pick_cpu(), "thread", f)
}

/// Starts `f` on a new thread named `name`, owned by CPU `cpu`.
pub fn spawn_on<T: Send + 'static>(
    cpu: usize,
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, SpawnError> {
    let state = Arc::new(JoinState { result: IrqMutex::new(None), done: AtomicBool::new(false), waiter: IrqMutex::new(None) });
    let st = state.clone();
    let job = Box::new(move || {
        let r = f();
        *st.result.lock() = Some(r);
        st.done.store(true, Ordering::Release);
        let w = st.waiter.lock().take();
        drop(st);
        if let Some(w) = w {
            w.unpark();
        }
    });
    let cpu = cpu.min(sched::cpu_count().saturating_sub(1));
    let t = Thread::create(name, cpu, job).map_err(|(e, _)| e)?;
    let id = t.id();
    sched::make_ready(t);
    Ok(JoinHandle { state, thread: t, id })
}

/// Starts `job` on a new thread, or gives it back if no thread can be made.
pub(crate) fn spawn_job(job: Job) -> Result<(), Job> {
    match Thread::create("scoped", sched::pick_cpu(), job) {
        Ok(t) => {
            sched::make_ready(t);
            Ok(())
        }
        Err((_, job)) => Err(job),
    }
}

/// Gives a finished thread's slot back for reuse (its context is suspended).
pub(crate) fn free_slot(slot: usize) {
    FREE.lock().push(slot);
}

/// The running thread.
pub fn current() -> &'static Thread {
    sched::current_thread()
}

/// Gives the CPU to the next ready thread, if any.
pub fn yield_now() {
    sched::schedule();
}

/// Blocks until [`Thread::unpark`] (returns at once if an unpark came first).
/// May also return spuriously: callers re-check their condition.
pub fn park() {
    let t = current();
    if t.token.swap(false, Ordering::AcqRel) {
        return;
    }
    t.park_gen.fetch_add(1, Ordering::AcqRel);
    block(t);
}

/// Blocks the current thread `t` until an unpark (whose token may already be set).
fn block(t: &'static Thread) {
    t.state.store(BLOCKED, Ordering::Release);
    if t.token.swap(false, Ordering::AcqRel) {
        // An unpark raced with us: undo, unless it already queued us.
        if t.state.compare_exchange(BLOCKED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return;
        }
    }
    sched::schedule();
}

/// Like [`park`], but returns after `timeout` at the latest. True if it timed out.
pub fn park_timeout(timeout: Duration) -> bool {
    let deadline = crate::time::monotonic_nanos().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64);
    park_until(deadline)
}

/// Parks until `deadline` (monotonic ns) at the latest. True if it timed out.
pub(crate) fn park_until(deadline: u64) -> bool {
    let t = current();
    if t.token.swap(false, Ordering::AcqRel) {
        return false;
    }
    t.timed_out.store(false, Ordering::Release);
    // Take this park's generation before the timer exists: a timer that fires
    // before we block still matches it and leaves a token (regression: the
    // timer could fire between being armed and the park, was taken as stale,
    // and the thread slept forever).
    let generation = t.park_gen.fetch_add(1, Ordering::AcqRel) + 1;
    sched::add_timer(deadline, t, generation);
    block(t);
    t.timed_out.swap(false, Ordering::AcqRel)
}

/// Called by a CPU's timer queue when `t`'s deadline for park `generation` passed.
pub(crate) fn timer_fired(t: &'static Thread, generation: u64) {
    // The park this timer was set for is still the thread's latest (it may not
    // have blocked yet: then the token makes it return at once).
    if t.park_gen.load(Ordering::Acquire) == generation && t.state.load(Ordering::Acquire) != EXITED {
        t.timed_out.store(true, Ordering::Release);
        t.unpark();
    }
}

/// Sleeps for `d`.
pub fn sleep(d: Duration) {
    let deadline = crate::time::monotonic_nanos().saturating_add(d.as_nanos().min(u64::MAX as u128) as u64);
    sleep_until(deadline);
}

/// Sleeps until the monotonic clock reads `deadline` ns.
pub fn sleep_until(deadline: u64) {
    while crate::time::monotonic_nanos() < deadline {
        park_until(deadline);
    }
}
