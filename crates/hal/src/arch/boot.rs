//! From the loader's hand-off to the app's `main`.
//!
//! `boot.s` enters long mode and calls [`bareflow_hal_entry`], which copies
//! what the loader told it (PVH `hvm_start_info` or Multiboot2 information)
//! into a [`BootInfo`] before any memory is reused, brings the machine up
//! (console, CPU tables, SSE/AVX, frames, page tables with W^X, heap, clock),
//! and calls the app's entry, `bareflow_app_main`, which `bareflow_sys::main!`
//! defines.
use super::{console, cpu, exit, mm, time, trap};
use crate::memmap::{MemKind, MemRegion};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const MAX_REGIONS: usize = 64;
const MAX_MODULES: usize = 8;
const MAX_CMDLINE: usize = 4096;

/// Which boot protocol brought us here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootProtocol {
    /// Xen PVH direct boot (QEMU `-kernel`, Firecracker, cloud-hypervisor).
    Pvh,
    /// Multiboot2 (GRUB).
    Multiboot2,
}

/// A module (a file the loader placed in memory, e.g. the file archive).
#[derive(Clone, Copy, Debug)]
pub struct Module {
    /// Physical start.
    pub start: u64,
    /// Physical end (exclusive).
    pub end: u64,
}

/// What the loader told us, copied out of its memory.
#[derive(Debug)]
pub struct BootInfo {
    /// How we were booted.
    pub protocol: BootProtocol,
    regions: [MemRegion; MAX_REGIONS],
    n_regions: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    modules: [Module; MAX_MODULES],
    n_modules: usize,
    /// Physical address of the ACPI RSDP, if known.
    pub rsdp: Option<u64>,
    /// TSC at the first instruction.
    pub tsc_at_entry: u64,
}

impl BootInfo {
    /// The firmware memory map.
    pub fn memory_map(&self) -> &[MemRegion] {
        &self.regions[..self.n_regions]
    }

    /// The kernel command line (lossy UTF-8: invalid bytes become U+FFFD upstream of here).
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// The loader's modules.
    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.n_modules]
    }

    /// The bytes of module `i`. The frames under modules are never handed
    /// out, and memory is identity-mapped, so the slice lives forever.
    pub fn module_bytes(&self, i: usize) -> Option<&'static [u8]> {
        let m = self.modules().get(i)?;
        let len = usize::try_from(m.end.checked_sub(m.start)?).ok()?;
        if m.start == 0 || !mm::is_mapped_ram(m.start, len as u64) {
            return None;
        }
        // SAFETY: `is_mapped_ram` checked that [start, start+len) is mapped
        // (identity, readable); the range was reserved from the frame allocator
        // at boot and nothing writes it; so it is valid for reads for 'static.
        Some(unsafe { core::slice::from_raw_parts(m.start as *const u8, len) })
    }
}

impl BootInfo {
    /// Nothing known yet: the value the static starts with.
    const EMPTY: BootInfo = BootInfo {
        protocol: BootProtocol::Pvh,
        regions: [MemRegion { start: 0, end: 0, kind: MemKind::Reserved }; MAX_REGIONS],
        n_regions: 0,
        cmdline: [0; MAX_CMDLINE],
        cmdline_len: 0,
        modules: [Module { start: 0, end: 0 }; MAX_MODULES],
        n_modules: 0,
        rsdp: None,
        tsc_at_entry: 0,
    };
}

/// The boot information, filled in place by the boot CPU and read-only once
/// [`BOOT_INFO_SET`] is true. In place because building the 7 KiB value on
/// the stack and moving it into a `Once` took ~0.7 ms of boot under TCG (a
/// few huge straight-line blocks of stores that QEMU translates slowly).
struct BootInfoCell(UnsafeCell<BootInfo>);

