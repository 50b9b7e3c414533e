//! The signed initfs: the read-only files an image receives at boot (a PVH or
//! Multiboot2 module), packed on the host by `cargo bareflow pack` or
//! `cargo bareflow run --file`.
//!
//! Trust model: the packer signs the header, the entry table and the paths,
//! and the table holds each file's SHA-256. [`Initfs::open`] checks every length
//! and offset in the header, then the Ed25519 signature against the keys the
//! image trusts, then the whole table; nothing after that can fail or panic
//! except a file whose bytes no longer match their signed hash. That check runs
//! lazily, on a file's first read ([`Initfs::read`]), so a large model does not
//! delay boot; its verdict is remembered (a tampered file stays refused).
//!
//! Layout, all integers little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `BFINITFS` |
//! | 8..12 | format version, [`VERSION`] |
//! | 12..16 | entry count `n` |
//! | 16..24 | metadata length `m`: header + entry table + paths, the signed bytes |
//! | 24..32 | total length (trailing bytes after it, e.g. loader padding, are ignored) |
//! | 32..36 | signature algorithm, [`ALG_ED25519`] |
//! | 36..64 | reserved, zero |
//! | 64..64+64n | entry table: per entry `path_offset: u32, path_len: u32, mode: u32, reserved: u32 (0), data_offset: u64, data_len: u64, sha256: [u8; 32]` |
//! | ..m | path bytes (UTF-8) |
//! | m..m+96 | signer's Ed25519 public key (32), signature over bytes `0..m` (64) |
//! | ... | file data, each file [`DATA_ALIGN`]-aligned |
//!
//! Entries are sorted by path (byte order) and paths are unique. A path is
//! 1..=[`MAX_PATH_LEN`] bytes of UTF-8, relative, `/`-separated, with no empty,
//! `.` or `..` component and no NUL. Directories are implied by paths. A mode
//! holds only permission bits ([`MODE_MASK`]). Paths lie in the metadata after
//! the table, data after the signature block, and no two ranges overlap.

use crate::signature::{self, PUBLIC_KEY_LEN, PublicKey, SIGNATURE_LEN, SecretKey, SignatureError, TrustedKeys};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

/// First eight bytes of every initfs.
pub const MAGIC: [u8; 8] = *b"BFINITFS";
/// The format version this code reads and writes.
pub const VERSION: u32 = 1;
/// Signature algorithm number of Ed25519 (the only one).
pub const ALG_ED25519: u32 = signature::ALG_ED25519;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Size of one entry-table record.
pub const ENTRY_LEN: usize = 64;
/// Size of the signature block (public key, then signature).
pub const SIG_BLOCK_LEN: usize = PUBLIC_KEY_LEN + SIGNATURE_LEN;
/// Longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 255;
/// Alignment of each file's data from the start of the initfs (a cache line).
pub const DATA_ALIGN: usize = 64;
/// Most files one initfs may hold.
pub const MAX_ENTRIES: usize = 1 << 20;
/// The mode bits an entry may carry (permissions, setuid/setgid/sticky).
pub const MODE_MASK: u32 = 0o7777;
/// Exit code of an image that refuses its initfs at boot (bad signature, untrusted key, corrupt).
pub const EXIT_REFUSED: i32 = 103;

/// Why an initfs was refused as a whole, or a file could not be added to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitfsError {
    /// Fewer bytes than the header and signature block need.
    TooShort { len: usize },
    /// The first bytes are not [`MAGIC`].
    BadMagic,
    /// A version this code does not read.
    UnsupportedVersion { found: u32 },
    /// A signature algorithm other than Ed25519.
    UnsupportedAlgorithm { found: u32 },
    /// The header's total length is larger than the bytes given (truncated initfs).
    Truncated { declared: u64, available: usize },
    /// The metadata length leaves no room for the header or the signature block.
    BadMetadataLength { declared: u64 },
    /// The header's reserved bytes are not zero.
    HeaderReservedNotZero,
    /// The signature check failed: untrusted key or bad signature.
    Signature(SignatureError),
    /// The entry table does not fit in the metadata (corrupt or hostile count).
    TooManyEntries { count: u32 },
    /// Entry `index` points outside its area, or its length overflows.
    RangeOutOfBounds { index: usize },
    /// Entry `index`'s path or data overlaps another entry's.
    Overlap { index: usize },
    /// Entry `index` has a non-zero reserved field.
    ReservedNotZero { index: usize },
    /// Entry `index`'s mode has bits outside [`MODE_MASK`].
    BadMode { index: usize, mode: u32 },
    /// Entry `index`'s path is not UTF-8.
    PathNotUtf8 { index: usize },
    /// A path breaks the path rules (see the module documentation).
    BadPath { reason: &'static str },
    /// A path is longer than [`MAX_PATH_LEN`].
    PathTooLong { len: usize },
    /// Two entries have the same path.
    DuplicatePath,
    /// Entries are not sorted by path.
    Unsorted { index: usize },
    /// A file too large for this format on this machine.
    FileTooLarge { len: usize },
}

