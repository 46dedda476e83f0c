//! The scheduler of each torus (one per CPU): its run queue of runnable
//! processes (EEVDF with nice weights under SCHED_FIFO/RR, crate `runq`),
//! wake-ups (with wake-up preemption, across CPUs by IPI) and wait queues.
//!
//! There is no scheduler thread and no global queue: a process gives up
//! its CPU by calling [`schedule`] (blocking, exiting, yielding, or when
//! the tick or a wake-up asked for a switch, on the way back to user
//! mode); a waker queues the process on its torus and interrupts that CPU
//! if it must look now.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use runq::{Enqueue, Entity, Params};
use spin::Mutex;

use super::cpu::{self, Cpu};
use super::replica;
use super::ticket::{self, Ticket};
use super::torus;
use super::work::{self, RESCHED};
use super::{Process, RunState};

fn now() -> u64 {
    hal::time::now_ns()
}

/// The running process (None in the idle loop or during boot).
pub fn try_current() -> Option<Arc<Process>> {
    cpu::this().current.get()
}

/// Runs `f` on the running process without taking a reference (hot
/// syscalls that read a field). `f` must not block or switch tasks.
pub fn with_current<R>(f: impl FnOnce(&Process) -> R) -> R {
    cpu::this()
        .current
        .with(|p| f(p.expect("a process is running")))
}

/// The running process's fsuid and fsgid (None during boot): who owns
/// what the file systems create now.
pub fn current_fs_ids() -> Option<(u32, u32)> {
    cpu::this().current.with(|p| {
        p.map(|p| {
            let c = p.cred();
            (c.fsuid, c.fsgid)
        })
    })
}

/// The running process; only called from syscall and fault context.
pub fn current() -> Arc<Process> {
    try_current().expect("a process is running")
}

/// Makes `p` runnable (no-op if it already is or has exited).
pub fn wake(p: &Arc<Process>) {
    hal::cpu::without_interrupts(|| {
        let mut st = p.run.lock();
        match *st {
            // Still on its CPU, on its way to sleep: it simply stays.
            RunState::Blocking => *st = RunState::Running,
            RunState::Sleeping => {
                *st = RunState::Runnable;
                drop(st);
                let e = p.sched.lock().entity;
                enqueue(p.clone(), e, Enqueue::Wakeup);
            }
            _ => {}
        }
    });
}

/// Makes sure `p` notices `bits` of new work (a signal): wakes it if it
/// sleeps, interrupts its CPU if it runs on another one.
pub fn notify(p: &Arc<Process>, bits: u32) {
    work::raise(bits);
    wake(p);
    let c = torus::host(p.torus());
    if c != cpu::id() && p.run_state() == RunState::Running {
        work::raise_on(c, bits);
    }
}

/// Adds a new process to the run queue of the torus it was created on.
pub fn enqueue_new(p: Arc<Process>) {
    hal::cpu::without_interrupts(|| {
        *p.run.lock() = RunState::Runnable;
        p.set_torus(torus::this_id());
        let e = p.sched.lock().entity;
        enqueue(p, e, Enqueue::New);
    });
}

/// The torus `p` should be queued on: its own, unless that one is offline
/// or on a CPU outside its affinity (then the first allowed online one,
/// or the one this CPU serves if none is: a process is never left
/// without a torus).
fn home_for(p: &Process) -> usize {
    let t = p.torus();
    let allowed = p.affinity();
    if torus::is_online(t) && torus::allows(allowed, t) {
        return t;
    }
    (0..torus::count())
        .find(|&i| torus::is_online(i) && torus::allows(allowed, i))
        .unwrap_or_else(torus::this_id)
}

/// Queues a runnable `p` on its torus and makes sure that torus notices
/// (preempting what it runs when `p` should run first). Interrupts off.
fn enqueue(p: Arc<Process>, e: Entity, how: Enqueue) {
    let (t, preempt) = loop {
        let t = home_for(&p);
        let tor = torus::get(t);
        let mut rq = tor.runq.lock();
        if !tor.online.load(Ordering::Acquire) && t != torus::this_id() {
            continue;
        }
        let placed = queue_on(t, &mut rq, p.clone(), e, how);
        // On a CPU hosting several tori, only the torus it serves now is
        // preempted; the others wait for their turn.
        let preempt = rq.should_preempt(&placed)
            && cpu::get(torus::host(t)).serving.load(Ordering::Relaxed) == t;
        drop(rq);
        // The adopter of a failed torus takes it out of the ring, then
        // reads its join log (`adopt`): either it saw our join, or we see
        // the torus out now and take the process back ourselves (if both
        // try, the ticket decides).
        fence(Ordering::SeqCst);
        if !tor.online.load(Ordering::SeqCst)
            && t != torus::this_id()
            && ticket::claim_queued_on(&p, t)
        {
            continue;
        }
        break (t, preempt);
    };
    let host = torus::host(t);
    if host == cpu::id() {
        if preempt {
            work::raise(RESCHED);
        }
        return;
    }
    // Pairs with the idle loop's store of `idle` before it looks at its
    // queues: either it sees our process or we see it idle.
    fence(Ordering::SeqCst);
    if preempt {
        work::raise_on(host, RESCHED);
    } else if cpu::get(host).idle.load(Ordering::SeqCst) {
        cpu::kick(host);
    }
}

