//! The kernel's 4-level page tables and owned page ranges.
//!
//! Memory is identity-mapped (virtual = physical), so a page range is a run
//! of frames whose permissions are changed in place: no frame is ever
//! reachable through a second, more permissive alias. [`Prot`] has no
//! writable-and-executable value, so W^X holds by construction; asking for it
//! through [`Prot::from_flags`] fails with [`MapError::WriteAndExecute`].
use super::{alloc_frames, free_frames};
use crate::memmap::{align_up, FRAME_SIZE};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;

const P: u64 = 1;
const W: u64 = 1 << 1;
const PWT: u64 = 1 << 3;
const PCD: u64 = 1 << 4;
const PS: u64 = 1 << 7;
const NX: u64 = 1 << 63;
const ADDR: u64 = 0x000f_ffff_ffff_f000;
const HUGE: u64 = 1 << 21;
/// Device memory below 4 GiB (LAPIC, I/O APIC, virtio-mmio, HPET...),
/// identity-mapped uncached by [`build_kernel_tables`].
pub(crate) const DEVICE_WINDOW: core::ops::Range<u64> = 0xfe00_0000..0x1_0000_0000;

static ROOT: AtomicU64 = AtomicU64::new(0);
static NX_OK: AtomicBool = AtomicBool::new(false);
static TABLE_LOCK: Mutex<()> = Mutex::new(());

/// Page permissions. There is deliberately no read-write-execute value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prot {
    /// Not mapped: any access faults (guard pages).
    None,
    /// Read-only, not executable.
    Read,
    /// Read-write, not executable.
    ReadWrite,
    /// Read and execute, not writable.
    ReadExec,
    /// Device memory: read-write, not executable, uncached.
    Device,
}

impl Prot {
    /// The protection for these access rights; writable and executable together is refused.
    pub fn from_flags(read: bool, write: bool, exec: bool) -> Result<Prot, MapError> {
        match (read, write, exec) {
            (_, true, true) => Err(MapError::WriteAndExecute),
            (false, false, false) => Ok(Prot::None),
            (_, true, false) => Ok(Prot::ReadWrite),
            (_, false, true) => Ok(Prot::ReadExec),
            (true, false, false) => Ok(Prot::Read),
        }
    }

    fn bits(self) -> u64 {
        let nx = if NX_OK.load(Ordering::Relaxed) { NX } else { 0 };
        match self {
            Prot::None => 0,
            Prot::Read => P | nx,
            Prot::ReadWrite => P | W | nx,
            Prot::ReadExec => P,
            Prot::Device => P | W | nx | PCD | PWT,
        }
    }
}

/// Whether no-execute pages are enforced (EFER.NXE).
pub fn nx_enabled() -> bool {
    NX_OK.load(Ordering::Relaxed)
}

/// Why a mapping operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// A page may not be writable and executable at once (W^X).
    WriteAndExecute,
    /// No frames left for the pages or their tables.
    OutOfMemory,
    /// The pages are not mapped with the access asked for.
    AccessDenied,
    /// Zero pages, or a count that overflows.
    BadSize,
}

fn table(phys: u64) -> *mut u64 {
    phys as *mut u64
}

/// The entry for `virt` at the PD level (`want_pt == false`) or PT level,
/// creating tables and splitting 2 MiB pages on the way.
///
/// # Safety
/// The caller holds `TABLE_LOCK` (or runs before other CPUs and interrupts).
unsafe fn entry(virt: u64, want_pt: bool) -> Result<*mut u64, MapError> {
    let mut t = ROOT.load(Ordering::Relaxed);
    let levels: &[u32] = if want_pt { &[39, 30, 21] } else { &[39, 30] };
    for &shift in levels {
        // SAFETY: `t` is a page-table frame (identity-mapped RW) and the index is < 512.
        let e = unsafe { table(t).add(((virt >> shift) & 511) as usize) };
        // SAFETY: `e` points into that table.
        let val = unsafe { *e };
        if val & P == 0 {
            let f = alloc_frames(1).ok_or(MapError::OutOfMemory)?;
            // SAFETY: as above; intermediate entries allow everything, the leaf decides.
            unsafe { *e = f | P | W };
        } else if val & PS != 0 {
            // Split a 2 MiB page into 512 small pages with the same rights.
            let f = alloc_frames(1).ok_or(MapError::OutOfMemory)?;
            let base = val & ADDR & !(HUGE - 1);
            let flags = val & !ADDR & !PS;
            for i in 0..512u64 {
                // SAFETY: `f` is a fresh zeroed table frame.
                unsafe { *table(f).add(i as usize) = (base + i * FRAME_SIZE) | flags };
            }
            // SAFETY: replaces the huge entry by a table covering the same range.
            unsafe { *e = f | P | W };
        }
        // SAFETY: `e` is valid (see above).
        t = unsafe { *e } & ADDR;
    }
    let shift = if want_pt { 12 } else { 21 };
    // SAFETY: `t` is a table frame; index < 512.
    Ok(unsafe { table(t).add(((virt >> shift) & 511) as usize) })
}

