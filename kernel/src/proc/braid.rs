//! The braid between the CPU tori. Every braid interval each online torus
//! sends its projection (crate `braid`'s 512-byte, CRC-checked wire
//! format: heartbeat, epoch, members, load per class, chain digest) to its
//! successor only, through a per-pair shared-memory mailbox, and acks its
//! predecessor's projection with its own load. From those two neighbours'
//! loads it diffuses work: it hands one movable process to a neighbour
//! that is lighter by more than that process's weight. Its successor
//! watches its heartbeat: silent for [`TIMEOUT_NS`] (and at least
//! [`MISSED`] of the intervals it announced), the torus is
//! declared failed, taken out of the ring, and its queued processes are
//! adopted (they are in shared memory, switched out at an event boundary).
//!
//! A falsely suspected torus (its CPU was only late, e.g. a vCPU the host
//! did not run) loses nothing: adoption takes only processes that are
//! queued, never the one it runs, under its queue's lock, like any
//! migration; it notices it was taken out and rejoins.
//!
//! Debug control (`/proc/braid`): `fail B` makes torus B stop taking
//! events at its next event boundary, as if its CPU hung (a CPU that hosts
//! only B spins with interrupts off; one that hosts other tori too goes
//! on serving them); `revive B` lets it go on and rejoin the ring.

use alloc::format;
use alloc::string::String;
use braid::ack::ACK_LEN;
use braid::chain::{Chain, Verdict};
use braid::codec::record_digest;
use braid::projection::PROJ_LEN;
use braid::{Ack, Projection};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use spin::Mutex;

use super::mailbox::Mailbox;
use super::replica;
use super::torus::{self, MAX_TORI};

/// Bounds of the braid interval: each torus adapts its own (the `braid`
/// crate's rule: halve it while its load or membership changes, lengthen
/// it by a quarter after four quiet intervals) and announces it in its
/// projections.
pub const MIN_INTERVAL_NS: u64 = 1_000_000;
pub const MAX_INTERVAL_NS: u64 = 4_000_000;
/// Silence after which a predecessor is declared failed.
pub const TIMEOUT_NS: u64 = 40_000_000;
/// At least this many of the predecessor's announced intervals must pass
/// silently too. (40 ms: under TCG on a loaded host a vCPU can be
/// descheduled for tens of ms; a false suspicion costs migrations, never
/// correctness.)
pub const MISSED: u64 = 5;

const PW: usize = PROJ_LEN / 8;
const AW: usize = ACK_LEN / 8;
/// `PROJ[from][to]`: projections; `ACKS[from][to]`: acks.
static PROJ: [[Mailbox<PW>; MAX_TORI]; MAX_TORI] =
    [const { [const { Mailbox::new() }; MAX_TORI] }; MAX_TORI];
static ACKS: [[Mailbox<AW>; MAX_TORI]; MAX_TORI] =
    [const { [const { Mailbox::new() }; MAX_TORI] }; MAX_TORI];

/// The ring's view epoch: +1 on every failure and rejoin.
static EPOCH: AtomicU32 = AtomicU32::new(1);
/// `fail` asked this torus to stop (and when, for the detection time).
static FAILING: [AtomicBool; MAX_TORI] = [const { AtomicBool::new(false) }; MAX_TORI];
static FAIL_AT: [AtomicU64; MAX_TORI] = [const { AtomicU64::new(0) }; MAX_TORI];

/// What one torus knows and has done (its own CPU writes it).
#[derive(Default, Clone, Copy)]
struct State {
    last_step: u64,
    /// This torus's braid interval (None until its first step).
    interval: Option<braid::interval::Interval>,
    /// The interval the predecessor announced (ns).
    pred_interval: u64,
    heartbeat: u64,
    /// Digest of the last projection sent.
    chain: u64,
    pred: Option<usize>,
    pred_seq: u64,
    /// The mailbox sequence the failure detector last saw.
    pred_watch_seq: u64,
    /// Heartbeat and digest chain of the predecessor's projections.
    pred_chain: Chain,
    /// When the predecessor's heartbeat last advanced (or it became ours).
    pred_seen: u64,
    pred_load: Option<u64>,
    succ: Option<usize>,
    succ_seq: u64,
    succ_load: Option<u64>,
    load: u64,
    sent: u64,
    received: u64,
    rejected: u64,
    migrations: u64,
    adopted: u64,
    /// Rosters of the predecessor kept (matching an accepted projection).
    replicated: u64,
    last_adoption: Option<super::sched::Adoption>,
    failures_detected: u64,
    /// Detection time of the last failure this torus declared (ns from
    /// `fail` or from the last heartbeat), and whom.
    last_detect_ns: u64,
    last_failed: Option<usize>,
    rejoins: u64,
}

