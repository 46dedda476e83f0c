//! The per-CPU run queue: RT lists above the EEVDF fair queue, plus the
//! running task's entity and the queue's virtual clock V.

use alloc::vec::Vec;

use crate::entity::{Entity, RR_QUANTUM};
use crate::fair::{average, eligible, weighted, FairQueue};
use crate::params::{Params, Policy};
use crate::rt::RtQueue;
use crate::weight::{to_virtual, NICE_0_WEIGHT};

/// Why a task is being added to a queue; decides where it is placed in
/// virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueue {
    /// A new task: placed at V with zero lag and a fresh request.
    New,
    /// A sleeper waking up (on this or any other CPU): placed with the lag
    /// it had when it went to sleep, clamped to +-2 slices, and a fresh
    /// request. See the crate doc for why.
    Wakeup,
    /// A runnable task moved from another queue (`steal`/`remove` there),
    /// `from_vclock` being that queue's `vclock()` read right after the
    /// removal: vruntime renormalised as `v - from_vclock + V` (the offset
    /// clamped to +-2 slices), deadline kept relative to vruntime.
    Migrated { from_vclock: u64 },
    /// A task that left this queue without sleeping (e.g. `take_current` for
    /// a policy change): keeps its lag and relative deadline exactly.
    /// RT tasks go back to the head of their priority list.
    Requeue,
}

/// V above which the queue shifts every vruntime down. Only reachable after
/// centuries of virtual time (SCHED_IDLE runs ~341x faster than real time),
/// but it keeps u64 vruntimes from ever saturating.
const REBASE_ABOVE: u64 = 1 << 62;

