//! A SYN for a listener with no free listening socket is parked, not
//! reset.
//!
//! smoltcp has no accept queue: a listener is a few smoltcp sockets in
//! Listen state (`listener.rs`), and a SYN that finds none of them free
//! (all hold half-open connections, the accept queue is full, or the
//! family is at its socket cap) matches no socket, so smoltcp answers it
//! with a reset and the client sees "connection refused". Linux does not
//! refuse a connection to a port it listens on because it is busy: it
//! drops the SYN and the client sends it again (1 s later, then 2, 4 …).
//! So the wire drops a reset that answers a bare SYN (RST|ACK with
//! sequence number 0, what smoltcp's `rst_reply` sends for one) when it
//! comes from a port an AF_INET listener holds; resets for ports nobody
//! listens on still go.
//!
//! **Parking.** The SYN that reset answered is kept ([`park`]) instead
//! of waiting for the client's resend: when the listener next has a
//! listening socket free (`listener::refill`), it is handed back to the
//! stack ([`release`], [`take_ready`]), so a burst of connects larger
//! than the listening sockets costs a poll, not a 1 s retransmission.
//! Bounded: at most [`PARK_PER_PORT`] per port and [`PARK_MAX`] in all
//! (a fuller port loses its oldest: under a SYN flood the newest SYN is
//! the likelier live one), each for at most [`PARK_TTL_NS`] (by then the
//! client has resent it, and the resend is parked in its place).
//!
//! The listeners' ports are kept here rather than looked up in the
//! socket set because the wire runs inside smoltcp's poll, which holds
//! the set.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use smoltcp::wire::Ipv4Address;
use spin::Mutex;

/// Most SYNs parked for one port.
pub const PARK_PER_PORT: usize = 64;
/// Most SYNs parked in all.
pub const PARK_MAX: usize = 256;
/// How long a parked SYN is kept: the client's first resend (RFC 6298's
/// initial retransmission timeout) replaces it.
pub const PARK_TTL_NS: u64 = 1_000_000_000;

/// A SYN the stack answered with a reset for a busy listener.
struct Parked {
    /// Its destination (address, port).
    dst: (u32, u16),
    /// When it was parked (ns).
    at: u64,
    /// The Ethernet frame as smoltcp received it.
    frame: Vec<u8>,
}

static PARKED: Mutex<VecDeque<Parked>> = Mutex::new(VecDeque::new());
/// Released SYNs the next poll hands to smoltcp again.
static READY: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Whether READY holds any (read on every poll: no lock).
static HAS_READY: AtomicBool = AtomicBool::new(false);

/// (address, port) → listeners on it (0.0.0.0: any address).
static LISTENING: Mutex<BTreeMap<(u32, u16), usize>> = Mutex::new(BTreeMap::new());

fn key(a: Ipv4Address, port: u16) -> (u32, u16) {
    (u32::from_be_bytes(a.octets()), port)
}

/// A listener began listening on (a, port).
pub fn add(a: Ipv4Address, port: u16) {
    *LISTENING.lock().entry(key(a, port)).or_insert(0) += 1;
}

/// A listener on (a, port) closed: with the last one on it, its parked
/// SYNs go.
pub fn remove(a: Ipv4Address, port: u16) {
    let mut l = LISTENING.lock();
    let k = key(a, port);
    if let Some(n) = l.get_mut(&k) {
        *n -= 1;
        if *n == 0 {
            l.remove(&k);
            drop(l);
            PARKED.lock().retain(|p| !matches_listener(p.dst, k));
        }
    }
}

/// Whether a SYN to `dst` is for a listener on `l` (0.0.0.0: any
/// address).
fn matches_listener(dst: (u32, u16), l: (u32, u16)) -> bool {
    dst.1 == l.1 && (l.0 == 0 || dst.0 == l.0)
}

/// The IPv4 header length and the TCP header of Ethernet frame `f`, if
/// it carries IPv4 TCP with at least a whole 20-byte TCP header.
fn tcp_of(f: &[u8]) -> Option<(usize, &[u8])> {
    if f.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let vihl = *f.get(14)?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 || *f.get(23)? != 6 {
        return None;
    }
    Some((ihl, f.get(14 + ihl..14 + ihl + 20)?))
}