// SAFETY: the cell is written only by `bareflow_hal_entry` on the boot CPU,
// before any other CPU starts, before interrupts are on and before
// `BOOT_INFO_SET` is stored (Release); afterwards it is only read, and
// readers check `BOOT_INFO_SET` (Acquire) first.
unsafe impl Sync for BootInfoCell {}

static BOOT_INFO: BootInfoCell = BootInfoCell(UnsafeCell::new(BootInfo::EMPTY));
static BOOT_INFO_SET: AtomicBool = AtomicBool::new(false);
static PROBE: AtomicBool = AtomicBool::new(false);

/// Whether the boot information is set yet (it is before any code above hal runs).
pub(crate) fn boot_info_ready() -> bool {
    BOOT_INFO_SET.load(Ordering::Acquire)
}

/// The boot information (set once, before the app runs).
pub fn boot_info() -> &'static BootInfo {
    assert!(boot_info_ready(), "boot info is set before any code above hal runs");
    // SAFETY: set, so never written again (see `BootInfoCell`).
    unsafe { &*BOOT_INFO.0.get() }
}

unsafe extern "C" {
    static bareflow_boot_tsc: u64;
}

unsafe extern "Rust" {
    /// Defined by `bareflow_sys::main!` in the app crate.
    fn bareflow_app_main() -> i32;
}

/// Reads a `T` from a physical address (identity-mapped below 4 GiB at this point).
///
/// # Safety
/// `addr` must point to readable memory holding a valid `T`.
unsafe fn read_phys<T: Copy>(addr: u64) -> T {
    // SAFETY: the caller guarantees the address is readable; unaligned read
    // because loaders do not promise alignment.
    unsafe { core::ptr::read_unaligned(addr as *const T) }
}

fn parse_pvh(info: u64, bi: &mut BootInfo) {
    // hvm_start_info: magic u32 @0 ("xEn3"), version @4, flags @8,
    // nr_modules @12, modlist_paddr @16, cmdline_paddr @24, rsdp_paddr @32,
    // memmap_paddr @40, memmap_entries @48.
    // SAFETY: PVH passes a valid hvm_start_info at `info`, in low RAM,
    // identity-mapped by boot.s; the magic is checked before anything else.
    let magic: u32 = unsafe { read_phys(info) };
    if magic != 0x336e_c578 {
        console::write_raw(format_args!("bareflow: bad PVH start info magic {magic:#x}\n"));
        exit::exit(bareflow_abi::exit::FAULT);
    }
    // SAFETY: fields of the checked hvm_start_info (see above).
    let (nr_modules, modlist, cmdline, rsdp, memmap, n_mem, version) = unsafe {
        (
            read_phys::<u32>(info + 12),
            read_phys::<u64>(info + 16),
            read_phys::<u64>(info + 24),
            read_phys::<u64>(info + 32),
            read_phys::<u64>(info + 40),
            read_phys::<u32>(info + 48),
            read_phys::<u32>(info + 4),
        )
    };
    if cmdline != 0 {
        // SAFETY: the loader's NUL-terminated command line.
        unsafe { copy_cstr(cmdline, bi) };
    }
    if rsdp != 0 {
        bi.rsdp = Some(rsdp);
    }
    if version >= 1 && memmap != 0 {
        for i in 0..n_mem as u64 {
            // hvm_memmap_table_entry: addr u64, size u64, type u32, reserved u32
            let e = memmap + i * 24;
            // SAFETY: entry `i` of the loader's memory map, `n_mem` entries long.
            let (addr, size, ty) =
                unsafe { (read_phys::<u64>(e), read_phys::<u64>(e + 8), read_phys::<u32>(e + 16)) };
            push_region(bi, addr, size, ty);
        }
    }
    for i in 0..nr_modules.min(MAX_MODULES as u32) as u64 {
        // hvm_modlist_entry: paddr u64, size u64, cmdline_paddr u64, reserved u64
        // SAFETY: entry `i` of the loader's module list.
        let (paddr, size) = unsafe { (read_phys::<u64>(modlist + i * 32), read_phys::<u64>(modlist + i * 32 + 8)) };
        if size > 0 {
            bi.modules[bi.n_modules] = Module { start: paddr, end: paddr + size };
            bi.n_modules += 1;
        }
    }
}

