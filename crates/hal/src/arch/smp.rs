//! Symmetric multiprocessing: finding the CPUs (ACPI MADT), starting them
//! (INIT-SIPI-SIPI through a real-mode trampoline), per-CPU identity, and
//! inter-processor interrupts.
//!
//! Every CPU the MADT lists as enabled is started, one at a time. Each gets
//! its own GDT/TSS, IST stacks and main stack (with guard pages), the shared
//! IDT and page tables, the same SSE/AVX state, and its LAPIC timer; then it
//! calls the function the kernel passed to [`start_aps`] and never returns.
use super::mm::{self, Pages, Prot};
use super::{boot, console, cpu, time, trap};
use crate::acpi::{self, Madt};
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Most CPUs supported.
pub const MAX_CPUS: usize = 64;
/// IPI vector that only wakes a halted CPU (the kernel's scheduler then looks at its inbox).
pub const WAKE_VECTOR: u8 = 0xf0;
/// IPI vector asking a CPU to flush its TLB.
pub const TLB_VECTOR: u8 = 0xf1;

const TRAMPOLINE: u64 = 0x8000;
const TRAMP_DATA: u64 = 0x9000;
const AP_STACK_PAGES: u64 = 64; // 256 KiB

static ONLINE: AtomicUsize = AtomicUsize::new(1);
static APIC_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(u32::MAX) }; MAX_CPUS];
static STARTED: AtomicUsize = AtomicUsize::new(0);
static AP_MAIN: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" {
    static bareflow_ap_tramp_start: u8;
    static bareflow_ap_tramp_end: u8;
}

/// Number of CPUs running.
pub fn online_cpus() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Per-CPU block, addressed through GS: its first word is the CPU's index.
#[repr(C, align(64))]
struct PerCpuBlock {
    index: u64,
}

static PERCPU: [PerCpuBlock; MAX_CPUS] = {
    let mut a = [const { PerCpuBlock { index: 0 } }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        a[i].index = i as u64;
        i += 1;
    }
    a
};

/// Points this CPU's GS base at its per-CPU block. First thing each CPU does.
pub(crate) fn set_cpu_index(index: usize) {
    let addr = &PERCPU[index.min(MAX_CPUS - 1)] as *const PerCpuBlock as u64;
    // SAFETY: writes IA32_GS_BASE; nothing in BareFlow uses GS for anything else.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") 0xc000_0101u32, in("eax") addr as u32, in("edx") (addr >> 32) as u32, options(nostack))
    };
}

/// This CPU's index (0 is the boot CPU).
pub fn cpu_index() -> usize {
    let v: u64;
    // SAFETY: GS points at this CPU's PerCpuBlock from the first Rust instructions on
    // (set_cpu_index), whose first word is the index.
    unsafe { core::arch::asm!("mov {}, qword ptr gs:[0]", out(reg) v, options(nostack, readonly, preserves_flags)) };
    v as usize
}

/// Sends `vector` to CPU `index`.
pub fn send_ipi(index: usize, vector: u8) {
    if let Some(id) = APIC_IDS.get(index).map(|a| a.load(Ordering::Relaxed)).filter(|&id| id != u32::MAX) {
        time::lapic_send_ipi(id, vector as u32);
    }
}

pub(crate) fn read_phys_table(addr: u64) -> Option<&'static [u8]> {
    if !mm::is_mapped_ram(addr, 36) {
        return None;
    }
    // SAFETY: 36 mapped bytes (checked) of firmware memory that nobody writes.
    let head = unsafe { core::slice::from_raw_parts(addr as *const u8, 36) };
    let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as u64;
    if len < 36 || len > 1 << 20 || !mm::is_mapped_ram(addr, len) {
        return None;
    }
    // SAFETY: as above, for the table's stated length (checked mapped).
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) })
}

