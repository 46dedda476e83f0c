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

/// Runs `s` for `dt` more; a wait that reaches `limit` failed ("stuck").
fn advance(s: &mut Sim, dt: u64, limit: u64) {
    let t = s.time + dt;
    s.run_until(t, false).unwrap();
    assert!(s.time < limit, "stuck");
}

/// Heals every cut link and runs `settle` more: the ring must be
/// quiescent then.
fn heal_and_settle(s: &mut Sim, settle: u64) {
    s.net.cut.clear();
    let end = s.time + settle;
    s.run_until(end, false).unwrap();
    s.check_quiescent().unwrap();
}

/// How many tori own `pid`.
fn owners(s: &Sim, pid: Pid) -> usize {
    s.tori
        .iter()
        .flatten()
        .filter(|t| t.table().owns(pid))
        .count()
}

/// The committed processes torus `t` owns.
fn committed_of(s: &Sim, t: usize) -> std::vec::Vec<Pid> {
    s.tori[t]
        .as_ref()
        .unwrap()
        .table()
        .iter()
        .filter(|(r, sl)| *sl == Slot::Owned && s.committed.contains(&r.pid))
        .map(|(r, _)| r.pid)
        .collect()
}

/// Runs the active phase, faults on, until the ring is healthy and torus
/// 0 (`P`) owns at least `n` committed processes.
fn until_p_owns_committed(s: &mut Sim, n: usize) {
    let active = s.sc.active;
    loop {
        let t = s.time + 100_000;
        s.run_until(t, true).unwrap();
        assert!(s.time < active, "P never held a committed process");
        if s.healthy() && committed_of(s, 0).len() >= n {
            return;
        }
    }
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

/// Seeds per fault kind in `cargo test` (the soak runs millions:
/// `cargo xtask soak`).
const N: u64 = 1000;

fn seeds(kind: FaultKind, base: u64) {
    for seed in base..base + N {
        let sc = Scenario::with_kind(kind, seed);
        if let Err(v) = Sim::run(sc) {
            panic!("{kind:?} seed {seed} violated {v:?} in {sc:?}");
        }
    }
}

#[test]
fn seeds_dropped_projections() {
    seeds(FaultKind::Drop, 1_000_000);
}

#[test]
fn seeds_duplicated_projections() {
    seeds(FaultKind::Duplicate, 2_000_000);
}

#[test]
fn seeds_delayed_and_reordered_projections() {
    seeds(FaultKind::Reorder, 3_000_000);
}

#[test]
fn seeds_corrupted_projections() {
    seeds(FaultKind::Corrupt, 4_000_000);
}

#[test]
fn seeds_crash_and_restart() {
    seeds(FaultKind::CrashRestart, 5_000_000);
}

#[test]
fn seeds_crash_during_migration() {
    seeds(FaultKind::CrashInMigration, 6_000_000);
}

#[test]
fn seeds_partition_heals() {
    seeds(FaultKind::Partition, 7_000_000);
}

#[test]
fn seeds_everything_at_once() {
    seeds(FaultKind::Mixed, 0);
}

/// The seeds that once failed (docs/braid.md §11), replayed as they were
/// then drawn.
#[test]
fn former_failures_pass() {
    for seed in [7, 19, 33, 71, 78, 103, 172, 206, 262, 263, 1385, 1421] {
        if let Err(v) = Sim::run(Scenario::from_seed(seed)) {
            panic!("mixed seed {seed} violated {v:?}");
        }
    }
    for seed in [5027, 5042, 5059, 5930] {
        let sc = Scenario::with_kind(FaultKind::CrashRestart, seed);
        if let Err(v) = Sim::run(sc) {
            panic!("crash/restart seed {seed} violated {v:?}");
        }
    }
    for seed in [
        16687, 39799, 45367, 50198, 87767, 663095, 677896, 687543, 977382, 1061999, 1675919,
        1076567,
    ] {
        if let Err(v) = Sim::run(Scenario::soak(seed)) {
            panic!("soak seed {seed} violated {v:?}");
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

/// A run brought to quiescence whose quiescent checks pass.
fn settled(seed: u64) -> Sim {
    let sc = only(seed, |s| s.burst = true);
    let mut s = Sim::new(sc);
    s.run_until(sc.active, true).unwrap();
    s.heal();
    s.run_until(sc.active + sc.settle, false).unwrap();
    s.check_quiescent().unwrap();
    s
}

#[test]
fn quiescent_view_check_can_fail() {
    let mut s = settled(6);
    s.tori[1].as_mut().unwrap().view.epoch += 1;
    assert_eq!(s.check_quiescent().unwrap_err().invariant, "quiescent-view");
}

#[test]
fn quiescent_inflight_check_can_fail() {
    let mut s = settled(7);
    let t = s.tori[0].as_mut().unwrap();
    t.out.inflight.insert(1, (1, 1));
    assert_eq!(
        s.check_quiescent().unwrap_err().invariant,
        "quiescent-inflight"
    );
}

#[test]
fn quiescent_mirror_check_can_fail() {
    let mut s = settled(8);
    // Torus 1 holds torus 0's mirror; make it disagree with the source.
    let rec = *s.tori[0].as_ref().unwrap().table().iter().next().unwrap().0;
    let m = &mut s.tori[1]
        .as_mut()
        .unwrap()
        .inbound
        .get_mut(&0)
        .unwrap()
        .mirror;
    m.set(
        crate::table::ProcRecord {
            progress: rec.progress + 1,
            ..rec
        },
        Slot::Owned,
    );
    assert_eq!(s.check_quiescent().unwrap_err().invariant, "digest");
}

#[test]
fn quiescent_exactly_once_check_can_fail() {
    let mut s = settled(9);
    // A committed process owned nowhere (lost) ...
    let pid = *s.committed.iter().next().unwrap();
    let mut removed = None;
    for t in s.tori.iter_mut().flatten() {
        if let Some(e) = t.table.remove(pid) {
            removed = Some((t.id(), e));
        }
    }
    let err = s.check_owned_once().unwrap_err();
    assert_eq!(err.invariant, "exactly-once", "{err:?}");
    // ... or owned twice.
    let (_, (rec, _)) = removed.unwrap();
    for t in s.tori.iter_mut().flatten() {
        t.table.set(rec, Slot::Owned);
    }
    let err = s.check_owned_once().unwrap_err();
    assert_eq!(err.invariant, "exactly-once", "{err:?}");
    // ... or back after its exit was committed.
    for t in s.tori.iter_mut().flatten().skip(1) {
        t.table.remove(pid);
    }
    s.check_owned_once().unwrap();
    s.committed.remove(&pid);
    s.exited.insert(pid);
    let err = s.check_owned_once().unwrap_err();
    assert_eq!(err.invariant, "exactly-once", "{err:?}");
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
        .filter(|&s| Sim::run(Scenario::soak(s)).is_err())
        .collect();
    std::println!(
        "{n} soak seeds: {} failing in {:?}: first {:?}",
        fails.len(),
        t.elapsed(),
        &fails[..fails.len().min(10)]
    );
}

/// The hand-over of a kept replica when the dead predecessor `P` (torus 0)
/// had migrated a process to its successor `R` (torus 1), and `R` had
/// installed it (docs/braid.md §8, hand-over). `P` crashes and, before `R`
/// resumes it, `R`'s projections to its successor `S` (torus 2) are lost
/// for a detection timeout: `S` fences `R`, whose new incarnation keeps its
/// replica of `P` (the process `InFlight(R)` there) and takes it over.
/// `upsert_at_s` chooses whether `R`'s `Upsert` of the process reached `S`
/// before the cut (then `S` resumed it with `R`; with `exit_at_s` it also
/// exits there before the take-over). With `late`, the cut lasts until `S`
/// has also removed the silent `P` by the orphan rule (§6, after `4·D`), so
/// `J`'s first `JOIN` reaches `S` only once `P` is gone (the two-fault gap
/// of §8). With `learned` (and `late`), `J` also learns `S`'s view,
/// without `P`, before its first `JOIN` reaches `S`, so that `P` is no
/// longer its predecessor. With `returned` (and `late`), a new incarnation
/// of `P` is admitted by `S` before `J`'s first `JOIN` reaches `S` (the
/// three-fault case of §8): `J` is admitted into a view with `P`'s id. The
/// process must end up owned exactly once (or exited), never lost nor
/// duplicated.
fn kept_replica_with_installed_migration(
    seed: u64,
    upsert_at_s: bool,
    exit_at_s: bool,
    late: bool,
    learned: bool,
    returned: bool,
) -> Sim {
    let mut sc = only(seed, |s| s.burst = true);
    sc.cfg.tori = 4;
    let mut s = Sim::new(sc);
    let pid = loop {
        let t = s.time + 1_000;
        s.run_until(t, true).unwrap();
        assert!(s.time < sc.active, "no migration 0→1 caught");
        let r = s.tori[1].as_ref().unwrap();
        let Some(pid) = r.inbound.get(&0).and_then(|m| {
            m.mirror
                .iter()
                .find(|(_, sl)| *sl == Slot::InFlight(1))
                .map(|(r, _)| r.pid)
        }) else {
            continue;
        };
        assert!(r.table().owns(pid), "installed when applied");
        let st = s.tori[2].as_ref().unwrap();
        if st.inbound.get(&1).is_some_and(|m| m.mirror.owns(pid)) == upsert_at_s {
            break pid;
        }
    };
    // P crashes; R's projections to S are lost from now on. No more
    // workload: the process must not exit by chance.
    s.tori[0] = None;
    s.down_since = Some((0, s.time));
    s.net.cut.push((1, 2));
    while s.tori[2].as_ref().unwrap().view().contains(1) {
        let t = s.time + 100_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active, "S never removed R");
    }
    while late && s.tori[2].as_ref().unwrap().view().contains(0) {
        let t = s.time + 100_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active, "S never removed P");
    }
    // J has not joined yet: whatever S did with P, it was no hand-over.
    assert!(!s.tori[2].as_ref().unwrap().view().contains(1));
    // S refuses the exit until its own successor has applied what it
    // resumed of R (a held process, §8): retry, as a host does.
    while exit_at_s && !s.tori[2].as_mut().unwrap().exit(pid) {
        let t = s.time + 100_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active, "S never let the process exit");
    }
    if exit_at_s {
        s.exiting.insert(pid);
    }
    if learned {
        // J learns S's view, without P (and without itself).
        notice_from_2_twice(&mut s);
        let j = s.tori[1].as_ref().unwrap();
        assert!(j.is_joining() && j.kept.as_ref().is_some_and(|k| k.0 == 0));
        assert!(!j.view().contains(0) && !j.view().contains(1));
    }
    if returned {
        // P restarts as a new incarnation and learns S's view (a view
        // notice), so it asks S to join; S admits it while J is still
        // cut off.
        s.incarnations[0] += 1;
        let inc = s.incarnations[0];
        s.tori[0] = Some(Torus::restarted(0, inc, s.cfg, s.time));
        s.down_since = None;
        notice_from_2(&mut s, 0);
        while !s.tori[2].as_ref().unwrap().replica_current(0) {
            let t = s.time + 100_000;
            s.run_until(t, false).unwrap();
            assert!(
                s.time < 2 * (sc.active + sc.settle),
                "S never admitted P's new incarnation"
            );
        }
        let j = s.tori[1].as_ref().unwrap();
        // R (fenced once its projections reach S, unless it learned of it
        // already) still holds the only replica of P's old incarnation.
        assert!(j.mirrors().any(|(t, m)| t == 0 && !m.is_empty()));
        assert!(s.tori[0].as_ref().unwrap().view().contains(0));
    }
    s.net.cut.clear();
    s.heal();
    let end = s.time.max(sc.active) + sc.settle;
    s.run_until(end, false).unwrap();
    s.check_quiescent().unwrap();
    let j = s.tori[1].as_ref().unwrap();
    assert!(j.incarnation() > 0 && j.view().contains(1) && j.view().contains(0) == returned);
    // The adopted sets served their purpose and were released.
    assert!(s.tori.iter().flatten().all(|t| t.adopted.is_empty()));
    if exit_at_s {
        // The exit is committed: the process must not come back.
        assert!(s.exited.contains(&pid) && owners(&s, pid) == 0);
    } else {
        assert!(s.committed.contains(&pid) && owners(&s, pid) == 1);
    }
    s
}

#[test]
fn kept_replica_resumes_migration_its_holder_installed() {
    // R's Upsert never reached S: the kept replica is the only copy.
    for seed in 1..=8 {
        kept_replica_with_installed_migration(seed, false, false, false, false, false);
    }
}

#[test]
fn kept_replica_does_not_duplicate_migration_the_fencer_resumed() {
    for seed in 1..=8 {
        // R's Upsert reached S, which resumed the process with R ...
        kept_replica_with_installed_migration(seed, true, false, false, false, false);
        // ... and the process exited at S before the take-over (S must
        // still know it adopted it when the re-sent migration arrives).
        let s = kept_replica_with_installed_migration(seed, true, true, false, false, false);
        assert!(s
            .tori
            .iter()
            .flatten()
            .any(|t| t.stats.duplicates_dropped > 0));
    }
}

/// The two-fault gap of docs/braid.md §8: as above, but `J` (`R`'s new
/// incarnation) stays cut off from `S` until `S` has removed the silent
/// `P` by the orphan rule. `P`'s processes are then held by nobody but
/// `J`'s kept replica, and `J`'s `JOIN` finds the ring already re-formed.
#[test]
fn kept_replica_taken_over_after_orphan_removal() {
    for seed in 1..=8 {
        let s = kept_replica_with_installed_migration(seed, false, false, true, false, false);
        assert!(s.tori[1].as_ref().unwrap().kept.is_none());
        // R's Upsert reached S: S must keep what it resumed of R through
        // the orphan removal, also when the process exited there.
        kept_replica_with_installed_migration(seed, true, false, true, false, false);
        let s = kept_replica_with_installed_migration(seed, true, true, true, false, false);
        assert!(s
            .tori
            .iter()
            .flatten()
            .any(|t| t.stats.duplicates_dropped > 0));
    }
}

/// The late hand-over when `J` learned a view without `P` before its
/// `JOIN` got through (docs/braid.md §8, late hand-over): `P` is no longer
/// its predecessor, so only the replica's torus id on the wire tells `S`
/// which replica `J` keeps. The same three cases as above.
#[test]
fn kept_replica_taken_over_after_orphan_removal_with_view_without_it() {
    for seed in 1..=8 {
        let s = kept_replica_with_installed_migration(seed, false, false, true, true, false);
        assert!(s.tori[1].as_ref().unwrap().kept.is_none());
        assert_eq!(s.tori[2].as_ref().unwrap().orphans, 0);
        kept_replica_with_installed_migration(seed, true, false, true, true, false);
        let s = kept_replica_with_installed_migration(seed, true, true, true, true, false);
        assert!(s
            .tori
            .iter()
            .flatten()
            .any(|t| t.stats.duplicates_dropped > 0));
    }
}

/// The three-fault case of docs/braid.md §8: as the late hand-over, and
/// before `J`'s first `JOIN` reaches `S`, `P` restarts and its new
/// incarnation is admitted by `S`. `J` is then admitted into a view with
/// `P`'s id; its kept replica still holds the old incarnation's processes,
/// which nobody else holds. The same three cases as above, with and
/// without `J` having learned `S`'s view first.
#[test]
fn kept_replica_taken_over_after_orphan_removal_and_return() {
    for seed in 1..=8 {
        for learned in [false, true] {
            let s = kept_replica_with_installed_migration(seed, false, false, true, learned, true);
            assert!(s.tori[1].as_ref().unwrap().kept.is_none());
            assert_eq!(s.tori[2].as_ref().unwrap().orphans, 0);
            kept_replica_with_installed_migration(seed, true, false, true, learned, true);
            let s = kept_replica_with_installed_migration(seed, true, true, true, learned, true);
            assert!(s
                .tori
                .iter()
                .flatten()
                .any(|t| t.stats.duplicates_dropped > 0));
        }
    }
}

/// A view notice of torus 2 (an ack with no heartbeat, as it sends its
/// predecessor) on its way to torus `to`.
fn notice_from_2(s: &mut Sim, to: TorusId) {
    let st = s.tori[2].as_ref().unwrap();
    let notice = crate::ack::Ack {
        from: 2,
        to,
        epoch: st.view().epoch,
        members: st.view().members,
        from_incarnation: st.incarnation(),
        to_incarnation: s.tori[usize::from(to)].as_ref().unwrap().incarnation(),
        ..Default::default()
    }
    .encode();
    let now = s.time;
    s.tori[usize::from(to)]
        .as_mut()
        .unwrap()
        .receive(now, &notice, &mut s.net);
}

/// A view notice of torus 2, delayed and duplicated on its way to torus
/// 1: the first copy fences torus 1 (its id is not in 2's view), the
/// second teaches its new incarnation that view before its first `JOIN`
/// reaches 2.
fn notice_from_2_twice(s: &mut Sim) {
    for _ in 0..2 {
        notice_from_2(s, 1);
    }
}

/// A stale kept replica is not taken over (docs/braid.md §8): `R`
/// (torus 1) is falsely suspected by `S` (torus 2) while `P` (torus 0)
/// is alive; `P` then replicates to `S`, a process `X` of `P` exits
/// (committed at `S`), `P` crashes and `S` resumes it from its current
/// replica. Meanwhile `R`, still cut off, kept its replica of `P`, which
/// holds `X`; its new incarnation `J` learns `S`'s view (without `P`)
/// before its `JOIN` gets through. `S` admits `J`; nothing may bring `X`
/// back.
fn stale_kept_replica(seed: u64) {
    let mut sc = only(seed, |s| s.burst = true);
    sc.cfg.tori = 4;
    let mut s = Sim::new(sc);
    until_p_owns_committed(&mut s, 2);
    // R's projections to S are lost from now on; no more workload.
    s.net.cut.push((1, 2));
    while s.tori[2].as_ref().unwrap().view().contains(1) {
        let t = s.time + 100_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active + sc.settle, "S never removed R");
    }
    // P replicates to S now.
    while !s.tori[2].as_ref().unwrap().replica_current(0) {
        let t = s.time + 100_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active + sc.settle, "P never switched to S");
    }
    let kept_of_p = |s: &Sim| {
        s.tori[1].as_ref().unwrap().inbound.get(&0).map(|m| {
            m.mirror
                .iter()
                .filter(|(_, sl)| *sl == Slot::Owned)
                .map(|(r, _)| r.pid)
                .collect::<std::vec::Vec<Pid>>()
        })
    };
    let in_r = kept_of_p(&s).expect("R holds P's replica");
    let x = loop {
        let now = s.time;
        let p = s.tori[0].as_mut().unwrap();
        if let Some(&x) = in_r.iter().find(|pid| p.table().owns(**pid)) {
            if p.exit(x) {
                break x;
            }
        }
        let t = now + 100_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active + sc.settle, "no process of P could exit");
    };
    s.exiting.insert(x);
    while !s.exited.contains(&x) {
        let t = s.time + 100_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active + sc.settle, "the exit never committed");
    }
    s.tori[0] = None;
    s.down_since = Some((0, s.time));
    while s.tori[2].as_ref().unwrap().view().contains(0) {
        let t = s.time + 100_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < 2 * (sc.active + sc.settle), "S never removed P");
    }
    assert!(
        kept_of_p(&s).is_some_and(|k| k.contains(&x)),
        "R's replica is stale"
    );
    notice_from_2_twice(&mut s);
    let j = s.tori[1].as_ref().unwrap();
    assert!(j.is_joining() && j.kept.as_ref().is_some_and(|k| k.0 == 0));
    assert!(!j.view().contains(0));
    heal_and_settle(&mut s, sc.settle);
    assert!(s.tori.iter().flatten().all(|t| !t.table().owns(x)));
}

