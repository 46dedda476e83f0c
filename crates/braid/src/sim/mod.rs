//! Deterministic simulator: N tori on a faulty network in virtual time,
//! with workloads, crashes, restarts and partitions, checking the
//! invariants after every step. A run is a pure function of its seed.

mod check;
mod net;
mod rng;
#[cfg(test)]
mod tests;

pub use check::Violation;
#[cfg(test)]
pub(crate) use check::World;
pub use net::{LinkFaults, Msg, Net};
pub use rng::Rng;

use crate::event::Time;
use crate::replication::Note;
use crate::table::{Pid, TorusId};
use crate::torus::{Config, Torus};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

/// Heaviest process weight the workload creates (nice −10).
pub const MAX_WEIGHT: u64 = 9548;
const WEIGHTS: [u32; 4] = [335, 1024, 3121, 9548];

/// Torus-level faults a scenario may inject.
#[derive(Clone, Copy, Debug, Default)]
pub struct TorusFaults {
    /// Crash a torus (at most one down at a time).
    pub crash: bool,
    /// Prefer crashing a torus while a migration is in flight.
    pub crash_in_migration: bool,
    /// Restart crashed tori (they rejoin as new incarnations).
    pub restart: bool,
    /// Isolate a torus for a while, then heal.
    pub partition: bool,
}

/// One simulated run.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Seed: the run is a pure function of it.
    pub seed: u64,
    /// Protocol configuration (includes the number of tori).
    pub cfg: Config,
    /// Link faults while faults are active.
    pub link: LinkFaults,
    /// Torus faults while faults are active.
    pub torus: TorusFaults,
    /// Virtual time with faults and workload.
    pub active: Time,
    /// Virtual time afterwards without faults, before the quiescence check.
    pub settle: Time,
    /// Spawns per million ns of virtual time (per mille chance per 1000 ns slot).
    pub spawn_rate: u32,
    /// Spawn a burst on one torus mid-run (a load disturbance).
    pub burst: bool,
}

impl Scenario {
    /// A scenario drawn from `seed`, mixing every fault kind.
    pub fn from_seed(seed: u64) -> Self {
        let mut r = Rng::new(seed);
        let tori = 3 + r.below(4) as usize;
        let cfg = Config {
            tori,
            adaptive: r.chance(700),
            slice: 4_000_000,
            ..Config::default()
        };
        let link = LinkFaults {
            drop: [0, 20, 80, 200][r.below(4) as usize],
            dup: [0, 20, 100][r.below(3) as usize],
            corrupt: [0, 10, 50][r.below(3) as usize],
            jitter: [0, 50_000, 400_000][r.below(3) as usize],
        };
        let torus = TorusFaults {
            crash: r.chance(600),
            crash_in_migration: r.chance(500),
            restart: r.chance(600),
            partition: r.chance(300),
        };
        Scenario {
            seed,
            cfg,
            link,
            torus,
            active: 40 * cfg.i_max,
            settle: 60 * cfg.i_max,
            spawn_rate: 1 + r.below(4) as u32,
            burst: r.chance(500),
        }
    }
}

/// The fault kinds the soak and the tests exercise one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Dropped projections and acks (20 %).
    Drop,
    /// Duplicated records (20 %).
    Duplicate,
    /// Delayed and reordered records (jitter up to 0.8 intervals).
    Reorder,
    /// Corrupted records (15 %: bit flips and truncation).
    Corrupt,
    /// Torus crashes at any step, and restarts as new incarnations.
    CrashRestart,
    /// Crashes aimed at a migration in flight (giver or receiver).
    CrashInMigration,
    /// A torus cut off for a while, then healed.
    Partition,
    /// Everything at once, rates drawn from the seed.
    Mixed,
}

impl FaultKind {
    /// All kinds, in the order the soak cycles through them.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Drop,
        FaultKind::Duplicate,
        FaultKind::Reorder,
        FaultKind::Corrupt,
        FaultKind::CrashRestart,
        FaultKind::CrashInMigration,
        FaultKind::Partition,
        FaultKind::Mixed,
    ];
}

