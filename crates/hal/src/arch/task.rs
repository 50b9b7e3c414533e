//! Execution contexts for the kernel's threads (fibers), the switch between
//! them, interrupt-safe spin locks, and scoped spawning.
//!
//! A [`Context`] is a stack plus the place its stack pointer is saved when it
//! is not running. [`switch`] is safe to call: it checks at run time that
//! `from` is the context running on this CPU and claims `to` atomically (a
//! context suspended on another CPU is waited for until its registers are
//! saved), so no two CPUs can ever run on one stack and no stack is freed
//! while in use (dropping a running context panics instead).
//!
//! A cooperative switch saves the callee-saved registers plus MXCSR and the
//! x87 control word (the System V ABI's callee-saved FP state). A switch from
//! an interrupt handler (preemption) additionally has the interrupted
//! thread's full register and SSE/AVX state saved by the trap entry
//! (`xsave64` when available) on its own stack.
use super::mm::{MapError, Pages};
use super::smp::{cpu_index, MAX_CPUS};
use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};

const SUSPENDED: u8 = 0;
const RUNNING: u8 = 1;
const SWITCHING_OUT: u8 = 2;
const RESETTING: u8 = 3;

core::arch::global_asm!(
    ".section .text.bareflow_switch, \"ax\"",
    ".global bareflow_switch",
    // fn bareflow_switch(save_rsp: *mut u64 (rdi), load_rsp: u64 (rsi))
    "bareflow_switch:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "stmxcsr [rsp]",
    "fnstcw [rsp + 4]",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "ldmxcsr [rsp]",
    "fldcw [rsp + 4]",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    // First instructions of a new context: r12 = entry, r13 = argument.
    ".global bareflow_context_start",
    "bareflow_context_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "mov rdi, r12",
    "mov rsi, r13",
    "call {start}",
    "ud2",
    start = sym context_start,
);

unsafe extern "C" {
    fn bareflow_switch(save_rsp: *mut u64, load_rsp: u64);
    fn bareflow_context_start();
}

/// A thread's execution context.
pub struct Context {
    rsp: UnsafeCell<u64>,
    state: AtomicU8,
    /// Owned: the stack is freed when the context drops (never while running).
    _stack: Option<Pages>,
}

// SAFETY: `rsp` is only written by the CPU switching out of the context
// (while it is SWITCHING_OUT, owned by that CPU) and read by the CPU
// switching in after it observed SUSPENDED with Acquire ordering.
unsafe impl Sync for Context {}
// SAFETY: as above; the stack pages are owned and only freed when SUSPENDED.
unsafe impl Send for Context {}

impl core::fmt::Debug for Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context").field("state", &self.state.load(Ordering::Relaxed)).finish()
    }
}

