//! x86 port I/O. Only this crate may touch ports; the functions here are
//! private to it, and each device module wraps the ports it owns.

/// Writes a byte to an I/O port.
pub(crate) fn outb(port: u16, value: u8) {
    // SAFETY: port writes have no memory effects; the callers in this crate
    // only write the device ports they own (serial, PIT, PIC, debug exit).
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) }
}

/// Reads a byte from an I/O port.
pub(crate) fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`: no memory effects, only ports this crate owns.
    unsafe { core::arch::asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags)) }
    value
}

/// Writes a 16-bit word to an I/O port.
pub(crate) fn outw(port: u16, value: u16) {
    // SAFETY: as for `outb` (the ACPI PM1 control ports, owned by `exit`).
    unsafe { core::arch::asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags)) }
}

/// Reads a 16-bit word from an I/O port.
pub(crate) fn inw(port: u16) -> u16 {
    let value: u16;
    // SAFETY: as for `inb`.
    unsafe { core::arch::asm!("in ax, dx", out("ax") value, in("dx") port, options(nomem, nostack, preserves_flags)) }
    value
}

/// Writes a 32-bit word to an I/O port.
pub(crate) fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb` (the PCI configuration ports, owned by `pci`).
    unsafe { core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags)) }
}

/// Reads a 32-bit word from an I/O port.
pub(crate) fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: as for `inb`.
    unsafe { core::arch::asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack, preserves_flags)) }
    value
}