impl fmt::Display for InitfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use InitfsError::*;
        match self {
            TooShort { len } => write!(f, "initfs is {len} bytes, too short for its header and signature: not a BareFlow initfs or truncated"),
            BadMagic => write!(f, "not a BareFlow initfs (bad magic): pack one with `cargo bareflow pack DIR -o initfs.img`"),
            UnsupportedVersion { found } => write!(f, "initfs format version {found} is not supported (this build reads version {VERSION}): repack with the matching CLI"),
            UnsupportedAlgorithm { found } => write!(f, "initfs signature algorithm {found} is not supported (only Ed25519, number {ALG_ED25519})"),
            Truncated { declared, available } => write!(f, "initfs is truncated: its header says {declared} bytes but only {available} are present"),
            BadMetadataLength { declared } => write!(f, "initfs header declares {declared} bytes of metadata, which does not fit: the initfs is corrupt"),
            HeaderReservedNotZero => write!(f, "initfs header has non-zero reserved bytes: written by a newer or broken packer"),
            Signature(e) => write!(f, "initfs signature: {e}"),
            TooManyEntries { count } => write!(f, "initfs claims {count} entries, more than its metadata can hold: the initfs is corrupt"),
            RangeOutOfBounds { index } => write!(f, "initfs entry {index} points outside its area: the initfs is corrupt"),
            Overlap { index } => write!(f, "initfs entry {index} overlaps another entry: the initfs is corrupt"),
            ReservedNotZero { index } => write!(f, "initfs entry {index} has a non-zero reserved field: written by a newer or broken packer"),
            BadMode { index, mode } => write!(f, "initfs entry {index} has mode {mode:#o}, which has bits outside {MODE_MASK:#o}"),
            PathNotUtf8 { index } => write!(f, "initfs entry {index}'s path is not UTF-8"),
            BadPath { reason } => write!(f, "bad path: {reason}"),
            PathTooLong { len } => write!(f, "path is {len} bytes, longer than the {MAX_PATH_LEN}-byte limit"),
            DuplicatePath => write!(f, "the same path appears twice: give each file a distinct guest path"),
            Unsorted { index } => write!(f, "initfs entry {index} is out of order: entries must be sorted by path"),
            FileTooLarge { len } => write!(f, "file of {len} bytes is too large for the initfs"),
        }
    }
}

impl core::error::Error for InitfsError {}

impl From<SignatureError> for InitfsError {
    fn from(e: SignatureError) -> Self {
        InitfsError::Signature(e)
    }
}

/// Why one file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileError<'a> {
    /// No file at this path.
    NotFound,
    /// The file's bytes do not match the SHA-256 in the signed table.
    Tampered { path: &'a str },
}

impl fmt::Display for FileError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::NotFound => f.write_str("no such file in the initfs"),
            FileError::Tampered { path } => write!(
                f,
                "initfs entry `{path}` does not match its signed SHA-256: it was altered after the initfs was signed; refusing to read it (repack the initfs)"
            ),
        }
    }
}

impl core::error::Error for FileError<'_> {}

/// Checks a guest path against the path rules.
pub fn check_path(path: &str) -> Result<(), InitfsError> {
    if path.is_empty() {
        return Err(InitfsError::BadPath { reason: "empty path" });
    }
    if path.len() > MAX_PATH_LEN {
        return Err(InitfsError::PathTooLong { len: path.len() });
    }
    if path.contains('\0') {
        return Err(InitfsError::BadPath { reason: "path contains a NUL byte" });
    }
    if path.starts_with('/') {
        return Err(InitfsError::BadPath { reason: "path must be relative (no leading `/`)" });
    }
    for part in path.split('/') {
        match part {
            "" => return Err(InitfsError::BadPath { reason: "path has an empty component (`//` or a trailing `/`)" }),
            "." | ".." => return Err(InitfsError::BadPath { reason: "path has a `.` or `..` component" }),
            _ => {}
        }
    }
    Ok(())
}