/// One CPU's run queue. `T` is the caller's task handle; the queue owns the
/// handles of queued tasks, while the running task's handle is with the
/// caller (returned by `pick_next`, given back to `put_prev`) and only its
/// `Entity` stays here as `current`.
pub struct RunQueue<T> {
    pub(crate) fair: FairQueue<T>,
    pub(crate) rt: RtQueue<T>,
    current: Option<Entity>,
    /// Sum of weights of every fair task here, queued *and* running (so a
    /// pick or a preemption, which only moves a task between the two, does
    /// not touch it). Wrapping add/sub is exact as long as the true sum
    /// fits, which it does (88761 < 2^17 per task).
    sum_w: u64,
    /// Sum of weight * vruntime over the same tasks, exact modulo 2^128 for
    /// the same reason; the true value is < 2^17 * 2^64 * tasks. (u128
    /// additions are two instructions; only the division for V needs care,
    /// see `fair::average`.)
    sum_wv: u128,
    /// V: load-weighted average vruntime of queued + running fair tasks,
    /// refreshed after every change; keeps its last value while the queue
    /// has no fair task so returning tasks land where the clock stopped.
    vclock: u64,
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RunQueue<T> {
    /// An empty queue; `const` so it can live in a static per-CPU array.
    pub const fn new() -> Self {
        RunQueue {
            fair: FairQueue::new(),
            rt: RtQueue::new(),
            current: None,
            sum_w: 0,
            sum_wv: 0,
            vclock: 0,
        }
    }

    /// Gives back the queues' spare capacity, so that the next enqueue
    /// allocates. Fault injection uses it to make the (otherwise rare)
    /// allocation under a run-queue lock happen on every enqueue.
    pub fn release_spare(&mut self) {
        self.fair.tasks.shrink_to_fit();
        self.rt.tasks.shrink_to_fit();
    }

    /// Waiting tasks (not counting the running one).
    #[inline]
    pub fn queued(&self) -> usize {
        self.fair.len() + self.rt.len()
    }

    /// Queued + the running one.
    pub fn nr_running(&self) -> usize {
        self.queued() + usize::from(self.current.is_some())
    }

    /// Queued real-time tasks.
    pub fn rt_queued(&self) -> usize {
        self.rt.len()
    }

    /// Queued fair tasks.
    pub fn fair_queued(&self) -> usize {
        self.fair.len()
    }

    /// Sum of the weights of queued + running fair tasks; RT tasks count
    /// NICE_0_WEIGHT each. For load balancing.
    pub fn load(&self) -> u64 {
        let rt = (self.rt.len() as u64).saturating_mul(u64::from(NICE_0_WEIGHT));
        // A running fair task is already in `sum_w`.
        let cur_rt = self
            .current
            .filter(Entity::is_rt)
            .map_or(0, |c| u64::from(c.weight()));
        self.sum_w.saturating_add(rt).saturating_add(cur_rt)
    }

    /// The queue's virtual clock V (for renormalising migrated tasks).
    #[inline]
    pub fn vclock(&self) -> u64 {
        self.vclock
    }

    /// Params of the running task, if any.
    pub fn current_params(&self) -> Option<Params> {
        self.current.map(|c| c.params)
    }

    /// The running task's entity (charged up to the last tick/charge).
    pub fn current(&self) -> Option<&Entity> {
        self.current.as_ref()
    }

    /// Adds a task; see [`Enqueue`] for placement. Returns a copy of the
    /// entity as placed, which is what [`RunQueue::should_preempt`] wants.
    pub fn enqueue(&mut self, t: T, e: Entity, how: Enqueue) -> Entity {
        let mut e = e;
        // The caller may have edited `params` while holding the entity.
        e.sync();
        e.rr_to_tail = false;
        if e.is_rt() {
            if how == Enqueue::New || e.rr_left_ns == 0 {
                e.rr_left_ns = RR_QUANTUM;
            }
            if how == Enqueue::Requeue {
                self.rt.push_front(t, e);
            } else {
                self.rt.push_back(t, e);
            }
            return e;
        }
        self.place(&mut e, how);
        self.sum_w = self.sum_w.wrapping_add(u64::from(e.weight()));
        self.sum_wv = self.sum_wv.wrapping_add(weighted(&e));
        self.fair.insert(t, e);
        self.refresh_vclock();
        e
    }

    /// Sets a fair entity's vruntime/deadline for joining this queue.
    #[inline]
    fn place(&self, e: &mut Entity, how: Enqueue) {
        let w = self.sum_w;
        // 2 slices < 2^31 (a slice is at most 3 ms * 1024 / 3 virtual ns).
        let limit = e.lag_limit();
        let (mut lag, inflate) = match how {
            Enqueue::New => (0, false),
            Enqueue::Wakeup | Enqueue::Requeue => (e.vlag.clamp(-limit, limit), true),
            Enqueue::Migrated { from_vclock } => {
                // The offset itself may not fit i64; clamped it does.
                let lag = i128::from(from_vclock) - i128::from(e.vruntime);
                let lag = lag.clamp(-i128::from(limit), i128::from(limit));
                (i64::try_from(lag).unwrap_or(0), false)
            }
        };
        if w == 0 {
            // Alone on the queue, lag means nothing: start at V.
            lag = 0;
        } else if inflate {
            // Adding the task moves V towards it; scaling its lag by
            // (W + w)/W makes the lag it ends up with equal the lag it left
            // with (Linux place_entity).
            lag = inflate_lag(lag, w, u64::from(e.weight()));
        }
        e.vruntime = if lag >= 0 {
            self.vclock.saturating_sub(lag.unsigned_abs())
        } else {
            self.vclock.saturating_add(lag.unsigned_abs())
        };
        let vslice = e.vslice();
        let rel = match how {
            Enqueue::New | Enqueue::Wakeup => vslice,
            Enqueue::Migrated { .. } | Enqueue::Requeue => {
                // `limit` is 2 slices.
                u64::try_from(e.rel_deadline.clamp(0, limit)).unwrap_or(vslice)
            }
        };
        e.deadline = e.vruntime.saturating_add(rel);
    }

    /// Picks the next task and makes it the running one, starting its
    /// accounting at `now_ns`. RT first (highest priority, FIFO within a
    /// priority), then EEVDF: the earliest virtual deadline among eligible
    /// fair tasks. `None` if nothing is queued.
    ///
    /// Call it with no running task (after `put_prev`/`take_current`). If a
    /// task is still running that is a caller bug; rather than panic, the
    /// old running entity is retired as by `take_current` and dropped.
    pub fn pick_next(&mut self, now_ns: u64) -> Option<T> {
        if self.current.is_some() {
            let _ = self.take_current(now_ns);
        }
        // The entity is copied from its slot straight into `current` and
        // only the handle is moved out: moving the whole entry out first
        // costs about as much again in copies.
        let t = if let Some((_, _, e)) = self.rt.tasks.front() {
            self.current = Some(*e);
            self.rt.pop_first().map(|(t, _)| t)
        } else {
            // Nothing runs now, so the sums are those of the queued tasks.
            let idx = self.fair.pick_idx(self.sum_wv, self.sum_w)?;
            let (_, e) = self.fair.tasks.get(idx)?;
            self.current = Some(*e);
            self.fair.remove(idx).map(|(t, _)| t)
        };
        if let Some(c) = self.current.as_mut() {
            c.exec_start_ns = now_ns;
        }
        // The picked task moves from queued to running: V is unchanged.
        t
    }

    /// The running task stops running (sleep, exit, migration, policy
    /// change): charged up to `now_ns`, its lag recorded, entity returned.
    pub fn take_current(&mut self, now_ns: u64) -> Option<Entity> {
        self.charge(now_ns);
        // Updated in place and moved out once: the entity is large enough
        // for every copy to count on this path.
        let c = self.current.as_mut()?;
        let fair = !c.is_rt();
        if fair {
            // V still includes it here (refreshed by charge).
            record_lag(c, self.vclock);
            self.sum_w = self.sum_w.wrapping_sub(u64::from(c.weight()));
            self.sum_wv = self.sum_wv.wrapping_sub(weighted(c));
        }
        let e = self.current.take();
        if fair {
            self.refresh_vclock();
        }
        e
    }

    /// Preempted / yielding: the running task `t` goes back into the queue,
    /// charged up to `now_ns`. `yield_` = sched_yield: a fair task's
    /// deadline moves out one slice so others go first; an RT task goes to
    /// the back of its priority list. A preempted RT task keeps the head of
    /// its list, unless its RR quantum ran out (then the back).
    ///
    /// With no running task (caller bug) `t` is queued as a New default
    /// task rather than lost.
    pub fn put_prev(&mut self, t: T, now_ns: u64, yield_: bool) {
        self.charge(now_ns);
        let Some(mut e) = self.current.take() else {
            self.enqueue(t, Entity::new(Params::DEFAULT), Enqueue::New);
            return;
        };
        if e.is_rt() {
            let to_tail = yield_ || e.rr_to_tail;
            e.rr_to_tail = false;
            if to_tail {
                self.rt.push_back(t, e);
            } else {
                self.rt.push_front(t, e);
            }
            return;
        }
        if yield_ {
            e.deadline = e.deadline.saturating_add(e.vslice());
        }
        // Counted in the sums as running, now as queued: V unchanged.
        self.fair.insert(t, e);
    }

    /// Timer tick: charges the running task and says whether it should be
    /// preempted now:
    /// - a fair task whose request is used up (it then gets a new deadline
    ///   one slice out) while anything else is queued;
    /// - an RR task whose quantum ran out while an equal-priority task is
    ///   queued (it then goes to the back of its list on `put_prev`);
    /// - any fair task while an RT task is queued, and any RT task while a
    ///   higher-priority one is queued (normally wakeup preemption already
    ///   handled these; the tick is the safety net).
    pub fn tick(&mut self, now_ns: u64) -> bool {
        let request_done = self.charge(now_ns);
        let queued = self.queued();
        let best_rt = self.rt.best_prio();
        let Some(c) = self.current.as_mut() else {
            return false;
        };
        if !c.is_rt() {
            return best_rt.is_some() || (request_done && queued > 0);
        }
        let prio = c.params.kernel_prio();
        if best_rt.is_some_and(|b| b < prio) {
            return true;
        }
        if c.params.policy == Policy::RoundRobin && c.rr_left_ns == 0 {
            // Linux: a fresh quantum either way; rotate only if a peer waits.
            c.rr_left_ns = RR_QUANTUM;
            if self.rt.has_prio(prio) {
                c.rr_to_tail = true;
                return true;
            }
        }
        false
    }

    /// Whether `e` (as returned by `enqueue`) should preempt the running
    /// task: RT over fair, higher RT priority over lower, a non-idle fair
    /// task over a SCHED_IDLE one, and fair over fair when `e` is eligible
    /// and its deadline is earlier than the running task's. Batch and Idle
    /// tasks never wakeup-preempt. True when nothing is running (the idle
    /// CPU should reschedule).
    pub fn should_preempt(&self, e: &Entity) -> bool {
        let Some(c) = self.current.as_ref() else {
            return true;
        };
        match (e.is_rt(), c.is_rt()) {
            (true, false) => true,
            (true, true) => e.params.kernel_prio() < c.params.kernel_prio(),
            (false, true) => false,
            (false, false) => match e.params.policy {
                Policy::Batch | Policy::Idle => false,
                _ if c.params.policy == Policy::Idle => true,
                _ => {
                    let (s, w) = self.fair_sums();
                    eligible(e, s, w) && e.deadline < c.deadline
                }
            },
        }
    }

    /// Removes and returns one queued task that `movable` accepts, for
    /// migration to another CPU: fair tasks first (latest deadline first,
    /// they are the least urgent here), then RT (lowest priority, tail
    /// first). Never the running one. Enqueue it elsewhere with
    /// `Migrated { from_vclock: self.vclock() }` read after this call.
    pub fn steal(&mut self, mut movable: impl FnMut(&T) -> bool) -> Option<(T, Entity)> {
        // Least urgent first: both lists are stored most urgent first.
        let fair = self.fair.tasks.iter().rposition(|(t, _)| movable(t));
        if let Some(idx) = fair {
            return self.remove_fair(idx);
        }
        let rt = self.rt.tasks.iter().rposition(|(_, t, _)| movable(t));
        rt.and_then(|idx| self.rt.remove(idx))
    }

    /// Removes a specific queued task (the first `matches` accepts), e.g.
    /// when its affinity changes. Never the running one.
    pub fn remove(&mut self, mut matches: impl FnMut(&T) -> bool) -> Option<(T, Entity)> {
        // Most urgent first, the order both lists are stored in.
        let fair = self.fair.tasks.iter().position(|(t, _)| matches(t));
        if let Some(idx) = fair {
            return self.remove_fair(idx);
        }
        let rt = self.rt.tasks.iter().position(|(_, t, _)| matches(t));
        rt.and_then(|idx| self.rt.remove(idx))
    }

    /// Every queued task with its entity, RT first (not the running one):
    /// what the queue holds, e.g. to publish it to another CPU.
    pub fn iter(&self) -> impl Iterator<Item = (&T, &Entity)> {
        let rt = self.rt.tasks.iter().map(|(_, t, e)| (t, e));
        rt.chain(self.fair.tasks.iter().map(|(t, e)| (t, e)))
    }

    /// Drains every queued task (e.g. adopting a failed CPU's tasks), RT
    /// first. The running task's entity stays; get it with `take_current`.
    pub fn drain(&mut self) -> Vec<(T, Entity)> {
        let v = self.vclock;
        let mut out: Vec<(T, Entity)> = self.rt.drain().collect();
        out.extend(self.fair.drain().map(|(t, mut e)| {
            record_lag(&mut e, v);
            (t, e)
        }));
        self.resum();
        self.refresh_vclock();
        out
    }

    fn remove_fair(&mut self, idx: usize) -> Option<(T, Entity)> {
        let (t, mut e) = self.fair.remove(idx)?;
        record_lag(&mut e, self.vclock);
        self.sum_w = self.sum_w.wrapping_sub(u64::from(e.weight()));
        self.sum_wv = self.sum_wv.wrapping_sub(weighted(&e));
        self.refresh_vclock();
        Some((t, e))
    }

    /// (sum of weight*vruntime, sum of weight) over queued + running fair
    /// tasks.
    #[inline]
    fn fair_sums(&self) -> (u128, u64) {
        (self.sum_wv, self.sum_w)
    }

    /// Recomputes the sums from scratch (after rebasing or draining).
    fn resum(&mut self) {
        let queued = self.fair.tasks.iter().map(|(_, e)| e);
        let running = self.current.iter().filter(|c| !c.is_rt());
        let (mut s, mut w) = (0u128, 0u64);
        for e in queued.chain(running) {
            s = s.wrapping_add(weighted(e));
            w = w.wrapping_add(u64::from(e.weight()));
        }
        self.sum_wv = s;
        self.sum_w = w;
    }

    /// The weighted average vruntime of the fair tasks, if there are any.
    #[inline]
    fn average(&self) -> Option<u64> {
        let (s, w) = self.fair_sums();
        average(s, w)
    }

    /// Recomputes V; keeps the old value when there is no fair task.
    #[inline]
    fn refresh_vclock(&mut self) {
        if let Some(v) = self.average() {
            self.vclock = v;
        }
        if self.vclock > REBASE_ABOVE {
            self.rebase(self.vclock - (REBASE_ABOVE >> 1));
        }
    }

    /// Shifts all of this queue's virtual times down by `shift`. Placement
    /// only ever uses positions relative to V, so nothing outside the queue
    /// needs to know. Entities further behind than `shift` (impossible in
    /// practice: lag is bounded) would clamp to 0.
    #[cold]
    #[inline(never)]
    fn rebase(&mut self, shift: u64) {
        let down = |e: &mut Entity| {
            if e.vruntime >= shift {
                e.vruntime -= shift;
                e.deadline = e.deadline.saturating_sub(shift);
            } else {
                // Clamped to 0: keep the request's length, at least.
                e.deadline = e.deadline.saturating_sub(e.vruntime);
                e.vruntime = 0;
            }
        };
        self.fair.update_all(down);
        if let Some(c) = self.current.as_mut().filter(|c| !c.is_rt()) {
            down(c);
        }
        self.resum();
        self.vclock = self.average().unwrap_or(self.vclock.saturating_sub(shift));
    }

    /// Charges the running task for the time since its last charge.
    /// Returns whether a fair task's request just ran out (a new one was
    /// started).
    #[inline]
    fn charge(&mut self, now_ns: u64) -> bool {
        let Some(c) = self.current.as_mut() else {
            return false;
        };
        // A clock that goes backwards charges nothing (and the start stays,
        // so the same interval is never charged twice).
        let delta = now_ns.saturating_sub(c.exec_start_ns);
        c.exec_start_ns = c.exec_start_ns.max(now_ns);
        c.sum_exec_ns = c.sum_exec_ns.saturating_add(delta);
        if c.is_rt() {
            // No more than it had left, so it fits.
            let left = u64::from(c.rr_left_ns).saturating_sub(delta);
            c.rr_left_ns = u32::try_from(left).unwrap_or(0);
            return false;
        }
        let old = c.vruntime;
        c.vruntime = old.saturating_add(to_virtual(delta, c.weight()));
        // What was actually added (less than asked if it saturated).
        let added = u128::from(c.vruntime - old);
        self.sum_wv = self
            .sum_wv
            .wrapping_add(u128::from(u64::from(c.weight())) * added);
        let done = c.vruntime >= c.deadline;
        if done {
            // Linux update_deadline: the next request starts where this
            // task is now.
            c.deadline = c.vruntime.saturating_add(c.vslice());
        }
        self.refresh_vclock();
        done
    }

    #[cfg(test)]
    pub(crate) fn force_rebase(&mut self, shift: u64) {
        self.rebase(shift);
    }

    /// Internal consistency, for tests: the cached sums match the queued
    /// entities and V matches them.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let (s, w) = self.fair_sums();
        let running = self.current.iter().filter(|c| !c.is_rt());
        let (s2, w2) = self
            .fair
            .tasks
            .iter()
            .map(|(_, e)| e)
            .chain(running)
            .fold((0u128, 0u64), |(s, w), e| {
                (s.wrapping_add(weighted(e)), w + u64::from(e.weight()))
            });
        assert_eq!((s, w), (s2, w2), "fair sums drifted");
        for (_, e) in &self.fair.tasks {
            assert!(!e.is_rt());
        }
        let entities = self.fair.tasks.iter().map(|(_, e)| e);
        let entities = entities.chain(self.rt.tasks.iter().map(|(_, _, e)| e));
        for e in entities.chain(self.current.as_ref()) {
            assert_eq!(e.weight(), e.params.weight(), "cached weight stale");
            let vslice = crate::weight::to_virtual(crate::BASE_SLICE_NS, e.weight());
            assert_eq!(e.vslice(), vslice, "cached slice stale");
        }
        assert!(
            self.fair
                .tasks
                .iter()
                .zip(self.fair.tasks.iter().skip(1))
                .all(|(a, b)| a.1.deadline <= b.1.deadline),
            "fair tasks not sorted by deadline"
        );
        for (p, _, e) in &self.rt.tasks {
            assert_eq!(*p, e.params.kernel_prio());
            assert!(e.is_rt());
        }
        assert!(
            self.rt
                .tasks
                .iter()
                .zip(self.rt.tasks.iter().skip(1))
                .all(|(a, b)| a.0 <= b.0),
            "RT tasks not sorted by priority"
        );
        if let Some(v) = self.average() {
            assert_eq!(self.vclock, v, "V stale");
        }
    }
}

