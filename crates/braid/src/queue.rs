//! The event queue: a monotone radix heap.
//!
//! A torus never runs backwards in time, so its queue only needs to be a
//! *monotone* priority queue. A radix heap exploits that: push is O(1) and
//! each event is moved between buckets at most 64 times in its life, in
//! practice once or twice, which beats a binary heap's O(log n) sift on
//! every operation. An event pushed in the past is stamped with the last
//! popped time (it is overdue, so it runs next).

use crate::event::{Event, Time};
use alloc::vec::Vec;

const BUCKETS: usize = 65;

/// Monotone priority queue of [`Event`]s ordered by time.
#[derive(Clone)]
pub struct EventQueue {
    buckets: [Vec<Event>; BUCKETS],
    /// Bit `i` set when bucket `i` is non-empty.
    nonempty: u128,
    last: Time,
    len: usize,
}

impl Default for EventQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn bucket_of(time: Time, last: Time) -> usize {
    let x = time ^ last;
    if x == 0 {
        0
    } else {
        (64 - x.leading_zeros()) as usize
    }
}

impl EventQueue {
    /// An empty queue at time 0.
    pub fn new() -> Self {
        EventQueue {
            buckets: core::array::from_fn(|_| Vec::new()),
            nonempty: 0,
            last: 0,
            len: 0,
        }
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Time of the last popped event: the queue's notion of "now".
    pub fn now(&self) -> Time {
        self.last
    }

    /// Queue `ev`; an event in the past is stamped with [`Self::now`].
    #[inline]
    pub fn push(&mut self, mut ev: Event) {
        if ev.time < self.last {
            ev.time = self.last;
        }
        let b = bucket_of(ev.time, self.last);
        self.buckets[b].push(ev);
        self.nonempty |= 1 << b;
        self.len += 1;
    }

    /// Time of the earliest event, without removing it.
    pub fn peek_time(&self) -> Option<Time> {
        if self.len == 0 {
            return None;
        }
        let i = self.nonempty.trailing_zeros() as usize;
        if i == 0 {
            return Some(self.last);
        }
        self.buckets[i].iter().map(|e| e.time).min()
    }

    /// Remove and return the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        if self.len == 0 {
            return None;
        }
        if self.nonempty & 1 == 0 {
            self.refill();
        }
        self.len -= 1;
        let ev = self.buckets[0].pop();
        if self.buckets[0].is_empty() {
            self.nonempty &= !1;
        }
        ev
    }

    /// Move the lowest non-empty bucket down so that bucket 0 holds its
    /// minimum. Every event moves to a strictly lower bucket, which is what
    /// bounds the total work.
    fn refill(&mut self) {
        let i = self.nonempty.trailing_zeros() as usize;
        let mut taken = core::mem::take(&mut self.buckets[i]);
        self.nonempty &= !(1u128 << i);
        let min = taken.iter().map(|e| e.time).min().unwrap_or(self.last);
        self.last = min;
        for ev in taken.drain(..) {
            let b = bucket_of(ev.time, min);
            self.buckets[b].push(ev);
            self.nonempty |= 1 << b;
        }
        // Keep the allocation: the bucket will be refilled soon.
        self.buckets[i] = taken;
    }

    /// The queued events in a canonical order (time, then the other
    /// fields): two queues holding the same events list them alike, however
    /// their buckets were filled (the model checker's state identity).
    pub fn sorted(&self) -> Vec<Event> {
        let mut v: Vec<Event> = self.buckets.iter().flatten().copied().collect();
        v.sort_unstable_by_key(|e| (e.time, e.kind, e.payload, e.aux, e.target));
        v
    }

    /// Remove every event.
    pub fn clear(&mut self) {
        for b in &mut self.buckets {
            b.clear();
        }
        self.nonempty = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BinaryHeap;
    use core::cmp::Reverse;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pops_in_time_order(ops in proptest::collection::vec((any::<bool>(), 0u64..1_000_000), 1..400)) {
            let mut q = EventQueue::new();
            let mut model = BinaryHeap::new();
            for (push, dt) in ops {
                if push || model.is_empty() {
                    let t = q.now() + dt;
                    q.push(Event { time: t, ..Event::default() });
                    model.push(Reverse(t));
                } else {
                    let got = q.pop().map(|e| e.time);
                    let want = model.pop().map(|r| r.0);
                    prop_assert_eq!(got, want);
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.peek_time(), model.peek().map(|r| r.0));
            }
        }
    }

    #[test]
    fn past_events_are_stamped_now() {
        let mut q = EventQueue::new();
        q.push(Event {
            time: 100,
            ..Event::default()
        });
        assert_eq!(q.pop().map(|e| e.time), Some(100));
        q.push(Event {
            time: 5,
            ..Event::default()
        });
        assert_eq!(q.pop().map(|e| e.time), Some(100));
        assert!(q.pop().is_none());
    }
}
