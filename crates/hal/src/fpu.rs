//! Which instruction saves the user's FPU state: FXSAVE (x87 and SSE), or
//! XSAVE with AVX enabled when the CPU has both. Programs test CPUID for
//! AVX and use it (coreutils 9.1's cksum checks the CPUID bit alone, not
//! XCR0), so an OS that leaves XCR0 at x87|SSE makes them die of #UD; and
//! once AVX is on, the upper halves of the YMM registers are user state
//! that must follow each task, which FXSAVE does not cover.
//!
//! When the state is saved. Every entry from user mode (system call,
//! interrupt, exception) saves only XMM0-15 into the task's area (16
//! stores instead of an XSAVE of 832 bytes, which under TCG was two thirds
//! of a null system call), because that is all of the FPU state kernel
//! code can change: the kernel is built for baseline x86_64 and contains
//! no x87, MMX or VEX instruction (legacy SSE leaves the upper halves of
//! the YMM registers alone) and no SSE floating-point arithmetic,
//! conversion or comparison (so MXCSR never changes in the kernel), which
//! the test suite checks on the kernel binary (`kernel_fpu_instructions`).
//! Until the return, the user's x87 and AVX state and MXCSR stay in the
//! registers and the per-CPU `fpu_live` flag is 1. Whatever needs the
//! whole state in the area first calls [`sync_current`], which puts the
//! user's XMM registers back and saves everything: a context switch
//! (before the outgoing context is published, so no other CPU can resume
//! the task with its state still here), and the task's own signal
//! delivery, rt_sigreturn, fork and execve (through
//! [`crate::percpu::FpuArea`]). The return to user mode then restores the
//! whole area; otherwise only XMM. This is Linux's reason for not saving
//! FPU state on system calls, in the form a kernel that uses SSE itself
//! can take.

use core::sync::atomic::{AtomicU32, Ordering};

use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::xcontrol::{XCr0, XCr0Flags};

/// XCR0's components the entry paths save and restore with XSAVE: 0 when
/// FXSAVE is used, else x87|SSE|AVX. Read by the entry assembly (regs.S).
pub static XSAVE_MASK: AtomicU32 = AtomicU32::new(0);

/// The components enabled when XSAVE is used: x87, SSE, AVX.
const MASK: u32 = 0b111;

/// Bytes of XSAVE state for [`MASK`] (standard format: the 512-byte
/// legacy area, the 64-byte header, AVX's 256 bytes).
pub const XSTATE_SIZE: usize = 832;

/// Enables XSAVE and AVX on this CPU if it has them (each CPU sets its
/// own CR4 and XCR0, before any task runs there). The first CPU decides
/// [`XSAVE_MASK`]; the others are the same model.
pub fn init_cpu(first: bool) {
    let (_, _, ecx, _) = crate::cpu::cpuid(1, 0);
    let (xsave, avx) = (ecx & (1 << 26) != 0, ecx & (1 << 28) != 0);
    if !xsave || !avx || crate::cpu::cpuid(0xd, 0).0 & MASK != MASK {
        return;
    }
    if !first && XSAVE_MASK.load(Ordering::Relaxed) == 0 {
        return;
    }
    // SAFETY: CR4.OSXSAVE and then XCR0 = x87|SSE|AVX, all supported per
    // CPUID above; the kernel itself uses only SSE, whose state FXSAVE on
    // the kernel-mode interrupt path still covers.
    unsafe {
        Cr4::update(|f| f.insert(Cr4Flags::OSXSAVE));
        XCr0::write(XCr0Flags::X87 | XCr0Flags::SSE | XCr0Flags::AVX);
    }
    // CPUID 0xd.0 EBX: the XSAVE area size for what XCR0 enables now.
    if first && crate::cpu::cpuid(0xd, 0).1 as usize <= XSTATE_SIZE {
        XSAVE_MASK.store(MASK, Ordering::Relaxed);
    }
}

/// The components saved (0: FXSAVE only).
pub fn mask() -> u32 {
    XSAVE_MASK.load(Ordering::Relaxed)
}

/// Bytes of user FPU state a signal frame carries: the XSAVE area, or the
/// 512-byte FXSAVE area.
pub fn state_size() -> usize {
    if mask() != 0 {
        XSTATE_SIZE
    } else {
        512
    }
}

/// Completes the running task's FPU area if its entry from user mode saved
/// only the XMM registers (see the module comment): the user's
/// XMM values go back into the registers, which then hold exactly the
/// user's state, and all of it is saved. Afterwards the area is complete
/// and the return to user mode restores it whole. Never inlined: one copy,
/// which the kernel binary check (`kernel_fpu_instructions`) recognises.
#[inline(never)]
pub fn sync_current() {
    crate::cpu::without_interrupts(|| {
        if !crate::percpu::fpu_live() {
            return;
        }
        let area = crate::percpu::current_fpu_area();
        let mask = mask();
        // SAFETY: `area` is the running task's FPU area (per-CPU field
        // set by set_current_task), 64-aligned and FPU_AREA_SIZE bytes,
        // written only by this CPU while the task runs here; interrupts
        // are off, so no switch runs in between. The XMM registers are
        // declared clobbered; x87 and AVX registers are not used by
        // compiled kernel code (module comment).
        unsafe {
            core::arch::asm!(
                "movaps xmm0, [{a} + 160]",
                "movaps xmm1, [{a} + 176]",
                "movaps xmm2, [{a} + 192]",
                "movaps xmm3, [{a} + 208]",
                "movaps xmm4, [{a} + 224]",
                "movaps xmm5, [{a} + 240]",
                "movaps xmm6, [{a} + 256]",
                "movaps xmm7, [{a} + 272]",
                "movaps xmm8, [{a} + 288]",
                "movaps xmm9, [{a} + 304]",
                "movaps xmm10, [{a} + 320]",
                "movaps xmm11, [{a} + 336]",
                "movaps xmm12, [{a} + 352]",
                "movaps xmm13, [{a} + 368]",
                "movaps xmm14, [{a} + 384]",
                "movaps xmm15, [{a} + 400]",
                "test eax, eax",
                "jz 2f",
                "xsave64 [{a}]",
                "jmp 3f",
                "2:",
                "fxsave64 [{a}]",
                "3:",
                a = in(reg) area,
                in("eax") mask,
                in("edx") 0u32,
                out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                options(nostack),
            );
        }
        crate::percpu::set_fpu_live(false);
    });
}
