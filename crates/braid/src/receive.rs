//! Receiving records: verification of projections, applying the
//! replication delta, and processing acks (docs/braid.md §6–7).

use crate::ack::{Ack, ACK_LEN, A_FENCED, A_NEED_RESYNC, A_NO_MIGRATE, A_TAKE_OVER};
use crate::event::{Corrective, Time};
use crate::projection::{
    LogEntry, Op, Projection, CR_PRIORITY_DEMAND, F_JOIN, F_REPLICA, F_RESUMED, PROJ_LEN,
};
use crate::replication::Note;
use crate::ring::View;
use crate::table::{ProcRecord, Slot, TorusId};
use crate::torus::{Torus, Transport};
use crate::verify::{Inbound, Verdict};

impl Torus {
    /// Hand the torus one received record (a projection or an ack).
    /// Malformed records are counted and dropped.
    pub fn receive(&mut self, now: Time, bytes: &[u8], tx: &mut impl Transport) {
        let ok = match bytes.len() {
            PROJ_LEN => Projection::decode(bytes).map(|p| self.on_projection(now, &p, bytes, tx)),
            ACK_LEN => Ack::decode(bytes).map(|a| self.on_ack(now, &a, tx)),
            _ => Err(crate::codec::DecodeError::Length),
        };
        if ok.is_err() {
            self.stats.rejected_decode += 1;
        }
    }

    /// Adopt `v` if it supersedes ours; returns false if it fences us.
    pub(crate) fn adopt_view(&mut self, now: Time, v: View) -> bool {
        if !self.view.is_superseded_by(&v) {
            return true;
        }
        if self.joining {
            // Still outside; remember the ring so we find our successor. A
            // view that lists our id may still mean our previous
            // incarnation: only the ack of the torus that admitted us
            // makes us a member (`admit`).
            self.view = v;
            return true;
        }
        if !v.contains(self.id) {
            return false;
        }
        self.enter_view(now, v, false);
        true
    }

    /// Adopt a view received from another torus (`adopt_view`), keeping
    /// our predecessor in it if it replicates to us: a newer view that
    /// drops it without our removing it comes from a concurrent change
    /// that never had it, typically another torus's admission of a joiner
    /// at the same epoch as our admission of our predecessor, won by the
    /// greater members. Only we, its replica holder, could resume it, and
    /// it is alive: dropped, it would be fenced by the view and its
    /// committed processes lost (soak seed 1061999). So we admit it again
    /// on top of that view (epoch + 1) in the same step, and our acks never
    /// carry a view without it (docs/braid.md §6, Views). Not only when
    /// our mirror of it is synced: during a resync its processes are in
    /// its table alone.
    fn adopt_received_view(&mut self, now: Time, v: View) -> bool {
        let keep = self.view.predecessor(self.id).filter(|&q| {
            !self.joining
                && self
                    .inbound
                    .get(&q)
                    .is_some_and(|i| i.heard() && i.last_arrival >= self.pred_since)
        });
        let v = match keep {
            Some(q) if self.view.is_superseded_by(&v) && v.contains(self.id) && !v.contains(q) => {
                v.with(q)
            }
            _ => v,
        };
        self.adopt_view(now, v)
    }

    /// A joiner's admission: the ack of one of its own `JOIN` projections
    /// (so addressed to this incarnation) carries a view containing it.
    /// With `take_over` (the ack says `TAKE_OVER`) our successor waits for
    /// the replica we kept, whatever the view says of its torus.
    fn admit(&mut self, now: Time, v: View, take_over: bool) {
        self.joining = false;
        self.notes.push(Note::Joined);
        self.enter_view(now, v, !take_over);
        // Our predecessor became ours now, whatever our view as a joiner
        // said: that view may give it the same predecessor (as our previous
        // incarnation's), and a mirror we fed from it meanwhile (it sent to
        // our id in a view where our previous incarnation was its
        // successor) is not its current replica: it may have switched to
        // another successor since, which renews its lease. Judged by such
        // a mirror's last arrival, it would be declared failed and resumed
        // while it runs (soak seed 1675919, docs/braid.md §6 condition 2).
        self.pred_since = now;
    }

