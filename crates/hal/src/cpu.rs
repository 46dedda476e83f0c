//! Small CPU primitives: interrupts on/off, halt, TSC, control registers.

use core::arch::asm;

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects; CR4.TSD is never set by us.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Enables maskable interrupts. A bare `sti` (the x86_64 crate adds a
/// `nop`): the one-instruction interrupt shadow after it is harmless
/// because no caller follows it directly with `cli` (the return-to-user
/// loop does work between the two). It is on every syscall's path.
#[inline]
pub fn enable_interrupts() {
    // SAFETY: enabling interrupts is what the kernel asks for here; no
    // `nomem`, so the compiler keeps memory accesses on their side of it
    // (a lock release, as in the x86_64 crate).
    unsafe { asm!("sti", options(nostack, preserves_flags)) };
}

/// Disables maskable interrupts.
#[inline]
pub fn disable_interrupts() {
    x86_64::instructions::interrupts::disable();
}

/// Whether maskable interrupts are enabled.
#[inline]
pub fn interrupts_enabled() -> bool {
    x86_64::instructions::interrupts::are_enabled()
}

/// Runs `f` with interrupts disabled, restoring the previous state.
#[inline]
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let was_on = interrupts_enabled();
    if was_on {
        disable_interrupts();
    }
    let r = f();
    if was_on {
        enable_interrupts();
    }
    r
}

/// Enables interrupts and halts until the next one, atomically (sti; hlt).
#[inline]
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
}

/// Halts forever with interrupts off.
pub fn halt_forever() -> ! {
    loop {
        disable_interrupts();
        x86_64::instructions::hlt();
    }
}

/// The faulting address of the last page fault.
#[inline]
pub fn cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Reads a model-specific register.
#[inline]
pub fn rdmsr(msr: u32) -> u64 {
    // SAFETY: callers in this crate only read architectural MSRs that exist
    // on every x86_64 CPU we boot on.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
}

/// Writes a model-specific register.
///
/// # Safety
/// Writing an MSR can change the execution environment arbitrarily.
#[inline]
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) }
}

/// CPUID leaf `leaf`, subleaf `sub`: (eax, ebx, ecx, edx).
#[inline]
pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Current frame pointer (for backtraces).
#[inline(always)]
pub fn frame_pointer() -> u64 {
    let rbp: u64;
    // SAFETY: reading rbp has no side effects.
    unsafe { asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags)) };
    rbp
}

/// A hardware random number, if the CPU has RDRAND and it succeeds.
pub fn rdrand() -> Option<u64> {
    let (_, _, ecx, _) = cpuid(1, 0);
    if ecx & (1 << 30) == 0 {
        return None;
    }
    let mut v = 0u64;
    // SAFETY: RDRAND is present (CPUID.1:ECX.30); it only writes v.
    let ok = unsafe { core::arch::x86_64::_rdrand64_step(&mut v) };
    (ok == 1).then_some(v)
}

/// Flushes the whole TLB, global entries included (CR4.PGE off and on
/// again), which a CR3 reload does not.
pub fn flush_tlb_all_global() {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let cr4 = Cr4::read();
    if !cr4.contains(Cr4Flags::PAGE_GLOBAL) {
        x86_64::instructions::tlb::flush_all();
        return;
    }
    // SAFETY: toggling PGE only drops cached translations; the page tables
    // are unchanged, so the running code and its stack stay mapped.
    unsafe {
        Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL);
        Cr4::write(cr4);
    }
}

/// Whether CR0.WP is set (ring 0 honours read-only pages).
pub fn write_protect_on() -> bool {
    use x86_64::registers::control::{Cr0, Cr0Flags};
    Cr0::read().contains(Cr0Flags::WRITE_PROTECT)
}
