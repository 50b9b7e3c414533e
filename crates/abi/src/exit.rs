//! Exit codes of an image and how they travel through QEMU's `isa-debug-exit` device.
//!
//! The guest writes one byte `v` to [`DEBUG_EXIT_PORT`]; QEMU then exits with status
//! `(v << 1) | 1`. Every status a reporting guest produces is therefore odd, and an even
//! status (0 in particular) means the guest stopped without reporting a code.

/// The app returned normally.
pub const SUCCESS: i32 = 0;
/// A panic in the image.
pub const PANIC: i32 = 101;
/// An unhandled CPU exception.
pub const FAULT: i32 = 102;
/// I/O port of QEMU's `-device isa-debug-exit,iobase=0xf4,iosize=0x04`.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Largest app exit code that survives the trip through QEMU (the status is 8 bits).
pub const MAX_CODE: i32 = 127;

/// Value the guest writes to the port for an app exit code (codes outside 0..=127 become 127).
pub fn to_port_value(code: i32) -> u8 {
    match u8::try_from(code) {
        Ok(v) if i32::from(v) <= MAX_CODE => v,
        _ => MAX_CODE as u8,
    }
}

/// QEMU's exit status is (value << 1) | 1: odd status -> Some(code), anything else -> None.
pub fn from_qemu_status(status: i32) -> Option<i32> {
    if (1..=255).contains(&status) && status & 1 == 1 {
        Some(status >> 1)
    } else {
        None
    }
}

/// How the kernel ends a machine that has no `isa-debug-exit` device. It
/// prints [`powered_off_line`] first, since the VMM never sees the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerOffVia {
    /// ACPI sleep state S5.
    Acpi,
    /// A reset through the 8042 keyboard controller (no ACPI power-off described).
    KeyboardController,
}

const POWER_OFF_PREFIX: &str = "bareflow: exit code ";
const NO_DEVICE: &str = "; no isa-debug-exit device: ";
const VIA_ACPI: &str = "powering off through ACPI";
const VIA_KBD: &str = "resetting through the keyboard controller, no ACPI power-off described";

/// The line the kernel prints before it ends the machine that way, e.g.
/// `bareflow: exit code 3; no isa-debug-exit device: powering off through ACPI (the VMM will not see the code)`.
pub fn powered_off_line(code: i32, via: PowerOffVia) -> impl core::fmt::Display {
    struct Line(i32, PowerOffVia);
    impl core::fmt::Display for Line {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let how = match self.1 {
                PowerOffVia::Acpi => VIA_ACPI,
                PowerOffVia::KeyboardController => VIA_KBD,
            };
            write!(f, "{POWER_OFF_PREFIX}{}{NO_DEVICE}{how} (the VMM will not see the code)", self.0)
        }
    }
    Line(code, via)
}

/// The code in a [`powered_off_line`] (the runner reads it back when it
/// booted without the device).
pub fn parse_powered_off_line(line: &str) -> Option<i32> {
    let rest = line.trim().strip_prefix(POWER_OFF_PREFIX)?;
    let (code, how) = rest.split_once(NO_DEVICE)?;
    (how.starts_with(VIA_ACPI) || how.starts_with(VIA_KBD)).then_some(())?;
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn powered_off_lines_give_their_code_back() {
        for via in [PowerOffVia::Acpi, PowerOffVia::KeyboardController] {
            for code in [0, 3, -7, 127, i32::MIN] {
                assert_eq!(parse_powered_off_line(&format!("{}", powered_off_line(code, via))), Some(code));
            }
        }
        assert_eq!(
            format!("{}", powered_off_line(3, PowerOffVia::Acpi)),
            "bareflow: exit code 3; no isa-debug-exit device: powering off through ACPI (the VMM will not see the code)"
        );
        assert_eq!(parse_powered_off_line("bareflow: exit code 3; no isa-debug-exit device and no way to end the machine; halting"), None);
        assert_eq!(parse_powered_off_line("bareflow: exit code x; no isa-debug-exit device: powering off through ACPI"), None);
        assert_eq!(parse_powered_off_line("app says: bareflow: exit code 3; no isa-debug-exit device: powering off through ACPI"), None);
    }

    /// What QEMU does with the byte the guest wrote.
    fn qemu_status(value: u8) -> i32 {
        (i32::from(value) << 1) | 1
    }

    #[test]
    fn codes_in_range_round_trip_through_qemu() {
        for code in 0..=MAX_CODE {
            assert_eq!(from_qemu_status(qemu_status(to_port_value(code))), Some(code));
        }
    }

    #[test]
    fn codes_out_of_range_become_127() {
        for code in [-1, -200, 128, 255, 256, i32::MAX, i32::MIN] {
            assert_eq!(to_port_value(code), 127, "code {code}");
        }
    }

    #[test]
    fn even_or_out_of_range_status_has_no_code() {
        for status in [0, 2, 4, 254, 256, 257, -1, -3] {
            assert_eq!(from_qemu_status(status), None, "status {status}");
        }
    }

    #[test]
    fn named_codes_fit_the_port() {
        assert_eq!(from_qemu_status(qemu_status(to_port_value(PANIC))), Some(PANIC));
        assert_eq!(from_qemu_status(qemu_status(to_port_value(FAULT))), Some(FAULT));
        assert_eq!(from_qemu_status(qemu_status(to_port_value(SUCCESS))), Some(SUCCESS));
    }
}
