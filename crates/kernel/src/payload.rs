//! Signed code payloads: checked (`bareflow_abi::payload`: signature against
//! the image's trusted keys, hash, structure, ABI version, capabilities,
//! relocations, imports), mapped W^X by the hardware layer, and run in a
//! fiber of their own.
use alloc::format;
use alloc::string::String;
use bareflow_abi::payload::{Payload, caps};
use core::fmt;

/// Why a payload did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadRunError {
    /// Refused before anything was mapped (the message names the check).
    Refused(String),
    /// Refused while mapping.
    Load(String),
    /// No thread for it.
    Spawn(String),
}

impl fmt::Display for PayloadRunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadRunError::Refused(m) => write!(f, "payload refused: {m}"),
            PayloadRunError::Load(m) => write!(f, "payload not loaded: {m}"),
            PayloadRunError::Spawn(m) => write!(f, "payload not started: {m}"),
        }
    }
}

/// What a payload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// Its manifest's name.
    pub name: String,
    /// The signer's key (hex).
    pub signer: String,
    /// Bytes mapped.
    pub mapped: u64,
    /// Time to check and map it, in ns.
    pub load_ns: u64,
    /// Its entry's result.
    pub result: u64,
}

/// Replies of the handler calls running now, by the thread that runs each.
static REPLIES: crate::sync::Mutex<alloc::vec::Vec<(usize, alloc::vec::Vec<u8>)>> = crate::sync::Mutex::new(alloc::vec::Vec::new());

fn thread_key() -> usize {
    crate::task::current() as *const crate::task::Thread as usize
}

fn handlers() {
    bareflow_hal::payload::set_handlers(bareflow_hal::payload::Handlers {
        write: crate::console::write_bytes,
        exit: crate::process::exit,
        time_nanos: crate::time::monotonic_nanos,
        read_file: |path, buf| {
            let b = crate::fs::read_static(path).ok()?;
            let n = b.len().min(buf.len());
            buf[..n].copy_from_slice(&b[..n]);
            Some(b.len())
        },
        respond: |bytes| {
            let key = thread_key();
            let mut r = REPLIES.lock();
            if let Some((_, v)) = r.iter_mut().find(|(k, _)| *k == key) {
                v.extend_from_slice(bytes);
            }
        },
    });
}

/// A payload checked and mapped once, called many times (each call in a
/// fiber of its own), such as an HTTP handler.
pub struct Handler {
    loaded: alloc::sync::Arc<bareflow_hal::payload::Loaded>,
    /// Its manifest's name.
    pub name: String,
}

impl Handler {
    /// Checks and maps the payload in `bytes` (as [`run`] does).
    pub fn load(bytes: &'static [u8]) -> Result<Handler, PayloadRunError> {
        handlers();
        let trusted = crate::fs::trusted_keys().map_err(|e| PayloadRunError::Refused(format!("the image's key list: {e}")))?;
        let p = Payload::open(bytes, &trusted, caps::ALL).map_err(|e| PayloadRunError::Refused(format!("{e}")))?;
        let loaded = bareflow_hal::payload::load(&p).map_err(|e| PayloadRunError::Load(format!("{e}")))?;
        Ok(Handler { loaded: alloc::sync::Arc::new(loaded), name: p.manifest.name.clone() })
    }

    /// Calls the entry with `arg` in a new fiber; returns its result and
    /// what it replied through `bf_respond`.
    pub fn call(&self, arg: u64) -> Result<(u64, alloc::vec::Vec<u8>), PayloadRunError> {
        let loaded = self.loaded.clone();
        let h = crate::task::spawn(move || {
            let key = thread_key();
            REPLIES.lock().push((key, alloc::vec::Vec::new()));
            let result = loaded.run(arg);
            let mut r = REPLIES.lock();
            let reply = r.iter().position(|(k, _)| *k == key).map(|i| r.swap_remove(i).1).unwrap_or_default();
            (result, reply)
        })
        .map_err(|e| PayloadRunError::Spawn(format!("{e:?}")))?;
        Ok(h.join())
    }
}

/// Checks, maps and runs the payload in `bytes` with `arg`, in its own
/// thread, and waits for its result. The capabilities granted are all this
/// kernel knows.
pub fn run(bytes: &'static [u8], arg: u64) -> Result<Ran, PayloadRunError> {
    handlers();
    let t0 = crate::time::monotonic_nanos();
    let trusted = crate::fs::trusted_keys().map_err(|e| PayloadRunError::Refused(format!("the image's key list: {e}")))?;
    let p = Payload::open(bytes, &trusted, caps::ALL).map_err(|e| PayloadRunError::Refused(format!("{e}")))?;
    let loaded = bareflow_hal::payload::load(&p).map_err(|e| PayloadRunError::Load(format!("{e}")))?;
    let load_ns = crate::time::monotonic_nanos() - t0;
    let (name, signer, mapped) = (p.manifest.name.clone(), alloc::string::ToString::to_string(&p.signer.hex()), loaded.size);
    let h = crate::task::spawn(move || loaded.run(arg)).map_err(|e| PayloadRunError::Spawn(format!("{e:?}")))?;
    Ok(Ran { name, signer, mapped, load_ns, result: h.join() })
}
