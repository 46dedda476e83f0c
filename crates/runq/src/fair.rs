//! The queued (not running) fair tasks: ordered by virtual deadline, with
//! the weight sums needed for the load-weighted average vruntime V.

use alloc::collections::VecDeque;

use crate::entity::Entity;

/// Queued fair tasks in a ring buffer (`VecDeque`) sorted by deadline,
/// earliest first; among equal deadlines the task queued first comes first
/// (first-come first-served ties).
///
/// The buffer only ever grows (removals keep the capacity), so once it has
/// held as many tasks as the queue ever holds, insert and remove never touch
/// the heap: a context switch or wake-up does no allocation. Insertion is a
/// binary search plus moving the *shorter* side of the ring, so both common
/// cases are O(1): picking the earliest deadline (the front) and queueing a
/// task with a fresh request (a late deadline, near the back). The worst
/// case is O(n) moves of small entries, which for the queue sizes a CPU
/// sees (0-4 tasks, occasionally hundreds) is cheaper than any tree, and
/// unlike a tree never allocates per task.
pub(crate) struct FairQueue<T> {
    pub(crate) tasks: VecDeque<(T, Entity)>,
    /// Sum of weights. Wrapping add/sub is exact as long as the true sum
    /// fits, which it does (88761 < 2^17 per task).
    sum_w: u64,
    /// Sum of weight * vruntime, exact modulo 2^128 for the same reason;
    /// the true value is < 2^17 * 2^64 * tasks. (u128 additions are two
    /// instructions; only the division for V needs care, see `average`.)
    sum_wv: u128,
}

impl<T> FairQueue<T> {
    pub(crate) const fn new() -> Self {
        FairQueue {
            tasks: VecDeque::new(),
            sum_w: 0,
            sum_wv: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// (sum of weight*vruntime, sum of weight) over the queued tasks.
    pub(crate) fn sums(&self) -> (u128, u64) {
        (self.sum_wv, self.sum_w)
    }

    pub(crate) fn sum_weight(&self) -> u64 {
        self.sum_w
    }

    pub(crate) fn insert(&mut self, t: T, e: Entity) {
        self.sum_w = self.sum_w.wrapping_add(u64::from(e.weight()));
        self.sum_wv = self.sum_wv.wrapping_add(weighted(&e));
        // After every task with a deadline <= ours (served first on ties).
        let d = e.deadline;
        let at = self.tasks.partition_point(|(_, x)| x.deadline <= d);
        insert_at(&mut self.tasks, at, (t, e));
    }

    /// Removes the task at `idx` (an index into `tasks`).
    pub(crate) fn remove(&mut self, idx: usize) -> Option<(T, Entity)> {
        let (t, e) = remove_at(&mut self.tasks, idx)?;
        self.sum_w = self.sum_w.wrapping_sub(u64::from(e.weight()));
        self.sum_wv = self.sum_wv.wrapping_sub(weighted(&e));
        Some((t, e))
    }

    /// EEVDF pick: the index of the earliest deadline among eligible tasks,
    /// where the sums (`s`, `w`) describe every fair task on the queue
    /// (queued plus running). With no running task the minimum-vruntime
    /// task is always eligible; the fallback to the earliest deadline only
    /// matters if saturation ever broke that.
    pub(crate) fn pick_idx(&self, s: u128, w: u64) -> Option<usize> {
        if self.tasks.is_empty() {
            return None;
        }
        let found = self
            .tasks
            .iter()
            .position(|(_, e)| eligible(e, s, w))
            .unwrap_or(0);
        Some(found)
    }

    /// Applies `f` to every queued entity (which may change vruntimes and
    /// deadlines), then restores the deadline order and the sums. Ties keep
    /// their current order (stable sort). Rare (rebasing), so it may
    /// allocate.
    pub(crate) fn update_all(&mut self, mut f: impl FnMut(&mut Entity)) {
        for (_, e) in self.tasks.iter_mut() {
            f(e);
        }
        self.tasks
            .make_contiguous()
            .sort_by_key(|(_, e)| e.deadline);
        let (mut s, mut w) = (0u128, 0u64);
        for (_, e) in &self.tasks {
            s = s.wrapping_add(weighted(e));
            w = w.wrapping_add(u64::from(e.weight()));
        }
        self.sum_wv = s;
        self.sum_w = w;
    }

    /// Takes every queued task, earliest deadline first; keeps the capacity.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (T, Entity)> + '_ {
        self.sum_w = 0;
        self.sum_wv = 0;
        self.tasks.drain(..)
    }
}

/// `VecDeque::insert` with the two common cases (either end) short-cut:
/// the general insert costs over a hundred instructions even when nothing
/// needs to move.
pub(crate) fn insert_at<X>(q: &mut VecDeque<X>, at: usize, x: X) {
    if at >= q.len() {
        q.push_back(x);
    } else if at == 0 {
        q.push_front(x);
    } else {
        q.insert(at, x);
    }
}

/// `VecDeque::remove` with the ends short-cut, like [`insert_at`].
pub(crate) fn remove_at<X>(q: &mut VecDeque<X>, idx: usize) -> Option<X> {
    if idx == 0 {
        q.pop_front()
    } else if idx + 1 == q.len() {
        q.pop_back()
    } else {
        q.remove(idx)
    }
}

/// weight * vruntime; cannot overflow u128 (u32 * u64: a single 64x64->128
/// multiply).
pub(crate) fn weighted(e: &Entity) -> u128 {
    u128::from(u64::from(e.weight())) * u128::from(e.vruntime)
}

/// EEVDF eligibility: lag >= 0, i.e. vruntime <= V = s / w, compared
/// without the division so rounding never makes the minimum ineligible.
/// `vruntime * w` is u64 * u64, exact in u128 (one multiply).
pub(crate) fn eligible(e: &Entity, s: u128, w: u64) -> bool {
    w == 0 || u128::from(e.vruntime) * u128::from(w) <= s
}

/// `s / w` (the weighted average vruntime) for `w > 0`, saturated to u64.
/// The true average of u64 values always fits; the u64 division is the fast
/// path (it holds while sum(weight * vruntime) < 2^64, e.g. ~50 nice-0
/// tasks at vruntimes below 4 days) and avoids the slow 128-bit division.
pub(crate) fn average(s: u128, w: u64) -> Option<u64> {
    if w == 0 {
        return None;
    }
    Some(match u64::try_from(s) {
        Ok(s) => s / w,
        Err(_) => u64::try_from(s / u128::from(w)).unwrap_or(u64::MAX),
    })
}
