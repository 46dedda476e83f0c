//! The queued (not running) fair tasks: ordered by virtual deadline, with
//! the weight sums needed for the load-weighted average vruntime V.

use alloc::collections::btree_map::{BTreeMap, Entry};

use crate::entity::Entity;

/// Queued fair tasks keyed by (deadline, seq); `seq` makes keys unique and
/// breaks deadline ties first-come first-served.
pub(crate) struct FairQueue<T> {
    pub(crate) tree: BTreeMap<(u64, u64), (T, Entity)>,
    /// Sum of weights. Wrapping add/sub is exact as long as the true sum
    /// fits, which it does (88761 * tasks).
    sum_w: u64,
    /// Sum of weight * vruntime, exact modulo 2^128 for the same reason;
    /// the true value is < 2^17 * 2^64 * tasks.
    sum_wv: u128,
    seq: u64,
}

impl<T> FairQueue<T> {
    pub(crate) const fn new() -> Self {
        FairQueue {
            tree: BTreeMap::new(),
            sum_w: 0,
            sum_wv: 0,
            seq: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tree.len()
    }

    /// (sum of weight*vruntime, sum of weight) over the queued tasks.
    pub(crate) fn sums(&self) -> (u128, u128) {
        (self.sum_wv, u128::from(self.sum_w))
    }

    pub(crate) fn sum_weight(&self) -> u64 {
        self.sum_w
    }

    pub(crate) fn insert(&mut self, t: T, e: Entity) {
        let w = e.weight();
        self.sum_w = self.sum_w.wrapping_add(u64::from(w));
        self.sum_wv = self.sum_wv.wrapping_add(weighted(&e));
        // `seq` wraps after 2^64 inserts; probing for a free key guarantees
        // an insert can never overwrite (and so lose) a queued task.
        loop {
            self.seq = self.seq.wrapping_add(1);
            match self.tree.entry((e.deadline, self.seq)) {
                Entry::Vacant(v) => {
                    v.insert((t, e));
                    return;
                }
                Entry::Occupied(_) => continue,
            }
        }
    }

    pub(crate) fn remove(&mut self, key: (u64, u64)) -> Option<(T, Entity)> {
        let (t, e) = self.tree.remove(&key)?;
        self.sum_w = self.sum_w.wrapping_sub(u64::from(e.weight()));
        self.sum_wv = self.sum_wv.wrapping_sub(weighted(&e));
        Some((t, e))
    }

    /// EEVDF pick: the earliest deadline among eligible tasks, where the
    /// sums (`s`, `w`) describe every fair task on the queue (queued plus
    /// running). With no running task the minimum-vruntime task is always
    /// eligible; the fallback to the earliest deadline only matters if
    /// saturation ever broke that.
    pub(crate) fn pick_key(&self, s: u128, w: u128) -> Option<(u64, u64)> {
        self.tree
            .iter()
            .find(|(_, (_, e))| eligible(e, s, w))
            .or_else(|| self.tree.iter().next())
            .map(|(k, _)| *k)
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (T, Entity)> {
        self.sum_w = 0;
        self.sum_wv = 0;
        core::mem::take(&mut self.tree).into_values()
    }
}

/// weight * vruntime; cannot overflow u128 (u32 * u64).
pub(crate) fn weighted(e: &Entity) -> u128 {
    u128::from(e.weight()) * u128::from(e.vruntime)
}

/// EEVDF eligibility: lag >= 0, i.e. vruntime <= V = s / w, compared
/// without the division so rounding never makes the minimum ineligible.
/// `vruntime * w` fits u128 (u64 * u64).
pub(crate) fn eligible(e: &Entity, s: u128, w: u128) -> bool {
    w == 0 || u128::from(e.vruntime).saturating_mul(w) <= s
}
