//! The queued real-time tasks: one FIFO list per priority, highest priority
//! first.

use alloc::collections::VecDeque;

use crate::entity::Entity;
use crate::fair::{insert_sorted, remove_at};

/// All priority lists in one ring buffer (`VecDeque`), sorted by (kernel
/// prio, list position): the head of the most important list (kernel prio
/// 0 is RT priority 99) is the front. Each entry carries its kernel prio so
/// searches need not recompute it.
///
/// Like the fair queue, the buffer keeps its capacity, so once warmed up no
/// operation allocates; insertion is a binary search plus moving the
/// shorter side of the ring (O(1) for the common cases: the only priority
/// in use, or a preempted head going back to the front).
pub(crate) struct RtQueue<T> {
    pub(crate) tasks: VecDeque<(u32, T, Entity)>,
}

impl<T> RtQueue<T> {
    pub(crate) const fn new() -> Self {
        RtQueue {
            tasks: VecDeque::new(),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// To the tail of its priority list.
    #[inline]
    pub(crate) fn push_back(&mut self, t: T, e: Entity) {
        let prio = e.params.kernel_prio();
        // After every entry of the same (or a more important) prio.
        insert_sorted(&mut self.tasks, (prio, t, e), |(p, _, _)| *p <= prio);
    }

    /// A preempted RT task keeps the head of its list (POSIX: "stays at the
    /// head of the list for its priority").
    #[inline]
    pub(crate) fn push_front(&mut self, t: T, e: Entity) {
        let prio = e.params.kernel_prio();
        // Before every entry of the same (or a less important) prio.
        insert_sorted(&mut self.tasks, (prio, t, e), |(p, _, _)| *p < prio);
    }

    #[inline]
    pub(crate) fn pop_first(&mut self) -> Option<(T, Entity)> {
        self.tasks.pop_front().map(|(_, t, e)| (t, e))
    }

    /// Kernel prio of the most important queued task.
    #[inline]
    pub(crate) fn best_prio(&self) -> Option<u32> {
        self.tasks.front().map(|(p, _, _)| *p)
    }

    /// Whether some task of exactly kernel prio `prio` is queued.
    #[inline]
    pub(crate) fn has_prio(&self, prio: u32) -> bool {
        let at = self.tasks.partition_point(|(p, _, _)| *p < prio);
        self.tasks.get(at).is_some_and(|(p, _, _)| *p == prio)
    }

    /// Removes the entry at `idx` (an index into `tasks`).
    pub(crate) fn remove(&mut self, idx: usize) -> Option<(T, Entity)> {
        remove_at(&mut self.tasks, idx).map(|(_, t, e)| (t, e))
    }

    /// Takes every queued task, most important first (each list head to
    /// tail); keeps the capacity.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (T, Entity)> + '_ {
        self.tasks.drain(..).map(|(_, t, e)| (t, e))
    }
}