    /// `drop_stale`: we are being admitted (without `TAKE_OVER`).
    fn enter_view(&mut self, now: Time, v: View, drop_stale: bool) {
        let old_pred = self.view.predecessor(self.id);
        self.view = v;
        if self.view.predecessor(self.id) != old_pred {
            self.pred_since = now;
        }
        // Admitted while the torus whose replica we kept is still a member:
        // it is alive and replicates to our successor (joins wait for
        // that), so the kept replica is stale. Not when our successor
        // admitted us with `TAKE_OVER`: the member is then a new
        // incarnation of an orphan it removed, and the kept replica holds
        // the old one's processes (§8, late hand-over).
        // (A resumed replica's torus is dead: a member with its id is a
        // new incarnation.)
        if drop_stale
            && !self.kept_resumed
            && self.kept.as_ref().is_some_and(|k| self.view.contains(k.0))
        {
            self.drop_kept();
        }
        // A resumed replica is handed over only by the admission (its
        // acks say `TAKE_OVER`); admitted without it, our successor
        // refused it (the resumed torus is alive, our previous
        // incarnation's removal of it lost) or is not our fencer: no
        // take-over will ever come, and keeping a stale replica into a
        // later incarnation could hand it over there.
        if drop_stale && self.kept_resumed && self.kept.is_some() {
            self.drop_kept();
        }
    }

    /// Drop the kept replica without taking it over. A successor that
    /// admitted us by a hand-over keeps its adopted set for our take-over
    /// until our next snapshot (§8): send one.
    fn drop_kept(&mut self) {
        self.kept = None;
        self.kept_resumed = false;
        self.restart_session();
    }

