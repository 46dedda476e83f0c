//! Distributed mode: the braid between machines.
//!
//! Each machine of a cluster (`cluster.node=K cluster.peers=A0,A1,…` on
//! the kernel command line) is one member of a ring of machines that runs
//! the `braid` crate's own protocol — the same `braid::Torus` the
//! simulator soak-tests: projections to the successor every braid
//! interval, acks back with leases, views with epochs, joins of restarted
//! incarnations, fencing, and failure detection by the successor after
//! `K·I_max` of silence. Its records travel in UDP datagrams (`wire`).
//! Within a machine the CPU tori keep their shared-memory braid
//! (`proc::braid`); the machine ring's table is empty: what it gives is
//! membership, leases and failure detection. Processes move between
//! machines on connections of their own (`migrate`), by hand or by the
//! load balancer between machines (`balance`), and go on at home when the
//! machine they ran on leaves the view.
//!
//! Besides the protocol's records, each machine sends every member a
//! roster (`braid::roster`: its CPU tori, their load) every
//! [`ROSTER_NS`], so /proc/braid lists every torus of every machine in
//! the view. The machine ring is driven from CPU 0's event boundaries
//! (where the NIC is polled): when a datagram has arrived or the torus's
//! next event (its braid tick) is due.

mod balance;
pub mod migrate;
mod wire;

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use braid::ack::ACK_LEN;
use braid::projection::PROJ_LEN;
use braid::roster::{Roster, TorusInfo, ROSTER_LEN, ROSTER_TORI, T_OUT, T_UP};
use braid::{Ack, Projection, TorusId, View};
use core::sync::atomic::{AtomicU64, Ordering};
use smoltcp::wire::Ipv4Address;
use spin::Mutex;

use wire::Wire;

/// Shortest and longest braid interval between machines. The crate
/// declares a predecessor failed after `K_MISS · I_MAX` of silence and
/// lends leases of `(K_MISS − 1) · I_MAX`.
pub const I_MIN_NS: u64 = 25_000_000;
pub const I_MAX_NS: u64 = 100_000_000;
pub const K_MISS: u64 = 4;
/// Most extra silence allowed a predecessor seen late lately, or when
/// this machine's own braid steps ran late (an overloaded host: under
/// TCG on a busy 2-core host a live machine went 420 ms unheard and was
/// fenced). Detection stays under 1 s: `K_MISS·I_MAX` + this.
pub const DETECT_GRACE_MAX_NS: u64 = 400_000_000;
/// How often a machine sends its roster to the others.
pub const ROSTER_NS: u64 = 200_000_000;
/// Projection round trips kept for the percentiles.
const RTT_SAMPLES: usize = 512;

/// A machine that left the view, as this machine saw it.
struct Departure {
    machine: TorusId,
    epoch: u32,
    /// When it left our view, and how long it had been silent to us then.
    at: u64,
    silent: u64,
    /// We declared it failed ourselves (we were its successor).
    by_us: bool,
}

struct Cluster {
    me: TorusId,
    peers: Vec<Ipv4Address>,
    torus: braid::Torus,
    wire: Wire,
    view: View,
    /// Latest roster of each machine, and when it came.
    rosters: Vec<Option<(Roster, u64)>>,
    /// When each machine was last heard (a record that decoded).
    heard: Vec<u64>,
    roster_seq: u64,
    next_roster: u64,
    /// Projections sent and not yet acked: (to, heartbeat, time).
    inflight: VecDeque<(TorusId, u64, u64)>,
    rtts: VecDeque<u64>,
    rejected: u64,
    departures: Vec<Departure>,
    joins: u64,
    fenced: u64,
}

static CLUSTER: Mutex<Option<Cluster>> = Mutex::new(None);
/// When the machine torus's next event is due (ns; u64::MAX: not running).
static NEXT_DUE: AtomicU64 = AtomicU64::new(u64::MAX);

/// The records a `braid::Torus` sends during one step, sent afterwards
/// (outside the torus's borrow).
struct Outbox(Vec<(usize, Vec<u8>)>);

