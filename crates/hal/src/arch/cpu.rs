//! CPU set-up: the GDT and TSS (with IST stacks for faults that must run on
//! a known-good stack), feature detection, SSE/AVX state enablement.
//!
//! The descriptor tables are written here rather than with the `x86_64`
//! crate: its IDT wants the unstable `x86-interrupt` ABI, and our own entry
//! stubs (which save every register and the SSE state) need only raw
//! addresses; the GDT is five quadwords.
use core::arch::x86_64::{__cpuid, __cpuid_count};
use spin::Once;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DS: u16 = 0x10;
const TSS_SEL: u16 = 0x18;

/// IST slots (1-based, as the IDT encodes them).
pub(crate) const IST_DOUBLE_FAULT: u8 = 1;
pub(crate) const IST_PAGE_FAULT: u8 = 2;
pub(crate) const IST_NMI_MCE: u8 = 3;

pub(crate) const IST_STACK_SIZE: usize = 32 * 1024;

/// A stack with an unmapped guard page right below it.
#[repr(C, align(4096))]
pub(crate) struct GuardedStack<const N: usize> {
    pub(crate) guard: [u8; 4096],
    pub(crate) stack: [u8; N],
}

#[unsafe(link_section = ".stacks.ist")]
pub(crate) static mut IST_STACKS: [GuardedStack<IST_STACK_SIZE>; 3] =
    [const { GuardedStack { guard: [0; 4096], stack: [0; IST_STACK_SIZE] } }; 3];

#[repr(C, packed(4))]
pub(crate) struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

/// One CPU's GDT and TSS (each CPU needs its own TSS: loading one marks it busy).
#[repr(C, align(16))]
pub(crate) struct CpuTables {
    gdt: [u64; 5],
    tss: Tss,
}

impl CpuTables {
    pub(crate) const fn new() -> Self {
        CpuTables {
            gdt: [
                0,
                0x00af_9b00_0000_ffff, // 0x08 kernel code, 64-bit (accessed bit preset)
                0x00cf_9300_0000_ffff, // 0x10 kernel data (accessed bit preset)
                0,                     // 0x18 TSS (low), filled in by `load`
                0,                     // 0x20 TSS (high)
            ],
            tss: Tss {
                _reserved0: 0,
                rsp: [0; 3],
                _reserved1: 0,
                ist: [0; 7],
                _reserved2: 0,
                _reserved3: 0,
                iomap_base: core::mem::size_of::<Tss>() as u16,
            },
        }
    }
}

static mut BSP_TABLES: CpuTables = CpuTables::new();

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// What the CPU offers (and the OS enabled).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuFeatures {
    /// SSE2 (always, in long mode).
    pub sse2: bool,
    /// SSE3.
    pub sse3: bool,
    /// SSSE3.
    pub ssse3: bool,
    /// SSE4.1.
    pub sse41: bool,
    /// SSE4.2.
    pub sse42: bool,
    /// AVX, with its state enabled in XCR0.
    pub avx: bool,
    /// AVX2 (and AVX state enabled).
    pub avx2: bool,
    /// FMA3 (and AVX state enabled).
    pub fma: bool,
    /// AVX-512 Foundation, with its state enabled in XCR0.
    pub avx512f: bool,
    /// XSAVE, enabled in CR4.
    pub xsave: bool,
    /// RDRAND.
    pub rdrand: bool,
    /// RDSEED.
    pub rdseed: bool,
    /// Invariant TSC.
    pub invariant_tsc: bool,
    /// Running under a hypervisor.
    pub hypervisor: bool,
}

static FEATURES: Once<CpuFeatures> = Once::new();

/// The CPU's features, as enabled at boot.
pub fn features() -> CpuFeatures {
    FEATURES.get().copied().unwrap_or_default()
}

fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Reads CR2 (the faulting address of the last page fault).
pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Reads CR3 (the page-table root).
pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Sets up the boot CPU's GDT, TSS and SSE/AVX state, and detects features.
pub(crate) fn init() {
    // SAFETY: runs once on the boot CPU before interrupts are enabled, so
    // nothing else touches BSP_TABLES; the IST stacks are static.
    unsafe {
        let ist = &raw mut IST_STACKS;
        let tops: [u64; 3] =
            core::array::from_fn(|i| (&raw mut (*ist)[i].stack) as u64 + IST_STACK_SIZE as u64);
        load_tables(&mut *(&raw mut BSP_TABLES), tops);
    }
    FEATURES.call_once(enable_simd);
}

/// Sets up an application processor: its own tables, the same SSE/AVX state as the boot CPU.
pub(crate) fn init_ap(tables: &'static mut CpuTables, ist_tops: [u64; 3]) {
    load_tables(tables, ist_tops);
    enable_simd();
}

/// Fills in the TSS (IST stack tops) and its GDT descriptor, then loads GDT, segments and TR.
fn load_tables(t: &'static mut CpuTables, ist_tops: [u64; 3]) {
    let mut ist = t.tss.ist;
    ist[..3].copy_from_slice(&ist_tops);
    t.tss.ist = ist;
    let base = (&raw const t.tss) as u64;
    let limit = (core::mem::size_of::<Tss>() - 1) as u64;
    t.gdt[3] = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89u64 << 40) // present, 64-bit available TSS
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    t.gdt[4] = base >> 32;
    let ptr = DescriptorPointer { limit: (core::mem::size_of::<[u64; 5]>() - 1) as u16, base: t.gdt.as_ptr() as u64 };
    // SAFETY: the GDT is 'static and describes the same flat code/data
    // segments as before plus this CPU's TSS; reloading CS via a far return
    // and the data segments keeps execution where it is.
    unsafe {
        core::arch::asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "mov ss, {ds:x}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = in(reg) KERNEL_CS as u64,
            ds = in(reg) KERNEL_DS as u64,
            tss = in(reg) TSS_SEL as u64,
            tmp = lateout(reg) _,
        );
    }
}

