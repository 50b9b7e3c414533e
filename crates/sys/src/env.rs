//! The app's arguments and its environment-style configuration.
//!
//! In the image both come from the kernel command line (`KEY=VALUE ... -- ARGS`,
//! see `bareflow_abi::cmdline`); hosted they are the process's own.
use alloc::string::String;
use alloc::vec::Vec;

/// The app's arguments, the program name first.
pub fn args() -> Vec<String> {
    crate::backend::args()
}

/// The value of configuration variable `key`, if set.
pub fn var(key: &str) -> Option<String> {
    crate::backend::var(key)
}

/// Every configuration variable.
pub fn vars() -> Vec<(String, String)> {
    crate::backend::vars()
}