/// True when going from entry `old` to `new` takes a right away (presence,
/// write, or execute).
fn loses_rights(old: u64, new: u64) -> bool {
    if old & P == 0 {
        return false;
    }
    new & P == 0 || (old & W != 0 && new & W == 0) || (old & NX == 0 && new & NX != 0) || (old & ADDR != new & ADDR)
}

fn invlpg(addr: u64) {
    // SAFETY: invalidating a TLB entry has no memory-safety effect.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) addr, options(nostack, preserves_flags)) }
}

/// Sets the rights of the small pages in `[start, start + len)` (page-aligned).
///
/// # Safety
/// Changing rights of memory someone else uses can break them: callers own
/// the range (an owned [`Pages`], or boot set-up).
unsafe fn set_range(start: u64, len: u64, prot: Prot) -> Result<(), MapError> {
    let mut lost_rights = false;
    {
        let _g = TABLE_LOCK.lock();
        let mut a = start;
        while a < start + len {
            // SAFETY: lock held; the caller owns the range.
            let e = unsafe { entry(a, true)? };
            let val = if prot == Prot::None { 0 } else { a | prot.bits() };
            // SAFETY: `e` is the PT entry for `a`.
            let old = unsafe { *e };
            lost_rights |= loses_rights(old, val);
            // SAFETY: as above.
            unsafe { *e = val };
            invlpg(a);
            a += FRAME_SIZE;
        }
    }
    // Other CPUs may cache the old, wider rights in their TLBs (lock released
    // first). Gaining rights needs no flush: a stale narrower entry only
    // faults again, and x86 does not cache not-present entries.
    if lost_rights {
        super::super::smp::tlb_shootdown();
    }
    Ok(())
}

/// Builds the kernel's tables (see the module docs of `mm`) and switches to them.
pub(crate) fn build_kernel_tables(limit: u64, l: &super::ImageLayout, guards: &[u64]) -> Result<(), MapError> {
    let nx = core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 20) != 0;
    NX_OK.store(nx, Ordering::Relaxed);
    let root = alloc_frames(1).ok_or(MapError::OutOfMemory)?;
    ROOT.store(root, Ordering::Relaxed);
    // 2 MiB pages, a page directory at a time: `entry` makes the directory
    // for the first 2 MiB of each GiB, then the loop fills the rest of it
    // directly (a walk per entry cost ~1 ms of boot under TCG).
    let mut a = 0;
    while a < limit {
        // SAFETY: the new tables are not live yet; only this CPU runs.
        let first = unsafe { entry(a, false)? };
        let n = ((limit - a) / HUGE).min(512 - ((a >> 21) & 511));
        for i in 0..n {
            let va = a + i * HUGE;
            let device = DEVICE_WINDOW.contains(&va);
            let prot = if device { Prot::Device } else { Prot::ReadWrite };
            // SAFETY: entries `i < n` of the directory holding `first`, which
            // ends at a 1 GiB boundary that `n` does not cross.
            unsafe { *first.add(i as usize) = va | prot.bits() | PS };
        }
        a += n * HUGE;
    }
    // The image's 2 MiB pages split into 4 KiB ones, a page table at a time.
    let image_top = align_up(l.image_end, HUGE);
    let mut p = 0;
    while p < image_top {
        // SAFETY: the new tables are not live yet; `p` is 2 MiB-aligned, so
        // `first` is entry 0 of the page table covering [p, p + 2 MiB).
        let first = unsafe { entry(p, true)? };
        for i in 0..512u64 {
            let q = p + i * FRAME_SIZE;
            let prot = if q == 0 {
                Prot::None
            } else if q >= l.text.0 && q < l.text.1 {
                Prot::ReadExec
            } else if q >= l.rodata.0 && q < l.rodata.1 {
                Prot::Read
            } else {
                Prot::ReadWrite
            };
            // SAFETY: entry `i < 512` of that page table.
            unsafe { *first.add(i as usize) = if prot == Prot::None { 0 } else { q | prot.bits() } };
        }
        p += HUGE;
    }
    for &g in guards {
        // SAFETY: the new tables are not live yet.
        let e = unsafe { entry(g, true)? };
        // SAFETY: PT entry of a guard page: not present.
        unsafe { *e = 0 };
    }
    // SAFETY: the new tables identity-map everything the running code uses
    // (text, rodata, data, stacks, the frames of the tables themselves), so
    // execution continues at the same addresses. CR0.WP was set in boot.s.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) root, options(nostack)) };
    Ok(())
}