    fn on_projection(&mut self, now: Time, p: &Projection, bytes: &[u8], tx: &mut impl Transport) {
        if p.to != self.id {
            self.stats.misaddressed += 1;
            return;
        }
        // An incarnation we declared failed: its processes run here now,
        // and its view must not be adopted.
        // Whatever view it is in, it must restart (a concurrent view change
        // elsewhere may have put its id back in the view).
        if self
            .fenced
            .get(&p.from)
            .is_some_and(|&i| p.incarnation <= i)
        {
            self.send_fence(now, p.from, p.incarnation, tx);
            return;
        }
        // A projection from the torus whose replica we kept does not make
        // that replica stale: it reaches our id only while our id is its
        // successor, so its lease and its replication came from our
        // previous incarnation's acks alone, and that incarnation applied
        // (and so kept) everything it committed. It is alive, but nobody
        // else holds its replica: dropped here, and then taken over by a
        // `REPLICA` `JOIN` of ours still in flight, it was lost (docs/braid.md
        // §8, "Sole peer", crafted test
        // `joiner_keeps_replica_of_live_peer_that_removed_its_fencer`).
        // The admission decides (`enter_view`, `take_over`).
        // A joiner's view is whatever it last knew: never adopt it.
        if p.flags & F_JOIN == 0
            && !self.adopt_received_view(
                now,
                View {
                    epoch: p.epoch,
                    members: p.members,
                },
            )
        {
            self.fence(now);
            return;
        }
        // A member that restarted before we noticed: its old incarnation
        // failed, so reconstruct it first.
        if let Some(inb) = self.inbound.get(&p.from) {
            if p.incarnation < inb.incarnation {
                self.stats.rejected_stale += 1;
                return;
            }
            if p.incarnation > inb.incarnation {
                if self.view.predecessor(self.id) == Some(p.from) && self.view.contains(p.from) {
                    self.declare_failed(now, p.from, tx);
                } else {
                    self.inbound.remove(&p.from);
                    self.unpin_from(p.from);
                }
            }
        }
        // A restarted torus whose old incarnation we declared failed, but
        // whose id is still in the view (a concurrent view change kept it):
        // remove the dead incarnation under a new epoch, so that the ring
        // re-forms without it; the joiner is then admitted as usual.
        let rejoin = p.flags & F_JOIN != 0
            && !self.joining
            && self.view.contains(p.from)
            && !self.inbound.contains_key(&p.from)
            && self.fenced.get(&p.from).is_some_and(|&i| i < p.incarnation);
        if rejoin {
            let v = self.view.without(p.from);
            self.adopt_view(now, v);
        }
        // A joiner whose id is still a member here, for an incarnation we
        // have not admitted: its previous incarnation has not been removed
        // yet (its replica holder removes it, or the orphan rule or a
        // hand-over does). Admitting it would let it take the dead
        // incarnation's place without anyone resuming that one.
        if p.flags & F_JOIN != 0
            && !self.joining
            && self.view.contains(p.from)
            && self
                .inbound
                .get(&p.from)
                .is_none_or(|i| i.incarnation != p.incarnation)
        {
            self.stats.rejected_stale += 1;
            return;
        }
        if !self.view.contains(p.from) {
            if p.flags & F_JOIN != 0 && !self.joining {
                if !self.ring_reformed() && !self.hand_over(now, p) {
                    // The joiner's previous incarnation was just removed:
                    // wait until our predecessor has re-formed the ring
                    // around us (and redirected its migrations to us)
                    // before it may become our predecessor's successor.
                    // The joiner retries every interval.
                    self.stats.rejected_stale += 1;
                    return;
                }
                let late = self.late_hand_over(p);
                // The new incarnation of a torus we declared failed, which
                // will sit right in front of us: its previous incarnation
                // may have resumed its own predecessor shortly before, and
                // we may not hold what it resumed (its log had not reached
                // us); then it kept that replica, and takes it over (§8).
                let v = self.view.with(p.from);
                // (A `JOIN` with `REPLICA` keeps a replica of its
                // predecessor: the hand-over rules above decide.)
                let fencee = self.fenced.get(&p.from).is_some_and(|&i| i < p.incarnation)
                    && p.flags & F_REPLICA == 0
                    && !self.resumed_torus_alive(p)
                    && v.successor(p.from) == Some(self.id);
                self.adopt_view(now, v);
                if let Some(q) = late {
                    self.orphans &= !(1 << q);
                    self.orphan_back.remove(&q);
                }
                if late.is_some() || fencee {
                    self.handover = Some((p.from, p.incarnation));
                    self.adopted_wait = Some(p.from);
                }
            } else {
                self.send_fence(now, p.from, p.incarnation, tx);
                return;
            }
        }
        // An orphan's id back in the view: a new incarnation, which started
        // empty. Remember which, to tell a replica of the orphan (older)
        // from one of it (§8, late hand-over).
        if self.orphans & (1 << p.from) != 0 {
            self.orphan_back.entry(p.from).or_insert(p.incarnation);
        }
        let inb = self
            .inbound
            .entry(p.from)
            .or_insert_with(|| Inbound::new(p.incarnation));
        match inb.check(p) {
            Verdict::Stale => {
                self.stats.rejected_stale += 1;
                return;
            }
            Verdict::BrokenChain => {
                inb.need_resync = true;
                self.stats.divergences += 1;
                self.corrective(now, Corrective::Resync, p.from.into());
            }
            Verdict::Accept => {}
        }
        let is_pred = self.view.predecessor(self.id) == Some(p.from);
        if let Some(i) = self.inbound.get_mut(&p.from) {
            let gap = now.saturating_sub(i.last_arrival);
            let heard = i.heard();
            i.accept(p, bytes, now);
            if is_pred && heard {
                self.note_lateness(now, gap);
            }
        }
        if is_pred {
            self.heard_pred_this_tick = true;
        }
        if p.flags & (F_JOIN | F_REPLICA) == 0 && self.handover.is_some_and(|h| h.0 == p.from) {
            // It took over the replica (and restarted its session: these
            // entries are of the new one), or dropped it.
            self.handover = None;
        }
        for e in p.entries() {
            self.apply_entry(now, p.from, p.session, e);
        }
        let inb = self.inbound.entry(p.from).or_default();
        if inb.diverged(p) {
            inb.need_resync = true;
            inb.synced = false;
            self.stats.divergences += 1;
            self.digest_alert = Some((p.from, p.log_head));
            self.corrective(now, Corrective::Resync, p.from.into());
        }
        let inb = self.inbound.entry(p.from).or_default();
        inb.priority_demand = p.corrective().iter().any(|c| c.kind == CR_PRIORITY_DEMAND);
        let accept = self.consider_offers(now, p);
        self.drop_stale_mirrors(now, p);
        // A joiner is nobody's successor yet: its acks would lend leases
        // and views that are not the ring's.
        if !self.joining {
            self.send_ack(p.from, p.heartbeat, accept, tx);
        }
    }

