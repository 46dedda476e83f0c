//! Failure detection, reconstruction and fencing (docs/braid.md §6, §8).
//!
//! The successor of a torus is its failure detector and holds its replica,
//! so the torus that notices a failure is the one that can repair it, in
//! the same step, without asking anyone.

use crate::event::{Corrective, Time};
use crate::projection::Op;
use crate::replication::Note;
use crate::table::{ProcRecord, Slot, TorusId};
use crate::torus::{Torus, Transport};

/// Silence, in detection timeouts, after which a predecessor whose replica
/// we do not hold is removed anyway (docs/braid.md §6).
pub(crate) const ORPHAN_FACTOR: u64 = 4;

impl Torus {
    /// Declare the predecessor failed if it has been silent for `K·I_max`.
    pub(crate) fn detect_failure(&mut self, now: Time, tx: &mut impl Transport) {
        // A torus without a lease may be the one cut off: it must not judge
        // others, or an isolated torus would remove the healthy ring.
        if !self.lease_valid(now) {
            return;
        }
        let Some(pred) = self.view.predecessor(self.id) else {
            return;
        };
        // Normally only the holder of the predecessor's replica judges it:
        // a predecessor that has not yet switched its replication to us (it
        // is still draining migrations to its old successor after we
        // joined, or has not re-formed the ring after a failure) has its
        // state elsewhere, and declaring it failed would resume nothing
        // while fencing it: committed processes would be lost.
        // A predecessor that replicates elsewhere still heartbeats us, so
        // only one silent for much longer (an orphan: its replica holder
        // failed too, a double failure) is removed without a replica, so
        // that the ring re-forms.
        let orphan = !self.replica_current(pred);
        let (last, timeout) = if !orphan {
            let last = self.inbound.get(&pred).map_or(now, |i| i.last_arrival);
            (last, self.cfg.detect_timeout() + self.detect_grace(now))
        } else {
            let last = self
                .inbound
                .get(&pred)
                .filter(|i| i.heard())
                .map_or(self.pred_since, |i| i.last_arrival.max(self.pred_since));
            (last, ORPHAN_FACTOR * self.cfg.detect_timeout())
        };
        // The silence must have been observed while connected: our own
        // successor has acked a projection we sent at least `D − I_max`
        // after the predecessor's last arrival. A torus that was cut off
        // itself (its lease may outlive the cut by up to `L`) never blames
        // a predecessor whose silence it caused or overlapped.
        let acked_send = self.lease_end.saturating_sub(self.cfg.lease());
        let observed = last + timeout - self.cfg.i_max;
        if now.saturating_sub(last) > timeout && acked_send >= observed {
            if orphan {
                self.remove_orphan(now, pred, tx);
            } else {
                self.declare_failed(now, pred, tx);
            }
        }
    }

    /// Remove a predecessor silent for `4·D` whose replica we do not hold
    /// (docs/braid.md §6, orphan rule). If we resume nothing of it, its
    /// replica may be the one its successor kept when we fenced that
    /// successor (a double failure), whose new incarnation may ask to join
    /// only now: remember `x` for a late hand-over (§8), and keep the
    /// adopted set (what we resumed of that successor) to tell its
    /// re-sent migrations apart.
    fn remove_orphan(&mut self, now: Time, x: TorusId, tx: &mut impl Transport) {
        let adopted = self.adopted.clone();
        let wait = self.adopted_wait;
        let v = self.view.without(x);
        self.adopt_view(now, v);
        let inb = self.inbound.remove(&x);
        // An incarnation of `x` that came back after an earlier orphan
        // removal is the one removed now (if we heard it, it has a
        // tombstone now).
        self.orphan_back.remove(&x);
        if self.resume(now, x, inb, None, tx) == 0 {
            self.orphans |= 1 << x;
            self.adopted = adopted;
            // `x` sends no snapshot: only a late hand-over (or a later
            // reconstruction) releases the set, unless we were already
            // waiting for another predecessor's snapshot.
            self.adopted_wait = wait.or(Some(x));
        }
    }

    /// A gap of `gap` between two arrivals of the predecessor's
    /// projections, or between two of our ticks: what exceeds the longest
    /// interval is lateness.
    pub(crate) fn note_lateness(&mut self, now: Time, gap: u64) {
        if self.cfg.detect_grace_max > 0 && gap > self.cfg.i_max {
            self.lateness.note(now, gap - self.cfg.i_max);
        }
    }

