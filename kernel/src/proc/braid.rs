//! The braid between the CPU tori. Every braid interval each online torus
//! sends its projection (crate `braid`'s 512-byte, CRC-checked wire
//! format: heartbeat, epoch, members, load per class, chain digest) to its
//! successor only, through a per-pair shared-memory mailbox, and acks its
//! predecessor's projection with its own load. From those two neighbours'
//! loads it diffuses work: it hands one movable process to a neighbour
//! that is lighter by more than that process's weight. Its successor
//! watches its heartbeat: silent for [`TIMEOUT_NS`] (and at least
//! [`MISSED`] of the intervals it announced), the torus is *suspected*
//! (SWIM's suspicion phase): a shared word says so and its CPU gets an
//! IPI. A live torus refutes at its next event boundary (it answers the
//! suspicion's number and bumps its incarnation); only a suspicion not
//! refuted within a further wait (from [`SUSPECT_NS`] up to
//! [`MAX_SUSPECT_NS`]: twice the lateness this torus saw lately) is
//! declared a failure: the torus is taken out of the ring and its queued
//! processes are adopted (they are in shared memory, switched out at an
//! event boundary).
//!
//! No detector can tell a dead CPU from one the host has not run for
//! longer than it waits, so a late torus can still be declared failed: it
//! then loses nothing and nothing runs twice. Adoption claims only queued
//! processes, never the one it runs, each by its ticket; the late torus's
//! own entries go stale, and it notices it was taken out and rejoins.
//!
//! Debug control (`/proc/braid`): `fail B` makes torus B stop taking
//! events at its next event boundary, as if its CPU hung (a CPU that hosts
//! only B spins with interrupts off; one that hosts other tori too goes
//! on serving them), and it never refutes; `revive B` lets it go on and
//! rejoin the ring. `stall B MS` makes B late instead, as a host that
//! does not run its vCPU: at its next event boundary it takes no events
//! for MS milliseconds (its CPU spins with interrupts off, keeping the
//! process it runs, unless it hosts other tori that are not stalled),
//! then goes on by itself.

use alloc::format;
use alloc::string::String;
use braid::ack::ACK_LEN;
use braid::chain::{Chain, Verdict};
use braid::codec::record_digest;
use braid::projection::PROJ_LEN;
use braid::suspicion::Lateness;
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
/// Silence after which a predecessor is suspected.
pub const TIMEOUT_NS: u64 = 40_000_000;
/// At least this many of the predecessor's announced intervals must pass
/// silently too. (40 ms: under TCG on a loaded host a vCPU can be
/// descheduled for tens of ms.)
pub const MISSED: u64 = 5;
/// How long a suspicion waits for its refutation before the suspect is
/// declared failed, at least. A live torus refutes at its first event
/// boundary after the suspicion (within a tick once its CPU runs), so
/// this is the extra time a late vCPU gets.
pub const SUSPECT_NS: u64 = 80_000_000;
/// And at most: the wait grows to twice the lateness this torus saw
/// lately (its predecessor's silences that ended, gaps between its own
/// event boundaries; `braid::suspicion::Lateness`), up to this.
pub const MAX_SUSPECT_NS: u64 = 500_000_000;
/// Lateness seen is forgotten by halves, one per this much time. (Under
/// TCG on a loaded host vCPUs were seen late by 100–400 ms, and with a
/// fixed 40 ms every torus of a busy `-smp 3` guest was adopted while
/// alive: see `braid::suspicion`.)
const LATENESS_HALF_LIFE_NS: u64 = 1_000_000_000;

const fn lateness() -> Lateness {
    Lateness::new(SUSPECT_NS, MAX_SUSPECT_NS, LATENESS_HALF_LIFE_NS)
}

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
/// `stall` asked this torus to be late by so many ns, from its next
/// event boundary; it is late until `STALL_UNTIL`.
static STALL_REQ: [AtomicU64; MAX_TORI] = [const { AtomicU64::new(0) }; MAX_TORI];
static STALL_UNTIL: [AtomicU64; MAX_TORI] = [const { AtomicU64::new(0) }; MAX_TORI];
static STALLS: [AtomicU64; MAX_TORI] = [const { AtomicU64::new(0) }; MAX_TORI];

