//! The boot-time file archive (`run --file`), handed to the kernel as a PVH or
//! Multiboot2 module. A later format (a signed initfs) replaces it; this one is
//! deliberately simple, and strict: [`Archive::parse`] checks every count, length
//! and offset once, after which no accessor can fail or panic.
//!
//! Layout, all integers little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `BFARCHV\0` |
//! | 8..12 | format version, [`VERSION`] |
//! | 12..16 | entry count `n` |
//! | 16..24 | total length of the archive in bytes (trailing bytes after it, e.g. loader padding, are ignored) |
//! | 24..24+32n | entry table: per entry `path_offset: u32, path_len: u32, data_offset: u64, data_len: u64, reserved: u64 (0)` |
//! | ... | path bytes (UTF-8), then file data, each file 16-byte aligned |
//!
//! Entries are sorted by path (byte order) and paths are unique, so lookup is a binary
//! search. A path is 1..=[`MAX_PATH_LEN`] bytes of UTF-8, relative, `/`-separated, with no
//! empty, `.` or `..` component and no NUL. Path and data ranges lie after the entry table,
//! inside the total length, and no two ranges overlap.

use alloc::vec::Vec;
use core::fmt;

/// First eight bytes of every archive.
pub const MAGIC: [u8; 8] = *b"BFARCHV\0";
/// The format version this code reads and writes.
pub const VERSION: u32 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 24;
/// Size of one entry-table record.
pub const ENTRY_LEN: usize = 32;
/// Longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 255;
/// Alignment of each file's data from the start of the archive.
pub const DATA_ALIGN: usize = 16;
/// Most files one archive may hold (keeps every table offset within `u32`).
pub const MAX_ENTRIES: usize = 1 << 20;

/// What is wrong with an archive or with a file being added to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveError {
    /// Fewer bytes than the header needs.
    TooShort { len: usize },
    /// The first bytes are not [`MAGIC`].
    BadMagic,
    /// A version this code does not read.
    UnsupportedVersion { found: u32 },
    /// The header's total length is larger than the bytes given (truncated archive).
    Truncated { declared: u64, available: usize },
    /// The entry table does not fit in the archive (corrupt or hostile count).
    TooManyEntries { count: u32 },
    /// Entry `index` points outside the archive, into the header/table, or its length overflows.
    RangeOutOfBounds { index: usize },
    /// Entry `index`'s path or data overlaps another entry's.
    Overlap { index: usize },
    /// Entry `index` has a non-zero reserved field.
    ReservedNotZero { index: usize },
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

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ArchiveError::*;
        match self {
            TooShort { len } => write!(f, "archive is {len} bytes, shorter than its {HEADER_LEN}-byte header: not a BareFlow archive or truncated"),
            BadMagic => write!(f, "not a BareFlow file archive (bad magic): pack it with `cargo bareflow run --file`"),
            UnsupportedVersion { found } => write!(f, "archive format version {found} is not supported (this build reads version {VERSION}): rebuild the archive with the matching CLI"),
            Truncated { declared, available } => write!(f, "archive is truncated: header says {declared} bytes but only {available} are present"),
            TooManyEntries { count } => write!(f, "archive claims {count} entries, more than its bytes can hold: the archive is corrupt"),
            RangeOutOfBounds { index } => write!(f, "entry {index} points outside the archive's data area: the archive is corrupt"),
            Overlap { index } => write!(f, "entry {index} overlaps another entry: the archive is corrupt"),
            ReservedNotZero { index } => write!(f, "entry {index} has a non-zero reserved field: written by a newer or broken packer"),
            PathNotUtf8 { index } => write!(f, "entry {index}'s path is not UTF-8"),
            BadPath { reason } => write!(f, "bad path: {reason}"),
            PathTooLong { len } => write!(f, "path is {len} bytes, longer than the {MAX_PATH_LEN}-byte limit"),
            DuplicatePath => write!(f, "the same path appears twice: give each file a distinct guest path"),
            Unsorted { index } => write!(f, "entry {index} is out of order: entries must be sorted by path"),
            FileTooLarge { len } => write!(f, "file of {len} bytes is too large for the archive"),
        }
    }
}

impl core::error::Error for ArchiveError {}

