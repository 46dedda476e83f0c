//! Scheduling policy and parameters as Linux's sched_setscheduler /
//! setpriority expose them.

use crate::weight::{weight_of_nice, IDLE_WEIGHT, NICE_0_WEIGHT};

/// Scheduling policy. Linux numbers: SCHED_OTHER=0, FIFO=1, RR=2, BATCH=3,
/// IDLE=5 (SCHED_DEADLINE=6 is not supported).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// SCHED_OTHER: EEVDF fair class.
    Normal,
    /// SCHED_BATCH: fair class, but never wakeup-preempts.
    Batch,
    /// SCHED_IDLE: fair class at weight 3, never wakeup-preempts.
    Idle,
    /// SCHED_FIFO: real-time, runs until it blocks, yields or is preempted
    /// by a higher real-time priority.
    Fifo,
    /// SCHED_RR: SCHED_FIFO with a round-robin quantum among equal priorities.
    RoundRobin,
}

impl Policy {
    /// From the Linux policy number. The caller strips
    /// SCHED_RESET_ON_FORK (0x4000_0000) first; unknown numbers are `None`
    /// (the syscall then returns EINVAL).
    pub fn from_linux(n: u32) -> Option<Policy> {
        match n {
            0 => Some(Policy::Normal),
            1 => Some(Policy::Fifo),
            2 => Some(Policy::RoundRobin),
            3 => Some(Policy::Batch),
            5 => Some(Policy::Idle),
            _ => None,
        }
    }

    /// The Linux policy number.
    pub fn to_linux(self) -> u32 {
        match self {
            Policy::Normal => 0,
            Policy::Fifo => 1,
            Policy::RoundRobin => 2,
            Policy::Batch => 3,
            Policy::Idle => 5,
        }
    }

    /// Real-time (FIFO or RR) rather than fair.
    #[inline]
    pub fn is_rt(self) -> bool {
        matches!(self, Policy::Fifo | Policy::RoundRobin)
    }
}

/// A task's scheduling parameters. Fields are public and may hold any value;
/// every consumer goes through the clamping accessors, so an out-of-range
/// value chosen by user space can never cause a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub policy: Policy,
    /// -20..=19 (used by the fair policies; kept across RT stints as Linux
    /// does).
    pub nice: i8,
    /// 1..=99 for Fifo/RoundRobin, 0 otherwise.
    pub rt_prio: u8,
}

impl Params {
    /// SCHED_OTHER, nice 0.
    pub const DEFAULT: Params = Params {
        policy: Policy::Normal,
        nice: 0,
        rt_prio: 0,
    };

    /// Validated constructor with Linux's sched_setscheduler rules: RT
    /// policies need rt_prio 1..=99, the others need 0; nice is clamped to
    /// -20..=19 like setpriority does. `None` = EINVAL.
    pub fn checked(policy: Policy, nice: i32, rt_prio: u32) -> Option<Params> {
        let prio_ok = if policy.is_rt() {
            (1..=99).contains(&rt_prio)
        } else {
            rt_prio == 0
        };
        if !prio_ok {
            return None;
        }
        Some(Params {
            policy,
            // After the clamp the value fits i8.
            nice: i8::try_from(nice.clamp(-20, 19)).unwrap_or(0),
            rt_prio: u8::try_from(rt_prio).unwrap_or(0),
        })
    }

    /// Nice clamped to -20..=19.
    #[inline]
    pub fn nice_clamped(&self) -> i32 {
        i32::from(self.nice).clamp(-20, 19)
    }

    /// RT priority clamped to 1..=99 for RT policies, 0 otherwise.
    #[inline]
    pub fn rt_prio_clamped(&self) -> u32 {
        if self.policy.is_rt() {
            u32::from(self.rt_prio).clamp(1, 99)
        } else {
            0
        }
    }

    /// Linux kernel priority 0..=139, lower is more important:
    /// `99 - rt_prio` for RT (0..=98), `120 + nice` for fair (100..=139).
    /// (`/proc/<pid>/stat`'s "priority" field is this minus 100.)
    #[inline]
    pub fn kernel_prio(&self) -> u32 {
        if self.policy.is_rt() {
            99 - self.rt_prio_clamped()
        } else {
            // 100..=139 after the clamp, so the conversion cannot fail.
            u32::try_from(120 + self.nice_clamped()).unwrap_or(120)
        }
    }

    /// Load weight: the nice weight for Normal/Batch, 3 for Idle, and
    /// NICE_0_WEIGHT for RT (only used for load balancing there, RT tasks
    /// are not weighted against each other).
    #[inline]
    pub fn weight(&self) -> u32 {
        match self.policy {
            Policy::Normal | Policy::Batch => weight_of_nice(self.nice_clamped()),
            Policy::Idle => IDLE_WEIGHT,
            Policy::Fifo | Policy::RoundRobin => NICE_0_WEIGHT,
        }
    }
}

impl Default for Params {
    fn default() -> Self {
        Params::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_policy_numbers_round_trip() {
        for n in 0..8 {
            if let Some(p) = Policy::from_linux(n) {
                assert_eq!(p.to_linux(), n);
            }
        }
        assert_eq!(Policy::from_linux(4), None);
        assert_eq!(Policy::from_linux(6), None);
        assert_eq!(Policy::from_linux(2), Some(Policy::RoundRobin));
        assert!(Policy::Fifo.is_rt() && Policy::RoundRobin.is_rt());
        assert!(!Policy::Normal.is_rt() && !Policy::Batch.is_rt() && !Policy::Idle.is_rt());
    }

    #[test]
    fn kernel_prio_and_weight() {
        assert_eq!(Params::DEFAULT.kernel_prio(), 120);
        assert_eq!(Params::DEFAULT.weight(), 1024);
        let p = |policy, nice, rt_prio| Params {
            policy,
            nice,
            rt_prio,
        };
        assert_eq!(p(Policy::Normal, -20, 0).kernel_prio(), 100);
        assert_eq!(p(Policy::Normal, 19, 0).kernel_prio(), 139);
        assert_eq!(p(Policy::Fifo, 0, 99).kernel_prio(), 0);
        assert_eq!(p(Policy::RoundRobin, 0, 1).kernel_prio(), 98);
        assert_eq!(p(Policy::Idle, 0, 0).weight(), 3);
        assert_eq!(p(Policy::Batch, 5, 0).weight(), 335);
        // Garbage values clamp rather than panic.
        assert_eq!(p(Policy::Normal, i8::MIN, 0).kernel_prio(), 100);
        assert_eq!(p(Policy::Normal, i8::MAX, 0).weight(), 15);
        assert_eq!(p(Policy::Fifo, 0, 255).kernel_prio(), 0);
        assert_eq!(p(Policy::Fifo, 0, 0).kernel_prio(), 98);
    }

    #[test]
    fn checked_follows_sched_setscheduler() {
        assert_eq!(Params::checked(Policy::Fifo, 0, 0), None);
        assert_eq!(Params::checked(Policy::Fifo, 0, 100), None);
        assert_eq!(Params::checked(Policy::Normal, 0, 1), None);
        assert_eq!(
            Params::checked(Policy::Normal, -100, 0).map(|p| p.nice),
            Some(-20)
        );
        assert_eq!(
            Params::checked(Policy::RoundRobin, 3, 50),
            Some(Params {
                policy: Policy::RoundRobin,
                nice: 3,
                rt_prio: 50
            })
        );
    }
}
