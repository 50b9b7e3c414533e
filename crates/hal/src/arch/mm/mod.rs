//! Physical memory: frames, the kernel's page tables (identity-mapped, W^X),
//! owned page ranges with guard pages, and the heap.
//!
//! Layout after [`init`]: all physical memory up to the highest RAM address
//! (at least 4 GiB, so that MMIO below 4 GiB is reachable) is identity-mapped
//! RW+NX with 2 MiB pages, device memory at 0xfe00_0000.. uncached. The
//! image's own 2 MiB pages are split into 4 KiB pages: the null page is not
//! mapped, text is RX, rodata R+NX, data/bss RW+NX, and every stack's guard
//! page is not mapped. CR0.WP is on, so the kernel itself cannot write to
//! read-only pages.
mod heap;
pub mod paging;

use super::boot::BootInfo;
use super::console;
use crate::memmap::{BumpFrames, FreeRanges, MemKind, FRAME_SIZE};
use core::sync::atomic::{AtomicU64, Ordering};
pub use paging::{MapError, Pages, Prot};
use spin::Mutex;

unsafe extern "C" {
    static __image_start: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __bss_start: u8;
    static __bss_end: u8;
    static __image_end: u8;
    static bareflow_boot_stack_guard: u8;
    static bareflow_boot_stack_bottom: u8;
    static bareflow_boot_stack_top: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// Addresses of the image's sections, from the linker script.
#[derive(Clone, Copy, Debug)]
pub struct ImageLayout {
    pub image_start: u64,
    pub text: (u64, u64),
    pub rodata: (u64, u64),
    pub data: (u64, u64),
    /// Zero-initialised data, inside `data`.
    pub bss: (u64, u64),
    pub image_end: u64,
}

/// Where the image's sections are.
pub fn image_layout() -> ImageLayout {
    // SAFETY: linker-script symbols; only their addresses are taken.
    unsafe {
        ImageLayout {
            image_start: sym(&__image_start),
            text: (sym(&__text_start), sym(&__text_end)),
            rodata: (sym(&__rodata_start), sym(&__rodata_end)),
            data: (sym(&__data_start), sym(&__image_end)),
            bss: (sym(&__bss_start), sym(&__bss_end)),
            image_end: sym(&__image_end),
        }
    }
}

pub(crate) struct Frames {
    bump: BumpFrames<64>,
    /// Head of the list of frames given back (each holds the next address).
    free_head: u64,
    free_count: u64,
}

pub(crate) static FRAMES: Mutex<Option<Frames>> = Mutex::new(None);
static IDENTITY_LIMIT: AtomicU64 = AtomicU64::new(0);
static TOTAL_FREE_AT_BOOT: AtomicU64 = AtomicU64::new(0);

impl Frames {
    fn alloc(&mut self, count: u64) -> Option<u64> {
        if count == 1 && self.free_head != 0 {
            let f = self.free_head;
            // SAFETY: frames on the free list are identity-mapped RW and hold
            // the next list address in their first word (written by `free`).
            self.free_head = unsafe { core::ptr::read_volatile(f as *const u64) };
            self.free_count -= 1;
            return Some(f);
        }
        self.bump.alloc(count)
    }

    fn free(&mut self, frame: u64) {
        // SAFETY: the caller gives back a frame it owned, identity-mapped RW;
        // its first word becomes the list link.
        unsafe { core::ptr::write_volatile(frame as *mut u64, self.free_head) };
        self.free_head = frame;
        self.free_count += 1;
    }
}

/// `count` physically contiguous, zeroed frames.
pub(crate) fn alloc_frames(count: u64) -> Option<u64> {
    let f = alloc_frames_uninit(count)?;
    // SAFETY: fresh frames, identity-mapped RW+NX, owned by nobody else.
    unsafe { core::ptr::write_bytes(f as *mut u8, 0, (count * FRAME_SIZE) as usize) };
    Some(f)
}

/// `count` physically contiguous frames with whatever they held (for the
/// heap, which does not need zeroed memory; zeroing 1 MiB costs ~1 ms under TCG).
pub(crate) fn alloc_frames_uninit(count: u64) -> Option<u64> {
    FRAMES.lock().as_mut()?.alloc(count)
}

/// Gives frames back.
pub(crate) fn free_frames(start: u64, count: u64) {
    if let Some(f) = FRAMES.lock().as_mut() {
        for i in 0..count {
            f.free(start + i * FRAME_SIZE);
        }
    }
}

/// Memory statistics.
#[derive(Clone, Copy, Debug)]
pub struct MemStats {
    /// Bytes of RAM the frame allocator started with.
    pub total: u64,
    /// Bytes still free.
    pub free: u64,
    /// Bytes the heap has claimed from frames.
    pub heap_claimed: u64,
}

/// Current memory statistics.
pub fn stats() -> MemStats {
    let free = FRAMES.lock().as_ref().map(|f| f.bump.free_bytes() + f.free_count * FRAME_SIZE).unwrap_or(0);
    MemStats { total: TOTAL_FREE_AT_BOOT.load(Ordering::Relaxed), free, heap_claimed: heap::claimed() }
}

/// Names of stacks and their guard pages, for fault reports.
fn known_stacks() -> [(&'static str, u64, u64, u64); 4] {
    // SAFETY: addresses of static stacks (linker symbols and a static array); no access.
    unsafe {
        let ist = &raw const super::cpu::IST_STACKS;
        let ist_guard = |i: usize| (&raw const (*ist)[i].guard) as u64;
        let ist_lo = |i: usize| (&raw const (*ist)[i].stack) as u64;
        let n = super::cpu::IST_STACK_SIZE as u64;
        [
            ("boot stack (the app's main thread)", sym(&bareflow_boot_stack_guard), sym(&bareflow_boot_stack_bottom), sym(&bareflow_boot_stack_top)),
            ("double-fault stack", ist_guard(0), ist_lo(0), ist_lo(0) + n),
            ("page-fault stack", ist_guard(1), ist_lo(1), ist_lo(1) + n),
            ("NMI/machine-check stack", ist_guard(2), ist_lo(2), ist_lo(2) + n),
        ]
    }
}

/// If `addr` is in a stack's guard page, that stack's name.
pub fn guard_page_owner(addr: u64) -> Option<&'static str> {
    known_stacks().iter().find(|s| addr >= s.1 && addr < s.1 + FRAME_SIZE).map(|s| s.0)
        .or_else(|| paging::guard_owner(addr))
}

/// True when `[addr, addr+len)` lies inside one mapped stack.
pub fn is_stack_address(addr: u64, len: u64) -> bool {
    let end = addr.saturating_add(len);
    known_stacks().iter().any(|s| addr >= s.2 && end <= s.3) || paging::in_owned_stack(addr, end)
}

/// True when `[addr, addr+len)` is RAM inside the identity map and not the null page.
pub(crate) fn is_mapped_ram(addr: u64, len: u64) -> bool {
    addr >= FRAME_SIZE && addr.saturating_add(len) <= IDENTITY_LIMIT.load(Ordering::Relaxed)
}

pub(crate) fn init(bi: &BootInfo) {
    let layout = image_layout();
    let mut reserved = [(0u64, 0u64); 10];
    reserved[0] = (layout.image_start, layout.image_end);
    for (i, m) in bi.modules().iter().enumerate().take(8) {
        reserved[1 + i] = (m.start, m.end);
    }
    let ranges = FreeRanges::<64>::carve(bi.memory_map(), 0x10_0000, &reserved);
    if ranges.dropped > 0 {
        console::write_fmt(format_args!("bareflow: memory map too fragmented, {} ranges ignored\n", ranges.dropped));
    }
    TOTAL_FREE_AT_BOOT.store(ranges.total(), Ordering::Relaxed);
    // Map RAM and ACPI memory, not far-away reserved holes (q35 reports one at 1 TiB).
    let top = bi.memory_map().iter().filter(|r| r.kind != MemKind::Reserved).map(|r| r.end).max().unwrap_or(0);
    let limit = crate::memmap::align_up(top.max(1 << 32), 1 << 21);
    IDENTITY_LIMIT.store(limit, Ordering::Relaxed);
    *FRAMES.lock() = Some(Frames { bump: BumpFrames::new(ranges), free_head: 0, free_count: 0 });

    let guards: [u64; 4] = core::array::from_fn(|i| known_stacks()[i].1);
    if let Err(e) = paging::build_kernel_tables(limit, &layout, &guards) {
        console::write_raw(format_args!("bareflow: cannot build page tables: {e:?}\n"));
        super::exit::exit(bareflow_abi::exit::FAULT);
    }
}