    /// The extra wait before a silent predecessor is declared failed
    /// (none when `detect_grace_max` is 0: the lateness is clamped to it).
    fn detect_grace(&self, now: Time) -> u64 {
        self.lateness.wait(now)
    }

    /// Remove `x` from the view and resume its committed processes here
    /// from the mirror.
    pub(crate) fn declare_failed(&mut self, now: Time, x: TorusId, tx: &mut impl Transport) {
        let v = self.view.without(x);
        self.adopt_view(now, v);
        let inb = self.inbound.remove(&x);
        self.resume(now, x, inb, None, tx);
        // `x` may be alive (a false suspicion) and may have resumed its own
        // failed predecessor shortly before, with our mirror of it behind:
        // then its new incarnation takes over what it resumed, and we must
        // still tell apart what we resumed of `x` (§8). Keep the adopted
        // set until `x`'s next incarnation has done so (forever if none
        // comes: memory only).
        self.adopted_wait = Some(x);
    }

    /// Resume `x`'s committed processes from our mirror of it (if any),
    /// once `x` is out of the view; returns how many. `redirect`: the
    /// mirror is a replica kept from our previous incarnation, and
    /// everything in it becomes an in-flight migration to `redirect`, our
    /// successor (docs/braid.md §8, hand-over).
    fn resume(
        &mut self,
        now: Time,
        x: TorusId,
        inb: Option<crate::verify::Inbound>,
        redirect: Option<TorusId>,
        tx: &mut impl Transport,
    ) -> usize {
        let mut resumed = 0;
        let mut held = false;
        if let Some(inb) = inb {
            let dead = self.fenced.entry(x).or_insert(inb.incarnation);
            *dead = (*dead).max(inb.incarnation);
            for (rec, slot) in inb.mirror.iter() {
                let wanted = match slot {
                    Slot::Owned => true,
                    // Installed by us when we applied the migration, or,
                    // in a kept replica, by our previous incarnation,
                    // whose table our successor resumed if that
                    // incarnation's Upsert had reached it and nobody holds
                    // otherwise (§7).
                    Slot::InFlight(t) if t == self.id => redirect.is_some(),
                    Slot::InFlight(t) => !self.view.contains(t),
                };
                if !wanted || self.table.get(rec.pid).is_some() {
                    continue;
                }
                resumed += 1;
                if let Some(s) = redirect {
                    // Our successor may hold some of these already: what
                    // it resumed of our previous incarnation, and, if it
                    // removed `x` as an orphan before we joined, the
                    // migrations to `x` that `x`'s predecessor re-sent to
                    // it. Only it can tell, so everything goes to it as a
                    // migration, which it installs unless it owns or
                    // adopted it (§7). Remembered here, so that a late
                    // re-sent copy of a migration to `x` from our own
                    // predecessor is dropped once this one is gone.
                    self.table.set(*rec, Slot::InFlight(s));
                    self.out.inflight.insert(rec.pid, (s, 0));
                    self.adopted.insert(rec.pid, rec.gen);
                    continue;
                }
                held = true;
                let home = self.cfg.lattice.home_for(rec.pid);
                let rec = ProcRecord { home, ..*rec };
                self.table.set(rec, Slot::Owned);
                let seq = self.out.append(Op::Upsert, 0, rec);
                self.out.notify_at(seq, Note::Committed(rec.pid));
                self.adopted.insert(rec.pid, rec.gen);
                self.schedule_slice(now, &rec);
            }
            // Installed here from `x`'s migrations, and not yet in our
            // successor's mirror either, perhaps.
            held |=
                redirect.is_none() && inb.mirror.iter().any(|(_, s)| s == Slot::InFlight(self.id));
            // Until our successor has applied what we resumed (the
            // entries up to our log's head now), the mirror stays the
            // replica of those processes: if we are fenced before, our
            // fencer's mirror of us may lack them (docs/braid.md §8).
            if held && self.out.target.is_some() {
                self.out.hold = self.out.head.max(1);
                match &mut self.resumed {
                    Some((_, m)) => {
                        for (rec, slot) in inb.mirror.iter() {
                            m.mirror.set(*rec, slot);
                        }
                    }
                    None => self.resumed = Some((x, inb)),
                }
            }
        }
        // Its in-flight migrations to us are resolved: we hold them. (Not
        // on a take-over: this incarnation holds nothing of `x`'s, and a
        // member with `x`'s id is a new incarnation, whose migrations to
        // us stay pinned.)
        if redirect.is_none() {
            self.unpin_from(x);
        }
        self.adopted_wait = self.view.predecessor(self.id);
        if self.adopted_wait.is_none() {
            self.adopted.clear();
        }
        self.notes.push(Note::Reconstructed {
            failed: x,
            procs: resumed,
        });
        self.corrective(now, Corrective::Reconstructed, x.into());
        // Tell the new predecessor where to send, now.
        if let Some(p) = self.view.predecessor(self.id) {
            self.send_ack(p, 0, 0, tx);
        }
        resumed
    }

