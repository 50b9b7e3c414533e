//! Executable memory for the hosted backend (Linux): the same shape as the
//! image's [`Pages`](crate::mm::Pages) for JIT code, on `mmap`/`mprotect`.
//!
//! A [`CodePages`] is born read-write; the code is written through
//! [`CodePages::as_mut_slice`], then [`CodePages::protect`] flips it to
//! read-execute, after which writing is refused by the API (and by the MMU).
//! [`HostProt`] has no writable-and-executable value, so W^X holds by
//! construction; asking for it with [`HostProt::from_flags`] fails.
//! Dropping the pages unmaps them.
use core::fmt;

/// Rights of hosted code pages. There is deliberately no read-write-execute value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostProt {
    /// Read-write, not executable (while the code is written).
    ReadWrite,
    /// Read and execute, not writable (once the code is in place).
    ReadExec,
}

impl HostProt {
    /// The rights for these flags; writable and executable together is refused,
    /// and so are pages that are neither writable nor executable (of no use for code).
    pub fn from_flags(read: bool, write: bool, exec: bool) -> Result<HostProt, HostExecError> {
        match (read, write, exec) {
            (_, true, true) => Err(HostExecError::WriteAndExecute),
            (_, true, false) => Ok(HostProt::ReadWrite),
            (_, false, true) => Ok(HostProt::ReadExec),
            (_, false, false) => Err(HostExecError::AccessDenied),
        }
    }

    fn bits(self) -> libc::c_int {
        match self {
            HostProt::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
            HostProt::ReadExec => libc::PROT_READ | libc::PROT_EXEC,
        }
    }
}

/// Why a hosted code mapping failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostExecError {
    /// Writable and executable at once was asked for (W^X).
    WriteAndExecute,
    /// The pages do not allow this now (write after the flip, call before it,
    /// an offset outside the pages).
    AccessDenied,
    /// Zero bytes, or a size that overflows.
    BadSize,
    /// `mmap` or `mprotect` failed with this `errno`.
    Os(i32),
}

impl fmt::Display for HostExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WriteAndExecute => write!(f, "code pages may not be writable and executable at once (W^X)"),
            Self::AccessDenied => write!(f, "the code pages do not allow this: write before protect(ReadExec), call after"),
            Self::BadSize => write!(f, "code size must be between 1 byte and the address space"),
            Self::Os(e) => write!(f, "mmap/mprotect failed with errno {e}"),
        }
    }
}

fn errno() -> i32 {
    // SAFETY: `__errno_location` returns this thread's errno slot, always valid to read.
    unsafe { *libc::__errno_location() }
}

/// Owned pages of code: `mmap`ed read-write, flipped to read-execute, unmapped on drop.
#[derive(Debug)]
pub struct CodePages {
    /// Address of the mapping (kept as an integer: the pages are owned, and
    /// all access goes through `&self`/`&mut self`).
    addr: usize,
    len: usize,
    prot: HostProt,
}