/// A file's size, mode and signed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Length in bytes.
    pub len: u64,
    /// Permission bits (within [`MODE_MASK`]).
    pub mode: u32,
    /// SHA-256 of the contents, as signed.
    pub sha256: [u8; 32],
}

/// One name in a directory listing ([`Initfs::read_dir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// The last path component.
    pub name: &'a str,
    /// Whether it is a directory (a prefix of other paths) rather than a file.
    pub is_dir: bool,
}

const UNCHECKED: u8 = 0;
const GOOD: u8 = 1;
const BAD: u8 = 2;

#[derive(Debug)]
struct Entry<'a> {
    path: &'a str,
    meta: Metadata,
    data: &'a [u8],
    /// [`UNCHECKED`], [`GOOD`] or [`BAD`]: the verdict of the lazy hash check.
    state: AtomicU8,
}

impl Entry<'_> {
    fn check(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            GOOD => true,
            BAD => false,
            _ => {
                // Two readers may race to hash the same file: both reach the same verdict.
                let ok = signature::sha256(self.data) == self.meta.sha256;
                self.state.store(if ok { GOOD } else { BAD }, Ordering::Release);
                ok
            }
        }
    }
}

/// A checked, signature-verified, read-only view of an initfs's bytes.
#[derive(Debug)]
pub struct Initfs<'a> {
    entries: Vec<Entry<'a>>,
    signer: PublicKey,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// `offset..offset+len` as a range checked to lie within `start..end`.
fn checked_range(offset: u64, len: u64, start: usize, end: usize) -> Option<core::ops::Range<usize>> {
    let offset = usize::try_from(offset).ok()?;
    let len = usize::try_from(len).ok()?;
    let stop = offset.checked_add(len)?;
    (offset >= start && stop <= end).then_some(offset..stop)
}

impl<'a> Initfs<'a> {
    /// Checks `bytes`' structure and signature (against `trusted`) and returns a view of the files.
    /// File contents are checked against their hashes later, on first read.
    pub fn open(bytes: &'a [u8], trusted: &TrustedKeys) -> Result<Initfs<'a>, InitfsError> {
        // 1. The header, with every length checked before anything is read through it.
        if bytes.len() < HEADER_LEN + SIG_BLOCK_LEN {
            return Err(InitfsError::TooShort { len: bytes.len() });
        }
        if bytes[0..8] != MAGIC {
            return Err(InitfsError::BadMagic);
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return Err(InitfsError::UnsupportedVersion { found: version });
        }
        let count = u32_at(bytes, 12);
        let meta_declared = u64_at(bytes, 16);
        let total_declared = u64_at(bytes, 24);
        let alg = u32_at(bytes, 32);
        if alg != ALG_ED25519 {
            return Err(InitfsError::UnsupportedAlgorithm { found: alg });
        }
        if bytes[36..HEADER_LEN].iter().any(|&b| b != 0) {
            return Err(InitfsError::HeaderReservedNotZero);
        }
        let total = match usize::try_from(total_declared) {
            Ok(t) if t <= bytes.len() => t,
            _ => return Err(InitfsError::Truncated { declared: total_declared, available: bytes.len() }),
        };
        let meta = usize::try_from(meta_declared)
            .ok()
            .filter(|&m| m >= HEADER_LEN && m.checked_add(SIG_BLOCK_LEN).is_some_and(|end| end <= total))
            .ok_or(InitfsError::BadMetadataLength { declared: meta_declared })?;
        let bytes = &bytes[..total];

        // 2. The signature over the metadata, before any of the table is believed.
        let mut key = [0u8; PUBLIC_KEY_LEN];
        key.copy_from_slice(&bytes[meta..meta + PUBLIC_KEY_LEN]);
        let signer = PublicKey(key);
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(&bytes[meta + PUBLIC_KEY_LEN..meta + SIG_BLOCK_LEN]);
        trusted.check(&signer, &bytes[..meta], &sig)?;

        // 3. The table: signed, but checked as strictly as if it were not.
        let table_end = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(ENTRY_LEN))
            .and_then(|t| t.checked_add(HEADER_LEN))
            .filter(|&end| end <= meta)
            .ok_or(InitfsError::TooManyEntries { count })?;
        let data_start = meta + SIG_BLOCK_LEN;
        let n = (table_end - HEADER_LEN) / ENTRY_LEN;
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(n);
        let mut paths: Vec<(usize, usize, usize)> = Vec::with_capacity(n);
        let mut datas: Vec<(usize, usize, usize)> = Vec::with_capacity(n);
        for index in 0..n {
            let rec = HEADER_LEN + index * ENTRY_LEN;
            let path_off = u64::from(u32_at(bytes, rec));
            let path_len = u64::from(u32_at(bytes, rec + 4));
            let mode = u32_at(bytes, rec + 8);
            if u32_at(bytes, rec + 12) != 0 {
                return Err(InitfsError::ReservedNotZero { index });
            }
            if mode & !MODE_MASK != 0 {
                return Err(InitfsError::BadMode { index, mode });
            }
            let data_off = u64_at(bytes, rec + 16);
            let data_len = u64_at(bytes, rec + 24);
            let mut sha256 = [0u8; 32];
            sha256.copy_from_slice(&bytes[rec + 32..rec + 64]);
            let oob = InitfsError::RangeOutOfBounds { index };
            let path_r = checked_range(path_off, path_len, table_end, meta).ok_or(oob.clone())?;
            let data_r = checked_range(data_off, data_len, data_start, total).ok_or(oob)?;
            let path =
                core::str::from_utf8(&bytes[path_r.clone()]).map_err(|_| InitfsError::PathNotUtf8 { index })?;
            check_path(path)?;
            if let Some(prev) = entries.last() {
                match prev.path.cmp(path) {
                    core::cmp::Ordering::Less => {}
                    core::cmp::Ordering::Equal => return Err(InitfsError::DuplicatePath),
                    core::cmp::Ordering::Greater => return Err(InitfsError::Unsorted { index }),
                }
            }
            paths.push((path_r.start, path_r.end, index));
            if !data_r.is_empty() {
                datas.push((data_r.start, data_r.end, index));
            }
            entries.push(Entry {
                path,
                meta: Metadata { len: data_len, mode, sha256 },
                data: &bytes[data_r],
                state: AtomicU8::new(UNCHECKED),
            });
        }
        for ranges in [&mut paths, &mut datas] {
            ranges.sort_unstable();
            for pair in ranges.windows(2) {
                if pair[1].0 < pair[0].1 {
                    return Err(InitfsError::Overlap { index: pair[1].2 });
                }
            }
        }
        Ok(Initfs { entries, signer })
    }

