//! Loading and entering signed code payloads.
//!
//! `bareflow_abi::payload` did every check that can be done on bytes (the
//! Ed25519 signature against the image's trusted keys, the code's hash, the
//! ELF's structure, relocation kinds, imports against the exported ABI).
//! What needs the machine is here: fresh pages, the relocated image copied
//! in while they are read-write, then each segment given its own rights
//! (code read-execute, constants read-only, data read-write, never writable
//! and executable at once), and the call into the entry.
//!
//! Entering the code is sound on the terms of BareFlow's trust model: a
//! [`Payload`] exists only after `Payload::open` verified that a trusted key
//! signed exactly these bytes, and the signer vouches that the entry is a
//! System V function of the kernel ABI the manifest names. The kernel's side
//! of that ABI is the `bf_*` exports below; each checks its arguments
//! before forwarding to the safe handlers the kernel registered.
use super::mm::{MapError, Pages, Prot};
use crate::memmap::FRAME_SIZE;
use bareflow_abi::payload::{self as abi, Payload, PayloadError};
use core::fmt;
use spin::Once;

/// The kernel's handlers behind the exports (registered once at boot).
#[derive(Clone, Copy)]
pub struct Handlers {
    /// `bf_write`: console output.
    pub write: fn(&[u8]),
    /// `bf_exit`: ends the app with a code.
    pub exit: fn(i32) -> !,
    /// `bf_time_nanos`: the monotonic clock.
    pub time_nanos: fn() -> u64,
    /// `bf_read_file`: copies a boot-time file into the buffer; its length, or `None`.
    pub read_file: fn(&str, &mut [u8]) -> Option<usize>,
    /// `bf_respond`: appends to the reply of the handler call running on this thread.
    pub respond: fn(&[u8]),
}

static HANDLERS: Once<Handlers> = Once::new();

/// Registers the kernel's handlers (the first call wins).
pub fn set_handlers(h: Handlers) {
    HANDLERS.call_once(|| h);
}

/// The largest buffer an export accepts from a payload (1 GiB): a bound on
/// what a buggy payload can make the kernel touch.
const MAX_BUF: usize = 1 << 30;

extern "sysv64" fn bf_write(ptr: *const u8, len: usize) {
    if ptr.is_null() || len > MAX_BUF {
        return;
    }
    // SAFETY: the ABI contract (signed by the payload's author): `ptr` points
    // to `len` readable bytes for the duration of the call.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    if let Some(h) = HANDLERS.get() {
        (h.write)(bytes);
    }
}

extern "sysv64" fn bf_respond(ptr: *const u8, len: usize) {
    if ptr.is_null() || len > MAX_BUF {
        return;
    }
    // SAFETY: as for `bf_write`: `ptr` points to `len` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    if let Some(h) = HANDLERS.get() {
        (h.respond)(bytes);
    }
}

extern "sysv64" fn bf_exit(code: i32) {
    if let Some(h) = HANDLERS.get() {
        (h.exit)(code);
    }
}

extern "sysv64" fn bf_time_nanos() -> u64 {
    HANDLERS.get().map_or(0, |h| (h.time_nanos)())
}

extern "sysv64" fn bf_read_file(path: *const u8, path_len: usize, buf: *mut u8, cap: usize) -> i64 {
    if path.is_null() || path_len > 4096 || (buf.is_null() && cap != 0) || cap > MAX_BUF {
        return -1;
    }
    // SAFETY: the ABI contract: `path` points to `path_len` readable bytes.
    let path = unsafe { core::slice::from_raw_parts(path, path_len) };
    let Ok(path) = core::str::from_utf8(path) else { return -1 };
    let mut empty = [0u8; 0];
    let buf: &mut [u8] = if cap == 0 {
        &mut empty
    } else {
        // SAFETY: the ABI contract: `buf` points to `cap` writable bytes that
        // nothing else uses during the call.
        unsafe { core::slice::from_raw_parts_mut(buf, cap) }
    };
    match HANDLERS.get().and_then(|h| (h.read_file)(path, buf)) {
        Some(n) => i64::try_from(n).unwrap_or(i64::MAX),
        None => -1,
    }
}