/// Maps device registers at `[phys, phys + size)` (identity, uncached,
/// read-write, no-execute). Only for MMIO windows the firmware described.
pub(crate) fn map_device(phys: u64, size: u64) -> Result<(), MapError> {
    let start = crate::memmap::align_down(phys, FRAME_SIZE);
    let end = align_up(phys.checked_add(size).ok_or(MapError::BadSize)?, FRAME_SIZE);
    // SAFETY: device windows hold no RAM that Rust code owns; making them
    // uncached device mappings changes nothing for memory safety.
    unsafe { set_range(start, end - start, Prot::Device) }
}

const MAX_STACKS: usize = 256;
/// Owned stacks: (name, guard page, low, high).
static STACKS: Mutex<[(&str, u64, u64, u64); MAX_STACKS]> = Mutex::new([("", 0, 0, 0); MAX_STACKS]);

pub(super) fn guard_owner(addr: u64) -> Option<&'static str> {
    let s = STACKS.try_lock()?;
    s.iter().find(|e| e.1 != 0 && addr >= e.1 && addr < e.1 + FRAME_SIZE).map(|e| e.0)
}

pub(super) fn in_owned_stack(lo: u64, hi: u64) -> bool {
    STACKS.try_lock().is_some_and(|s| s.iter().any(|e| e.1 != 0 && lo >= e.2 && hi <= e.3))
}

/// A run of pages owned by its holder: dropping it unmaps nothing it does not
/// own and gives the frames back. Its rights change only through `&mut self`,
/// so no borrowed slice outlives a change of rights.
#[derive(Debug)]
pub struct Pages {
    /// First byte (after the guard page, for stacks).
    start: u64,
    pages: u64,
    prot: Prot,
    /// A guard page sits right below `start`.
    guarded: bool,
    /// The frames came from the frame allocator (and go back on drop).
    from_allocator: bool,
}

impl Pages {
    /// `count` zeroed pages with rights `prot`.
    pub fn alloc(count: u64, prot: Prot) -> Result<Pages, MapError> {
        Self::alloc_inner(count, prot, false)
    }

    /// A stack of `count` pages with an unmapped guard page below it; a fault
    /// in the guard page is reported as an overflow of stack `name`. Its
    /// memory is not zeroed.
    pub fn alloc_stack(count: u64, name: &'static str) -> Result<Pages, MapError> {
        let p = Self::alloc_inner(count, Prot::ReadWrite, true)?;
        let mut s = STACKS.lock();
        if let Some(slot) = s.iter_mut().find(|e| e.1 == 0) {
            *slot = (name, p.start - FRAME_SIZE, p.start, p.start + p.len());
        }
        Ok(p)
    }

    fn alloc_inner(count: u64, prot: Prot, guarded: bool) -> Result<Pages, MapError> {
        let total = count.checked_add(guarded as u64).filter(|_| count > 0).ok_or(MapError::BadSize)?;
        // Stacks are not zeroed (256 KiB of stores cost ~1 ms under TCG, and a
        // stack is written before it is read); every other run of pages is.
        let base = if guarded { super::alloc_frames_uninit(total) } else { alloc_frames(total) }
            .ok_or(MapError::OutOfMemory)?;
        let start = base + if guarded { FRAME_SIZE } else { 0 };
        let pages = Pages { start, pages: count, prot: Prot::ReadWrite, guarded, from_allocator: true };
        if guarded {
            // SAFETY: we own the fresh frames.
            unsafe { set_range(base, FRAME_SIZE, Prot::None)? };
        }
        let mut pages = pages;
        pages.protect(prot)?;
        Ok(pages)
    }

    /// Pages at a fixed physical address below 1 MiB (which the frame
    /// allocator never hands out), read-write: for the AP start-up trampoline.
    /// `None` unless the range is usable RAM according to the firmware.
    pub(crate) fn at_fixed(addr: u64, count: u64) -> Option<Pages> {
        let end = addr.checked_add(count.checked_mul(FRAME_SIZE)?)?;
        let ok = addr % FRAME_SIZE == 0
            && addr >= FRAME_SIZE
            && end <= 0x10_0000
            && super::super::boot::boot_info().memory_map().iter().any(|r| {
                r.kind == crate::memmap::MemKind::Usable && r.start <= addr && r.end >= end
            });
        if !ok {
            return None;
        }
        let mut p = Pages { start: addr, pages: count, prot: Prot::ReadWrite, guarded: false, from_allocator: false };
        p.protect(Prot::ReadWrite).ok()?;
        Some(p)
    }

