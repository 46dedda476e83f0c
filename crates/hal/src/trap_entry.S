/*
 * Common interrupt/exception entry. Every vector arrives on an IST stack
 * (the precompiled core uses the red zone, so kernel-mode interrupts must
 * never push onto the interrupted stack). When the CPU came from ring 3 we
 * swapgs, move the frame to the current task's kernel stack (per-CPU field
 * at %gs:8) and, once the GPRs are saved, the user's XMM registers and
 * nothing else (%gs:32, XMM_SAVE; the rest of the FPU state waits in the
 * registers, see fpu.rs) before any Rust code can touch an XMM register;
 * the exit path mirrors it. From kernel
 * mode the interrupted code's XMM state is kept on the stack instead.
 *
 * Per-CPU layout (see percpu.rs): 0 self, 8 kernel stack top, 16 user rsp,
 * 24 scratch, 32 user FPU area (FPU_AREA_SIZE bytes, 64-aligned), 40 cpu
 * id, 48 work word, 56 fpu_live.
 */
    .section .text.trap_common, "ax"
    .code64
    .global trap_common
trap_common:
    testb $3, 24(%rsp)
    jz 5f
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
    movq %gs:24, %rax
    jmp trap_save_regs
5:
    /*
     * From kernel mode. One kernel-mode fault is really the user's: an
     * iretq back to ring 3 that faults (#NP/#SS/#GP on a CS or SS that
     * rt_sigreturn let through, or anything else the CPU checks there).
     * That iretq ran after swapgs, so GS is the user's and no Rust code
     * may run as things are. Turn it into the fault the user would have
     * taken: back to the kernel GS, and build the frame on the task's
     * kernel stack from the very frame iretq was given, which is still
     * where iretq left %rsp (40 here). Its CS has RPL 3, so everything
     * after this sees a fault from user mode and delivers SIGSEGV, as
     * Linux's bad-iret fixup does.
     */
    pushq %rax
    /* Only #NP, #SS and #GP: an NMI or interrupt may also stop at that
       address (before the iretq runs) and is not the user's fault. */
    movq 8(%rsp), %rax
    subq $11, %rax
    cmpq $2, %rax
    ja 7f
    leaq trap_iret(%rip), %rax
    cmpq %rax, 24(%rsp)
    je 6f
    leaq syscall_iret(%rip), %rax
    cmpq %rax, 24(%rsp)
    je 6f
7:
    popq %rax
    jmp trap_save_regs
6:
    movq 48(%rsp), %rax
    testb $3, 8(%rax)
    jz 7b
    popq %rax
    swapgs
    movq %rax, %gs:24
    movq %rsp, %rax
    movq 40(%rax), %rsp
    pushq 8(%rax)
    pushq 0(%rax)
    /* The user's FPU state, restored before the iretq, is saved again
       below (a frame with RPL 3 takes the user path): the registers hold
       all of it, as after any entry from user mode. */
    movq %gs:24, %rax
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
    /* From user mode, with the GPRs now saved: the user's XMM registers
       (not even MXCSR), all that kernel code can change; the rest of the FPU
       state stays in the registers (fpu_live 1) until a switch, a signal
       frame, fork or execve completes the area (fpu.rs). */
    XMM_SAVE
    movq $1, %gs:56
    call hal_trap_dispatch
    .global trap_return
trap_return:
    testb $3, 18*8(%rsp)
    jz 2f
    /* fpu_live 1: only XMM to put back; 0: the area holds the
       whole state (completed, or a new task's first return). */
    cmpq $0, %gs:56
    je 8f
    XMM_RESTORE
    movq $0, %gs:56
    jmp 2f
8:
    FPU_RESTORE
2:
    RESTORE_GPRS
    testb $3, 24(%rsp)
    jz 3f
    swapgs
3:
    addq $16, %rsp
    .global trap_iret
trap_iret:
    iretq

    .purgem SAVE_GPRS
    .purgem RESTORE_GPRS
    .purgem FPU_RESTORE
    .purgem XMM_SAVE
    .purgem XMM_RESTORE
