//! The invariants of docs/braid.md §10, checked against the simulator's
//! god's-eye view of every torus.

use super::Sim;
use crate::event::Time;
use crate::table::{Pid, Slot, Table};
use crate::torus::Torus;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;

/// An invariant violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// Virtual time it was seen.
    pub time: u64,
    /// What was wrong.
    pub detail: String,
}

/// A god's-eye view of every torus and of what the host saw committed:
/// what the invariants are checked on. The simulator and the model checker
/// (`crate::model`) build one from their own state.
pub(crate) struct World<'a> {
    /// Every torus by id (`None`: down).
    pub tori: &'a [Option<Torus>],
    /// Now.
    pub time: Time,
    /// Processes whose spawn (or resumption) is committed.
    pub committed: &'a BTreeSet<Pid>,
    /// Committed processes whose exit was asked for.
    pub exiting: &'a BTreeSet<Pid>,
    /// Processes whose exit is committed.
    pub exited: &'a BTreeSet<Pid>,
}

impl Sim {
    pub(crate) fn world(&self) -> World<'_> {
        World {
            tori: &self.tori,
            time: self.time,
            committed: &self.committed,
            exiting: &self.exiting,
            exited: &self.exited,
        }
    }

    /// Invariant 1 (every step): no process runnable on two tori at once.
    pub fn check_exactly_once(&self) -> Result<(), Violation> {
        self.world().check_exactly_once()
    }

    /// Invariant 2 (every step): every committed live process is held by a
    /// live torus or recoverable from a live torus's mirror.
    pub fn check_no_loss(&self) -> Result<(), Violation> {
        self.world().check_no_loss()
    }

    /// Invariant 4 (every step): incremental digests equal recomputed ones.
    pub fn check_digests(&self) -> Result<(), Violation> {
        self.world().check_digests()
    }

    /// Invariants at quiescence (no faults for a while): one view, nothing
    /// in flight, every committed live process owned exactly once, synced
    /// mirrors equal their sources, and the load balanced.
    pub fn check_quiescent(&self) -> Result<(), Violation> {
        self.world().check_quiescent()
    }

    /// Invariant 1 at quiescence: every committed live process is owned by
    /// exactly one torus (an exiting one by at most one).
    pub fn check_owned_once(&self) -> Result<(), Violation> {
        self.world().check_owned_once()
    }

    /// Invariant 5: load imbalance under the bound after settling.
    pub fn check_balance(&self) -> Result<(), Violation> {
        self.world().check_balance()
    }
}

