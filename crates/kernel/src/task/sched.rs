//! The per-CPU scheduler: run queues, inboxes, timers, idle loops, the tick.
use super::thread::{self, Thread, BLOCKED, READY, RUNNING};
use alloc::boxed::Box;
use alloc::vec::Vec;
use bareflow_hal::smp::{self, MAX_CPUS};
use bareflow_hal::task::IrqMutex;
use bareflow_sched::{RunQueue, TimerHeap};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use spin::Once;

/// Time slice (preemption) default: 10 ms; `bareflow.slice_ms=N` changes it.
const DEFAULT_SLICE_NS: u64 = 10_000_000;

struct Cpu {
    queue: IrqMutex<RunQueue<&'static Thread>>,
    /// Threads other CPUs made ready for this one (LWKT messages).
    inbox: IrqMutex<Vec<&'static Thread>>,
    timers: IrqMutex<TimerHeap<(&'static Thread, u64)>>,
    current: IrqMutex<Option<&'static Thread>>,
    idle: Once<&'static Thread>,
    halted: AtomicBool,
    switches: AtomicU64,
    preemptions: AtomicU64,
    threads: AtomicUsize,
    /// Slot of a thread that exited on this CPU, freed by the next context.
    reap: IrqMutex<Option<usize>>,
    /// A thread leaving this CPU for another (`migrate_to`), posted to its new
    /// CPU by the next context, once the leaving one's registers are saved.
    handoff: IrqMutex<Option<(&'static Thread, usize)>>,
}

impl Cpu {
    const fn new() -> Self {
        Cpu {
            queue: IrqMutex::new(RunQueue::new(DEFAULT_SLICE_NS)),
            inbox: IrqMutex::new(Vec::new()),
            timers: IrqMutex::new(TimerHeap::new()),
            current: IrqMutex::new(None),
            idle: Once::new(),
            halted: AtomicBool::new(false),
            switches: AtomicU64::new(0),
            preemptions: AtomicU64::new(0),
            threads: AtomicUsize::new(0),
            reap: IrqMutex::new(None),
            handoff: IrqMutex::new(None),
        }
    }
}

static CPUS: [Cpu; MAX_CPUS] = [const { Cpu::new() }; MAX_CPUS];
static ONLINE: AtomicUsize = AtomicUsize::new(1);
static PLACE_HINT: AtomicUsize = AtomicUsize::new(0);
static SLICE_NS: AtomicU64 = AtomicU64::new(DEFAULT_SLICE_NS);

/// Per-CPU counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuStats {
    /// Context switches.
    pub switches: u64,
    /// Of which forced by the tick (time slice used up).
    pub preemptions: u64,
    /// Threads ever placed on this CPU.
    pub threads: usize,
}

/// Counters of CPU `cpu`.
pub fn stats(cpu: usize) -> CpuStats {
    let c = &CPUS[cpu.min(MAX_CPUS - 1)];
    CpuStats {
        switches: c.switches.load(Ordering::Relaxed),
        preemptions: c.preemptions.load(Ordering::Relaxed),
        threads: c.threads.load(Ordering::Relaxed),
    }
}

/// CPUs running the scheduler.
pub fn cpu_count() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Same as [`cpu_count`]: how many threads can run at once.
pub fn available_parallelism() -> usize {
    cpu_count()
}

/// True if a thread other than the running one is ready on this CPU (queued,
/// or posted to its inbox): a spin-wait should yield to it rather than spin.
pub fn others_ready_here() -> bool {
    let c = &CPUS[current_cpu()];
    !c.queue.lock().is_empty() || !c.inbox.lock().is_empty()
}

/// The CPU running this code.
pub fn current_cpu() -> usize {
    smp::cpu_index()
}

pub(super) fn current_thread() -> &'static Thread {
    let c = &CPUS[current_cpu()];
    c.current.lock().expect("the scheduler runs on this CPU")
}

pub(super) fn pick_cpu() -> usize {
    let n = cpu_count();
    // Load: threads queued or posted to it, plus one if the CPU runs a thread
    // now (not its idle loop).
    let loads: Vec<usize> = (0..n)
        .map(|c| {
            let cpu = &CPUS[c];
            let running = match (*cpu.current.lock(), cpu.idle.get()) {
                (Some(cur), Some(idle)) => !core::ptr::eq(cur, *idle),
                (Some(_), None) => true,
                _ => false,
            };
            cpu.queue.lock().len() + cpu.inbox.lock().len() + running as usize
        })
        .collect();
    bareflow_sched::place(&loads, PLACE_HINT.fetch_add(1, Ordering::Relaxed))
}

