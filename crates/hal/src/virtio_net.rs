//! The queues of a virtio-net device with their buffers: a pool of receive
//! buffers kept posted to the device, and transmit buffers that are reused
//! once the device has sent them (no waiting for the device on send).
//!
//! Packets may be sent with the device's help when it offers it
//! ([`crate::virtio_offload`]): a partial TCP checksum for the device to
//! complete, and TCPv4 segments of up to 64 KiB for it to cut into
//! MSS-sized ones ([`TxOffload`]); those go in a pool of 64 KiB buffers
//! set aside when the device takes the offload.
//!
//! `virtio-drivers`' raw net driver leaves buffer lifetimes to its caller
//! through `unsafe` functions; this wrapper owns the buffers, so the
//! kernel's driver above it is safe code. Buffers are whole DMA frames,
//! physically contiguous, so the device reads and writes them in place.

use alloc::boxed::Box;
use alloc::vec::Vec;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::Transport;
use virtio_drivers::Error;

use crate::dma::{DmaBuffer, DmaHal};
use crate::virtio_offload::{has_tso4, OffloadTransport, OFFLOADS};

/// One frame per buffer: a full Ethernet frame plus the virtio header fits.
const BUF_PAGES: usize = 1;
/// A large segment's buffer: 64 KiB, as Linux's largest GSO packet.
const BIG_PAGES: usize = 16;
/// The virtio-net header's size (12 bytes modern, 10 legacy).
const HDR_MAX: usize = 12;
/// The largest frame (Ethernet header on) a large-segment buffer holds.
pub const MAX_TSO_FRAME: usize = BIG_PAGES * 4096 - HDR_MAX;
/// Large-segment buffers set aside when the device takes TSO: what 32
/// segments of 64 KiB in flight need (2 MiB), enough to keep a device busy
/// that drains far faster than one CPU fills it.
const BIG_POOL: usize = 32;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
const HDR_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
const HDR_GSO_TCPV4: u8 = 1;

/// What the device is asked to do with a packet it sends: the fields of
/// its virtio-net header (virtio 1.2, 5.1.6.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// (csum_start, csum_offset): sum the bytes from csum_start to the
    /// end, starting from the pseudo-header sum found at csum_start +
    /// csum_offset, and store the result there.
    pub csum: Option<(u16, u16)>,
    /// (hdr_len, gso_size): a TCPv4 segment to cut into segments of
    /// gso_size payload bytes, each behind a copy of its first hdr_len
    /// bytes (headers), as TSO does. Needs `csum`.
    pub tso4: Option<(u16, u16)>,
}

/// A virtio-net device's queues of `QS` entries each.
pub struct NetQueues<T: Transport, const QS: usize> {
    raw: VirtIONetRaw<DmaHal, OffloadTransport<T>, QS>,
    /// Offloads the device took (feature bits of `OFFLOADS`), with the
    /// big buffers TSO needs; 0 when there are none.
    offloads: u64,
    /// Receive buffers posted to the device, by the token it returns.
    rx: Vec<Option<DmaBuffer>>,
    /// Transmit buffers the device holds, by token, with the length sent.
    tx_busy: Vec<Option<(DmaBuffer, usize)>>,
    /// Transmit buffers ready for use.
    tx_free: Vec<DmaBuffer>,
    /// Large-segment buffers ready for use (TSO only).
    big_free: Vec<DmaBuffer>,
    /// Packets the device holds (entries of `tx_busy` in use).
    tx_in_flight: usize,
}

