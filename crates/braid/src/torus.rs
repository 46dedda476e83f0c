//! A torus: one execution domain running the braid protocol.
//!
//! The torus is driven from outside: its host pops events with
//! [`Torus::step`] and hands it received bytes with [`Torus::receive`];
//! everything it sends goes through a [`Transport`]. It never reads a clock
//! and never allocates per event on the hot path, so the same code runs in
//! the simulator, on threads, and in the kernel.

use crate::event::{kind, Corrective, Event, Time};
use crate::interval::Interval;
use crate::lattice::Lattice;
use crate::projection::{
    Op, Projection, CR_PRIORITY_DEMAND, ENTRIES, F_FROZEN, F_JOIN, F_MIRROR_SYNCED, F_REPLICA,
    F_RESUMED,
};
use crate::queue::EventQueue;
use crate::replication::{Note, OutSession};
use crate::ring::View;
use crate::suspicion::Lateness;
use crate::table::{Pid, ProcRecord, Slot, Table, TorusId};
use crate::verify::Inbound;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// Where a torus sends its records: a shared-memory mailbox, a channel, a
/// socket, or the simulator's faulty network.
pub trait Transport {
    /// Deliver `bytes` (a whole projection or ack) from `from` to `to`.
    fn send(&mut self, from: TorusId, to: TorusId, bytes: &[u8]);
}

/// Protocol parameters (docs/braid.md §6, §9).
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Number of tori the ring starts with.
    pub tori: usize,
    /// Cell lattice of each torus.
    pub lattice: Lattice,
    /// Missed intervals before a predecessor is declared failed (`K`).
    pub k_miss: u64,
    /// Shortest braid interval.
    pub i_min: u64,
    /// Longest braid interval; timeouts are based on it.
    pub i_max: u64,
    /// Adapt the interval to the rate of change.
    pub adaptive: bool,
    /// Length of a time slice of weight 1024.
    pub slice: u64,
    /// Slices between two checkpoints of a process's progress.
    pub checkpoint_every: u64,
    /// Load difference (weight) above which a torus offers a process.
    pub balance_threshold: u64,
    /// Weight a torus can serve; real-time load above it asks for help.
    pub capacity: u64,
    /// Longest extra wait before declaring a silent predecessor failed,
    /// given for lateness seen lately (0: always exactly `K·I_max`). A
    /// member whose projections came late, or a detector that itself was
    /// not run on time (its host is overloaded: the others' may be too),
    /// gets up to this much more (`suspicion::Lateness`, twice what was
    /// seen, forgotten by halves every `10·K·I_max`). Declaring later is
    /// always safe: the predecessor's lease has expired before `K·I_max`.
    pub detect_grace_max: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tori: 3,
            lattice: Lattice::new(4, 4, 4),
            k_miss: 4,
            i_min: 250_000,
            i_max: 1_000_000,
            adaptive: true,
            slice: 1_000_000,
            checkpoint_every: 4,
            balance_threshold: 1536,
            capacity: 1 << 20,
            detect_grace_max: 0,
        }
    }
}

impl Config {
    /// Failure-detector timeout `D = K·I_max`.
    pub fn detect_timeout(&self) -> u64 {
        self.k_miss * self.i_max
    }

    /// Lease length `L = (K−1)·I_max`.
    pub fn lease(&self) -> u64 {
        (self.k_miss - 1) * self.i_max
    }
}

/// Counters for observation and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Events handled.
    pub events: u64,
    /// Records rejected by decoding.
    pub rejected_decode: u64,
    /// Projections rejected as stale or duplicate.
    pub rejected_stale: u64,
    /// Records addressed to another torus or incarnation.
    pub misaddressed: u64,
    /// Broken projection chains and diverged mirrors.
    pub divergences: u64,
    /// Fences sent to tori outside the view.
    pub fences_sent: u64,
    /// Migrations committed out of this torus.
    pub migrations_out: u64,
    /// Migrated-in processes dropped as duplicates.
    pub duplicates_dropped: u64,
    /// Slices not run because the lease had expired.
    pub frozen_slices: u64,
}

