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
    });
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
