//! Time: the TSC as the monotonic clock, calibrated against the PIT; the LAPIC
//! timer as the tick source.
//!
//! Reference clock: the 8254 PIT (channel 2, 1.193182 MHz), which every
//! machine type we boot on has (pc, q35, microvm). At boot the TSC is measured
//! over at least 0.5 ms of PIT time (±0.2 %); the timer interrupt then refines
//! the rate over the PIT's whole 55 ms one-shot count (±0.002 %), re-basing the
//! clock so that it never goes backwards. The LAPIC timer is calibrated in the
//! same boot window; it then runs one-shot, armed for the next deadline on its
//! CPU (timers, the end of a time slice) and at least every 1/[`TICK_HZ`] s.
use super::cpu::rdtsc;
use super::port::{inb, outb};
use super::{boot, console, trap};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// LAPIC timer interrupts per second.
pub const TICK_HZ: u64 = 100;
/// The vector of the LAPIC timer.
pub const TIMER_VECTOR: u8 = 32;
const PIT_HZ: u64 = 1_193_182;
const LAPIC_BASE: u64 = 0xfee0_0000;

/// `ns = ((tsc - BASE_TSC) * MULT) >> 32 + BASE_NS`
static MULT: AtomicU64 = AtomicU64::new(0);
static BASE_TSC: AtomicU64 = AtomicU64::new(0);
static BASE_NS: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static LAPIC_HZ: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);
static REFINED: AtomicBool = AtomicBool::new(false);
/// TSC and PIT count at the start of the PIT one-shot.
static PIT_T0: AtomicU64 = AtomicU64::new(0);

pub(crate) fn lapic_write(reg: u64, v: u32) {
    // SAFETY: the LAPIC's MMIO page is identity-mapped as device memory;
    // `reg` is one of its architectural 32-bit registers.
    unsafe { core::ptr::write_volatile((LAPIC_BASE + reg) as *mut u32, v) }
}

pub(crate) fn lapic_read(reg: u64) -> u32 {
    // SAFETY: as for `lapic_write`.
    unsafe { core::ptr::read_volatile((LAPIC_BASE + reg) as *const u32) }
}

/// Reads the PIT channel 2 counter (counts down from 0xffff).
fn pit_count() -> u16 {
    outb(0x43, 0b1000_0000); // latch channel 2
    let lo = inb(0x42) as u16;
    let hi = inb(0x42) as u16;
    hi << 8 | lo
}

/// Even when the rate is stable, odd while [`set_rate`] changes it (a seqlock:
/// the tick handler may re-base the clock under a reader on the same CPU).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since boot on the monotonic clock.
pub fn monotonic_nanos() -> u64 {
    loop {
        let s = SEQ.load(Ordering::Acquire);
        let mult = MULT.load(Ordering::Acquire);
        let base_tsc = BASE_TSC.load(Ordering::Acquire);
        let base_ns = BASE_NS.load(Ordering::Acquire);
        if s % 2 == 1 || SEQ.load(Ordering::Acquire) != s {
            continue;
        }
        if mult == 0 {
            return 0;
        }
        let d = rdtsc().saturating_sub(base_tsc);
        return base_ns + ((d as u128 * mult as u128) >> 32) as u64;
    }
}

/// TSC ticks per second.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// LAPIC timer input clock, Hz.
pub fn lapic_hz() -> u64 {
    LAPIC_HZ.load(Ordering::Relaxed)
}

/// LAPIC timer interrupts since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Nanoseconds from the first instruction to now (TSC-based).
pub fn since_entry_nanos() -> u64 {
    entry_to_nanos(rdtsc())
}

/// Nanoseconds from the first instruction to TSC reading `tsc` (0 before calibration).
pub(crate) fn entry_to_nanos(tsc: u64) -> u64 {
    let entry = boot::boot_info().tsc_at_entry;
    let hz = tsc_hz();
    if hz == 0 {
        return 0;
    }
    ((tsc.saturating_sub(entry)) as u128 * 1_000_000_000 / hz as u128) as u64
}

fn set_rate(hz: u64, base_tsc: u64, base_ns: u64) {
    SEQ.fetch_add(1, Ordering::AcqRel);
    TSC_HZ.store(hz, Ordering::Relaxed);
    BASE_TSC.store(base_tsc, Ordering::Release);
    BASE_NS.store(base_ns, Ordering::Release);
    MULT.store(((1_000_000_000u128 << 32) / hz as u128) as u64, Ordering::Release);
    SEQ.fetch_add(1, Ordering::AcqRel);
}

/// Starts the calibration window (the PIT one-shot and the LAPIC count);
/// [`init`] ends it, so the rest of boot runs inside the window.
pub(crate) fn start_calibration() {
    // Mask the legacy 8259 PICs: interrupts come through the LAPIC/IOAPIC.
    outb(0x21, 0xff);
    outb(0xa1, 0xff);

    // PIT channel 2: gate on, speaker off, mode 0, full count.
    let g = inb(0x61);
    outb(0x61, (g & !0x02) | 0x01);
    outb(0x43, 0b1011_0000);
    outb(0x42, 0xff);
    outb(0x42, 0xff);
    let g = inb(0x61);
    outb(0x61, g & !0x01);
    outb(0x61, g | 0x01);

    // LAPIC: software-enable (spurious vector 0xff), timer one-shot, masked, to measure.
    lapic_write(0xf0, 0x1ff);
    lapic_write(0x3e0, 0b1011); // divide by 1
    lapic_write(0x320, 1 << 16);
    lapic_write(0x380, u32::MAX);

    PIT_C0.store(pit_count() as u64, Ordering::Relaxed);
    PIT_T0.store(rdtsc(), Ordering::Relaxed);
    LAPIC_C0.store(lapic_read(0x390) as u64, Ordering::Relaxed);
}

static LAPIC_C0: AtomicU64 = AtomicU64::new(0);

/// Ends calibration (waiting until the window is at least 0.5 ms long) and starts the tick.
pub(crate) fn init() {
    let c0 = PIT_C0.load(Ordering::Relaxed) as u16;
    let t0 = PIT_T0.load(Ordering::Relaxed);
    let l0 = LAPIC_C0.load(Ordering::Relaxed) as u32;
    let min_ticks = PIT_HZ / 2000; // 0.5 ms
    let deadline = t0 + 200_000_000; // if the PIT never moves, give up (about 0.1 s)
    let (mut c1, mut t1, mut l1);
    loop {
        c1 = pit_count();
        t1 = rdtsc();
        l1 = lapic_read(0x390);
        if c0.wrapping_sub(c1) as u64 >= min_ticks || t1 > deadline {
            break;
        }
    }
    let pit_ticks = c0.wrapping_sub(c1) as u64;
    let (tsc_hz, lapic_hz) = if pit_ticks >= min_ticks {
        ((t1 - t0) * PIT_HZ / pit_ticks, (l0 - l1) as u64 * PIT_HZ / pit_ticks)
    } else {
        console::write_fmt(format_args!("bareflow: no PIT found; assuming a 1 GHz TSC and LAPIC timer\n"));
        (1_000_000_000, 1_000_000_000)
    };
    REFINED.store(pit_ticks < min_ticks, Ordering::Relaxed);
    set_rate(tsc_hz, boot::boot_info().tsc_at_entry, 0);
    LAPIC_HZ.store(lapic_hz, Ordering::Relaxed);

    trap::set_irq_handler(TIMER_VECTOR, on_tick);
    arm_in(MAX_TICK_NS);
}

static PIT_C0: AtomicU64 = AtomicU64::new(0);

static TICK_HOOK: AtomicU64 = AtomicU64::new(0);

/// Installs the function every CPU's timer tick calls (after the interrupt is
/// acknowledged, with interrupts off): the kernel's scheduler tick.
pub fn set_tick_hook(hook: fn()) {
    TICK_HOOK.store(hook as usize as u64, Ordering::Release);
}

/// Longest time between two timer interrupts on a CPU (the tick floor).
const MAX_TICK_NS: u64 = 1_000_000_000 / TICK_HZ;

/// When each CPU's LAPIC timer fires next (monotonic ns).
static ARMED_AT: [AtomicU64; super::smp::MAX_CPUS] = [const { AtomicU64::new(0) }; super::smp::MAX_CPUS];

fn arm_in(ns: u64) {
    let count = (ns as u128 * lapic_hz() as u128 / 1_000_000_000).clamp(1, u32::MAX as u128) as u32;
    lapic_write(0x320, TIMER_VECTOR as u32); // one-shot
    lapic_write(0x380, count);
    ARMED_AT[super::smp::cpu_index()].store(monotonic_nanos().saturating_add(ns), Ordering::Release);
}

