//! The hosted backend: `std` on Linux.
use alloc::string::String;
use alloc::vec::Vec;
use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant as StdInstant;

pub fn print(args: core::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args);
}

pub fn write_stdout(bytes: &[u8]) {
    let _ = std::io::stdout().lock().write_all(bytes);
}

pub fn eprint(args: core::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

pub fn flush() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

pub fn exit(code: i32) -> ! {
    std::process::exit(code)
}

pub fn args() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

pub fn var(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

pub fn vars() -> Vec<(String, String)> {
    std::env::vars().collect()
}

pub fn monotonic_nanos() -> u64 {
    static START: OnceLock<StdInstant> = OnceLock::new();
    START.get_or_init(StdInstant::now).elapsed().as_nanos() as u64
}

pub fn read_file(path: &str) -> Result<Vec<u8>, crate::fs::Error> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => crate::fs::Error::NotFound(path.into()),
        _ => crate::fs::Error::Other(alloc::format!("{path}: {e}")),
    })
}
