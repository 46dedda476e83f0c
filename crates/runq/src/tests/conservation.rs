//! Random operation sequences on two queues against a model: no task is
//! ever lost or duplicated, counts and load match, and picks respect the
//! class order.

use alloc::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    Queued(usize),
    Running(usize),
    Asleep,
}

#[derive(Clone, Debug)]
enum Op {
    Spawn(usize, Params),
    Pick(usize),
    PutPrev(usize, bool),
    Tick(usize, u64),
    Sleep(usize),
    Wake(usize, usize),
    Steal(usize, u32),
    Remove(usize, usize),
    Drain(usize),
    Reparam(usize, Params),
}

fn params() -> impl Strategy<Value = Params> {
    prop_oneof![
        (-20i8..=19).prop_map(normal),
        (-20i8..=19).prop_map(|n| Params {
            policy: Policy::Batch,
            ..normal(n)
        }),
        Just(Params {
            policy: Policy::Idle,
            ..normal(0)
        }),
        (1u8..=99).prop_map(fifo),
        (1u8..=99).prop_map(rr),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let q = 0usize..2;
    prop_oneof![
        3 => (q.clone(), params()).prop_map(|(q, p)| Op::Spawn(q, p)),
        3 => q.clone().prop_map(Op::Pick),
        2 => (q.clone(), any::<bool>()).prop_map(|(q, y)| Op::PutPrev(q, y)),
        3 => (q.clone(), 0u64..200 * MS).prop_map(|(q, d)| Op::Tick(q, d)),
        1 => q.clone().prop_map(Op::Sleep),
        1 => (q.clone(), any::<usize>()).prop_map(|(q, i)| Op::Wake(q, i)),
        1 => (q.clone(), 1u32..4).prop_map(|(q, m)| Op::Steal(q, m)),
        1 => (q.clone(), any::<usize>()).prop_map(|(q, i)| Op::Remove(q, i)),
        1 => q.clone().prop_map(Op::Drain),
        1 => (q, params()).prop_map(|(q, p)| Op::Reparam(q, p)),
    ]
}

struct World {
    rqs: [RunQueue<u32>; 2],
    now: u64,
    running: [Option<u32>; 2],
    loc: BTreeMap<u32, Loc>,
    params: BTreeMap<u32, Params>,
    asleep: BTreeMap<u32, Entity>,
    next_id: u32,
}

impl World {
    fn check(&self) {
        for q in 0..2 {
            let rq = &self.rqs[q];
            rq.check();
            let queued: Vec<u32> = ids(&self.loc, Loc::Queued(q));
            let running: Vec<u32> = ids(&self.loc, Loc::Running(q));
            // iter() lists exactly the queued tasks, each once, RT first.
            let mut listed: Vec<u32> = rq.iter().map(|(t, _)| *t).collect();
            let rt_first = listed
                .iter()
                .skip_while(|t| self.params[t].policy.is_rt())
                .all(|t| !self.params[t].policy.is_rt());
            assert!(rt_first, "iter() lists a fair task before an RT one");
            listed.sort_unstable();
            assert_eq!(listed, queued);
            assert_eq!(rq.queued(), queued.len());
            assert_eq!(rq.nr_running(), queued.len() + running.len());
            assert_eq!(running.first().copied(), self.running[q]);
            let rt = queued
                .iter()
                .filter(|t| self.params[t].policy.is_rt())
                .count();
            assert_eq!(rq.rt_queued(), rt);
            let load: u64 = queued
                .iter()
                .chain(&running)
                .map(|t| u64::from(self.params[t].weight()))
                .sum();
            assert_eq!(rq.load(), load);
            assert_eq!(rq.current_params(), running.first().map(|t| self.params[t]));
        }
    }

    /// A task leaves `q`'s queue: it must have been queued there, once.
    fn leave(&mut self, q: usize, t: u32, e: &Entity) {
        assert_eq!(
            self.loc.get(&t),
            Some(&Loc::Queued(q)),
            "task {t} was not queued on {q}"
        );
        assert_eq!(e.params, self.params[&t], "entity swapped between tasks");
        self.loc.insert(t, Loc::Asleep);
    }

    fn join(&mut self, q: usize, t: u32, e: Entity, how: Enqueue) {
        assert_eq!(self.loc.get(&t), Some(&Loc::Asleep));
        self.loc.insert(t, Loc::Queued(q));
        self.rqs[q].enqueue(t, e, how);
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Spawn(q, p) => {
                let t = self.next_id;
                self.next_id += 1;
                self.loc.insert(t, Loc::Asleep);
                self.params.insert(t, p);
                self.join(q, t, Entity::new(p), Enqueue::New);
            }
            Op::Pick(q) => {
                if self.running[q].is_some() {
                    return;
                }
                let best_rt = ids(&self.loc, Loc::Queued(q))
                    .iter()
                    .filter(|t| self.params[t].policy.is_rt())
                    .map(|t| self.params[t].kernel_prio())
                    .min();
                let t = self.rqs[q].pick_next(self.now);
                let Some(t) = t else {
                    assert!(ids(&self.loc, Loc::Queued(q)).is_empty(), "nothing picked");
                    return;
                };
                assert_eq!(self.loc.get(&t), Some(&Loc::Queued(q)));
                if let Some(best) = best_rt {
                    assert_eq!(self.params[&t].kernel_prio(), best, "RT order violated");
                }
                self.loc.insert(t, Loc::Running(q));
                self.running[q] = Some(t);
            }
            Op::PutPrev(q, y) => {
                if let Some(t) = self.running[q].take() {
                    self.rqs[q].put_prev(t, self.now, y);
                    self.loc.insert(t, Loc::Queued(q));
                }
            }
            Op::Tick(q, dt) => {
                self.now += dt;
                let _ = self.rqs[q].tick(self.now);
            }
            Op::Sleep(q) => {
                if let Some(t) = self.running[q].take() {
                    let e = self.rqs[q].take_current(self.now).unwrap();
                    assert_eq!(e.params, self.params[&t]);
                    self.loc.insert(t, Loc::Asleep);
                    self.asleep.insert(t, e);
                }
            }
            Op::Wake(q, i) => {
                if self.asleep.is_empty() {
                    return;
                }
                let t = *self.asleep.keys().nth(i % self.asleep.len()).unwrap();
                let e = self.asleep.remove(&t).unwrap();
                self.join(q, t, e, Enqueue::Wakeup);
            }
            Op::Steal(q, m) => {
                if let Some((t, e)) = self.rqs[q].steal(|t| t % m == 0) {
                    assert_eq!(t % m, 0, "stole an unmovable task");
                    self.leave(q, t, &e);
                    let from_vclock = self.rqs[q].vclock();
                    self.join(1 - q, t, e, Enqueue::Migrated { from_vclock });
                } else {
                    let movable = ids(&self.loc, Loc::Queued(q)).iter().any(|t| t % m == 0);
                    assert!(!movable, "steal found nothing but a task was movable");
                }
            }
            Op::Remove(q, i) => {
                let queued = ids(&self.loc, Loc::Queued(q));
                let want = queued
                    .get(i % queued.len().max(1))
                    .copied()
                    .unwrap_or(u32::MAX);
                match self.rqs[q].remove(|&t| t == want) {
                    Some((t, e)) => {
                        assert_eq!(t, want);
                        self.leave(q, t, &e);
                        self.asleep.insert(t, e);
                    }
                    None => assert!(queued.is_empty()),
                }
            }
            Op::Drain(q) => {
                let from_vclock = self.rqs[q].vclock();
                for (t, e) in self.rqs[q].drain() {
                    self.leave(q, t, &e);
                    self.join(1 - q, t, e, Enqueue::Migrated { from_vclock });
                }
            }
            Op::Reparam(q, p) => {
                if let Some(t) = self.running[q].take() {
                    let mut e = self.rqs[q].take_current(self.now).unwrap();
                    e.set_params(p);
                    self.params.insert(t, p);
                    self.loc.insert(t, Loc::Asleep);
                    self.join(q, t, e, Enqueue::Requeue);
                }
            }
        }
    }
}

