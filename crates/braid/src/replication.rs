//! The outgoing half of chain replication: a torus's log for its current
//! successor, sent as a go-back-N window of projection entries
//! (docs/braid.md §3).

use crate::projection::{LogEntry, Op, ENTRIES};
use crate::table::{Pid, ProcRecord, Slot, Table, TorusId};
use alloc::collections::{BTreeMap, VecDeque};

/// Something the protocol reports to its host when it becomes true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Note {
    /// The spawn (or migration-in) of this process is now committed.
    Committed(Pid),
    /// The exit of this process is now committed.
    ExitCommitted(Pid),
    /// The predecessor was declared failed and its processes resumed here.
    Reconstructed {
        /// The failed torus.
        failed: TorusId,
        /// Processes resumed.
        procs: usize,
    },
    /// This torus was fenced and restarted as a new incarnation.
    Fenced,
    /// This torus (re)joined the ring.
    Joined,
}

/// The log and send window for one replication session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct OutSession {
    pub target: Option<TorusId>,
    /// Incarnation of `target` seen in its acks (`None` until the first).
    pub target_inc: Option<u32>,
    pub session: u32,
    log: VecDeque<LogEntry>,
    pub head: u64,
    pub applied: u64,
    pub durable: u64,
    cursor: u64,
    stall: u32,
    pub snapshot_end: u64,
    pending: VecDeque<(u64, Note)>,
    /// Migrations out that are not yet durable: pid → (to, seq).
    pub inflight: BTreeMap<Pid, (TorusId, u64)>,
    pub appended: u64,
    /// Seq (this session) up to which the successor must apply our log
    /// before we may drop the mirror of a predecessor we resumed (0: none;
    /// a new session moves it to its snapshot's end).
    pub hold: u64,
}

impl OutSession {
    /// Append an entry; returns its seq.
    pub fn append(&mut self, op: Op, to: TorusId, rec: ProcRecord) -> u64 {
        self.head += 1;
        self.appended += 1;
        self.log.push_back(LogEntry {
            seq: self.head,
            op,
            to,
            rec,
        });
        self.head
    }

    /// Report `note` once everything up to `seq` is applied.
    pub fn notify_at(&mut self, seq: u64, note: Note) {
        self.pending.push_back((seq, note));
    }

    /// Start a new session to `target` with a snapshot of `table`.
    pub fn start(&mut self, target: TorusId, table: &Table) {
        if self.target != Some(target) {
            self.target_inc = None;
        }
        self.target = Some(target);
        self.session = self.session.wrapping_add(1).max(1);
        self.log.clear();
        self.head = 0;
        self.applied = 0;
        self.durable = 0;
        self.cursor = 1;
        self.stall = 0;
        self.append(Op::Reset, 0, ProcRecord::default());
        for (rec, slot) in table.iter() {
            let seq = match slot {
                Slot::Owned => self.append(Op::Upsert, 0, *rec),
                Slot::InFlight(to) => self.append(Op::MigrateOut, to, *rec),
            };
            if let Some(f) = self.inflight.get_mut(&rec.pid) {
                f.1 = seq;
            }
        }
        self.snapshot_end = self.append(Op::SnapshotEnd, 0, ProcRecord::default());
        if self.hold != 0 {
            self.hold = self.snapshot_end;
        }
        // Everything not yet committed is in the snapshot.
        for p in &mut self.pending {
            p.0 = self.snapshot_end;
        }
    }

    /// Entries appended but not yet applied by the successor.
    pub fn backlog(&self) -> u64 {
        self.head - self.applied
    }

    /// True once the successor has applied the whole snapshot.
    pub fn synced(&self) -> bool {
        self.target.is_some() && self.applied >= self.snapshot_end
    }

    /// True if `seq` of this session has been applied by the successor.
    pub fn is_applied(&self, seq: u64) -> bool {
        self.target.is_none() || self.applied >= seq
    }

    /// The next window of entries to send.
    pub fn window(&mut self, out: &mut [LogEntry; ENTRIES]) -> u8 {
        if self.cursor <= self.applied {
            self.cursor = self.applied + 1;
        }
        let mut n = 0;
        for e in self
            .log
            .iter()
            .skip_while(|e| e.seq < self.cursor)
            .take(ENTRIES)
        {
            out[n] = *e;
            n += 1;
        }
        self.cursor += n as u64;
        if self.applied < self.head {
            self.stall += 1;
            if self.stall > 2 {
                // No progress: go back to the first unapplied entry.
                self.cursor = self.applied + 1;
                self.stall = 0;
            }
        }
        n as u8
    }

    /// Process an ack; returns notes that became committed.
    pub fn on_ack(
        &mut self,
        session: u32,
        applied: u64,
        durable: u64,
        notes: &mut alloc::vec::Vec<Note>,
    ) {
        if session != self.session || applied > self.head {
            return;
        }
        if applied > self.applied {
            self.applied = applied;
            self.stall = 0;
            while self.log.front().is_some_and(|e| e.seq <= applied) {
                self.log.pop_front();
            }
            while let Some(&(s, n)) = self.pending.front() {
                if s > applied {
                    break;
                }
                notes.push(n);
                self.pending.pop_front();
            }
        }
        if self.hold != 0 && self.applied >= self.hold {
            self.hold = 0;
        }
        self.durable = self.durable.max(durable.min(self.applied));
    }
}
