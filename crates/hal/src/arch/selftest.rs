//! Deliberate faults, for the in-QEMU test suite: each provokes one kind of
//! CPU exception so that tests can check the fault path and its report. They
//! never return (the exception handler ends the VM).
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};

/// Writes to kernel text (mapped read-execute): a page fault, write, protection violation.
pub fn write_to_text() -> ! {
    let target = write_to_text as *const () as u64;
    // SAFETY: the store faults (text is RX and CR0.WP is set); the handler
    // exits the VM, so execution never continues past it.
    unsafe { core::arch::asm!("mov byte ptr [{}], 0xcc", in(reg) target, options(nostack)) };
    unreachable!("a write to kernel text did not fault");
}

/// Calls into the heap (mapped read-write, no-execute): a page fault on instruction fetch.
pub fn jump_to_heap() -> ! {
    let code: Box<[u8; 16]> = Box::new([0xc3; 16]); // `ret`
    let target = code.as_ptr() as u64;
    // SAFETY: the call faults on the NX heap page before executing anything;
    // the handler exits the VM.
    unsafe { core::arch::asm!("call {}", in(reg) target, clobber_abi("C")) };
    unreachable!("executing from the heap did not fault");
}

/// Calls into a buffer on this thread's stack (stacks are read-write,
/// no-execute): a page fault on instruction fetch.
pub fn jump_to_stack() -> ! {
    let code = core::hint::black_box([0xc3u8; 16]); // `ret`
    let target = code.as_ptr() as u64;
    // SAFETY: the call faults on the NX stack page before executing anything;
    // the handler exits the VM.
    unsafe { core::arch::asm!("call {}", in(reg) target, clobber_abi("C")) };
    unreachable!("executing from the stack did not fault (buffer at {target:#x})");
}

/// Reads address 0 (the null page is not mapped).
pub fn read_null() -> ! {
    let v: u64;
    // SAFETY: the load faults (page 0 is not present); the handler exits the VM.
    unsafe { core::arch::asm!("mov {}, qword ptr [0]", out(reg) v, options(nostack, readonly)) };
    unreachable!("reading address 0 did not fault (read {v:#x})");
}

/// A large zero-initialised static that nothing writes. Interior mutability
/// keeps it out of `.rodata` (an immutable zero array lands there, where the
/// check below would prove nothing), so the linker places it in `.bss`.
static BSS_PROBE: [AtomicU64; 8192] = [const { AtomicU64::new(0) }; 8192];

/// Why the `.bss` check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BssError {
    /// The probe is not inside `[__bss_start, __bss_end)`: the check would not test `.bss`.
    NotInBss { probe: u64, bss: (u64, u64) },
    /// A word of the probe was not zero at its first read.
    NotZero { index: usize, value: u64 },
}

/// Checks that the `.bss` probe lies in `.bss` and is all zero (read once,
/// atomically, so the compiler cannot assume the answer).
pub fn check_bss_zero() -> Result<(), BssError> {
    let probe = BSS_PROBE.as_ptr() as u64;
    let bss = super::mm::image_layout().bss;
    let end = probe + core::mem::size_of_val(&BSS_PROBE) as u64;
    if probe < bss.0 || end > bss.1 {
        return Err(BssError::NotInBss { probe, bss });
    }
    match BSS_PROBE.iter().map(|w| w.load(Ordering::Relaxed)).enumerate().find(|&(_, v)| v != 0) {
        Some((index, value)) => Err(BssError::NotZero { index, value }),
        None => Ok(()),
    }
}

/// Vector registers the register-holding test fills: 16 registers of 4 words
/// (ymm0-ymm15 with AVX; xmm0-xmm15, the low 2 words, without).
pub type VectorFile = [[u64; 4]; 16];

/// What [`hold_vector_registers`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorHold {
    /// The full 256-bit registers were held (AVX), else only 128 bits.
    pub ymm: bool,
    /// Registers whose value on the way out differed from what was loaded:
    /// bit `i` for register `i`. Zero when the state survived.
    pub clobbered: u16,
}

/// Loads `pattern` into the 16 vector registers, spins with interrupts on
/// for `nanos` (so the tick may preempt this thread and run others, which
/// load their own values), then stores the registers and compares. A thread
/// whose vector state is not saved and restored across preemption sees
/// another's values (or zeros) here. Uses ymm registers when AVX is on.
pub fn hold_vector_registers(pattern: &VectorFile, nanos: u64) -> VectorHold {
    let until = super::cpu::rdtsc().saturating_add(nanos.saturating_mul(super::time::tsc_hz() / 1_000_000) / 1000);
    let mut out: VectorFile = [[0; 4]; 16];
    let ymm = super::cpu::features().avx;
    if ymm {
        // SAFETY: AVX is available and its state enabled in XCR0 (`features().avx`
        // says both); the asm reads 512 bytes from `pattern` and writes 512 to `out`.
        unsafe { hold_ymm(pattern, &mut out, until) };
    } else {
        // SAFETY: SSE2 is the baseline; reads 512 bytes of `pattern`
        // (the low halves used) and writes the low halves of `out`.
        unsafe { hold_xmm(pattern, &mut out, until) };
    }
    let mut clobbered = 0u16;
    for i in 0..16 {
        let n = if ymm { 4 } else { 2 };
        if out[i][..n] != pattern[i][..n] {
            clobbered |= 1 << i;
        }
    }
    VectorHold { ymm, clobbered }
}