static STATE: [Mutex<State>; MAX_TORI] = [const {
    Mutex::new(State {
        last_step: 0,
        interval: None,
        pred_interval: 0,
        heartbeat: 0,
        chain: 0,
        pred: None,
        pred_seq: 0,
        pred_watch_seq: 0,
        pred_chain: Chain::new(),
        pred_seen: 0,
        pred_load: None,
        succ: None,
        succ_seq: 0,
        succ_load: None,
        load: 0,
        sent: 0,
        received: 0,
        rejected: 0,
        migrations: 0,
        adopted: 0,
        replicated: 0,
        last_adoption: None,
        failures_detected: 0,
        last_detect_ns: 0,
        last_failed: None,
        rejoins: 0,
    })
}; MAX_TORI];

/// The next online torus after `t` around the ring (not `t` itself).
fn succ(t: usize) -> Option<usize> {
    let n = torus::count();
    (1..n).map(|k| (t + k) % n).find(|&i| torus::is_online(i))
}

/// The previous online torus before `t`.
fn pred(t: usize) -> Option<usize> {
    let n = torus::count();
    (1..n)
        .map(|k| (t + n - k) % n)
        .find(|&i| torus::is_online(i))
}

fn members() -> u64 {
    (0..torus::count())
        .filter(|&i| torus::is_online(i))
        .fold(0, |m, i| m | 1 << i)
}

/// Whether torus `t` was told to stop (`fail`).
pub fn failing(t: usize) -> bool {
    FAILING[t % MAX_TORI].load(Ordering::Acquire)
}

/// Called at every event boundary of this CPU (deferred work), with no
/// lock held: the tori it hosts take their braid events.
pub fn boundary() {
    for me in super::cpu::this().hosted() {
        boundary_of(me);
    }
}

/// The event boundary of torus `me`: the failure detector every time, a
/// braid step (projection, ack, diffusion) at most once per interval.
fn boundary_of(me: usize) {
    if failing(me) {
        // Stop at this boundary: the scheduler puts the running process
        // back in the queue and takes no more from this torus.
        if me == torus::this_id() {
            super::work::raise(super::work::RESCHED);
        }
        return;
    }
    let now = hal::time::now_ns();
    // Every boundary: the failure detector, in place (no copy of the
    // state on this per-tick path); then a step only if one is due.
    let due = hal::cpu::without_interrupts(|| {
        let mut s = STATE[me].lock();
        watch(me, now, &mut s);
        let iv = s
            .interval
            .get_or_insert_with(|| {
                braid::interval::Interval::new(MIN_INTERVAL_NS, MAX_INTERVAL_NS, true)
            })
            .current();
        now.saturating_sub(s.last_step) >= iv
    });
    if !due {
        return;
    }
    let mut st = hal::cpu::without_interrupts(|| *STATE[me].lock());
    st.last_step = now;
    let epoch_before = EPOCH.load(Ordering::Acquire);
    if !torus::is_online(me) {
        // Taken out while alive (a late CPU): come back.
        super::sched::rejoin(me);
        EPOCH.fetch_add(1, Ordering::AcqRel);
        st.rejoins += 1;
    }
    // One look at the queue serves the projection and the ack.
    // One look at the queue serves the projection, the ack and the
    // roster for the successor's replica.
    let (rt, nr, roster) = hal::cpu::without_interrupts(|| {
        let rq = torus::get(me).runq.lock();
        st.load = rq.load();
        (
            rq.rt_queued() as u64,
            rq.nr_running() as u64,
            replica::snapshot(me, &rq),
        )
    });
    send(me, now, rt, nr, &roster, &mut st);
    receive(me, now, &mut st);
    hal::cpu::without_interrupts(|| *STATE[me].lock() = st);
    // Diffusion: one process per neighbour per interval at most.
    // A neighbour's load is used once: after a push to it, wait for a
    // report sent after the push, or stale reports make neighbours push
    // work back and forth.
    let mut moved = 0;
    let mut pushed = [false; 2];
    for (k, (n, their)) in [(pred(me), st.pred_load), (succ(me), st.succ_load)]
        .into_iter()
        .enumerate()
    {
        if let (Some(n), Some(their)) = (n, their) {
            if super::sched::push_one(me, n, their) {
                moved += 1;
                pushed[k] = true;
            }
        }
    }
    // The interval follows the churn: migrations, a changed load, or a
    // changed view (counted as much churn) shorten it.
    let view_changed = EPOCH.load(Ordering::Acquire) != epoch_before;
    hal::cpu::without_interrupts(|| {
        let mut s = STATE[me].lock();
        s.migrations += moved;
        if pushed[0] {
            s.pred_load = None;
        }
        if pushed[1] {
            s.succ_load = None;
        }
        let load = s.load;
        if let Some(iv) = s.interval.as_mut() {
            iv.update(moved + if view_changed { 3 } else { 0 }, load);
        }
    });
}