impl CodePages {
    /// At least `len` bytes of zeroed, read-write pages.
    pub fn alloc(len: usize) -> Result<CodePages, HostExecError> {
        let len = len.checked_add(4095).filter(|_| len > 0).ok_or(HostExecError::BadSize)? & !4095;
        // SAFETY: an anonymous private mapping at an address the kernel chooses
        // touches no existing memory.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                HostProt::ReadWrite.bits(),
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(HostExecError::Os(errno()));
        }
        Ok(CodePages { addr: p as usize, len, prot: HostProt::ReadWrite })
    }

    /// Changes the rights of every page.
    pub fn protect(&mut self, prot: HostProt) -> Result<(), HostExecError> {
        // SAFETY: the range is our own mapping; `&mut self` proves no slice of it
        // is borrowed, so no live `&mut [u8]` survives the loss of write rights.
        let r = unsafe { libc::mprotect(self.addr as *mut libc::c_void, self.len, prot.bits()) };
        if r != 0 {
            return Err(HostExecError::Os(errno()));
        }
        self.prot = prot;
        Ok(())
    }

    /// Length in bytes (a whole number of pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: the mapping has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Current rights.
    pub fn prot(&self) -> HostProt {
        self.prot
    }

    /// The bytes (both rights allow reading).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: our mapping is readable under both rights and stays mapped while `self` is borrowed.
        unsafe { core::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }

    /// The bytes, while the pages are writable.
    pub fn as_mut_slice(&mut self) -> Result<&mut [u8], HostExecError> {
        match self.prot {
            // SAFETY: our mapping is writable and borrowed mutably once through `&mut self`.
            HostProt::ReadWrite => Ok(unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) }),
            HostProt::ReadExec => Err(HostExecError::AccessDenied),
        }
    }

    /// Calls the code at `offset` (System V, six integer arguments, one integer
    /// result) once the pages are read-execute: the hosted twin of
    /// `mm::Pages::call`, with the same verified-code contract (only code that
    /// was generated for fixed shapes and checked is flipped and called, and
    /// the pointers in `args` satisfy that code's contract).
    ///
    /// # Safety
    /// As for `mm::Pages::call`: the bytes at `offset` must be a function of
    /// this ABI whose contract `args` meet.
    pub unsafe fn call(&self, offset: usize, args: [u64; 6]) -> Result<u64, HostExecError> {
        if self.prot != HostProt::ReadExec || offset >= self.len {
            return Err(HostExecError::AccessDenied);
        }
        type Entry = extern "sysv64" fn(u64, u64, u64, u64, u64, u64) -> u64;
        // SAFETY: `addr + offset` lies inside our mapping, which is read-execute
        // (checked above) and stays mapped while `self` is borrowed; what the
        // code does is the caller's obligation (this fn's `# Safety`).
        let f: Entry = unsafe { core::mem::transmute::<usize, Entry>(self.addr + offset) };
        Ok(f(args[0], args[1], args[2], args[3], args[4], args[5]))
    }
}

impl Drop for CodePages {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nothing borrows it any more.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

/// The time-stamp counter, for profiling (cycles at the TSC's rate).
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects and exists on every x86-64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mov rax, rdi; add rax, rsi; ret`
    const ADD: [u8; 7] = [0x48, 0x89, 0xf8, 0x48, 0x01, 0xf0, 0xc3];

    #[test]
    fn code_runs_only_after_the_flip_and_cannot_be_written_after_it() {
        let mut p = CodePages::alloc(ADD.len()).expect("mmap");
        assert_eq!(p.len(), 4096);
        p.as_mut_slice().expect("writable")[..ADD.len()].copy_from_slice(&ADD);
        // The bytes at offset 0 are `ADD`, a System V function of two
        // integers that touches no memory; calls the checks refuse run nothing.
        // SAFETY: as above (refused: still writable).
        let r = unsafe { p.call(0, [1, 2, 0, 0, 0, 0]) };
        assert_eq!(r, Err(HostExecError::AccessDenied), "called while writable");
        p.protect(HostProt::ReadExec).expect("mprotect");
        // SAFETY: as above; `ADD` with 40 and 2.
        let r = unsafe { p.call(0, [40, 2, 0, 0, 0, 0]) };
        assert_eq!(r, Ok(42));
        assert_eq!(p.as_mut_slice().err(), Some(HostExecError::AccessDenied), "writable after the flip");
        assert_eq!(&p.as_slice()[..ADD.len()], &ADD);
        // SAFETY: as above (refused: the offset is past the mapping).
        let r = unsafe { p.call(4096, [0; 6]) };
        assert_eq!(r, Err(HostExecError::AccessDenied), "offset outside");
        // Back to writable: no longer callable.
        p.protect(HostProt::ReadWrite).expect("mprotect");
        // SAFETY: as above (refused: writable again).
        let r = unsafe { p.call(0, [1, 2, 0, 0, 0, 0]) };
        assert_eq!(r, Err(HostExecError::AccessDenied));
    }

    #[test]
    fn write_and_execute_together_is_refused() {
        assert_eq!(HostProt::from_flags(true, true, true), Err(HostExecError::WriteAndExecute));
        assert_eq!(HostProt::from_flags(false, true, true), Err(HostExecError::WriteAndExecute));
        assert_eq!(HostProt::from_flags(true, true, false), Ok(HostProt::ReadWrite));
        assert_eq!(HostProt::from_flags(true, false, true), Ok(HostProt::ReadExec));
        assert_eq!(CodePages::alloc(0).err(), Some(HostExecError::BadSize));
        assert_eq!(CodePages::alloc(usize::MAX).err(), Some(HostExecError::BadSize));
    }

    #[test]
    fn the_counter_moves() {
        let a = rdtsc();
        let b = rdtsc();
        assert!(b > a);
    }
}
