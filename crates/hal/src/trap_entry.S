/*
 * Common interrupt/exception entry. Every vector arrives on an IST stack
 * (the precompiled core uses the red zone, so kernel-mode interrupts must
 * never push onto the interrupted stack). When the CPU came from ring 3 we
 * swapgs, move the frame to the current task's kernel stack (per-CPU field
 * at %gs:8) and save the user's FPU/SSE state (%gs:32) before any Rust
 * code can touch an XMM register; the exit path mirrors it. From kernel
 * mode the interrupted code's XMM state is kept on the stack instead.
 *
 * Per-CPU layout (see percpu.rs): 0 self, 8 kernel stack top, 16 user rsp,
 * 24 scratch, 32 user FPU area (512 bytes, 16-aligned).
 */
    .section .text.trap_common, "ax"
    .code64
    .global trap_common
trap_common:
    testb $3, 24(%rsp)
    jz 1f
    swapgs
    movq %rax, %gs:24
    movq %rsp, %rax
    movq %gs:8, %rsp
    pushq 48(%rax)
    pushq 40(%rax)
    pushq 32(%rax)
    pushq 24(%rax)
    pushq 16(%rax)
    pushq 8(%rax)
    pushq 0(%rax)
    movq %gs:32, %rax
    fxsave64 (%rax)
    movq %gs:24, %rax
1:
    .global trap_save_regs
trap_save_regs:
    SAVE_GPRS
    movq %rsp, %rdi
    cld
    testb $3, 18*8(%rsp)
    jnz 4f
    /*
     * From kernel mode: the interrupted code may have live values in XMM
     * registers, and the handler is Rust (which may use SSE). Keep them on
     * this stack, 16-aligned, across the handler. rbx is already saved in
     * the frame and survives the call (callee-saved).
     */
    movq %rsp, %rbx
    subq $512, %rsp
    andq $-16, %rsp
    fxsave64 (%rsp)
    call hal_trap_dispatch
    fxrstor64 (%rsp)
    movq %rbx, %rsp
    jmp 2f
4:
    call hal_trap_dispatch
    .global trap_return
trap_return:
    testb $3, 18*8(%rsp)
    jz 2f
    movq %gs:32, %rax
    fxrstor64 (%rax)
2:
    RESTORE_GPRS
    testb $3, 24(%rsp)
    jz 3f
    swapgs
3:
    addq $16, %rsp
    iretq

    .purgem SAVE_GPRS
    .purgem RESTORE_GPRS
