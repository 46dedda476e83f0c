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
//! counted). Queues are bounded ([`QUEUED`] datagrams each way per
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
/// Largest record (a projection).
const MAX_RECORD: usize = braid::projection::PROJ_LEN;

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
}

pub struct Wire {
    me: usize,
    peers: Vec<Ipv4Address>,
    socks: Vec<Option<SocketHandle>>,
    waker: Waker,
    pub counters: Counters,
}

impl Wire {
    /// Opens one socket per peer. None if there is no stack or a port is
    /// taken.
    pub fn open(me: usize, peers: Vec<Ipv4Address>) -> Option<Wire> {
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
        Some(Wire {
            me,
            peers,
            socks,
            waker,
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
        let mut foreign = 0;
        let peers = &self.peers;
        let waker = &self.waker;
        stack::with_quiet(|_, set| {
            for (k, h) in self.socks.iter().enumerate() {
                let Some(h) = h else { continue };
                let s = set.get_mut::<udp::Socket>(*h);
                for _ in 0..QUEUED {
                    let Ok((data, meta)) = s.recv() else { break };
                    let from_peer = meta.endpoint.addr == peers[k].into()
                        && meta.endpoint.port == BASE + self.me as u16;
                    if from_peer {
                        got.push((k, data.to_vec()));
                    } else {
                        foreign += 1;
                    }
                }
                // Wakers are one-shot.
                s.register_recv_waker(waker);
            }
        });
        self.counters.received += got.len() as u64;
        self.counters.foreign += foreign;
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
        stack::with(|_, set| {
            for (k, bytes) in out {
                let Some(Some(h)) = socks.get(*k) else {
                    dropped += 1;
                    continue;
                };
                let to = IpEndpoint::new(peers[*k].into(), BASE + me);
                match set.get_mut::<udp::Socket>(*h).send_slice(bytes, to) {
                    Ok(()) => sent += 1,
                    Err(_) => dropped += 1,
                }
            }
        });
        self.counters.sent += sent;
        self.counters.send_dropped += dropped;
    }
}