    /// Our successor admitted us in place of our predecessor `x`, silent to
    /// it, and removed `x` (a later member with `x`'s id is a new
    /// incarnation): resume `x` from the replica we kept when we were
    /// fenced (docs/braid.md §8, hand-over). Only once `x`'s lease has
    /// surely expired: its last lease came from our previous incarnation's
    /// acks, which acked nothing that arrived after the kept mirror's last
    /// arrival.
    ///
    /// Every process of the replica becomes our in-flight migration to our
    /// successor `s`, which installs it unless it owns or adopted it (its
    /// adopted set, kept for this until it has applied the snapshot of the
    /// new session we start here): `s` may have resumed some with our
    /// previous incarnation (`x`'s migrations to it, `InFlight(us)` in the
    /// replica), or, if it removed `x` as an orphan before we could join,
    /// installed `x`'s predecessor's migrations to `x`, which `x` may have
    /// installed too.
    pub(crate) fn take_over(&mut self, now: Time, s: TorusId, tx: &mut impl Transport) {
        let Some((x, inb)) = self.kept.take() else {
            return;
        };
        let expired = now.saturating_sub(inb.last_arrival) > self.cfg.detect_timeout();
        if self.joining || !expired {
            self.kept = Some((x, inb));
            return;
        }
        self.kept_resumed = false;
        self.resume(now, x, Some(inb), Some(s), tx);
        // Our predecessor re-sends its migrations to `x` to us in the
        // snapshot of its session with us: once that is applied, our
        // adopted set has nothing left to tell apart.
        let pred_synced = self
            .view
            .predecessor(self.id)
            .is_none_or(|q| self.inbound.get(&q).is_some_and(|i| i.synced));
        if pred_synced {
            self.adopted.clear();
            self.adopted_wait = None;
        }
        self.restart_session();
    }

    /// Start a new session with the current successor (if we replicate to
    /// it already; otherwise the switch to it starts one).
    pub(crate) fn restart_session(&mut self) {
        if let Some(s) = self
            .out
            .target
            .filter(|&s| self.view.successor(self.id) == Some(s))
        {
            self.out.start(s, &self.table);
            let end = self.out.snapshot_end;
            for inb in self.inbound.values_mut() {
                for d in &mut inb.derived {
                    d.1 = end;
                }
            }
        }
    }

    /// We were declared failed: our processes already run elsewhere, so
    /// drop everything and rejoin as a new incarnation.
    pub(crate) fn fence(&mut self, now: Time) {
        let fresh = Torus::restarted(self.id, self.incarnation + 1, self.cfg, now);
        let stats = self.stats;
        let session = self.out.session;
        let view = self.view;
        // Our fencer took over our table, not our mirror of our
        // predecessor: if that predecessor has failed too, the mirror is
        // the only replica of its processes. Keep it until it is handed
        // over or superseded (docs/braid.md §8).
        // A predecessor we resumed, with our successor's mirror perhaps
        // lacking what we resumed, comes first: it failed, while our
        // current predecessor is alive (one failure at a time).
        let from_resumed = self.resumed.is_some();
        let from_old = !from_resumed
            && self
                .view
                .predecessor(self.id)
                .is_none_or(|q| !self.inbound.get(&q).is_some_and(|i| i.synced));
        let kept_resumed = from_resumed || (from_old && self.kept_resumed);
        let kept = self
            .resumed
            .take()
            .or_else(|| {
                self.view
                    .predecessor(self.id)
                    .and_then(|q| self.inbound.remove(&q).filter(|i| i.synced).map(|i| (q, i)))
            })
            .or(self.kept.take());
        // Our tombstones go with us. A torus we removed in a view that lost
        // to the one that fenced us (a split view) is alive and a member:
        // what we resumed of it goes with our table, and fencing it on an
        // old tombstone would lose its processes. Where our removal won,
        // the view no longer holds the removed torus, and membership
        // fences it.
        *self = fresh;
        self.kept_resumed = kept_resumed && kept.is_some();
        self.kept = kept;
        self.stats = stats;
        // Keep the session counter moving so old acks never match.
        self.out.session = session;
        self.view = view;
        self.notes.push(Note::Fenced);
    }
}
