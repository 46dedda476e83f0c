//! Diffusion load balancing by migration: offer, accept, commit, forget
//! (docs/braid.md §7). A torus only ever gives to its successor, so the
//! handshake rides on the projection (offer, commit) and the ack (accept,
//! durable) of one ring link.

use crate::event::Time;
use crate::projection::{Offer, Op, Projection};
use crate::table::{Pid, ProcRecord, Slot, TorusId};
use crate::torus::Torus;

impl Torus {
    /// Pick a process to offer to the successor, if balancing calls for it.
    pub(crate) fn choose_offer(&mut self, now: Time) -> Option<Offer> {
        self.pending_offer = None;
        let succ = self.view.successor(self.id)?;
        let their = self.succ_load?;
        let ready = !self.joining
            && self.out.target == Some(succ)
            && self.out.synced()
            && self.out.inflight.is_empty()
            && !self.succ_no_migrate
            && self.lease_valid(now);
        let mine = self.table.total_load();
        if !ready || mine <= their + self.cfg.balance_threshold {
            return None;
        }
        let diff = mine - their;
        let best = self
            .table
            .iter()
            .filter(|(r, s)| {
                *s == Slot::Owned
                    && u64::from(r.weight) < diff
                    && !self.pinned.contains_key(&r.pid)
                    && !self.held(r.pid)
            })
            .min_by_key(|(r, _)| (u64::from(r.weight).abs_diff(diff / 2), r.pid))
            .map(|(r, _)| *r)?;
        self.pending_offer = Some(best.pid);
        Some(Offer {
            pid: best.pid,
            weight: best.weight,
            class: best.class,
        })
    }

    /// As the successor: accept at most one offer that leaves us no heavier
    /// than the giver, or a real-time one the giver cannot serve.
    pub(crate) fn consider_offers(&self, now: Time, p: &Projection) -> u64 {
        if self.joining || !self.lease_valid(now) || self.view.predecessor(self.id) != Some(p.from)
        {
            return 0;
        }
        let theirs: u64 = p.load.iter().map(|&l| u64::from(l)).sum();
        let mine = self.table.total_load();
        let demand = self.inbound.get(&p.from).is_some_and(|i| i.priority_demand);
        for o in p.offers() {
            let w = u64::from(o.weight);
            if mine + w <= theirs.saturating_sub(w) || (o.class == 0 && demand) {
                return o.pid;
            }
        }
        0
    }

    /// The successor accepted: append the commit point.
    pub(crate) fn commit_offer(&mut self, now: Time, to: TorusId, pid: Pid) {
        if self.pending_offer != Some(pid)
            || !self.lease_valid(now)
            || !self.out.inflight.is_empty()
        {
            return;
        }
        self.pending_offer = None;
        let Some(&(rec, Slot::Owned)) = self.table.get(pid) else {
            return;
        };
        if self.pinned.contains_key(&pid) || self.held(pid) {
            return;
        }
        let rec = ProcRecord {
            gen: rec.gen + 1,
            ..rec
        };
        self.table.set(rec, Slot::InFlight(to));
        self.progress.remove(&pid);
        let seq = self.out.append(Op::MigrateOut, to, rec);
        self.out.inflight.insert(pid, (to, seq));
        self.stats.migrations_out += 1;
    }

    /// Forget migrations the successor reports durable.
    pub(crate) fn complete_migrations(&mut self, from: TorusId) {
        let durable = self.out.durable;
        let done: alloc::vec::Vec<Pid> = self
            .out
            .inflight
            .iter()
            .filter(|(_, &(to, seq))| to == from && seq != 0 && seq <= durable)
            .map(|(p, _)| *p)
            .collect();
        for pid in done {
            self.out.inflight.remove(&pid);
            self.table.remove(pid);
            self.out.append(
                Op::Forget,
                0,
                ProcRecord {
                    pid,
                    ..ProcRecord::default()
                },
            );
        }
    }
}

impl Torus {
    /// The giver `from` no longer holds the migrations it made to us (it
    /// forgot them, or it is gone): release what it pinned here.
    pub(crate) fn unpin_from(&mut self, from: TorusId) {
        let me = self.id;
        let inbound = &self.inbound;
        self.pinned.retain(|pid, giver| {
            *giver != from
                || inbound
                    .get(&from)
                    .and_then(|i| i.mirror.get(*pid))
                    .is_some_and(|&(_, s)| s == Slot::InFlight(me))
        });
    }
}