/// Checks a guest path against the path rules.
pub fn check_path(path: &str) -> Result<(), ArchiveError> {
    if path.is_empty() {
        return Err(ArchiveError::BadPath { reason: "empty path" });
    }
    if path.len() > MAX_PATH_LEN {
        return Err(ArchiveError::PathTooLong { len: path.len() });
    }
    if path.contains('\0') {
        return Err(ArchiveError::BadPath { reason: "path contains a NUL byte" });
    }
    if path.starts_with('/') {
        return Err(ArchiveError::BadPath { reason: "path must be relative (no leading `/`)" });
    }
    for part in path.split('/') {
        match part {
            "" => return Err(ArchiveError::BadPath { reason: "path has an empty component (`//` or a trailing `/`)" }),
            "." | ".." => return Err(ArchiveError::BadPath { reason: "path has a `.` or `..` component" }),
            _ => {}
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    path: &'a str,
    data: &'a [u8],
}

/// A checked, read-only view of an archive's bytes.
#[derive(Debug, Clone)]
pub struct Archive<'a> {
    entries: Vec<Entry<'a>>,
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

impl<'a> Archive<'a> {
    /// Checks `bytes` and returns a view of the archive in them.
    pub fn parse(bytes: &'a [u8]) -> Result<Archive<'a>, ArchiveError> {
        if bytes.len() < HEADER_LEN {
            return Err(ArchiveError::TooShort { len: bytes.len() });
        }
        if bytes[0..8] != MAGIC {
            return Err(ArchiveError::BadMagic);
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return Err(ArchiveError::UnsupportedVersion { found: version });
        }
        let count = u32_at(bytes, 12);
        let declared = u64_at(bytes, 16);
        let total = match usize::try_from(declared) {
            Ok(t) if t <= bytes.len() => t,
            _ => return Err(ArchiveError::Truncated { declared, available: bytes.len() }),
        };
        if total < HEADER_LEN {
            return Err(ArchiveError::TooShort { len: total });
        }
        let bytes = &bytes[..total];
        let table_end = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(ENTRY_LEN))
            .and_then(|t| t.checked_add(HEADER_LEN))
            .filter(|&end| end <= total)
            .ok_or(ArchiveError::TooManyEntries { count })?;

        let n = (table_end - HEADER_LEN) / ENTRY_LEN;
        let mut entries = Vec::with_capacity(n);
        // Every range claimed by an entry, to check that none overlap.
        let mut ranges: Vec<(usize, usize, usize)> = Vec::with_capacity(2 * n);
        for index in 0..n {
            let rec = HEADER_LEN + index * ENTRY_LEN;
            let path_off = u64::from(u32_at(bytes, rec));
            let path_len = u64::from(u32_at(bytes, rec + 4));
            let data_off = u64_at(bytes, rec + 8);
            let data_len = u64_at(bytes, rec + 16);
            if u64_at(bytes, rec + 24) != 0 {
                return Err(ArchiveError::ReservedNotZero { index });
            }
            let oob = ArchiveError::RangeOutOfBounds { index };
            let path_r = checked_range(path_off, path_len, table_end, total).ok_or(oob.clone())?;
            let data_r = checked_range(data_off, data_len, table_end, total).ok_or(oob)?;
            let path = core::str::from_utf8(&bytes[path_r.clone()])
                .map_err(|_| ArchiveError::PathNotUtf8 { index })?;
            check_path(path)?;
            if let Some(prev) = entries.last().map(|e: &Entry<'_>| e.path) {
                match prev.cmp(path) {
                    core::cmp::Ordering::Less => {}
                    core::cmp::Ordering::Equal => return Err(ArchiveError::DuplicatePath),
                    core::cmp::Ordering::Greater => return Err(ArchiveError::Unsorted { index }),
                }
            }
            ranges.push((path_r.start, path_r.end, index));
            if !data_r.is_empty() {
                ranges.push((data_r.start, data_r.end, index));
            }
            entries.push(Entry { path, data: &bytes[data_r] });
        }
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(ArchiveError::Overlap { index: pair[1].2 });
            }
        }
        Ok(Archive { entries })
    }

    /// The contents of the file at `path`, if the archive has one.
    pub fn get(&self, path: &str) -> Option<&'a [u8]> {
        self.entries
            .binary_search_by(|e| e.path.cmp(path))
            .ok()
            .map(|i| self.entries[i].data)
    }

    /// Every `(path, contents)` pair, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.entries.iter().map(|e| (e.path, e.data))
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the archive has no files.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Builds an archive in memory from `(path, bytes)` pairs.
#[derive(Debug, Default, Clone)]
pub struct ArchiveBuilder {
    files: Vec<(alloc::string::String, Vec<u8>)>,
}

impl ArchiveBuilder {
    /// An empty builder.
    pub fn new() -> ArchiveBuilder {
        ArchiveBuilder::default()
    }

    /// Adds a file; the path must follow the path rules and be new.
    pub fn add(&mut self, path: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        check_path(path)?;
        if self.files.len() >= MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries { count: MAX_ENTRIES as u32 });
        }
        if u64::try_from(bytes.len()).is_err() || bytes.len() > isize::MAX as usize / 2 {
            return Err(ArchiveError::FileTooLarge { len: bytes.len() });
        }
        match self.files.binary_search_by(|(p, _)| p.as_str().cmp(path)) {
            Ok(_) => Err(ArchiveError::DuplicatePath),
            Err(at) => {
                self.files.insert(at, (path.into(), bytes.into()));
                Ok(())
            }
        }
    }

    /// Lays the archive out and returns its bytes.
    pub fn finish(self) -> Vec<u8> {
        let n = self.files.len();
        let table_end = HEADER_LEN + n * ENTRY_LEN;
        let paths_len: usize = self.files.iter().map(|(p, _)| p.len()).sum();
        let mut data_at = align_up(table_end + paths_len);
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // total, patched below
        let mut path_at = table_end;
        for (path, data) in &self.files {
            out.extend_from_slice(&(path_at as u32).to_le_bytes());
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data_at as u64).to_le_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
            path_at += path.len();
            data_at = align_up(data_at + data.len());
        }
        for (path, _) in &self.files {
            out.extend_from_slice(path.as_bytes());
        }
        for (_, data) in &self.files {
            out.resize(align_up(out.len()), 0);
            out.extend_from_slice(data);
        }
        let total = out.len() as u64;
        out[16..24].copy_from_slice(&total.to_le_bytes());
        out
    }
}

fn align_up(x: usize) -> usize {
    x.div_ceil(DATA_ALIGN) * DATA_ALIGN
}

#[cfg(test)]
mod tests;
