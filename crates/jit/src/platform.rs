//! Where generated code is placed and how it is entered: fresh W^X pages
//! from `bareflow-hal` (the kernel's page tables in the image,
//! `mmap`/`mprotect` hosted). Written while read-write, flipped to
//! read-execute, never both.
//!
//! Entering the code is `unsafe` in the hardware layer (it cannot know what
//! the bytes do); this module forwards that obligation through the
//! `unsafe fn` [`ExecMemory::call`], which only [`crate::MatvecKernel::run`]
//! and [`crate::Q8Kernel::run`] discharge, for code this crate generated.
#![allow(unsafe_code)]

use crate::{ExecAlloc, ExecError, ExecMemory};
use alloc::sync::Arc;

/// Places code in fresh W^X pages of the platform this is built for.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeAlloc;

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

    struct Code(CodePages);

    impl ExecMemory for Code {
        unsafe fn call(&self, offset: usize, args: [u64; 6]) -> Result<u64, ExecError> {
            // SAFETY: forwarded: the caller of `ExecMemory::call` guarantees
            // that the code at `offset` is a function whose contract `args` meet.
            unsafe { self.0.call(offset, args) }.map_err(map)
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }

    // SAFETY: the bytes are copied to offset 0 of fresh pages, which are then
    // made read-execute and stay so until the mapping is dropped with `Code`.
    unsafe impl ExecAlloc for CodeAlloc {
        fn place(&self, code: &[u8]) -> Result<Arc<dyn ExecMemory>, ExecError> {
            let mut p = CodePages::alloc(code.len()).map_err(map)?;
            p.as_mut_slice().map_err(map)?[..code.len()].copy_from_slice(code);
            p.protect(HostProt::ReadExec).map_err(map)?;
            Ok(Arc::new(Code(p)))
        }
    }
}

#[cfg(target_os = "none")]
mod backend {
    use super::*;
    use bareflow_hal::mm::{MapError, Pages, Prot};

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

    struct Code(Pages);

    impl ExecMemory for Code {
        unsafe fn call(&self, offset: usize, args: [u64; 6]) -> Result<u64, ExecError> {
            // SAFETY: forwarded, as in the hosted backend.
            unsafe { self.0.call(offset as u64, args) }.map_err(map)
        }
        fn len(&self) -> usize {
            self.0.len() as usize
        }
    }

    // SAFETY: as for the hosted backend, with the kernel's pages.
    unsafe impl ExecAlloc for CodeAlloc {
        fn place(&self, code: &[u8]) -> Result<Arc<dyn ExecMemory>, ExecError> {
            let pages = (code.len() as u64).div_ceil(4096);
            let mut p = Pages::alloc(pages, Prot::ReadWrite).map_err(map)?;
            p.as_mut_slice().map_err(map)?[..code.len()].copy_from_slice(code);
            p.protect(Prot::ReadExec).map_err(map)?;
            Ok(Arc::new(Code(p)))
        }
    }
}
