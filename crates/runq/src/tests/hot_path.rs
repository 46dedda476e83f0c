//! The containers behind the hot path: queue order is exactly what the
//! former (deadline, seq) / (prio, order) B-tree keys gave, the cached
//! weights follow `params`, and steady-state switching never grows (so
//! never reallocates) the buffers.

use alloc::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// Checks the queue's internal order against insertion stamps: fair tasks
/// by (deadline, stamp), RT tasks by (kernel prio, stamp) where a push to
/// the back takes an increasing stamp and a push to the front a decreasing
/// one (the former B-tree keys).
fn check_order(rq: &RunQueue<usize>, stamp: &BTreeMap<usize, i64>) {
    let fair: Vec<(u64, i64)> = rq
        .fair
        .tasks
        .iter()
        .map(|(t, e)| (e.deadline, stamp[t]))
        .collect();
    assert!(fair.windows(2).all(|p| p[0] < p[1]), "fair order: {fair:?}");
    let rt: Vec<(u32, i64)> = rq.rt.tasks.iter().map(|(p, t, _)| (*p, stamp[t])).collect();
    assert!(rt.windows(2).all(|p| p[0] < p[1]), "rt order: {rt:?}");
}

#[derive(Clone, Debug)]
enum Op {
    Wake(usize, u8),
    Tick(u64),
    Preempt(bool),
    Sleep,
    Steal(usize),
    Remove(usize),
}

/// The task among those with `t % m == 0` that `steal` (the least urgent:
/// the largest key) or `remove` (the most urgent: the smallest) must take:
/// fair tasks first, keyed by (deadline, stamp), then RT by (priority,
/// stamp).
fn expected_take(
    rq: &RunQueue<usize>,
    stamp: &BTreeMap<usize, i64>,
    m: usize,
    least_urgent: bool,
) -> Option<usize> {
    fn pick<K: Ord>(keys: impl Iterator<Item = K>, largest: bool) -> Option<K> {
        if largest {
            keys.max()
        } else {
            keys.min()
        }
    }
    let fair = rq.fair.tasks.iter().filter(|(t, _)| t % m == 0);
    let fair = pick(fair.map(|(t, e)| (e.deadline, stamp[t], *t)), least_urgent);
    let rt = rq.rt.tasks.iter().filter(|(_, t, _)| t % m == 0);
    let rt = pick(rt.map(|(p, t, _)| (*p, stamp[t], *t)), least_urgent);
    fair.map(|f| f.2).or(rt.map(|r| r.2))
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<usize>(), 0u8..4).prop_map(|(i, h)| Op::Wake(i, h)),
        (0u64..3 * MS).prop_map(Op::Tick),
        any::<bool>().prop_map(Op::Preempt),
        Just(Op::Sleep),
        (1usize..4).prop_map(Op::Steal),
        any::<usize>().prop_map(Op::Remove),
    ]
}

fn any_params() -> impl Strategy<Value = Params> {
    prop_oneof![
        3 => (-3i8..4).prop_map(normal),
        1 => (1u8..4).prop_map(fifo),
        1 => (1u8..4).prop_map(rr),
    ]
}