impl Scenario {
    /// A scenario drawn from `seed` with only the faults of `kind`.
    pub fn with_kind(kind: FaultKind, seed: u64) -> Self {
        let mut s = Scenario::from_seed(seed);
        if kind == FaultKind::Mixed {
            return s;
        }
        s.link = LinkFaults::default();
        s.torus = TorusFaults::default();
        match kind {
            FaultKind::Drop => s.link.drop = 200,
            FaultKind::Duplicate => s.link.dup = 200,
            FaultKind::Reorder => s.link.jitter = 800_000,
            FaultKind::Corrupt => s.link.corrupt = 150,
            FaultKind::CrashRestart => {
                s.torus.crash = true;
                s.torus.restart = true;
            }
            FaultKind::CrashInMigration => {
                s.torus.crash = true;
                s.torus.crash_in_migration = true;
                s.burst = true;
            }
            FaultKind::Partition => s.torus.partition = true,
            FaultKind::Mixed => {}
        }
        s
    }

    /// The soak's scenario for `seed`: the fault kinds in turn
    /// (`FaultKind::ALL[seed % 8]`), the rest drawn from the seed.
    pub fn soak(seed: u64) -> Self {
        Scenario::with_kind(FaultKind::ALL[(seed % 8) as usize], seed)
    }
}

/// Summary of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Simulation steps.
    pub steps: u64,
    /// Records sent.
    pub sent: u64,
    /// Corrupted records delivered (all rejected).
    pub corrupted: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Partitions injected.
    pub partitions: u64,
    /// Reconstructions performed.
    pub reconstructions: u64,
    /// Migrations committed.
    pub migrations: u64,
    /// Committed processes at the end.
    pub processes: u64,
}

/// The simulator state.
pub struct Sim {
    pub(crate) cfg: Config,
    sc: Scenario,
    pub(crate) time: Time,
    pub(crate) tori: Vec<Option<Torus>>,
    incarnations: Vec<u32>,
    pub(crate) net: Net,
    rng: Rng,
    pub(crate) committed: BTreeSet<Pid>,
    pub(crate) exiting: BTreeSet<Pid>,
    /// Processes whose exit is committed. A spawn's `Committed` note can
    /// reach the host after the process migrated, exited elsewhere and
    /// that exit committed (the spawner's acks were lost meanwhile); pids
    /// are never reused, so such a late note must not resurrect it.
    exited: BTreeSet<Pid>,
    down_since: Option<(TorusId, Time)>,
    partition_until: Option<Time>,
    burst_done: bool,
    report: Report,
}

impl Sim {
    /// Build the initial ring of a scenario.
    pub fn new(sc: Scenario) -> Self {
        let tori = (0..sc.cfg.tori)
            .map(|i| Some(Torus::new(i as TorusId, sc.cfg, 0)))
            .collect();
        Sim {
            cfg: sc.cfg,
            sc,
            time: 0,
            tori,
            incarnations: alloc::vec![0; sc.cfg.tori],
            net: Net::new(sc.link, 20_000, sc.seed),
            rng: Rng::new(sc.seed ^ 0xB0B),
            committed: BTreeSet::new(),
            exiting: BTreeSet::new(),
            exited: BTreeSet::new(),
            down_since: None,
            partition_until: None,
            burst_done: false,
            report: Report::default(),
        }
    }

    /// Run the whole scenario, checking invariants after every step.
    pub fn run(sc: Scenario) -> Result<Report, Violation> {
        let mut sim = Sim::new(sc);
        sim.run_until(sc.active, true)?;
        sim.heal();
        sim.run_until(sc.active + sc.settle, false)?;
        sim.check_quiescent()?;
        sim.report.processes = sim.committed.len() as u64;
        sim.report.sent = sim.net.sent;
        sim.report.migrations = sim
            .tori
            .iter()
            .flatten()
            .map(|t| t.stats.migrations_out)
            .sum();
        Ok(sim.report)
    }