/// One torus.
#[derive(Clone)]
pub struct Torus {
    pub(crate) id: TorusId,
    pub(crate) incarnation: u32,
    pub(crate) cfg: Config,
    pub(crate) queue: EventQueue,
    pub(crate) table: Table,
    pub(crate) view: View,
    pub(crate) joining: bool,
    pub(crate) out: OutSession,
    pub(crate) hb: u64,
    pub(crate) last_proj_digest: u64,
    pub(crate) sent: VecDeque<(u64, Time)>,
    pub(crate) lease_end: Time,
    pub(crate) inbound: BTreeMap<TorusId, Inbound>,
    /// Processes resumed here (or, while a late hand-over may come,
    /// installed from re-sent migrations), with the generation they had:
    /// a re-sent copy of the same migration (generation not newer) is a
    /// duplicate, while the process coming back by an ordinary migration
    /// always carries a newer generation (docs/braid.md §7, §8).
    pub(crate) adopted: BTreeMap<Pid, u32>,
    pub(crate) adopted_wait: Option<TorusId>,
    /// Tombstones: the highest incarnation of each torus this torus
    /// declared failed (and whose processes it resumed).
    pub(crate) fenced: BTreeMap<TorusId, u32>,
    /// Migrated-in processes whose giver has not yet forgotten them
    /// (pid → giver): they may neither move on nor exit until then.
    pub(crate) pinned: BTreeMap<Pid, TorusId>,
    /// The synced mirror of our predecessor that a previous incarnation of
    /// this torus held when it was fenced: its fencer did not take it over,
    /// and it may be the only replica left (docs/braid.md §8, hand-over).
    pub(crate) kept: Option<(TorusId, Inbound)>,
    /// A joiner admitted in place of our silent predecessor, which must
    /// resume the replica it kept: (id, incarnation).
    pub(crate) handover: Option<(TorusId, u32)>,
    /// Predecessors removed by the orphan rule with nothing resumed here
    /// (bit per id), not yet handed over: their replica may be the one a
    /// fenced successor kept, to be handed over late (§8), also after a
    /// new incarnation of them came back into the view.
    pub(crate) orphans: u64,
    /// For an orphan whose id is back in the view: the first incarnation
    /// of it heard here since (a new one, which started empty). A kept
    /// replica of an older incarnation may still be the orphan's (§8).
    pub(crate) orphan_back: BTreeMap<TorusId, u32>,
    /// The mirror of a predecessor we declared failed and resumed, kept
    /// until our successor has applied the log entries that resumed it
    /// (`out.hold`): until then it is the only replica of the resumed
    /// processes besides our own table, and if we are fenced meanwhile it
    /// becomes our new incarnation's kept replica (docs/braid.md §8).
    pub(crate) resumed: Option<(TorusId, Inbound)>,
    /// The kept replica is a resumed replica (of a predecessor our
    /// previous incarnation removed and resumed): a member with that id
    /// is a new incarnation, and it is taken over on any `TAKE_OVER`.
    pub(crate) kept_resumed: bool,
    pub(crate) interval: Interval,
    pub(crate) pending_offer: Option<Pid>,
    pub(crate) succ_load: Option<u64>,
    pub(crate) succ_no_migrate: bool,
    pub(crate) pred_since: Time,
    pub(crate) heard_pred_this_tick: bool,
    pub(crate) next_counter: u32,
    pub(crate) progress: BTreeMap<Pid, u64>,
    pub(crate) notes: Vec<Note>,
    pub(crate) digest_alert: Option<(TorusId, u64)>,
    /// Lateness of the predecessor's projections and of our own ticks,
    /// and when we last ticked (`Config::detect_grace_max`).
    pub(crate) lateness: Lateness,
    pub(crate) last_tick: Time,
    /// When an ack (of any kind) last came from our successor: a
    /// lease-less torus may hand over its sole peer only after a long
    /// silence of it (docs/braid.md §8, "Sole peer").
    pub(crate) last_from_succ: Time,
    /// Counters.
    pub stats: Stats,
}

impl Torus {
    /// A member of the initial ring, starting at `now`.
    pub fn new(id: TorusId, cfg: Config, now: Time) -> Self {
        let mut t = Torus {
            id,
            incarnation: 0,
            cfg,
            queue: EventQueue::new(),
            table: Table::new(),
            view: View::first(cfg.tori),
            joining: false,
            out: OutSession::default(),
            hb: 0,
            last_proj_digest: 0,
            sent: VecDeque::new(),
            lease_end: now + cfg.lease(),
            inbound: BTreeMap::new(),
            adopted: BTreeMap::new(),
            adopted_wait: None,
            fenced: BTreeMap::new(),
            pinned: BTreeMap::new(),
            kept: None,
            handover: None,
            orphans: 0,
            orphan_back: BTreeMap::new(),
            resumed: None,
            kept_resumed: false,
            interval: Interval::new(cfg.i_min, cfg.i_max, cfg.adaptive),
            pending_offer: None,
            succ_load: None,
            succ_no_migrate: false,
            pred_since: now,
            heard_pred_this_tick: false,
            next_counter: 0,
            progress: BTreeMap::new(),
            notes: Vec::new(),
            digest_alert: None,
            lateness: Lateness::new(0, cfg.detect_grace_max, 10 * cfg.detect_timeout()),
            last_tick: now,
            last_from_succ: now,
            stats: Stats::default(),
        };
        t.queue.push(Event {
            time: now,
            kind: kind::BRAID_TICK,
            ..Event::default()
        });
        t
    }

