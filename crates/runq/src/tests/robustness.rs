//! No input panics, and rebasing virtual time changes nothing observable.

use proptest::prelude::*;

use super::*;

fn any_policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Normal),
        Just(Policy::Batch),
        Just(Policy::Idle),
        Just(Policy::Fifo),
        Just(Policy::RoundRobin),
    ]
}

fn any_params() -> impl Strategy<Value = Params> {
    (any_policy(), any::<i8>(), any::<u8>()).prop_map(|(policy, nice, rt_prio)| Params {
        policy,
        nice,
        rt_prio,
    })
}

proptest! {
    /// Garbage params, clocks that jump to u64::MAX or go backwards, and
    /// migrations from absurd clocks: no panic (debug overflow checks are
    /// on), and the queue stays consistent.
    #[test]
    fn no_panic_on_any_input(
        params in prop::collection::vec(any_params(), 1..8),
        times in prop::collection::vec(prop_oneof![any::<u64>(), 0u64..10 * MS], 1..40),
        from in any::<u64>(),
    ) {
        let mut rq: RunQueue<usize> = RunQueue::new();
        for (i, p) in params.iter().enumerate() {
            let how = match i % 4 {
                0 => Enqueue::New,
                1 => Enqueue::Wakeup,
                2 => Enqueue::Requeue,
                _ => Enqueue::Migrated { from_vclock: from },
            };
            let mut e = Entity::new(*p);
            e.set_params(params[(i + 1) % params.len()]);
            let placed = rq.enqueue(i, e, how);
            let _ = rq.should_preempt(&placed);
        }
        let mut cur = rq.pick_next(0);
        for (k, &now) in times.iter().enumerate() {
            if rq.tick(now) || k % 5 == 0 {
                if let Some(t) = cur.take() {
                    rq.put_prev(t, now, k % 3 == 0);
                }
                cur = rq.pick_next(now);
            }
            if k % 7 == 0 {
                if let Some(t) = cur.take() {
                    let e = rq.take_current(now).unwrap();
                    rq.enqueue(t, e, Enqueue::Migrated { from_vclock: now });
                    cur = rq.pick_next(now);
                }
            }
            rq.check();
            let _ = rq.load();
        }
        let n = rq.drain().len() + usize::from(cur.is_some());
        prop_assert_eq!(n, params.len());
    }
}

/// Two identical runs, one rebasing its virtual time midway: identical
/// schedules.
#[test]
fn rebase_is_invisible() {
    let params = [normal(0), normal(3), normal(-2), normal(10)];
    let mut a = Sim::new(&params);
    let mut b = Sim::new(&params);
    a.run(300 * MS, MS);
    b.run(300 * MS, MS);
    // Half of V: far more than any task's lag, so nothing clamps at 0.
    let vc = b.rq.vclock();
    b.rq.force_rebase(vc / 2);
    b.rq.check();
    assert_eq!(b.rq.vclock(), vc - vc / 2);
    a.run(300 * MS, MS);
    b.run(300 * MS, MS);
    assert_eq!(a.switches, b.switches);
    assert_eq!(a.cpu, b.cpu);
}

/// A charge so large that vruntime saturates (a SCHED_IDLE task "running"
/// for 2^63 ns, 341x that in virtual time) triggers the automatic rebase;
/// the queue stays consistent and usable.
#[test]
fn saturating_charge_rebases() {
    let idle = Params {
        policy: Policy::Idle,
        ..normal(0)
    };
    let mut rq: RunQueue<u32> = RunQueue::new();
    rq.enqueue(1, Entity::new(idle), Enqueue::New);
    rq.enqueue(2, Entity::new(idle), Enqueue::New);
    assert_eq!(rq.pick_next(0), Some(1));
    let huge = 1u64 << 63;
    assert!(rq.tick(huge));
    rq.check();
    let v = rq.current().unwrap().vruntime();
    assert!(v < u64::MAX, "saturated vruntime was not shifted down");
    rq.put_prev(1, huge, false);
    assert_eq!(rq.pick_next(huge), Some(2), "the starved task runs next");
    assert!(!rq.tick(huge + MS));
    rq.check();
}

#[test]
fn misuse_degrades_without_losing_tasks() {
    let mut rq: RunQueue<u32> = RunQueue::new();
    // put_prev with nothing running: queued as a default task, not lost.
    rq.put_prev(5, 0, false);
    assert_eq!(rq.queued(), 1);
    assert_eq!(rq.pick_next(0), Some(5));
    // pick_next while running: the old running entity is retired.
    rq.enqueue(6, Entity::new(normal(0)), Enqueue::New);
    assert_eq!(rq.pick_next(MS), Some(6));
    assert_eq!(rq.nr_running(), 1);
    assert_eq!(rq.take_current(2 * MS).map(|e| e.sum_exec_ns()), Some(MS));
    assert_eq!(rq.pick_next(2 * MS), None);
    assert_eq!(rq.take_current(3 * MS).map(|e| e.sum_exec_ns()), None);
    assert!(!rq.tick(4 * MS));
}

/// `new` is const, so the kernel can keep one queue per CPU in a static.
#[test]
fn usable_in_a_static() {
    static QUEUES: [RunQueue<u32>; 2] = [RunQueue::new(), RunQueue::new()];
    assert_eq!(QUEUES[1].nr_running(), 0);
}