macro_rules! vec_hold_asm {
    ($mov:literal, $r:literal, $pat:expr, $out:expr, $until:expr) => {
        core::arch::asm!(
            concat!($mov, " ", $r, "0, [{p}]"),
            concat!($mov, " ", $r, "1, [{p} + 32]"),
            concat!($mov, " ", $r, "2, [{p} + 64]"),
            concat!($mov, " ", $r, "3, [{p} + 96]"),
            concat!($mov, " ", $r, "4, [{p} + 128]"),
            concat!($mov, " ", $r, "5, [{p} + 160]"),
            concat!($mov, " ", $r, "6, [{p} + 192]"),
            concat!($mov, " ", $r, "7, [{p} + 224]"),
            concat!($mov, " ", $r, "8, [{p} + 256]"),
            concat!($mov, " ", $r, "9, [{p} + 288]"),
            concat!($mov, " ", $r, "10, [{p} + 320]"),
            concat!($mov, " ", $r, "11, [{p} + 352]"),
            concat!($mov, " ", $r, "12, [{p} + 384]"),
            concat!($mov, " ", $r, "13, [{p} + 416]"),
            concat!($mov, " ", $r, "14, [{p} + 448]"),
            concat!($mov, " ", $r, "15, [{p} + 480]"),
            "2:",
            "pause",
            "rdtsc",
            "shl rdx, 32",
            "or rax, rdx",
            "cmp rax, {u}",
            "jb 2b",
            concat!($mov, " [{o}], ", $r, "0"),
            concat!($mov, " [{o} + 32], ", $r, "1"),
            concat!($mov, " [{o} + 64], ", $r, "2"),
            concat!($mov, " [{o} + 96], ", $r, "3"),
            concat!($mov, " [{o} + 128], ", $r, "4"),
            concat!($mov, " [{o} + 160], ", $r, "5"),
            concat!($mov, " [{o} + 192], ", $r, "6"),
            concat!($mov, " [{o} + 224], ", $r, "7"),
            concat!($mov, " [{o} + 256], ", $r, "8"),
            concat!($mov, " [{o} + 288], ", $r, "9"),
            concat!($mov, " [{o} + 320], ", $r, "10"),
            concat!($mov, " [{o} + 352], ", $r, "11"),
            concat!($mov, " [{o} + 384], ", $r, "12"),
            concat!($mov, " [{o} + 416], ", $r, "13"),
            concat!($mov, " [{o} + 448], ", $r, "14"),
            concat!($mov, " [{o} + 480], ", $r, "15"),
            p = in(reg) $pat.as_ptr(),
            o = in(reg) $out.as_mut_ptr(),
            u = in(reg) $until,
            // Early outputs, so that no input sits in them.
            out("rax") _, out("rdx") _,
            // Every vector register (they are all caller-saved).
            clobber_abi("C"),
            options(nostack),
        )
    };
}

/// # Safety
/// AVX must be available and enabled (CR4.OSXSAVE, XCR0 bits 1-2).
#[target_feature(enable = "avx")]
unsafe fn hold_ymm(pattern: &VectorFile, out: &mut VectorFile, until: u64) {
    // SAFETY: the caller checked AVX; 16 x 32 bytes read from `pattern` and
    // written to `out`, both 512-byte arrays we borrow; rax/rdx and every
    // vector register (clobber_abi) are declared clobbered.
    unsafe { vec_hold_asm!("vmovdqu", "ymm", pattern, out, until) };
}

/// # Safety
/// None beyond SSE2 (the target's baseline); unsafe only because it is asm.
unsafe fn hold_xmm(pattern: &VectorFile, out: &mut VectorFile, until: u64) {
    // SAFETY: 16 x 16 bytes read from `pattern` and written to `out` at
    // 32-byte strides, inside the 512-byte arrays; clobbers declared.
    unsafe { vec_hold_asm!("movdqu", "xmm", pattern, out, until) };
}

/// One page that threads on any CPU may read and write, for the TLB
/// shootdown test: [`ProbePage::make_read_only`] drops its write right
/// (shooting the old entry down on every CPU), after which a write from
/// any CPU must fault (the exception report ends the VM, exit 102). If a
/// CPU kept a stale writable TLB entry, its write would succeed instead.
pub struct ProbePage {
    pages: spin::Mutex<super::mm::Pages>,
    addr: u64,
}

impl ProbePage {
    /// A fresh zeroed read-write page, kept for the rest of the boot.
    pub fn new() -> Result<&'static ProbePage, super::mm::MapError> {
        let pages = super::mm::Pages::alloc(1, super::mm::Prot::ReadWrite)?;
        let addr = pages.addr();
        Ok(Box::leak(Box::new(ProbePage { pages: spin::Mutex::new(pages), addr })))
    }

    fn word(&self) -> &AtomicU64 {
        // SAFETY: `addr` is the start of a page this probe owns for ever
        // (leaked, never unmapped or freed), 4096-aligned, so a valid,
        // aligned AtomicU64 that is always readable. Stores through it are
        // only valid while it is writable: after `make_read_only` a store
        // faults, by design, and the fault handler ends the VM.
        unsafe { &*(self.addr as *const AtomicU64) }
    }

    /// Reads the page's first word.
    pub fn read(&self) -> u64 {
        self.word().load(Ordering::SeqCst)
    }

    /// Writes the page's first word; faults (ending the VM) once it is read-only.
    pub fn write(&self, v: u64) {
        self.word().store(v, Ordering::SeqCst)
    }

    /// Maps the page read-only, with the TLB shootdown that goes with losing a right.
    pub fn make_read_only(&self) -> Result<(), super::mm::MapError> {
        self.pages.lock().protect(super::mm::Prot::Read)
    }

    /// Its address (for messages).
    pub fn addr(&self) -> u64 {
        self.addr
    }
}
