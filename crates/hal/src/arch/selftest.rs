//! Deliberate faults, for the in-QEMU test suite: each provokes one kind of
//! CPU exception so that tests can check the fault path and its report. They
//! never return (the exception handler ends the VM).
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};

/// Writes to kernel text (mapped read-execute): a page fault, write, protection violation.
pub fn write_to_text() -> ! {
    let target = write_to_text as *const () as u64;
    // SAFETY: the store faults (text is RX and CR0.WP is set); the handler
    // exits the VM, so execution never continues past it.
    unsafe { core::arch::asm!("mov byte ptr [{}], 0xcc", in(reg) target, options(nostack)) };
    unreachable!("a write to kernel text did not fault");
}

/// Calls into the heap (mapped read-write, no-execute): a page fault on instruction fetch.
pub fn jump_to_heap() -> ! {
    let code: Box<[u8; 16]> = Box::new([0xc3; 16]); // `ret`
    let target = code.as_ptr() as u64;
    // SAFETY: the call faults on the NX heap page before executing anything;
    // the handler exits the VM.
    unsafe { core::arch::asm!("call {}", in(reg) target, clobber_abi("C")) };
    unreachable!("executing from the heap did not fault");
}

/// Reads address 0 (the null page is not mapped).
pub fn read_null() -> ! {
    let v: u64;
    // SAFETY: the load faults (page 0 is not present); the handler exits the VM.
    unsafe { core::arch::asm!("mov {}, qword ptr [0]", out(reg) v, options(nostack, readonly)) };
    unreachable!("reading address 0 did not fault (read {v:#x})");
}

/// A large zero-initialised static that nothing writes. Interior mutability
/// keeps it out of `.rodata` (an immutable zero array lands there, where the
/// check below would prove nothing), so the linker places it in `.bss`.
static BSS_PROBE: [AtomicU64; 8192] = [const { AtomicU64::new(0) }; 8192];

/// Why the `.bss` check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BssError {
    /// The probe is not inside `[__bss_start, __bss_end)`: the check would not test `.bss`.
    NotInBss { probe: u64, bss: (u64, u64) },
    /// A word of the probe was not zero at its first read.
    NotZero { index: usize, value: u64 },
}

/// Checks that the `.bss` probe lies in `.bss` and is all zero (read once,
/// atomically, so the compiler cannot assume the answer).
pub fn check_bss_zero() -> Result<(), BssError> {
    let probe = BSS_PROBE.as_ptr() as u64;
    let bss = super::mm::image_layout().bss;
    let end = probe + core::mem::size_of_val(&BSS_PROBE) as u64;
    if probe < bss.0 || end > bss.1 {
        return Err(BssError::NotInBss { probe, bss });
    }
    match BSS_PROBE.iter().map(|w| w.load(Ordering::Relaxed)).enumerate().find(|&(_, v)| v != 0) {
        Some((index, value)) => Err(BssError::NotZero { index, value }),
        None => Ok(()),
    }
}
