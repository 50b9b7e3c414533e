// BareFlow boot entries. Both start in 32-bit protected mode with paging off:
//   PVH (QEMU -kernel, Firecracker, cloud-hypervisor): ebx = hvm_start_info
//   Multiboot2 (GRUB): eax = 0x36d76289, ebx = multiboot2 information
// Both converge on `common32`, which zeroes .bss, identity-maps the first
// 4 GiB with 2 MiB pages, enters long mode and calls
// `bareflow_hal_entry(protocol, info)` on the boot stack.

// ---- Multiboot2 header (must be in the first 32 KiB of the file, 8-aligned)
.section .multiboot2_header, "a"
.balign 8
bareflow_mb2_header:
    .long 0xe85250d6
    .long 0
    .long bareflow_mb2_header_end - bareflow_mb2_header
    .long 0x100000000 - (0xe85250d6 + (bareflow_mb2_header_end - bareflow_mb2_header))
    // entry address tag: start here rather than at the ELF entry
    .balign 8
    .short 3
    .short 0
    .long 12
    .long bareflow_mb2_start
    // end tag
    .balign 8
    .short 0
    .short 0
    .long 8
bareflow_mb2_header_end:

// ---- PVH note (Xen ELF note 18, XEN_ELFNOTE_PHYS32_ENTRY), 4-aligned
.section .note.Xen, "a", @note
.balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad bareflow_pvh_start
    .balign 4

// ---- boot page tables and GDT
.section .bss.boot_tables, "aw", @nobits
.balign 4096
bareflow_boot_pml4: .skip 4096
bareflow_boot_pdpt: .skip 4096
bareflow_boot_pd:   .skip 4096 * 4

.section .rodata.boot_gdt, "a"
.balign 16
bareflow_boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff   // 0x08: 64-bit code
    .quad 0x00cf92000000ffff   // 0x10: data
bareflow_boot_gdt_end:
.balign 4
bareflow_boot_gdt_ptr:
    .short bareflow_boot_gdt_end - bareflow_boot_gdt - 1
    .long bareflow_boot_gdt

// ---- boot stack: one guard page (unmapped once the kernel's page tables are
// up), then the stack the app's main thread runs on.
.section .stacks.boot, "aw", @nobits
.balign 4096
.global bareflow_boot_stack_guard
bareflow_boot_stack_guard: .skip 4096
.global bareflow_boot_stack_bottom
bareflow_boot_stack_bottom: .skip 1024 * 1024
.global bareflow_boot_stack_top
bareflow_boot_stack_top:

.section .data.boot_tsc, "aw"
.balign 8
.global bareflow_boot_tsc
bareflow_boot_tsc: .quad 0

.section .boot.text, "ax"
.code32
.global bareflow_pvh_start
bareflow_pvh_start:
    mov edi, 1
    mov esi, ebx
    jmp bareflow_common32

.global bareflow_mb2_start
bareflow_mb2_start:
    mov edi, 2
    cmp eax, 0x36d76289
    je 1f
    mov edi, 0               // unknown loader: Rust reports it
1:  mov esi, ebx
    jmp bareflow_common32

bareflow_common32:
    cli
    cld
    mov ebp, edi
    rdtsc
    mov dword ptr [bareflow_boot_tsc], eax
    mov dword ptr [bareflow_boot_tsc + 4], edx

    // zero .bss (the loader should have; we do not rely on it)
    // (.bss is page-aligned at both ends. A plain loop of 32-byte steps: under
    // TCG `rep stos` leaves the translated block on every iteration, ~20x slower.)
    mov edi, offset __bss_start
    mov ecx, offset __bss_end
    xor eax, eax
5:  mov dword ptr [edi], eax
    mov dword ptr [edi + 4], eax
    mov dword ptr [edi + 8], eax
    mov dword ptr [edi + 12], eax
    mov dword ptr [edi + 16], eax
    mov dword ptr [edi + 20], eax
    mov dword ptr [edi + 24], eax
    mov dword ptr [edi + 28], eax
    add edi, 32
    cmp edi, ecx
    jb 5b

    // PML4[0] -> PDPT; PDPT[0..4] -> 4 page directories; 2048 x 2 MiB = 4 GiB
    mov eax, offset bareflow_boot_pdpt
    or eax, 3
    mov dword ptr [bareflow_boot_pml4], eax
    xor ecx, ecx
2:  mov eax, ecx
    shl eax, 12
    add eax, offset bareflow_boot_pd
    or eax, 3
    mov dword ptr [bareflow_boot_pdpt + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jb 2b
    xor ecx, ecx
3:  mov eax, ecx
    shl eax, 21
    or eax, 0x83
    mov dword ptr [bareflow_boot_pd + ecx * 8], eax
    inc ecx
    cmp ecx, 2048
    jb 3b

    // CR4: PAE | OSFXSR | OSXMMEXCPT (SSE usable from the first Rust instruction)
    mov eax, cr4
    or eax, (1 << 5) | (1 << 9) | (1 << 10)
    mov cr4, eax
    mov eax, offset bareflow_boot_pml4
    mov cr3, eax

    // EFER: LME, plus NXE when the CPU has NX (CPUID 0x80000001 EDX bit 20)
    mov eax, 0x80000001
    cpuid
    xor ebx, ebx
    bt edx, 20
    jnc 4f
    mov ebx, (1 << 11)
4:  mov ecx, 0xc0000080
    rdmsr
    or eax, (1 << 8)
    or eax, ebx
    wrmsr

    // CR0: PG | WP | MP | PE, EM off
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | (1 << 1) | 1
    and eax, ~(1 << 2)
    mov cr0, eax

    lgdt [bareflow_boot_gdt_ptr]
    mov eax, 0x08
    push eax
    mov eax, offset bareflow_long64
    push eax
    retf

.code64
bareflow_long64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, offset bareflow_boot_stack_top
    mov edi, ebp             // protocol (zero-extends)
    mov esi, esi             // info address (zero-extends)
    xor ebp, ebp             // end of the frame-pointer chain
    call bareflow_hal_entry
    ud2