fn interval_ns(st: &State) -> u64 {
    st.interval.map_or(MAX_INTERVAL_NS, |i| i.current())
}

/// Sends this torus's projection (`rt` real-time processes queued, `nr`
/// runnable in all, load `st.load`) to its successor, and with it the
/// roster of its queue, whose digest the projection carries.
fn send(me: usize, now: u64, rt: u64, nr: u64, roster: &replica::Roster, st: &mut State) {
    let Some(s) = succ(me) else { return };
    st.heartbeat += 1;
    let digest = replica::send(me, s, roster);
    let rt_load = (rt * runq::NICE_0_WEIGHT as u64).min(st.load);
    let p = Projection {
        from: me as u16,
        to: s as u16,
        incarnation: 1,
        epoch: EPOCH.load(Ordering::Acquire),
        members: members(),
        heartbeat: st.heartbeat,
        send_time: now,
        interval: (interval_ns(st) / 1000) as u32,
        nprocs: nr as u32,
        load: [rt_load as u32, (st.load - rt_load) as u32, 0, 0],
        digest,
        chain: st.chain,
        ..Projection::default()
    };
    let b = p.encode();
    st.chain = record_digest(&b);
    PROJ[me][s].write(&b);
    st.sent += 1;
}

fn receive(me: usize, now: u64, st: &mut State) {
    let Some(pr) = follow_pred(me, now, st) else {
        return;
    };
    let mut b = [0u8; PROJ_LEN];
    if let Some(seq) = PROJ[pr][me].read(&mut b) {
        if seq != st.pred_seq {
            st.pred_seq = seq;
            let checked = Projection::decode(&b)
                .ok()
                .filter(|p| p.from as usize == pr && p.to as usize == me)
                .map(|p| (st.pred_chain.check(&p), p));
            match checked {
                Some((verdict, p)) if verdict != Verdict::Stale => {
                    // A broken chain is counted, but the projection is
                    // still the predecessor's latest word (its load, its
                    // liveness): only its roster is not trusted.
                    if verdict == Verdict::BrokenChain {
                        st.rejected += 1;
                    } else {
                        st.received += 1;
                        if replica::receive(pr, me, p.digest) {
                            st.replicated += 1;
                        }
                    }
                    st.pred_chain.accept(&p, &b);
                    st.pred_seen = now;
                    st.pred_load = Some(p.load.iter().map(|&x| x as u64).sum());
                    st.pred_interval = p.interval as u64 * 1000;
                    let a = Ack {
                        from: me as u16,
                        to: pr as u16,
                        epoch: EPOCH.load(Ordering::Acquire),
                        members: members(),
                        heard_hb: p.heartbeat,
                        load: st.load.min(u32::MAX as u64) as u32,
                        ..Ack::default()
                    };
                    ACKS[me][pr].write(&a.encode());
                }
                _ => st.rejected += 1,
            }
        }
    }
    if let Some(s) = succ(me) {
        if st.succ != Some(s) {
            // A new successor: nothing it reported yet.
            st.succ = Some(s);
            st.succ_load = None;
        }
        let mut a = [0u8; ACK_LEN];
        if let Some(seq) = ACKS[s][me].read(&mut a) {
            if seq != st.succ_seq {
                st.succ_seq = seq;
                match Ack::decode(&a) {
                    Ok(a) if a.from as usize == s && a.to as usize == me => {
                        st.succ_load = Some(a.load as u64)
                    }
                    _ => st.rejected += 1,
                }
            }
        }
    }
}

/// Tracks who the predecessor is (a new one starts with a clean slate).
fn follow_pred(me: usize, now: u64, st: &mut State) -> Option<usize> {
    let Some(pr) = pred(me) else {
        st.pred = None;
        return None;
    };
    if st.pred != Some(pr) {
        st.pred = Some(pr);
        st.pred_chain = Chain::new();
        st.pred_seen = now;
        st.pred_load = None;
        st.pred_watch_seq = PROJ[pr][me].seq();
    }
    Some(pr)
}

