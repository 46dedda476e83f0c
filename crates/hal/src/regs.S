/*
 * The general-purpose register save of a TrapFrame (idt.rs), shared by the
 * interrupt entry (trap_entry.S) and the syscall entry (syscall.rs). Each
 * asm block that includes this file ends with `.purgem` of its macros,
 * so the blocks can be assembled in any order.
 *
 * FPU_RESTORE: the whole user FPU state from the running task's area
 * (per-CPU %gs:32) with XRSTOR of the components in fpu::XSAVE_MASK, or
 * FXRSTOR when that is 0; the area was completed by fpu::sync_current. It
 * clobbers rax, rcx and rdx: use it only while the user's GPRs are saved
 * in the frame. The including block passes `xsave_mask = sym ...`.
 *
 * XMM_SAVE / XMM_RESTORE: only XMM0-15, to or from their places in the
 * same area (the legacy layout: XMM0 at 160): all of the user's FPU state
 * that kernel code can change (see fpu.rs). They clobber rcx.
 */
.macro XMM_SAVE
    movq %gs:32, %rcx
    movaps %xmm0, 160(%rcx)
    movaps %xmm1, 176(%rcx)
    movaps %xmm2, 192(%rcx)
    movaps %xmm3, 208(%rcx)
    movaps %xmm4, 224(%rcx)
    movaps %xmm5, 240(%rcx)
    movaps %xmm6, 256(%rcx)
    movaps %xmm7, 272(%rcx)
    movaps %xmm8, 288(%rcx)
    movaps %xmm9, 304(%rcx)
    movaps %xmm10, 320(%rcx)
    movaps %xmm11, 336(%rcx)
    movaps %xmm12, 352(%rcx)
    movaps %xmm13, 368(%rcx)
    movaps %xmm14, 384(%rcx)
    movaps %xmm15, 400(%rcx)
.endm

.macro XMM_RESTORE
    movq %gs:32, %rcx
    movaps 160(%rcx), %xmm0
    movaps 176(%rcx), %xmm1
    movaps 192(%rcx), %xmm2
    movaps 208(%rcx), %xmm3
    movaps 224(%rcx), %xmm4
    movaps 240(%rcx), %xmm5
    movaps 256(%rcx), %xmm6
    movaps 272(%rcx), %xmm7
    movaps 288(%rcx), %xmm8
    movaps 304(%rcx), %xmm9
    movaps 320(%rcx), %xmm10
    movaps 336(%rcx), %xmm11
    movaps 352(%rcx), %xmm12
    movaps 368(%rcx), %xmm13
    movaps 384(%rcx), %xmm14
    movaps 400(%rcx), %xmm15
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
