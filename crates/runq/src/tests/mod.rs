//! Host tests: scheduling simulations on one or two queues. Each test
//! checks a property a broken scheduler would visibly violate.

use alloc::vec;
use alloc::vec::Vec;

use crate::*;

mod conservation;
mod fairness;
mod hot_path;
mod robustness;
mod rt;
mod wakeup;

const MS: u64 = 1_000_000;

fn normal(nice: i8) -> Params {
    Params {
        policy: Policy::Normal,
        nice,
        rt_prio: 0,
    }
}

fn fifo(rt_prio: u8) -> Params {
    Params {
        policy: Policy::Fifo,
        nice: 0,
        rt_prio,
    }
}

fn rr(rt_prio: u8) -> Params {
    Params {
        policy: Policy::RoundRobin,
        nice: 0,
        rt_prio,
    }
}

/// One CPU driven like the kernel would: a periodic tick, and on "preempt"
/// the running task goes back and the next is picked. Task handles are
/// indices; CPU time is counted by the driver, independently of the queue.
struct Sim {
    rq: RunQueue<usize>,
    now: u64,
    cur: Option<usize>,
    cpu: Vec<u64>,
    /// (time, task switched to)
    switches: Vec<(u64, usize)>,
    /// Entities of tasks not on the queue (sleeping), by index.
    parked: Vec<Option<Entity>>,
}

impl Sim {
    fn new(params: &[Params]) -> Sim {
        let mut s = Sim {
            rq: RunQueue::new(),
            now: 0,
            cur: None,
            cpu: vec![0; params.len()],
            switches: Vec::new(),
            parked: vec![None; params.len()],
        };
        for (i, p) in params.iter().enumerate() {
            s.rq.enqueue(i, Entity::new(*p), Enqueue::New);
        }
        s.resched();
        s
    }

    fn resched(&mut self) {
        if let Some(t) = self.cur.take() {
            self.rq.put_prev(t, self.now, false);
        }
        self.cur = self.rq.pick_next(self.now);
        if let Some(t) = self.cur {
            if self.switches.last().map(|s| s.1) != Some(t) {
                self.switches.push((self.now, t));
            }
        }
    }

    /// Advances `dt` of running time, then ticks.
    fn step(&mut self, dt: u64) {
        self.now += dt;
        if let Some(t) = self.cur {
            self.cpu[t] += dt;
        }
        if self.rq.tick(self.now) || self.cur.is_none() {
            self.resched();
        }
    }

    /// Ticks every `tick` ns for `dur` ns.
    fn run(&mut self, dur: u64, tick: u64) {
        let end = self.now + dur;
        while self.now < end {
            self.step(tick);
        }
    }

    /// Tickless equivalent of a 1 ms tick for fair-only queues: jumps
    /// straight to the first 1 ms boundary at which the running request is
    /// used up (the ticks in between would all have said "keep running").
    fn run_tickless(&mut self, dur: u64) {
        let end = self.now + dur;
        while self.now < end {
            let left = self.rq.current().map_or(MS, |c| c.request_left_ns());
            let dt = left.div_ceil(MS).max(1) * MS;
            self.step(dt.min(end - self.now).max(1));
        }
    }

    /// The running task goes to sleep.
    fn sleep_current(&mut self) -> usize {
        let t = self.cur.take().expect("something running");
        self.parked[t] = self.rq.take_current(self.now);
        self.cur = self.rq.pick_next(self.now);
        if let Some(n) = self.cur {
            self.switches.push((self.now, n));
        }
        t
    }

    /// A sleeping task wakes; preempts if the queue says so. Returns the
    /// entity as placed.
    fn wake(&mut self, t: usize, how: Enqueue) -> Entity {
        let e = self.parked[t].take().expect("task was asleep");
        let placed = self.rq.enqueue(t, e, how);
        if self.rq.should_preempt(&placed) {
            self.resched();
        }
        placed
    }

    /// Longest uninterrupted run of task `t` within [from, now).
    fn longest_run(&self, t: usize, from: u64) -> u64 {
        let mut best = 0;
        for (i, &(at, who)) in self.switches.iter().enumerate() {
            if who != t {
                continue;
            }
            let until = self.switches.get(i + 1).map_or(self.now, |s| s.0);
            if until > from {
                best = best.max(until - at.max(from));
            }
        }
        best
    }
}