#[test]
fn stale_kept_replica_not_taken_over_with_view_without_it() {
    for seed in 1..=8 {
        stale_kept_replica(seed);
    }
}

/// The resumption that its resumer's successor had not yet replicated
/// (docs/braid.md §8, "Resumption not yet replicated"; soak seed 663095):
/// `P` (torus 0) crashes and its successor `R` (torus 1) resumes it, but
/// `R`'s projections to `S` (torus 2) are lost from that instant, so `S`
/// never gets `R`'s `Upsert`s of `P`'s processes and fences `R` after a
/// detection timeout. `R`'s new incarnation must hand them over to `S`:
/// every committed process of `P` ends up owned exactly once.
fn resumption_unreplicated(seed: u64) -> Sim {
    let mut sc = only(seed, |s| s.burst = true);
    sc.cfg.tori = 4;
    let mut s = Sim::new(sc);
    // Until P holds committed processes of its own.
    until_p_owns_committed(&mut s, 1);
    let of_p = committed_of(&s, 0);
    s.tori[0] = None;
    s.down_since = Some((0, s.time));
    // R resumes P; its projections to S are cut from that step on (the
    // one carrying the Upserts too: records are dropped when due).
    while s.tori[1].as_ref().unwrap().view().contains(0) {
        let t = s.time + 1_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active + sc.settle, "R never resumed P");
    }
    s.net.cut.push((1, 2));
    let r = s.tori[1].as_ref().unwrap();
    assert!(of_p.iter().all(|p| r.table().owns(*p)), "R resumed P");
    assert!(r.resumed.is_some(), "R holds the resumed replica");
    assert!(of_p.iter().all(|p| r.held(*p)), "held");
    while s.tori[2].as_ref().unwrap().view().contains(1) {
        let t = s.time + 100_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active + sc.settle, "S never removed R");
    }
    let st = s.tori[2].as_ref().unwrap();
    assert!(
        of_p.iter().all(|p| !st.table().owns(*p)),
        "S never got them"
    );
    heal_and_settle(&mut s, sc.settle);
    let j = s.tori[1].as_ref().unwrap();
    assert!(j.incarnation() > 0 && j.kept.is_none() && j.resumed.is_none());
    for p in &of_p {
        assert_eq!(owners(&s, *p), 1, "pid {p:#x}");
    }
    assert!(s.tori.iter().flatten().all(|t| t.adopted.is_empty()));
    s
}

#[test]
fn resumption_handed_over_when_resumer_fenced_before_replicating() {
    for seed in 1..=8 {
        resumption_unreplicated(seed);
    }
}

/// Two joins admitted at the same epoch in different places of the ring
/// (docs/braid.md §6, "Views"; soak seed 1061999). Of six tori, 1 and 4
/// crash one after the other and are removed; both restart at once, and
/// 2 admits 1 while 5 admits 4, each at the same epoch. 5's view (the
/// greater members) wins, and it never had 1. Meanwhile 1 spawns a
/// process, committed in 2's mirror before 2 learns 5's view (2's links
/// from 0 and 3, which bring it, are cut until then). Dropped from the
/// view, 1 would be fenced and its process lost (nobody resumes it): 2
/// must admit it again on top of 5's view.
fn concurrent_joins(seed: u64) {
    let mut sc = quiet(seed);
    sc.cfg.tori = 6;
    let mut s = Sim::new(sc);
    let step = |s: &mut Sim, dt: u64| advance(s, dt, sc.active + sc.settle);
    step(&mut s, 2_000_000);
    for x in [1, 4] {
        s.tori[x] = None;
        while s
            .tori
            .iter()
            .flatten()
            .any(|t| t.view().contains(x as TorusId))
            || !s.world().one_ring()
        {
            step(&mut s, 100_000);
        }
    }
    let base = s.tori[0].as_ref().unwrap().view().epoch;
    for x in [1, 4] {
        s.incarnations[x] += 1;
        let inc = s.incarnations[x];
        s.tori[x] = Some(Torus::restarted(x as TorusId, inc, s.cfg, s.time));
    }
    s.net.cut.extend([(0, 2), (3, 2)]);
    while s.tori[1].as_ref().unwrap().is_joining() {
        step(&mut s, 10_000);
    }
    // Both admitted at the same epoch: 2 (of 1) and 5 (of 4).
    let v2 = s.tori[2].as_ref().unwrap().view();
    let v5 = s.tori[5].as_ref().unwrap().view();
    assert!(v2.epoch == base + 1 && v2.contains(1) && !v2.contains(4));
    assert!(v5.epoch == base + 1 && v5.contains(4) && !v5.contains(1));
    let pid = s.tori[1].as_mut().unwrap().spawn(s.time, 2, 1024);
    while !s.committed.contains(&pid) {
        step(&mut s, 10_000);
    }
    heal_and_settle(&mut s, sc.settle);
    let one = s.tori[1].as_ref().unwrap();
    assert!(one.view().contains(4) && one.incarnation() == 1, "1 fenced");
    assert_eq!(owners(&s, pid), 1);
}