/// Puts `p` in torus `t`'s queue `rq` (locked by the caller) with a new
/// ticket, and logs the join for `t`'s successor (`replica`).
fn queue_on(
    t: usize,
    rq: &mut runq::RunQueue<Ticket>,
    p: Arc<Process>,
    e: Entity,
    how: Enqueue,
) -> Entity {
    p.set_torus(t);
    let pid = p.pid;
    if crate::inject::runq_grow() {
        rq.release_spare();
    }
    let placed = rq.enqueue(Ticket::issue(p), e, how);
    replica::note_join(t, pid);
    placed
}

/// Takes out of `rq` the entry `take` chooses (a `steal` or `remove`) and
/// claims it: its process and entity, with the queue's `vclock` read after
/// the removal (for `Enqueue::Migrated`); None if there was none or it was
/// stale.
fn take_claimed(
    rq: &mut runq::RunQueue<Ticket>,
    take: impl FnOnce(&mut runq::RunQueue<Ticket>) -> Option<(Ticket, Entity)>,
) -> Option<(Arc<Process>, Entity, u64)> {
    let (q, e) = take(rq)?;
    let from_vclock = rq.vclock();
    Some((q.claim()?, e, from_vclock))
}

/// Takes `p`'s valid entry out of `rq` and claims it (see [`take_claimed`]).
fn remove_claimed(
    rq: &mut runq::RunQueue<Ticket>,
    p: &Arc<Process>,
) -> Option<(Arc<Process>, Entity, u64)> {
    take_claimed(rq, |rq| rq.remove(|q| Arc::ptr_eq(&q.p, p) && q.is_valid()))
}

/// Whether queued entry `q` may be moved to torus `to`: still valid, its
/// process may run there and is off every CPU (its context saved; one
/// still switching out is its own CPU's to resume).
fn movable_to(q: &Ticket, to: usize) -> bool {
    q.is_valid() && q.p.ctx.load(Ordering::Acquire) != 0 && torus::allows(q.p.affinity(), to)
}

/// Braid diffusion: hands one process that may run on torus `to` from
/// this torus `me` to it, when `to` is lighter by more than its weight.
pub fn push_one(me: usize, to: usize, their_load: u64) -> bool {
    hal::cpu::without_interrupts(|| {
        let got = {
            let mut rq = torus::get(me).runq.lock();
            let gap = rq.load().saturating_sub(their_load);
            if gap <= runq::NICE_0_WEIGHT as u64 / 2 {
                return false;
            }
            let movable = |q: &Ticket, rt: bool| {
                movable_to(q, to)
                    && q.p.params().policy.is_rt() == rt
                    && (q.p.params().weight() as u64) < gap
            };
            take_claimed(&mut rq, |rq| {
                // Priority demand first: a real-time process waiting behind
                // another one here gets no CPU at all until it moves.
                let rt = (rq.rt_queued() > 0)
                    .then(|| rq.steal(|q| movable(q, true)))
                    .flatten();
                rt.or_else(|| rq.steal(|q| movable(q, false)))
            })
        };
        let Some((p, e, from_vclock)) = got else {
            return false;
        };
        p.set_torus(to);
        enqueue(p, e, Enqueue::Migrated { from_vclock });
        true
    })
}

/// What an adoption found.
#[derive(Clone, Copy, Default, Debug)]
pub struct Adoption {
    /// Processes taken from the adopter's replica of the failed torus.
    pub from_replica: u64,
    /// Processes found waiting in the failed torus's queue that the
    /// replica did not list (0 unless it was incomplete).
    pub missed: u64,
    /// The replica covered everything that joined the failed torus.
    pub complete: bool,
    /// The failed torus's queue could be looked at (its lock was free).
    pub checked: bool,
}