impl<T: Transport, const QS: usize> NetQueues<T, QS> {
    /// Initialises the device and posts `QS` receive buffers. Boxed: the
    /// queues are several KiB (two virtqueues' shadow descriptors), and
    /// moving them through the boot stack's frames overflowed it.
    /// `offload`: whether to take the transmit offloads the device offers.
    pub fn new(mut transport: T, offload: bool) -> Result<Box<Self>, Error> {
        // The offloads this device offers, read before the driver's own
        // negotiation resets it and accepts them with its own choice.
        let offered = if offload {
            transport.read_device_features() & OFFLOADS
        } else {
            0
        };
        let raw = VirtIONetRaw::<DmaHal, _, QS>::new(OffloadTransport::new(transport, offered))?;
        let mut q = Box::new(NetQueues {
            raw,
            offloads: offered,
            rx: (0..QS).map(|_| None).collect(),
            tx_busy: (0..QS).map(|_| None).collect(),
            tx_free: Vec::new(),
            big_free: Vec::new(),
            tx_in_flight: 0,
        });
        for _ in 0..QS {
            let buf = DmaBuffer::new(BUF_PAGES).ok_or(Error::DmaError)?;
            q.post_rx(buf)?;
        }
        if has_tso4(q.offloads) {
            q.big_free = (0..BIG_POOL)
                .map_while(|_| DmaBuffer::new(BIG_PAGES))
                .collect();
            if q.big_free.len() < BIG_POOL {
                // Contiguous memory was short: the device keeps its
                // checksum offload, and segments stay MTU-sized.
                q.big_free.clear();
                q.offloads &= !crate::virtio_offload::F_HOST_TSO4;
            }
        }
        Ok(q)
    }

    /// Whether the device cuts large TCPv4 segments (TSO) for us.
    pub fn tso4(&self) -> bool {
        has_tso4(self.offloads)
    }

    /// Whether the device completes TCP/UDP checksums for us.
    pub fn csum_offload(&self) -> bool {
        self.offloads & crate::virtio_offload::F_CSUM != 0
    }

    fn post_rx(&mut self, mut buf: DmaBuffer) -> Result<(), Error> {
        // SAFETY: the buffer is stored in `rx` under its token until the
        // device returns it (receive_complete in `receive`), and nothing
        // reads or writes it in between.
        let token = unsafe { self.raw.receive_begin(buf.as_mut_slice())? };
        let slot = self.rx.get_mut(token as usize).ok_or(Error::WrongToken)?;
        *slot = Some(buf);
        Ok(())
    }

    /// The device's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    /// Acknowledges the device's interrupt (virtio ISR): returns whether it
    /// had raised one.
    pub fn ack_interrupt(&mut self) -> bool {
        !self.raw.ack_interrupt().is_empty()
    }

    /// Whether a received packet is waiting.
    pub fn can_receive(&self) -> bool {
        used_event_published();
        self.raw.poll_receive().is_some()
    }

    /// Copies the next received packet (Ethernet frame, without the virtio
    /// header) into `out` and hands its buffer back to the device. Returns
    /// the packet's length (packets longer than `out` are cut), or None
    /// when nothing was received.
    pub fn receive(&mut self, out: &mut [u8]) -> Option<usize> {
        used_event_published();
        let token = self.raw.poll_receive()?;
        let mut buf = self.rx.get_mut(token as usize)?.take()?;
        // SAFETY: `buf` is the buffer posted with this token in post_rx.
        let done = unsafe { self.raw.receive_complete(token, buf.as_mut_slice()) };
        let n = match done {
            Ok((hdr, len)) => {
                let n = len.min(out.len());
                out[..n].copy_from_slice(&buf.as_slice()[hdr..hdr + n]);
                Some(n)
            }
            Err(_) => Some(0),
        };
        // A failed repost loses one buffer of the pool, not the device.
        let _ = self.post_rx(buf);
        n
    }

    /// Takes back the transmit buffers the device has finished with.
    pub fn reclaim_tx(&mut self) {
        while let Some(token) = self.raw.poll_transmit() {
            let Some((buf, len)) = self.tx_busy.get_mut(token as usize).and_then(Option::take)
            else {
                break;
            };
            // SAFETY: `buf[..len]` is the slice submitted with this token
            // in transmit.
            let _ = unsafe { self.raw.transmit_complete(token, &buf.as_slice()[..len]) };
            self.recycle(buf);
            self.tx_in_flight -= 1;
        }
    }

    /// Packets queued for sending that the device has not finished with
    /// (as of the last reclaim).
    pub fn tx_in_flight(&self) -> usize {
        self.tx_in_flight
    }

    /// Whether a packet of any size can be queued for sending now (with
    /// TSO, a large segment needs one of the big buffers too).
    pub fn can_send(&mut self) -> bool {
        self.reclaim_tx();
        self.raw.can_send() && (!self.tso4() || !self.big_free.is_empty())
    }