impl braid::Transport for Outbox {
    fn send(&mut self, _from: TorusId, to: TorusId, bytes: &[u8]) {
        self.0.push((usize::from(to), bytes.to_vec()));
    }
}

fn parse_peers(s: &str) -> Option<Vec<Ipv4Address>> {
    let v: Option<Vec<Ipv4Address>> = s.split(',').map(|a| a.parse().ok()).collect();
    v.filter(|v| (1..=braid::MAX_TORI).contains(&v.len()))
}

/// Joins the machine ring if the command line names one. After
/// `net::init` (the stack must exist).
pub fn init(cmdline: &str) {
    let (Some(node), Some(peers)) = (
        crate::cmdline::get(cmdline, "cluster.node"),
        crate::cmdline::get(cmdline, "cluster.peers"),
    ) else {
        return;
    };
    let (Ok(me), Some(peers)) = (node.parse::<usize>(), parse_peers(peers)) else {
        crate::klog!("cluster: cluster.node={node} cluster.peers={peers} not understood");
        return;
    };
    if me >= peers.len() {
        crate::klog!("cluster: node {me} is not among {} peers", peers.len());
        return;
    }
    if !crate::net::stack::present() {
        crate::klog!("cluster: no network device; not joining");
        return;
    }
    // The build this kernel is, unless the command line names another
    // (two builds known to agree on the wire; the tests' other build).
    let build = crate::cmdline::get(cmdline, "cluster.build")
        .unwrap_or(option_env!("RSE_BUILD").unwrap_or("unknown"));
    let Some(wire) = Wire::open(me, peers.clone(), wire::build_tag(build)) else {
        crate::klog!("cluster: could not open the braid's UDP sockets");
        return;
    };
    let cfg = braid::Config {
        tori: peers.len(),
        k_miss: K_MISS,
        i_min: I_MIN_NS,
        i_max: I_MAX_NS,
        adaptive: true,
        detect_grace_max: DETECT_GRACE_MAX_NS,
        ..braid::Config::default()
    };
    let now = hal::time::now_ns();
    let me = me as TorusId;
    let torus = braid::Torus::new(me, cfg, now);
    let n = peers.len();
    let c = Cluster {
        me,
        view: torus.view(),
        peers,
        torus,
        wire,
        rosters: (0..n).map(|_| None).collect(),
        heard: alloc::vec![0; n],
        roster_seq: 0,
        next_roster: now,
        inflight: VecDeque::new(),
        rtts: VecDeque::new(),
        rejected: 0,
        departures: Vec::new(),
        joins: 0,
        fenced: 0,
    };
    NEXT_DUE.store(now, Ordering::Release);
    *CLUSTER.lock() = Some(c);
    crate::klog!(
        "cluster: machine {me} of {n}, build {build}, braid over UDP port {}+k, interval {}..{} ms, failure after {} ms",
        wire::BASE,
        I_MIN_NS / 1_000_000,
        I_MAX_NS / 1_000_000,
        K_MISS * I_MAX_NS / 1_000_000
    );
    balance::init(cmdline);
    migrate::init();
}

/// (this machine, number of machines, members of the view as a bit
/// mask), None outside a cluster.
pub fn machines() -> Option<(usize, usize, u64)> {
    let g = CLUSTER.lock();
    let c = g.as_ref()?;
    Some((usize::from(c.me), c.peers.len(), c.torus.view().members))
}

/// (this machine, machine `m`'s address) if `m` is another member of the
/// view.
pub fn peer(m: usize) -> Option<(usize, Ipv4Address)> {
    let g = CLUSTER.lock();
    let c = g.as_ref()?;
    let me = usize::from(c.me);
    let v = c.torus.view();
    (m != me && m < c.peers.len() && v.contains(m as TorusId)).then(|| (me, c.peers[m]))
}

