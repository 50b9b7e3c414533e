//! Leaving the VM with an exit code.
use super::port::{inb, inw, outb, outw};
use crate::acpi::PowerOff;
use bareflow_abi::exit::{powered_off_line, to_port_value, PowerOffVia, DEBUG_EXIT_PORT};

/// Ends the VM: QEMU's `isa-debug-exit` device turns the code into the QEMU
/// process's exit status (`(code << 1) | 1`, see `bareflow_abi::exit`).
/// Without that device (Firecracker, cloud-hypervisor, a plain QEMU command
/// line), the machine is switched off through ACPI (S5) when the firmware
/// describes how; failing that, it is reset through the keyboard controller
/// (Firecracker ends the VM on that; QEMU does with `-no-reboot`); failing
/// that too, the CPU halts with interrupts off. Both lose the code, so it is
/// printed first (`run --no-debug-exit` reads it from that line).
pub fn exit(code: i32) -> ! {
    outb(DEBUG_EXIT_PORT, to_port_value(code));
    // Still running: there is no isa-debug-exit device.
    if let Some(how) = acpi_power_off_method() {
        super::console::write_raw(format_args!("{}\n", powered_off_line(code, PowerOffVia::Acpi)));
        power_off(how);
        super::console::write_raw(format_args!("bareflow: the ACPI power-off did not stop the machine\n"));
    } else {
        super::console::write_raw(format_args!("{}\n", powered_off_line(code, PowerOffVia::KeyboardController)));
    }
    keyboard_controller_reset();
    super::console::write_raw(format_args!("bareflow: the machine is still running; halting\n"));
    halt_forever()
}

/// Pulses the CPU reset line through the 8042 keyboard controller (command
/// 0xFE on port 0x64), once its input buffer is empty. Without a controller
/// the port reads 0xFF (bounded wait) and the write goes nowhere.
fn keyboard_controller_reset() {
    for _ in 0..100_000 {
        if inb(0x64) & 0x02 == 0 {
            break;
        }
        core::hint::spin_loop();
    }
    outb(0x64, 0xfe);
    for _ in 0..10_000_000 {
        core::hint::spin_loop();
    }
}

/// The firmware's power-off method, once boot information and the kernel's
/// page tables are up (an exit before that finds no tables and halts).
fn acpi_power_off_method() -> Option<PowerOff> {
    if !super::boot::boot_info_ready() {
        return None;
    }
    let fadt = super::smp::acpi_table(b"FACP")?;
    crate::acpi::power_off(fadt, super::dev::dsdt())
}

fn power_off(how: PowerOff) {
    match how {
        PowerOff::SleepControl { io: true, address, value } => {
            if let Ok(port) = u16::try_from(address) {
                outb(port, value);
            }
        }
        PowerOff::SleepControl { io: false, address, value } => {
            // Only registers the kernel's page tables map already: the device
            // window below 4 GiB (uncached) or RAM. Nothing is mapped here, so
            // an exit from inside the page-table code cannot deadlock on it.
            let device = super::mm::paging::DEVICE_WINDOW.contains(&address);
            if device || super::mm::is_mapped_ram(address, 1) {
                // SAFETY: an identity-mapped register the FADT names as the
                // sleep control register; writing it switches the machine off,
                // and no Rust value lives there.
                unsafe { core::ptr::write_volatile(address as *mut u8, value) };
            }
        }
        PowerOff::Pm1 { pm1a, pm1b, a_value, b_value, smi_cmd, acpi_enable } => {
            // ACPI mode first, if the firmware left it off (SCI_EN, bit 0).
            if inw(pm1a) & 1 == 0 && smi_cmd != 0 && acpi_enable != 0 {
                outb(smi_cmd, acpi_enable);
                for _ in 0..100_000 {
                    if inw(pm1a) & 1 != 0 {
                        break;
                    }
                    core::hint::spin_loop();
                }
            }
            // SLP_TYP (bits 10-12) and SLP_EN (bit 13); the other bits kept.
            let keep = !0x3c00u16;
            if pm1b != 0 {
                outw(pm1b, (inw(pm1b) & keep) | b_value);
            }
            outw(pm1a, (inw(pm1a) & keep) | a_value);
        }
    }
    // The VMM may take a moment to act on it.
    for _ in 0..10_000_000 {
        core::hint::spin_loop();
    }
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt only stops this CPU; nothing is left to run.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) }
    }
}