    /// Sends a `len`-byte packet that `fill` writes, with the device doing
    /// what `offload` asks (only what it took: see [`Self::tso4`]),
    /// without waiting for the device: Ok(what `fill` returned) once
    /// queued; Err(None) with `fill` not called when the queue is full or
    /// memory short; Err(Some) when the device refused the filled packet
    /// (it is dropped).
    pub fn transmit<R>(
        &mut self,
        len: usize,
        offload: TxOffload,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Option<R>> {
        self.reclaim_tx();
        if !self.raw.can_send() {
            return Err(None);
        }
        if len > MAX_TSO_FRAME || (len + HDR_MAX > BUF_PAGES * 4096 && !self.tso4()) {
            return Err(None);
        }
        let big = len + HDR_MAX > BUF_PAGES * 4096;
        let mut buf = if big {
            self.big_free.pop().ok_or(None)?
        } else {
            match self.tx_free.pop() {
                Some(b) => b,
                None => DmaBuffer::new(BUF_PAGES).ok_or(None)?,
            }
        };
        let Ok(hdr) = self.raw.fill_buffer_header(buf.as_mut_slice()) else {
            self.recycle(buf);
            return Err(None);
        };
        write_offload(&mut buf.as_mut_slice()[..hdr], offload);
        let len = len.min(buf.as_slice().len() - hdr);
        let r = fill(&mut buf.as_mut_slice()[hdr..hdr + len]);
        // SAFETY: the buffer is stored in tx_busy under its token until
        // reclaim_tx completes it; nothing touches it in between.
        let token = unsafe { self.raw.transmit_begin(&buf.as_slice()[..hdr + len]) };
        match token {
            Ok(t) => {
                // Tokens are descriptor indices, below QS: the slot exists.
                if let Some(slot) = self.tx_busy.get_mut(t as usize) {
                    *slot = Some((buf, hdr + len));
                    self.tx_in_flight += 1;
                }
                Ok(r)
            }
            Err(_) => {
                self.recycle(buf);
                Err(Some(r))
            }
        }
    }

    fn recycle(&mut self, buf: DmaBuffer) {
        if buf.as_slice().len() > BUF_PAGES * 4096 {
            self.big_free.push(buf);
        } else {
            self.tx_free.push(buf);
        }
    }

    /// Asks the device to interrupt (or not) when it uses buffers.
    pub fn set_interrupts(&mut self, on: bool) {
        if on {
            self.raw.enable_interrupts()
        } else {
            self.raw.disable_interrupts()
        }
    }
}

/// Writes `o` into a virtio-net header (little-endian: modern devices
/// use it, and legacy ones use the guest's order, also little on x86).
/// The header's first 10 bytes are these fields in both layouts.
fn write_offload(hdr: &mut [u8], o: TxOffload) {
    let Some(h) = hdr.get_mut(..10) else { return };
    h.fill(0);
    if let Some((start, offset)) = o.csum {
        h[0] = HDR_NEEDS_CSUM;
        h[6..8].copy_from_slice(&start.to_le_bytes());
        h[8..10].copy_from_slice(&offset.to_le_bytes());
    }
    if let Some((hdr_len, gso_size)) = o.tso4 {
        h[1] = HDR_GSO_TCPV4;
        h[2..4].copy_from_slice(&hdr_len.to_le_bytes());
        h[4..6].copy_from_slice(&gso_size.to_le_bytes());
    }
}

/// Orders the driver's last write of the receive queue's `used_event`
/// (made when a packet is taken) before its next look at the used ring.
/// With VIRTIO_F_EVENT_IDX the device interrupts only for a used entry
/// past `used_event`; it writes the entry, then reads `used_event`, while
/// the driver writes `used_event`, then reads the entry's index. Both are
/// a store then a load, which x86 may reorder (the store waits in the
/// store buffer), and `virtio-drivers` orders them with release and
/// acquire only: each side could read the other's old value, the driver
/// seeing no new packet and the device no reason to interrupt. A full
/// fence between the driver's store and load means at least one side
/// sees the other's write (virtio 1.2, 2.7.10; Linux's
/// virtqueue_enable_cb re-checks after a full barrier). Not yet
/// explained: on a tap, about one boot in four takes one early frame
/// (an IPv6 multicast from the host) and no frame after it, with or
/// without this fence (issue 14's notes have the reproduction).
fn used_event_published() {
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}
