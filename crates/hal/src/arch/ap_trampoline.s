// Application-processor start-up. The boot CPU copies the code between
// bareflow_ap_tramp_start and bareflow_ap_tramp_end to physical 0x8000 (the
// SIPI vector 0x08), fills the data page at 0x9000, and sends INIT-SIPI-SIPI.
// The AP wakes in real mode at 0x0800:0000, goes through 32-bit protected mode
// into long mode with the kernel's page tables, and calls
// `entry(index)` on the stack the boot CPU gave it.
//
// Data page (0x9000): +0x00 GDT (4 descriptors), +0x20 GDT pointer,
// +0x30 CR3, +0x38 EFER bits, +0x40 stack top, +0x48 CPU index, +0x50 entry.
.section .text.ap_trampoline, "ax"
.global bareflow_ap_tramp_start
.global bareflow_ap_tramp_end
.code16
bareflow_ap_tramp_start:
    cli
    cld
    xor ax, ax
    mov ds, ax
    lgdt [0x9020]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    // ljmpl 0x18:tr32 (32-bit code segment)
    .byte 0x66, 0xea
    .long 0x8000 + (bareflow_ap_tr32 - bareflow_ap_tramp_start)
    .short 0x18
.code32
bareflow_ap_tr32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, (1 << 5) | (1 << 9) | (1 << 10)
    mov cr4, eax
    mov eax, dword ptr [0x9030]
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, dword ptr [0x9038]
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | (1 << 1) | 1
    and eax, ~(1 << 2)
    mov cr0, eax
    // ljmp 0x08:tr64
    .byte 0xea
    .long 0x8000 + (bareflow_ap_tr64 - bareflow_ap_tramp_start)
    .short 0x08
.code64
bareflow_ap_tr64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, qword ptr [0x9040]
    mov rdi, qword ptr [0x9048]
    mov rax, qword ptr [0x9050]
    xor ebp, ebp
    call rax
    ud2
bareflow_ap_tramp_end:
