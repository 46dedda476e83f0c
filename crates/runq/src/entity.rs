//! A task's scheduling state, which travels with the task between queues
//! and while it sleeps.

use crate::params::Params;
use crate::weight::to_virtual;
use crate::{BASE_SLICE_NS, RR_INTERVAL_NS};

/// A task's scheduling state; the task keeps it while not queued and not
/// running.
///
/// `vruntime` and `deadline` are absolute only within the queue the entity
/// sits on. Whenever it leaves a queue its position is also recorded
/// relative to that queue's clock (`vlag`, `rel_deadline`), and that is what
/// placement uses when it comes back, so sleeping tasks and migrated tasks
/// never depend on another queue's absolute clock.
#[derive(Clone, Copy, Debug)]
pub struct Entity {
    pub params: Params,
    /// Virtual runtime (ns of CPU time scaled by 1024/weight).
    pub(crate) vruntime: u64,
    /// Virtual deadline of the current request: vruntime at request start
    /// plus one slice scaled by 1024/weight.
    pub(crate) deadline: u64,
    /// Lag when it last left a queue: V - vruntime (positive = owed CPU).
    pub(crate) vlag: i64,
    /// deadline - vruntime when it last left a queue.
    pub(crate) rel_deadline: i64,
    /// SCHED_RR quantum left (at most [`RR_INTERVAL_NS`], so u32; the
    /// narrow fields keep the entity at 64 bytes, and it is copied several
    /// times per context switch).
    pub(crate) rr_left_ns: u32,
    /// SCHED_RR quantum ran out while a peer was queued: `put_prev` sends
    /// it to the back of its priority list instead of the front.
    pub(crate) rr_to_tail: bool,
    /// Total CPU time.
    pub(crate) sum_exec_ns: u64,
    /// When the running entity was last charged.
    pub(crate) exec_start_ns: u64,
    /// `params.weight()` and one slice in virtual time at that weight,
    /// cached because the queue needs them many times per context switch.
    /// `params` is public, so they are re-synced whenever the entity enters
    /// a queue ([`Entity::sync`]); while queued or running nobody outside
    /// can change `params`.
    pub(crate) cached_weight: u32,
    pub(crate) cached_vslice: u32,
}

/// [`RR_INTERVAL_NS`] in the width of [`Entity::rr_left_ns`].
pub(crate) const RR_QUANTUM: u32 = {
    assert!(RR_INTERVAL_NS <= u32::MAX as u64);
    RR_INTERVAL_NS as u32
};

/// One slice in virtual time at `weight`: at most 3 ms * 1024 (weight 1),
/// which fits u32.
#[inline]
fn vslice_of(weight: u32) -> u32 {
    u32::try_from(to_virtual(BASE_SLICE_NS, weight)).unwrap_or(u32::MAX)
}

impl Entity {
    /// A fresh entity (a new task): no lag, a full first request, a full RR
    /// quantum.
    pub fn new(params: Params) -> Entity {
        let vslice = vslice_of(params.weight());
        Entity {
            params,
            vruntime: 0,
            deadline: u64::from(vslice),
            vlag: 0,
            rel_deadline: i64::from(vslice),
            rr_left_ns: RR_QUANTUM,
            rr_to_tail: false,
            sum_exec_ns: 0,
            exec_start_ns: 0,
            cached_weight: params.weight(),
            cached_vslice: vslice,
        }
    }

    /// Total CPU time charged to this entity, ns.
    #[inline]
    pub fn sum_exec_ns(&self) -> u64 {
        self.sum_exec_ns
    }

    /// Virtual runtime on the queue it is on (or last left).
    #[inline]
    pub fn vruntime(&self) -> u64 {
        self.vruntime
    }

    /// Virtual deadline of the current request on the queue it is on (or
    /// last left).
    #[inline]
    pub fn deadline(&self) -> u64 {
        self.deadline
    }

    /// Lag (V - vruntime, virtual ns) recorded when it last left a queue.
    #[inline]
    pub fn vlag(&self) -> i64 {
        self.vlag
    }

    /// Real time left in the current fair request, ns (rounded up): when
    /// the tick will next find the request used up, for a tickless or
    /// high-resolution timer. Meaningless for RT entities.
    pub fn request_left_ns(&self) -> u64 {
        let left = self.deadline.saturating_sub(self.vruntime);
        // `params` may have been changed since the entity left its queue.
        let w = u64::from(self.params.weight());
        let nice0 = u64::from(crate::weight::NICE_0_WEIGHT);
        // u64 unless left * w overflows (left >= 2^47 virtual ns).
        match left.checked_mul(w) {
            Some(x) => x.div_ceil(nice0),
            None => {
                let x = (u128::from(left) * u128::from(w)).div_ceil(u128::from(nice0));
                u64::try_from(x).unwrap_or(u64::MAX)
            }
        }
    }

    /// SCHED_RR quantum left, ns.
    #[inline]
    pub fn rr_left_ns(&self) -> u64 {
        u64::from(self.rr_left_ns)
    }

    /// Changes policy/nice/priority of a task that is neither queued nor
    /// running (take it out with `take_current`/`remove` first, then
    /// `enqueue(.., Enqueue::Requeue)`). The recorded lag and relative
    /// deadline are rescaled by old/new weight so the task keeps the same
    /// lag in *real* time (Linux `reweight_entity` does the same).
    pub fn set_params(&mut self, p: Params) {
        let (old_w, new_w) = (self.params.weight().max(1), p.weight().max(1));
        if old_w != new_w {
            let rescale = |x: i64| {
                let y = i128::from(x) * i128::from(old_w) / i128::from(new_w);
                i64::try_from(y).unwrap_or(if y < 0 { i64::MIN } else { i64::MAX })
            };
            self.vlag = rescale(self.vlag);
            self.rel_deadline = rescale(self.rel_deadline);
        }
        if p.policy.is_rt() && !self.params.policy.is_rt() {
            // Becoming RT starts a fresh RR quantum.
            self.rr_left_ns = RR_QUANTUM;
        }
        self.params = p;
        self.sync();
    }

    /// Re-derives the cached weight and slice from `params` (only divides
    /// when the weight changed).
    #[inline]
    pub(crate) fn sync(&mut self) {
        let w = self.params.weight();
        if w != self.cached_weight {
            self.cached_weight = w;
            self.cached_vslice = vslice_of(w);
        }
    }

    /// `params.weight()`, as of the last [`Entity::sync`].
    #[inline]
    pub(crate) fn weight(&self) -> u32 {
        self.cached_weight
    }

    #[inline]
    pub(crate) fn is_rt(&self) -> bool {
        self.params.policy.is_rt()
    }

    /// One request (slice) in this entity's virtual time.
    #[inline]
    pub(crate) fn vslice(&self) -> u64 {
        u64::from(self.cached_vslice)
    }

    /// Bound on |lag| honoured at placement: two slices' worth, like
    /// Linux's `update_entity_lag` limit (with our 1 ms tick < 2 slices).
    #[inline]
    pub(crate) fn lag_limit(&self) -> i64 {
        // A slice fits u32, so this fits i64.
        i64::from(self.cached_vslice) * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Policy;

    #[test]
    fn set_params_keeps_real_lag() {
        let mut e = Entity::new(Params::DEFAULT);
        e.vlag = 1000;
        e.set_params(Params {
            policy: Policy::Normal,
            nice: -5,
            rt_prio: 0,
        });
        // 1000 virtual ns at weight 1024 = 1000 real ns = 1000*1024/3121 virtual.
        assert_eq!(e.vlag, 1000 * 1024 / 3121);
        e.vlag = i64::MIN;
        e.set_params(Params {
            policy: Policy::Idle,
            nice: 0,
            rt_prio: 0,
        });
        assert_eq!(e.vlag, i64::MIN, "saturates instead of overflowing");
    }
}