/// `lag * (W + w) / W` (truncating towards zero), `W > 0` being the fair
/// weight already on the queue and `w` the joining task's. `|lag| < 2^31`,
/// so with `W + w < 2^32` (tens of thousands of tasks) the product fits
/// i64 and no 128-bit division is needed; beyond that the exact i128 path
/// is taken. The result is at most `|lag| * (1 + 88761 / 3) < 2^46`.
#[inline]
fn inflate_lag(lag: i64, w: u64, we: u64) -> i64 {
    let w = w.max(1);
    let total = w.saturating_add(we);
    if let (Ok(total), Ok(w)) = (i64::try_from(total), i64::try_from(w)) {
        if total < 1 << 32 && lag.unsigned_abs() < 1 << 31 {
            return lag * total / w;
        }
    }
    let r = i128::from(lag).saturating_mul(i128::from(total)) / i128::from(w);
    i64::try_from(r).unwrap_or(if r < 0 { i64::MIN } else { i64::MAX })
}

/// Records a fair entity's position relative to the clock `v` of the queue
/// it is leaving.
#[inline]
fn record_lag(e: &mut Entity, v: u64) {
    e.vlag = signed_diff(v, e.vruntime);
    e.rel_deadline = signed_diff(e.deadline, e.vruntime);
}

/// `a - b` saturated to i64. Virtual times stay below 2^63 (the queue
/// rebases above 2^62), where the plain i64 difference is exact; the i128
/// path is for saturated ones.
#[inline]
fn signed_diff(a: u64, b: u64) -> i64 {
    if let (Ok(a), Ok(b)) = (i64::try_from(a), i64::try_from(b)) {
        return a - b;
    }
    let x = i128::from(a) - i128::from(b);
    i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::signed_diff;

    /// The i64 fast path agrees with the saturating i128 formula, on both
    /// sides of 2^63.
    #[test]
    fn signed_diff_matches_i128() {
        let vals = [
            0,
            1,
            12345,
            (1 << 62) + 7,
            i64::MAX as u64 - 1,
            i64::MAX as u64,
            1 << 63,
            (1 << 63) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for a in vals {
            for b in vals {
                let x = i128::from(a) - i128::from(b);
                let want = i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX });
                assert_eq!(signed_diff(a, b), want, "{a} - {b}");
            }
        }
    }
}