/// Keeps `syn`, the frame smoltcp received, if it is the bare SYN that
/// `rst` (a reset [`drop_reset`] kept from the wire) answers.
pub fn park(syn: &[u8], rst: &[u8]) {
    let (Some((_, s)), Some((_, r))) = (tcp_of(syn), tcp_of(rst)) else {
        return;
    };
    const FIN_SYN_RST_ACK: u8 = 0x17;
    const SYN: u8 = 0x02;
    // The reset goes back from the SYN's destination to its source.
    if s[13] & FIN_SYN_RST_ACK != SYN
        || s[0..2] != r[2..4]
        || s[2..4] != r[0..2]
        || syn.get(30..34) != rst.get(26..30)
    {
        return;
    }
    let dst = (
        u32::from_be_bytes([syn[30], syn[31], syn[32], syn[33]]),
        u16::from_be_bytes([s[2], s[3]]),
    );
    let now = hal::time::now_ns();
    let mut frame = Vec::new();
    if frame.try_reserve_exact(syn.len()).is_err() {
        return;
    }
    frame.extend_from_slice(syn);
    let mut p = PARKED.lock();
    expire(&mut p, now);
    if p.iter().filter(|q| q.dst.1 == dst.1).count() >= PARK_PER_PORT {
        if let Some(i) = p.iter().position(|q| q.dst.1 == dst.1) {
            p.remove(i);
        }
    }
    if p.len() >= PARK_MAX {
        p.pop_front();
    }
    p.push_back(Parked {
        dst,
        at: now,
        frame,
    });
}

/// Drops parked SYNs older than [`PARK_TTL_NS`] (oldest first in the
/// queue).
fn expire(p: &mut VecDeque<Parked>, now: u64) {
    while p
        .front()
        .is_some_and(|q| now.saturating_sub(q.at) > PARK_TTL_NS)
    {
        p.pop_front();
    }
}

/// A listener on (a, port) has `n` listening sockets free: up to `n` of
/// its parked SYNs, oldest first, are made ready for the next poll. How
/// many were.
pub fn release(a: Ipv4Address, port: u16, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let l = key(a, port);
    let mut p = PARKED.lock();
    if p.is_empty() {
        return 0;
    }
    expire(&mut p, hal::time::now_ns());
    let mut out = Vec::new();
    p.retain_mut(|q| {
        if out.len() < n && matches_listener(q.dst, l) {
            out.push(core::mem::take(&mut q.frame));
            false
        } else {
            true
        }
    });
    drop(p);
    let k = out.len();
    if k > 0 {
        READY.lock().extend(out);
        HAS_READY.store(true, Ordering::Release);
    }
    k
}

/// Whether released SYNs wait for a poll.
pub fn has_ready() -> bool {
    HAS_READY.load(Ordering::Acquire)
}

/// The released SYNs, for the stack to receive again.
pub fn take_ready() -> Vec<Vec<u8>> {
    if !has_ready() {
        return Vec::new();
    }
    let mut r = READY.lock();
    HAS_READY.store(false, Ordering::Release);
    core::mem::take(&mut *r)
}

/// Whether `frame` (Ethernet, as smoltcp transmits it) is smoltcp's
/// reset of a SYN that came to a port an AF_INET listener holds: then
/// the listener was only busy, and the frame is not sent.
pub fn drop_reset(frame: &[u8]) -> bool {
    let Some((_, tcp)) = tcp_of(frame) else {
        return false;
    };
    let Some(src) = frame.get(26..30) else {
        return false;
    };
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;
    let flags = tcp[13] & 0x3f;
    if flags != RST | ACK || tcp[4..8] != [0, 0, 0, 0] {
        return false;
    }
    let port = u16::from_be_bytes([tcp[0], tcp[1]]);
    let src = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
    let l = LISTENING.lock();
    l.contains_key(&(src, port)) || l.contains_key(&(0, port))
}
