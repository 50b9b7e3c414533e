//! Files. In the image: the read-only, signed files handed over at boot
//! (`cargo bareflow run --file HOST[:GUEST]` or `--initfs`), and, under
//! `/disk/`, a read-write FAT file system on the first virtio-blk disk
//! (`cargo bareflow run --disk IMG`, an image made with `mkfs.fat`; needs the
//! `blk` feature). Hosted: the host's file system, with `/disk/` mapped to
//! the directory named by `BAREFLOW_DISK` (default `./disk`), so that an app
//! uses the same paths both ways.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a file operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No file at this path.
    NotFound(String),
    /// The operation needs a writable file system (boot-time files are read-only).
    ReadOnly(String),
    /// Any other failure, with the backend's message.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(p) => write!(f, "{p}: no such file"),
            Error::ReadOnly(p) => write!(f, "{p}: read-only (boot-time files cannot change; write under /disk/)"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

/// Size and kind of a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Size in bytes (0 for directories).
    pub len: u64,
    /// A directory.
    pub is_dir: bool,
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name (not the whole path).
    pub name: String,
    /// Size and kind.
    pub metadata: Metadata,
}

/// The path under the disk's root if `path` names something on the disk
/// (`/disk` or `/disk/...`).
pub fn disk_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/disk")?;
    if rest.is_empty() || rest.starts_with('/') { Some(rest.trim_start_matches('/')) } else { None }
}

/// Reads a whole file.
pub fn read(path: &str) -> Result<Vec<u8>, Error> {
    crate::backend::read_file(path)
}

/// Writes `data` as the whole contents of `path` (created or truncated). In
/// the image it is durable when this returns (the disk has been flushed).
pub fn write(path: &str, data: &[u8]) -> Result<(), Error> {
    crate::backend::write_file(path, data, false)
}

/// Appends `data` to `path` (created if missing), durably as [`write`].
pub fn append(path: &str, data: &[u8]) -> Result<(), Error> {
    crate::backend::write_file(path, data, true)
}

/// Size and kind of `path`.
pub fn metadata(path: &str) -> Result<Metadata, Error> {
    crate::backend::metadata(path)
}

/// The entries of the directory `path`, sorted by name.
pub fn read_dir(path: &str) -> Result<Vec<DirEntry>, Error> {
    let mut v = crate::backend::read_dir(path)?;
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// Makes the directory `path`.
pub fn create_dir(path: &str) -> Result<(), Error> {
    crate::backend::create_dir(path)
}

/// Removes the file `path`.
pub fn remove_file(path: &str) -> Result<(), Error> {
    crate::backend::remove_file(path)
}

/// An open file for reading: its contents are read when it is opened (a
/// boot-time file is borrowed in place, not copied).
#[derive(Debug)]
pub struct File {
    data: FileData,
    pos: usize,
}

#[derive(Debug)]
enum FileData {
    #[allow(dead_code)] // only the image borrows boot-time files in place
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl File {
    /// Opens `path` for reading.
    pub fn open(path: &str) -> Result<File, Error> {
        let data = match crate::backend::read_static(path)? {
            Some(s) => FileData::Static(s),
            None => FileData::Owned(read(path)?),
        };
        Ok(File { data, pos: 0 })
    }

    /// The whole contents: for a boot-time file in the image, the boot module's
    /// own bytes (borrowed in place, never copied); otherwise the bytes read at
    /// [`File::open`].
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes()
    }

    fn bytes(&self) -> &[u8] {
        match &self.data {
            FileData::Static(s) => s,
            FileData::Owned(v) => v,
        }
    }

    /// Reads up to `buf.len()` bytes from the current position; 0 at the end.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let rest = &self.bytes()[self.pos.min(self.bytes().len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        n
    }

    /// Moves to byte `pos` (clamped to the end).
    pub fn seek(&mut self, pos: u64) {
        self.pos = usize::try_from(pos).unwrap_or(usize::MAX).min(self.bytes().len());
    }

    /// The file's size.
    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_paths_are_those_under_slash_disk() {
        assert_eq!(disk_path("/disk"), Some(""));
        assert_eq!(disk_path("/disk/"), Some(""));
        assert_eq!(disk_path("/disk/a/B.TXT"), Some("a/B.TXT"));
        assert_eq!(disk_path("/diskette/x"), None);
        assert_eq!(disk_path("disk/x"), None);
        assert_eq!(disk_path("model.bin"), None);
    }
}
