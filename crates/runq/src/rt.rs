//! The queued real-time tasks: one FIFO list per priority, highest priority
//! first.

use alloc::collections::btree_map::{BTreeMap, Entry};

use crate::entity::Entity;

/// Keyed by (kernel prio, order): kernel prio 0 is RT priority 99, so the
/// first entry is the most important. Within a priority `order` is the list
/// position: push_back takes increasing numbers, push_front decreasing ones.
pub(crate) struct RtQueue<T> {
    pub(crate) map: BTreeMap<(u32, i64), (T, Entity)>,
    front: i64,
    back: i64,
}

impl<T> RtQueue<T> {
    pub(crate) const fn new() -> Self {
        RtQueue {
            map: BTreeMap::new(),
            front: 0,
            back: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn push_back(&mut self, t: T, e: Entity) {
        self.push(t, e, true);
    }

    /// A preempted RT task keeps the head of its list (POSIX: "stays at the
    /// head of the list for its priority").
    pub(crate) fn push_front(&mut self, t: T, e: Entity) {
        self.push(t, e, false);
    }

    fn push(&mut self, t: T, e: Entity, back: bool) {
        let prio = e.params.kernel_prio();
        // The counters would need 2^63 operations to meet; probing for a
        // free key still guarantees no insert ever overwrites a task.
        loop {
            let order = if back {
                let o = self.back;
                self.back = self.back.wrapping_add(1);
                o
            } else {
                self.front = self.front.wrapping_sub(1);
                self.front
            };
            match self.map.entry((prio, order)) {
                Entry::Vacant(v) => {
                    v.insert((t, e));
                    return;
                }
                Entry::Occupied(_) => continue,
            }
        }
    }

    pub(crate) fn pop_first(&mut self) -> Option<(T, Entity)> {
        self.map.pop_first().map(|(_, v)| v)
    }

    /// Kernel prio of the most important queued task.
    pub(crate) fn best_prio(&self) -> Option<u32> {
        self.map.keys().next().map(|k| k.0)
    }

    /// Whether some task of exactly kernel prio `prio` is queued.
    pub(crate) fn has_prio(&self, prio: u32) -> bool {
        self.map
            .range((prio, i64::MIN)..=(prio, i64::MAX))
            .next()
            .is_some()
    }

    pub(crate) fn remove(&mut self, key: (u32, i64)) -> Option<(T, Entity)> {
        self.map.remove(&key)
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (T, Entity)> {
        core::mem::take(&mut self.map).into_values()
    }
}
