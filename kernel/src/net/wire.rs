//! The one device smoltcp's interface sends on and receives from: the
//! NIC, if the machine has one, and the loopback.
//!
//! **Loopback is routing, not a second interface.** A frame smoltcp
//! transmits goes back into its own receive path, instead of out of the
//! NIC, when it is addressed to the machine itself: IPv4 to 127.0.0.0/8
//! or to the interface's own address, and ARP asking for one of those
//! (smoltcp answers its own ARP request, and so learns its own MAC for
//! them; the exchange never leaves the machine). The interface holds
//! 127.0.0.1/8 beside the NIC's address. So one interface and one socket
//! set serve both paths, and a socket bound to 0.0.0.0 is one smoltcp
//! socket reachable through either; a second smoltcp interface on
//! smoltcp's `Loopback` device would need a second socket set, with a
//! listener or an unbound UDP socket kept in both
//! (docs/architecture.md). Without a NIC the loopback is the whole wire.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::Ipv4Address;

use super::device::{self, Nic, Queues, Stats, MAX_FRAME, QUEUE_SIZE};

/// Frames the loopback holds at once (more are dropped and counted).
const LOOP_MAX: usize = 512;
/// Frame buffers kept for reuse.
const SPARE_MAX: usize = 16;
/// The IP MTU when the loopback is the whole wire (Linux's lo has
/// 65536; IPv4 packets stop at 65535). With a NIC the interface has one
/// MTU, the NIC's 1500.
pub const LO_ALONE_MTU: usize = 65535;
/// The Ethernet header the loopback frames carry (and lo counts, as
/// Linux's does).
const ETH_HLEN: usize = 14;

/// The loopback's queue of frames in flight and its counters.
pub struct Loop {
    queue: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    pub stats: Stats,
    /// The interface's own (non-loopback) IPv4 address: frames to it
    /// loop too.
    pub own: Option<Ipv4Address>,
}

impl Loop {
    fn push(&mut self, frame: Vec<u8>) {
        if self.queue.len() >= LOOP_MAX {
            self.stats.tx_dropped += 1;
            self.recycle(frame);
            return;
        }
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += frame.len() as u64;
        self.queue.push_back(frame);
    }

    fn recycle(&mut self, frame: Vec<u8>) {
        if self.spare.len() < SPARE_MAX {
            self.spare.push(frame);
        }
    }
}

/// Whether a frame is addressed to this machine: IPv4 to 127/8 or to
/// `own`, or ARP for one of those.
fn is_local(f: &[u8], own: Option<Ipv4Address>) -> bool {
    let target = match f.get(12..14) {
        Some([0x08, 0x00]) => f.get(30..34),
        Some([0x08, 0x06]) => f.get(38..42),
        _ => None,
    };
    target.is_some_and(|t| t[0] == 127 || own.is_some_and(|o| o.octets() == t))
}

/// The NIC (optional) and the loopback, as one smoltcp device.
pub struct Wire {
    pub nic: Option<Nic>,
    pub lo: Loop,
    /// The looped frame smoltcp is reading.
    rx: Vec<u8>,
    /// Looped frames still to be taken in this round of polling: bounds
    /// the work of one poll (see `stack::poll`).
    budget: usize,
}

impl Wire {
    pub fn new(nic: Option<Nic>) -> Wire {
        Wire {
            nic,
            lo: Loop {
                queue: VecDeque::new(),
                spare: Vec::new(),
                stats: Stats::default(),
                own: None,
            },
            rx: Vec::new(),
            budget: 0,
        }
    }

    /// Lets the next round take up to `n` looped frames.
    pub fn refill(&mut self, n: usize) {
        self.budget = n;
    }

    /// Whether frames wait (looped, or received by the NIC).
    pub fn pending(&self) -> bool {
        !self.lo.queue.is_empty() || self.nic.as_ref().is_some_and(|n| n.has_rx())
    }
}

pub struct RxTok<'a> {
    frame: &'a [u8],
}

pub struct TxTok<'a> {
    nic: Option<(&'a mut Queues, &'a mut Stats)>,
    lo: &'a mut Loop,
}

impl phy::RxToken for RxTok<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // Built in a kernel buffer first: where it goes depends on what
        // smoltcp writes.
        let mut buf = self.lo.spare.pop().unwrap_or_default();
        buf.clear();
        buf.resize(len, 0);
        let r = f(&mut buf);
        if super::inet::synbusy::drop_reset(&buf) {
            // A listener was busy, not absent: the peer resends its SYN.
            self.lo.recycle(buf);
        } else if is_local(&buf, self.lo.own) {
            self.lo.push(buf);
        } else {
            // Without a NIC nothing else is reachable: dropped.
            if let Some((q, stats)) = self.nic {
                device::transmit(q, stats, &buf);
            }
            self.lo.recycle(buf);
        }
        r
    }
}

impl phy::Device for Wire {
    type RxToken<'a>
        = RxTok<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxTok<'a>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(RxTok<'_>, TxTok<'_>)> {
        if self.budget > 0 {
            if let Some(f) = self.lo.queue.pop_front() {
                self.budget -= 1;
                self.lo.stats.rx_packets += 1;
                self.lo.stats.rx_bytes += f.len() as u64;
                let old = core::mem::replace(&mut self.rx, f);
                self.lo.recycle(old);
                return Some((
                    RxTok { frame: &self.rx },
                    TxTok {
                        nic: self.nic.as_mut().map(|n| (&mut *n.queues, &mut n.stats)),
                        lo: &mut self.lo,
                    },
                ));
            }
        }
        let nic = self.nic.as_mut()?;
        let n = nic.receive()?;
        Some((
            RxTok {
                frame: &nic.rx_frame[..n],
            },
            TxTok {
                nic: Some((&mut *nic.queues, &mut nic.stats)),
                lo: &mut self.lo,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxTok<'_>> {
        if let Some(n) = self.nic.as_mut() {
            if !n.queues.can_send() {
                return None;
            }
        }
        Some(TxTok {
            nic: self.nic.as_mut().map(|n| (&mut *n.queues, &mut n.stats)),
            lo: &mut self.lo,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = if self.nic.is_some() {
            MAX_FRAME
        } else {
            LO_ALONE_MTU + ETH_HLEN
        };
        caps.max_burst_size = Some(QUEUE_SIZE / 2);
        caps
    }
}

/// The IP MTU of the interface, lo's and eth0's alike.
pub fn ip_mtu(has_nic: bool) -> usize {
    if has_nic {
        MAX_FRAME - ETH_HLEN
    } else {
        LO_ALONE_MTU
    }
}
