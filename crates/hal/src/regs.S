/*
 * The general-purpose register save of a TrapFrame (idt.rs), shared by the
 * interrupt entry (trap_entry.S) and the syscall entry (syscall.rs). Each
 * asm block that includes this file ends with `.purgem` of its macros,
 * so the blocks can be assembled in any order.
 *
 * FPU_SAVE / FPU_RESTORE: the user FPU state to or from the running task's
 * area (per-CPU %gs:32) with XSAVE/XRSTOR of the components in
 * fpu::XSAVE_MASK, or FXSAVE/FXRSTOR when that is 0 (see fpu.rs). They
 * clobber rax, rcx and rdx: use them only while the user's GPRs are saved
 * in the frame. The including block passes `xsave_mask = sym ...`.
 */
.macro FPU_SAVE
    movq %gs:32, %rcx
    movl {xsave_mask}(%rip), %eax
    testl %eax, %eax
    jz 901f
    xorl %edx, %edx
    xsave64 (%rcx)
    jmp 902f
901:
    fxsave64 (%rcx)
902:
.endm

.macro FPU_RESTORE
    movq %gs:32, %rcx
    movl {xsave_mask}(%rip), %eax
    testl %eax, %eax
    jz 903f
    xorl %edx, %edx
    xrstor64 (%rcx)
    jmp 904f
903:
    fxrstor64 (%rcx)
904:
.endm

.macro SAVE_GPRS
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
.endm

.macro RESTORE_GPRS
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
.endm
