//! The 16550 serial console on COM1 (0x3f8), the image's only console.
//!
//! Written here rather than taken from `uart_16550`: the whole driver is the
//! five register writes of `init` and a polled transmit loop, and owning it
//! lets the exception path write without taking the lock (see [`write_raw`]).
use super::port::{inb, outb};
use core::fmt;
use spin::Mutex;

const COM1: u16 = 0x3f8;

static LOCK: Mutex<()> = Mutex::new(());

/// Programs COM1: 115200 baud, 8N1, FIFOs on, interrupts off.
pub(crate) fn init() {
    outb(COM1 + 1, 0x00); // no interrupts
    outb(COM1 + 3, 0x80); // DLAB on
    outb(COM1, 0x01); // divisor 1: 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8N1, DLAB off
    outb(COM1 + 2, 0xc7); // FIFO on, cleared, 14-byte threshold
    outb(COM1 + 4, 0x03); // DTR, RTS
}

fn put(byte: u8) {
    // Wait for the transmit holding register to empty (bounded: a missing
    // UART reads 0xff, which says "empty").
    for _ in 0..100_000 {
        if inb(COM1 + 5) & 0x20 != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    outb(COM1, byte);
}

fn put_bytes(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

struct Writer;

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        put_bytes(s.as_bytes());
        Ok(())
    }
}

/// Writes bytes to the console, whole (concurrent writers do not interleave).
pub fn write_bytes(bytes: &[u8]) {
    let _guard = LOCK.lock();
    put_bytes(bytes);
}

/// Writes formatted text to the console, whole.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let _guard = LOCK.lock();
    let _ = fmt::Write::write_fmt(&mut Writer, args);
}

/// Writes for fault reports, which may interrupt a writer that holds the
/// lock: waits a bounded time for the lock (another CPU's line finishes
/// first, so the report is not cut into), then writes with or without it.
/// Never lost to a deadlock.
pub fn write_raw(args: fmt::Arguments<'_>) {
    let mut guard = None;
    for _ in 0..1_000_000 {
        if let Some(g) = LOCK.try_lock() {
            guard = Some(g);
            break;
        }
        core::hint::spin_loop();
    }
    let _ = fmt::Write::write_fmt(&mut Writer, args);
    drop(guard);
}
