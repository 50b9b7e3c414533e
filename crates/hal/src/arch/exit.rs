//! Leaving the VM with an exit code.
use super::port::outb;
use bareflow_abi::exit::{to_port_value, DEBUG_EXIT_PORT};

/// Ends the VM: QEMU's `isa-debug-exit` device turns the code into the QEMU
/// process's exit status (`(code << 1) | 1`, see `bareflow_abi::exit`). Without
/// that device (another VMM), the CPU halts with interrupts off.
pub fn exit(code: i32) -> ! {
    outb(DEBUG_EXIT_PORT, to_port_value(code));
    super::console::write_raw(format_args!(
        "bareflow: exit code {code}; no isa-debug-exit device, halting\n"
    ));
    halt_forever()
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt only stops this CPU; nothing is left to run.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) }
    }
}
