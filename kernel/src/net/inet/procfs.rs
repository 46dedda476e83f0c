//! /proc/net/{tcp,udp,tcp6,udp6,raw,raw6,sockstat} as Linux prints them
//! (net/ipv4/tcp_ipv4.c get_tcp4_sock, net/ipv4/udp.c udp4_format_sock,
//! net/ipv4/proc.c sockstat_seq_show), so busybox `netstat` reads them.
//!
//! Listeners come from the family's sockets (one line per listener, not
//! per smoltcp socket it holds); connections from the stack's
//! socket set, so connections not yet accepted and closed ones still
//! finishing (orphans) show too, with inode 0, as on Linux. The kernel
//! address column is hidden (zeros, as with kptr_restrict); timers,
//! retransmit counts and uids are 0 (every process is root).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;
use smoltcp::socket::Socket as Smol;
use smoltcp::wire::{IpEndpoint, Ipv4Address};

use super::{addr, InetSocket, LIVE, ORPHANS};
use crate::net::socket::SOCK_STREAM;
use crate::net::stack;

/// Linux's TCP_* state numbers.
fn tcp_state(s: State) -> u8 {
    match s {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Listen => 10,
        State::Closing => 11,
    }
}

/// `%08X:%04X` of an address and port: the network-order address read
/// as a little-endian word, the port in host order.
fn hex_ep(a: Ipv4Address, port: u16) -> String {
    format!("{:08X}:{:04X}", u32::from_le_bytes(a.octets()), port)
}

fn ep_or_zero(e: Option<IpEndpoint>) -> String {
    match e {
        Some(e) => hex_ep(addr::v4(e.addr), e.port),
        None => hex_ep(Ipv4Address::UNSPECIFIED, 0),
    }
}

/// What a socket of the family shows, read under its own lock.
struct Seen {
    ino: u64,
    ty: u32,
    local: Option<(Ipv4Address, u16)>,
    listen: Option<Vec<SocketHandle>>,
    /// A listener's accept queue: its length and its backlog.
    queued: (usize, usize),
    h: Option<SocketHandle>,
    peer: Option<IpEndpoint>,
}

/// The family's live sockets (the Arcs are dropped by the caller, after
/// every lock is released: a last reference runs release()).
fn live() -> (Vec<Arc<InetSocket>>, Vec<Seen>) {
    let socks: Vec<Arc<InetSocket>> = LIVE.lock().values().filter_map(|w| w.upgrade()).collect();
    let seen = socks
        .iter()
        .filter(|s| !s.released.load(Ordering::Acquire))
        .map(|s| {
            let st = s.st.lock();
            Seen {
                ino: s.ino,
                ty: s.ty,
                local: st.local,
                listen: st.listen.as_ref().map(|l| l.handles().collect()),
                queued: st
                    .listen
                    .as_ref()
                    .map_or((0, 0), |l| (l.queue.len(), l.max - 1)),
                h: st.h,
                peer: st.peer,
            }
        })
        .collect();
    (socks, seen)
}

/// One line padded to `width` columns (seq_setwidth / seq_pad).
fn padded(out: &mut String, line: &str, width: usize) {
    *out += &format!("{line:<width$}\n");
}

/// /proc/net/tcp.
pub fn tcp() -> String {
    let (socks, seen) = live();
    let mut out = String::new();
    padded(
        &mut out,
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        149,
    );
    let mut sl = 0;
    for s in seen
        .iter()
        .filter(|s| s.ty == SOCK_STREAM && s.listen.is_some())
    {
        let (a, p) = s.local.unwrap_or((Ipv4Address::UNSPECIFIED, 0));
        // Linux: a listener's tx_queue is its backlog, rx_queue the
        // connections waiting for accept.
        padded(
            &mut out,
            &format!(
                "{sl:4}: {} {} 0A {:08X}:{:08X} 00:00000000 00000000     0        0 {} 1 0000000000000000 100 0 0 10 0",
                hex_ep(a, p),
                hex_ep(Ipv4Address::UNSPECIFIED, 0),
                s.queued.1,
                s.queued.0,
                s.ino
            ),
            149,
        );
        sl += 1;
    }
    let owner: BTreeMap<SocketHandle, u64> = seen
        .iter()
        .filter(|s| s.ty == SOCK_STREAM)
        .filter_map(|s| Some((s.h?, s.ino)))
        .collect();
    let lines: Vec<String> = stack::with_quiet(|_, set| {
        set.iter()
            .filter_map(|(h, sock)| {
                let Smol::Tcp(t) = sock else {
                    return None;
                };
                let state = t.state();
                if matches!(state, State::Closed | State::Listen) {
                    return None;
                }
                let ino = owner.get(&h).copied().unwrap_or(0);
                Some(format!(
                    "{} {} {:02X} {:08X}:{:08X} 00:00000000 00000000     0        0 {} 1 0000000000000000 20 4 0 10 -1",
                    ep_or_zero(t.local_endpoint()),
                    ep_or_zero(t.remote_endpoint()),
                    tcp_state(state),
                    t.send_queue(),
                    t.recv_queue(),
                    ino
                ))
            })
            .collect()
    })
    .unwrap_or_default();
    for l in lines {
        padded(&mut out, &format!("{sl:4}: {l}"), 149);
        sl += 1;
    }
    drop(socks);
    out
}

