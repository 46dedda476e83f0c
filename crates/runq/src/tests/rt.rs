//! Real-time classes: strict priority over fair, FIFO order, RR rotation.

use super::*;

#[test]
fn fifo_preempts_fair_and_starves_it() {
    let mut s = Sim::new(&[normal(0), normal(-5)]);
    s.cpu.push(0);
    s.parked.push(Some(Entity::new(fifo(10))));
    s.run(50 * MS, MS);
    let fair_before = (s.cpu[0], s.cpu[1]);
    assert!(fair_before.0 > 0 && fair_before.1 > 0);

    let placed =
        s.rq.enqueue(2, s.parked[2].take().unwrap(), Enqueue::Wakeup);
    assert!(s.rq.should_preempt(&placed), "RT must preempt a fair task");
    s.resched();
    assert_eq!(s.cur, Some(2));
    assert_eq!(s.rq.current_params(), Some(fifo(10)));

    // It runs as long as it likes: the tick never preempts it for fair
    // tasks, and fair wakeups don't either.
    for _ in 0..2_000 {
        s.now += MS;
        s.cpu[2] += MS;
        assert!(!s.rq.tick(s.now), "tick preempted FIFO for fair tasks");
    }
    let fair = Entity::new(normal(-20));
    let placed = s.rq.enqueue(7, fair, Enqueue::New);
    assert!(!s.rq.should_preempt(&placed));
    assert!(!s.rq.tick(s.now + MS));
    assert_eq!(
        (s.cpu[0], s.cpu[1]),
        fair_before,
        "fair tasks ran under FIFO"
    );

    // Once it sleeps the fair tasks run again.
    let e = s.rq.take_current(s.now).unwrap();
    assert_eq!(e.sum_exec_ns(), 2_000 * MS + MS);
    assert!(matches!(s.rq.pick_next(s.now), Some(0 | 1 | 7)));
}

#[test]
fn higher_rt_preempts_and_preempted_keeps_head() {
    let mut rq: RunQueue<u32> = RunQueue::new();
    rq.enqueue(1, Entity::new(fifo(10)), Enqueue::New);
    rq.enqueue(2, Entity::new(fifo(10)), Enqueue::New);
    assert_eq!(rq.pick_next(0), Some(1));
    let hi = rq.enqueue(3, Entity::new(fifo(20)), Enqueue::Wakeup);
    let lo = Entity::new(fifo(5));
    assert!(rq.should_preempt(&hi));
    assert!(!rq.should_preempt(&lo));
    assert!(
        !rq.should_preempt(&Entity::new(fifo(10))),
        "equal prio doesn't preempt"
    );
    // The tick also notices the higher priority.
    assert!(rq.tick(MS));
    rq.put_prev(1, MS, false);
    assert_eq!(rq.pick_next(MS), Some(3));
    rq.take_current(2 * MS);
    // Task 1 was preempted, not yielding: still ahead of its peer 2.
    assert_eq!(rq.pick_next(2 * MS), Some(1));
    // Yield sends it behind 2.
    rq.put_prev(1, 3 * MS, true);
    assert_eq!(rq.pick_next(3 * MS), Some(2));
    assert_eq!(rq.rt_queued(), 1);
}

#[test]
fn rr_equal_prio_alternates_every_100ms() {
    let mut s = Sim::new(&[rr(50), rr(50), normal(-20)]);
    s.run(1_000 * MS, MS);
    assert_eq!(s.cpu[2], 0, "fair task ran under RR");
    let times: Vec<u64> = s.switches.iter().map(|s| s.0).collect();
    let expect: Vec<u64> = (0..=10).map(|i| i * RR_INTERVAL_NS).collect();
    assert_eq!(times, expect, "switch times {:?}", s.switches);
    for w in s.switches.windows(2) {
        assert_ne!(w[0].1, w[1].1);
        assert!(w[0].1 < 2 && w[1].1 < 2);
    }
    assert_eq!(s.cpu[0], 500 * MS);
    assert_eq!(s.cpu[1], 500 * MS);
}

#[test]
fn rr_alone_or_above_peers_is_not_rotated() {
    // A lone RR task (or one above lower RR tasks) keeps the CPU.
    let mut s = Sim::new(&[rr(60), rr(50), normal(0)]);
    s.run(1_000 * MS, MS);
    assert_eq!(s.cpu[0], 1_000 * MS);
    assert_eq!(s.switches.len(), 1);
}

#[test]
fn rr_preempted_mid_quantum_resumes_at_head_with_its_quantum() {
    let mut rq: RunQueue<u32> = RunQueue::new();
    rq.enqueue(1, Entity::new(rr(10)), Enqueue::New);
    rq.enqueue(2, Entity::new(rr(10)), Enqueue::New);
    assert_eq!(rq.pick_next(0), Some(1));
    assert!(!rq.tick(40 * MS));
    let hi = rq.enqueue(3, Entity::new(fifo(90)), Enqueue::Wakeup);
    assert!(rq.should_preempt(&hi));
    rq.put_prev(1, 40 * MS, false);
    assert_eq!(rq.pick_next(40 * MS), Some(3));
    rq.take_current(45 * MS);
    assert_eq!(
        rq.pick_next(45 * MS),
        Some(1),
        "preempted RR keeps the head"
    );
    assert_eq!(rq.current().unwrap().rr_left_ns(), 60 * MS);
    assert!(!rq.tick(104 * MS));
    assert!(
        rq.tick(105 * MS),
        "quantum used up at 100 ms of its own runtime"
    );
    rq.put_prev(1, 105 * MS, false);
    assert_eq!(rq.pick_next(105 * MS), Some(2));
}

/// If a wakeup preemption was missed (say, a lost IPI), the tick still
/// hands the CPU to a queued RT task.
#[test]
fn tick_preempts_fair_while_rt_queued() {
    let mut rq: RunQueue<u32> = RunQueue::new();
    rq.enqueue(1, Entity::new(normal(0)), Enqueue::New);
    assert_eq!(rq.pick_next(0), Some(1));
    assert!(!rq.tick(MS));
    rq.enqueue(2, Entity::new(fifo(1)), Enqueue::Wakeup);
    assert!(
        rq.tick(2 * MS),
        "fair task kept running over a queued RT task"
    );
    rq.put_prev(1, 2 * MS, false);
    assert_eq!(rq.pick_next(2 * MS), Some(2));
}