/// Lays out, at the top of `stack`, the frame `bareflow_switch` pops to start
/// `entry(arg)`: FP control words, r15, r14, r13 (= arg), r12 (= entry), rbx,
/// rbp, return address (`bareflow_context_start`). Returns the stack pointer.
fn initial_frame(stack: &mut [u8], entry: fn(usize) -> !, arg: usize) -> u64 {
    let frame: [u64; 8] = [
        0x037f_0000_1f80, // MXCSR 0x1f80 (all exceptions masked), FCW 0x037f
        0,
        0,
        arg as u64,
        entry as usize as u64,
        0,
        0,
        bareflow_context_start as *const () as usize as u64,
    ];
    let n = stack.len();
    let base = n - 8 * 8 - 8; // keep the top 8 bytes free (alignment)
    for (i, w) in frame.iter().enumerate() {
        stack[base + i * 8..base + i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    stack.as_ptr() as u64 + base as u64
}

/// The context running on each CPU.
static CURRENT: [AtomicPtr<Context>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
/// The context each CPU just switched away from, to be marked SUSPENDED by the one switched to.
static PREV: [AtomicPtr<Context>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];

/// Set while interrupts were disabled by [`without_interrupts`].
fn interrupts_enabled() -> bool {
    let f: u64;
    // SAFETY: reads RFLAGS.
    unsafe { core::arch::asm!("pushfq; pop {}", out(reg) f, options(nomem, preserves_flags)) };
    f & (1 << 9) != 0
}

/// Runs `f` with interrupts disabled on this CPU, restoring the previous state.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let was = interrupts_enabled();
    // SAFETY: cli only masks interrupts on this CPU.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    let r = f();
    if was {
        // SAFETY: restores the state found on entry.
        unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
    }
    r
}

impl Context {
    /// A new context that, when first switched to, runs `entry(arg)` on a
    /// fresh stack of `pages` pages with a guard page below it.
    /// `entry` must never return (the kernel's thread exit switches away for good).
    pub fn new(pages: u64, name: &'static str, entry: fn(usize) -> !, arg: usize) -> Result<Context, MapError> {
        let mut stack = Pages::alloc_stack(pages, name)?;
        let rsp = initial_frame(stack.as_mut_slice()?, entry, arg);
        Ok(Context { rsp: UnsafeCell::new(rsp), state: AtomicU8::new(SUSPENDED), _stack: Some(stack) })
    }

    /// Makes a suspended context start over with `entry(arg)` on its own
    /// stack (to reuse a finished thread's context). Waits out a switch in
    /// progress; fails if the context is running or has no stack of its own.
    pub fn reset(&self, entry: fn(usize) -> !, arg: usize) -> Result<(), SwitchError> {
        loop {
            match self.state.compare_exchange(SUSPENDED, RESETTING, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(SWITCHING_OUT) => core::hint::spin_loop(),
                Err(_) => return Err(SwitchError::TargetRunning),
            }
        }
        let Some(stack) = self._stack.as_ref() else {
            self.state.store(SUSPENDED, Ordering::Release);
            return Err(SwitchError::TargetRunning);
        };
        // SAFETY: RESETTING excludes every other use of this context (no CPU
        // can switch to it, Drop waits), so its stack is ours to rewrite; the
        // pages are mapped read-write for as long as the context lives.
        let words = unsafe { core::slice::from_raw_parts_mut(stack.addr() as *mut u8, stack.len() as usize) };
        let rsp = initial_frame(words, entry, arg);
        // SAFETY: as above, nobody reads `rsp` while RESETTING.
        unsafe { *self.rsp.get() = rsp };
        self.state.store(SUSPENDED, Ordering::Release);
        Ok(())
    }

    /// A context that never runs (a placeholder in tables).
    pub const fn placeholder() -> Context {
        Context { rsp: UnsafeCell::new(0), state: AtomicU8::new(SUSPENDED), _stack: None }
    }

    /// A context for the code running now on this CPU (its boot or main
    /// stack). It becomes this CPU's current context with [`register_current`](Self::register_current).
    pub fn for_running_flow() -> Context {
        Context { rsp: UnsafeCell::new(0), state: AtomicU8::new(RUNNING), _stack: None }
    }

    /// Makes this (a [`for_running_flow`](Self::for_running_flow) context, placed
    /// where it will stay) the current context of this CPU. Once per CPU.
    pub fn register_current(&'static self) -> Result<(), SwitchError> {
        if self._stack.is_some() || self.state.load(Ordering::Acquire) != RUNNING {
            return Err(SwitchError::NotCurrent);
        }
        CURRENT[cpu_index()]
            .compare_exchange(
                core::ptr::null_mut(),
                self as *const Context as *mut Context,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(|_| ())
            .map_err(|_| SwitchError::NotCurrent)
    }

    /// True while this context runs on some CPU.
    pub fn is_running(&self) -> bool {
        self.state.load(Ordering::Acquire) != SUSPENDED
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // Wait out a switch in progress on another CPU (it ends in a few instructions).
        while self.state.load(Ordering::Acquire) == SWITCHING_OUT {
            core::hint::spin_loop();
        }
        assert!(self.state.load(Ordering::Acquire) == SUSPENDED, "dropping the context that is running");
    }
}

/// Marks the context we came from as suspended (its registers are saved now).
fn finish_switch() {
    let prev = PREV[cpu_index()].swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !prev.is_null() {
        // SAFETY: `prev` was the current context of this CPU; its owner cannot
        // free it while it is SWITCHING_OUT (Drop waits), so it is alive.
        unsafe { (*prev).state.store(SUSPENDED, Ordering::Release) };
    }
}

extern "C" fn context_start(entry: usize, arg: usize) -> ! {
    finish_switch();
    // SAFETY: `Context::new` stored a `fn(usize) -> !` in r12.
    let f: fn(usize) -> ! = unsafe { core::mem::transmute::<usize, fn(usize) -> !>(entry) };
    // SAFETY: a new thread starts with interrupts enabled.
    unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
    f(arg)
}

/// Why a switch was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchError {
    /// `from` is not the context running on this CPU.
    NotCurrent,
    /// `to` is running (on this or another CPU).
    TargetRunning,
}

/// Suspends `from` (the context running on this CPU) and resumes `to`.
/// Returns when something switches back to `from`.
pub fn switch(from: &Context, to: &Context) -> Result<(), SwitchError> {
    if core::ptr::eq(from, to) {
        return Ok(());
    }
    without_interrupts(|| {
        let cpu = cpu_index();
        if !core::ptr::eq(CURRENT[cpu].load(Ordering::Acquire), from) {
            return Err(SwitchError::NotCurrent);
        }
        // Claim `to`: wait while it is still switching out elsewhere.
        loop {
            match to.state.compare_exchange(SUSPENDED, RUNNING, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(SWITCHING_OUT) => {
                    super::smp::service_tlb_requests();
                    core::hint::spin_loop()
                }
                Err(_) => return Err(SwitchError::TargetRunning),
            }
        }
        from.state.store(SWITCHING_OUT, Ordering::Release);
        PREV[cpu].store(from as *const Context as *mut Context, Ordering::Release);
        CURRENT[cpu].store(to as *const Context as *mut Context, Ordering::Release);
        // SAFETY: `to` is SUSPENDED-then-claimed, so its saved rsp points at a
        // frame bareflow_switch (or Context::new) laid out on its live stack;
        // `from` is this CPU's running context and its rsp slot is ours to write.
        unsafe { bareflow_switch(from.rsp.get(), *to.rsp.get()) };
        // Back in `from`, possibly on another CPU after a hand-off.
        finish_switch();
        Ok(())
    })
}

/// A spin lock that also disables interrupts on this CPU while held, so it
/// can be shared between threads and interrupt handlers.
pub struct IrqMutex<T> {
    lock: spin::Mutex<T>,
}

/// The guard of an [`IrqMutex`].
pub struct IrqGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    was_enabled: bool,
}

impl<T> IrqMutex<T> {
    /// A new lock.
    pub const fn new(v: T) -> Self {
        IrqMutex { lock: spin::Mutex::new(v) }
    }

    /// Locks, with interrupts off until the guard drops.
    pub fn lock(&self) -> IrqGuard<'_, T> {
        let was_enabled = interrupts_enabled();
        // SAFETY: masks interrupts on this CPU; restored by the guard.
        unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
        loop {
            if let Some(g) = self.lock.try_lock() {
                return IrqGuard { guard: Some(g), was_enabled };
            }
            // Interrupts are off: answer TLB shootdowns by polling meanwhile.
            super::smp::service_tlb_requests();
            core::hint::spin_loop();
        }
    }
}

