//! Interrupts and exceptions: the IDT, the common entry path, fault reports.
//!
//! Every vector has a stub (`trap_stubs.s`, generated: one per vector, pushing
//! a zero error code where the CPU pushes none, then the vector number) that
//! jumps to `bareflow_trap_common`. That saves every general register, then
//! the x87/SSE state with `fxsave64` on a 64-byte-aligned area of the stack,
//! and calls [`bareflow_trap`] with a [`TrapFrame`]. The x87/SSE/AVX state is
//! saved with `xsave64` (every component enabled in XCR0) when the CPU has
//! XSAVE, else with `fxsave64`, on a 64-byte-aligned area of the interrupted
//! stack, so a handler that switches threads (preemption) preserves all of it.
//!
//! A CPU exception in the kernel is fatal: the report (vector, name, error
//! code decoded, registers, CR2/CR3, the stack it hit when a guard page was
//! touched, a frame-pointer backtrace) goes to the serial console and the VM
//! exits with `bareflow_abi::exit::FAULT`. The host runner symbolizes the
//! backtrace lines (`  #N 0x...`) with the image's symbol table.
use super::cpu::{self, IST_DOUBLE_FAULT, IST_NMI_MCE, IST_PAGE_FAULT, KERNEL_CS};
use super::{console, exit};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The registers saved on entry, in stack order.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

core::arch::global_asm!(
    ".section .text.trap_common, \"ax\"",
    ".global bareflow_trap_common",
    "bareflow_trap_common:",
    "push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi", "push rbp",
    "push r8", "push r9", "push r10", "push r11", "push r12", "push r13", "push r14", "push r15",
    "mov rdi, rsp",
    "mov rbx, rsp",
    "sub rsp, 4096",  // room for the largest XSAVE area we accept (see cpu.rs)
    "and rsp, -64",
    "cmp byte ptr [rip + {xsave_on}], 0",
    "je 1f",
    // XSAVE header must be zero before a standard-form xsave (xrstor checks it).
    "xor eax, eax",
    "mov [rsp + 512], rax", "mov [rsp + 520], rax", "mov [rsp + 528], rax", "mov [rsp + 536], rax",
    "mov [rsp + 544], rax", "mov [rsp + 552], rax", "mov [rsp + 560], rax", "mov [rsp + 568], rax",
    "mov eax, -1",
    "mov edx, -1",
    "xsave64 [rsp]",
    "jmp 2f",
    "1:",
    "fxsave64 [rsp]",
    "2:",
    "call bareflow_trap",
    "cmp byte ptr [rip + {xsave_on}], 0",
    "je 3f",
    "mov eax, -1",
    "mov edx, -1",
    "xrstor64 [rsp]",
    "jmp 4f",
    "3:",
    "fxrstor64 [rsp]",
    "4:",
    "mov rsp, rbx",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10", "pop r9", "pop r8",
    "pop rbp", "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rbx", "pop rax",
    "add rsp, 16",
    "iretq",
    xsave_on = sym XSAVE_ON,
);

/// 1 when the trap entry saves the full XSAVE state (AVX and up), 0 for fxsave.
#[unsafe(no_mangle)]
pub(crate) static XSAVE_ON: AtomicU8 = AtomicU8::new(0);

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct IdtEntry {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    _zero: u32,
}

static mut IDT: [IdtEntry; 256] =
    [IdtEntry { offset_low: 0, selector: 0, ist: 0, type_attr: 0, offset_mid: 0, offset_high: 0, _zero: 0 }; 256];

unsafe extern "C" {
    static bareflow_isr_table: [u64; 256];
}

/// An interrupt handler for a device or timer vector (32..=255).
pub type IrqHandler = fn(vector: u8);

const NO_HANDLER: AtomicUsize = AtomicUsize::new(0);
static HANDLERS: [AtomicUsize; 256] = [NO_HANDLER; 256];

/// Installs `handler` for `vector` (32..=255). Returns false for exception vectors.
pub fn set_irq_handler(vector: u8, handler: IrqHandler) -> bool {
    if vector < 32 {
        return false;
    }
    HANDLERS[vector as usize].store(handler as usize, Ordering::Release);
    true
}

/// Fills and loads the IDT.
pub(crate) fn init() {
    // SAFETY: runs once on the boot CPU with interrupts off; the stub table is
    // static and generated with one valid entry address per vector.
    unsafe {
        let idt = &raw mut IDT;
        for v in 0..256 {
            let addr = bareflow_isr_table[v];
            let ist = match v {
                2 | 18 => IST_NMI_MCE,
                8 => IST_DOUBLE_FAULT,
                14 => IST_PAGE_FAULT,
                _ => 0,
            };
            (*idt)[v] = IdtEntry {
                offset_low: addr as u16,
                selector: KERNEL_CS,
                ist,
                type_attr: 0x8e, // present, DPL 0, 64-bit interrupt gate
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                _zero: 0,
            };
        }
    }
    load_idt();
}

/// Loads the (shared) IDT on this CPU.
pub(crate) fn load_idt() {
    #[repr(C, packed)]
    struct Ptr {
        limit: u16,
        base: u64,
    }
    let ptr = Ptr { limit: (core::mem::size_of::<[IdtEntry; 256]>() - 1) as u16, base: (&raw const IDT) as u64 };
    // SAFETY: the IDT is static and fully initialised by `init` before any CPU loads it.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) };
}

/// Enables interrupts on this CPU.
pub fn enable_interrupts() {
    // SAFETY: the IDT is loaded and every vector has a handler.
    unsafe { core::arch::asm!("sti", options(nomem, nostack)) }
}