    fn find(&self, path: &str) -> Option<&Entry<'a>> {
        let path = path.trim_start_matches('/');
        self.entries.binary_search_by(|e| e.path.cmp(path)).ok().map(|i| &self.entries[i])
    }

    /// The contents of the file at `path` (a leading `/` is allowed), borrowed in place,
    /// after checking them against their signed SHA-256 (once; the verdict is remembered).
    pub fn read(&self, path: &str) -> Result<&'a [u8], FileError<'a>> {
        let e = self.find(path).ok_or(FileError::NotFound)?;
        if e.check() { Ok(e.data) } else { Err(FileError::Tampered { path: e.path }) }
    }

    /// Size, mode and hash of the file at `path` (no hashing happens).
    pub fn metadata(&self, path: &str) -> Option<Metadata> {
        self.find(path).map(|e| e.meta)
    }

    /// Whether `path` is a directory: a proper prefix of some file's path, or the root (`""` or `/`).
    pub fn is_dir(&self, path: &str) -> bool {
        let dir = path.trim_matches('/');
        dir.is_empty() || self.entries.iter().any(|e| under(e.path, dir).is_some())
    }

    /// The names directly inside directory `path` (`""` or `/` for the root), sorted and unique;
    /// `None` if it is not a directory.
    pub fn read_dir(&self, path: &str) -> Option<Vec<DirEntry<'a>>> {
        let dir = path.trim_matches('/');
        let mut out: Vec<DirEntry<'a>> = Vec::new();
        for e in &self.entries {
            let rest = if dir.is_empty() { Some(e.path) } else { under(e.path, dir) };
            let Some(rest) = rest else { continue };
            let (name, is_dir) = match rest.split_once('/') {
                Some((name, _)) => (name, true),
                None => (rest, false),
            };
            // A directory's entries are contiguous in path order, so a repeat is always the last one pushed.
            if out.last().is_none_or(|last| last.name != name) {
                out.push(DirEntry { name, is_dir });
            }
        }
        // Path order is not name order: `a-b` sorts before `a/x` (`-` < `/`), yet the
        // directory `a` comes before the file `a-b`. The sort is stable: a name that is a
        // file and a directory keeps its file entry first, and `dedup` keeps that one.
        out.sort_by(|x, y| x.name.cmp(y.name));
        out.dedup_by(|later, first| later.name == first.name);
        (dir.is_empty() || !out.is_empty()).then_some(out)
    }

    /// Every file's path and metadata, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, Metadata)> + '_ {
        self.entries.iter().map(|e| (e.path, e.meta))
    }

    /// Whether the file at `path` has been read and found intact (for diagnostics and tests).
    pub fn is_verified(&self, path: &str) -> bool {
        self.find(path).is_some_and(|e| e.state.load(Ordering::Acquire) == GOOD)
    }

    /// Checks every file's hash now; the first tampered one is the error.
    pub fn verify_all(&self) -> Result<(), FileError<'a>> {
        match self.entries.iter().find(|e| !e.check()) {
            Some(e) => Err(FileError::Tampered { path: e.path }),
            None => Ok(()),
        }
    }

    /// The key that signed this initfs.
    pub fn signer(&self) -> PublicKey {
        self.signer
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `path` less `dir/`, if `path` lies under `dir`.
fn under<'p>(path: &'p str, dir: &str) -> Option<&'p str> {
    path.strip_prefix(dir)?.strip_prefix('/')
}