/// Brings the scheduler up on the boot CPU: the running code becomes the
/// `main` thread, and an idle thread is made for when nothing is ready.
pub fn init() {
    if let Some(ms) = crate::env::kernel_option("bareflow.slice_ms").and_then(|v| v.parse::<u64>().ok()) {
        SLICE_NS.store(ms.max(1) * 1_000_000, Ordering::Relaxed);
    }
    let slice = SLICE_NS.load(Ordering::Relaxed);
    for c in CPUS.iter() {
        c.queue.lock().slice_ns = slice;
    }
    let main = Thread::adopt("main", 0);
    *CPUS[0].current.lock() = Some(main);
    main.slice_start.store(crate::time::monotonic_nanos(), Ordering::Relaxed);
    let idle = Thread::create_with_stack("idle/0", 0, 8, Box::new(|| idle_loop()))
        .unwrap_or_else(|(e, _)| panic!("no idle thread: {e:?}"));
    idle.state.store(BLOCKED, Ordering::Release);
    CPUS[0].idle.call_once(|| idle);
    bareflow_hal::time::set_tick_hook(on_tick);
}

/// Starts the other CPUs (those ACPI lists); each runs its idle loop and
/// takes threads. Returns the number of CPUs now scheduling.
pub fn start_secondary_cpus() -> usize {
    let n = smp::start_aps(ap_main);
    // Wait until each started CPU registered its idle thread.
    while (1..n).any(|c| CPUS[c].idle.get().is_none()) {
        core::hint::spin_loop();
    }
    ONLINE.store(n, Ordering::Release);
    n
}

fn ap_main(cpu: usize) -> ! {
    let idle = Thread::adopt("idle", cpu);
    idle.state.store(RUNNING, Ordering::Release);
    *CPUS[cpu].current.lock() = Some(idle);
    CPUS[cpu].idle.call_once(|| idle);
    idle_loop()
}

fn idle_loop() -> ! {
    let cpu = current_cpu();
    let c = &CPUS[cpu];
    loop {
        // All with interrupts off until `sti; hlt` (which enables them and
        // halts atomically): a wake-up IPI or tick that arrives after the
        // check stays pending and ends the `hlt` at once. `halted` is set
        // before the inbox is read under its lock, so a CPU that posts to
        // the inbox after that read sees `halted` and sends the IPI.
        let has_work = bareflow_hal::task::without_interrupts(|| {
            c.halted.store(true, Ordering::Release);
            drain_inbox(c);
            if !c.queue.lock().is_empty() {
                c.halted.store(false, Ordering::Release);
                return true;
            }
            bareflow_hal::trap::wait_for_interrupt();
            c.halted.store(false, Ordering::Release);
            false
        });
        if has_work {
            schedule();
        }
    }
}

fn drain_inbox(c: &Cpu) {
    let msgs: Vec<&'static Thread> = core::mem::take(&mut *c.inbox.lock());
    if !msgs.is_empty() {
        let mut q = c.queue.lock();
        for t in msgs {
            q.push(t);
        }
    }
}

/// Queues a READY thread on its CPU: directly when that is this CPU, else as
/// a message to the owner with a wake-up IPI.
pub(super) fn make_ready(t: &'static Thread) {
    let target = t.cpu.load(Ordering::Acquire);
    let here = current_cpu();
    if target == here {
        CPUS[here].queue.lock().push(t);
    } else {
        CPUS[target].inbox.lock().push(t);
        if CPUS[target].halted.load(Ordering::Acquire) {
            smp::send_ipi(target, smp::WAKE_VECTOR);
        }
    }
}

/// Leaves the current thread for good (it EXITED); its slot is freed by the
/// context that runs next, when this one's registers are saved.
pub(super) fn exit_current(slot: usize) -> ! {
    *CPUS[current_cpu()].reap.lock() = Some(slot);
    schedule();
    unreachable!("a finished thread was scheduled again");
}

/// Finishes what the context that ran before us on this CPU left behind, now
/// that it is suspended: frees the slot of a thread that exited, and posts a
/// migrating thread to its new CPU.
fn reap() {
    let c = &CPUS[current_cpu()];
    let slot = c.reap.lock().take();
    if let Some(slot) = slot {
        thread::free_slot(slot);
    }
    let handoff = c.handoff.lock().take();
    if let Some((t, cpu)) = handoff {
        CPUS[cpu].inbox.lock().push(t);
        smp::send_ipi(cpu, smp::WAKE_VECTOR);
    }
}

pub(super) fn thread_started(t: &'static Thread) {
    reap();
    CPUS[t.cpu()].threads.fetch_add(1, Ordering::Relaxed);
    t.slice_start.store(crate::time::monotonic_nanos(), Ordering::Relaxed);
}

