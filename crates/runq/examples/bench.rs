//! Host micro-benchmark of the run queue's hot path, the one a context
//! switch or wake-up takes in the kernel:
//!
//! ```text
//! cargo run -p runq --release --example bench [ITERS [FILTER [ROUNDS]]]
//! ```
//!
//! FILTER runs only the cases whose name starts with it. Wall-clock numbers
//! are noisy on a shared machine; for instruction counts (what the kernel's
//! guest measurements see) run one case under valgrind twice and take the
//! difference, e.g. with ITERS = 10000 and 20000 and ROUNDS = 1:
//! `valgrind --tool=callgrind --callgrind-out-file=/dev/null
//! target/release/examples/bench 10000 "1 task:" 1`, Ir(20000) - Ir(10000)
//! divided by 10000 = instructions per cycle.
//!
//! Reports ns per cycle (best of several rounds) for:
//! - `1 task`: a sleeper wakes (`enqueue(Wakeup)` + `should_preempt`), is
//!   picked, runs, and blocks again (`take_current`) on an otherwise empty
//!   queue;
//! - `2 tasks ping-pong`: a pipe ping-pong pinned to one CPU: the running
//!   task wakes its peer, blocks, and the peer is picked;
//! - `1 task + N queued`: like `1 task` with N other fair tasks queued (the
//!   woken task has the earliest deadline, as a short sleeper does);
//! - `tick`: a timer tick with N queued tasks, preempting when the request
//!   is used up (`put_prev` + `pick_next`);
//! - `RT`: a SCHED_FIFO wake / pick / block cycle.
use std::hint::black_box;
use std::time::Instant;

use runq::{Enqueue, Entity, Params, Policy, RunQueue};

struct Cfg {
    filter: String,
    rounds: usize,
}

static CFG: std::sync::OnceLock<Cfg> = std::sync::OnceLock::new();

/// Best-of-`rounds` ns per iteration of `f`, run `iters` times per round.
fn measure(name: &str, iters: u64, mut f: impl FnMut(u64)) {
    let cfg = CFG.get_or_init(|| Cfg {
        filter: String::new(),
        rounds: 7,
    });
    if !name.starts_with(cfg.filter.as_str()) {
        return;
    }
    let mut best = f64::INFINITY;
    for _ in 0..cfg.rounds {
        let start = Instant::now();
        for i in 0..iters {
            f(i);
        }
        let ns = start.elapsed().as_nanos() as f64 / iters as f64;
        best = best.min(ns);
    }
    println!("{name:<38} {best:8.1} ns/cycle");
}

/// Wake -> pick -> block with `others` fair tasks queued besides the cycling one.
fn wake_pick_block(others: usize, iters: u64) {
    let mut rq: RunQueue<u32> = RunQueue::new();
    for i in 0..others {
        let e = Entity::new(Params::DEFAULT);
        rq.enqueue(i as u32 + 1, e, Enqueue::New);
    }
    // The cycling task has lag, so it is eligible and earliest whenever it wakes.
    let mut parked = Some(Entity::new(Params::DEFAULT));
    let mut now = 0u64;
    let name = if others == 0 {
        "1 task: wake/pick/block".to_string()
    } else {
        format!("1 task + {others} queued: wake/pick/block")
    };
    measure(&name, iters, |_| {
        let e = parked
            .take()
            .unwrap_or_else(|| Entity::new(Params::DEFAULT));
        let placed = rq.enqueue(0, e, Enqueue::Wakeup);
        black_box(rq.should_preempt(&placed));
        let t = rq.pick_next(now);
        black_box(t);
        now += 1_000;
        parked = rq.take_current(now);
    });
    black_box(rq.drain());
}

/// Pipe ping-pong: A runs, wakes B, blocks; B is picked; and back.
fn ping_pong(iters: u64) {
    let mut rq: RunQueue<u32> = RunQueue::new();
    rq.enqueue(0, Entity::new(Params::DEFAULT), Enqueue::New);
    let mut parked = [None, Some(Entity::new(Params::DEFAULT))];
    let mut cur = rq.pick_next(0).unwrap_or(0);
    let mut now = 0u64;
    measure("2 tasks ping-pong: wake/block/pick", iters, |_| {
        let peer = 1 - cur;
        let e = parked[peer as usize]
            .take()
            .unwrap_or_else(|| Entity::new(Params::DEFAULT));
        let placed = rq.enqueue(peer, e, Enqueue::Wakeup);
        black_box(rq.should_preempt(&placed));
        now += 1_000;
        parked[cur as usize] = rq.take_current(now);
        cur = rq.pick_next(now).unwrap_or(peer);
    });
    black_box(rq.drain());
}

/// Timer ticks with `n` fair tasks runnable (one running).
fn ticks(n: usize, iters: u64) {
    let mut rq: RunQueue<u32> = RunQueue::new();
    for i in 0..n {
        rq.enqueue(i as u32, Entity::new(Params::DEFAULT), Enqueue::New);
    }
    let mut cur = rq.pick_next(0);
    let mut now = 0u64;
    measure(&format!("{n} tasks: 1 ms tick (+switch)"), iters, |_| {
        now += 1_000_000;
        if rq.tick(now) {
            if let Some(t) = cur.take() {
                rq.put_prev(t, now, false);
            }
            cur = rq.pick_next(now);
        }
    });
    black_box(rq.drain());
}

/// SCHED_FIFO wake -> pick -> block on an empty queue.
fn rt(iters: u64) {
    let p = Params {
        policy: Policy::Fifo,
        nice: 0,
        rt_prio: 50,
    };
    let mut rq: RunQueue<u32> = RunQueue::new();
    let mut parked = Some(Entity::new(p));
    let mut now = 0u64;
    measure("RT 1 task: wake/pick/block", iters, |_| {
        let e = parked.take().unwrap_or_else(|| Entity::new(p));
        let placed = rq.enqueue(0, e, Enqueue::Wakeup);
        black_box(rq.should_preempt(&placed));
        black_box(rq.pick_next(now));
        now += 1_000;
        parked = rq.take_current(now);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iters = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000u64);
    let _ = CFG.set(Cfg {
        filter: args.get(2).cloned().unwrap_or_default(),
        rounds: args.get(3).and_then(|s| s.parse().ok()).unwrap_or(7),
    });
    wake_pick_block(0, iters);
    ping_pong(iters);
    // Big queues are slower to set up and run: fewer iterations, unless
    // one case was asked for (instruction counting wants exact counts).
    let filtered = CFG.get().is_some_and(|c| !c.filter.is_empty());
    for n in [1, 3, 7, 100, 1000] {
        let div = if filtered { 1 } else { 1 + n as u64 / 50 };
        wake_pick_block(n, iters / div);
    }
    for n in [2, 8, 100] {
        ticks(n, iters);
    }
    rt(iters);
}
