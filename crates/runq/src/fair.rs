//! The queued (not running) fair tasks, ordered by virtual deadline, and
//! the arithmetic behind the load-weighted average vruntime V.

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
///
/// The weight sums behind V live in the `RunQueue`, not here: they cover
/// the running task too, so moving a task between queued and running (every
/// pick and preemption) leaves them alone.
pub(crate) struct FairQueue<T> {
    pub(crate) tasks: VecDeque<(T, Entity)>,
}

impl<T> FairQueue<T> {
    pub(crate) const fn new() -> Self {
        FairQueue {
            tasks: VecDeque::new(),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    #[inline]
    pub(crate) fn insert(&mut self, t: T, e: Entity) {
        let d = e.deadline;
        // After every task with a deadline <= ours (served first on ties).
        insert_sorted(&mut self.tasks, (t, e), |(_, x)| x.deadline <= d);
    }

    /// Removes the task at `idx` (an index into `tasks`).
    #[inline]
    pub(crate) fn remove(&mut self, idx: usize) -> Option<(T, Entity)> {
        remove_at(&mut self.tasks, idx)
    }

    /// EEVDF pick: the index of the earliest deadline among eligible tasks,
    /// where the sums (`s`, `w`) describe every fair task on the queue
    /// (queued plus running). With no running task the minimum-vruntime
    /// task is always eligible; the fallback to the earliest deadline only
    /// matters if saturation ever broke that.
    #[inline]
    pub(crate) fn pick_idx(&self, s: u128, w: u64) -> Option<usize> {
        let first = self.tasks.front()?;
        // A lone task is taken whether eligible or not (the fallback), and
        // the earliest deadline usually is eligible: only scan otherwise.
        if self.tasks.len() == 1 || eligible(&first.1, s, w) {
            return Some(0);
        }
        let found = self
            .tasks
            .iter()
            .position(|(_, e)| eligible(e, s, w))
            .unwrap_or(0);
        Some(found)
    }

    /// Applies `f` to every queued entity (which may change vruntimes and
    /// deadlines), then restores the deadline order. Ties keep their
    /// current order (stable sort). Rare (rebasing), so it may allocate.
    pub(crate) fn update_all(&mut self, mut f: impl FnMut(&mut Entity)) {
        for (_, e) in self.tasks.iter_mut() {
            f(e);
        }
        self.tasks
            .make_contiguous()
            .sort_by_key(|(_, e)| e.deadline);
    }

    /// Takes every queued task, earliest deadline first; keeps the capacity.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (T, Entity)> + '_ {
        self.tasks.drain(..)
    }
}

/// Inserts `x` into `q`, which `goes_before` partitions (true for a prefix
/// of the entries, those that stay ahead of `x`). The back is tried before
/// anything else: it is where a fresh request goes, and with a single place
/// that writes the entry here the compiler stores it straight into its slot
/// instead of assembling it on the stack first.
#[inline]
pub(crate) fn insert_sorted<X>(q: &mut VecDeque<X>, x: X, goes_before: impl Fn(&X) -> bool) {
    if q.back().is_none_or(&goes_before) {
        q.push_back(x);
    } else {
        insert_sorted_slow(q, x, goes_before);
    }
}

/// [`insert_sorted`] when `x` does not go last. The front (a preempted RT
/// task, a woken task with the earliest deadline) is still O(1); the
/// binary search and `VecDeque::insert` cost several times as much even
/// when nothing moves.
#[inline(never)]
fn insert_sorted_slow<X>(q: &mut VecDeque<X>, x: X, goes_before: impl Fn(&X) -> bool) {
    if q.front().is_some_and(|f| !goes_before(f)) {
        q.push_front(x);
    } else {
        let at = q.partition_point(goes_before);
        q.insert(at, x);
    }
}

/// `VecDeque::remove` with the ends short-cut, like [`insert_sorted`].
#[inline]
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
#[inline]
pub(crate) fn weighted(e: &Entity) -> u128 {
    u128::from(u64::from(e.weight())) * u128::from(e.vruntime)
}

/// EEVDF eligibility: lag >= 0, i.e. vruntime <= V = s / w, compared
/// without the division so rounding never makes the minimum ineligible.
/// `vruntime * w` is u64 * u64, exact in u128 (one multiply).
#[inline]
pub(crate) fn eligible(e: &Entity, s: u128, w: u64) -> bool {
    w == 0 || u128::from(e.vruntime) * u128::from(w) <= s
}

/// `s / w` (the weighted average vruntime) for `w > 0`, saturated to u64.
/// The true average of u64 values always fits; the u64 division is the fast
/// path (it holds while sum(weight * vruntime) < 2^64, e.g. ~50 nice-0
/// tasks at vruntimes below 4 days) and avoids the slow 128-bit division.
#[inline]
pub(crate) fn average(s: u128, w: u64) -> Option<u64> {
    if w == 0 {
        return None;
    }
    Some(match u64::try_from(s) {
        Ok(s) => s / w,
        Err(_) => u64::try_from(s / u128::from(w)).unwrap_or(u64::MAX),
    })
}
