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
    pub fn lock(&self) -> MutexGuard<'_, Mm> {
        self.mm.lock()
    }

    /// Its page-table root (valid while this is alive).
    pub fn root(&self) -> Root {
        self.root
    }

    /// Makes these page tables the CPU's.
    pub fn activate(&self) {
        hal::addrspace::activate_root(self.root);
    }

    pub fn into_inner(self) -> Mm {
        self.mm.into_inner()
    }
}