    /// The joiner keeps a resumed replica (`F_RESUMED`) of a torus whose
    /// very incarnation is our predecessor and replicates to us: its
    /// previous incarnation's removal of that torus lost to the view in
    /// which we fenced it (a split view, §8), so the torus kept its
    /// processes and the replica is stale. Handing it over would re-send
    /// them and tombstone a live member, whose fencing would lose what
    /// only its table and our mirror hold (soak seed 977382).
    fn resumed_torus_alive(&self, p: &Projection) -> bool {
        let q = p.replica_of;
        p.flags & F_RESUMED != 0
            && self.view.predecessor(self.id) == Some(q)
            && self.replica_current(q)
            && self
                .inbound
                .get(&q)
                .is_some_and(|i| i.incarnation == p.replica_inc)
    }

    /// True when our predecessor in the current view replicates to us: we
    /// hold a synced mirror of it, fed since it became our predecessor.
    pub(crate) fn ring_reformed(&self) -> bool {
        self.view
            .predecessor(self.id)
            .is_none_or(|q| self.replica_current(q))
    }

    /// A joiner asks to join right behind our predecessor `q` and holds the
    /// replica of `q` that it kept when it was fenced (`F_REPLICA`,
    /// `replica_of` = `q`), while `q` has not replicated to us for a whole
    /// detection timeout since it became our predecessor: `q` failed
    /// together with its replica holder (typically: `q` crashed, and we
    /// then removed its successor on a false suspicion before it could
    /// resume `q`). Remove `q` and admit the joiner in one step; our acks
    /// tell it to resume `q` from its kept replica (docs/braid.md §8,
    /// hand-over). Like the detector, only while we hold a lease and
    /// observed the silence connected, or, with no lease, when `q` is our
    /// sole peer and has lapsed (`sole_peer_lapsed`).
    fn hand_over(&mut self, now: Time, p: &Projection) -> bool {
        let Some(q) = self.view.predecessor(self.id) else {
            return false;
        };
        let d = self.cfg.detect_timeout();
        let heard = self
            .inbound
            .get(&q)
            .is_some_and(|i| i.heard() && i.last_arrival >= self.pred_since);
        let acked_send = self.lease_end.saturating_sub(self.cfg.lease());
        let ok = p.flags & F_REPLICA != 0
            && p.replica_of == q
            && q != p.from
            && !self.replica_superseded(q, p.replica_inc)
            && self.view.predecessor(p.from) == Some(q)
            && self.view.successor(p.from) == Some(self.id)
            && !heard
            && now.saturating_sub(self.pred_since) > d
            && ((self.lease_valid(now) && acked_send >= self.pred_since + d - self.cfg.i_max)
                || self.sole_peer_lapsed(now, p, q));
        if !ok {
            return false;
        }
        if let Some(inb) = self.inbound.remove(&q) {
            let dead = self.fenced.entry(q).or_insert(inb.incarnation);
            *dead = (*dead).max(inb.incarnation);
        }
        self.unpin_from(q);
        let v = self.view.without(q);
        self.adopt_view(now, v);
        self.handover = Some((p.from, p.incarnation));
        // What we adopted from the joiner's previous incarnation tells its
        // re-sent migrations of `q` apart (§8): keep it until the joiner's
        // snapshot after the take-over.
        self.adopted_wait = Some(p.from);
        true
    }

    /// `hand_over` without a lease (docs/braid.md §8, "Sole peer"): our
    /// view is `{q, us}`, so `q`, our predecessor, is also our successor,
    /// the only source of our lease; if it is dead we never hold one
    /// again, cannot judge it, and the ring never re-forms (soak seed
    /// 1076567). The lease keeps a torus that may itself be cut off from
    /// acting; here the joiner `p` proves what the lease would have:
    ///
    /// * `q` can be running only under a lease lent by its successor in
    ///   its own view. Every id strictly between `q` and us is the
    ///   joiner's (checked over the id space), so that successor is us or
    ///   the joiner's id. We have acked nothing `q` sent since it became
    ///   our predecessor (`hand_over`: not heard since `pred_since`), so a
    ///   lease from us ended `L` after `pred_since`. The joiner's previous
    ///   incarnation, which we removed (our tombstone is older than `p`),
    ///   is gone: the joiner replaced it, and lent `q` nothing after its
    ///   kept replica's last arrival, which the take-over waits `D` past.
    ///   The joiner itself sends no acks until admitted, here.
    /// * A transient cut is not mistaken for a death: `q` must have sent
    ///   us nothing at all, not even an ack or a nudge, for `4·D` (the
    ///   orphan rule's silence) since it became our predecessor.
    ///
    /// No rule lets a lease-less torus remove a silent sole peer on a
    /// timeout alone: the peer, cut off the same way, would remove us, and
    /// both would run alone. With `q` alive and having removed us (§8,
    /// "The silent peer alive"), `q`'s successor is the joiner's id, `q`
    /// cannot admit the joiner, and the joiner keeps its replica of `q`
    /// even when it hears `q` (`on_projection`).
    fn sole_peer_lapsed(&self, now: Time, p: &Projection, q: TorusId) -> bool {
        let silence = crate::failure::ORPHAN_FACTOR * self.cfg.detect_timeout();
        let n = TorusId::try_from(self.cfg.tori.min(64)).unwrap_or(64);
        let between = || {
            (1..n)
                .map(|k| (q + k) % n)
                .take_while(|&t| t != self.id)
                .all(|t| t == p.from)
        };
        self.view.len() == 2
            && self.view.successor(self.id) == Some(q)
            && q < n
            && self.id < n
            && between()
            && self.fenced.get(&p.from).is_some_and(|&i| i < p.incarnation)
            && now.saturating_sub(self.last_from_succ.max(self.pred_since)) > silence
    }

