//! The per-CPU run queue of RSE OS's scheduler, free of hardware so it can
//! be tested on the host. The kernel keeps one `RunQueue` per CPU in a
//! static array and drives it from its timer tick, wakeups and context
//! switches.
//!
//! # Classes
//!
//! Two classes, the real-time one strictly above the fair one:
//!
//! - **SCHED_FIFO / SCHED_RR**: one FIFO list per priority 1..=99; the head
//!   of the highest non-empty list runs. FIFO runs until it blocks, yields
//!   or a higher priority arrives (a preempted task keeps the head of its
//!   list); RR additionally rotates to the back of its list when its
//!   100 ms quantum ([`RR_INTERVAL_NS`]) runs out and an equal-priority task
//!   waits. There is no RT throttling: a spinning RT task starves fair
//!   tasks on its CPU, as on Linux with throttling disabled.
//! - **SCHED_OTHER / SCHED_BATCH / SCHED_IDLE**: EEVDF, as Linux has used
//!   since 6.6, with Linux's nice weights ([`weight_of_nice`]; SCHED_IDLE
//!   weighs 3).
//!
//! # EEVDF
//!
//! Each fair task has a virtual runtime `v` advancing at
//! `real * 1024 / weight`, so heavier tasks age more slowly. The queue's
//! virtual clock `V` is the weight-averaged `v` of all its fair tasks
//! (queued and running). A task's *lag* is `V - v`: positive means the
//! task is owed CPU. A task is *eligible* when its lag is >= 0, and each
//! task asks for CPU in requests of [`BASE_SLICE_NS`] with virtual deadline
//! `v + slice * 1024 / weight`. `pick_next` runs the eligible task with the
//! earliest virtual deadline. The tick charges the running task and, when
//! its request is used up, starts the next request and preempts it if
//! anyone waits. Because only eligible tasks run, every task's lag stays
//! within about one slice, so CPU time follows the weights closely
//! (nice 0 vs nice 5 get 1024:335) while short requests get low latency.
//!
//! The sums behind `V` (sum of weight in u64, sum of weight*v in u128) are
//! kept incrementally, so `V` and eligibility are exact and cheap:
//! eligibility is tested as `v * W <= sum(w*v)` without dividing (one
//! 64x64->128 multiply), and `V` divides in u64 whenever the sum fits
//! (falling back to the exact 128-bit division otherwise). Queued fair
//! tasks sit in a ring buffer sorted by (deadline, arrival) and the pick
//! scans from the earliest deadline for the first eligible one (usually
//! the first).
//!
//! # Cost
//!
//! The kernel calls into the queue on every context switch and wake-up, so
//! the hot operations (`enqueue`, `pick_next`, `put_prev`, `take_current`,
//! `tick`, `should_preempt`) do no heap allocation in steady state: fair
//! and RT tasks live in `VecDeque`s that keep their capacity (they only
//! grow when the queue holds more tasks than it ever did), and inserting
//! or removing at either end, the common cases, moves nothing. Inserting
//! in the middle moves the shorter side, so the worst case is O(n) for n
//! queued tasks (cheap in practice for the 0-4 tasks a CPU usually has and
//! fine for hundreds). Weight and slice length are cached in the
//! [`Entity`] (re-derived from `params` on every `enqueue`), and real to
//! virtual time conversion uses u64 arithmetic unless a delta exceeds
//! 2^54 ns. The sums behind `V` cover the running task too, so picking
//! and preempting (which only move a task between queued and running)
//! leave them alone. `examples/bench.rs` measures the hot path on the host.
//!
//! # Lag handling (placement)
//!
//! When a fair task leaves a queue (sleep, migration, removal) its lag and
//! its deadline relative to `v` are recorded in its [`Entity`]. When it
//! comes back:
//!
//! - **New**: lag 0, placed at `V`, fresh request.
//! - **Wakeup**: the recorded lag, **clamped to +-2 slices** (in its own
//!   virtual time), then scaled by `(W + w) / W` so that after joining (which
//!   moves `V` towards it) the task has exactly that lag again (Linux
//!   `place_entity` with PLACE_LAG); fresh request. So a task cannot escape
//!   a debt by sleeping briefly, and a long sleeper gets at most two slices
//!   of credit rather than the whole sleep (CFS's old sleeper problem). We
//!   do not decay lag over the sleep (Linux doesn't either).
//! - **Migrated { from_vclock }**: `v - from_vclock + V`, i.e. the lag
//!   relative to the source queue, with the same clamp; relative deadline
//!   kept.
//! - **Requeue**: like Wakeup but the relative deadline is kept (for a
//!   running task taken out and put straight back, e.g. a policy change).
//!
//! Since placement only ever uses positions relative to `V`, a queue may
//! shift all its virtual times down (it does so above 2^62) without anyone
//! outside noticing, and a task sleeping on one CPU can wake on another
//! with plain `Wakeup`.
//!
//! # Driving it
//!
//! ```
//! use runq::{Enqueue, Entity, Params, RunQueue};
//! let mut rq: RunQueue<u32> = RunQueue::new();
//! // Wakeup: enqueue, then ask whether to preempt with the *placed* entity.
//! let placed = rq.enqueue(7, Entity::new(Params::DEFAULT), Enqueue::Wakeup);
//! assert!(rq.should_preempt(&placed)); // nothing running: reschedule
//! let t = rq.pick_next(0).unwrap();
//! // Timer tick: preempt if asked.
//! if rq.tick(1_000_000) {
//!     rq.put_prev(t, 1_000_000, false);
//!     let _next = rq.pick_next(1_000_000);
//! }
//! // Blocking: the task keeps its Entity while asleep.
//! let e = rq.take_current(2_000_000);
//! # let _ = e;
//! ```
//!
//! Migration: `let (t, e) = src.steal(..)?;` then
//! `dst.enqueue(t, e, Enqueue::Migrated { from_vclock: src.vclock() })`.
//! A sleeper waking on another CPU uses plain `Wakeup`.
//!
//! # Robustness
//!
//! Nothing here panics on any input: nice and priority values are clamped,
//! products that could overflow u64 are taken in u128 (or checked and
//! redone in u128), vruntimes saturate (and are rebased long
//! before that), a clock going backwards charges nothing, and misuse (e.g.
//! `put_prev` with nothing running) degrades instead of panicking. No
//! operation can lose or duplicate a task handle.
#![no_std]

extern crate alloc;

mod entity;
mod fair;
mod params;
mod queue;
mod rt;
mod weight;

#[cfg(test)]
mod tests;

pub use entity::Entity;
pub use params::{Params, Policy};
pub use queue::{Enqueue, RunQueue};
pub use weight::{weight_of_nice, IDLE_WEIGHT, NICE_0_WEIGHT};

/// EEVDF request size. Linux uses 0.75 ms * (1 + ilog2(ncpus)); a fixed
/// 3 ms (Linux's value on 8-15 CPUs) keeps behaviour independent of the
/// machine.
pub const BASE_SLICE_NS: u64 = 3_000_000;

/// SCHED_RR quantum (Linux RR_TIMESLICE, 100 ms).
pub const RR_INTERVAL_NS: u64 = 100_000_000;
