//! The wire between machines: the braid's records in UDP datagrams over
//! the smoltcp stack (docs/architecture.md says why UDP rather than an
//! EtherType of our own).
//!
//! One smoltcp UDP socket per peer machine, so a peer that does not
//! answer ARP (still booting, or dead with its entry expired) holds up
//! only its own datagrams: smoltcp keeps a datagram whose neighbour is
//! unresolved at the head of its socket's queue. Machine `me` talks to
//! machine `k` from local port `BASE + k` to `k`'s port `BASE + me`, so
//! the port a datagram arrives on names its sender, and the source
//! address must be that peer's too (anything else is dropped and
//! counted), and its last 16 bytes must name this machine's build
//! (anything else is refused, counted, and logged once per build and
//! peer). Queues are bounded ([`QUEUED`] datagrams each way per
//! peer); a full send queue drops the datagram and counts it (the braid
//! tolerates loss: the next interval sends a fresh projection).

use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Waker;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, Ipv4Address};

use crate::net::stack;

/// Port of machine 0's socket for machine `me`; `BASE + k` in general.
pub const BASE: u16 = 7400;
/// Datagrams queued per direction per peer.
const QUEUED: usize = 32;
/// Every datagram ends with the sender's build name, NUL-padded: a
/// machine running another build (whose records may mean something else)
/// is refused before its records reach the protocol.
pub const BUILD_LEN: usize = 16;
/// Largest datagram (a projection and the build name).
const MAX_RECORD: usize = braid::projection::PROJ_LEN + BUILD_LEN;

/// `name` as the trailer of a datagram (cut to [`BUILD_LEN`] bytes).
pub fn build_tag(name: &str) -> [u8; BUILD_LEN] {
    let mut t = [0u8; BUILD_LEN];
    let n = name.len().min(BUILD_LEN);
    t[..n].copy_from_slice(&name.as_bytes()[..n]);
    t
}

/// A trailer as text, for the log.
fn tag_name(t: &[u8]) -> &str {
    let end = t.iter().position(|&b| b == 0).unwrap_or(t.len());
    core::str::from_utf8(&t[..end]).unwrap_or("(not UTF-8)")
}

/// Set by smoltcp when a datagram lands in one of our sockets.
static RX: AtomicBool = AtomicBool::new(true);

struct RxFlag;

impl Wake for RxFlag {
    fn wake(self: Arc<Self>) {
        RX.store(true, Ordering::Release);
    }
}

/// Counters /proc/braid prints.
#[derive(Clone, Copy, Default)]
pub struct Counters {
    pub sent: u64,
    pub send_dropped: u64,
    pub received: u64,
    pub foreign: u64,
    /// Datagrams from a peer running another build (or too short to say).
    pub other_build: u64,
}

pub struct Wire {
    me: usize,
    peers: Vec<Ipv4Address>,
    socks: Vec<Option<SocketHandle>>,
    waker: Waker,
    build: [u8; BUILD_LEN],
    /// The other build each peer was last refused for (logged once).
    refused: Vec<Option<[u8; BUILD_LEN]>>,
    pub counters: Counters,
}

impl Wire {
    /// Opens one socket per peer. None if there is no stack or a port is
    /// taken.
    pub fn open(me: usize, peers: Vec<Ipv4Address>, build: [u8; BUILD_LEN]) -> Option<Wire> {
        let waker = Waker::from(Arc::new(RxFlag));
        let mut socks = vec![None; peers.len()];
        for (k, s) in socks.iter_mut().enumerate() {
            if k == me {
                continue;
            }
            let port = BASE + k as u16;
            // A program's bind to the port gets EADDRINUSE.
            if crate::net::inet::reserve_port(crate::net::socket::SOCK_DGRAM, port).is_err() {
                crate::klog!("cluster: UDP port {port} is taken");
                return None;
            }
            let meta = || vec![udp::PacketMetadata::EMPTY; QUEUED];
            let mut sock = udp::Socket::new(
                udp::PacketBuffer::new(meta(), vec![0; QUEUED * MAX_RECORD]),
                udp::PacketBuffer::new(meta(), vec![0; QUEUED * MAX_RECORD]),
            );
            sock.bind(port).ok()?;
            sock.register_recv_waker(&waker);
            *s = Some(stack::with_quiet(|_, set| set.add(sock))?);
        }
        let n = peers.len();
        Some(Wire {
            me,
            peers,
            socks,
            waker,
            build,
            refused: vec![None; n],
            counters: Counters::default(),
        })
    }