/// Takes failed torus `dead` out of the ring and moves the processes
/// waiting on it to torus `me`, found through `me`'s replica of it
/// (`replica`), each claimed by its ticket: never through `dead`'s queue,
/// whose lock a hung CPU may hold. Then, if that lock is free (a torus
/// that stopped at an event boundary holds none), looks in the queue for
/// any the replica missed and takes those too.
pub fn adopt(dead: usize, me: usize) -> Adoption {
    hal::cpu::without_interrupts(|| {
        let tor = torus::get(dead);
        tor.online.store(false, Ordering::SeqCst);
        // Pairs with the queuer's re-check in `enqueue`.
        fence(Ordering::SeqCst);
        let (pids, complete) = replica::waiting_on(me, dead);
        let mut a = Adoption {
            complete,
            ..Adoption::default()
        };
        for pid in pids {
            let Some(p) = super::lookup(pid) else {
                continue;
            };
            if p.ctx.load(Ordering::Acquire) != 0 && ticket::claim_queued_on(&p, dead) {
                let e = Entity::new(p.params());
                p.set_torus(me);
                enqueue(p, e, Enqueue::New);
                a.from_replica += 1;
            }
        }
        let left = tor.runq.try_lock().map(|mut rq| {
            let mut left = alloc::vec::Vec::new();
            let adoptable = |q: &Ticket| q.is_valid() && q.p.ctx.load(Ordering::Acquire) != 0;
            while let Some((q, e)) = rq.remove(adoptable) {
                let from_vclock = rq.vclock();
                left.extend(q.claim().map(|p| (p, e, from_vclock)));
            }
            left
        });
        a.checked = left.is_some();
        for (p, e, from_vclock) in left.into_iter().flatten() {
            p.set_torus(me);
            enqueue(p, e, Enqueue::Migrated { from_vclock });
            a.missed += 1;
        }
        a
    })
}

/// Torus `me`, taken out of the ring while alive or revived, takes part
/// again. Entries of processes adopted meanwhile are stale: dropped now
/// rather than at the picks (they count in its load).
pub fn rejoin(me: usize) {
    hal::cpu::without_interrupts(|| {
        let tor = torus::get(me);
        let mut rq = tor.runq.lock();
        let all = rq.drain();
        let from_vclock = rq.vclock();
        for (q, e) in all {
            if let Some(p) = q.claim() {
                queue_on(me, &mut rq, p, e, Enqueue::Migrated { from_vclock });
            }
        }
        tor.online.store(true, Ordering::Release);
    });
}

/// Called by the timer interrupt: charges the running process and asks
/// for a switch when its request (or RR quantum) is used up.
pub fn on_tick() {
    let c = cpu::this();
    let now = now();
    // A process running outside its affinity (adopted from a torus that
    // was taken out of the ring and is back) goes home at its next switch.
    let stray = c
        .current
        .with(|p| p.is_some_and(|p| p.affinity() & (1 << cpu::id()) == 0));
    let (slice_done, rt) = {
        let mut rq = torus::this().runq.lock();
        let done = rq.tick(now);
        (done, rq.current_params().is_some_and(|p| p.policy.is_rt()))
    };
    if slice_done || stray || (!rt && other_torus_due(c, now)) {
        work::raise(RESCHED);
    }
}

/// A CPU hosting several tori serves them in turn: the next one with work
/// gets the CPU once the one it serves has had a turn of a slice (a
/// real-time process keeps it, as it keeps a CPU from fair processes).
fn other_torus_due(c: &Cpu, now: u64) -> bool {
    let hosted = c.hosted.load(Ordering::Relaxed);
    if hosted.is_power_of_two() {
        return false;
    }
    if !turn_over(c, now) {
        return false;
    }
    let serving = c.serving.load(Ordering::Relaxed);
    c.hosted()
        .any(|t| t != serving && !super::braid::halted(t) && torus::get(t).queued() > 0)
}

/// On the way back to user mode: switch if the scheduler asked for it.
pub fn preempt_point() {
    if work::pending() & RESCHED != 0 {
        schedule();
    }
}

/// Gives the CPU to the next runnable process. The caller's run state
/// decides what happens to it: Running → requeued; Blocking → sleeps
/// until woken; Zombie → never runs again.
pub fn schedule() {
    switch_away(false)
}

/// Drops the dead list's processes that nobody else references (the CPU
/// is not running on any of them: callers are switch_away, before it
/// switches, and the idle loop).
fn release_dead(c: &cpu::Cpu) {
    let mut dead = c.dead.lock();
    if !dead.is_empty() {
        dead.retain(|p| Arc::strong_count(p) > 1);
    }
}