    /// A restarted torus: empty, a new incarnation, asking to join.
    pub fn restarted(id: TorusId, incarnation: u32, cfg: Config, now: Time) -> Self {
        let mut t = Torus::new(id, cfg, now);
        t.incarnation = incarnation;
        t.joining = true;
        t.lease_end = now;
        t
    }

    /// This torus's id.
    pub fn id(&self) -> TorusId {
        self.id
    }

    /// This torus's incarnation.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Committed state.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// True while not (yet) a member.
    pub fn is_joining(&self) -> bool {
        self.joining
    }

    /// The event queue (the kernel schedules its own events here too).
    pub fn queue(&mut self) -> &mut EventQueue {
        &mut self.queue
    }

    /// Time of the next event.
    pub fn next_time(&self) -> Option<Time> {
        self.queue.peek_time()
    }

    /// The current braid interval.
    pub fn interval(&self) -> u64 {
        self.interval.current()
    }

    /// Take the notes produced since the last call.
    pub fn drain_notes(&mut self) -> Vec<Note> {
        core::mem::take(&mut self.notes)
    }

    /// The mirror this torus holds of `t`'s table, if any.
    pub fn mirror_of(&self, t: TorusId) -> Option<(&Table, bool, u64)> {
        self.inbound
            .get(&t)
            .map(|i| (&i.mirror, i.synced, i.applied))
    }

    /// Every mirror this torus holds: of each sender, and the replica it
    /// kept from a previous incarnation (docs/braid.md §8, hand-over).
    pub fn mirrors(&self) -> impl Iterator<Item = (TorusId, &Table)> {
        self.inbound
            .iter()
            .map(|(t, i)| (*t, &i.mirror))
            .chain(self.kept.iter().map(|(t, i)| (*t, &i.mirror)))
    }

    /// Whether this torus's successor has applied its whole snapshot and
    /// log (the ring is healthy around it).
    pub fn replication_synced(&self) -> bool {
        match self.view.successor(self.id) {
            None => true,
            Some(s) => {
                self.out.target == Some(s) && self.out.synced() && self.out.applied == self.out.head
            }
        }
    }

    /// True if this torus may run its processes at `now`.
    pub fn lease_valid(&self, now: Time) -> bool {
        !self.joining && (self.view.successor(self.id).is_none() || now < self.lease_end)
    }

    /// Seq of the last entry appended to the replication log.
    pub fn log_head(&self) -> u64 {
        self.out.head
    }

    /// Migrations not yet durable.
    pub fn inflight(&self) -> usize {
        self.out.inflight.len()
    }