#[test]
fn concurrent_joins_keep_the_losing_view_s_joiner() {
    for seed in 1..=8 {
        concurrent_joins(seed);
    }
}

/// A joiner's predecessor becomes its predecessor at its admission
/// (docs/braid.md §6, detector condition 2; soak seed 1675919). Of four
/// tori, `R` (torus 2) is fenced while its predecessor `P` (torus 1)
/// still sends to it: `R`'s new incarnation `J` keeps `R`'s view, with
/// `P` in front of it, and hears `P`'s projections until `P` learns that
/// `S` (torus 3) removed `R` and switches to `S`. `J`'s `JOIN`s are lost
/// (2→3 cut) for longer than the orphan timeout; then `S` admits it, and
/// `P` is `J`'s predecessor again, alive, with a lease from `S`'s acks.
/// `J` must not judge `P` by what arrived before its admission: `P` keeps
/// its incarnation and its processes. (`J`'s mirror of `P` is not synced
/// here, so the old code removed `P` by the orphan rule, fencing it:
/// `no-loss`; in the soak seed a new session of `P` to `J`'s id had
/// synced it, and `J` declared `P` failed and resumed it while `P` ran.)
fn joiner_judges_predecessor_from_admission(seed: u64) {
    let mut sc = quiet(seed);
    sc.cfg.tori = 4;
    let mut s = Sim::new(sc);
    let step = |s: &mut Sim, dt: u64| advance(s, dt, 4 * (sc.active + sc.settle));
    step(&mut s, 2_000_000);
    let pid = s.tori[1].as_mut().unwrap().spawn(s.time, 2, 1024);
    while !s.committed.contains(&pid) || !s.healthy() {
        step(&mut s, 100_000);
    }
    // A view notice without `R`, as `S` sends once it has removed it.
    let v = s.tori[3].as_ref().unwrap().view().without(2);
    let notice = crate::ack::Ack {
        from: 3,
        to: 2,
        epoch: v.epoch,
        members: v.members,
        ..Default::default()
    }
    .encode();
    s.net.cut.push((2, 3));
    let now = s.time;
    s.tori[2]
        .as_mut()
        .unwrap()
        .receive(now, &notice, &mut s.net);
    let j = s.tori[2].as_ref().unwrap();
    assert!(j.is_joining() && j.view().predecessor(2) == Some(1));
    while s.tori[3].as_ref().unwrap().view().contains(2)
        || !s.tori[3].as_ref().unwrap().replica_current(1)
    {
        step(&mut s, 100_000);
    }
    assert!(
        s.tori[2]
            .as_ref()
            .unwrap()
            .inbound
            .get(&1)
            .is_some_and(|i| i.heard()),
        "J heard P"
    );
    step(&mut s, 6 * sc.cfg.detect_timeout());
    heal_and_settle(&mut s, sc.settle);
    assert_eq!(s.tori[1].as_ref().unwrap().incarnation(), 0, "P was fenced");
    assert_eq!(owners(&s, pid), 1);
}

