//! Placement between machines: which machines a loaded machine should
//! move its processes to, from the load each machine's roster announces
//! (`roster.rs`). The kernel's balancer (kernel/src/cluster/balance.rs)
//! picks the processes and moves them; this decides only where, so the
//! rule is tested here, on the host, against arbitrary loads.
//!
//! A machine's share of the view's load is `total · its CPUs / all CPUs`.
//! A machine moves `floor(excess / TASK)` processes (at most `most`), each
//! to the machine whose deficit is the largest whole nice-0 task count
//! left. Whole tasks only: a machine within one task of its share keeps
//! its processes, so two machines never trade one task back and forth.

use alloc::vec::Vec;

/// One nice-0 task's weight (Linux's `NICE_0_LOAD`): the unit moved.
pub const TASK: u64 = 1024;

/// What a machine's roster says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineLoad {
    /// The machine's number in the view.
    pub machine: usize,
    /// Runnable weight of its tori that are up.
    pub load: u64,
    /// Its tori that are up (CPUs).
    pub cpus: u64,
}

/// Where up to `most` processes of machine `me` should go, one machine
/// per process (a machine may appear several times), given every fresh
/// machine's load. Empty when `me` is not among them or is within a
/// whole task of its share.
pub fn plan_moves(me: usize, loads: &[MachineLoad], most: usize) -> Vec<usize> {
    let Some(mine) = loads.iter().find(|l| l.machine == me) else {
        return Vec::new();
    };
    let total = loads.iter().fold(0u64, |s, l| s.saturating_add(l.load));
    let cpus = loads.iter().fold(0u64, |s, l| s.saturating_add(l.cpus));
    // u128: a load times a CPU count may not fit u64 (rosters carry u32
    // loads per torus, but this is a pure function of its input).
    let share = |c: u64| -> u64 {
        let s = u128::from(total) * u128::from(c) / u128::from(cpus.max(1));
        u64::try_from(s).unwrap_or(u64::MAX)
    };
    let excess = mine.load.saturating_sub(share(mine.cpus)) / TASK;
    let mut deficits: Vec<(usize, u64)> = loads
        .iter()
        .filter(|l| l.machine != me)
        .map(|l| (l.machine, share(l.cpus).saturating_sub(l.load) / TASK))
        .filter(|d| d.1 > 0)
        .collect();
    let mut out = Vec::new();
    while out.len() < most && (out.len() as u64) < excess {
        // The machine with the largest deficit left takes the next one
        // (the first listed among equals).
        let Some(d) = deficits
            .iter_mut()
            .filter(|d| d.1 > 0)
            .reduce(|a, b| if b.1 > a.1 { b } else { a })
        else {
            break;
        };
        d.1 -= 1;
        out.push(d.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(machine: usize, tasks: u64, cpus: u64) -> MachineLoad {
        MachineLoad {
            machine,
            load: tasks * TASK,
            cpus,
        }
    }

    #[test]
    fn six_tasks_on_one_of_three_spread_two_each() {
        let loads = [m(0, 6, 1), m(1, 0, 1), m(2, 0, 1)];
        let mut to = plan_moves(0, &loads, 4);
        to.sort_unstable();
        assert_eq!(to, [1, 1, 2, 2]);
    }

    #[test]
    fn within_a_task_of_the_share_nothing_moves() {
        // 2 tasks on 1 CPU next to 1 on 1 CPU: shares 1.5 each.
        assert!(plan_moves(0, &[m(0, 2, 1), m(1, 1, 1)], 4).is_empty());
        assert!(plan_moves(1, &[m(0, 2, 1), m(1, 1, 1)], 4).is_empty());
    }

    #[test]
    fn cpus_weigh_the_share() {
        // 4 tasks on a 3-CPU machine and none on a 1-CPU one: shares 3
        // and 1, so one moves.
        assert_eq!(plan_moves(0, &[m(0, 4, 3), m(1, 0, 1)], 4), [1]);
        // 4 tasks on a 1-CPU machine next to a 3-CPU one: 3 move.
        assert_eq!(plan_moves(0, &[m(0, 4, 1), m(1, 0, 3)], 4), [1, 1, 1]);
    }

    #[test]
    fn unknown_machine_or_empty_view_plans_nothing() {
        assert!(plan_moves(5, &[m(0, 9, 1), m(1, 0, 1)], 4).is_empty());
        assert!(plan_moves(0, &[], 4).is_empty());
        assert!(plan_moves(0, &[m(0, 9, 1)], 4).is_empty());
    }

    /// 1-6 machines of 1-4 CPUs with 0-12 tasks each, in quarter tasks:
    /// small counts, where the floors of shares and deficits decide.
    fn loads() -> impl Strategy<Value = Vec<MachineLoad>> {
        proptest::collection::vec((0u64..48, 1u64..5), 1..7).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(machine, (quarters, cpus))| MachineLoad {
                    machine,
                    load: quarters * TASK / 4,
                    cpus,
                })
                .collect()
        })
    }

    /// The loads after `me` moved one task to each machine of `to`.
    fn apply(loads: &[MachineLoad], me: usize, to: &[usize]) -> Vec<MachineLoad> {
        loads
            .iter()
            .map(|l| {
                let mut l = *l;
                if l.machine == me {
                    l.load -= TASK * to.len() as u64;
                }
                l.load += TASK * to.iter().filter(|&&t| t == l.machine).count() as u64;
                l
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Moves go to other machines below their share by a whole task
        /// each, never more than asked, never more than the mover's own
        /// whole tasks above its share; and moving them never overshoots:
        /// no receiver ends more than a task above its share, and the
        /// mover does not end below its own by a task or more.
        #[test]
        fn moves_fill_deficits_without_overshooting(ls in loads(), me in 0usize..8, most in 0usize..6) {
            let to = plan_moves(me, &ls, most);
            prop_assert!(to.len() <= most);
            let Some(mine) = ls.iter().find(|l| l.machine == me) else {
                prop_assert!(to.is_empty());
                return Ok(());
            };
            let total: u64 = ls.iter().map(|l| l.load).sum();
            let cpus: u64 = ls.iter().map(|l| l.cpus).sum();
            let share = |c: u64| total * c / cpus;
            prop_assert!(to.len() as u64 <= mine.load.saturating_sub(share(mine.cpus)) / TASK);
            let after = apply(&ls, me, &to);
            for l in &after {
                let got = to.iter().filter(|&&t| t == l.machine).count() as u64;
                prop_assert!(l.machine != me || got == 0, "moved to itself");
                if got > 0 {
                    prop_assert!(l.load <= share(l.cpus), "machine {} pushed over its share: {:?} -> {:?}", l.machine, ls, to);
                }
            }
            let me_after = after.iter().find(|l| l.machine == me).map(|l| l.load).unwrap_or(0);
            prop_assert!(me_after + TASK > share(mine.cpus) || to.is_empty());
        }

        /// No ping-pong: once a machine's moves are applied, no machine
        /// that received one plans to send a process back in the next
        /// round (the same loads otherwise).
        #[test]
        fn no_task_comes_back(ls in loads(), me in 0usize..6) {
            let to = plan_moves(me, &ls, usize::MAX);
            let after = apply(&ls, me, &to);
            for &r in &to {
                prop_assert!(
                    !plan_moves(r, &after, usize::MAX).contains(&me),
                    "{r} sends back to {me}: {ls:?} then {after:?}"
                );
            }
        }
    }
}
