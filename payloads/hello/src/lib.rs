//! The example payload: greets, reads a boot-time file through the kernel's
//! ABI, and returns a value computed from its argument, so a test can check
//! that it ran, what it saw, and what it returned.
#![no_std]
#![forbid(unsafe_code)]

use bareflow_payload::{Line, entry, read_file, time_nanos, write};
use core::fmt::Write as _;

entry!(main);

fn main(arg: u64) -> u64 {
    write(b"hello from a signed payload\n");
    let mut buf = [0u8; 64];
    let mut l = Line::new();
    let _ = match read_file("payload-input.txt", &mut buf) {
        Some(n) => writeln!(l, "payload: payload-input.txt has {n} bytes: {:?}", core::str::from_utf8(&buf[..n.min(64)]).unwrap_or("?").trim_end()),
        None => writeln!(l, "payload: no payload-input.txt"),
    };
    l.print();
    let t = time_nanos();
    let mut l = Line::new();
    let _ = writeln!(l, "payload: the clock reads {} ms", t / 1_000_000);
    l.print();
    arg.wrapping_mul(3).wrapping_add(1)
}