/// `SUSPECT[t]`: the number of the suspicion t's successor raised against
/// it (0: none); `REFUTED[t]`: the last one t answered. Shared words, so
/// that a suspect sees the suspicion without any step of its own braid
/// (its predecessor's projections are not for it).
static SUSPECT: [AtomicU64; MAX_TORI] = [const { AtomicU64::new(0) }; MAX_TORI];
static REFUTED: [AtomicU64; MAX_TORI] = [const { AtomicU64::new(0) }; MAX_TORI];
/// Suspicion numbers, unique so that an old refutation never answers a
/// new suspicion.
static SUSPICIONS: AtomicU64 = AtomicU64::new(0);
/// Each torus's incarnation, carried in its projections: bumped at every
/// refutation (SWIM), so a suspicion is always answered by news.
static INCARNATION: [AtomicU32; MAX_TORI] = [const { AtomicU32::new(1) }; MAX_TORI];

/// What one torus knows and has done (its own CPU writes it).
#[derive(Clone, Copy)]
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
    /// The open suspicion against the predecessor: its number, when it
    /// was raised, and how long it waits.
    suspicion: Option<(u64, u64, u64)>,
    /// Longest silence of a predecessor that then spoke again (ns).
    max_silence: u64,
    /// This torus's last event boundary, and the lateness it saw lately.
    last_boundary: u64,
    lateness: Lateness,
    /// The wait of the last suspicion raised (ns).
    last_suspect_ns: u64,
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
    failures_detected: u64,
    /// Suspicions raised against the predecessor, and how many of them it
    /// refuted.
    suspected: u64,
    refuted: u64,
    /// Suspicions against this torus that it refuted itself.
    refutations: u64,
    rejoins: u64,
}

/// The last declared failure of a torus.
#[derive(Clone, Copy)]
struct Failure {
    by: usize,
    /// Detection time: from `fail`, or from the last heartbeat heard.
    ns: u64,
    adoption: super::sched::Adoption,
}

/// `LAST_FAILURE[t]`: torus t's last failure. Kept by the failed torus's
/// index rather than the detector's, so that a detector's later
/// declaration of another torus does not hide it.
static LAST_FAILURE: [Mutex<Option<Failure>>; MAX_TORI] = [const { Mutex::new(None) }; MAX_TORI];

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
        suspicion: None,
        max_silence: 0,
        last_boundary: 0,
        lateness: lateness(),
        last_suspect_ns: 0,
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
        failures_detected: 0,
        suspected: 0,
        refuted: 0,
        refutations: 0,
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

/// Whether torus `t` is late on purpose now (`stall`).
fn stalled(t: usize) -> bool {
    let until = STALL_UNTIL[t % MAX_TORI].load(Ordering::Acquire);
    until != 0 && hal::time::now_ns() < until
}

/// Whether torus `t` takes no events now: told to stop (`fail`) or late
/// (`stall`). Its CPU serves its other tori, if any, and not this one.
pub fn halted(t: usize) -> bool {
    failing(t) || stalled(t)
}

/// Called at every event boundary of this CPU (deferred work), with no
/// lock held: the tori it hosts take their braid events.
pub fn boundary() {
    let c = super::cpu::this();
    for me in c.hosted() {
        let ns = STALL_REQ[me].swap(0, Ordering::AcqRel);
        if ns != 0 {
            STALL_UNTIL[me].store(hal::time::now_ns() + ns, Ordering::Release);
            STALLS[me].fetch_add(1, Ordering::AcqRel);
        }
    }
    // A CPU all of whose tori are late is itself late: it stops right
    // here, keeping the process it runs (in flight, so not adoptable),
    // as a vCPU the host does not run. Interrupts off: no tick, no IPI
    // is answered until it goes on.
    let all_late = || c.hosted().all(halted) && c.hosted().any(stalled);
    if all_late() {
        hal::cpu::without_interrupts(|| {
            while all_late() {
                core::hint::spin_loop();
            }
        });
    }
    for me in c.hosted() {
        boundary_of(me);
    }
}

