//! The checks a receiver makes on every projection from one sender before
//! using it (docs/braid.md §6): the heartbeat moves forward (an older or
//! repeated projection is stale), and a projection that directly follows
//! the last accepted one names that one's digest (otherwise the chain is
//! broken: something was lost, forged or reordered). Public so that every
//! transport of projections (the simulator's, the kernel's between CPU
//! tori) checks them the same way.

use crate::codec::record_digest;
use crate::projection::Projection;

/// What [`Chain::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New and consistent.
    Accept,
    /// Duplicate or reordered (heartbeat not newer).
    Stale,
    /// Heartbeat consecutive but the chain digest does not match.
    BrokenChain,
}

/// The last projection accepted from one sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Chain {
    last_hb: u64,
    last_digest: u64,
    heard: bool,
}

impl Chain {
    /// Nothing heard yet.
    pub const fn new() -> Chain {
        Chain {
            last_hb: 0,
            last_digest: 0,
            heard: false,
        }
    }

    /// Heartbeat monotonicity and the projection chain.
    pub fn check(&self, p: &Projection) -> Verdict {
        if p.heartbeat <= self.last_hb {
            Verdict::Stale
        } else if self.heard && p.heartbeat == self.last_hb + 1 && p.chain != self.last_digest {
            Verdict::BrokenChain
        } else {
            Verdict::Accept
        }
    }

    /// Records projection `p`, encoded as `bytes`, as the last one taken.
    pub fn accept(&mut self, p: &Projection, bytes: &[u8]) {
        self.last_hb = p.heartbeat;
        self.last_digest = record_digest(bytes);
        self.heard = true;
    }

    /// Whether a projection was ever taken.
    pub fn heard(&self) -> bool {
        self.heard
    }

    /// The heartbeat of the last projection taken.
    pub fn last_heartbeat(&self) -> u64 {
        self.last_hb
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proj(hb: u64, chain: u64) -> (Projection, [u8; crate::projection::PROJ_LEN]) {
        let p = Projection {
            heartbeat: hb,
            chain,
            ..Projection::default()
        };
        let b = p.encode();
        (p, b)
    }

    #[test]
    fn follows_a_chain_and_rejects_breaks_and_replays() {
        let mut c = Chain::new();
        let (p1, b1) = proj(1, 0);
        assert_eq!(c.check(&p1), Verdict::Accept);
        c.accept(&p1, &b1);
        let (p2, b2) = proj(2, record_digest(&b1));
        assert_eq!(c.check(&p2), Verdict::Accept);
        c.accept(&p2, &b2);
        // A replay, and an older one.
        assert_eq!(c.check(&p2), Verdict::Stale);
        assert_eq!(c.check(&p1), Verdict::Stale);
        // The next one naming the wrong predecessor.
        let (p3, _) = proj(3, record_digest(&b1));
        assert_eq!(c.check(&p3), Verdict::BrokenChain);
        // A gap (some were lost): nothing to compare with, accepted.
        let (p5, _) = proj(5, 12345);
        assert_eq!(c.check(&p5), Verdict::Accept);
        assert!(c.heard());
        assert_eq!(c.last_heartbeat(), 2);
    }
}