    /// Create a process here; it is committed once replicated (a
    /// [`Note::Committed`] is reported).
    pub fn spawn(&mut self, now: Time, class: u8, weight: u32) -> Pid {
        self.next_counter += 1;
        let pid = u64::from(self.id) << 48
            | u64::from(self.incarnation & 0xffff) << 32
            | u64::from(self.next_counter);
        let home = self
            .cfg
            .lattice
            .home_for(pid.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let rec = ProcRecord {
            pid,
            class: class % 4,
            weight: weight.max(1),
            progress: 0,
            home,
            gen: 0,
        };
        self.table.set(rec, Slot::Owned);
        let seq = self.out.append(Op::Upsert, 0, rec);
        self.out.notify_at(seq, Note::Committed(pid));
        self.schedule_slice(now, &rec);
        pid
    }

    /// End a process owned here; false if it is not owned (e.g. in flight)
    /// or has just migrated in and its giver has not yet forgotten it
    /// (retry later).
    pub fn exit(&mut self, pid: Pid) -> bool {
        if !self.table.owns(pid) || self.pinned.contains_key(&pid) || self.held(pid) {
            return false;
        }
        self.table.remove(pid);
        self.progress.remove(&pid);
        let seq = self.out.append(
            Op::Remove,
            0,
            ProcRecord {
                pid,
                ..ProcRecord::default()
            },
        );
        self.out.notify_at(seq, Note::ExitCommitted(pid));
        true
    }

    /// A process we resumed (or installed from a migration of the
    /// resumed predecessor) whose resumption our successor has not yet
    /// applied: like a pinned one, it may neither move on nor exit
    /// (docs/braid.md §8, resumption not yet replicated).
    pub(crate) fn held(&self, pid: Pid) -> bool {
        self.resumed
            .as_ref()
            .is_some_and(|(_, m)| m.mirror.get(pid).is_some())
    }

    pub(crate) fn schedule_slice(&mut self, now: Time, rec: &ProcRecord) {
        let cell = self.cfg.lattice.index(rec.home);
        let dt = self.cfg.slice * 1024 / u64::from(rec.weight.max(1));
        self.queue
            .push(Event::slice(now + dt.max(1), rec.pid, cell));
    }

    pub(crate) fn corrective(&mut self, now: Time, c: Corrective, arg: u64) {
        self.queue.push(Event {
            time: now,
            payload: arg,
            kind: kind::CORRECTIVE,
            aux: c as u16,
            target: 0,
        });
    }

    /// Handle the next event; returns its time, or `None` if the queue is
    /// empty. Events of user kinds are returned to the caller unhandled via
    /// `user`.
    pub fn step(
        &mut self,
        tx: &mut impl Transport,
        user: &mut impl FnMut(&mut Self, Event),
    ) -> Option<Time> {
        let ev = self.queue.pop()?;
        self.stats.events += 1;
        match ev.kind {
            kind::SLICE => self.run_slice(ev),
            kind::BRAID_TICK => self.tick(ev.time, tx),
            kind::CORRECTIVE => {}
            _ => user(self, ev),
        }
        Some(ev.time)
    }

    fn run_slice(&mut self, ev: Event) {
        let pid = ev.payload;
        let Some(&(rec, Slot::Owned)) = self.table.get(pid) else {
            return; // The process left or exited: the event is stale.
        };
        if !self.lease_valid(ev.time) {
            self.stats.frozen_slices += 1;
            let retry = ev.time + self.cfg.slice;
            self.queue.push(Event { time: retry, ..ev });
            return;
        }
        let done = self.progress.entry(pid).or_insert(0);
        *done += 1;
        // Checkpoints are state, not history: skip them while replication is
        // behind, so the fixed-size projections keep up (the next slice
        // retries, and a lost checkpoint only means resuming earlier).
        if *done >= self.cfg.checkpoint_every && self.out.backlog() < ENTRIES as u64 {
            let rec = ProcRecord {
                progress: rec.progress + *done,
                ..rec
            };
            *done = 0;
            self.table.set(rec, Slot::Owned);
            self.out.append(Op::Upsert, 0, rec);
        }
        self.schedule_slice(ev.time, &rec);
    }

    /// Publish the projection and run the periodic checks.
    fn tick(&mut self, now: Time, tx: &mut impl Transport) {
        // A tick that ran late: our host did not run us (Lifeguard's
        // local health).
        let gap = now.saturating_sub(core::mem::replace(&mut self.last_tick, now));
        self.note_lateness(now, gap);
        if !self.joining {
            self.detect_failure(now, tx);
        }
        self.maybe_switch_successor();
        if let Some(to) = self.out.target {
            let p = self.build_projection(now, to);
            let bytes = p.encode();
            self.last_proj_digest = crate::codec::record_digest(&bytes);
            self.sent.push_back((self.hb, now));
            if self.sent.len() > 256 {
                self.sent.pop_front();
            }
            tx.send(self.id, to, &bytes);
            // While draining migrations to the old successor after a join,
            // heartbeat the new one (no entries, no offers): it must not
            // take us for dead while it does not hold our replica yet.
            let next = self.view.successor(self.id);
            if !self.joining && next.is_some_and(|n| n != to) {
                let n = next.unwrap_or(to);
                self.hb += 1;
                let hb = Projection {
                    to: n,
                    heartbeat: self.hb,
                    chain: self.last_proj_digest,
                    n_entries: 0,
                    entries: Default::default(),
                    n_offers: 0,
                    offers: Default::default(),
                    ..p
                };
                let bytes = hb.encode();
                self.last_proj_digest = crate::codec::record_digest(&bytes);
                tx.send(self.id, n, &bytes);
            }
        }
        if !self.joining && !self.heard_pred_this_tick {
            // Nudge the predecessor: it carries our view, so a predecessor
            // that still sends elsewhere learns where to send.
            if let Some(pred) = self.view.predecessor(self.id) {
                self.send_ack(pred, 0, 0, tx);
            }
        }
        self.heard_pred_this_tick = false;
        let appended = core::mem::take(&mut self.out.appended);
        let next = self.interval.update(appended, self.table.total_load());
        self.queue.push(Event {
            time: now + next,
            kind: kind::BRAID_TICK,
            ..Event::default()
        });
    }

    fn build_projection(&mut self, now: Time, to: TorusId) -> Projection {
        self.hb += 1;
        let load = self.table.load();
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let mut p = Projection {
            from: self.id,
            to,
            incarnation: self.incarnation,
            epoch: self.view.epoch,
            members: self.view.members,
            heartbeat: self.hb,
            send_time: now,
            interval: sat(self.interval.current()),
            nprocs: sat(self.table.len() as u64),
            load: load.map(sat),
            free: sat(self.cfg.capacity.saturating_sub(self.table.total_load())),
            digest: self.table.digest(),
            log_head: self.out.head,
            chain: self.last_proj_digest,
            session: self.out.session,
            ..Projection::default()
        };
        if self.joining {
            p.flags |= F_JOIN;
        }
        if !self.lease_valid(now) {
            p.flags |= F_FROZEN;
        }
        if self
            .view
            .predecessor(self.id)
            .and_then(|q| self.inbound.get(&q))
            .is_some_and(|i| i.synced)
        {
            p.flags |= F_MIRROR_SYNCED;
        }
        // A joiner's `REPLICA` names the torus (and incarnation) whose
        // replica it kept (the hand-over rules, §8): its view may no
        // longer list that torus, and its successor must not take a stale
        // replica for the one it waits for. One that keeps a resumed
        // replica says `RESUMED` instead (not `REPLICA`: its successor
        // hands it over as the next incarnation of a torus it fenced),
        // naming the resumed torus: its successor must not hand it over
        // if that very incarnation is alive and replicating to it (our
        // previous incarnation's removal of it lost to the view that
        // fenced us, §8).
        if let Some((k, i)) = self.kept.as_ref() {
            p.flags |= if self.joining && self.kept_resumed {
                F_RESUMED
            } else {
                F_REPLICA
            };
            p.replica_of = *k;
            p.replica_inc = i.incarnation;
        }
        p.n_entries = self.out.window(&mut p.entries);
        if let Some(o) = self.choose_offer(now) {
            p.offers[0] = o;
            p.n_offers = 1;
        }
        if load[0] > self.cfg.capacity {
            p.corrective[0] = crate::projection::CorrectiveRequest {
                kind: CR_PRIORITY_DEMAND,
                pid: 0,
                arg: load[0],
            };
            p.n_corrective = 1;
        }
        if let Some((t, seq)) = self.digest_alert.take() {
            let i = usize::from(p.n_corrective);
            p.corrective[i] = crate::projection::CorrectiveRequest {
                kind: crate::projection::CR_DIGEST_ALERT,
                pid: t.into(),
                arg: seq,
            };
            p.n_corrective += 1;
        }
        p
    }

    /// Follow the view: start a session with a new successor once no
    /// migration to the old one (if it is still alive) is in flight.
    fn maybe_switch_successor(&mut self) {
        let desired = self.view.successor(self.id);
        if desired == self.out.target {
            return;
        }
        match (self.out.target, desired) {
            (_, None) => {
                // Alone: nobody to replicate to, nothing to hold for.
                self.out.target = None;
                self.out.hold = 0;
                self.resumed = None;
            }
            (Some(old), Some(_))
                if self.view.contains(old) && self.out.inflight.values().any(|f| f.0 == old) => {}
            (old, Some(new)) => {
                // In-flight migrations to a dead successor are redirected to
                // the new one (docs/braid.md §7); the new successor adopted
                // the dead one's state and drops duplicates.
                let stale: Vec<Pid> = self
                    .out
                    .inflight
                    .iter()
                    .filter(|(_, f)| Some(f.0) == old)
                    .map(|(p, _)| *p)
                    .collect();
                for pid in stale {
                    if let Some(&(rec, _)) = self.table.get(pid) {
                        self.table.set(rec, Slot::InFlight(new));
                        self.out.inflight.insert(pid, (new, 0));
                    }
                }
                self.out.start(new, &self.table);
                self.pending_offer = None;
                self.succ_load = None;
                let end = self.out.snapshot_end;
                for inb in self.inbound.values_mut() {
                    for d in &mut inb.derived {
                        d.1 = end;
                    }
                }
            }
        }
    }
}
