/*
 * The vDSO: clock_gettime, gettimeofday, time and getcpu without a trap.
 * Linked as a tiny shared object (build.rs) that the kernel maps into
 * every process, with its data page (vvar) the page just below it.
 * The clock is the kernel's: ns = ((tsc - tsc_at_boot) * ns_mult) >> 32
 * (hal::time), constant after boot, so no sequence lock is needed.
 * getcpu reads the CPU number from the limit of a per-CPU GDT segment
 * (selector 0x4b), as Linux does.
 *
 * vvar layout (kernel/src/vdso.rs): 0 tsc_at_boot, 8 ns_mult,
 * 16 realtime offset (ns).
 */
    .text
    .hidden __ehdr_start

/* rax = nanoseconds of the monotonic clock; clobbers rcx, rdx. */
.macro NOW_NS
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    leaq __ehdr_start(%rip), %rcx
    subq -4096(%rcx), %rax
    mulq -4088(%rcx)
    shrdq $32, %rdx, %rax
.endm

/* rax += the realtime offset (vvar + 16); clobbers rcx. */
.macro ADD_REALTIME
    leaq __ehdr_start(%rip), %rcx
    addq -4080(%rcx), %rax
.endm

/* rax (ns) -> rax seconds, rdx the remaining ns; clobbers rcx. */
.macro SPLIT_SECONDS
    xorl %edx, %edx
    movl $1000000000, %ecx
    divq %rcx
.endm

/* Clocks answered here: REALTIME 0, MONOTONIC 1, MONOTONIC_RAW 4,
   REALTIME_COARSE 5, MONOTONIC_COARSE 6, BOOTTIME 7. */
#define CLOCKS 0xf3
#define REALTIME_CLOCKS 0x21

    .globl __vdso_clock_gettime
    .type __vdso_clock_gettime, @function
__vdso_clock_gettime:
    cmpl $7, %edi
    ja 1f
    movl $CLOCKS, %eax
    btl %edi, %eax
    jnc 1f
    movq %rdi, %r8
    NOW_NS
    movl $REALTIME_CLOCKS, %edx
    btl %r8d, %edx
    jnc 2f
    ADD_REALTIME
2:
    SPLIT_SECONDS
    movq %rax, (%rsi)
    movq %rdx, 8(%rsi)
    xorl %eax, %eax
    ret
1:
    movl $228, %eax
    syscall
    ret
    .size __vdso_clock_gettime, . - __vdso_clock_gettime

    .globl __vdso_gettimeofday
    .type __vdso_gettimeofday, @function
__vdso_gettimeofday:
    testq %rdi, %rdi
    jz 1f
    NOW_NS
    ADD_REALTIME
    SPLIT_SECONDS
    movq %rax, (%rdi)
    movq %rdx, %rax
    xorl %edx, %edx
    movl $1000, %ecx
    divq %rcx
    movq %rax, 8(%rdi)
1:
    /* struct timezone: minutes west and dst type, both 0. */
    testq %rsi, %rsi
    jz 2f
    movq $0, (%rsi)
2:
    xorl %eax, %eax
    ret
    .size __vdso_gettimeofday, . - __vdso_gettimeofday

    .globl __vdso_time
    .type __vdso_time, @function
__vdso_time:
    NOW_NS
    ADD_REALTIME
    SPLIT_SECONDS
    testq %rdi, %rdi
    jz 1f
    movq %rax, (%rdi)
1:
    ret
    .size __vdso_time, . - __vdso_time

    .globl __vdso_getcpu
    .type __vdso_getcpu, @function
__vdso_getcpu:
    movl $0x4b, %eax
    lsll %eax, %eax
    testq %rdi, %rdi
    jz 1f
    movl %eax, %ecx
    andl $0xfff, %ecx
    movl %ecx, (%rdi)
1:
    testq %rsi, %rsi
    jz 2f
    shrl $12, %eax
    movl %eax, (%rsi)
2:
    xorl %eax, %eax
    ret
    .size __vdso_getcpu, . - __vdso_getcpu

    .section .note.GNU-stack, "", @progbits