/// Makes this CPU's timer interrupt fire at `deadline` (monotonic ns) at the
/// latest: the LAPIC timer runs one-shot, re-armed at every interrupt for the
/// next deadline, and at least every 10 ms. Call with interrupts off.
pub fn arm_at(deadline: u64) {
    let now = monotonic_nanos();
    let armed = ARMED_AT[super::smp::cpu_index()].load(Ordering::Acquire);
    if armed <= now || deadline < armed {
        arm_in(deadline.saturating_sub(now).clamp(20_000, MAX_TICK_NS));
    }
}

fn on_tick(_vector: u8) {
    // The floor: the next interrupt in at most 10 ms (the hook may arm sooner).
    arm_in(MAX_TICK_NS);
    if super::smp::cpu_index() == 0 {
        TICKS.fetch_add(1, Ordering::Relaxed);
        if !REFINED.load(Ordering::Relaxed) {
            refine();
        }
    }
    lapic_write(0xb0, 0); // EOI
    let h = TICK_HOOK.load(Ordering::Acquire);
    if h != 0 {
        // SAFETY: only `set_tick_hook` stores non-zero values, and it stores a `fn()`.
        let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(h as usize) };
        f();
    }
}

/// Re-measures the TSC rate over the PIT's long one-shot (up to 55 ms).
fn refine() {
    let c = pit_count() as u64;
    let t = rdtsc();
    let c0 = PIT_C0.load(Ordering::Relaxed);
    let elapsed = c0.saturating_sub(c);
    // Stop before the count can wrap (mode 0 counts down past zero).
    if elapsed < PIT_HZ / 40 || c < 2000 {
        if c < 2000 {
            REFINED.store(true, Ordering::Relaxed);
        }
        return;
    }
    let hz = (t - PIT_T0.load(Ordering::Relaxed)) * PIT_HZ / elapsed;
    let now = monotonic_nanos();
    set_rate(hz, t, now);
    REFINED.store(true, Ordering::Relaxed);
}

/// This CPU's LAPIC ID.
pub fn lapic_id() -> u32 {
    lapic_read(0x20) >> 24
}

fn lapic_icr(dest: u32, low: u32) {
    lapic_write(0x310, dest << 24);
    lapic_write(0x300, low);
    for _ in 0..1_000_000 {
        if lapic_read(0x300) & (1 << 12) == 0 {
            break; // delivered
        }
        core::hint::spin_loop();
    }
}

/// Sends a fixed interrupt `vector` to the CPU with LAPIC ID `dest`.
pub(crate) fn lapic_send_ipi(dest: u32, vector: u32) {
    lapic_icr(dest, vector & 0xff);
}

fn spin_ns(ns: u64) {
    let t0 = monotonic_nanos();
    while monotonic_nanos() - t0 < ns {
        core::hint::spin_loop();
    }
}

/// INIT, then two start-up IPIs pointing at physical page `page` (the trampoline).
///
/// The waits between them are the ones real hardware needs (1 ms after INIT,
/// 200 us after each SIPI). A virtual CPU (CPUID's hypervisor bit) needs
/// none (Linux, too, drops the INIT wait on modern CPUs and waits 10 us
/// after a SIPI); under TCG they were 1.4 ms of the ~4 ms that
/// each extra CPU added to entry->main, so there the SIPIs follow at once (a
/// SIPI to a CPU already running is ignored).
pub(crate) fn lapic_send_init_sipi(dest: u32, page: u8) {
    let (after_init, after_sipi) =
        if super::cpu::features().hypervisor { (0, 10_000) } else { (1_000_000, 200_000) };
    lapic_icr(dest, 0x4500); // INIT, level assert
    spin_ns(after_init);
    for _ in 0..2 {
        lapic_icr(dest, 0x4600 | page as u32); // start-up
        spin_ns(after_sipi);
    }
}

/// Enables an application processor's LAPIC and starts its periodic tick.
pub(crate) fn init_ap() {
    lapic_write(0xf0, 0x1ff);
    lapic_write(0x3e0, 0b1011);
    arm_in(MAX_TICK_NS);
}

/// Acknowledges the interrupt being handled on this CPU.
pub fn end_of_interrupt() {
    lapic_write(0xb0, 0);
}