/// sched_yield: as [`schedule`], but the caller goes behind its peers.
pub fn yield_now() {
    switch_away(true)
}

fn switch_away(yield_: bool) {
    hal::cpu::without_interrupts(|| {
        let c = cpu::this();
        let now = now();
        work::take(RESCHED);
        // Release processes that exited on this CPU earlier and that
        // nobody else references any more (we are not running on them).
        release_dead(c);
        let mut prev = c.current.replace(None);
        let exiting = prev
            .as_ref()
            .is_some_and(|p| put_prev(torus::this_id(), p, now, yield_) == RunState::Zombie);
        crate::inject::delay(crate::inject::Point::Requeue);
        let next = pick_next(c, now);
        if let (Some(p), Some(n)) = (&prev, &next) {
            if Arc::ptr_eq(p, n) {
                *n.run.lock() = RunState::Running;
                n.cpu_time.on(now);
                // It was queued, not running, since put_prev: a signal
                // sent meanwhile was not pushed to this CPU.
                note_pending_signals(n);
                c.current.replace(next);
                return;
            }
        }
        if prev.is_none() && next.is_none() {
            return;
        }
        if let Some(p) = &prev {
            p.save_user_tls();
        }
        // An exiting process never resumes: park its Arc on the dead list
        // (so its stack lives until this CPU is off it) and save its RSP
        // nowhere useful.
        if exiting {
            c.dead.lock().extend(prev.take());
        }
        match next {
            Some(n) => switch_in(c, n, now),
            None => {
                // Idle holds no process's page tables: one freed while we
                // idle must not stay loaded here.
                hal::addrspace::activate_kernel();
            }
        }
        let save: &AtomicU64 = match &prev {
            Some(p) => &p.ctx,
            None if exiting => &c.zombie_slot,
            None => &c.idle_rsp,
        };
        // Publishes our context, then waits for the next one's: a process
        // queued elsewhere while still switching out here (a migration, a
        // wake-up) is never waited for by a CPU that holds an unpublished
        // context of its own, so two CPUs cannot wait for each other.
        c.current.switch_to_installed(save, |n| &n.ctx, &c.idle_rsp);
        finish_switch();
    });
}

/// Runs on the context just switched to, on its CPU, interrupts off: makes
/// the process it runs (if any) the CPU's — only now, because its user
/// TLS bases and FPU state were saved by the CPU that switched it out
/// before that CPU published its context.
pub fn finish_switch() {
    cpu::this().current.with(|p| {
        if let Some(n) = p {
            n.install_on_cpu();
            note_pending_signals(n);
        }
    });
}

/// Raises this CPU's SIGNALS work if `p`, just made Running here, has
/// signals pending. The rule that keeps a signal from being lost: a
/// sender marks the signal pending, then interrupts its target's CPU only
/// if the target is Running; so whatever makes a process Running on a
/// CPU (a switch to it, or its own CPU picking it again) looks at its
/// pending signals afterwards. One not looked at stayed pending, never
/// delivered, and every later one of its kind was dropped as already
/// pending.
fn note_pending_signals(p: &Process) {
    if p.sig.lock().pending != 0 || crate::cluster::migrate::wants_attention(p) {
        work::raise(work::SIGNALS);
    }
}

/// The next process for CPU `c`, from the torus it serves or, when it
/// hosts several, round robin: the one it serves until its turn of a
/// slice is over (or it has nothing to run), then the next one that has
/// work. A halted torus (failing or stalled) is skipped: what it ran
/// stays queued for the others to adopt.
fn pick_next(c: &Cpu, now: u64) -> Option<Arc<Process>> {
    let hosted = c.hosted.load(Ordering::Relaxed);
    let serving = c.serving.load(Ordering::Relaxed);
    if hosted == 1 << serving {
        if super::braid::halted(serving) {
            return None;
        }
        return pick_from(serving, now);
    }
    let turn_over = turn_over(c, now);
    let first = serving + usize::from(turn_over);
    (0..torus::MAX_TORI)
        .map(|k| (first + k) % torus::MAX_TORI)
        .filter(|&t| hosted & (1 << t) != 0 && !super::braid::halted(t))
        .find_map(|t| {
            let p = pick_from(t, now)?;
            if t != serving || turn_over {
                c.serving.store(t, Ordering::Relaxed);
                c.turn_at.store(now, Ordering::Relaxed);
            }
            Some(p)
        })
}

