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

pub fn try_args() -> Result<Vec<String>, crate::env::NonUtf8Arg> {
    use std::os::unix::ffi::OsStringExt;
    std::env::args_os()
        .enumerate()
        .map(|(index, a)| a.into_string().map_err(|a| crate::env::NonUtf8Arg { index, bytes: a.into_vec() }))
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

/// The host path for `path`: `/disk/...` lives under `$BAREFLOW_DISK` (default `./disk`).
fn host_path(path: &str) -> std::path::PathBuf {
    match crate::fs::disk_path(path) {
        Some(rest) => std::path::PathBuf::from(std::env::var("BAREFLOW_DISK").unwrap_or_else(|_| "disk".into())).join(rest),
        None => std::path::PathBuf::from(path),
    }
}

fn io_err(path: &str, e: std::io::Error) -> crate::fs::Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => crate::fs::Error::NotFound(path.into()),
        _ => crate::fs::Error::Other(alloc::format!("{path}: {e}")),
    }
}

pub fn read_file(path: &str) -> Result<Vec<u8>, crate::fs::Error> {
    std::fs::read(host_path(path)).map_err(|e| io_err(path, e))
}

pub fn read_static(_path: &str) -> Result<Option<&'static [u8]>, crate::fs::Error> {
    Ok(None)
}

pub fn write_file(path: &str, data: &[u8], append: bool) -> Result<(), crate::fs::Error> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(host_path(path))
        .map_err(|e| io_err(path, e))?;
    f.write_all(data).and_then(|()| f.sync_all()).map_err(|e| io_err(path, e))
}

fn meta(m: &std::fs::Metadata) -> crate::fs::Metadata {
    crate::fs::Metadata { len: if m.is_dir() { 0 } else { m.len() }, is_dir: m.is_dir() }
}

pub fn metadata(path: &str) -> Result<crate::fs::Metadata, crate::fs::Error> {
    std::fs::metadata(host_path(path)).map(|m| meta(&m)).map_err(|e| io_err(path, e))
}

pub fn read_dir(path: &str) -> Result<Vec<crate::fs::DirEntry>, crate::fs::Error> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(host_path(path)).map_err(|e| io_err(path, e))? {
        let e = e.map_err(|e| io_err(path, e))?;
        let m = e.metadata().map_err(|e| io_err(path, e))?;
        out.push(crate::fs::DirEntry { name: e.file_name().to_string_lossy().into_owned(), metadata: meta(&m) });
    }
    Ok(out)
}

pub fn create_dir(path: &str) -> Result<(), crate::fs::Error> {
    std::fs::create_dir(host_path(path)).map_err(|e| io_err(path, e))
}

pub fn remove_file(path: &str) -> Result<(), crate::fs::Error> {
    std::fs::remove_file(host_path(path)).map_err(|e| io_err(path, e))
}

pub fn random_fill(buf: &mut [u8]) -> Result<(), crate::random::Error> {
    let mut at = 0;
    while at < buf.len() {
        match rustix::rand::getrandom(&mut buf[at..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => at += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(crate::random::Error(alloc::format!("getrandom failed: {e}"))),
        }
    }
    Ok(())
}