fn ids(loc: &BTreeMap<u32, Loc>, want: Loc) -> Vec<u32> {
    loc.iter()
        .filter(|(_, l)| **l == want)
        .map(|(t, _)| *t)
        .collect()
}

proptest! {
    #[test]
    fn tasks_are_conserved(ops in prop::collection::vec(op(), 1..120)) {
        let mut w = World {
            rqs: [RunQueue::new(), RunQueue::new()],
            now: 0,
            running: [None, None],
            loc: BTreeMap::new(),
            params: BTreeMap::new(),
            asleep: BTreeMap::new(),
            next_id: 0,
        };
        for op in ops {
            w.apply(op);
            w.check();
        }
        // Collect every task from everywhere: each exactly once.
        let mut seen: Vec<u32> = w.asleep.keys().copied().collect();
        for q in 0..2 {
            seen.extend(w.rqs[q].drain().into_iter().map(|(t, _)| t));
            if let Some(t) = w.running[q] {
                prop_assert!(w.rqs[q].take_current(w.now).is_some());
                seen.push(t);
            }
            prop_assert_eq!(w.rqs[q].nr_running(), 0);
            prop_assert_eq!(w.rqs[q].load(), 0);
        }
        seen.sort_unstable();
        let all: Vec<u32> = (0..w.next_id).collect();
        prop_assert_eq!(seen, all);
    }
}