/// Whether the torus CPU `c` serves has had its turn of a slice.
fn turn_over(c: &Cpu, now: u64) -> bool {
    now.saturating_sub(c.turn_at.load(Ordering::Relaxed)) >= runq::BASE_SLICE_NS
}

/// The next process of torus `t`'s queue, claimed; stale entries (their
/// process was adopted elsewhere) are dropped on the way.
fn pick_from(t: usize, now: u64) -> Option<Arc<Process>> {
    let mut rq = torus::get(t).runq.lock();
    loop {
        if let Some(p) = rq.pick_next(now)?.claim() {
            return Some(p);
        }
        rq.take_current(now);
    }
}

/// The running process `p` leaves the CPU of torus `t`: back in the queue
/// (with new parameters, or to another torus if its affinity says so),
/// to sleep, or gone. Returns the run state it found (a zombie's stays).
fn put_prev(ti: usize, p: &Arc<Process>, now: u64, yield_: bool) -> RunState {
    p.cpu_time.off(now);
    let t = torus::get(ti);
    let mut st = p.run.lock();
    let found = *st;
    match found {
        RunState::Running => {
            p.switches.count(false);
            *st = RunState::Runnable;
            let wanted = p.sched.lock().entity.params;
            let mut rq = t.runq.lock();
            // A torus out of the ring (declared failed while alive, not
            // rejoined yet) keeps no process in its queue: if it hung
            // now, nobody would adopt it from there.
            let out = !t.online.load(Ordering::Acquire);
            if out || p.affinity() & (1 << cpu::id()) == 0 {
                let e = rq.take_current(now).unwrap_or_else(|| Entity::new(wanted));
                let from_vclock = rq.vclock();
                drop(rq);
                drop(st);
                // enqueue picks an allowed torus (home_for).
                enqueue(p.clone(), e, Enqueue::Migrated { from_vclock });
            } else if rq.current_params() != Some(wanted) {
                let mut e = rq.take_current(now).unwrap_or_else(|| Entity::new(wanted));
                e.set_params(wanted);
                queue_on(ti, &mut rq, p.clone(), e, Enqueue::Requeue);
            } else {
                rq.put_prev(Ticket::issue(p.clone()), now, yield_);
                replica::note_join(ti, p.pid);
            }
        }
        RunState::Blocking => {
            p.switches.count(true);
            let e = t.runq.lock().take_current(now);
            if let Some(e) = e {
                p.sched.lock().store(e);
            }
            *st = RunState::Sleeping;
        }
        _ => {
            t.runq.lock().take_current(now);
        }
    }
    found
}

/// Makes `n` the running process of CPU `c` (its context is claimed by
/// the switch, its CPU state installed by [`finish_switch`]).
fn switch_in(c: &Cpu, n: Arc<Process>, now: u64) {
    *n.run.lock() = RunState::Running;
    n.cpu_time.on(now);
    c.current.replace(Some(n));
}

/// Changes the scheduling parameters of `p` (nice, policy, RT priority);
/// they take effect at once if it is queued, at its next switch if it
/// runs (its CPU is asked to switch now).
pub fn set_params(p: &Arc<Process>, params: Params) {
    hal::cpu::without_interrupts(|| {
        let st = p.run.lock();
        p.sched.lock().entity.set_params(params);
        match *st {
            RunState::Runnable => {
                let t = p.torus();
                let mut rq = torus::get(t).runq.lock();
                if let Some((q, mut e, _)) = remove_claimed(&mut rq, p) {
                    e.set_params(params);
                    let placed = queue_on(t, &mut rq, q, e, Enqueue::Requeue);
                    if rq.should_preempt(&placed) {
                        drop(rq);
                        resched(t);
                    }
                }
            }
            RunState::Running | RunState::Blocking => resched(p.torus()),
            _ => {}
        }
    });
}

/// Asks the CPU of torus `t` to switch at its next boundary.
fn resched(t: usize) {
    let host = torus::host(t);
    if host == cpu::id() {
        work::raise(RESCHED);
    } else {
        work::raise_on(host, RESCHED);
    }
}

/// Sets the CPUs `p` may run on (a nonempty mask of online tori); moves
/// it now if it is queued elsewhere, at its next switch if it runs.
pub fn set_affinity(p: &Arc<Process>, mask: u64) {
    hal::cpu::without_interrupts(|| {
        let st = p.run.lock();
        p.set_affinity_mask(mask);
        let t = p.torus();
        if torus::allows(mask, t) {
            return;
        }
        match *st {
            RunState::Runnable => {
                let mut rq = torus::get(t).runq.lock();
                if let Some((q, e, from_vclock)) = remove_claimed(&mut rq, p) {
                    drop(rq);
                    drop(st);
                    enqueue(q, e, Enqueue::Migrated { from_vclock });
                }
            }
            RunState::Running | RunState::Blocking => resched(t),
            _ => {}
        }
    });
}

