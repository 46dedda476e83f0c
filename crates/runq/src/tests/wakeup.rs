//! Placement of waking and migrated tasks: bounded credit, kept debt.

use super::*;

/// B sleeps for a second while A runs alone; on waking it must not get the
/// second back (its raw vruntime is a full second behind A's).
#[test]
fn long_sleeper_gets_no_unbounded_credit() {
    let mut s = Sim::new(&[normal(0), normal(0)]);
    s.run(20 * MS, MS);
    while s.cur != Some(1) {
        s.step(MS);
    }
    s.sleep_current();
    s.run(1_000 * MS, MS);
    assert!(s.rq.vclock() > s.parked[1].unwrap().vruntime() + 900 * MS);

    let woke = s.now;
    let before = s.cpu[1];
    s.wake(1, Enqueue::Wakeup);
    s.run(200 * MS, MS);
    let got = s.cpu[1] - before;
    assert!(
        s.longest_run(1, woke) <= 2 * BASE_SLICE_NS + MS,
        "woken task monopolised the CPU for {} ms",
        s.longest_run(1, woke) / MS
    );
    assert!(
        got <= 100 * MS + 2 * BASE_SLICE_NS,
        "woken task got {got} of 200 ms"
    );
    assert!(
        got >= 100 * MS - 2 * BASE_SLICE_NS,
        "woken task got {got} of 200 ms"
    );
}

/// Even an absurd credit (a migration from a queue whose clock is far
/// ahead) is clamped to two slices.
#[test]
fn huge_positive_lag_is_clamped() {
    let mut s = Sim::new(&[normal(0), normal(0)]);
    s.run(100 * MS, MS);
    let (t, e) = s.rq.steal(|_| true).unwrap();
    s.parked[t] = Some(e);
    s.run(100 * MS, MS);
    let woke = s.now;
    let before = s.cpu[t];
    let placed = s.wake(
        t,
        Enqueue::Migrated {
            from_vclock: u64::MAX,
        },
    );
    assert!(placed.vruntime() + 2 * BASE_SLICE_NS >= s.rq.vclock() - BASE_SLICE_NS);
    s.run(200 * MS, MS);
    assert!(s.longest_run(t, woke) <= 3 * BASE_SLICE_NS + MS);
    assert!(s.cpu[t] - before <= 100 * MS + 3 * BASE_SLICE_NS);
}

/// A task that just overran its share and sleeps for an instant comes back
/// with the same debt: not eligible, no wakeup preemption.
#[test]
fn short_sleep_keeps_negative_lag() {
    let mut rq: RunQueue<u32> = RunQueue::new();
    rq.enqueue(1, Entity::new(normal(0)), Enqueue::New);
    rq.enqueue(2, Entity::new(normal(0)), Enqueue::New);
    let first = rq.pick_next(0).unwrap();
    let v_before = rq.current().unwrap().vruntime();
    let e = rq.take_current(BASE_SLICE_NS).unwrap();
    assert!(e.vlag() < 0, "ran a full slice alone: owes CPU");
    let other = rq.pick_next(BASE_SLICE_NS).unwrap();
    assert_ne!(first, other);
    let placed = rq.enqueue(first, e, Enqueue::Wakeup);
    assert!(placed.vruntime().abs_diff(v_before + BASE_SLICE_NS) <= 2);
    assert!(!rq.should_preempt(&placed), "a debtor must not preempt");
    // Its peer gets the next full slice.
    for ms in 1..3 {
        assert!(!rq.tick(BASE_SLICE_NS + ms * MS));
    }
    assert!(rq.tick(2 * BASE_SLICE_NS));
}

/// One nice-0 task has just started a request; which newcomers preempt it?
fn running_one_then_enqueue(p: Params) -> bool {
    let mut rq: RunQueue<u32> = RunQueue::new();
    rq.enqueue(1, Entity::new(normal(0)), Enqueue::New);
    assert_eq!(rq.pick_next(0), Some(1));
    let placed = rq.enqueue(2, Entity::new(p), Enqueue::New);
    rq.should_preempt(&placed)
}