pub(super) fn add_timer(deadline: u64, t: &'static Thread, generation: u64) {
    bareflow_hal::task::without_interrupts(|| {
        CPUS[current_cpu()].timers.lock().insert(deadline, (t, generation));
        bareflow_hal::time::arm_at(deadline);
    });
}

/// Switches to the next ready thread. The current thread is queued again
/// if it is still RUNNING (a yield or a preemption); if it BLOCKED or EXITED
/// it is not (whoever wakes it queues it).
pub(crate) fn schedule() {
    bareflow_hal::task::without_interrupts(|| {
        let cpu = current_cpu();
        let c = &CPUS[cpu];
        drain_inbox(c);
        let Some(cur) = *c.current.lock() else { return };
        let idle = c.idle.get().copied();
        let is_idle = idle.is_some_and(|i| core::ptr::eq(i, cur));
        let next = {
            let mut q = c.queue.lock();
            let st = cur.state.load(Ordering::Acquire);
            if st == RUNNING && !is_idle {
                cur.state.store(READY, Ordering::Release);
                q.push(cur);
            }
            q.pop()
        };
        let next = match next.or(idle) {
            Some(n) => n,
            None => return,
        };
        if core::ptr::eq(next, cur) {
            cur.state.store(RUNNING, Ordering::Release);
            return;
        }
        if is_idle {
            cur.state.store(BLOCKED, Ordering::Release);
        }
        next.state.store(RUNNING, Ordering::Release);
        next.slice_start.store(crate::time::monotonic_nanos(), Ordering::Relaxed);
        *c.current.lock() = Some(next);
        c.switches.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = bareflow_hal::task::switch(&cur.ctx, &next.ctx) {
            panic!("context switch refused: {e:?}");
        }
        // Back on `cur`'s stack, perhaps much later, perhaps on another CPU.
        reap();
    });
}

/// Hands the running thread to CPU `cpu`: it continues there.
///
/// The thread is posted to `cpu` only after it has left this CPU (by the
/// context that runs next here, see `reap`): posted earlier, `cpu` could try
/// to switch to it while its registers are still live here (regression: the
/// `migrate` case panicked with "context switch refused: TargetRunning").
pub fn migrate_to(cpu: usize) {
    let cpu = cpu.min(cpu_count().saturating_sub(1));
    let t = current_thread();
    if t.cpu() == cpu {
        return;
    }
    bareflow_hal::task::without_interrupts(|| {
        let here = &CPUS[current_cpu()];
        drain_inbox(here);
        let idle = here.idle.get().copied();
        let Some(next) = here.queue.lock().pop().or(idle) else {
            return; // nothing to leave this CPU to (before `init`): stay
        };
        t.cpu.store(cpu, Ordering::Release);
        t.state.store(READY, Ordering::Release);
        *here.handoff.lock() = Some((t, cpu));
        next.state.store(RUNNING, Ordering::Release);
        next.slice_start.store(crate::time::monotonic_nanos(), Ordering::Relaxed);
        *here.current.lock() = Some(next);
        here.switches.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = bareflow_hal::task::switch(&t.ctx, &next.ctx) {
            panic!("context switch refused: {e:?}");
        }
        // Running on `cpu` now.
        reap();
    });
}

/// The timer tick on every CPU (interrupts off): expire timers, preempt.
fn on_tick() {
    let cpu = current_cpu();
    let c = &CPUS[cpu];
    let now = crate::time::monotonic_nanos();
    loop {
        let fired = c.timers.lock().pop_expired(now);
        match fired {
            Some((t, generation)) => thread::timer_fired(t, generation),
            None => break,
        }
    }
    drain_inbox(c);
    let Some(cur) = *c.current.lock() else { return };
    let is_idle = c.idle.get().is_some_and(|i| core::ptr::eq(*i, cur));
    let slice_start = cur.slice_start.load(Ordering::Relaxed);
    let preempt = !is_idle && c.queue.lock().should_preempt(slice_start, now);
    // Next interrupt: the earliest timer, or the end of the running slice.
    if let Some(d) = c.timers.lock().next_deadline() {
        bareflow_hal::time::arm_at(d);
    }
    if !is_idle && !c.queue.lock().is_empty() {
        bareflow_hal::time::arm_at(slice_start + SLICE_NS.load(Ordering::Relaxed));
    }
    if preempt {
        c.preemptions.fetch_add(1, Ordering::Relaxed);
        schedule();
    } else if is_idle && !c.queue.lock().is_empty() {
        schedule();
    }
}
