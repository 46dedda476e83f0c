//! AVX state: when CPUID advertises AVX, the OS has enabled it (CPUID's
//! OSXSAVE bit, XCR0 with SSE|AVX) — coreutils' cksum trusts the CPUID
//! bit alone and dies of SIGILL otherwise — and the upper halves of all
//! 16 YMM registers survive system calls, context switches to a process
//! that scribbles on its own YMM registers, and signal handlers that
//! clear them (vzeroall). Each run is one asm block, so the compiler
//! cannot touch the registers in between.

use std::arch::asm;

use crate::say;
use crate::util::{check, child_exit, fork, handle, wait_ok};

macro_rules! ymm16 {
    ($op:literal, $mem:literal) => {
        concat!(
            $op,
            " ymm0, [",
            $mem,
            " + 0]\n",
            $op,
            " ymm1, [",
            $mem,
            " + 32]\n",
            $op,
            " ymm2, [",
            $mem,
            " + 64]\n",
            $op,
            " ymm3, [",
            $mem,
            " + 96]\n",
            $op,
            " ymm4, [",
            $mem,
            " + 128]\n",
            $op,
            " ymm5, [",
            $mem,
            " + 160]\n",
            $op,
            " ymm6, [",
            $mem,
            " + 192]\n",
            $op,
            " ymm7, [",
            $mem,
            " + 224]\n",
            $op,
            " ymm8, [",
            $mem,
            " + 256]\n",
            $op,
            " ymm9, [",
            $mem,
            " + 288]\n",
            $op,
            " ymm10, [",
            $mem,
            " + 320]\n",
            $op,
            " ymm11, [",
            $mem,
            " + 352]\n",
            $op,
            " ymm12, [",
            $mem,
            " + 384]\n",
            $op,
            " ymm13, [",
            $mem,
            " + 416]\n",
            $op,
            " ymm14, [",
            $mem,
            " + 448]\n",
            $op,
            " ymm15, [",
            $mem,
            " + 480]\n",
        )
    };
}

macro_rules! ymm16_store {
    ($mem:literal) => {
        concat!(
            "vmovdqu [",
            $mem,
            " + 0], ymm0\n",
            "vmovdqu [",
            $mem,
            " + 32], ymm1\n",
            "vmovdqu [",
            $mem,
            " + 64], ymm2\n",
            "vmovdqu [",
            $mem,
            " + 96], ymm3\n",
            "vmovdqu [",
            $mem,
            " + 128], ymm4\n",
            "vmovdqu [",
            $mem,
            " + 160], ymm5\n",
            "vmovdqu [",
            $mem,
            " + 192], ymm6\n",
            "vmovdqu [",
            $mem,
            " + 224], ymm7\n",
            "vmovdqu [",
            $mem,
            " + 256], ymm8\n",
            "vmovdqu [",
            $mem,
            " + 288], ymm9\n",
            "vmovdqu [",
            $mem,
            " + 320], ymm10\n",
            "vmovdqu [",
            $mem,
            " + 352], ymm11\n",
            "vmovdqu [",
            $mem,
            " + 384], ymm12\n",
            "vmovdqu [",
            $mem,
            " + 416], ymm13\n",
            "vmovdqu [",
            $mem,
            " + 448], ymm14\n",
            "vmovdqu [",
            $mem,
            " + 480], ymm15\n",
        )
    };
}

/// 16 registers × 32 bytes of values that differ per byte and per `seed`.
fn table(seed: u8) -> [u8; 512] {
    let mut t = [0u8; 512];
    for (i, b) in t.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 5) as u8;
    }
    t
}

/// Loads the YMM registers from `input`, makes syscall `nr` (args 1, 2)
/// `n` times, stores the registers to `out`.
fn around_syscalls(input: &[u8; 512], out: &mut [u8; 512], nr: i64, a1: i64, a2: i64, n: u64) {
    // SAFETY: AVX is enabled (checked by the caller); the block reads
    // `input` and writes `out` (512 bytes each) and declares every
    // register it changes; the syscall clobbers rcx, r11 and rax.
    unsafe {
        asm!(
            ymm16!("vmovdqu", "r12"),
            "2:",
            "mov rax, r14",
            "mov rdi, r15",
            "mov rsi, r9",
            "syscall",
            "dec r13",
            "jnz 2b",
            ymm16_store!("r8"),
            "vzeroupper",
            in("r12") input.as_ptr(),
            in("r8") out.as_mut_ptr(),
            inout("r13") n => _,
            in("r14") nr,
            in("r15") a1,
            in("r9") a2,
            out("rax") _, out("rcx") _, out("r11") _, out("rdi") _, out("rsi") _,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
            out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
            out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        );
    }
}

extern "C" fn clear_ymm(_: i32) {
    // SAFETY: clears the vector registers, which a handler may do; the
    // kernel restores the interrupted code's state at sigreturn.
    unsafe { asm!("vzeroall", options(nomem, nostack)) };
}

fn avx_advertised() -> bool {
    std::arch::x86_64::__cpuid(1).ecx & (1 << 28) != 0
}

pub fn run(_: &[String]) -> Result<(), String> {
    if !avx_advertised() {
        say!("ok: the CPU has no AVX: nothing to check");
        return Ok(());
    }
    let ecx = std::arch::x86_64::__cpuid(1).ecx;
    check(
        ecx & (1 << 27) != 0,
        "CPUID advertises AVX and OSXSAVE (the OS turned XSAVE on)",
    )?;
    // SAFETY: xgetbv(0) is allowed once OSXSAVE is set (checked above).
    let xcr0 = unsafe { std::arch::x86_64::_xgetbv(0) };
    check(
        xcr0 & 0b110 == 0b110,
        format!("XCR0 enables SSE and AVX ({xcr0:#x})"),
    )?;

    let want = table(7);
    let mut got = [0u8; 512];
    around_syscalls(&want, &mut got, libc::SYS_getppid, 0, 0, 20_000);
    check(got == want, "YMM0-15 survive 20,000 getppid calls")?;

    // Another process spinning with its own YMM values, on this CPU or
    // another: yields switch between the two.
    let child = fork()?;
    if child == 0 {
        let mine = table(99);
        let mut out = [0u8; 512];
        around_syscalls(&mine, &mut out, libc::SYS_sched_yield, 0, 0, 3_000);
        child_exit(if out == mine { 0 } else { 1 });
    }
    let mut got = [0u8; 512];
    around_syscalls(&want, &mut got, libc::SYS_sched_yield, 0, 0, 3_000);
    wait_ok(child, "the other process kept its own YMM values")?;
    check(got == want, "YMM0-15 survive context switches")?;

    handle(
        libc::SIGUSR1,
        clear_ymm as *const () as libc::sighandler_t,
        0,
    )?;
    let mut got = [0u8; 512];
    // SAFETY: getpid has no side effects.
    let me = unsafe { libc::getpid() } as i64;
    around_syscalls(
        &want,
        &mut got,
        libc::SYS_kill,
        me,
        libc::SIGUSR1 as i64,
        500,
    );
    check(
        got == want,
        "YMM0-15 survive 500 signal handlers that vzeroall",
    )?;
    say!("avx done");
    Ok(())
}
