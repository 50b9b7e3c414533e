//! Signed code payloads (image only): a handler checked and mapped once by
//! the kernel (signature against the image's trusted keys, W^X pages), then
//! called with an argument, each call in a fiber of its own; it answers
//! through the ABI's `bf_respond`. Hosted, there is no loader: `load` says so.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a payload could not be loaded or called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A loaded handler payload.
pub struct Handler {
    #[cfg(target_os = "none")]
    inner: bareflow_kernel::payload::Handler,
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handler({})", self.name())
    }
}

impl Handler {
    /// Loads the signed payload at boot-time file `path`.
    pub fn load(path: &str) -> Result<Handler, Error> {
        #[cfg(target_os = "none")]
        {
            let bytes = bareflow_kernel::fs::read_static(path).map_err(|e| Error(alloc::format!("{path}: {e}")))?;
            let inner = bareflow_kernel::payload::Handler::load(bytes).map_err(|e| Error(alloc::format!("{path}: {e}")))?;
            Ok(Handler { inner })
        }
        #[cfg(not(target_os = "none"))]
        {
            Err(Error(alloc::format!("{path}: signed payloads run only in the image (hosted there is no loader)")))
        }
    }

    /// Its manifest's name.
    pub fn name(&self) -> &str {
        #[cfg(target_os = "none")]
        {
            &self.inner.name
        }
        #[cfg(not(target_os = "none"))]
        {
            ""
        }
    }

    /// Calls it with `arg`: its result and its reply.
    pub fn call(&self, arg: u64) -> Result<(u64, Vec<u8>), Error> {
        #[cfg(target_os = "none")]
        {
            self.inner.call(arg).map_err(|e| Error(alloc::format!("{e}")))
        }
        #[cfg(not(target_os = "none"))]
        {
            let _ = arg;
            Err(Error("no payloads hosted".into()))
        }
    }
}
