//! The process table: a torus's committed state, with an O(1) digest.
//!
//! The same type holds a torus's own processes and its mirror of its
//! predecessor's, so that reconstruction is a copy and digests compare
//! directly.

use crate::lattice::Coord;
use alloc::collections::BTreeMap;

/// Process id: `torus << 48 | incarnation << 32 | counter`, never reused.
pub type Pid = u64;

/// Identifies a torus (`0..MAX_TORI`).
pub type TorusId = u16;

/// Number of priority classes (0 real time, 1 high, 2 normal, 3 low).
pub const CLASSES: usize = 4;

/// What the protocol knows about one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct ProcRecord {
    /// Process id.
    pub pid: Pid,
    /// Priority class, `< CLASSES`.
    pub class: u8,
    /// Scheduling weight (Linux `sched_prio_to_weight` scale).
    pub weight: u32,
    /// Checkpointed progress: slices run up to the last checkpoint.
    pub progress: u64,
    /// Home cell on the owning torus.
    pub home: Coord,
    /// Number of completed migrations.
    pub gen: u32,
}

/// Whether a table entry may run here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Owned and runnable here.
    Owned,
    /// Committed to migrate to this torus; not runnable here.
    InFlight(TorusId),
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Order-independent hash of one entry; the table digest is their sum.
pub fn entry_hash(r: &ProcRecord, s: Slot) -> u64 {
    let slot = match s {
        Slot::Owned => 0,
        Slot::InFlight(t) => 1 + u64::from(t),
    };
    let home = u64::from(r.home.x) | u64::from(r.home.y) << 8 | u64::from(r.home.z) << 16;
    let mut h = mix(r.pid);
    for v in [
        u64::from(r.class) << 32 | u64::from(r.weight),
        r.progress,
        home << 32 | u64::from(r.gen),
        slot,
    ] {
        h = mix(h ^ v);
    }
    h
}

/// A process table with incrementally maintained digest and load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Table {
    map: BTreeMap<Pid, (ProcRecord, Slot)>,
    digest: u64,
    load: [u64; CLASSES],
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set `rec.pid` to `(rec, slot)`, replacing any previous entry.
    pub fn set(&mut self, rec: ProcRecord, slot: Slot) {
        self.remove(rec.pid);
        self.digest = self.digest.wrapping_add(entry_hash(&rec, slot));
        if slot == Slot::Owned {
            self.load[usize::from(rec.class) % CLASSES] += u64::from(rec.weight);
        }
        self.map.insert(rec.pid, (rec, slot));
    }

    /// Remove `pid`, returning its entry.
    pub fn remove(&mut self, pid: Pid) -> Option<(ProcRecord, Slot)> {
        let (rec, slot) = self.map.remove(&pid)?;
        self.digest = self.digest.wrapping_sub(entry_hash(&rec, slot));
        if slot == Slot::Owned {
            self.load[usize::from(rec.class) % CLASSES] -= u64::from(rec.weight);
        }
        Some((rec, slot))
    }

    /// The entry for `pid`.
    pub fn get(&self, pid: Pid) -> Option<&(ProcRecord, Slot)> {
        self.map.get(&pid)
    }

    /// True if `pid` is here and runnable.
    pub fn owns(&self, pid: Pid) -> bool {
        matches!(self.map.get(&pid), Some((_, Slot::Owned)))
    }

    /// All entries in pid order.
    pub fn iter(&self) -> impl Iterator<Item = (&ProcRecord, Slot)> {
        self.map.values().map(|(r, s)| (r, *s))
    }

    /// Number of entries (owned and in flight).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Remove every entry.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The incrementally maintained digest.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The digest recomputed from scratch (for verification).
    pub fn recompute_digest(&self) -> u64 {
        self.map
            .values()
            .fold(0u64, |d, (r, s)| d.wrapping_add(entry_hash(r, *s)))
    }

    /// Runnable weight per class.
    pub fn load(&self) -> [u64; CLASSES] {
        self.load
    }

    /// Total runnable weight.
    pub fn total_load(&self) -> u64 {
        self.load.iter().sum()
    }

    /// Corrupt the digest without touching entries (tests prove checks fail).
    #[cfg(test)]
    pub(crate) fn poison_digest(&mut self) {
        self.digest ^= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pid: Pid, w: u32) -> ProcRecord {
        ProcRecord {
            pid,
            class: 2,
            weight: w,
            ..ProcRecord::default()
        }
    }

    #[test]
    fn digest_is_order_independent_and_incremental() {
        let mut a = Table::new();
        let mut b = Table::new();
        a.set(rec(1, 10), Slot::Owned);
        a.set(rec(2, 20), Slot::InFlight(3));
        b.set(rec(2, 20), Slot::InFlight(3));
        b.set(rec(1, 10), Slot::Owned);
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest(), a.recompute_digest());
        assert_eq!(a.total_load(), 10);
        a.set(rec(1, 11), Slot::Owned);
        assert_ne!(a.digest(), b.digest());
        a.remove(2);
        assert_eq!(a.digest(), a.recompute_digest());
        assert_eq!(a.total_load(), 11);
    }
}
