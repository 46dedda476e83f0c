/*
 * 32-bit entry for both boot protocols, then long mode, then Rust.
 *
 * PVH (QEMU -kernel): the Xen ELF note below gives the 32-bit physical entry;
 *   %ebx points to hvm_start_info. We use PVH rather than the Multiboot a.out
 *   kludge because QEMU then loads our ELF segments by their physical
 *   addresses (no file-offset arithmetic) and hands us an E820 map, the
 *   command line and the initramfs as a module.
 * Multiboot2 (GRUB ISO): the header's entry-address tag gives the entry;
 *   %ebx points to the Multiboot2 information structure. QEMU only probes
 *   Multiboot1, so this header never shadows the PVH note.
 *
 * Boot page tables map the first 4 GiB three times with 2 MiB pages:
 * identity (so this code keeps running after paging is on), the direct map
 * at 0xffff800000000000, and the kernel image at 0xffffffff80000000 (first
 * 1 GiB only). Rust replaces them with the kernel's own tables early on.
 */
    .section .multiboot2, "a"
    .p2align 3
mb2_header:
    .long 0xe85250d6
    .long 0
    .long mb2_header_end - mb2_header
    .long 0x100000000 - (0xe85250d6 + (mb2_header_end - mb2_header))
    .p2align 3
    .short 3, 0             /* entry address tag */
    .long 12
    .long mb2_entry
    .p2align 3
    .short 0, 0             /* end tag */
    .long 8
mb2_header_end:

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4
    .long 8
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad pvh_entry
    .p2align 2

    .section .boot.text, "ax"
    .code32
    .global pvh_entry
pvh_entry:
    movl $1, %edi
    jmp 1f
    .global mb2_entry
mb2_entry:
    movl $2, %edi
1:
    cli
    cld
    movl %edi, boot_proto
    movl %ebx, boot_info_ptr
    movl $boot_stack_top, %esp

    /* Zero the six table pages (PML4, 2 PDPTs, … 4 PDs, contiguous). */
    movl $boot_pml4, %edi
    xorl %eax, %eax
    movl $(7 * 1024), %ecx
    rep stosl

    movl $boot_pdpt_low, %eax
    orl $3, %eax
    movl %eax, boot_pml4
    movl %eax, boot_pml4 + 256 * 8
    movl $boot_pdpt_high, %eax
    orl $3, %eax
    movl %eax, boot_pml4 + 511 * 8

    /* pdpt_low[i] = pd[i] for 4 GiB; pdpt_high[510] = pd[0]. */
    movl $boot_pd, %eax
    orl $3, %eax
    movl %eax, boot_pdpt_low
    movl %eax, boot_pdpt_high + 510 * 8
    addl $4096, %eax
    movl %eax, boot_pdpt_low + 8
    addl $4096, %eax
    movl %eax, boot_pdpt_low + 16
    addl $4096, %eax
    movl %eax, boot_pdpt_low + 24

    /* 2048 PD entries of 2 MiB each: entry i maps i * 2 MiB. */
    xorl %ecx, %ecx
2:
    movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, boot_pd(, %ecx, 8)
    movl %ecx, %eax
    shrl $11, %eax
    movl %eax, boot_pd + 4(, %ecx, 8)
    incl %ecx
    cmpl $2048, %ecx
    jne 2b

    /* CR4: PAE | PGE | OSFXSR | OSXMMEXCPT (SSE is on before any Rust runs). */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 7) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3

    /* EFER: SCE | LME, and NXE when the CPU has NX. */
    movl $0x80000001, %eax
    cpuid
    movl $((1 << 0) | (1 << 8)), %esi
    testl $(1 << 20), %edx
    jz 3f
    orl $(1 << 11), %esi
3:
    movl $0xc0000080, %ecx
    rdmsr
    orl %esi, %eax
    wrmsr

    /* CR0: PE | MP | WP | PG; clear EM and TS so SSE works. */
    movl %cr0, %eax
    andl $~((1 << 2) | (1 << 3)), %eax
    orl $((1 << 0) | (1 << 1) | (1 << 16) | (1 << 31)), %eax
    movl %eax, %cr0

    lgdt boot_gdtr
    ljmp $0x08, $long_mode

    .code64
long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $boot_kernel_stack_top, %rsp
    xorq %rbp, %rbp
    movl boot_proto, %edi
    movl boot_info_ptr, %esi
    movabsq $hal_start64, %rax
    callq *%rax
4:
    hlt
    jmp 4b

    .section .boot.data, "aw"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdtr:
    .word 23
    .quad boot_gdt
boot_proto:
    .long 0
boot_info_ptr:
    .long 0

    .section .boot.bss, "aw", @nobits
    .p2align 12
    .global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt_low:
    .skip 4096
boot_pdpt_high:
    .skip 4096
boot_pd:
    .skip 4096 * 4
    .skip 4096
boot_stack_top:

    .section .bss.boot_stack, "aw", @nobits
    .p2align 12
    /* Left unmapped by paging::init: an overflow of the boot stack
       faults here (crates/hal/src/guard.rs). */
    .global boot_kernel_stack_guard
boot_kernel_stack_guard:
    .skip 4096
    .global boot_kernel_stack_bottom
boot_kernel_stack_bottom:
    .skip 65536
    .global boot_kernel_stack_top
boot_kernel_stack_top:
