//! CPU shares follow the nice weights.

use proptest::prelude::*;

use super::*;

fn assert_ratio(cpu_a: u64, cpu_b: u64, want: f64, tol: f64, what: &str) {
    let got = cpu_a as f64 / cpu_b.max(1) as f64;
    assert!(
        (got / want - 1.0).abs() <= tol,
        "{what}: CPU ratio {got:.4}, weights say {want:.4} ({cpu_a} vs {cpu_b} ns)"
    );
}

#[test]
fn nice0_vs_nice5_for_5s_at_1ms_tick() {
    let mut s = Sim::new(&[normal(0), normal(5)]);
    s.run(5_000 * MS, MS);
    assert_eq!(s.cpu[0] + s.cpu[1], 5_000 * MS, "CPU never idles");
    assert_ratio(s.cpu[0], s.cpu[1], 1024.0 / 335.0, 0.05, "nice 0 vs 5");
    // The queue's own accounting agrees with the driver's.
    let cur = s.cur.unwrap();
    let e = s.rq.take_current(s.now).unwrap();
    assert_eq!(e.sum_exec_ns(), s.cpu[cur]);
    let (other, oe) = s.rq.drain().pop().unwrap();
    assert_eq!(oe.sum_exec_ns(), s.cpu[other]);
}

#[test]
fn equal_nice_share_equally_with_short_turns() {
    let mut s = Sim::new(&[normal(0), normal(0), normal(0)]);
    s.run(3_000 * MS, MS);
    for t in 0..3 {
        let diff = s.cpu[t].abs_diff(1_000 * MS);
        assert!(diff <= 2 * BASE_SLICE_NS, "task {t}: {:?}", s.cpu);
        // Nobody waits longer than the others' slices (latency bound).
        assert!(s.longest_run(t, 0) <= BASE_SLICE_NS + MS);
    }
}

/// EEVDF's point over plain virtual-deadline order (WFQ): only eligible
/// tasks run, so no task gets far ahead of or behind its share at any
/// moment, not just on average. One heavy task among ten light ones would
/// otherwise run many requests back to back.
#[test]
fn lag_stays_within_a_slice_at_all_times() {
    let mut params = vec![normal(-10)];
    params.extend([normal(0); 10]);
    let weights: Vec<f64> = params.iter().map(|p| f64::from(p.weight())).collect();
    let total: f64 = weights.iter().sum();
    let mut s = Sim::new(&params);
    let mut worst: f64 = 0.0;
    for _ in 0..2_000 {
        s.step(MS);
        for (i, w) in weights.iter().enumerate() {
            let owed = w / total * s.now as f64 - s.cpu[i] as f64;
            worst = worst.max(owed.abs());
        }
    }
    // Real-time lag bound: about one request plus the tick granularity.
    let bound = (BASE_SLICE_NS + 2 * MS) as f64;
    assert!(worst <= bound, "lag reached {:.2} ms", worst / MS as f64);
}

#[test]
fn idle_policy_gets_weight_3() {
    let idle = Params {
        policy: Policy::Idle,
        nice: -20, // ignored for SCHED_IDLE
        rt_prio: 0,
    };
    let mut s = Sim::new(&[normal(0), idle]);
    s.run_tickless(200_000 * MS);
    assert_ratio(
        s.cpu[0],
        s.cpu[1],
        1024.0 / 3.0,
        0.10,
        "nice 0 vs SCHED_IDLE",
    );
}

/// Runs the tasks long enough that the lightest one gets ~40 requests,
/// then compares every pair's CPU ratio with the weight ratio.
fn check_shares(nices: &[i8]) {
    let params: Vec<Params> = nices.iter().map(|&n| normal(n)).collect();
    let weights: Vec<f64> = params.iter().map(|p| f64::from(p.weight())).collect();
    let total: f64 = weights.iter().sum();
    let lightest = weights.iter().cloned().fold(f64::MAX, f64::min);
    let dur = (40.0 * BASE_SLICE_NS as f64 * total / lightest) as u64;
    let mut s = Sim::new(&params);
    s.run_tickless(dur);
    for i in 0..nices.len() {
        for j in 0..nices.len() {
            if i != j {
                let what = alloc::format!("nice {:?}, tasks {i} vs {j}", nices);
                assert_ratio(s.cpu[i], s.cpu[j], weights[i] / weights[j], 0.10, &what);
            }
        }
    }
}

#[test]
fn extreme_nice_pair() {
    check_shares(&[-20, 19]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn shares_follow_weights(nices in prop::collection::vec(-20i8..=19, 2..=3)) {
        check_shares(&nices);
    }
}