#[test]
fn wakeup_preemption_rules() {
    // nice -20: placed at V (eligible) with a tiny virtual slice, so its
    // deadline is earlier than the running request's.
    assert!(running_one_then_enqueue(normal(-20)));
    // Same lag, same deadline as the running one: not earlier.
    assert!(!running_one_then_enqueue(normal(0)));
    // Lighter task: later deadline.
    assert!(!running_one_then_enqueue(normal(5)));
    // Batch and Idle never wakeup-preempt, whatever their deadline.
    let batch = Params {
        policy: Policy::Batch,
        ..normal(-20)
    };
    assert!(!running_one_then_enqueue(batch));
    let idle = Params {
        policy: Policy::Idle,
        ..normal(-20)
    };
    assert!(!running_one_then_enqueue(idle));
    assert!(running_one_then_enqueue(fifo(1)));
    assert!(running_one_then_enqueue(rr(1)));
}

/// An earlier deadline is not enough: the newcomer must be eligible.
#[test]
fn ineligible_waker_does_not_preempt() {
    let mut rq: RunQueue<u32> = RunQueue::new();
    rq.enqueue(1, Entity::new(normal(0)), Enqueue::New);
    rq.enqueue(2, Entity::new(normal(-20)), Enqueue::New);
    // Task 2 (heavy, earliest deadline) runs a while, builds up debt.
    assert_eq!(rq.pick_next(0), Some(2));
    assert!(!rq.tick(MS));
    let e = rq.take_current(MS).unwrap();
    assert!(e.vlag() < 0);
    assert_eq!(rq.pick_next(MS), Some(1));
    let placed = rq.enqueue(2, e, Enqueue::Wakeup);
    assert!(placed.vruntime() > rq.vclock(), "not eligible");
    assert!(placed.deadline() < rq.current().unwrap().deadline());
    assert!(!rq.should_preempt(&placed));
}

#[test]
fn normal_preempts_sched_idle() {
    let mut rq: RunQueue<u32> = RunQueue::new();
    let idle = Params {
        policy: Policy::Idle,
        ..normal(0)
    };
    rq.enqueue(1, Entity::new(idle), Enqueue::New);
    assert_eq!(rq.pick_next(0), Some(1));
    rq.tick(10 * MS);
    let e = rq.enqueue(2, Entity::new(normal(19)), Enqueue::New);
    assert!(rq.should_preempt(&e));
}

#[test]
fn requeue_is_exact() {
    let mut rq: RunQueue<u32> = RunQueue::new();
    for i in 0..4 {
        rq.enqueue(i, Entity::new(normal(i as i8 * 3)), Enqueue::New);
    }
    let t = rq.pick_next(0).unwrap();
    rq.tick(MS);
    let (v, d, vc) = {
        let c = rq.current().unwrap();
        (c.vruntime(), c.deadline(), rq.vclock())
    };
    let e = rq.take_current(MS).unwrap();
    let placed = rq.enqueue(t, e, Enqueue::Requeue);
    assert!(
        placed.vruntime().abs_diff(v) <= 2,
        "{} vs {v}",
        placed.vruntime()
    );
    assert!(placed.deadline().abs_diff(d) <= 2);
    assert!(rq.vclock().abs_diff(vc) <= 2);
}

#[test]
fn migration_renormalises_to_the_destination_clock() {
    let mut a = Sim::new(&[normal(0), normal(0)]);
    a.run(500 * MS, MS);
    let mut b = Sim::new(&[normal(0)]);
    b.run(10 * MS, MS);
    let (t, e) = a.rq.steal(|_| true).unwrap();
    let offset = i128::from(e.vruntime()) - i128::from(a.rq.vclock());
    let placed = b.rq.enqueue(
        t + 10,
        e,
        Enqueue::Migrated {
            from_vclock: a.rq.vclock(),
        },
    );
    let new_offset = i128::from(placed.vruntime()) - i128::from(b.rq.vclock());
    // V moved towards it by the join; within one slice of the old offset.
    assert!(
        (offset - new_offset).abs() <= BASE_SLICE_NS as i128,
        "{offset} vs {new_offset}"
    );
    assert!(placed.vruntime() < 100 * MS, "placed by b's clock, not a's");
}
