//! TLB shootdown: when page-table entries of an address space lose a
//! translation (unmap, fewer rights, another frame), every other CPU that
//! has that address space loaded must drop what its TLB cached before the
//! frame can be reused.
//!
//! Each CPU publishes the page-table root it has in CR3 ([`LOADED`]): it
//! stores the new root before loading it, so a CPU that changes entries
//! and then reads the roots either sees this CPU (and asks it to flush) or
//! this CPU loads the root after the change and walks the new entries.
//!
//! A request is a generation number per target CPU: the initiator bumps
//! the target's `REQUESTED`, sends [`SHOOTDOWN_VECTOR`] and waits until
//! the target's `DONE` reaches it. The target flushes its whole TLB (a CR3
//! reload, as a context switch does without PCIDs) and publishes the
//! newest generation it read before flushing. No lock is shared between
//! CPUs, and an initiator serves requests sent to it while it waits, so
//! two CPUs shooting at each other cannot deadlock. The rule that keeps
//! the rest deadlock-free is the caller's: never wait for a shootdown
//! while holding a lock that another CPU may spin on with interrupts off.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::gdt::MAX_CPUS;

/// The interrupt vector that asks a CPU to flush its TLB.
pub const SHOOTDOWN_VECTOR: u8 = 0x31;

/// The page-table root each CPU has loaded (0: not known yet).
static LOADED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Flush requests sent to each CPU, and the newest it has served.
static REQUESTED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static DONE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Records that this CPU is about to load `root` into CR3. Must come
/// before the CR3 write (see the module doc for why).
#[inline]
pub(crate) fn publish_loaded(root: u64) {
    // SeqCst: a full barrier between this store and the page walks that
    // follow the CR3 load, paired with the fence in `shootdown`.
    LOADED[crate::percpu::cpu_id() & (MAX_CPUS - 1)].store(root, Ordering::SeqCst);
}

/// Makes every other CPU that has `root` loaded drop its cached
/// translations, and waits until they have. Call after changing the
/// entries (the change must be visible before the roots are read) and
/// before freeing any frame or page table they mapped.
pub fn shootdown(root: u64) {
    let me = crate::percpu::cpu_id();
    // Order the caller's page-table writes before reading other CPUs'
    // roots (Dekker with publish_loaded).
    core::sync::atomic::fence(Ordering::SeqCst);
    let mut waiting = [0u64; MAX_CPUS];
    let mut any = false;
    for (cpu, loaded) in LOADED.iter().enumerate() {
        if cpu == me || loaded.load(Ordering::SeqCst) != root {
            continue;
        }
        let Some(apic) = crate::smp::apic_id(cpu) else {
            continue;
        };
        waiting[cpu] = REQUESTED[cpu].fetch_add(1, Ordering::SeqCst) + 1;
        crate::apic::send_fixed(apic, SHOOTDOWN_VECTOR);
        any = true;
    }
    if !any {
        return;
    }
    for (cpu, &gen) in waiting.iter().enumerate() {
        if gen == 0 {
            continue;
        }
        while DONE[cpu].load(Ordering::Acquire) < gen {
            // A CPU shooting at us at the same time waits for us too.
            serve();
            core::hint::spin_loop();
        }
    }
}

/// Serves flush requests sent to this CPU (the shootdown interrupt's
/// handler; also polled by a CPU waiting for its own shootdown).
pub fn serve() {
    let me = crate::percpu::cpu_id() & (MAX_CPUS - 1);
    let wanted = REQUESTED[me].load(Ordering::SeqCst);
    if DONE[me].load(Ordering::Relaxed) >= wanted {
        return;
    }
    x86_64::instructions::tlb::flush_all();
    DONE[me].fetch_max(wanted, Ordering::Release);
}
