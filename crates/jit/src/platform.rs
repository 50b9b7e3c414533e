//! Where generated code is placed and how it is entered: fresh W^X pages
//! from `bareflow-hal` (the kernel's page tables in the image,
//! `mmap`/`mprotect` hosted). Written while read-write, flipped to
//! read-execute, never both.
//!
//! Entering the code is `unsafe` in the hardware layer (it cannot know what
//! the bytes do); this module forwards that obligation through the
//! crate-private `unsafe fn` `Code::call`, which only the kernels' `run`
//! methods discharge, for code this crate generated.
#![allow(unsafe_code)]

use crate::ExecError;

/// Generated code in W^X pages of the platform this is built for: placed
/// once (written, then flipped to read-execute), entered by the kernels.
pub struct Code(backend::Pages);

impl core::fmt::Debug for Code {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Code").field("len", &self.len()).finish()
    }
}

impl Code {
    /// Copies `code` to offset 0 of fresh read-write pages, then makes them
    /// read-execute (never both).
    pub fn place(code: &[u8]) -> Result<Code, ExecError> {
        backend::place(code).map(Code)
    }

    /// Calls the code at `offset` with the System V ABI, six integer
    /// arguments and one integer result.
    ///
    /// # Safety
    /// The bytes at `offset` must be a function of that ABI, and `args` must
    /// meet its contract (pointers valid for everything it reads and writes).
    pub(crate) unsafe fn call(&self, offset: usize, args: [u64; 6]) -> Result<u64, ExecError> {
        // SAFETY: forwarded: the caller guarantees that the code at `offset`
        // is a function whose contract `args` meet.
        unsafe { backend::call(&self.0, offset, args) }
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        backend::len(&self.0)
    }

    /// Whether the mapping is empty (never, once placed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The CPU's time-stamp counter (for the profiling hooks).
pub fn cycles() -> u64 {
    backend::cycles()
}

#[cfg(not(target_os = "none"))]
mod backend {
    use super::*;
    use bareflow_hal::hosted_exec::{CodePages, HostExecError, HostProt};

    pub fn cycles() -> u64 {
        bareflow_hal::hosted_exec::rdtsc()
    }

    fn map(e: HostExecError) -> ExecError {
        match e {
            HostExecError::WriteAndExecute => ExecError::WriteAndExecute,
            HostExecError::AccessDenied => ExecError::AccessDenied,
            HostExecError::BadSize => ExecError::BadSize,
            HostExecError::Os(n) => ExecError::Os(n),
        }
    }

    pub type Pages = CodePages;

    pub fn place(code: &[u8]) -> Result<Pages, ExecError> {
        let mut p = CodePages::alloc(code.len()).map_err(map)?;
        p.as_mut_slice().map_err(map)?[..code.len()].copy_from_slice(code);
        p.protect(HostProt::ReadExec).map_err(map)?;
        Ok(p)
    }

    /// # Safety
    /// As [`super::Code::call`].
    pub unsafe fn call(p: &Pages, offset: usize, args: [u64; 6]) -> Result<u64, ExecError> {
        // SAFETY: forwarded from `Code::call`'s caller.
        unsafe { p.call(offset, args) }.map_err(map)
    }

    pub fn len(p: &Pages) -> usize {
        p.len()
    }
}

#[cfg(target_os = "none")]
mod backend {
    use super::*;
    pub use bareflow_hal::mm::Pages;
    use bareflow_hal::mm::{MapError, Prot};

    pub fn cycles() -> u64 {
        bareflow_hal::cpu::rdtsc()
    }

    fn map(e: MapError) -> ExecError {
        match e {
            MapError::WriteAndExecute => ExecError::WriteAndExecute,
            MapError::OutOfMemory => ExecError::OutOfMemory,
            MapError::BadSize => ExecError::BadSize,
            _ => ExecError::AccessDenied,
        }
    }

    pub fn place(code: &[u8]) -> Result<Pages, ExecError> {
        let pages = (code.len() as u64).div_ceil(4096);
        let mut p = Pages::alloc(pages, Prot::ReadWrite).map_err(map)?;
        p.as_mut_slice().map_err(map)?[..code.len()].copy_from_slice(code);
        p.protect(Prot::ReadExec).map_err(map)?;
        Ok(p)
    }

    /// # Safety
    /// As [`super::Code::call`].
    pub unsafe fn call(p: &Pages, offset: usize, args: [u64; 6]) -> Result<u64, ExecError> {
        // SAFETY: forwarded from `Code::call`'s caller.
        unsafe { p.call(offset as u64, args) }.map_err(map)
    }

    pub fn len(p: &Pages) -> usize {
        p.len() as usize
    }
}