/// Builds and signs an initfs in memory from `(path, mode, bytes)` triples.
#[derive(Debug, Default, Clone)]
pub struct InitfsBuilder {
    files: Vec<(String, u32, Vec<u8>)>,
}

impl InitfsBuilder {
    /// An empty builder.
    pub fn new() -> InitfsBuilder {
        InitfsBuilder::default()
    }

    /// Adds a file; the path must follow the path rules and be new. Mode bits outside
    /// [`MODE_MASK`] (a host's file-type bits) are dropped.
    pub fn add(&mut self, path: &str, mode: u32, bytes: &[u8]) -> Result<(), InitfsError> {
        check_path(path)?;
        if self.files.len() >= MAX_ENTRIES {
            return Err(InitfsError::TooManyEntries { count: MAX_ENTRIES as u32 });
        }
        if bytes.len() > isize::MAX as usize / 2 {
            return Err(InitfsError::FileTooLarge { len: bytes.len() });
        }
        match self.files.binary_search_by(|(p, _, _)| p.as_str().cmp(path)) {
            Ok(_) => Err(InitfsError::DuplicatePath),
            Err(at) => {
                self.files.insert(at, (path.into(), mode & MODE_MASK, bytes.into()));
                Ok(())
            }
        }
    }

    /// Lays the initfs out, signs it with `key` and returns its bytes.
    pub fn finish(self, key: &SecretKey) -> Vec<u8> {
        let n = self.files.len();
        let table_end = HEADER_LEN + n * ENTRY_LEN;
        let meta = table_end + self.files.iter().map(|(p, _, _)| p.len()).sum::<usize>();
        let mut data_at = align_up(meta + SIG_BLOCK_LEN);
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&(meta as u64).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // total, patched below
        out.extend_from_slice(&ALG_ED25519.to_le_bytes());
        out.resize(HEADER_LEN, 0);
        let mut path_at = table_end;
        for (path, mode, data) in &self.files {
            out.extend_from_slice(&(path_at as u32).to_le_bytes());
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(&mode.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(data_at as u64).to_le_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(&signature::sha256(data));
            path_at += path.len();
            data_at = align_up(data_at + data.len());
        }
        for (path, _, _) in &self.files {
            out.extend_from_slice(path.as_bytes());
        }
        out.resize(meta + SIG_BLOCK_LEN, 0); // the signature block, filled below
        for (_, _, data) in &self.files {
            out.resize(align_up(out.len()), 0);
            out.extend_from_slice(data);
        }
        let total = out.len() as u64;
        out[24..32].copy_from_slice(&total.to_le_bytes());
        sign_metadata(&mut out, key);
        out
    }
}

/// (Re)writes the signature block of an initfs whose header declares its metadata length.
/// The builder uses it; tests use it to sign hostile tables.
///
/// # Panics
/// If `bytes` is shorter than its header's metadata length plus the signature block
/// (a programming error: only call it on bytes this module laid out).
pub fn sign_metadata(bytes: &mut [u8], key: &SecretKey) {
    let meta = u64_at(bytes, 16) as usize;
    let sig = key.sign(&bytes[..meta]);
    bytes[meta..meta + PUBLIC_KEY_LEN].copy_from_slice(&key.public().0);
    bytes[meta + PUBLIC_KEY_LEN..meta + SIG_BLOCK_LEN].copy_from_slice(&sig);
}

fn align_up(x: usize) -> usize {
    x.div_ceil(DATA_ALIGN) * DATA_ALIGN
}

#[cfg(test)]
mod tests;
