//! Files. In the image: the read-only files handed over at boot
//! (`cargo bareflow run --file HOST[:GUEST]`); hosted: the host's file system.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a file operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No file at this path.
    NotFound(String),
    /// Any other failure, with the backend's message.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(p) => write!(f, "{p}: no such file"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

/// Reads a whole file.
pub fn read(path: &str) -> Result<Vec<u8>, Error> {
    crate::backend::read_file(path)
}
