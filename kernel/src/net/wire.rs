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
//!
//! **Two MTUs on one interface.** smoltcp gives an interface one MTU;
//! ours is the loopback's 64 KiB, NIC or not, so looped TCP carries
//! segments of up to 65,495 bytes (Linux's lo: 64 KiB). What leaves
//! through the NIC must fit its 1500: a TCP segment's size is the
//! smaller of our MTU and the peer's MSS, and the peer's MSS comes from
//! its SYN, which it sizes from its own MTU, so only two kinds of frame
//! need care on the way out: our SYNs (and SYN-ACKs), whose MSS option
//! smoltcp computes from the 64 KiB MTU, are clamped to the NIC's 1460
//! (the checksum recomputed: [`clamp_mss`]), as a router's MSS clamping
//! does; and any other frame larger than the NIC's (a UDP datagram over
//! 1472 bytes: smoltcp does not fragment) is dropped and counted. SYNs
//! coming in through the NIC are clamped the same way, so a peer that
//! offers more than 1460 (jumbo frames, or a lie) still gets segments
//! that fit.
//!
//! **No TCP/UDP checksums on the loopback.** A looped frame never leaves
//! kernel memory, so a checksum over it protects nothing (Linux's lo
//! marks its packets CHECKSUM_UNNECESSARY and computes none). smoltcp is
//! told the device handles TCP and UDP checksums ([`Device::capabilities`]:
//! `Checksum::None`, so it leaves the field zero and verifies nothing),
//! and this layer does what a NIC without checksum offload needs:
//! frames going out through the NIC get their TCP/UDP checksum filled in
//! ([`fill_l4_checksum`]), and frames coming in through it are verified
//! and dropped (counted as `rx_errors`) when wrong ([`l4_checksum_ok`]),
//! as smoltcp did before. IPv4 header and ICMP checksums stay with
//! smoltcp (20-byte headers, and ICMP payloads reach users as they are).
//!
//! [`Device::capabilities`]: phy::Device::capabilities

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use hal::virtio_net::{TxOffload, MAX_TSO_FRAME};
use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    checksum, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket, UdpPacket,
};

use super::device::{self, Nic, Queues, Stats, MAX_FRAME, QUEUE_SIZE};

/// Frames the loopback holds at once (more are dropped and counted).
const LOOP_MAX: usize = 512;
/// Frame buffers kept for reuse.
const SPARE_MAX: usize = 16;
/// The interface's IP MTU, the loopback's (Linux's lo has 65536; IPv4
/// packets stop at 65535). Frames for the NIC are held to its 1500.
pub const LO_MTU: usize = 65535;
/// The MSS a SYN sent through the NIC may offer (1500 - 20 - 20).
pub(super) const NIC_MSS: u16 = (MAX_FRAME - ETH_HLEN - 40) as u16;
/// The Ethernet header the loopback frames carry (and lo counts, as
/// Linux's does).
const ETH_HLEN: usize = 14;

/// A frame: the first `len` bytes of `buf`. A buffer keeps the length
/// it grew to (its bytes past `len` are an earlier frame's), so reusing
/// it for a frame no longer than that clears nothing (see
/// [`frame_buffer`]).
struct Frame {
    buf: Vec<u8>,
    len: usize,
}

impl Frame {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

/// The loopback's queue of frames in flight and its counters.
pub struct Loop {
    queue: VecDeque<Frame>,
    spare: Vec<Vec<u8>>,
    pub stats: Stats,
    /// The interface's own (non-loopback) IPv4 address: frames to it
    /// loop too.
    pub own: Option<Ipv4Address>,
}

impl Loop {
    fn push(&mut self, frame: Frame) {
        if self.queue.len() >= LOOP_MAX {
            self.stats.tx_dropped += 1;
            self.recycle(frame);
            return;
        }
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += frame.len as u64;
        self.queue.push_back(frame);
    }