    /// The hand-over that came too late for `hand_over`: the joiner holds
    /// the replica it kept of `q` (`F_REPLICA`, `replica_of` = `q`;
    /// whatever its view says: it may have learned ours, without `q`),
    /// which we removed by the orphan rule resuming nothing, and it will
    /// sit right in front of us. `q` failed together with its replica
    /// holder, and that holder's new incarnation could not reach us
    /// before the orphan rule removed `q` (docs/braid.md §8): admitted, it
    /// must still resume `q`. If `q`'s id is back in our view, it is a new
    /// incarnation, and the replica must be of an older one: the first we
    /// heard since is `orphan_back`; what we know of it and later ones
    /// says nothing of the orphan. Returns `q`.
    fn late_hand_over(&self, p: &Projection) -> Option<TorusId> {
        let q = p.replica_of;
        let back = self.orphan_back.get(&q).copied();
        let ok = p.flags & F_REPLICA != 0
            && q != p.from
            && q != self.id
            && self.orphans & (1 << q) != 0
            && (!self.view.contains(q) || back.is_some())
            && back.is_none_or(|b| p.replica_inc < b)
            && !self.replica_superseded_before(q, p.replica_inc, back)
            && self.view.with(p.from).successor(p.from) == Some(self.id);
        ok.then_some(q)
    }

    /// We know of an incarnation of `q` newer than `inc` (we removed it,
    /// or heard it): a replica of `inc` is of an incarnation that was
    /// replaced before, whose processes are not ours to wait for.
    fn replica_superseded(&self, q: TorusId, inc: u32) -> bool {
        self.replica_superseded_before(q, inc, None)
    }

    /// `replica_superseded`, counting only incarnations older than `back`.
    fn replica_superseded_before(&self, q: TorusId, inc: u32, back: Option<u32>) -> bool {
        let newer = |i: u32| i > inc && back.is_none_or(|b| i < b);
        self.fenced.get(&q).is_some_and(|&i| newer(i))
            || self.inbound.get(&q).is_some_and(|i| newer(i.incarnation))
    }

    /// True when `q` replicates to us: its mirror here is synced and it has
    /// sent to us since it became our predecessor.
    pub(crate) fn replica_current(&self, q: TorusId) -> bool {
        self.inbound
            .get(&q)
            .is_some_and(|i| i.synced && i.heard() && i.last_arrival >= self.pred_since)
    }

