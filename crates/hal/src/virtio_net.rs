//! The queues of a virtio-net device with their buffers: a pool of receive
//! buffers kept posted to the device, and transmit buffers that are reused
//! once the device has sent them (no waiting for the device on send).
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

/// One frame per buffer: a full Ethernet frame plus the virtio header fits.
const BUF_PAGES: usize = 1;

/// A virtio-net device's queues of `QS` entries each.
pub struct NetQueues<T: Transport, const QS: usize> {
    raw: VirtIONetRaw<DmaHal, T, QS>,
    /// Receive buffers posted to the device, by the token it returns.
    rx: Vec<Option<DmaBuffer>>,
    /// Transmit buffers the device holds, by token, with the length sent.
    tx_busy: Vec<Option<(DmaBuffer, usize)>>,
    /// Transmit buffers ready for use.
    tx_free: Vec<DmaBuffer>,
    /// Packets the device holds (entries of `tx_busy` in use).
    tx_in_flight: usize,
}

impl<T: Transport, const QS: usize> NetQueues<T, QS> {
    /// Initialises the device and posts `QS` receive buffers. Boxed: the
    /// queues are several KiB (two virtqueues' shadow descriptors), and
    /// moving them through the boot stack's frames overflowed it.
    pub fn new(transport: T) -> Result<Box<Self>, Error> {
        let raw = VirtIONetRaw::<DmaHal, T, QS>::new(transport)?;
        let mut q = Box::new(NetQueues {
            raw,
            rx: (0..QS).map(|_| None).collect(),
            tx_busy: (0..QS).map(|_| None).collect(),
            tx_free: Vec::new(),
            tx_in_flight: 0,
        });
        for _ in 0..QS {
            let buf = DmaBuffer::new(BUF_PAGES).ok_or(Error::DmaError)?;
            q.post_rx(buf)?;
        }
        Ok(q)
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
        self.raw.poll_receive().is_some()
    }

    /// Copies the next received packet (Ethernet frame, without the virtio
    /// header) into `out` and hands its buffer back to the device. Returns
    /// the packet's length (packets longer than `out` are cut), or None
    /// when nothing was received.
    pub fn receive(&mut self, out: &mut [u8]) -> Option<usize> {
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
            self.tx_free.push(buf);
            self.tx_in_flight -= 1;
        }
    }

    /// Packets queued for sending that the device has not finished with
    /// (as of the last reclaim).
    pub fn tx_in_flight(&self) -> usize {
        self.tx_in_flight
    }

    /// Whether a packet can be queued for sending now.
    pub fn can_send(&mut self) -> bool {
        self.reclaim_tx();
        self.raw.can_send()
    }

    /// Sends a `len`-byte packet that `fill` writes, without waiting for
    /// the device: Ok(what `fill` returned) once queued; Err(None) with
    /// `fill` not called when the queue is full or memory short; Err(Some)
    /// when the device refused the filled packet (it is dropped).
    pub fn transmit<R>(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Option<R>> {
        self.reclaim_tx();
        if !self.raw.can_send() {
            return Err(None);
        }
        let mut buf = match self.tx_free.pop() {
            Some(b) => b,
            None => DmaBuffer::new(BUF_PAGES).ok_or(None)?,
        };
        let Ok(hdr) = self.raw.fill_buffer_header(buf.as_mut_slice()) else {
            self.tx_free.push(buf);
            return Err(None);
        };
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
                self.tx_free.push(buf);
                Err(Some(r))
            }
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