/// The ACPI table with this signature, if any.
pub(crate) fn acpi_table(sig: &[u8; 4]) -> Option<&'static [u8]> {
    let rsdp = boot::boot_info().rsdp?;
    if !mm::is_mapped_ram(rsdp, 36) {
        return None;
    }
    // SAFETY: the RSDP structure (36 bytes for revision 2, mapped, checked above).
    let r = unsafe { core::slice::from_raw_parts(rsdp as *const u8, 36) };
    let sdt = if r[15] >= 2 && u64::from_le_bytes(r[24..32].try_into().ok()?) != 0 {
        u64::from_le_bytes(r[24..32].try_into().ok()?)
    } else {
        u32::from_le_bytes(r[16..20].try_into().ok()?) as u64
    };
    let sdt = read_phys_table(sdt)?;
    acpi::sdt_entries(sdt).filter_map(read_phys_table).find(|t| t.starts_with(sig))
}

/// The LAPIC ID of CPU `index`.
pub fn apic_id_of(index: usize) -> Option<u32> {
    APIC_IDS.get(index).map(|a| a.load(Ordering::Relaxed)).filter(|&id| id != u32::MAX)
}

/// The MADT, if ACPI tables are there.
pub fn madt() -> Option<Madt<MAX_CPUS>> {
    acpi_table(b"APIC").and_then(|t| Madt::parse(t).ok())
}

fn on_wake(_v: u8) {
    time::end_of_interrupt();
}

/// TLB shootdown requests (a generation number per CPU) and what each CPU has done.
static TLB_GEN: AtomicU64 = AtomicU64::new(0);
static TLB_REQ: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static TLB_DONE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn on_tlb(_v: u8) {
    service_tlb_requests();
    time::end_of_interrupt();
}

/// Flushes this CPU's TLB if another CPU asked for it. Called from the IPI
/// handler and from every spin-wait with interrupts off (spin locks, the
/// shootdown itself), so a CPU that cannot take the IPI still answers.
pub fn service_tlb_requests() {
    let me = cpu_index();
    let req = TLB_REQ[me].load(Ordering::Acquire);
    if req > TLB_DONE[me].load(Ordering::Acquire) {
        // SAFETY: reloading CR3 with its own value flushes this CPU's TLB (non-global entries).
        unsafe { core::arch::asm!("mov {0}, cr3", "mov cr3, {0}", out(reg) _, options(nostack)) };
        TLB_DONE[me].fetch_max(req, Ordering::AcqRel);
    }
}

/// Makes every other CPU flush its TLB, and waits until all did (after a
/// page lost rights).
pub(crate) fn tlb_shootdown() {
    let n = online_cpus();
    if n <= 1 {
        return;
    }
    let me = cpu_index();
    let generation = TLB_GEN.fetch_add(1, Ordering::AcqRel) + 1;
    for i in (0..n).filter(|&i| i != me) {
        TLB_REQ[i].fetch_max(generation, Ordering::AcqRel);
        send_ipi(i, TLB_VECTOR);
    }
    let t0 = time::monotonic_nanos();
    while (0..n).any(|i| i != me && TLB_DONE[i].load(Ordering::Acquire) < generation) {
        service_tlb_requests();
        if time::monotonic_nanos() - t0 > 5_000_000_000 {
            console::write_raw(format_args!("bareflow: TLB shootdown not acknowledged by every CPU\n"));
            break;
        }
        core::hint::spin_loop();
    }
}