/// /proc/net/udp.
pub fn udp() -> String {
    let (socks, seen) = live();
    let mut out = String::new();
    padded(
        &mut out,
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
        127,
    );
    let open: Vec<(&Seen, SocketHandle)> = seen
        .iter()
        .filter(|s| s.ty != SOCK_STREAM)
        .filter_map(|s| Some((s, s.h?)))
        .collect();
    let queues: BTreeMap<SocketHandle, (usize, usize)> = stack::with_quiet(|_, set| {
        set.iter()
            .filter_map(|(h, sock)| match sock {
                Smol::Udp(u) => Some((h, (u.send_queue(), u.recv_queue()))),
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default();
    for (s, h) in open {
        let (a, p) = s.local.unwrap_or((Ipv4Address::UNSPECIFIED, 0));
        let (tx, rx) = queues.get(&h).copied().unwrap_or((0, 0));
        // TCP_ESTABLISHED when connected, TCP_CLOSE otherwise; the slot
        // is Linux's hash bucket (the port modulo its 128-slot table).
        padded(
            &mut out,
            &format!(
                "{:5}: {} {} {:02X} {:08X}:{:08X} 00:00000000 00000000     0        0 {} 2 0000000000000000 0",
                p % 128,
                hex_ep(a, p),
                ep_or_zero(s.peer),
                if s.peer.is_some() { 1 } else { 7 },
                tx,
                rx,
                s.ino
            ),
            127,
        );
    }
    drop(socks);
    out
}

/// The IPv6 tables' headers (no AF_INET6 sockets exist).
pub const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
pub const DGRAM6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n";
/// /proc/net/raw's header (no raw sockets exist).
pub const RAW: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n";

/// What /proc/net/sockstat counts of AF_INET.
pub struct Counts {
    /// Family sockets alive (each is a socket inode).
    pub sockets: usize,
    /// TCP sockets in use: listeners plus connections in any state but
    /// closed and TIME-WAIT (orphans included, as Linux counts them).
    pub tcp_inuse: usize,
    pub tcp_orphan: usize,
    pub tcp_tw: usize,
    /// TCP sockets allocated: the family's plus orphans.
    pub tcp_alloc: usize,
    /// Pages of queued TCP data.
    pub tcp_mem: usize,
    pub udp_inuse: usize,
    pub udp_mem: usize,
}

pub fn counts() -> Counts {
    super::sweep();
    let (socks, seen) = live();
    let listeners = seen
        .iter()
        .filter(|s| s.ty == SOCK_STREAM && s.listen.is_some())
        .count();
    let backlog: Vec<SocketHandle> = seen
        .iter()
        .filter_map(|s| s.listen.as_ref())
        .flatten()
        .copied()
        .collect();
    let mut c = Counts {
        sockets: seen.len(),
        tcp_inuse: listeners,
        tcp_orphan: ORPHANS.lock().len(),
        tcp_tw: 0,
        tcp_alloc: seen.iter().filter(|s| s.ty == SOCK_STREAM).count(),
        tcp_mem: 0,
        udp_inuse: seen
            .iter()
            .filter(|s| s.ty != SOCK_STREAM && s.h.is_some())
            .count(),
        udp_mem: 0,
    };
    c.tcp_alloc += c.tcp_orphan;
    let (mut tcp_bytes, mut udp_bytes) = (0, 0);
    stack::with_quiet(|_, set| {
        for (h, sock) in set.iter() {
            match sock {
                Smol::Tcp(t) => {
                    let st = t.state();
                    tcp_bytes += t.send_queue() + t.recv_queue();
                    match st {
                        State::Closed | State::Listen => {}
                        State::TimeWait => c.tcp_tw += 1,
                        // A listener's backlog connection counts once it
                        // is established, as Linux's request socks do not.
                        _ if backlog.contains(&h) && st == State::SynReceived => {}
                        _ => c.tcp_inuse += 1,
                    }
                }
                Smol::Udp(u) => udp_bytes += u.send_queue() + u.recv_queue(),
                _ => {}
            }
        }
    });
    c.tcp_mem = tcp_bytes.div_ceil(4096);
    c.udp_mem = udp_bytes.div_ceil(4096);
    drop(socks);
    c
}
