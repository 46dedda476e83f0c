//! The receiving half: per-sender verification state and the mirror of the
//! sender's table (docs/braid.md §6).

use crate::chain::Chain;
pub(crate) use crate::chain::Verdict;
use crate::projection::Projection;
use crate::table::Table;
use alloc::collections::VecDeque;

/// What a torus knows about one sender of projections to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Inbound {
    pub incarnation: u32,
    /// Heartbeat and digest chain of what this sender sent.
    pub chain: Chain,
    pub last_arrival: u64,
    pub session: u32,
    pub applied: u64,
    pub synced: bool,
    pub mirror: Table,
    pub reset_time: u64,
    pub load: u64,
    pub need_resync: bool,
    pub priority_demand: bool,
    /// Migrations in: (sender's seq, my seq of the resulting Upsert).
    pub derived: VecDeque<(u64, u64)>,
}

impl Inbound {
    pub fn new(incarnation: u32) -> Self {
        Inbound {
            incarnation,
            ..Inbound::default()
        }
    }

    /// Heartbeat monotonicity and the projection chain.
    pub fn check(&self, p: &Projection) -> Verdict {
        self.chain.check(p)
    }

    /// Whether a projection was ever accepted from this sender.
    pub fn heard(&self) -> bool {
        self.chain.heard()
    }

    /// Record an accepted projection.
    pub fn accept(&mut self, p: &Projection, bytes: &[u8], now: u64) {
        self.chain.accept(p, bytes);
        self.last_arrival = now;
        self.load = p.load.iter().map(|&l| u64::from(l)).sum();
    }

    /// True when the mirror claims to be complete at the sender's log head
    /// but its digest differs from the sender's.
    pub fn diverged(&self, p: &Projection) -> bool {
        self.synced
            && p.session == self.session
            && self.applied == p.log_head
            && self.mirror.digest() != p.digest
    }
}
