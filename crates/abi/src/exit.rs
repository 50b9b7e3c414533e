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

#[cfg(test)]
mod tests {
    use super::*;

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
