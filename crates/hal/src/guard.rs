//! Guard pages under every kernel stack, and the report of an overflow.
//!
//! Every stack the kernel runs on has an unmapped 4 KiB page right below
//! its lowest byte, so running off its end faults at once instead of
//! silently overwriting whatever lies below:
//! - the boot stack (CPU 0's idle context) and the IST stacks of every CPU
//!   live in `.bss`; `paging::init` leaves their guard pages out of the
//!   kernel image mapping ([`is_static_guard`]);
//! - task kernel stacks and the APs' idle stacks come from the heap
//!   ([`alloc_stack`]): one page-aligned block whose first page is taken
//!   out of the direct map (the heap's part of the direct map is built with
//!   4 KiB pages for this) and put back when the stack is freed.
//!
//! Every exception uses an IST stack, so the overflow's #PF is delivered
//! on a fresh stack (IST1) and the trap dispatcher recognises the address
//! as a guard page before any kernel code runs; a fault while delivering
//! one (#DF, IST2) is checked the same way. The report names the stack
//! and exits QEMU with the failure status ([`describe`]).
//!
//! TLB: taking a guard page out of the direct map flushes it on this CPU,
//! but another CPU may still cache the page from when it was ordinary heap
//! memory. So taking one out bumps [`GUARD_GEN`], and a CPU about to run a
//! task whose stack is newer than its last full flush flushes everything
//! (global entries included) first ([`sync_cpu`], called on every switch
//! in): a task's stack is made before the task can be queued anywhere.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::gdt::MAX_CPUS;
use crate::paging::PAGE_SIZE;

/// Bumped every time a guard page leaves the direct map.
static GUARD_GEN: AtomicU64 = AtomicU64::new(0);
/// The newest generation each CPU has flushed for.
static SEEN_GEN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Stacks from [`alloc_stack`] not yet freed.
static STACKS: AtomicU64 = AtomicU64::new(0);

/// Kernel stacks (tasks' and APs') currently allocated.
pub fn stacks_live() -> u64 {
    STACKS.load(Ordering::Relaxed)
}

/// Bottom (guard page) of each AP's idle stack, by CPU index (0: none).
static AP_GUARD: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

extern "C" {
    static boot_kernel_stack_guard: u8;
}

/// The guard page of the boot stack.
pub fn boot_guard() -> u64 {
    // SAFETY: linker symbol from entry.S; only its address is used.
    unsafe { &boot_kernel_stack_guard as *const u8 as u64 }
}

/// Whether `va` (a page of the kernel image) is a guard page that the
/// image mapping must leave out.
pub(crate) fn is_static_guard(va: u64) -> bool {
    va == boot_guard() || crate::gdt::ist_guard_at(va).is_some()
}

/// A heap block whose first page is a guard page: `len` usable bytes
/// (a multiple of the page size) start one page above the returned base.
/// None when the heap cannot give one.
pub(crate) fn alloc_stack(len: usize) -> Option<u64> {
    if !crate::heap::has_room(len + PAGE_SIZE as usize) {
        return None;
    }
    let layout =
        core::alloc::Layout::from_size_align(len + PAGE_SIZE as usize, PAGE_SIZE as usize).ok()?;
    // SAFETY: a non-zero-sized layout; the block is ours until free_stack.
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return None;
    }
    let base = p as u64;
    crate::paging::set_direct_present(base, false);
    GUARD_GEN.fetch_add(1, Ordering::SeqCst);
    STACKS.fetch_add(1, Ordering::Relaxed);
    Some(base)
}

/// Gives back a block from [`alloc_stack`] (its guard page mapped again
/// first: the heap writes its own records into free memory).
pub(crate) fn free_stack(base: u64, len: usize) {
    crate::paging::set_direct_present(base, true);
    let layout = core::alloc::Layout::from_size_align(len + PAGE_SIZE as usize, PAGE_SIZE as usize)
        .expect("layout made by alloc_stack");
    // SAFETY: base came from alloc_stack with this same layout and its
    // guard page is mapped again; nothing runs on the stack any more (the
    // owner frees it only after switching away for good).
    unsafe { alloc::alloc::dealloc(base as *mut u8, layout) };
    STACKS.fetch_sub(1, Ordering::Relaxed);
}

/// Records AP `cpu`'s idle stack guard for the overflow report.
pub(crate) fn note_ap_stack(cpu: usize, guard: u64) {
    if let Some(slot) = AP_GUARD.get(cpu) {
        slot.store(guard, Ordering::Relaxed);
    }
}

/// Flushes this CPU's whole TLB (global entries too) if a guard page left
/// the direct map since its last flush. Called before running a task.
pub(crate) fn sync_cpu(cpu: usize) {
    let gen = GUARD_GEN.load(Ordering::SeqCst);
    let Some(seen) = SEEN_GEN.get(cpu) else {
        return;
    };
    if seen.load(Ordering::Relaxed) == gen {
        return;
    }
    crate::cpu::flush_tlb_all_global();
    seen.store(gen, Ordering::Relaxed);
}

const IST_NAMES: [&str; 5] = [
    "exceptions",
    "double fault",
    "NMI",
    "machine check",
    "interrupts",
];

/// If `addr` lies in a kernel stack's guard page, writes which stack that
/// is and returns true.
pub fn describe(addr: u64, out: &mut impl Write) -> bool {
    let page = addr & !(PAGE_SIZE - 1);
    if page == boot_guard() {
        let _ = write!(out, "the boot stack (CPU 0's idle context)");
        return true;
    }
    if let Some((cpu, ist)) = crate::gdt::ist_guard_at(page) {
        let _ = write!(
            out,
            "CPU {cpu}'s IST{} stack ({})",
            ist + 1,
            IST_NAMES.get(ist).copied().unwrap_or("?")
        );
        return true;
    }
    for (cpu, g) in AP_GUARD.iter().enumerate() {
        if g.load(Ordering::Relaxed) == page && page != 0 {
            let _ = write!(out, "CPU {cpu}'s idle stack");
            return true;
        }
    }
    if !crate::paging::is_direct_guard(page) {
        return false;
    }
    let top = crate::percpu::current_kstack_top();
    let size = crate::context::KERNEL_STACK_SIZE as u64;
    if top >= size + PAGE_SIZE && page == top - size - PAGE_SIZE {
        let _ = write!(
            out,
            "the kernel stack of the task running on CPU {} (stack {:#x}-{top:#x})",
            crate::percpu::cpu_id(),
            top - size
        );
    } else {
        let _ = write!(out, "a task's kernel stack (guard page {page:#x})");
    }
    true
}

/// Runs `f` on `stack` (its top), then comes back to the caller's stack.
/// Self tests use it to overflow a task stack on purpose.
pub fn run_on_stack(stack: &crate::context::KernelStack, f: extern "C" fn()) {
    let top = stack.top();
    // SAFETY: `top` is the 16-aligned top of a live kernel stack nothing
    // else runs on; r12 (callee-saved, so kept by `f`) holds our stack
    // pointer across the call; interrupts and faults arrive on IST stacks,
    // so they never push onto either stack.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {top}",
            "call {f}",
            "mov rsp, r12",
            top = in(reg) top,
            f = in(reg) f,
            out("r12") _,
            clobber_abi("C"),
        );
    }
}