    /// Advance to `end`; with `faults`, inject workload and faults.
    pub fn run_until(&mut self, end: Time, faults: bool) -> Result<(), Violation> {
        self.net.faults = if faults {
            self.sc.link
        } else {
            LinkFaults::default()
        };
        let slot = 50_000;
        let mut next_slot = self.time - self.time % slot + slot;
        loop {
            let t_torus = self
                .tori
                .iter()
                .flatten()
                .filter_map(|t| t.next_time())
                .min();
            let t_net = self.net.next_time();
            let next = [t_torus, t_net, Some(next_slot)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end);
            if next > end {
                self.time = end;
                return Ok(());
            }
            self.time = next;
            self.net.now = next;
            self.report.steps += 1;
            if next == next_slot {
                next_slot += slot;
                if faults {
                    self.inject(next);
                }
                continue;
            }
            if t_net == Some(next) {
                self.deliver()?;
            } else {
                self.step_torus(next);
            }
            self.collect_notes();
            self.check_exactly_once()?;
            self.check_no_loss()?;
            self.check_digests()?;
        }
    }

    fn step_torus(&mut self, now: Time) {
        let net = &mut self.net;
        if let Some(t) = self
            .tori
            .iter_mut()
            .flatten()
            .find(|t| t.next_time() == Some(now))
        {
            t.step(net, &mut |_, _| {});
        }
    }

    fn deliver(&mut self) -> Result<(), Violation> {
        let Some((at, m)) = self.net.pop() else {
            return Ok(());
        };
        if self.net.isolated.is_some_and(|t| t == m.to || t == m.from)
            || self.net.cut.contains(&(m.from, m.to))
        {
            return Ok(());
        }
        let Some(t) = self
            .tori
            .get_mut(usize::from(m.to))
            .and_then(|t| t.as_mut())
        else {
            return Ok(());
        };
        let before = t.stats.rejected_decode;
        t.receive(at, &m.bytes, &mut self.net);
        if m.corrupted {
            self.report.corrupted += 1;
            let t = self.tori[usize::from(m.to)].as_ref();
            if t.is_some_and(|t| t.stats.rejected_decode == before) {
                return Err(Violation {
                    invariant: "corruption-detected",
                    time: at,
                    detail: alloc::format!("corrupted record {}→{} was accepted", m.from, m.to),
                });
            }
        }
        Ok(())
    }

    fn collect_notes(&mut self) {
        for t in self.tori.iter_mut().flatten() {
            for n in t.drain_notes() {
                match n {
                    Note::Committed(p) => {
                        if !self.exited.contains(&p) {
                            self.committed.insert(p);
                        }
                    }
                    Note::ExitCommitted(p) => {
                        self.committed.remove(&p);
                        self.exiting.remove(&p);
                        self.exited.insert(p);
                    }
                    Note::Reconstructed { .. } => self.report.reconstructions += 1,
                    Note::Fenced | Note::Joined => {}
                }
            }
        }
    }

    /// True when every live torus is a member with the same view, its
    /// successor holds a synced mirror, and nothing is down or cut off.
    pub fn healthy(&self) -> bool {
        self.down_since.is_none() && self.net.isolated.is_none() && self.world().one_ring()
    }

    fn inject(&mut self, now: Time) {
        let n = self.tori.len();
        // Workload: spawns and exits on random live members.
        if self.rng.chance(self.sc.spawn_rate * 10) {
            let i = self.rng.below(n as u64) as usize;
            let class = self.rng.below(4) as u8;
            let w = WEIGHTS[self.rng.below(4) as usize];
            if let Some(t) = self.tori[i].as_mut().filter(|t| !t.is_joining()) {
                t.spawn(now, class, w);
            }
        }
        if self.rng.chance(self.sc.spawn_rate * 5) {
            let i = self.rng.below(n as u64) as usize;
            if let Some(t) = self.tori[i].as_mut() {
                let k = t.table().len();
                if k > 0 {
                    let pid = t
                        .table()
                        .iter()
                        .nth(self.rng.below(k as u64) as usize)
                        .map(|(r, _)| r.pid);
                    if let Some(pid) = pid.filter(|p| t.exit(*p)) {
                        self.exiting.insert(pid);
                    }
                }
            }
        }
        if self.sc.burst && !self.burst_done && now >= self.sc.active / 3 {
            self.burst_done = true;
            if let Some(t) = self.tori[0].as_mut().filter(|t| !t.is_joining()) {
                for _ in 0..30 {
                    t.spawn(now, 2, 3121);
                }
            }
        }
        self.inject_torus_faults(now);
    }