/// Starts every other CPU; each runs `main(index)` once it is up. Returns how many CPUs run.
pub fn start_aps(main: fn(usize) -> !) -> usize {
    AP_MAIN.store(main as usize, Ordering::Release);
    trap::set_irq_handler(WAKE_VECTOR, on_wake);
    trap::set_irq_handler(TLB_VECTOR, on_tlb);
    let bsp_id = time::lapic_id();
    APIC_IDS[0].store(bsp_id, Ordering::Relaxed);
    let Some(madt) = madt() else {
        return 1;
    };
    let others = madt.cpus().iter().filter(|c| c.enabled && c.apic_id != bsp_id).count();
    if others == 0 {
        return 1;
    }
    // The trampoline's code page becomes read-execute, its data page stays read-write.
    let code = match Pages::at_fixed(TRAMPOLINE, 1) {
        Some(p) => p,
        None => return 1,
    };
    let mut code = code;
    // Taking the addresses of the linker symbols delimiting the trampoline code.
    let (start, end) = (&raw const bareflow_ap_tramp_start as u64, &raw const bareflow_ap_tramp_end as u64);
    // SAFETY: reading our own text section, [start, end).
    let tramp = unsafe { core::slice::from_raw_parts(start as *const u8, (end - start) as usize) };
    match code.as_mut_slice() {
        Ok(s) => s[..tramp.len()].copy_from_slice(tramp),
        Err(_) => return 1,
    }
    if code.protect(Prot::ReadExec).is_err() {
        return 1;
    }
    let Some(mut data) = Pages::at_fixed(TRAMP_DATA, 1) else {
        return 1;
    };
    let efer_bits: u64 = (1 << 8) | if mm::paging::nx_enabled() { 1 << 11 } else { 0 };
    for c in madt.cpus().iter().filter(|c| c.enabled && c.apic_id != bsp_id) {
        let index = online_cpus();
        if index >= MAX_CPUS {
            break;
        }
        let Ok(stack) = Pages::alloc_stack(AP_STACK_PAGES, "CPU main stack") else {
            break;
        };
        let Ok(d) = data.as_mut_slice() else { break };
        let gdt: [u64; 4] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x00cf_9b00_0000_ffff];
        for (i, g) in gdt.iter().enumerate() {
            d[i * 8..i * 8 + 8].copy_from_slice(&g.to_le_bytes());
        }
        d[0x20..0x22].copy_from_slice(&31u16.to_le_bytes());
        d[0x22..0x26].copy_from_slice(&(TRAMP_DATA as u32).to_le_bytes());
        d[0x30..0x38].copy_from_slice(&cpu::read_cr3().to_le_bytes());
        d[0x38..0x40].copy_from_slice(&efer_bits.to_le_bytes());
        d[0x40..0x48].copy_from_slice(&(stack.addr() + stack.len()).to_le_bytes());
        d[0x48..0x50].copy_from_slice(&(index as u64).to_le_bytes());
        d[0x50..0x58].copy_from_slice(&(ap_entry as extern "C" fn(u64) -> ! as u64).to_le_bytes());
        APIC_IDS[index].store(c.apic_id, Ordering::Release);
        let before = STARTED.load(Ordering::Acquire);
        time::lapic_send_init_sipi(c.apic_id, (TRAMPOLINE >> 12) as u8);
        let t0 = time::monotonic_nanos();
        while STARTED.load(Ordering::Acquire) == before {
            if time::monotonic_nanos() - t0 > 500_000_000 {
                console::write_fmt(format_args!("bareflow: CPU with APIC ID {} did not start\n", c.apic_id));
                APIC_IDS[index].store(u32::MAX, Ordering::Release);
                break;
            }
            core::hint::spin_loop();
        }
        if STARTED.load(Ordering::Acquire) != before {
            core::mem::forget(stack); // the CPU runs on it forever
            ONLINE.store(index + 1, Ordering::Release);
        }
    }
    core::mem::forget(code); // stays RX; an AP may still be executing it
    online_cpus()
}

extern "C" fn ap_entry(index: u64) -> ! {
    set_cpu_index(index as usize);
    let tables = Box::leak(Box::new(cpu::CpuTables::new()));
    let ist: [u64; 3] = core::array::from_fn(|_| {
        Pages::alloc_stack((cpu::IST_STACK_SIZE / 4096) as u64, "AP fault stack")
            .map(|p| {
                let top = p.addr() + p.len();
                core::mem::forget(p);
                top
            })
            .unwrap_or(0)
    });
    cpu::init_ap(tables, ist);
    trap::load_idt();
    time::init_ap();
    STARTED.fetch_add(1, Ordering::AcqRel);
    trap::enable_interrupts();
    let main = AP_MAIN.load(Ordering::Acquire);
    // SAFETY: `start_aps` stored a `fn(usize) -> !` there before starting any AP.
    let main: fn(usize) -> ! = unsafe { core::mem::transmute::<usize, fn(usize) -> !>(main) };
    main(index as usize)
}