    /// Changes the rights of every page.
    pub fn protect(&mut self, prot: Prot) -> Result<(), MapError> {
        // SAFETY: we own these frames, and `&mut self` proves no slice of them is borrowed.
        unsafe { set_range(self.start, self.len(), prot)? };
        self.prot = prot;
        Ok(())
    }

    /// Changes the rights of the pages covering `offset..offset + len`
    /// (whole pages). Afterwards the run counts as read-only for
    /// [`Pages::as_slice`]/[`Pages::as_mut_slice`]/[`Pages::call`] unless every
    /// page got the same rights: a mixed run is neither writable nor callable
    /// as a whole.
    pub(crate) fn protect_range(&mut self, offset: u64, len: u64, prot: Prot) -> Result<(), MapError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len() && len > 0).ok_or(MapError::BadSize)?;
        let start = crate::memmap::align_down(offset, FRAME_SIZE);
        // SAFETY: we own these frames (inside the run, checked), and `&mut
        // self` proves no slice of them is borrowed.
        unsafe { set_range(self.start + start, align_up(end, FRAME_SIZE) - start, prot)? };
        if start == 0 && align_up(end, FRAME_SIZE) == self.len() {
            self.prot = prot;
        } else if self.prot != prot {
            self.prot = Prot::Read;
        }
        Ok(())
    }

    /// The address of the first byte.
    pub fn addr(&self) -> u64 {
        self.start
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.pages * FRAME_SIZE
    }

    /// Always false: a `Pages` has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Current rights.
    pub fn prot(&self) -> Prot {
        self.prot
    }

    /// The bytes, when readable.
    pub fn as_slice(&self) -> Result<&[u8], MapError> {
        match self.prot {
            Prot::Read | Prot::ReadWrite | Prot::ReadExec => {
                // SAFETY: we own the mapped, readable range for as long as `self` is borrowed.
                Ok(unsafe { core::slice::from_raw_parts(self.start as *const u8, self.len() as usize) })
            }
            _ => Err(MapError::AccessDenied),
        }
    }

    /// Calls the code at `offset` (System V ABI, six integer arguments, one
    /// integer result) when the pages are read-execute.
    ///
    /// This is BareFlow's one door from data to code. The pages can only be
    /// executable if they were written while writable and then flipped (W^X),
    /// and the callers above hal only flip code they verified: a signed
    /// payload after its signature and structure checks, or JIT output that
    /// was generated for fixed shapes and checked against the portable kernel.
    ///
    /// # Safety
    /// The bytes at `offset` must be a function of this ABI and `args` must
    /// meet its contract: whatever it reads and writes through them must be
    /// valid for it, and it must return. Nothing here can check that.
    pub unsafe fn call(&self, offset: u64, args: [u64; 6]) -> Result<u64, MapError> {
        if self.prot != Prot::ReadExec || offset >= self.len() {
            return Err(MapError::AccessDenied);
        }
        let entry = self.start + offset;
        // SAFETY: `entry` lies inside pages we own that are mapped RX (checked
        // above) and stay mapped while `self` is borrowed; what the code does
        // is the caller's obligation (this fn's `# Safety`).
        let f: extern "sysv64" fn(u64, u64, u64, u64, u64, u64) -> u64 =
            unsafe { core::mem::transmute::<u64, extern "sysv64" fn(u64, u64, u64, u64, u64, u64) -> u64>(entry) };
        Ok(f(args[0], args[1], args[2], args[3], args[4], args[5]))
    }

    /// The bytes, when writable.
    pub fn as_mut_slice(&mut self) -> Result<&mut [u8], MapError> {
        match self.prot {
            Prot::ReadWrite => {
                // SAFETY: we own the mapped, writable range, borrowed mutably once.
                Ok(unsafe { core::slice::from_raw_parts_mut(self.start as *mut u8, self.len() as usize) })
            }
            _ => Err(MapError::AccessDenied),
        }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        let base = self.start - if self.guarded { FRAME_SIZE } else { 0 };
        let total = self.pages + self.guarded as u64;
        if self.guarded {
            let mut s = STACKS.lock();
            if let Some(slot) = s.iter_mut().find(|e| e.2 == self.start) {
                *slot = ("", 0, 0, 0);
            }
        }
        // SAFETY: we own the frames; they go back to plain RW+NX before reuse.
        if unsafe { set_range(base, total * FRAME_SIZE, Prot::ReadWrite) }.is_ok() && self.from_allocator {
            free_frames(base, total);
        }
    }
}
