//! A process's place in a run queue, and the number that says whether the
//! place is still valid.
//!
//! Every process has a ticket number: even while it waits in exactly one
//! run queue (the entry there holds that number), odd otherwise (running,
//! asleep, or being moved). Whoever takes a process out of a queue, to run
//! it or to move it, first *claims* the entry: a compare-exchange of the
//! number from the entry's (even) value to the next (odd) one. Only one
//! claim of an entry can succeed, so a process is never run or moved twice
//! from the same place, even when a torus that failed (or was only
//! suspected of failing) still holds an entry its successor has adopted
//! without touching that torus's queue: the old entry's claim fails and
//! it is dropped as stale.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::Process;

/// A run-queue entry: the process and the ticket number it was queued with.
pub struct Ticket {
    pub p: Arc<Process>,
    number: u64,
}

impl Ticket {
    /// Issues the entry for queueing `p` (which must be in no queue: its
    /// number is odd) and makes its number even.
    pub fn issue(p: Arc<Process>) -> Ticket {
        let n = p.ticket.fetch_add(1, Ordering::AcqRel) + 1;
        debug_assert!(n.is_multiple_of(2), "queued twice");
        Ticket { p, number: n }
    }

    /// Whether this entry is still the process's place (nobody claimed it).
    pub fn is_valid(&self) -> bool {
        self.p.ticket.load(Ordering::Acquire) == self.number
    }

    /// Takes the process out of its place: Some if this entry was still
    /// valid (the caller now holds the process outside any queue), None if
    /// it was stale.
    pub fn claim(self) -> Option<Arc<Process>> {
        self.p
            .ticket
            .compare_exchange(
                self.number,
                self.number + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
            .then_some(self.p)
    }
}

/// Claims `p` if it waits in torus `t`'s queue, without that queue's lock
/// (adoption). Fails if it is in no queue, in another one, or someone
/// claimed it first. The torus is read after the number: if the number is
/// still the same at the claim, it is the torus of the queueing that
/// issued it (`set_torus` comes before `issue`).
pub fn claim_queued_on(p: &Process, t: usize) -> bool {
    let n = p.ticket.load(Ordering::Acquire);
    n.is_multiple_of(2)
        && p.torus() == t
        && p.ticket
            .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
}
