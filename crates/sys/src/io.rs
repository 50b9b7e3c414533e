//! Console output.
use core::fmt;

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    crate::backend::print(args);
}

#[doc(hidden)]
pub fn _eprint(args: fmt::Arguments<'_>) {
    crate::backend::eprint(args);
}

/// Flushes buffered console output.
pub fn flush() {
    crate::backend::flush();
}

/// Writes raw bytes to the console's standard output (no UTF-8 required).
pub fn write_stdout(bytes: &[u8]) {
    crate::backend::write_stdout(bytes);
}