impl<T> core::ops::Deref for IrqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> core::ops::DerefMut for IrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard present until drop")
    }
}

impl<T> Drop for IrqGuard<'_, T> {
    fn drop(&mut self) {
        self.guard = None;
        if self.was_enabled {
            // SAFETY: restores the interrupt state found when locking.
            unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
        }
    }
}

/// A raw spin lock that keeps interrupts off on its CPU while held, for
/// `lock_api` users (the heap). An interrupt handler that takes the same lock
/// (the scheduler's tick frees and grows its queues) can then never spin on a
/// lock that the thread it interrupted holds on the same CPU.
pub struct IrqRawMutex {
    locked: AtomicBool,
    /// The interrupt flag found by the holder when it locked (restored on unlock).
    was_enabled: AtomicBool,
}

// SAFETY: `lock` returns only after this CPU set `locked` from false to true
// with Acquire ordering, `unlock` clears it with Release, so at most one holder
// exists at a time and its writes are visible to the next holder.
unsafe impl lock_api::RawMutex for IrqRawMutex {
    #[allow(clippy::declare_interior_mutable_const)] // lock_api's required constructor
    const INIT: Self = IrqRawMutex { locked: AtomicBool::new(false), was_enabled: AtomicBool::new(false) };
    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        let was = interrupts_enabled();
        // SAFETY: masks interrupts on this CPU; `unlock` restores the flag.
        unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            // Interrupts are off: answer TLB shootdowns by polling meanwhile.
            super::smp::service_tlb_requests();
            core::hint::spin_loop();
        }
        self.was_enabled.store(was, Ordering::Relaxed);
    }

    fn try_lock(&self) -> bool {
        let was = interrupts_enabled();
        // SAFETY: as in `lock`; undone below when the lock is not taken.
        unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
        if self.locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.was_enabled.store(was, Ordering::Relaxed);
            return true;
        }
        if was {
            // SAFETY: restores the state found on entry.
            unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
        }
        false
    }

    unsafe fn unlock(&self) {
        let was = self.was_enabled.load(Ordering::Relaxed);
        self.locked.store(false, Ordering::Release);
        if was {
            // SAFETY: restores the interrupt flag the holder found when locking.
            unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
        }
    }
}