proptest! {
    /// Random wakeups, ticks, preemptions, yields, sleeps, steals and
    /// removals: the queue order always matches the (deadline, FIFO) and
    /// (priority, list position) keys, and `steal`/`remove` take the tasks
    /// those keys say (latest first / earliest first).
    #[test]
    fn order_matches_btree_keys(
        params in prop::collection::vec(any_params(), 1..10),
        ops in prop::collection::vec(any_op(), 1..200),
    ) {
        let mut rq: RunQueue<usize> = RunQueue::new();
        let mut parked: Vec<Option<Entity>> = params.iter().map(|p| Some(Entity::new(*p))).collect();
        let mut stamp: BTreeMap<usize, i64> = BTreeMap::new();
        let (mut back, mut front) = (0i64, 0i64);
        let mut cur: Option<usize> = None;
        let mut now = 0;
        // Stamps a task joining the queue; `to_front` only matters for RT.
        let mut push = |stamp: &mut BTreeMap<usize, i64>, t: usize, to_front: bool| {
            let s = if to_front {
                front -= 1;
                front
            } else {
                back += 1;
                back
            };
            stamp.insert(t, s);
        };
        for op in ops {
            match op {
                Op::Wake(i, h) => {
                    let t = i % params.len();
                    if let Some(e) = parked[t].take() {
                        let how = match h {
                            0 => Enqueue::New,
                            1 => Enqueue::Wakeup,
                            2 => Enqueue::Requeue,
                            _ => Enqueue::Migrated { from_vclock: now / 2 },
                        };
                        push(&mut stamp, t, e.is_rt() && how == Enqueue::Requeue);
                        let placed = rq.enqueue(t, e, how);
                        if rq.should_preempt(&placed) {
                            if let Some(c) = cur.take() {
                                let front = rq.current().is_some_and(|c| c.is_rt() && !c.rr_to_tail);
                                push(&mut stamp, c, front);
                                rq.put_prev(c, now, false);
                            }
                            cur = rq.pick_next(now);
                        }
                    }
                }
                Op::Tick(dt) => {
                    now += dt;
                    if rq.tick(now) {
                        if let Some(c) = cur.take() {
                            let front = rq.current().is_some_and(|c| c.is_rt() && !c.rr_to_tail);
                            push(&mut stamp, c, front);
                            rq.put_prev(c, now, false);
                        }
                        cur = rq.pick_next(now);
                    }
                }
                Op::Preempt(yield_) => {
                    if let Some(c) = cur.take() {
                        let front = rq.current().is_some_and(|c| c.is_rt() && !c.rr_to_tail);
                        push(&mut stamp, c, front && !yield_);
                        rq.put_prev(c, now, yield_);
                    }
                    cur = rq.pick_next(now);
                }
                Op::Sleep => {
                    if let Some(c) = cur.take() {
                        parked[c] = rq.take_current(now);
                        cur = rq.pick_next(now);
                    }
                }
                Op::Steal(m) => {
                    // The least urgent movable task by the keys.
                    let want = expected_take(&rq, &stamp, m, true);
                    let got = rq.steal(|t| t % m == 0);
                    prop_assert_eq!(got.as_ref().map(|g| g.0), want);
                    if let Some((t, e)) = got {
                        parked[t] = Some(e);
                    }
                }
                Op::Remove(i) => {
                    // The most urgent task matching, by the keys.
                    let m = 1 + i % 3;
                    let want = expected_take(&rq, &stamp, m, false);
                    let got = rq.remove(|t| t % m == 0);
                    prop_assert_eq!(got.as_ref().map(|g| g.0), want);
                    if let Some((t, e)) = got {
                        parked[t] = Some(e);
                    }
                }
            }
            rq.check();
            check_order(&rq, &stamp);
        }
        let n = rq.drain().len() + usize::from(cur.is_some())
            + parked.iter().filter(|p| p.is_some()).count();
        prop_assert_eq!(n, params.len());
    }
}

/// `params` is a public field: editing it on a parked entity (instead of
/// `set_params`) must still be honoured when it is queued again.
#[test]
fn edited_params_take_effect_on_enqueue() {
    let mut rq: RunQueue<usize> = RunQueue::new();
    let mut e = Entity::new(normal(0));
    e.params = normal(-10);
    rq.enqueue(0, e, Enqueue::Wakeup);
    rq.check();
    assert_eq!(rq.load(), u64::from(weight_of_nice(-10)));
    let mut e = Entity::new(normal(0));
    e.params = fifo(5);
    rq.enqueue(1, e, Enqueue::Wakeup);
    rq.check();
    assert_eq!(rq.rt_queued(), 1);
    assert_eq!(rq.pick_next(0), Some(1));
}

/// Once the queue has held its peak number of tasks, the hot operations
/// never grow the buffers, i.e. never touch the heap.
#[test]
fn steady_state_does_not_grow_buffers() {
    for others in [0usize, 1, 3, 50] {
        let mut rq: RunQueue<usize> = RunQueue::new();
        for i in 0..others {
            rq.enqueue(i + 2, Entity::new(normal(0)), Enqueue::New);
            rq.enqueue(i + 1000, Entity::new(fifo(1)), Enqueue::New);
            let _ = rq.remove(|&t| t == i + 1000);
        }
        // Ping-pong between two tasks, plus ticks and an RT wakeup.
        let mut parked = [None, Some(Entity::new(normal(0)))];
        let mut rt = Some(Entity::new(fifo(10)));
        rq.enqueue(0, Entity::new(normal(0)), Enqueue::New);
        let mut cur = rq.pick_next(0);
        let mut now = 0;
        let mut caps = None;
        for round in 0..2000 {
            now += 100_000;
            let c = cur.unwrap_or(0);
            if c < 2 {
                let peer = 1 - c;
                if let Some(e) = parked[peer].take() {
                    let placed = rq.enqueue(peer, e, Enqueue::Wakeup);
                    let _ = rq.should_preempt(&placed);
                }
                parked[c] = rq.take_current(now);
            } else if rq.tick(now) {
                rq.put_prev(c, now, false);
            } else {
                parked[c.min(1)] = rq.take_current(now);
            }
            if round % 10 == 0 {
                if let Some(e) = rt.take() {
                    rq.enqueue(99, e, Enqueue::Wakeup);
                }
            }
            cur = rq.pick_next(now);
            if cur == Some(99) {
                rt = rq.take_current(now);
                cur = rq.pick_next(now);
            }
            let now_caps = (rq.fair.tasks.capacity(), rq.rt.tasks.capacity());
            if round == 100 {
                caps = Some(now_caps);
            } else if round > 100 {
                assert_eq!(Some(now_caps), caps, "buffers grew with {others} others");
            }
            rq.check();
        }
    }
}