#[test]
fn joiner_does_not_judge_predecessor_by_arrivals_before_admission() {
    for seed in 1..=8 {
        joiner_judges_predecessor_from_admission(seed);
    }
}

/// A lease-less torus hands over its silent sole peer (docs/braid.md §8,
/// "Sole peer"; soak seed 1076567). Of three tori, `R`'s (torus 1)
/// projections to `S` (torus 2) are lost, and `P` (torus 0) crashes just
/// before `S` removes `R` on that false suspicion: `S`'s view is then
/// `{P, S}`, its only lease source the dead `P`, and `R`, which never
/// resumed `P` (it never held a lease after the cut), keeps the only
/// replica of `P`'s processes into its new incarnation `J`. `S` must hand
/// `P` over to `J` without a lease, and every committed process of `P`
/// must end up owned exactly once. Before the rule the ring never
/// re-formed (`J` stuck joining).
fn sole_peer(seed: u64) {
    let mut sc = only(seed, |s| s.burst = true);
    sc.cfg.tori = 3;
    let mut s = Sim::new(sc);
    until_p_owns_committed(&mut s, 1);
    s.net.cut.push((1, 2));
    while s.tori[2].as_ref().unwrap().view().contains(1) {
        let t = s.time + 10_000;
        s.run_until(t, false).unwrap();
        assert!(s.time < sc.active, "S never removed R");
    }
    // P crashes at once, before it learns S's view without R (a link
    // delay): R's replica of P is the only one.
    let of_p = committed_of(&s, 0);
    assert!(s.tori[0].as_ref().unwrap().view().contains(1));
    s.tori[0] = None;
    s.down_since = Some((0, s.time));
    assert!(!of_p.is_empty());
    let st = s.tori[2].as_ref().unwrap();
    assert_eq!(st.view().members, 0b101, "S's view is {{P, S}}");
    s.net.cut.clear();
    let end = s.time + sc.settle;
    s.run_until(end, false).unwrap();
    s.check_quiescent().unwrap();
    let j = s.tori[1].as_ref().unwrap();
    assert!(j.incarnation() > 0 && j.kept.is_none() && j.view().members == 0b110);
    for p in &of_p {
        let owners = s.tori.iter().flatten().filter(|t| t.table().owns(*p));
        assert_eq!(owners.count(), 1, "pid {p:#x}");
    }
}

