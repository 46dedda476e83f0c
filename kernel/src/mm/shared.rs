//! An address space as the processes that use it hold it: shared by
//! CLONE_VM children, locked for every change, with its page-table root
//! readable without the lock.
//!
//! The root is outside the lock because a context switch loads it with
//! interrupts off: a CPU changing the mappings holds the lock while it
//! waits for the others to flush their TLBs (`hal::tlb`), so a switch that
//! spun on the lock there would never answer.

use alloc::sync::Arc;
use hal::addrspace::Root;
use spin::{Mutex, MutexGuard};

use super::Mm;

pub struct SharedMm {
    root: Root,
    mm: Mutex<Mm>,
}

impl SharedMm {
    pub fn new(mm: Mm) -> Arc<SharedMm> {
        Arc::new(SharedMm {
            root: mm.root(),
            mm: Mutex::new(mm),
        })
    }

    /// The address space, for any change or lookup.
    ///
    /// Its holder may be waiting for this CPU to flush its TLB. With
    /// interrupts on, the request's IPI reaches us while we spin; with
    /// them off (a fault on a user page in code that runs so, such as a
    /// new process's first-run hook writing its CLONE_CHILD_SETTID word),
    /// we answer requests ourselves between attempts, so no caller can
    /// deadlock against a shootdown whatever its interrupt state.
    pub fn lock(&self) -> MutexGuard<'_, Mm> {
        if hal::cpu::interrupts_enabled() {
            return self.mm.lock();
        }
        loop {
            if let Some(g) = self.mm.try_lock() {
                return g;
            }
            hal::tlb::serve();
            core::hint::spin_loop();
        }
    }

    /// Its page-table root (valid while this is alive).
    pub fn root(&self) -> Root {
        self.root
    }

    /// Makes these page tables the CPU's.
    pub fn activate(&self) {
        hal::addrspace::activate_root(self.root);
    }
}
