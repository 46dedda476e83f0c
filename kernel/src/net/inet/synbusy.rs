//! A SYN for a listener with no free listening socket is dropped, not
//! reset.
//!
//! smoltcp has no accept queue: a listener is a few smoltcp sockets in
//! Listen state (`tcp.rs`), and a SYN that finds none of them free (all
//! became connections the program has not accepted yet, or the family
//! is at its socket cap) matches no socket, so smoltcp answers it with a
//! reset and the client sees "connection refused". Linux does not refuse
//! a connection to a port it listens on because its accept queue is
//! full: it drops the SYN and the client sends it again (1 s later, then
//! 2, 4 …), by which time the server has accepted. So the wire drops a
//! reset that answers a bare SYN (RST|ACK with sequence number 0, what
//! smoltcp's `rst_reply` sends for one) when it comes from a port an
//! AF_INET listener holds; resets for ports nobody listens on still go.
//!
//! The listeners' ports are kept here rather than looked up in the
//! socket set because the wire runs inside smoltcp's poll, which holds
//! the set.

use alloc::collections::BTreeMap;
use smoltcp::wire::Ipv4Address;
use spin::Mutex;

/// (address, port) → listeners on it (0.0.0.0: any address).
static LISTENING: Mutex<BTreeMap<(u32, u16), usize>> = Mutex::new(BTreeMap::new());

fn key(a: Ipv4Address, port: u16) -> (u32, u16) {
    (u32::from_be_bytes(a.octets()), port)
}

/// A listener began listening on (a, port).
pub fn add(a: Ipv4Address, port: u16) {
    *LISTENING.lock().entry(key(a, port)).or_insert(0) += 1;
}

/// A listener on (a, port) closed.
pub fn remove(a: Ipv4Address, port: u16) {
    let mut l = LISTENING.lock();
    let k = key(a, port);
    if let Some(n) = l.get_mut(&k) {
        *n -= 1;
        if *n == 0 {
            l.remove(&k);
        }
    }
}

/// Whether `frame` (Ethernet, as smoltcp transmits it) is smoltcp's
/// reset of a SYN that came to a port an AF_INET listener holds: then
/// the listener was only busy, and the frame is not sent.
pub fn drop_reset(frame: &[u8]) -> bool {
    if frame.get(12..14) != Some(&[0x08, 0x00]) {
        return false;
    }
    let Some(&vihl) = frame.get(14) else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 || frame.get(23) != Some(&6) {
        return false;
    }
    let Some(src) = frame.get(26..30) else {
        return false;
    };
    let Some(tcp) = frame.get(14 + ihl..14 + ihl + 20) else {
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