#[test]
fn lease_less_torus_hands_over_its_silent_sole_peer() {
    for seed in 1..=8 {
        sole_peer(seed);
    }
}

/// The multi-fault case of the lease-less hand-over (docs/braid.md §8,
/// "Sole peer", "Not excluded"): the silent sole peer is alive. Of three
/// tori, `R`'s (torus 1) projections to `S` (torus 2) are lost and `S`
/// removes `R` (view `{P, S}`); from that step on `S` and `P` (torus 0)
/// hear nothing from each other. `P`, still leased by `R`'s acks, declares
/// `S` failed and resumes it (view `{P, R}`), but `R` learns nothing more
/// from `P` (0→1 cut once `P`'s last needed ack is out) and is fenced by
/// `S` (1→2 healed), keeping its replica of `P`; its new incarnation `J`
/// sends `REPLICA` `JOIN`s to `S`, which drops them until `P` has been
/// silent for `4·D`. The first one after that is sent, and then `P`
/// reaches `J` (0→1 healed; `S`'s acks to `J` are lost until then): `J`
/// hears `P` alive and learns its view before `S`'s admission arrives.
/// `S` hands `P` over to `J`; `J`, in `S`'s view without `P`, fences `P`.
/// Before the fix `J` dropped its kept replica on hearing `P` (taking it
/// for stale), and `P`'s committed processes, in `P`'s table and that
/// replica only, were lost (`no-loss`, seeds 1–8). Now `J` keeps it and
/// takes it over: every committed process of `P` and `S` ends up owned
/// exactly once.
fn sole_peer_alive(seed: u64) {
    let mut sc = only(seed, |s| s.burst = true);
    sc.cfg.tori = 3;
    let mut s = Sim::new(sc);
    let d = sc.cfg.detect_timeout();
    let limit = 3 * (sc.active + sc.settle);
    let step = |s: &mut Sim, dt: u64| advance(s, dt, limit);
    until_p_owns_committed(&mut s, 1);
    let pid_s = s.tori[2].as_mut().unwrap().spawn(s.time, 2, 1024);
    while !s.committed.contains(&pid_s) || !s.healthy() {
        step(&mut s, 100_000);
    }
    let of_p = committed_of(&s, 0);
    s.net.cut.push((1, 2));
    while s.tori[2].as_ref().unwrap().view().contains(1) {
        step(&mut s, 10_000);
    }
    s.net.cut.extend([(2, 0), (0, 2)]);
    assert_eq!(s.tori[2].as_ref().unwrap().view().members, 0b101);
    // Until `R` has acked a projection that `P` sent late enough for
    // `P`'s detector (condition 4).
    loop {
        let p = s.tori[0].as_ref().unwrap();
        let last = p.inbound.get(&2).map_or(0, |i| i.last_arrival);
        if p.lease_end.saturating_sub(sc.cfg.lease()) >= last + d - sc.cfg.i_max {
            break;
        }
        step(&mut s, 5_000);
    }
    s.net.cut.push((0, 1));
    s.net.cut.retain(|&c| c != (1, 2));
    while s.tori[0].as_ref().unwrap().view().contains(2)
        || s.tori[1].as_ref().unwrap().incarnation() == 0
    {
        step(&mut s, 5_000);
    }
    let j = s.tori[1].as_ref().unwrap();
    assert!(j.is_joining() && j.kept.as_ref().is_some_and(|k| k.0 == 0));
    assert_eq!(j.view().successor(1), Some(2), "J's JOINs go to S");
    assert_eq!(s.tori[0].as_ref().unwrap().view().members, 0b011);
    s.net.cut.push((2, 1));
    let st = s.tori[2].as_ref().unwrap();
    let lapse = st.last_from_succ.max(st.pred_since) + 4 * d;
    while s.time <= lapse {
        step(&mut s, 5_000);
    }
    // `J`'s next `JOIN` reaches `S` after the lapse.
    let hb = s.tori[1].as_ref().unwrap().hb;
    while s.tori[1].as_ref().unwrap().hb == hb {
        step(&mut s, 1_000);
    }
    s.net.cut.retain(|&c| c != (0, 1));
    while !s.tori[1]
        .as_ref()
        .unwrap()
        .inbound
        .get(&0)
        .is_some_and(|i| i.heard())
    {
        step(&mut s, 5_000);
    }
    assert_eq!(
        s.tori[2].as_ref().unwrap().view().members,
        0b110,
        "S handed P over"
    );
    assert!(s.tori[1].as_ref().unwrap().is_joining(), "J heard P first");
    heal_and_settle(&mut s, sc.settle);
    let j = s.tori[1].as_ref().unwrap();
    assert!(j.incarnation() > 0 && j.kept.is_none());
    assert!(
        s.tori[0].as_ref().unwrap().incarnation() > 0,
        "P was fenced"
    );
    for p in of_p.iter().chain([&pid_s]) {
        assert_eq!(owners(&s, *p), 1, "pid {p:#x}");
    }
}

#[test]
fn joiner_keeps_replica_of_live_peer_that_removed_its_fencer() {
    for seed in 1..=8 {
        sole_peer_alive(seed);
    }
}