fn parse_multiboot2(info: u64, bi: &mut BootInfo) {
    // SAFETY: GRUB passes the 8-aligned information structure at `info`:
    // total_size u32, reserved u32, then tags; we stay within total_size.
    let total: u32 = unsafe { read_phys(info) };
    let end = info + total as u64;
    let mut tag = info + 8;
    while tag + 8 <= end {
        // SAFETY: a tag header inside the structure.
        let (ty, size) = unsafe { (read_phys::<u32>(tag), read_phys::<u32>(tag + 4)) };
        if ty == 0 || size < 8 || tag + size as u64 > end {
            break;
        }
        match ty {
            // command line: NUL-terminated string
            // SAFETY: the string lies inside this tag.
            1 => unsafe { copy_cstr(tag + 8, bi) },
            // module: mod_start u32, mod_end u32, string
            3 if bi.n_modules < MAX_MODULES => {
                // SAFETY: fields of this tag.
                let (s, e) = unsafe { (read_phys::<u32>(tag + 8), read_phys::<u32>(tag + 12)) };
                if e > s {
                    bi.modules[bi.n_modules] = Module { start: s as u64, end: e as u64 };
                    bi.n_modules += 1;
                }
            }
            // memory map: entry_size u32, entry_version u32, entries
            6 => {
                // SAFETY: field of this tag.
                let esz = unsafe { read_phys::<u32>(tag + 8) } as u64;
                let mut e = tag + 16;
                while esz >= 24 && e + esz <= tag + size as u64 {
                    // SAFETY: one entry inside this tag: base u64, len u64, type u32.
                    let (a, l, t) =
                        unsafe { (read_phys::<u64>(e), read_phys::<u64>(e + 8), read_phys::<u32>(e + 16)) };
                    push_region(bi, a, l, t);
                    e += esz;
                }
            }
            _ => {}
        }
        tag += (size as u64 + 7) & !7;
    }
    // GRUB hands a copy of the RSDP in a tag; the original is in the BIOS area.
    bi.rsdp = find_rsdp_in_bios();
}

fn find_rsdp_in_bios() -> Option<u64> {
    let mut a = 0xe0000u64;
    while a < 0x100000 {
        // SAFETY: the BIOS read-only area 0xe0000..0xfffff is identity-mapped RAM/ROM.
        let sig: [u8; 8] = unsafe { read_phys(a) };
        if &sig == b"RSD PTR " {
            return Some(a);
        }
        a += 16;
    }
    None
}

/// # Safety
/// `addr` must be a readable NUL-terminated string.
unsafe fn copy_cstr(addr: u64, bi: &mut BootInfo) {
    let mut n = 0;
    while n < MAX_CMDLINE {
        // SAFETY: the caller promises a readable string up to its NUL.
        let b: u8 = unsafe { read_phys(addr + n as u64) };
        if b == 0 {
            break;
        }
        bi.cmdline[n] = b;
        n += 1;
    }
    // Keep valid UTF-8 only: cut at the first invalid sequence.
    bi.cmdline_len = match core::str::from_utf8(&bi.cmdline[..n]) {
        Ok(_) => n,
        Err(e) => e.valid_up_to(),
    };
}

fn push_region(bi: &mut BootInfo, addr: u64, size: u64, ty: u32) {
    if size == 0 || ty == 0 || bi.n_regions == MAX_REGIONS {
        return; // microvm ends its map with an all-zero entry
    }
    let kind = match ty {
        1 => MemKind::Usable,
        3 => MemKind::AcpiReclaimable,
        4 => MemKind::AcpiNvs,
        5 => MemKind::Bad,
        _ => MemKind::Reserved,
    };
    bi.regions[bi.n_regions] = MemRegion { start: addr, end: addr.saturating_add(size), kind };
    bi.n_regions += 1;
}

