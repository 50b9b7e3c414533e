//! The payload side of BareFlow's exported kernel ABI, version 3
//! (`bareflow_abi::payload::COMPAT`): safe functions over the kernel's
//! exports, and the `entry!` macro that names a payload's entry function.
//!
//! A payload is position-independent code the kernel loads after checking
//! its signature; its only way into the kernel is the imports below, which
//! the loader resolves against the kernel's export table (any other import
//! refuses the payload). Like `bareflow-hal` on the kernel side, this crate
//! is where the payload's `unsafe` lives: the foreign calls, each with the
//! contract the kernel's side checks.
#![no_std]

mod ffi {
    unsafe extern "C" {
        /// Writes `len` bytes at `ptr` to the console.
        pub fn bf_write(ptr: *const u8, len: usize);
        /// The monotonic clock, in nanoseconds since boot.
        pub fn bf_time_nanos() -> u64;
        /// Copies up to `cap` bytes of boot-time file `path` into `buf`;
        /// returns the file's length, or -1 if it does not exist.
        pub fn bf_read_file(path: *const u8, path_len: usize, buf: *mut u8, cap: usize) -> i64;
        /// Appends `len` bytes at `ptr` to the reply of this handler call.
        pub fn bf_respond(ptr: *const u8, len: usize);
    }
}

/// Writes `bytes` to the console.
pub fn write(bytes: &[u8]) {
    // SAFETY: `bytes` is a valid slice for the duration of the call; the
    // kernel only reads `len` bytes from `ptr`.
    unsafe { ffi::bf_write(bytes.as_ptr(), bytes.len()) }
}

/// Appends `bytes` to the reply of this call (a handler payload's output,
/// e.g. httpd's `/handler` body).
pub fn respond(bytes: &[u8]) {
    // SAFETY: as for `write`.
    unsafe { ffi::bf_respond(bytes.as_ptr(), bytes.len()) }
}

/// Nanoseconds since boot.
pub fn time_nanos() -> u64 {
    // SAFETY: no arguments; the kernel reads its clock.
    unsafe { ffi::bf_time_nanos() }
}

/// Reads boot-time file `path` into `buf`: `Some(file length)` (which may
/// exceed `buf.len()`: then only the first `buf.len()` bytes were copied),
/// `None` if there is no such file.
pub fn read_file(path: &str, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: both slices are valid for the call; the kernel reads at most
    // `path.len()` bytes of `path` and writes at most `buf.len()` into `buf`.
    let n = unsafe { ffi::bf_read_file(path.as_ptr(), path.len(), buf.as_mut_ptr(), buf.len()) };
    usize::try_from(n).ok()
}

/// A small formatter into a stack buffer, for messages without `alloc`.
pub struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    /// The text so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// An empty line.
    pub const fn new() -> Line {
        Line { buf: [0; 256], len: 0 }
    }

    /// Writes the line to the console.
    pub fn print(&self) {
        write(&self.buf[..self.len]);
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let b = s.as_bytes();
        let n = b.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
        if n < b.len() { Err(core::fmt::Error) } else { Ok(()) }
    }
}

/// Names the payload's entry: `entry!(run)` exports `run` under the symbol
/// the manifest names (`run`), with the ABI the kernel calls it with
/// (System V, one `u64` argument, a `u64` result).
#[macro_export]
macro_rules! entry {
    ($f:ident) => {
        #[unsafe(no_mangle)]
        pub extern "sysv64" fn run(arg: u64) -> u64 {
            let f: fn(u64) -> u64 = $f;
            f(arg)
        }
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write as _;
    let mut l = Line::new();
    let _ = write!(l, "payload panicked: {}\n", info.message());
    l.print();
    // A payload cannot end the kernel; it parks here, in its own fiber.
    loop {
        core::hint::spin_loop();
    }
}