/// Moves one runnable process from a ring neighbour's queue to torus `me`
/// (one this CPU hosts) when this CPU has nothing to run.
fn steal_from_neighbours(me: usize) -> bool {
    let t = torus::get(me);
    let n = torus::count();
    if n < 2 {
        return false;
    }
    for victim in [(me + n - 1) % n, (me + 1) % n] {
        if victim == me || !torus::is_online(victim) {
            continue;
        }
        let got = take_claimed(&mut torus::get(victim).runq.lock(), |rq| {
            rq.steal(|q| movable_to(q, me))
        });
        if let Some((p, e, from_vclock)) = got {
            let mut rq = t.runq.lock();
            queue_on(me, &mut rq, p, e, Enqueue::Migrated { from_vclock });
            return true;
        }
    }
    false
}

/// The idle loop of a CPU: runs on its boot stack whenever nothing is
/// runnable.
pub fn idle_loop() -> ! {
    let c = cpu::this();
    loop {
        crate::trap::deferred_work();
        super::braid::hang_while_failed(c);
        hal::cpu::disable_interrupts();
        // Processes that exited here are released at this CPU's next
        // switch; an idle CPU may not switch for a long time, so release
        // them here too (we run on the idle stack, on none of theirs):
        // else their stacks and Process records stay until then
        // (/proc/kobjects showed them after every exit).
        release_dead(c);
        c.idle.store(true, Ordering::SeqCst);
        let live = || c.hosted().filter(|&t| !super::braid::halted(t));
        let has_work = live().any(|t| torus::get(t).runq.lock().queued() > 0)
            || live()
                .filter(|&t| torus::is_online(t))
                .any(steal_from_neighbours);
        if has_work {
            c.idle.store(false, Ordering::Relaxed);
            schedule();
            hal::cpu::enable_interrupts();
        } else {
            // sti; hlt: a kick sent after the check above wakes us.
            hal::cpu::wait_for_interrupt();
            c.idle.store(false, Ordering::Relaxed);
        }
    }
}

/// Blocks the current process until `ready()` returns Some, or a signal
/// arrives (EINTR), on no wait queue: whoever changes what `ready` looks
/// at holds a reference to the process and calls [`wake`] after the
/// change. `ready` runs again once the process is marked blocking, so a
/// change made meanwhile is seen, and a wake-up in that window turns it
/// back to running.
pub fn block_until<T>(ready: impl FnMut() -> Option<T>) -> abi::KResult<T> {
    sleep_until(ready, None, true, |_| {}, |_| {})
}

/// The sleep of [`block_until`] and [`WaitQueue::wait_until`]: `register`
/// runs (interrupts off) once the process is marked blocking and before
/// `ready`'s second look, `unregister` on every way out after it.
///
/// With `wakes` (a wait queue's count of wake-ups, when every change of
/// what `ready` looks at is followed by a wake-up of that queue), the
/// second look is made only if the count moved since the first: if it
/// did not, the waker that makes the next change has yet to count its
/// wake-up, and will find the process registered.
fn sleep_until<T>(
    mut ready: impl FnMut() -> Option<T>,
    wakes: Option<&AtomicU64>,
    interruptible: bool,
    mut register: impl FnMut(&Arc<Process>),
    mut unregister: impl FnMut(&Arc<Process>),
) -> abi::KResult<T> {
    let count = || wakes.map(|w| w.load(Ordering::SeqCst));
    let mut since = count();
    // The common case (data already there) needs no reference to the
    // running process: look once before taking one.
    if let Some(v) = hal::cpu::without_interrupts(&mut ready) {
        return Ok(v);
    }
    let me = current();
    loop {
        // `ready` has just said no: mark the process blocking, register,
        // and look again (the waker changes, then wakes: either this look
        // sees its change or its wake-up finds us registered).
        let got = hal::cpu::without_interrupts(|| {
            *me.run.lock() = RunState::Blocking;
            register(&me);
            if since.is_some() && count() == since {
                return None;
            }
            let v = ready()?;
            *me.run.lock() = RunState::Running;
            unregister(&me);
            Some(v)
        });
        if let Some(v) = got {
            return Ok(v);
        }
        if interruptible && me.has_deliverable_signal() {
            hal::cpu::without_interrupts(|| {
                *me.run.lock() = RunState::Running;
                unregister(&me);
            });
            return Err(abi::Errno::EINTR);
        }
        schedule();
        let got = hal::cpu::without_interrupts(|| {
            unregister(&me);
            since = count();
            ready()
        });
        if let Some(v) = got {
            return Ok(v);
        }
    }
}

