//! The image backend: calls into the BareFlow kernel linked into the same image.
use alloc::string::String;
use alloc::vec::Vec;
use bareflow_kernel as k;

pub fn print(args: core::fmt::Arguments<'_>) {
    k::console::write_fmt(args);
}

pub fn write_stdout(bytes: &[u8]) {
    k::console::write_bytes(bytes);
}

pub fn eprint(args: core::fmt::Arguments<'_>) {
    k::console::write_fmt(args);
}

pub fn flush() {}

pub fn exit(code: i32) -> ! {
    k::process::exit(code)
}

pub fn args() -> Vec<String> {
    k::env::args()
}

pub fn var(key: &str) -> Option<String> {
    k::env::var(key)
}

pub fn vars() -> Vec<(String, String)> {
    k::env::vars()
}

pub fn monotonic_nanos() -> u64 {
    k::time::monotonic_nanos()
}

pub fn read_file(path: &str) -> Result<Vec<u8>, crate::fs::Error> {
    k::fs::read(path).map_err(|e| match e {
        k::fs::Error::NotFound => crate::fs::Error::NotFound(path.into()),
        e @ k::fs::Error::Tampered => crate::fs::Error::Other(alloc::format!("{path}: {e}")),
    })
}