/// Waits for the next interrupt (the CPU halts until one arrives).
pub fn wait_for_interrupt() {
    // SAFETY: sti; hlt atomically enables interrupts and halts until one arrives.
    unsafe { core::arch::asm!("sti; hlt", options(nomem, nostack)) }
}

const NAMES: [&str; 32] = [
    "DIVIDE ERROR (#DE)", "DEBUG (#DB)", "NMI", "BREAKPOINT (#BP)", "OVERFLOW (#OF)",
    "BOUND RANGE (#BR)", "INVALID OPCODE (#UD)", "DEVICE NOT AVAILABLE (#NM)", "DOUBLE FAULT (#DF)",
    "COPROCESSOR SEGMENT OVERRUN", "INVALID TSS (#TS)", "SEGMENT NOT PRESENT (#NP)",
    "STACK-SEGMENT FAULT (#SS)", "GENERAL PROTECTION (#GP)", "PAGE FAULT (#PF)", "RESERVED 15",
    "X87 FLOATING-POINT (#MF)", "ALIGNMENT CHECK (#AC)", "MACHINE CHECK (#MC)",
    "SIMD FLOATING-POINT (#XM)", "VIRTUALIZATION (#VE)", "CONTROL PROTECTION (#CP)", "RESERVED 22",
    "RESERVED 23", "RESERVED 24", "RESERVED 25", "RESERVED 26", "RESERVED 27",
    "HYPERVISOR INJECTION (#HV)", "VMM COMMUNICATION (#VC)", "SECURITY (#SX)", "RESERVED 31",
];

/// Called by `bareflow_trap_common` for every vector.
#[unsafe(no_mangle)]
extern "C" fn bareflow_trap(frame: &mut TrapFrame) {
    let v = frame.vector as usize;
    if v >= 32 {
        let h = HANDLERS[v].load(Ordering::Acquire);
        if h != 0 {
            // SAFETY: only `set_irq_handler` stores non-zero values, and it
            // stores an `IrqHandler` fn pointer.
            let f: IrqHandler = unsafe { core::mem::transmute::<usize, IrqHandler>(h) };
            f(v as u8);
        } else if v != 0xff {
            console::write_raw(format_args!("bareflow: unexpected interrupt {v}\n"));
        }
        return;
    }
    report_exception(frame);
    exit::exit(bareflow_abi::exit::FAULT)
}

fn report_exception(f: &TrapFrame) {
    let v = f.vector as usize;
    let w = |args: core::fmt::Arguments<'_>| console::write_raw(args);
    w(format_args!("\n!!! CPU EXCEPTION {v}: {} error_code={:#x}\n", NAMES[v], f.error_code));
    if v == 14 {
        let cr2 = cpu::read_cr2();
        let e = f.error_code;
        let access = if e & 0x10 != 0 {
            "instruction fetch"
        } else if e & 2 != 0 {
            "write"
        } else {
            "read"
        };
        let why = if e & 1 != 0 { "protection violation" } else { "page not present" };
        let mode = if e & 4 != 0 { "user" } else { "kernel" };
        w(format_args!("    {access} at cr2={cr2:#018x}: {why} ({mode} mode)\n"));
        if let Some(name) = super::mm::guard_page_owner(cr2) {
            w(format_args!("    stack overflow: cr2 is in the guard page below the {name}\n"));
        } else if cr2 < 4096 {
            w(format_args!("    null pointer dereference\n"));
        }
    }
    w(format_args!("    rip={:#018x} cs={:#x} rflags={:#x} rsp={:#018x} ss={:#x}\n", f.rip, f.cs, f.rflags, f.rsp, f.ss));
    w(format_args!("    cr2={:#018x} cr3={:#018x}\n", cpu::read_cr2(), cpu::read_cr3()));
    w(format_args!("    rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n", f.rax, f.rbx, f.rcx, f.rdx));
    w(format_args!("    rsi={:#018x} rdi={:#018x} rbp={:#018x} r8 ={:#018x}\n", f.rsi, f.rdi, f.rbp, f.r8));
    w(format_args!("    r9 ={:#018x} r10={:#018x} r11={:#018x} r12={:#018x}\n", f.r9, f.r10, f.r11, f.r12));
    w(format_args!("    r13={:#018x} r14={:#018x} r15={:#018x}\n", f.r13, f.r14, f.r15));
    w(format_args!("backtrace:\n  #0 {:#018x}\n", f.rip));
    print_backtrace_from(f.rbp, 1);
}

/// Prints a frame-pointer backtrace of the caller (for panics).
pub fn print_backtrace() {
    let rbp: u64;
    // SAFETY: reads the frame pointer register; no memory effects.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags)) };
    console::write_raw(format_args!("backtrace:\n"));
    print_backtrace_from(rbp, 0);
}

fn print_backtrace_from(mut rbp: u64, first: usize) {
    // The image is built with frame pointers; each frame is [saved rbp, return address].
    for n in first..first + 32 {
        if rbp == 0 || rbp % 8 != 0 || !super::mm::is_stack_address(rbp, 16) {
            break;
        }
        // SAFETY: `is_stack_address` checked that [rbp, rbp+16) lies in a
        // mapped kernel stack, so both words are readable.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        console::write_raw(format_args!("  #{n} {ret:#018x}\n"));
        if next <= rbp {
            break; // frames grow upwards as we unwind; anything else is corrupt
        }
        rbp = next;
    }
}