/// Number of runnable processes waiting on every torus (load figures).
pub fn runnable() -> usize {
    (0..torus::count()).map(|i| torus::get(i).queued()).sum()
}

/// The earliest deadline among the sleepers of a wait queue, so that the
/// timer wakes the queue when one is due rather than at every tick. A
/// sleeper notes its deadline inside its readiness check, which
/// [`WaitQueue::wait_until`] runs again once the sleeper is queued: the
/// tick clears the minimum before it wakes the queue, so a deadline noted
/// before the clearing belongs to a sleeper that the wake-up finds queued,
/// and one noted after it stays.
pub struct Deadlines(AtomicU64);

impl Deadlines {
    pub const fn new() -> Deadlines {
        Deadlines(AtomicU64::new(u64::MAX))
    }

    /// A sleeper's deadline (ns).
    pub fn note(&self, deadline: u64) {
        self.0.fetch_min(deadline, Ordering::SeqCst);
    }

    /// Whether the earliest deadline has passed at `now`; if so clears it
    /// (the sleepers about to be woken note theirs again).
    pub fn take_due(&self, now: u64) -> bool {
        if now < self.0.load(Ordering::Acquire) {
            return false;
        }
        self.0.store(u64::MAX, Ordering::SeqCst);
        true
    }
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines::new()
    }
}

/// Processes waiting for something; woken all at once (they re-check).
#[derive(Default)]
pub struct WaitQueue {
    /// Kept (with its capacity) across waits: blocking must not allocate.
    waiters: Mutex<VecDeque<Arc<Process>>>,
    /// `waiters.len()`, stored under its lock and read without it: most
    /// wake-ups find nobody (a pipe wakes its queue and the pollers' at
    /// every read and write), and a woken sleeper is usually no longer
    /// listed; both then skip the lock.
    len: AtomicUsize,
    /// Number of `wake_all`s so far (see [`WaitQueue::wait_for_wake_until`]).
    wakes: AtomicU64,
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> WaitQueue {
        WaitQueue {
            waiters: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            wakes: AtomicU64::new(0),
        }
    }

    /// Wakes every waiter registered now. Inlined: with nobody listed
    /// (most calls) it is a count, a fence and a load.
    #[inline]
    pub fn wake_all(&self) {
        self.wakes.fetch_add(1, Ordering::AcqRel);
        // The caller changed what the waiters look at; a waiter lists
        // itself, then looks (`register`). With a fence on both sides
        // either its look sees the change or this load sees it listed.
        fence(Ordering::SeqCst);
        let n = self.len.load(Ordering::Relaxed);
        if n != 0 {
            self.wake_listed(n);
        }
    }

    /// Wakes up to `n` listed waiters, the first first.
    #[inline(never)]
    fn wake_listed(&self, n: usize) {
        // One at a time, so the queue keeps its buffer and the lock is not
        // held while waking (wake takes the run queue's lock); at most as
        // many as were there, so waiters that register again on another
        // CPU meanwhile cannot keep us here.
        for _ in 0..n {
            let (w, left) = hal::cpu::without_interrupts(|| {
                let mut q = self.waiters.lock();
                let w = q.pop_front();
                self.len.store(q.len(), Ordering::Relaxed);
                (w, q.len())
            });
            let Some(w) = w else {
                break;
            };
            wake(&w);
            if left == 0 {
                break;
            }
        }
    }

    /// The count of wake-ups so far: read it before looking at the
    /// condition, then [`WaitQueue::wait_for_wake_until`] with it.
    pub fn wakes(&self) -> u64 {
        self.wakes.load(Ordering::Acquire)
    }