/// The failure detector, at every event boundary (not only at braid
/// steps, so detection is not late by a whole interval): the predecessor
/// is alive while its mailbox to us keeps changing.
fn watch(me: usize, now: u64, st: &mut State) {
    let Some(pr) = follow_pred(me, now, st) else {
        return;
    };
    let seq = PROJ[pr][me].seq();
    if seq != st.pred_watch_seq {
        st.pred_watch_seq = seq;
        st.pred_seen = now;
    }
    // Judged only once heard from: a torus still booting is not late.
    let timeout = TIMEOUT_NS.max(MISSED * st.pred_interval);
    if st.pred_chain.heard() && now.saturating_sub(st.pred_seen) > timeout {
        let a = super::sched::adopt(pr, me);
        EPOCH.fetch_add(1, Ordering::AcqRel);
        let fail_at = FAIL_AT[pr].swap(0, Ordering::AcqRel);
        st.last_detect_ns = now.saturating_sub(if fail_at != 0 { fail_at } else { st.pred_seen });
        st.last_failed = Some(pr);
        st.failures_detected += 1;
        st.adopted += a.from_replica + a.missed;
        st.last_adoption = Some(a);
        st.pred = None;
        st.pred_load = None;
    }
}

/// The idle loop of a CPU whose tori all failed: interrupts off, nothing
/// taken, until `revive`.
pub fn hang_while_failed(c: &super::cpu::Cpu) {
    let all_failed = || c.hosted.load(Ordering::Acquire) != 0 && c.hosted().all(failing);
    if !all_failed() {
        return;
    }
    hal::cpu::disable_interrupts();
    while all_failed() {
        core::hint::spin_loop();
    }
    hal::cpu::enable_interrupts();
}

fn torus_index(name: &str) -> Option<usize> {
    let name = name.trim();
    let i = match name.as_bytes() {
        [c @ b'A'..=b'Z'] => (c - b'A') as usize,
        [c @ b'a'..=b'z'] => (c - b'a') as usize,
        _ => name.parse().ok()?,
    };
    (i < torus::count()).then_some(i)
}

fn name(i: usize) -> char {
    if i < 26 {
        (b'A' + i as u8) as char
    } else {
        '?'
    }
}

/// Writes to /proc/braid: `fail X` or `revive X` (X a letter or index).
pub fn control(cmd: &[u8]) -> abi::KResult<()> {
    use abi::Errno;
    let s = core::str::from_utf8(cmd).map_err(|_| Errno::EINVAL)?.trim();
    let (verb, arg) = s.split_once(' ').ok_or(Errno::EINVAL)?;
    let t = torus_index(arg).ok_or(Errno::EINVAL)?;
    match verb {
        "fail" => {
            // Torus A takes the console interrupt; and someone must stay.
            if t == 0 || members() & !(1 << t) == 0 {
                return Err(Errno::EBUSY);
            }
            FAIL_AT[t].store(hal::time::now_ns(), Ordering::Release);
            FAILING[t].store(true, Ordering::Release);
            torus::kick(t);
        }
        "revive" => {
            FAILING[t].store(false, Ordering::Release);
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(())
}

/// /proc/braid.
pub fn report() -> String {
    let mut s = format!(
        "epoch {} interval_ms {}..{} timeout_ms {} members {:#x}\n",
        EPOCH.load(Ordering::Acquire),
        MIN_INTERVAL_NS / 1_000_000,
        MAX_INTERVAL_NS / 1_000_000,
        TIMEOUT_NS / 1_000_000,
        members()
    );
    s += "torus index cpu state interval_us heartbeat pred succ load nr sent received rejected replicated migrations adopted failures_detected rejoins\n";
    for (i, st) in STATE.iter().enumerate().take(torus::count()) {
        let st = hal::cpu::without_interrupts(|| *st.lock());
        let state = if failing(i) {
            "failed"
        } else if torus::is_online(i) {
            "up"
        } else {
            "out"
        };
        let nr = torus::get(i).waiting();
        let opt = |o: Option<usize>| o.map_or('-', name);
        s += &format!(
            "{} {i} {} {state} {} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
            name(i),
            torus::host(i),
            interval_ns(&st) / 1000,
            st.heartbeat,
            opt(pred(i).filter(|_| torus::is_online(i))),
            opt(succ(i).filter(|_| torus::is_online(i))),
            st.load,
            nr,
            st.sent,
            st.received,
            st.rejected,
            st.replicated,
            st.migrations,
            st.adopted,
            st.failures_detected,
            st.rejoins
        );
    }
    for (i, st) in STATE.iter().enumerate().take(torus::count()) {
        let st = hal::cpu::without_interrupts(|| *st.lock());
        if let (Some(f), Some(a)) = (st.last_failed, st.last_adoption) {
            s += &format!(
                "failure {} detected by {} in {}.{:03} ms, {} processes adopted ({} from the replica, {} missed by it{}{})\n",
                name(f),
                name(i),
                st.last_detect_ns / 1_000_000,
                st.last_detect_ns / 1000 % 1000,
                a.from_replica + a.missed,
                a.from_replica,
                a.missed,
                if a.complete { "" } else { "; replica incomplete" },
                if a.checked { "" } else { "; queue locked, not checked" },
            );
        }
    }
    s
}