/// True when the command line asks for option `key` (before the `--` that starts the app's arguments).
fn cmdline_flag(cmdline: &str, key: &str) -> bool {
    cmdline.split(' ').take_while(|t| *t != "--").any(|t| t == key)
}

/// Whether this boot is an accelerator probe (`bareflow.probe=1`).
pub fn is_probe() -> bool {
    PROBE.load(Ordering::Relaxed)
}

/// TSC readings at the hardware layer's start-up steps (see [`boot_stages`]).
static MARKS: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

fn mark(i: usize) {
    MARKS[i].store(super::cpu::rdtsc(), Ordering::Relaxed);
}

/// The hardware layer's start-up steps and the nanoseconds since entry at the end of each.
pub fn boot_stages() -> [(&'static str, u64); 7] {
    let names = ["long mode", "boot info", "calibration start", "cpu", "traps", "memory", "time"];
    core::array::from_fn(|i| (names[i], time::entry_to_nanos(MARKS[i].load(Ordering::Relaxed))))
}

/// Records that the kernel hands over to the app's `main` now and returns
/// the nanoseconds since the first instruction. Never inlined, under a fixed
/// symbol, so that tools which count the code QEMU translates before `main`
/// (`bench boot`) find the moment in a trace.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn bareflow_main_reached() -> u64 {
    time::since_entry_nanos()
}

/// The Rust entry, called by `boot.s` on the boot stack with 64-bit paging on.
#[unsafe(no_mangle)]
extern "C" fn bareflow_hal_entry(protocol: u32, info: u64) -> ! {
    super::smp::set_cpu_index(0);
    mark(0);
    console::init();
    if BOOT_INFO_SET.load(Ordering::Relaxed) {
        console::write_raw(format_args!("bareflow: the boot entry ran twice\n"));
        exit::exit(bareflow_abi::exit::FAULT);
    }
    {
        // SAFETY: the boot CPU runs alone with interrupts off and nothing has
        // read the cell (`BOOT_INFO_SET` is false): this is its only reference.
        let bi = unsafe { &mut *BOOT_INFO.0.get() };
        // SAFETY: written once by boot.s before this call; read-only afterwards.
        bi.tsc_at_entry = unsafe { core::ptr::read_volatile(&raw const bareflow_boot_tsc) };
        match protocol {
            1 => parse_pvh(info, bi),
            2 => {
                bi.protocol = BootProtocol::Multiboot2;
                parse_multiboot2(info, bi)
            }
            _ => {
                console::write_raw(format_args!("bareflow: unknown boot loader (no PVH/Multiboot2 hand-off)\n"));
                exit::exit(bareflow_abi::exit::FAULT);
            }
        }
    }
    BOOT_INFO_SET.store(true, Ordering::Release);
    let bi = boot_info();
    if cmdline_flag(bi.cmdline(), "bareflow.probe=1") {
        PROBE.store(true, Ordering::Relaxed);
        // Float math through SSE registers, which a broken accelerator cannot run at CPL0.
        let x = core::hint::black_box(1.5f64) * core::hint::black_box(2.0f64);
        console::write_fmt(format_args!("bareflow: probe ok ({x})\n"));
        exit::exit(if x == 3.0 { 0 } else { 1 });
    }

    mark(1);
    time::start_calibration();
    mark(2);
    cpu::init();
    mark(3);
    trap::init();
    mark(4);
    mm::init(bi);
    mark(5);
    time::init();
    mark(6);
    trap::enable_interrupts();

    // SAFETY: `bareflow_app_main` is defined by the app crate's `main!` with
    // exactly this signature; the machine is fully set up for Rust code.
    let code = unsafe { bareflow_app_main() };
    exit::exit(code)
}