/// A job spawned into a [`scope`]: a closure with its borrow lifetime erased.
pub type ScopedJob = Box<dyn FnOnce() + Send + 'static>;

/// A scope in which closures borrowing from the caller's stack may run on
/// other threads; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    pending: AtomicUsize,
    spawn: &'scope (dyn Fn(ScopedJob) + Sync),
    _env: PhantomData<&'scope mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Runs `f` on another thread (the kernel decides which, through the
    /// spawn function given to [`scope`]). It finishes before `scope` returns.
    pub fn spawn(&'scope self, f: impl FnOnce() + Send + 'scope) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        let pending: &'scope AtomicUsize = &self.pending;
        let job: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || {
            f();
            pending.fetch_sub(1, Ordering::AcqRel);
        });
        // SAFETY: `scope` does not return (and, panics aborting the VM,
        // cannot unwind) before `pending` drops back to zero, i.e. before this
        // job and its borrows of 'scope are finished. So erasing the lifetime
        // to 'static cannot let the job outlive what it borrows.
        let job: ScopedJob =
            unsafe { core::mem::transmute::<Box<dyn FnOnce() + Send + 'scope>, ScopedJob>(job) };
        (self.spawn)(job);
    }
}

/// Runs `f` with a [`Scope`]; every closure spawned into it has finished when
/// this returns. `spawn` starts a job on some thread; `wait` is called while
/// jobs are pending, and should block or yield briefly before returning.
pub fn scope<'env, R>(
    spawn: &(dyn Fn(ScopedJob) + Sync),
    wait: &dyn Fn(),
    f: impl for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
) -> R {
    let s = Scope { pending: AtomicUsize::new(0), spawn, _env: PhantomData };
    let r = f(&s);
    while s.pending.load(Ordering::Acquire) != 0 {
        wait();
    }
    r
}
