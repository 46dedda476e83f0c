//! Which instruction saves the user's FPU state: FXSAVE (x87 and SSE), or
//! XSAVE with AVX enabled when the CPU has both. Programs test CPUID for
//! AVX and use it (coreutils 9.1's cksum checks the CPUID bit alone, not
//! XCR0), so an OS that leaves XCR0 at x87|SSE makes them die of #UD; and
//! once AVX is on, the upper halves of the YMM registers are user state
//! that must follow each task, which FXSAVE does not cover.

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