    /// Apply one replication entry from `from`, in order, once.
    fn apply_entry(&mut self, now: Time, from: TorusId, session: u32, e: &LogEntry) {
        let Some(inb) = self.inbound.get_mut(&from) else {
            return;
        };
        if session != inb.session {
            if e.op != Op::Reset || e.seq != 1 {
                return;
            }
            inb.session = session;
            inb.applied = 0;
            inb.derived.clear();
        }
        if e.seq != inb.applied + 1 {
            return;
        }
        inb.applied = e.seq;
        match e.op {
            Op::Reset => {
                inb.mirror.clear();
                inb.synced = false;
                inb.need_resync = false;
                inb.reset_time = now;
            }
            Op::Upsert => inb.mirror.set(e.rec, Slot::Owned),
            Op::Remove | Op::Forget => {
                inb.mirror.remove(e.rec.pid);
                if self.pinned.get(&e.rec.pid) == Some(&from) {
                    self.pinned.remove(&e.rec.pid);
                }
            }
            Op::SnapshotEnd => {
                inb.synced = true;
                let inc = inb.incarnation;
                self.unpin_from(from);
                // A joiner admitted by a hand-over re-sends its kept
                // replica's migrations in the session it starts when it
                // takes over (its projections then stop carrying
                // `REPLICA`), not in the one before.
                let before_take_over = self.handover.is_some_and(|h| h.0 == from && h.1 == inc);
                // Nor one from a new incarnation of an orphan: the set
                // waits for the orphan's replica (§8, late hand-over).
                let orphan = self.orphans & (1 << from) != 0;
                if self.adopted_wait == Some(from) && !before_take_over && !orphan {
                    self.adopted.clear();
                    self.adopted_wait = None;
                }
            }
            Op::MigrateOut => {
                inb.mirror.set(e.rec, Slot::InFlight(e.to));
                // In a snapshot, a migration to us is one re-sent to us:
                // while a late hand-over may come, it may be a migration
                // to the orphan that the orphan installed, so the kept
                // replica holds it too (§8).
                let resent = !inb.synced && self.orphans != 0;
                if e.to == self.id {
                    self.install(now, from, e.seq, e.rec);
                    if resent && self.table.owns(e.rec.pid) {
                        self.adopted.insert(e.rec.pid, e.rec.gen);
                    }
                }
            }
        }
    }

    /// Install a migrated-in process exactly once (docs/braid.md §7).
    fn install(&mut self, now: Time, from: TorusId, their_seq: u64, rec: ProcRecord) {
        // A process we gave away coming back (newer generation): the old
        // migration is over, since the sender owned it.
        let returning =
            matches!(self.table.get(rec.pid), Some((old, Slot::InFlight(_))) if old.gen < rec.gen);
        if returning {
            self.out.inflight.remove(&rec.pid);
        } else if self.table.get(rec.pid).is_some()
            || self.adopted.get(&rec.pid).is_some_and(|&g| rec.gen <= g)
        {
            self.stats.duplicates_dropped += 1;
            self.corrective(now, Corrective::DuplicateDropped, rec.pid);
            return;
        }
        let home = self
            .cfg
            .lattice
            .home_for(rec.pid ^ u64::from(rec.gen).rotate_left(32));
        let rec = ProcRecord { home, ..rec };
        self.table.set(rec, Slot::Owned);
        // Pinned until the giver forgets it: if we passed it on (or it
        // exited) before that and then crashed, the giver would redirect
        // its still in-flight copy to our successor, which could no longer
        // tell it is a duplicate.
        self.pinned.insert(rec.pid, from);
        let mine = self.out.append(Op::Upsert, 0, rec);
        if let Some(inb) = self.inbound.get_mut(&from) {
            inb.derived.push_back((their_seq, mine));
        }
        self.schedule_slice(now, &rec);
    }

    /// Once the predecessor has a synced mirror, a former predecessor's
    /// mirror is no longer the only copy.
    fn drop_stale_mirrors(&mut self, now: Time, p: &Projection) {
        if self.view.predecessor(self.id) != Some(p.from)
            || p.flags & crate::projection::F_MIRROR_SYNCED == 0
        {
            return;
        }
        let quiet = 2 * self.cfg.i_max;
        let before: alloc::vec::Vec<TorusId> = self.inbound.keys().copied().collect();
        self.inbound
            .retain(|&t, i| t == p.from || now.saturating_sub(i.last_arrival) < quiet);
        for t in before {
            if !self.inbound.contains_key(&t) {
                self.unpin_from(t);
            }
        }
    }

    fn send_fence(&mut self, now: Time, to: TorusId, inc: u32, tx: &mut impl Transport) {
        self.stats.fences_sent += 1;
        self.corrective(now, Corrective::Fenced, to.into());
        let ack = Ack {
            flags: A_FENCED,
            from: self.id,
            to,
            epoch: self.view.epoch,
            members: self.view.members,
            to_incarnation: inc,
            from_incarnation: self.incarnation,
            ..Ack::default()
        };
        tx.send(self.id, to, &ack.encode());
    }