fn enable_simd() -> CpuFeatures {
    let l1 = __cpuid(1);
    let max = __cpuid(0).eax;
    let l7 = if max >= 7 { __cpuid_count(7, 0) } else { __cpuid(0) };
    let ext = __cpuid(0x8000_0000).eax;
    let inv_tsc = ext >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0;
    let mut f = CpuFeatures {
        sse2: l1.edx & (1 << 26) != 0,
        sse3: l1.ecx & 1 != 0,
        ssse3: l1.ecx & (1 << 9) != 0,
        sse41: l1.ecx & (1 << 19) != 0,
        sse42: l1.ecx & (1 << 20) != 0,
        xsave: l1.ecx & (1 << 26) != 0,
        rdrand: l1.ecx & (1 << 30) != 0,
        rdseed: max >= 7 && l7.ebx & (1 << 18) != 0,
        invariant_tsc: inv_tsc,
        hypervisor: l1.ecx & (1 << 31) != 0,
        ..CpuFeatures::default()
    };
    if f.xsave {
        // CR4.OSXSAVE first, then XCR0 (FACTS.md: this order works under every VMM here).
        // SAFETY: the CPU has XSAVE (CPUID.1:ECX.26); setting OSXSAVE enables xgetbv/xsetbv.
        unsafe { core::arch::asm!("mov cr4, {}", in(reg) read_cr4() | (1 << 18), options(nostack)) };
        let supported = __cpuid_count(0xd, 0);
        let sup = (supported.edx as u64) << 32 | supported.eax as u64;
        let mut xcr0: u64 = 0b11; // x87 + SSE
        let cpu_avx = l1.ecx & (1 << 28) != 0;
        if cpu_avx && sup & 0b100 != 0 {
            xcr0 |= 0b100;
        }
        let cpu_avx512 = max >= 7 && l7.ebx & (1 << 16) != 0;
        if cpu_avx512 && sup & 0xe0 == 0xe0 && xcr0 & 0b100 != 0 {
            xcr0 |= 0xe0; // opmask, ZMM_Hi256, Hi16_ZMM
        }
        // SAFETY: OSXSAVE is on and we only set bits the CPU reports in CPUID.(0xd,0).
        unsafe {
            core::arch::asm!("xsetbv", in("ecx") 0u32, in("eax") xcr0 as u32, in("edx") (xcr0 >> 32) as u32, options(nomem, nostack))
        };
        let (lo, hi): (u32, u32);
        // SAFETY: OSXSAVE is on, so xgetbv(0) is valid.
        unsafe { core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
        let xcr0 = (hi as u64) << 32 | lo as u64;
        let avx_os = xcr0 & 0b110 == 0b110;
        f.avx = cpu_avx && avx_os;
        f.avx2 = f.avx && l7.ebx & (1 << 5) != 0;
        f.fma = f.avx && l1.ecx & (1 << 12) != 0;
        f.avx512f = cpu_avx512 && avx_os && xcr0 & 0xe0 == 0xe0;
        // The trap entry reserves 4096 - 64 bytes for the save area.
        let area = __cpuid_count(0xd, 0).ebx;
        if area <= 4096 - 64 {
            super::trap::XSAVE_ON.store(1, core::sync::atomic::Ordering::Relaxed);
        }
    }
    f
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// A hardware random 64-bit value (RDSEED, else RDRAND), if the CPU has one.
pub fn hardware_random() -> Option<u64> {
    let f = features();
    for _ in 0..32 {
        let (ok, v): (u8, u64);
        if f.rdseed {
            // SAFETY: the CPU has RDSEED; it only writes the output register and CF.
            unsafe { core::arch::asm!("rdseed {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack)) };
        } else if f.rdrand {
            // SAFETY: the CPU has RDRAND; it only writes the output register and CF.
            unsafe { core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack)) };
        } else {
            return None;
        }
        if ok != 0 {
            return Some(v);
        }
    }
    None
}

/// SSE rounding modes (MXCSR.RC, bits 13-14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Round to nearest, ties to even (the default).
    Nearest = 0,
    /// Toward negative infinity.
    Down = 1,
    /// Toward positive infinity.
    Up = 2,
    /// Toward zero (truncate).
    TowardZero = 3,
}

/// The running thread's MXCSR (SSE control and status).
pub fn mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stmxcsr stores 4 bytes to `v`, a local we own.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags)) };
    v
}

/// The running thread's SSE rounding mode.
pub fn rounding() -> Rounding {
    match (mxcsr() >> 13) & 3 {
        0 => Rounding::Nearest,
        1 => Rounding::Down,
        2 => Rounding::Up,
        _ => Rounding::TowardZero,
    }
}

/// Sets the running thread's SSE rounding mode; nothing else in MXCSR changes
/// (so no exception gets unmasked and no reserved bit is set). It is part of
/// the thread's state: context switches keep it per thread.
///
/// Rust code assumes round-to-nearest when it folds constants; operations on
/// values only known at run time use this mode.
pub fn set_rounding(r: Rounding) {
    let v = (mxcsr() & !(3 << 13)) | ((r as u32) << 13);
    // SAFETY: `v` is the current MXCSR with only the rounding-control field
    // changed: no reserved bit is set (that would be #GP) and the exception
    // masks are as they were. ldmxcsr reads 4 bytes from a local.
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly, preserves_flags)) };
}