/// Each machine of the view with a roster at most `max_age_ns` old
/// (this one included): its runnable weight and CPUs, from its tori that
/// are up.
pub fn machine_loads(now: u64, max_age_ns: u64) -> Vec<braid::placement::MachineLoad> {
    let Some(g) = CLUSTER.try_lock() else {
        return Vec::new();
    };
    let Some(c) = g.as_ref() else {
        return Vec::new();
    };
    let view = c.torus.view();
    let mut out = Vec::new();
    for (m, r) in c.rosters.iter().enumerate() {
        let Some((r, at)) = r else { continue };
        if !view.contains(m as TorusId) || now.saturating_sub(*at) > max_age_ns {
            continue;
        }
        let up = r
            .tori
            .iter()
            .take(usize::from(r.n))
            .filter(|t| t.state == T_UP);
        let (load, cap) = up.fold((0u64, 0u64), |(l, n), t| (l + u64::from(t.load), n + 1));
        if cap > 0 {
            out.push(braid::placement::MachineLoad {
                machine: m,
                load,
                cpus: cap,
            });
        }
    }
    out
}

/// CPU 0's event boundary: take datagrams that arrived, run the machine
/// torus's due events, send what it produced.
pub fn boundary() {
    let due = NEXT_DUE.load(Ordering::Acquire);
    if due == u64::MAX || crate::proc::cpu::id() != 0 {
        return;
    }
    let now = hal::time::now_ns();
    migrate::service(now);
    balance::step(now);
    if now < due && !Wire::maybe_rx() {
        return;
    }
    let Some(mut g) = CLUSTER.try_lock() else {
        return; // A reader of /proc/braid; the next boundary does it.
    };
    let Some(c) = g.as_mut() else {
        return;
    };
    c.run(now);
    let next = c.torus.next_time().unwrap_or(now + I_MIN_NS);
    NEXT_DUE.store(next.min(c.next_roster), Ordering::Release);
}

impl Cluster {
    fn run(&mut self, now: u64) {
        let mut out = Outbox(Vec::new());
        for (k, bytes) in self.wire.receive() {
            self.on_record(now, k, &bytes, &mut out);
        }
        while self.torus.next_time().is_some_and(|t| t <= now) {
            self.torus.step(&mut out, &mut |_, _| {});
        }
        for (to, bytes) in &out.0 {
            if bytes.len() == PROJ_LEN {
                if let Ok(p) = Projection::decode(bytes) {
                    self.inflight.push_back((*to as TorusId, p.heartbeat, now));
                    if self.inflight.len() > 64 {
                        self.inflight.pop_front();
                    }
                }
            }
        }
        if now >= self.next_roster {
            self.next_roster = now + ROSTER_NS;
            self.send_roster(now, &mut out);
        }
        self.follow(now);
        self.wire.send(&out.0);
    }

    fn on_record(&mut self, now: u64, k: usize, bytes: &[u8], out: &mut Outbox) {
        match bytes.len() {
            ROSTER_LEN => match Roster::decode(bytes) {
                Ok(r) if usize::from(r.machine) == k => {
                    self.heard[k] = now;
                    let newer = self.rosters[k]
                        .as_ref()
                        .is_none_or(|(old, _)| (r.incarnation, r.seq) > (old.incarnation, old.seq));
                    if newer {
                        self.rosters[k] = Some((r, now));
                    }
                }
                _ => self.rejected += 1,
            },
            PROJ_LEN | ACK_LEN => {
                let from = match bytes.len() {
                    PROJ_LEN => Projection::decode(bytes).map(|p| p.from),
                    _ => Ack::decode(bytes).map(|a| {
                        self.sample_rtt(now, &a);
                        a.from
                    }),
                };
                match from {
                    Ok(f) if usize::from(f) == k => {
                        self.heard[k] = now;
                        self.torus.receive(now, bytes, out);
                    }
                    _ => self.rejected += 1,
                }
            }
            _ => self.rejected += 1,
        }
    }

    /// An ack of our projection: the projection's round trip.
    fn sample_rtt(&mut self, now: u64, a: &Ack) {
        if a.heard_hb == 0 {
            return;
        }
        if let Some(i) = self
            .inflight
            .iter()
            .position(|&(to, hb, _)| to == a.from && hb == a.heard_hb)
        {
            let (_, _, sent) = self.inflight[i];
            self.inflight.drain(..=i);
            self.rtts.push_back(now.saturating_sub(sent));
            if self.rtts.len() > RTT_SAMPLES {
                self.rtts.pop_front();
            }
        }
    }

    /// Our CPU tori, to every other member.
    fn send_roster(&mut self, now: u64, out: &mut Outbox) {
        self.roster_seq += 1;
        let mut r = Roster {
            machine: self.me,
            incarnation: self.torus.incarnation(),
            seq: self.roster_seq,
            ..Roster::default()
        };
        let n = crate::proc::torus::count().min(ROSTER_TORI);
        for (i, t) in r.tori.iter_mut().enumerate().take(n) {
            let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            *t = TorusInfo {
                load: sat(crate::proc::braid::load(i)),
                waiting: u16::try_from(crate::proc::torus::get(i).waiting()).unwrap_or(u16::MAX),
                cpu: crate::proc::torus::host(i) as u8,
                state: if crate::proc::torus::is_online(i) {
                    T_UP
                } else {
                    T_OUT
                },
            };
        }
        r.n = n as u8;
        self.rosters[usize::from(self.me)] = Some((r, now));
        let bytes = r.encode();
        let view = self.torus.view();
        for k in 0..self.peers.len() {
            if k != usize::from(self.me) && view.contains(k as TorusId) {
                out.0.push((k, bytes.to_vec()));
            }
        }
    }

    /// Logs what the protocol reports and how the view changed.
    fn follow(&mut self, now: u64) {
        let mut by_us = 0u64;
        for note in self.torus.drain_notes() {
            match note {
                braid::Note::Reconstructed { failed, .. } => {
                    // A forged view may name a machine we have no peer
                    // for: nothing to index then.
                    by_us |= 1u64.checked_shl(failed.into()).unwrap_or(0);
                    let heard = self.heard.get(usize::from(failed)).copied().unwrap_or(0);
                    crate::klog!(
                        "cluster: machine {failed} declared failed by this machine (its successor) after {} ms of silence",
                        now.saturating_sub(heard) / 1_000_000
                    );
                }
                braid::Note::Fenced => {
                    self.fenced += 1;
                    crate::klog!(
                        "cluster: this machine was declared failed; rejoining as a new incarnation"
                    );
                }
                braid::Note::Joined => {
                    self.joins += 1;
                    crate::klog!("cluster: this machine joined the ring");
                }
                _ => {}
            }
        }
        let v = self.torus.view();
        if v == self.view {
            return;
        }
        let gone = self.view.members & !v.members;
        let came = v.members & !self.view.members;
        for m in 0..self.peers.len() {
            let bit = 1u64 << m;
            if gone & bit != 0 && m != usize::from(self.me) {
                let silent = now.saturating_sub(self.heard[m]);
                crate::klog!(
                    "cluster: machine {m} left the view (epoch {}) after {}.{:03} ms of silence",
                    v.epoch,
                    silent / 1_000_000,
                    silent / 1000 % 1000
                );
                self.departures.push(Departure {
                    machine: m as TorusId,
                    epoch: v.epoch,
                    at: now,
                    silent,
                    by_us: by_us & bit != 0,
                });
                if self.departures.len() > 16 {
                    self.departures.remove(0);
                }
                migrate::machine_gone(m);
            }
            if came & bit != 0 {
                crate::klog!("cluster: machine {m} is in the view (epoch {})", v.epoch);
            }
        }
        self.view = v;
    }