    pub(crate) fn send_ack(
        &mut self,
        to: TorusId,
        heard: u64,
        accept: u64,
        tx: &mut impl Transport,
    ) {
        let mut ack = Ack {
            from: self.id,
            to,
            epoch: self.view.epoch,
            members: self.view.members,
            heard_hb: heard,
            accept,
            load: u32::try_from(self.table.total_load()).unwrap_or(u32::MAX),
            from_incarnation: self.incarnation,
            ..Ack::default()
        };
        if let Some(inb) = self.inbound.get_mut(&to) {
            while let Some(&(_, mine)) = inb.derived.front() {
                if !self.out.is_applied(mine) {
                    break;
                }
                inb.derived.pop_front();
            }
            ack.session = inb.session;
            ack.applied = inb.applied;
            ack.durable = inb.derived.front().map_or(inb.applied, |d| d.0 - 1);
            ack.to_incarnation = inb.incarnation;
            if inb.need_resync {
                ack.flags |= A_NEED_RESYNC;
            }
        }
        if self.joining || !self.lease_valid(self.queue.now()) {
            ack.flags |= A_NO_MIGRATE;
        }
        if self
            .handover
            .is_some_and(|h| h.0 == to && Some(h.1) == self.inbound.get(&to).map(|i| i.incarnation))
        {
            ack.flags |= A_TAKE_OVER;
        }
        tx.send(self.id, to, &ack.encode());
    }

    fn on_ack(&mut self, now: Time, a: &Ack, tx: &mut impl Transport) {
        if a.to != self.id || (a.heard_hb != 0 && a.to_incarnation != self.incarnation) {
            self.stats.misaddressed += 1;
            return;
        }
        if self
            .fenced
            .get(&a.from)
            .is_some_and(|&i| a.from_incarnation <= i)
        {
            self.stats.misaddressed += 1;
            return; // From an incarnation we declared failed.
        }
        // A sign of life of our successor, even a nudge or a fence: a
        // lease-less torus hands its sole peer over only after `4·D`
        // without any (`sole_peer_lapsed`).
        if self.view.successor(self.id) == Some(a.from) {
            self.last_from_succ = now;
        }
        if a.flags & A_FENCED != 0 {
            // A joiner is fenced too: its incarnation number is already
            // dead (e.g. it restarted without knowing it had been fenced
            // before), so it must pick a newer one.
            if a.to_incarnation == self.incarnation {
                self.fence(now);
            }
            return;
        }
        let v = View {
            epoch: a.epoch,
            members: a.members,
        };
        if self.joining && a.heard_hb != 0 && v.contains(self.id) {
            self.admit(now, v, a.flags & A_TAKE_OVER != 0);
        } else if !self.adopt_received_view(now, v) {
            self.fence(now);
            return;
        }
        if a.flags & A_TAKE_OVER != 0
            && a.to_incarnation == self.incarnation
            && self.view.successor(self.id) == Some(a.from)
        {
            self.take_over(now, a.from, tx);
        }
        if Some(a.from) != self.out.target || a.heard_hb == 0 {
            return;
        }
        // The successor restarted under the same id (its old incarnation
        // was replaced without us seeing a view without it): its mirror of
        // us is gone, so start a new session. Acks from an older
        // incarnation than the one we replicate to are stale.
        match self.out.target_inc {
            Some(i) if a.from_incarnation < i => return,
            Some(i) if a.from_incarnation > i => {
                self.out.start(a.from, &self.table);
                self.out.target_inc = Some(a.from_incarnation);
                return;
            }
            _ => self.out.target_inc = Some(a.from_incarnation),
        }
        let mut notes = core::mem::take(&mut self.notes);
        self.out.on_ack(a.session, a.applied, a.durable, &mut notes);
        self.notes = notes;
        if self.out.hold == 0 {
            // What we resumed is in our successor's mirror now.
            self.resumed = None;
        }
        if let Some(&(_, sent)) = self.sent.iter().find(|(hb, _)| *hb == a.heard_hb) {
            self.lease_end = self.lease_end.max(sent + self.cfg.lease());
        }
        self.succ_load = Some(a.load.into());
        self.succ_no_migrate = a.flags & A_NO_MIGRATE != 0;
        if a.flags & A_NEED_RESYNC != 0 && a.session == self.out.session {
            self.out.start(a.from, &self.table);
            return;
        }
        if a.session == self.out.session {
            self.complete_migrations(a.from);
            if a.accept != 0 {
                self.commit_offer(now, a.from, a.accept);
            }
        }
    }
}