    fn recycle(&mut self, frame: Frame) {
        if self.spare.len() < SPARE_MAX {
            self.spare.push(frame.buf);
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

/// Bytes of a reused frame buffer cleared before smoltcp writes a frame
/// into it: more than any header it writes (Ethernet 14, IPv4 20, TCP up
/// to 60), so padding it skips (TCP option padding after the end-of-list
/// byte) never carries bytes of an earlier frame.
const HEADER_CLEAR: usize = 128;

/// A frame of `len` bytes in `buf` for smoltcp to write into. Only the
/// header area is cleared (and what the buffer grows by): smoltcp writes
/// every byte of a segment's or datagram's payload (it copies exactly
/// the payload's length), and clearing all of a 64 KiB looped segment
/// first was a memset per segment (an eighth of a guest instruction per
/// byte under -icount, a tenth of a bulk transfer's).
fn frame_buffer(mut buf: Vec<u8>, len: usize) -> Frame {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    buf[..len.min(HEADER_CLEAR)].fill(0);
    Frame { buf, len }
}

/// The NIC (optional) and the loopback, as one smoltcp device.
pub struct Wire {
    pub nic: Option<Nic>,
    pub lo: Loop,
    /// The looped frame smoltcp is reading.
    rx: Frame,
    /// Looped frames still to be taken in this round of polling: bounds
    /// the work of one poll (see `stack::poll`).
    budget: usize,
    /// Frames received before and handed back for smoltcp to take again
    /// (parked SYNs, `inet::synbusy`): first in line, not counted again.
    again: VecDeque<Vec<u8>>,
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
            rx: Frame {
                buf: Vec::new(),
                len: 0,
            },
            budget: 0,
            again: VecDeque::new(),
        }
    }

    /// Queues frames received earlier for smoltcp to take again.
    pub fn receive_again(&mut self, frames: Vec<Vec<u8>>) {
        self.again.extend(frames);
    }

    /// Lets the next round take up to `n` looped frames.
    pub fn refill(&mut self, n: usize) {
        self.budget = n;
    }

    /// Whether frames wait (looped, or received by the NIC).
    pub fn pending(&self) -> bool {
        !self.lo.queue.is_empty()
            || !self.again.is_empty()
            || self.nic.as_ref().is_some_and(|n| n.has_rx())
    }
}

pub struct RxTok<'a> {
    frame: &'a [u8],
}

pub struct TxTok<'a> {
    nic: Option<(&'a mut Queues, &'a mut Stats)>,
    lo: &'a mut Loop,
    /// The frame smoltcp is answering (empty when it sends unprompted).
    rx: &'a [u8],
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
        let buf = self.lo.spare.pop().unwrap_or_default();
        let mut frame = frame_buffer(buf, len);
        let r = f(frame.bytes_mut());
        if super::inet::synbusy::drop_reset(frame.bytes()) {
            // A listener was busy, not absent: the SYN waits for it (or
            // the peer resends it).
            super::inet::synbusy::park(self.rx, frame.bytes());
            self.lo.recycle(frame);
        } else if is_local(frame.bytes(), self.lo.own) {
            self.lo.push(frame);
        } else {
            // Without a NIC nothing else is reachable: dropped.
            if let Some((q, stats)) = self.nic {
                let f = frame.bytes_mut();
                clamp_mss(f, NIC_MSS);
                let (csum, tso4) = (q.csum_offload(), q.tso4());
                match nic_offload(f, csum, tso4) {
                    Some(offload) => device::transmit(q, stats, f, offload),
                    None => stats.tx_errors += 1,
                }
            }
            self.lo.recycle(frame);
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
            let f = match self.again.pop_front() {
                Some(buf) => Some(Frame {
                    len: buf.len(),
                    buf,
                }),
                None => self.lo.queue.pop_front().inspect(|f| {
                    self.lo.stats.rx_packets += 1;
                    self.lo.stats.rx_bytes += f.len as u64;
                }),
            };
            if let Some(f) = f {
                self.budget -= 1;
                let old = core::mem::replace(&mut self.rx, f);
                self.lo.recycle(old);
                return Some((
                    RxTok {
                        frame: self.rx.bytes(),
                    },
                    TxTok {
                        nic: self.nic.as_mut().map(|n| (&mut *n.queues, &mut n.stats)),
                        lo: &mut self.lo,
                        rx: self.rx.bytes(),
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
                rx: &nic.rx_frame[..n],
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxTok<'_>> {
        if let Some(n) = self.nic.as_mut() {
            if !n.can_send() {
                return None;
            }
        }
        Some(TxTok {
            nic: self.nic.as_mut().map(|n| (&mut *n.queues, &mut n.stats)),
            lo: &mut self.lo,
            rx: &[],
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = LO_MTU + ETH_HLEN;
        caps.max_burst_size = Some(QUEUE_SIZE / 2);
        // TCP and UDP checksums: here, for the NIC's frames only (above).
        caps.checksum.tcp = Checksum::None;
        caps.checksum.udp = Checksum::None;
        caps
    }
}

/// The IP MTU of lo (`eth0` false) or of the NIC.
pub fn ip_mtu(eth0: bool) -> usize {
    if eth0 {
        MAX_FRAME - ETH_HLEN
    } else {
        LO_MTU
    }
}

/// If `f` is an Ethernet frame with an IPv4 TCP SYN whose MSS option
/// offers more than `mss`, lowers the option to `mss` and recomputes the
/// TCP checksum. Anything else (or a malformed frame) is left alone.
pub(super) fn clamp_mss(f: &mut [u8], mss: u16) {
    rewrite_mss(f, |offered| (offered > mss).then_some(mss));
}

/// The MSS smoltcp is told a peer on the NIC offers when the NIC cuts
/// segments itself (TSO): what fills a 64 KiB frame (as Linux's GSO
/// packets), so that it builds segments as large as a window allows and
/// the device sends them as 1460-byte ones.
pub(super) const TSO_MSS: u16 = (MAX_TSO_FRAME - ETH_HLEN - 40) as u16;

/// For a NIC with TSO: a peer's SYN offering at least the NIC's MSS is
/// taken in as offering [`TSO_MSS`] (what it offered is what the device
/// cuts to: [`nic_offload`] uses the NIC's MTU, and a peer that offers
/// less keeps its own figure, so smoltcp never sends it more).
pub(super) fn raise_mss(f: &mut [u8]) {
    rewrite_mss(f, |offered| (offered >= NIC_MSS).then_some(TSO_MSS));
}

/// If `f` is an Ethernet frame with an IPv4 TCP SYN with an MSS option
/// for which `new` gives another value, writes that value and recomputes
/// the TCP checksum. Anything else (or a malformed frame) is left alone.
fn rewrite_mss(f: &mut [u8], new: impl Fn(u16) -> Option<u16>) {
    let Some(ip) = f.get(ETH_HLEN..) else { return };
    if f[12..14] != [0x08, 0x00] || ip.len() < 20 || ip[9] != 6 {
        return;
    }
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ihl < 20 || total < ihl + 20 || total > ip.len() {
        return;
    }
    let (src, dst) = (
        [ip[12], ip[13], ip[14], ip[15]],
        [ip[16], ip[17], ip[18], ip[19]],
    );
    let tcp = &mut f[ETH_HLEN + ihl..ETH_HLEN + total];
    let doff = usize::from(tcp[12] >> 4) * 4;
    if tcp[13] & 0x02 == 0 || doff < 20 || doff > tcp.len() {
        return;
    }
    let mut i = 20;
    let mut changed = false;
    while i < doff {
        match tcp[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&len) = tcp.get(i + 1) else { break };
                let len = usize::from(len);
                if len < 2 || i + len > doff {
                    break;
                }
                if kind == 2 && len == 4 {
                    if let Some(mss) = new(u16::from_be_bytes([tcp[i + 2], tcp[i + 3]])) {
                        tcp[i + 2..i + 4].copy_from_slice(&mss.to_be_bytes());
                        changed = true;
                    }
                }
                i += len;
            }
        }
    }
    if !changed {
        return;
    }
    // The pseudo-header (addresses, protocol, length), then the segment
    // with its checksum field zero.
    tcp[16..18].fill(0);
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&src);
    add(&dst);
    add(&[0, 6]);
    add(&(tcp.len() as u16).to_be_bytes());
    add(tcp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Readies a frame for the NIC and says what the device is to do with
/// it; None when the device cannot send it (larger than a frame, and not
/// a TCP segment the device can cut). A TCP segment, when the device
/// completes checksums, carries the pseudo-header's sum for the device to
/// finish (as Linux leaves it for a CHECKSUM_PARTIAL packet); one larger
/// than a frame is cut by the device into segments that each fit the
/// NIC's MTU behind the same headers (TSO). Anything else gets its
/// checksum here.
pub(super) fn nic_offload(f: &mut [u8], csum: bool, tso4: bool) -> Option<TxOffload> {
    let big = f.len() > MAX_FRAME;
    if f.len() > MAX_TSO_FRAME {
        return None;
    }
    if csum {
        if let Some((mut ip, _, _)) = l4_of(f) {
            let ihl = usize::from(ip.header_len());
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            if ip.next_header() == IpProtocol::Tcp {
                if let Ok(mut t) = TcpPacket::new_checked(ip.payload_mut()) {
                    let len = t.as_ref().len() as u32;
                    t.set_checksum(checksum::pseudo_header_v4(&s, &d, IpProtocol::Tcp, len));
                    let start = (ETH_HLEN + ihl) as u16;
                    let headers = ihl + usize::from(t.header_len());
                    let tso = (big && tso4).then(|| {
                        (
                            (ETH_HLEN + headers) as u16,
                            (MAX_FRAME - ETH_HLEN - headers) as u16,
                        )
                    });
                    if big && tso.is_none() {
                        return None;
                    }
                    return Some(TxOffload {
                        csum: Some((start, 16)),
                        tso4: tso,
                    });
                }
            }
        }
    }
    if big {
        return None;
    }
    fill_l4_checksum(f);
    Some(TxOffload::default())
}

/// The IPv4 packet in Ethernet frame `f` with its source and
/// destination, if `f` carries a whole (unfragmented) TCP or UDP one.
fn l4_of(f: &mut [u8]) -> Option<(Ipv4Packet<&mut [u8]>, IpAddress, IpAddress)> {
    if f.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = Ipv4Packet::new_checked(f.get_mut(ETH_HLEN..)?).ok()?;
    if ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    if !matches!(ip.next_header(), IpProtocol::Tcp | IpProtocol::Udp) {
        return None;
    }
    let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
    Some((ip, src, dst))
}

/// Fills in the TCP or UDP checksum of a frame that leaves through the
/// NIC (smoltcp left it zero). Anything else is left alone.
pub(super) fn fill_l4_checksum(f: &mut [u8]) {
    let Some((mut ip, src, dst)) = l4_of(f) else {
        return;
    };
    let proto = ip.next_header();
    let payload = ip.payload_mut();
    if proto == IpProtocol::Tcp {
        if let Ok(mut t) = TcpPacket::new_checked(payload) {
            t.fill_checksum(&src, &dst);
        }
    } else if let Ok(mut u) = UdpPacket::new_checked(payload) {
        u.fill_checksum(&src, &dst);
    }
}

/// Whether the TCP or UDP checksum of a frame received by the NIC is
/// right (true for anything else, which smoltcp checks or drops itself;
/// and for UDP sent without a checksum, as RFC 768 allows).
pub(super) fn l4_checksum_ok(f: &mut [u8]) -> bool {
    let Some((mut ip, src, dst)) = l4_of(f) else {
        return true;
    };
    let proto = ip.next_header();
    let payload = ip.payload_mut();
    if proto == IpProtocol::Tcp {
        match TcpPacket::new_checked(&*payload) {
            Ok(t) => t.verify_checksum(&src, &dst),
            // Truncated: smoltcp drops it.
            Err(_) => true,
        }
    } else {
        match UdpPacket::new_checked(&*payload) {
            Ok(u) => u.checksum() == 0 || u.verify_checksum(&src, &dst),
            Err(_) => true,
        }
    }
}