    /// Sleeps until a `wake_all` after the one counted in `since` (at once
    /// if there was one already), a signal (EINTR), or `deadline` (ns)
    /// passes, which it notes in `timers` (whose tick wakes this queue
    /// when due).
    ///
    /// A signal already deliverable is EINTR before anything else: a
    /// wake-up only says "look again", and the caller has just looked and
    /// found nothing. Were the wake count checked first, a caller whose
    /// queue is woken more often than its own look takes (a poller of
    /// many descriptors while pipes, or every kill(2), wake the pollers'
    /// queue) would go round its loop in the kernel for as long as the
    /// wake-ups kept coming and never see its signal.
    pub fn wait_for_wake_until(
        &self,
        since: u64,
        deadline: Option<u64>,
        timers: &Deadlines,
    ) -> abi::KResult<()> {
        if with_current(|me| me.has_deliverable_signal()) {
            return Err(abi::Errno::EINTR);
        }
        self.wait_until(|| {
            if let Some(d) = deadline {
                timers.note(d);
                if hal::time::now_ns() >= d {
                    return Some(());
                }
            }
            (self.wakes() != since).then_some(())
        })
    }

    /// [`WaitQueue::wait_for_wake_until`] on this queue, with a deadline
    /// kept on another: `timers` and `also` are a deadline list and the
    /// queue the tick wakes when one of them is due, so that this queue
    /// need not be the one the tick wakes (an epoll instance's own queue,
    /// woken only by the files it watches). Registered on `also` only
    /// while there is a deadline.
    pub fn wait_for_wake_until_also(
        &self,
        since: u64,
        deadline: Option<u64>,
        timers: &Deadlines,
        also: &WaitQueue,
    ) -> abi::KResult<()> {
        if with_current(|me| me.has_deliverable_signal()) {
            return Err(abi::Errno::EINTR);
        }
        sleep_until(
            || {
                if let Some(d) = deadline {
                    timers.note(d);
                    if hal::time::now_ns() >= d {
                        return Some(());
                    }
                }
                (self.wakes() != since).then_some(())
            },
            None,
            true,
            |me| {
                self.register(me);
                if deadline.is_some() {
                    also.register(me);
                }
            },
            |me| {
                self.unregister(me);
                if deadline.is_some() {
                    also.unregister(me);
                }
            },
        )
    }

    /// Lists `me` as a waiter (interrupts off). Its caller looks at the
    /// condition next: the fence pairs with the one in `wake_all`.
    fn register(&self, me: &Arc<Process>) {
        {
            let mut q = self.waiters.lock();
            q.push_back(me.clone());
            self.len.store(q.len(), Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
    }

    /// Takes `me`'s registration out, if it is still there (interrupts off).
    fn unregister(&self, me: &Arc<Process>) {
        // Only `me` lists itself, and it did so before this load: a count
        // of 0 read now is from after its entry was taken out.
        if self.len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut q = self.waiters.lock();
        if let Some(i) = q.iter().rposition(|w| Arc::ptr_eq(w, me)) {
            q.remove(i);
            self.len.store(q.len(), Ordering::Relaxed);
        }
    }

    /// Blocks the current process until `ready()` returns Some, or a signal
    /// arrives (EINTR). A waker on another CPU changes the state `ready`
    /// looks at and then calls [`WaitQueue::wake_all`]; so we register
    /// first and look again after: either our second look sees its change
    /// or its wake_all finds us registered (and turns Blocking back into
    /// Running, so the `schedule` below returns at once).
    pub fn wait_until<T>(&self, ready: impl FnMut() -> Option<T>) -> abi::KResult<T> {
        // Woken by this queue's wake_all (which took us out) or by
        // something else (a signal, a wake-up meant for another wait), we
        // leave no entry behind, or a process interrupted again and again
        // would grow the queue without bound.
        sleep_until(
            ready,
            None,
            true,
            |me| self.register(me),
            |me| self.unregister(me),
        )
    }

    /// [`WaitQueue::wait_until`] that a signal does not end: `ready`
    /// itself looks at what the caller must not sleep through (a migrated
    /// process's deputy at home watches for SIGKILL; every signal sent
    /// wakes it).
    pub fn wait_until_uninterruptible<T>(&self, mut ready: impl FnMut() -> Option<T>) -> T {
        loop {
            let r = sleep_until(
                &mut ready,
                None,
                false,
                |me| self.register(me),
                |me| self.unregister(me),
            );
            if let Ok(v) = r {
                return v;
            }
        }
    }

    /// [`WaitQueue::wait_until`] for a condition that changes only with a
    /// [`WaitQueue::wake_all`] of this queue after the change (a pipe's
    /// buffer and ends): the look after registering is skipped when no
    /// wake-up came since the first one.
    pub fn wait_until_woken<T>(&self, ready: impl FnMut() -> Option<T>) -> abi::KResult<T> {
        sleep_until(
            ready,
            Some(&self.wakes),
            true,
            |me| self.register(me),
            |me| self.unregister(me),
        )
    }
}