impl World<'_> {
    fn violation(&self, invariant: &'static str, detail: String) -> Violation {
        Violation {
            invariant,
            time: self.time,
            detail,
        }
    }

    /// Every live torus is a member with the same view, which holds
    /// exactly the live tori, and its successor holds a synced mirror of
    /// it: one ring.
    pub fn one_ring(&self) -> bool {
        let live: alloc::vec::Vec<&Torus> = self.tori.iter().flatten().collect();
        let view = live.first().map(|t| t.view());
        live.iter()
            .all(|t| Some(t.view()) == view && !t.is_joining() && t.replication_synced())
            && view.is_some_and(|v| v.len() as usize == live.len())
    }

    /// Invariant 1 (every step): no process runnable on two tori at once.
    ///
    /// Runs after every simulated step, so it looks each owned pid up in
    /// the tori before it instead of building a map (the soak's cost).
    pub fn check_exactly_once(&self) -> Result<(), Violation> {
        let leased: alloc::vec::Vec<&Torus> = self
            .tori
            .iter()
            .flatten()
            .filter(|t| t.lease_valid(self.time))
            .collect();
        for (i, t) in leased.iter().enumerate() {
            for (r, s) in t.table().iter() {
                if s != Slot::Owned {
                    continue;
                }
                if let Some(other) = leased[..i].iter().find(|o| o.table().owns(r.pid)) {
                    return Err(self.violation(
                        "exactly-once",
                        format!("pid {:#x} owned by {} and {}", r.pid, other.id(), t.id()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Invariant 2 (every step): every committed live process is held by a
    /// live torus or recoverable from a live torus's mirror.
    pub fn check_no_loss(&self) -> Result<(), Violation> {
        let held: alloc::vec::Vec<&Table> = self
            .tori
            .iter()
            .flatten()
            .flat_map(|t| core::iter::once(t.table()).chain(t.mirrors().map(|(_, m)| m)))
            .collect();
        for &pid in self.committed {
            if !self.exiting.contains(&pid) && !held.iter().any(|m| m.get(pid).is_some()) {
                return Err(self.violation("no-loss", format!("committed pid {pid:#x} is nowhere")));
            }
        }
        Ok(())
    }

    /// Invariant 4 (every step): incremental digests equal recomputed ones.
    pub fn check_digests(&self) -> Result<(), Violation> {
        for t in self.tori.iter().flatten() {
            if t.table().digest() != t.table().recompute_digest() {
                return Err(
                    self.violation("digest", format!("torus {} table digest drifted", t.id()))
                );
            }
            for (x, m) in t.mirrors() {
                if m.digest() != m.recompute_digest() {
                    return Err(
                        self.violation("digest", format!("torus {} mirror of {x} drifted", t.id()))
                    );
                }
            }
        }
        Ok(())
    }

    /// Invariants at quiescence (no faults for a while): one view, nothing
    /// in flight, every committed live process owned exactly once, synced
    /// mirrors equal their sources, and the load balanced.
    pub fn check_quiescent(&self) -> Result<(), Violation> {
        let live: alloc::vec::Vec<_> = self.tori.iter().flatten().collect();
        let view = live.first().map(|t| t.view());
        for t in &live {
            if Some(t.view()) != view || t.is_joining() {
                return Err(self.violation(
                    "quiescent-view",
                    format!("torus {} view {:?} vs {:?}", t.id(), t.view(), view),
                ));
            }
            if t.inflight() != 0 {
                return Err(self.violation(
                    "quiescent-inflight",
                    format!("torus {} has migrations in flight", t.id()),
                ));
            }
            if let Some(s) = t.view().successor(t.id()) {
                let succ = self.tori[usize::from(s)].as_ref();
                let m = succ.and_then(|st| st.inbound.get(&t.id()));
                // A checkpoint may be on the wire: compare only when the
                // mirror has applied the source's whole log.
                let same = |i: &crate::verify::Inbound| {
                    i.session == t.out.session && i.applied == t.log_head()
                };
                if !m.is_some_and(|i| {
                    i.synced && (!same(i) || i.mirror.digest() == t.table().digest())
                }) {
                    return Err(
                        self.violation("digest", format!("mirror of {} at {} differs", t.id(), s))
                    );
                }
            }
        }
        self.check_owned_once()?;
        self.check_balance()
    }

    /// Invariant 1 at quiescence: every committed live process is owned by
    /// exactly one torus (an exiting one by at most one).
    pub fn check_owned_once(&self) -> Result<(), Violation> {
        let live: alloc::vec::Vec<_> = self.tori.iter().flatten().collect();
        for &pid in self.committed {
            let n = live.iter().filter(|t| t.table().owns(pid)).count();
            let ok = if self.exiting.contains(&pid) {
                n <= 1
            } else {
                n == 1
            };
            if !ok {
                return Err(self.violation(
                    "exactly-once",
                    format!("pid {pid:#x} owned {n} times at quiescence"),
                ));
            }
        }
        // An exit, once committed, is final: the process never comes back
        // (e.g. as a re-sent migration of a copy resumed elsewhere).
        for &pid in self.exited {
            if live.iter().any(|t| t.table().get(pid).is_some()) {
                return Err(self.violation(
                    "exactly-once",
                    format!("pid {pid:#x} exited but is back at quiescence"),
                ));
            }
        }
        Ok(())
    }

    /// Invariant 5: load imbalance under the bound after settling.
    pub fn check_balance(&self) -> Result<(), Violation> {
        let loads: alloc::vec::Vec<u64> = self
            .tori
            .iter()
            .flatten()
            .map(|t| t.table().total_load())
            .collect();
        let (Some(&max), Some(&min)) = (loads.iter().max(), loads.iter().min()) else {
            return Ok(());
        };
        let n = loads.len() as u64;
        // Diffusion stops when a neighbour is within the threshold or no
        // process fits the gap, so differences add up around the ring.
        let threshold = crate::torus::Config::default().balance_threshold;
        let bound = n.saturating_sub(1) * (threshold + 2 * super::MAX_WEIGHT);
        if max - min > bound {
            return Err(self.violation(
                "balance",
                format!("loads {loads:?} exceed imbalance bound {bound}"),
            ));
        }
        Ok(())
    }
}
