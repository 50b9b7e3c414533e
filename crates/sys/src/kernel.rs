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

pub fn try_args() -> Result<Vec<String>, crate::env::NonUtf8Arg> {
    match k::env::non_utf8_args().first() {
        // The kernel's list counts the app's arguments; args() puts the app's name first.
        Some((i, bytes)) => Err(crate::env::NonUtf8Arg { index: i + 1, bytes: bytes.clone() }),
        None => Ok(k::env::args()),
    }
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

fn initfs_err(path: &str, e: k::fs::Error) -> crate::fs::Error {
    match e {
        k::fs::Error::NotFound => crate::fs::Error::NotFound(path.into()),
        e @ k::fs::Error::Tampered => crate::fs::Error::Other(alloc::format!("{path}: {e}")),
    }
}

#[cfg(feature = "blk")]
mod disk {
    use super::k;
    use crate::fs::{DirEntry, Error, Metadata};
    use alloc::string::String;
    use alloc::vec::Vec;

    fn err(path: &str, e: k::diskfs::FsError) -> Error {
        match e {
            k::diskfs::FsError::NotFound(_) => Error::NotFound(path.into()),
            e => Error::Other(alloc::format!("{path}: {e}")),
        }
    }

    fn fs(path: &str) -> Result<&'static k::diskfs::DiskFs, Error> {
        k::diskfs::mounted().map_err(|e| err(path, e))
    }

    pub fn read(path: &str, p: &str) -> Result<Vec<u8>, Error> {
        fs(path)?.read(p).map_err(|e| err(path, e))
    }

    pub fn write(path: &str, p: &str, data: &[u8], append: bool) -> Result<(), Error> {
        let fs = fs(path)?;
        if append { fs.append(p, data) } else { fs.write(p, data) }.map_err(|e| err(path, e))
    }

    pub fn metadata(path: &str, p: &str) -> Result<Metadata, Error> {
        let e = fs(path)?.metadata(p).map_err(|e| err(path, e))?;
        Ok(Metadata { len: e.len, is_dir: e.is_dir })
    }

    pub fn read_dir(path: &str, p: &str) -> Result<Vec<DirEntry>, Error> {
        let v = fs(path)?.read_dir(p).map_err(|e| err(path, e))?;
        Ok(v.into_iter().map(|e| DirEntry { name: String::from(&*e.name), metadata: Metadata { len: e.len, is_dir: e.is_dir } }).collect())
    }

    pub fn create_dir(path: &str, p: &str) -> Result<(), Error> {
        fs(path)?.create_dir(p).map_err(|e| err(path, e))
    }

    pub fn remove_file(path: &str, p: &str) -> Result<(), Error> {
        fs(path)?.remove_file(p).map_err(|e| err(path, e))
    }
}

#[cfg(not(feature = "blk"))]
mod disk {
    use crate::fs::{DirEntry, Error, Metadata};
    use alloc::vec::Vec;

    fn none(path: &str) -> Error {
        Error::Other(alloc::format!(
            "{path}: this image has no disk support (build the app with the `blk` feature of bareflow-sys)"
        ))
    }

    pub fn read(path: &str, _: &str) -> Result<Vec<u8>, Error> {
        Err(none(path))
    }

    pub fn write(path: &str, _: &str, _: &[u8], _: bool) -> Result<(), Error> {
        Err(none(path))
    }

    pub fn metadata(path: &str, _: &str) -> Result<Metadata, Error> {
        Err(none(path))
    }

    pub fn read_dir(path: &str, _: &str) -> Result<Vec<DirEntry>, Error> {
        Err(none(path))
    }

    pub fn create_dir(path: &str, _: &str) -> Result<(), Error> {
        Err(none(path))
    }

    pub fn remove_file(path: &str, _: &str) -> Result<(), Error> {
        Err(none(path))
    }
}

pub fn read_file(path: &str) -> Result<Vec<u8>, crate::fs::Error> {
    match crate::fs::disk_path(path) {
        Some(p) => disk::read(path, p),
        None => k::fs::read(path).map_err(|e| initfs_err(path, e)),
    }
}

pub fn read_static(path: &str) -> Result<Option<&'static [u8]>, crate::fs::Error> {
    match crate::fs::disk_path(path) {
        Some(_) => Ok(None),
        None => k::fs::read_static(path).map(Some).map_err(|e| initfs_err(path, e)),
    }
}

pub fn write_file(path: &str, data: &[u8], append: bool) -> Result<(), crate::fs::Error> {
    match crate::fs::disk_path(path) {
        Some(p) => disk::write(path, p, data, append),
        None => Err(crate::fs::Error::ReadOnly(path.into())),
    }
}

pub fn metadata(path: &str) -> Result<crate::fs::Metadata, crate::fs::Error> {
    if let Some(p) = crate::fs::disk_path(path) {
        return disk::metadata(path, p);
    }
    match k::fs::metadata(path) {
        Ok(m) => Ok(crate::fs::Metadata { len: m.len, is_dir: false }),
        Err(e) => match k::fs::read_dir(path) {
            Ok(_) => Ok(crate::fs::Metadata { len: 0, is_dir: true }),
            Err(_) => Err(initfs_err(path, e)),
        },
    }
}

pub fn read_dir(path: &str) -> Result<Vec<crate::fs::DirEntry>, crate::fs::Error> {
    if let Some(p) = crate::fs::disk_path(path) {
        return disk::read_dir(path, p);
    }
    let dir = path.trim_matches('/');
    let entries = k::fs::read_dir(path).map_err(|e| initfs_err(path, e))?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let full = if dir.is_empty() { String::from(e.name) } else { alloc::format!("{dir}/{}", e.name) };
            let len = if e.is_dir { 0 } else { k::fs::metadata(&full).map_or(0, |m| m.len) };
            crate::fs::DirEntry { name: String::from(e.name), metadata: crate::fs::Metadata { len, is_dir: e.is_dir } }
        })
        .collect())
}

pub fn create_dir(path: &str) -> Result<(), crate::fs::Error> {
    match crate::fs::disk_path(path) {
        Some(p) => disk::create_dir(path, p),
        None => Err(crate::fs::Error::ReadOnly(path.into())),
    }
}

pub fn remove_file(path: &str) -> Result<(), crate::fs::Error> {
    match crate::fs::disk_path(path) {
        Some(p) => disk::remove_file(path, p),
        None => Err(crate::fs::Error::ReadOnly(path.into())),
    }
}

pub fn random_fill(buf: &mut [u8]) -> Result<(), crate::random::Error> {
    k::random::fill(buf).map(|_| ()).map_err(|e| crate::random::Error(alloc::format!("{e}")))
}