    /// Whether a datagram may be waiting (cleared by [`Wire::receive`]).
    pub fn maybe_rx() -> bool {
        RX.load(Ordering::Acquire)
    }

    /// Takes every datagram waiting, as (sender machine, bytes), at most
    /// `QUEUED` per peer.
    pub fn receive(&mut self) -> Vec<(usize, Vec<u8>)> {
        RX.store(false, Ordering::Release);
        let mut got = Vec::new();
        let (mut foreign, mut other) = (0, Vec::new());
        let peers = &self.peers;
        let waker = &self.waker;
        let build = &self.build;
        stack::with_quiet(|_, set| {
            for (k, h) in self.socks.iter().enumerate() {
                let Some(h) = h else { continue };
                let s = set.get_mut::<udp::Socket>(*h);
                for _ in 0..QUEUED {
                    let Ok((data, meta)) = s.recv() else { break };
                    let from_peer = meta.endpoint.addr == peers[k].into()
                        && meta.endpoint.port == BASE + self.me as u16;
                    if !from_peer {
                        foreign += 1;
                        continue;
                    }
                    let Some(at) = data.len().checked_sub(BUILD_LEN) else {
                        other.push((k, [0; BUILD_LEN]));
                        continue;
                    };
                    if data[at..] == build[..] {
                        got.push((k, data[..at].to_vec()));
                    } else {
                        let mut t = [0; BUILD_LEN];
                        t.copy_from_slice(&data[at..]);
                        other.push((k, t));
                    }
                }
                // Wakers are one-shot.
                s.register_recv_waker(waker);
            }
        });
        self.counters.received += got.len() as u64;
        self.counters.foreign += foreign;
        self.counters.other_build += other.len() as u64;
        for (k, t) in other {
            if self.refused[k] != Some(t) {
                self.refused[k] = Some(t);
                crate::klog!(
                    "cluster: machine {k} runs build {} (ours {}): its frames are refused",
                    tag_name(&t),
                    tag_name(&self.build)
                );
            }
        }
        got
    }

    /// Sends each (machine, record) and polls the stack so they leave now.
    pub fn send(&mut self, out: &[(usize, Vec<u8>)]) {
        if out.is_empty() {
            return;
        }
        let (mut sent, mut dropped) = (0, 0);
        let me = self.me as u16;
        let peers = &self.peers;
        let socks = &self.socks;
        let build = &self.build;
        stack::with(|_, set| {
            let mut buf = [0u8; MAX_RECORD];
            for (k, bytes) in out {
                let Some(Some(h)) = socks.get(*k) else {
                    dropped += 1;
                    continue;
                };
                let n = bytes.len() + BUILD_LEN;
                if n > MAX_RECORD {
                    dropped += 1;
                    continue;
                }
                buf[..bytes.len()].copy_from_slice(bytes);
                buf[bytes.len()..n].copy_from_slice(build);
                let to = IpEndpoint::new(peers[*k].into(), BASE + me);
                match set.get_mut::<udp::Socket>(*h).send_slice(&buf[..n], to) {
                    Ok(()) => sent += 1,
                    Err(_) => dropped += 1,
                }
            }
        });
        self.counters.sent += sent;
        self.counters.send_dropped += dropped;
    }
}
