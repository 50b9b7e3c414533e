//! Deliberate faults, for the in-QEMU test suite: each provokes one kind of
//! CPU exception so that tests can check the fault path and its report. They
//! never return (the exception handler ends the VM).
use alloc::boxed::Box;

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

/// A large static in `.bss` that nothing writes: all zero if `.bss` was zeroed.
static BSS_PROBE: [u64; 8192] = [0; 8192];

/// True when the `.bss` probe is all zero (read through volatile loads, so the
/// compiler cannot assume the answer).
pub fn bss_probe_is_zero() -> bool {
    BSS_PROBE.iter().all(|w| {
        // SAFETY: reading an element of a static array.
        unsafe { core::ptr::read_volatile(w) == 0 }
    })
}
