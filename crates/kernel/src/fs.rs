//! Read-only files handed over at boot: the first loader module, a signed
//! initfs (`bareflow_abi::initfs`, packed by `cargo bareflow run --file` or
//! `cargo bareflow pack`).
//!
//! Nothing unsigned is read. The public keys this image trusts are embedded at
//! build time (see `build.rs`). At boot the initfs's structure and Ed25519
//! signature are checked before anything else; a bad one stops the boot with a
//! message naming the problem and exit code `bareflow_abi::initfs::EXIT_REFUSED`.
//! Each file's SHA-256 is checked on its first read, so a large model does not
//! delay boot; a file that fails is refused (every time) with a message naming it.
use alloc::vec::Vec;
use bareflow_abi::initfs::{self, FileError, Initfs};
use bareflow_abi::signature::TrustedKeys;
use core::fmt;
use spin::Once;

pub use bareflow_abi::initfs::{DirEntry, Metadata};

/// The trusted-key list `build.rs` embedded.
static TRUSTED_KEYS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trusted_keys.bin"));

/// Why a file operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No such file (or no initfs at all).
    NotFound,
    /// The file's contents do not match their signed hash: it was altered after signing.
    Tampered,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str("no such file"),
            Error::Tampered => f.write_str("refused: the file does not match its signed SHA-256 (altered after the initfs was signed)"),
        }
    }
}

static FILES: Once<Option<Initfs<'static>>> = Once::new();

/// Stops the boot: the initfs (or the image's key list) cannot be trusted.
fn refuse(why: fmt::Arguments<'_>) -> ! {
    crate::kprintln!("bareflow: refusing to boot: {why}");
    bareflow_hal::exit::exit(initfs::EXIT_REFUSED)
}

/// The signing keys this image trusts (embedded at build time): for the
/// initfs and for code payloads.
pub fn trusted_keys() -> Result<TrustedKeys, bareflow_abi::signature::SignatureError> {
    TrustedKeys::parse(TRUSTED_KEYS)
}

pub(crate) fn init() {
    FILES.call_once(|| {
        let bytes = bareflow_hal::boot::boot_info().module_bytes(0)?;
        let trusted = TrustedKeys::parse(TRUSTED_KEYS)
            .unwrap_or_else(|e| refuse(format_args!("the image's embedded trusted-key list is unreadable: {e}")));
        if trusted.keys().is_empty() {
            refuse(format_args!(
                "this image trusts no signing key, so its initfs cannot be verified: build the image with `cargo bareflow build`"
            ));
        }
        match Initfs::open(bytes, &trusted) {
            Ok(fs) => {
                log::info!("initfs: {} files, signed by {}", fs.len(), fs.signer().hex());
                Some(fs)
            }
            Err(e) => refuse(format_args!("the boot module is not a valid signed initfs: {e}")),
        }
    });
}

fn files() -> Option<&'static Initfs<'static>> {
    FILES.get().and_then(Option::as_ref)
}

/// The bytes of a boot-time file, borrowed in place, checked against their signed
/// hash on first read.
pub fn read_static(path: &str) -> Result<&'static [u8], Error> {
    match files().ok_or(Error::NotFound)?.read(path) {
        Ok(bytes) => Ok(bytes),
        Err(FileError::NotFound) => Err(Error::NotFound),
        Err(e @ FileError::Tampered { .. }) => {
            crate::kprintln!("bareflow: {e}");
            Err(Error::Tampered)
        }
    }
}

/// A copy of a boot-time file.
pub fn read(path: &str) -> Result<Vec<u8>, Error> {
    read_static(path).map(<[u8]>::to_vec)
}

/// Size, mode and signed hash of a boot-time file (nothing is hashed).
pub fn metadata(path: &str) -> Result<Metadata, Error> {
    files().and_then(|f| f.metadata(path)).ok_or(Error::NotFound)
}

/// The names in a boot-time directory (`/` is the root).
pub fn read_dir(path: &str) -> Result<Vec<DirEntry<'static>>, Error> {
    match files() {
        Some(f) => f.read_dir(path).ok_or(Error::NotFound),
        None if path.trim_matches('/').is_empty() => Ok(Vec::new()),
        None => Err(Error::NotFound),
    }
}

/// The paths of all boot-time files.
pub fn list() -> Vec<&'static str> {
    files().map(|f| f.entries().map(|(p, _)| p).collect()).unwrap_or_default()
}