/// The export table the loader resolves imports against (every function of
/// the current ABI; an older payload's imports are checked against its own
/// version's subset by `bareflow_abi`).
fn exports() -> [(&'static str, u64); 5] {
    [
        ("bf_respond", bf_respond as *const () as usize as u64),
        ("bf_write", bf_write as *const () as usize as u64),
        ("bf_exit", bf_exit as *const () as usize as u64),
        ("bf_time_nanos", bf_time_nanos as *const () as usize as u64),
        ("bf_read_file", bf_read_file as *const () as usize as u64),
    ]
}

/// Why a payload could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The ELF, its relocations or its imports were refused.
    Payload(PayloadError),
    /// Pages could not be had or protected.
    Map(MapError),
    /// Two segments with different rights share a page.
    SharedPage {
        /// Offset of the page.
        offset: u64,
    },
    /// The entry is not inside a read-execute segment.
    EntryNotCode {
        /// Its offset.
        entry: u64,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Payload(e) => write!(f, "{e}"),
            LoadError::Map(e) => write!(f, "cannot map the payload: {e:?}"),
            LoadError::SharedPage { offset } => {
                write!(f, "two payload segments with different rights share the page at offset {offset:#x}")
            }
            LoadError::EntryNotCode { entry } => write!(f, "the payload's entry ({entry:#x}) is not in a code segment"),
        }
    }
}

/// A payload mapped with its rights, ready to enter.
#[derive(Debug)]
pub struct Loaded {
    pages: Pages,
    entry: u64,
    /// Bytes mapped.
    pub size: u64,
}

/// Maps `payload`: relocates it for fresh pages, copies it in, and gives
/// each segment its rights.
pub fn load(payload: &Payload<'_>) -> Result<Loaded, LoadError> {
    // A first layout at base 0 tells the span; the real one is for the pages.
    let probe = payload.load(0, &exports()).map_err(LoadError::Payload)?;
    let span = (probe.bytes.len() as u64).max(1);
    let count = span.div_ceil(FRAME_SIZE);
    let mut pages = Pages::alloc(count, Prot::ReadWrite).map_err(LoadError::Map)?;
    let img = payload.load(pages.addr(), &exports()).map_err(LoadError::Payload)?;
    let dst = pages.as_mut_slice().map_err(LoadError::Map)?;
    let n = img.bytes.len().min(dst.len());
    dst[..n].copy_from_slice(&img.bytes[..n]);
    // Rights per page: every page a segment touches gets its rights; a page
    // claimed by two segments with different rights is refused.
    let mut rights: alloc::vec::Vec<Option<Prot>> = alloc::vec![None; count as usize];
    for s in &img.segments {
        let prot = match s.prot {
            abi::Prot::Read => Prot::Read,
            abi::Prot::ReadWrite => Prot::ReadWrite,
            abi::Prot::ReadExec => Prot::ReadExec,
        };
        if s.len == 0 {
            continue;
        }
        let first = s.offset / FRAME_SIZE;
        let last = (s.offset + s.len - 1) / FRAME_SIZE;
        for p in first..=last.min(count - 1) {
            match rights[p as usize] {
                Some(r) if r != prot => return Err(LoadError::SharedPage { offset: p * FRAME_SIZE }),
                _ => rights[p as usize] = Some(prot),
            }
        }
    }
    let entry_page = img.entry / FRAME_SIZE;
    if rights.get(entry_page as usize).copied().flatten() != Some(Prot::ReadExec) {
        return Err(LoadError::EntryNotCode { entry: img.entry });
    }
    for (p, r) in rights.iter().enumerate() {
        // Pages no segment claims (alignment gaps) stay read-write, not executable.
        let prot = r.unwrap_or(Prot::ReadWrite);
        pages.protect_range(p as u64 * FRAME_SIZE, FRAME_SIZE, prot).map_err(LoadError::Map)?;
    }
    Ok(Loaded { pages, entry: img.entry, size: count * FRAME_SIZE })
}

impl Loaded {
    /// Calls the entry with `arg` and returns its result.
    pub fn run(&self, arg: u64) -> u64 {
        type Entry = extern "sysv64" fn(u64) -> u64;
        let at = self.pages.addr() + self.entry;
        // SAFETY: `at` lies in a read-execute page of this mapping (checked in
        // `load`), which stays mapped while `self` is borrowed. That the bytes
        // there are a function of this ABI is what the trusted signature over
        // them vouches for (see the module docs): a `Payload` cannot exist
        // without that check.
        let f: Entry = unsafe { core::mem::transmute::<u64, Entry>(at) };
        f(arg)
    }
}
