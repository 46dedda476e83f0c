//! The simulated network: delivers records after a delay and injects
//! faults (drop, duplicate, delay/reorder, corrupt, partition).

use super::rng::Rng;
use crate::codec::crc;
use crate::event::Time;
use crate::table::TorusId;
use crate::torus::Transport;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Link fault rates (per mille, per record).
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkFaults {
    /// Drop the record.
    pub drop: u32,
    /// Deliver it twice.
    pub dup: u32,
    /// Flip 1–3 bits (or truncate) in it.
    pub corrupt: u32,
    /// Extra random delay up to this many ns (reorders records).
    pub jitter: u64,
}

/// A record in flight.
#[derive(Clone, Debug)]
pub struct Msg {
    /// Sender.
    pub from: TorusId,
    /// Receiver.
    pub to: TorusId,
    /// The record, possibly damaged.
    pub bytes: Vec<u8>,
    /// True if the network damaged it (the receiver must reject it).
    pub corrupted: bool,
}

/// The network.
pub struct Net {
    pub(crate) faults: LinkFaults,
    pub(crate) latency: Time,
    pub(crate) rng: Rng,
    pub(crate) now: Time,
    pub(crate) isolated: Option<TorusId>,
    /// Test hook: one-way links cut (sender, receiver); records on them
    /// are dropped when sent and when due.
    pub(crate) cut: Vec<(TorusId, TorusId)>,
    /// Test hook: damage records *and* re-seal the checksum, which the
    /// corruption invariant must catch.
    pub(crate) reseal_corruption: bool,
    seq: u64,
    pub(crate) inflight: BTreeMap<(Time, u64), Msg>,
    /// Records handed over, for statistics.
    pub sent: u64,
}

impl Net {
    /// A network with a base latency.
    pub fn new(faults: LinkFaults, latency: Time, seed: u64) -> Self {
        Net {
            faults,
            latency,
            rng: Rng::new(seed ^ 0xA11CE),
            now: 0,
            isolated: None,
            cut: Vec::new(),
            reseal_corruption: false,
            seq: 0,
            inflight: BTreeMap::new(),
            sent: 0,
        }
    }

    /// Time of the next delivery.
    pub fn next_time(&self) -> Option<Time> {
        self.inflight.keys().next().map(|k| k.0)
    }

    /// Take the next delivery.
    pub fn pop(&mut self) -> Option<(Time, Msg)> {
        let (&k, _) = self.inflight.iter().next()?;
        self.inflight.remove(&k).map(|m| (k.0, m))
    }

    fn enqueue(&mut self, m: Msg) {
        let jitter = if self.faults.jitter > 0 {
            self.rng.below(self.faults.jitter)
        } else {
            0
        };
        self.seq += 1;
        self.inflight
            .insert((self.now + self.latency + jitter, self.seq), m);
    }

    fn damage(&mut self, b: &mut Vec<u8>) {
        if self.rng.chance(100) && !self.reseal_corruption {
            let keep = self.rng.below(b.len() as u64) as usize;
            b.truncate(keep);
            return;
        }
        let flips = 1 + self.rng.below(3);
        let limit = if self.reseal_corruption {
            b.len() - 4
        } else {
            b.len()
        };
        // Distinct bits: flipping one bit twice would hand over an intact
        // record marked as corrupted.
        let mut bits = [usize::MAX; 3];
        for i in 0..flips as usize {
            let mut bit = self.rng.below(limit as u64 * 8) as usize;
            while bits[..i].contains(&bit) {
                bit = self.rng.below(limit as u64 * 8) as usize;
            }
            bits[i] = bit;
            b[bit / 8] ^= 1 << (bit % 8);
        }
        if self.reseal_corruption {
            let n = b.len();
            let c = crc(&b[..n - 4]);
            b[n - 4..].copy_from_slice(&c.to_le_bytes());
        }
    }
}

impl Transport for Net {
    fn send(&mut self, from: TorusId, to: TorusId, bytes: &[u8]) {
        self.sent += 1;
        if self.isolated.is_some_and(|t| t == from || t == to)
            || self.cut.contains(&(from, to))
            || self.rng.chance(self.faults.drop)
        {
            return;
        }
        let copies = if self.rng.chance(self.faults.dup) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut m = Msg {
                from,
                to,
                bytes: bytes.to_vec(),
                corrupted: false,
            };
            if self.rng.chance(self.faults.corrupt) {
                self.damage(&mut m.bytes);
                m.corrupted = true;
            }
            self.enqueue(m);
        }
    }
}