    fn inject_torus_faults(&mut self, now: Time) {
        let f = self.sc.torus;
        let n = self.tori.len() as u64;
        if let Some(until) = self.partition_until {
            if now >= until {
                self.net.isolated = None;
                self.partition_until = None;
            }
            return;
        }
        if let Some((id, since)) = self.down_since {
            let gone = self.tori.iter().flatten().all(|t| !t.view().contains(id));
            if f.restart && gone && now > since + 10 * self.cfg.i_max && self.rng.chance(200) {
                self.incarnations[usize::from(id)] += 1;
                let inc = self.incarnations[usize::from(id)];
                self.tori[usize::from(id)] = Some(Torus::restarted(id, inc, self.cfg, now));
                self.down_since = None;
            } else if !f.restart && gone {
                // Stays down; further crashes would exceed one failure.
            }
            return;
        }
        if !self.healthy() || self.tori.iter().flatten().count() < 3 {
            return;
        }
        if f.crash && self.rng.chance(60) {
            let migrating = self
                .tori
                .iter()
                .flatten()
                .find(|t| t.inflight() > 0)
                .map(|t| t.id());
            let victim = match migrating {
                Some(g) if f.crash_in_migration => {
                    if self.rng.chance(500) {
                        g
                    } else {
                        self.tori[usize::from(g)]
                            .as_ref()
                            .and_then(|t| t.view().successor(g))
                            .unwrap_or(g)
                    }
                }
                _ => self.rng.below(n) as TorusId,
            };
            if f.crash_in_migration && migrating.is_none() && self.rng.chance(700) {
                return; // Wait for a migration to crash into.
            }
            if let Some(t) = self.tori[usize::from(victim)].take() {
                // It may have fenced itself (new incarnations) meanwhile.
                let inc = &mut self.incarnations[usize::from(victim)];
                *inc = (*inc).max(t.incarnation());
                self.down_since = Some((victim, now));
                self.report.crashes += 1;
            }
        } else if f.partition && self.rng.chance(30) {
            let victim = self.rng.below(n) as TorusId;
            let long = self.rng.chance(500);
            let len = if long {
                20 * self.cfg.i_max
            } else {
                self.cfg.i_max * (1 + self.rng.below(2))
            };
            self.net.isolated = Some(victim);
            self.partition_until = Some(now + len);
            self.report.partitions += 1;
        }
    }

    /// End all faults (partitions heal; crashed tori stay down unless the
    /// scenario restarts them).
    pub fn heal(&mut self) {
        self.net.isolated = None;
        self.partition_until = None;
        if self.sc.torus.restart {
            if let Some((id, _)) = self.down_since.take() {
                self.incarnations[usize::from(id)] += 1;
                let inc = self.incarnations[usize::from(id)];
                self.tori[usize::from(id)] = Some(Torus::restarted(id, inc, self.cfg, self.time));
            }
        }
    }
}

/// Run `seeds` scenarios ([`Scenario::soak`], every fault kind in turn)
/// starting at seed `start`; `Err` is the first failing seed (replay it
/// with `Sim::run(Scenario::soak(seed))`).
pub fn soak(seeds: u64, start: u64) -> Result<(), u64> {
    for seed in start..start.saturating_add(seeds) {
        if Sim::run(Scenario::soak(seed)).is_err() {
            return Err(seed);
        }
    }
    Ok(())
}
