//! What a torus's successor keeps of it, so that it can adopt the
//! processes waiting there without touching that torus's run queue (whose
//! lock a hung CPU may hold forever).
//!
//! Two parts, together complete:
//! - the *roster*: every braid interval a torus lists the processes
//!   waiting in its queue (up to [`ROSTER_MAX`]) with the position of its
//!   join log at that moment, under its queue's lock, and sends it to its
//!   successor next to its projection, whose `digest` field is the
//!   roster's digest. The successor keeps the last roster that matches
//!   the projection it accepted: its *mirror*.
//! - the *join log*: whoever queues a process on a torus (a waker on any
//!   CPU, a migration, the torus itself) appends its pid to that torus's
//!   log under the same lock. What joined after the mirror's snapshot is
//!   in the log from the mirror's position on.
//!
//! Adoption claims each listed process through its ticket
//! ([`super::ticket`]): only processes still waiting on the failed torus
//! are taken, each once. A queuer racing the failure re-checks the
//! torus's membership after logging (see `sched::enqueue`), so a join the
//! adopter did not see is taken back by the queuer itself.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::Mutex;

use super::mailbox::Mailbox;
use super::ticket::Ticket;
use super::torus::MAX_TORI;

/// Most processes a roster lists (more: the mirror is marked incomplete).
pub const ROSTER_MAX: usize = 60;
/// Joins kept per torus (a mirror further behind than this is incomplete).
const LOG: usize = 256;
/// Roster size on the wire: log position, count, flags, pids.
pub const ROSTER_LEN: usize = 8 + 4 + 4 + 4 * ROSTER_MAX;
const RW: usize = ROSTER_LEN / 8;

static JOINS: [[AtomicU32; LOG]; MAX_TORI] =
    [const { [const { AtomicU32::new(0) }; LOG] }; MAX_TORI];
static JOIN_HEAD: [AtomicU64; MAX_TORI] = [const { AtomicU64::new(0) }; MAX_TORI];
/// `ROSTER[from][to]`: rosters, next to the projections.
static ROSTER: [[Mailbox<RW>; MAX_TORI]; MAX_TORI] =
    [const { [const { Mailbox::new() }; MAX_TORI] }; MAX_TORI];
/// `MIRROR[holder]`: the holder's copy of its predecessor's last roster.
static MIRROR: [Mutex<Option<(usize, Roster)>>; MAX_TORI] = [const { Mutex::new(None) }; MAX_TORI];

/// A torus's waiting processes at one moment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Roster {
    /// Join-log position when it was taken.
    pub head: u64,
    pub count: u32,
    /// Every waiting process fits.
    pub complete: bool,
    pub pids: [u32; ROSTER_MAX],
}

impl Roster {
    fn encode(&self) -> [u8; ROSTER_LEN] {
        let mut b = [0u8; ROSTER_LEN];
        b[..8].copy_from_slice(&self.head.to_le_bytes());
        b[8..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..16].copy_from_slice(&u32::from(self.complete).to_le_bytes());
        for (c, pid) in b[16..].chunks_mut(4).zip(self.pids) {
            c.copy_from_slice(&pid.to_le_bytes());
        }
        b
    }

    fn decode(b: &[u8; ROSTER_LEN]) -> Roster {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut pids = [0u32; ROSTER_MAX];
        for (k, pid) in pids.iter_mut().enumerate() {
            *pid = u32_at(16 + 4 * k);
        }
        let mut head = [0u8; 8];
        head.copy_from_slice(&b[..8]);
        Roster {
            head: u64::from_le_bytes(head),
            count: u32_at(8).min(ROSTER_MAX as u32),
            complete: u32_at(12) != 0,
            pids,
        }
    }

    /// The listed pids.
    pub fn listed(&self) -> &[u32] {
        &self.pids[..self.count as usize]
    }
}

/// Notes that `pid` joined torus `t`'s queue (call with that queue's lock
/// held, right after queueing it).
#[inline]
pub fn note_join(t: usize, pid: u32) {
    let t = t % MAX_TORI;
    let h = JOIN_HEAD[t].fetch_add(1, Ordering::SeqCst);
    JOINS[t][h as usize % LOG].store(pid, Ordering::SeqCst);
}

/// Lists torus `t`'s queue (whose lock the caller holds as `rq`).
pub fn snapshot(t: usize, rq: &runq::RunQueue<Ticket>) -> Roster {
    let mut r = Roster {
        head: JOIN_HEAD[t % MAX_TORI].load(Ordering::SeqCst),
        count: 0,
        complete: true,
        pids: [0; ROSTER_MAX],
    };
    for (q, _) in rq.iter().filter(|(q, _)| q.is_valid()) {
        if r.count as usize == ROSTER_MAX {
            r.complete = false;
            break;
        }
        r.pids[r.count as usize] = q.p.pid;
        r.count += 1;
    }
    r
}

/// Sends torus `from`'s roster to `to`; returns its digest (for the
/// projection that goes with it).
pub fn send(from: usize, to: usize, r: &Roster) -> u64 {
    let b = r.encode();
    ROSTER[from % MAX_TORI][to % MAX_TORI].write(&b);
    braid::codec::record_digest(&b)
}

/// After accepting a projection from `from` with roster digest `digest`:
/// keeps the roster that goes with it as `me`'s mirror. False if the
/// roster in the mailbox is not the one the projection names (it moved on
/// since): the mirror stays as it was.
pub fn receive(from: usize, me: usize, digest: u64) -> bool {
    let mut b = [0u8; ROSTER_LEN];
    if ROSTER[from % MAX_TORI][me % MAX_TORI]
        .read(&mut b)
        .is_none()
        || braid::codec::record_digest(&b) != digest
    {
        return false;
    }
    *MIRROR[me % MAX_TORI].lock() = Some((from, Roster::decode(&b)));
    true
}

/// What `me` knows of the processes waiting on its failed predecessor
/// `dead`: the pids of its mirror and those logged since (may repeat),
/// and whether that is everything (false: no mirror of `dead`, a roster
/// cut short, or more joins since than the log keeps).
pub fn waiting_on(me: usize, dead: usize) -> (Vec<u32>, bool) {
    let mirror = *MIRROR[me % MAX_TORI].lock();
    let Some((_, r)) = mirror.filter(|(of, _)| *of == dead) else {
        return (Vec::new(), false);
    };
    let mut pids: Vec<u32> = r.listed().to_vec();
    let head = JOIN_HEAD[dead % MAX_TORI].load(Ordering::SeqCst);
    let joined = head.saturating_sub(r.head);
    let complete = r.complete && joined <= LOG as u64;
    for h in head.saturating_sub(joined.min(LOG as u64))..head {
        pids.push(JOINS[dead % MAX_TORI][h as usize % LOG].load(Ordering::SeqCst));
    }
    pids.sort_unstable();
    pids.dedup();
    (pids, complete)
}