    fn report(&self, now: u64) -> String {
        let v = self.torus.view();
        let members: Vec<String> = (0..self.peers.len())
            .filter(|&m| v.contains(m as TorusId))
            .map(|m| format!("{m}"))
            .collect();
        let mut s = format!(
            "cluster machine {} of {} incarnation {} epoch {} members {} lease {} interval_ms {}..{} detect_ms {}\n",
            self.me,
            self.peers.len(),
            self.torus.incarnation(),
            v.epoch,
            members.join(","),
            if self.torus.lease_valid(now) { "valid" } else { "expired" },
            I_MIN_NS / 1_000_000,
            I_MAX_NS / 1_000_000,
            K_MISS * I_MAX_NS / 1_000_000,
        );
        s += "machine address state incarnation tori last_heard_ms\n";
        for (m, addr) in self.peers.iter().enumerate() {
            let me = m == usize::from(self.me);
            let state = match (me, v.contains(m as TorusId)) {
                (true, _) if self.torus.is_joining() => "joining",
                (true, _) => "this",
                (false, true) => "up",
                (false, false) => "gone",
            };
            let (inc, tori) = match &self.rosters[m] {
                Some((r, _)) => (format!("{}", r.incarnation), format!("{}", r.n)),
                None => ("-".into(), "-".into()),
            };
            let heard = if me || self.heard[m] == 0 {
                String::from("-")
            } else {
                format!("{}", now.saturating_sub(self.heard[m]) / 1_000_000)
            };
            s += &format!("{m} {addr} {state} {inc} {tori} {heard}\n");
        }
        // Every torus of every machine in the view (from its roster).
        s += "torus machine cpu state load waiting\n";
        for (m, r) in self.rosters.iter().enumerate() {
            let Some((r, _)) = r else { continue };
            if !v.contains(m as TorusId) && m != usize::from(self.me) {
                continue;
            }
            for (i, t) in r.tori().iter().enumerate() {
                s += &format!(
                    "torus {m}.{} {m} {} {} {} {}\n",
                    (b'A' + i as u8) as char,
                    t.cpu,
                    if t.state == T_UP { "up" } else { "out" },
                    t.load,
                    t.waiting
                );
            }
        }
        let mut rtt: Vec<u64> = self.rtts.iter().copied().collect();
        rtt.sort_unstable();
        let pct = |p: usize| rtt.get((rtt.len() * p / 100).min(rtt.len().saturating_sub(1)));
        if let (Some(p50), Some(p99), Some(max)) = (pct(50), pct(99), rtt.last()) {
            s += &format!(
                "projection_rtt_us samples {} p50 {} p99 {} max {}\n",
                rtt.len(),
                p50 / 1000,
                p99 / 1000,
                max / 1000
            );
        }
        let w = self.wire.counters;
        let st = self.torus.stats;
        s += &format!(
            "wire sent {} send_dropped {} received {} foreign {} other_build {} rejected {} braid_rejected {} stale {} misaddressed {} fences_sent {} fenced {} joins {}\n",
            w.sent,
            w.send_dropped,
            w.received,
            w.foreign,
            w.other_build,
            self.rejected,
            st.rejected_decode,
            st.rejected_stale,
            st.misaddressed,
            st.fences_sent,
            self.fenced,
            self.joins
        );
        for d in &self.departures {
            s += &format!(
                "departure machine {} epoch {} silent_ms {}.{:03} {} {} ms ago\n",
                d.machine,
                d.epoch,
                d.silent / 1_000_000,
                d.silent / 1000 % 1000,
                if d.by_us {
                    "declared failed by this machine"
                } else {
                    "removed by its successor"
                },
                now.saturating_sub(d.at) / 1_000_000
            );
        }
        s
    }
}

/// `balance on|off` written to /proc/braid: load diffusion between
/// machines on or off (ENOSYS outside a cluster).
pub fn set_balance(arg: &str) -> abi::KResult<()> {
    if CLUSTER.lock().is_none() {
        return Err(abi::Errno::ENOSYS);
    }
    match arg {
        "on" => balance::set_enabled(true),
        "off" => balance::set_enabled(false),
        _ => return Err(abi::Errno::EINVAL),
    }
    Ok(())
}

/// The machine ring's part of /proc/braid (empty outside a cluster).
pub fn report() -> String {
    let now = hal::time::now_ns();
    let g = CLUSTER.lock();
    let Some(c) = g.as_ref() else {
        return String::new();
    };
    let mut s = c.report(now);
    drop(g);
    s += &migrate::report();
    s += &format!(
        "balance {} moves {} rounds {}\n",
        if balance::enabled() { "on" } else { "off" },
        balance::MOVES.load(Ordering::Relaxed),
        balance::ROUNDS.load(Ordering::Relaxed)
    );
    s
}