/// The event boundary of torus `me`: the failure detector every time, a
/// braid step (projection, ack, diffusion) at most once per interval, or
/// at once to refute a suspicion.
fn boundary_of(me: usize) {
    if halted(me) {
        // Stop at this boundary: the scheduler puts the running process
        // back in the queue and takes no more from this torus. A hung
        // torus never refutes a suspicion: that is what tells it from a
        // late one.
        if me == torus::this_id() {
            super::work::raise(super::work::RESCHED);
        }
        return;
    }
    let now = hal::time::now_ns();
    // Alive, so suspected wrongly: refute (once per suspicion).
    let suspicion = SUSPECT[me].load(Ordering::Acquire);
    let refute = suspicion != 0 && REFUTED[me].swap(suspicion, Ordering::AcqRel) != suspicion;
    if refute {
        INCARNATION[me].fetch_add(1, Ordering::AcqRel);
    }
    // Every boundary: the failure detector, in place (no copy of the
    // state on this per-tick path); then a step only if one is due.
    let due = hal::cpu::without_interrupts(|| {
        let mut s = STATE[me].lock();
        if refute {
            s.refutations += 1;
        }
        if s.last_boundary != 0 {
            let gap = now.saturating_sub(s.last_boundary);
            s.lateness.note(now, gap);
        }
        s.last_boundary = now;
        watch(me, now, &mut s);
        let iv = s
            .interval
            .get_or_insert_with(|| {
                braid::interval::Interval::new(MIN_INTERVAL_NS, MAX_INTERVAL_NS, true)
            })
            .current();
        refute || now.saturating_sub(s.last_step) >= iv
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
        incarnation: INCARNATION[me].load(Ordering::Acquire),
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
        if let (Some(old), Some((n, ..))) = (st.pred, st.suspicion.take()) {
            let _ = SUSPECT[old].compare_exchange(n, 0, Ordering::AcqRel, Ordering::Acquire);
        }
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
/// is alive while its mailbox to us keeps changing. Silent past the
/// timeout, it is suspected; a suspicion it does not refute (nor speak
/// again) within its wait ([`SUSPECT_NS`] up to [`MAX_SUSPECT_NS`], by
/// the lateness this torus saw lately) is a failure.
fn watch(me: usize, now: u64, st: &mut State) {
    let Some(pr) = follow_pred(me, now, st) else {
        return;
    };
    let seq = PROJ[pr][me].seq();
    if seq != st.pred_watch_seq {
        st.pred_watch_seq = seq;
        if st.pred_chain.heard() {
            heard_after(now, st);
        }
        st.pred_seen = now;
    }
    if let Some((n, since, wait)) = st.suspicion {
        if REFUTED[pr].load(Ordering::Acquire) == n || st.pred_seen > since {
            st.suspicion = None;
            st.refuted += 1;
            if st.pred_seen <= since {
                heard_after(now, st);
            }
            st.pred_seen = now;
            let _ = SUSPECT[pr].compare_exchange(n, 0, Ordering::AcqRel, Ordering::Acquire);
        } else if now.saturating_sub(since) > wait {
            let _ = SUSPECT[pr].compare_exchange(n, 0, Ordering::AcqRel, Ordering::Acquire);
            st.suspicion = None;
            declare_failed(pr, me, now, st);
        }
        return;
    }
    // Judged only once heard from: a torus still booting is not late.
    let timeout = TIMEOUT_NS.max(MISSED * st.pred_interval);
    if st.pred_chain.heard() && now.saturating_sub(st.pred_seen) > timeout {
        let n = SUSPICIONS.fetch_add(1, Ordering::AcqRel) + 1;
        SUSPECT[pr].store(n, Ordering::Release);
        let wait = st.lateness.wait(now);
        st.suspicion = Some((n, now, wait));
        st.last_suspect_ns = wait;
        st.suspected += 1;
        // Its CPU looks at once if it runs at all (a halted CPU answers
        // only after its tick; one spinning with interrupts off, never).
        super::work::raise_on(torus::host(pr), super::work::DEFERRED);
    }
}

/// The predecessor, silent since `st.pred_seen`, was heard from now.
fn heard_after(now: u64, st: &mut State) {
    let silence = now.saturating_sub(st.pred_seen);
    st.max_silence = st.max_silence.max(silence);
    st.lateness.note(now, silence);
}

/// Takes predecessor `pr` out of the ring and adopts what waits on it.
fn declare_failed(pr: usize, me: usize, now: u64, st: &mut State) {
    let a = super::sched::adopt(pr, me);
    EPOCH.fetch_add(1, Ordering::AcqRel);
    let fail_at = FAIL_AT[pr].swap(0, Ordering::AcqRel);
    *LAST_FAILURE[pr].lock() = Some(Failure {
        by: me,
        ns: now.saturating_sub(if fail_at != 0 { fail_at } else { st.pred_seen }),
        adoption: a,
    });
    st.failures_detected += 1;
    st.adopted += a.from_replica + a.missed;
    st.pred = None;
    st.pred_load = None;
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

/// Longest `stall` (ms): long enough to be declared failed many times
/// over, short enough that a typo does not lose the machine.
const MAX_STALL_MS: u64 = 10_000;

/// Writes to /proc/braid: `fail X`, `revive X` or `stall X MS` (X a
/// letter or index); in a cluster also `move PID M[.T]` and `balance
/// on|off`.
pub fn control(cmd: &[u8]) -> abi::KResult<()> {
    use abi::Errno;
    let s = core::str::from_utf8(cmd).map_err(|_| Errno::EINVAL)?.trim();
    let (verb, arg) = s.split_once(' ').ok_or(Errno::EINVAL)?;
    if verb == "move" {
        return crate::cluster::migrate::request(arg);
    }
    if verb == "balance" {
        return crate::cluster::set_balance(arg.trim());
    }
    if verb == "stall" {
        let (who, ms) = arg.trim().split_once(' ').ok_or(Errno::EINVAL)?;
        let t = torus_index(who).ok_or(Errno::EINVAL)?;
        let ms: u64 = ms.trim().parse().map_err(|_| Errno::EINVAL)?;
        if ms == 0 || ms > MAX_STALL_MS {
            return Err(Errno::EINVAL);
        }
        // Any torus, A too: being late is not failing, and a late A is
        // what a busy host does to it.
        STALL_REQ[t].store(ms * 1_000_000, Ordering::Release);
        super::work::raise_on(torus::host(t), super::work::DEFERRED);
        return Ok(());
    }
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
/// Torus `i`'s load (runnable weight) as it last published it.
pub fn load(i: usize) -> u64 {
    STATE
        .get(i)
        .map_or(0, |st| hal::cpu::without_interrupts(|| st.lock().load))
}

pub fn report() -> String {
    let mut s = format!(
        "epoch {} interval_ms {}..{} timeout_ms {} suspect_ms {}..{} members {:#x}\n",
        EPOCH.load(Ordering::Acquire),
        MIN_INTERVAL_NS / 1_000_000,
        MAX_INTERVAL_NS / 1_000_000,
        TIMEOUT_NS / 1_000_000,
        SUSPECT_NS / 1_000_000,
        MAX_SUSPECT_NS / 1_000_000,
        members()
    );
    s += "torus index cpu state interval_us heartbeat pred succ load nr sent received rejected replicated migrations adopted failures_detected rejoins incarnation suspected refuted refutations stalls max_silence_us lateness_us suspect_wait_us\n";
    for (i, st) in STATE.iter().enumerate().take(torus::count()) {
        let st = hal::cpu::without_interrupts(|| *st.lock());
        let state = if failing(i) {
            "failed"
        } else if stalled(i) {
            "stalled"
        } else if !torus::is_online(i) {
            "out"
        } else if SUSPECT[i].load(Ordering::Acquire) != 0 {
            "suspected"
        } else {
            "up"
        };
        let nr = torus::get(i).waiting();
        let opt = |o: Option<usize>| o.map_or('-', name);
        s += &format!(
            "{} {i} {} {state} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
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
            st.rejoins,
            INCARNATION[i].load(Ordering::Acquire),
            st.suspected,
            st.refuted,
            st.refutations,
            STALLS[i].load(Ordering::Acquire),
            st.max_silence / 1000,
            st.lateness.current(hal::time::now_ns()) / 1000,
            st.last_suspect_ns / 1000
        );
    }
    for (i, f) in LAST_FAILURE.iter().enumerate().take(torus::count()) {
        let f = hal::cpu::without_interrupts(|| *f.lock());
        if let Some(Failure {
            by,
            ns,
            adoption: a,
        }) = f
        {
            s += &format!(
                "failure {} detected by {} in {}.{:03} ms, {} processes adopted ({} from the replica, {} missed by it{}{})\n",
                name(i),
                name(by),
                ns / 1_000_000,
                ns / 1000 % 1000,
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
