//! The NIC as smoltcp sees it: a virtio-net device's queues (hal's
//! `NetQueues`: a pool of receive buffers kept posted, transmit buffers
//! reused once sent) behind smoltcp's `phy::Device`, with the counters
//! /proc/net/dev prints.

use alloc::boxed::Box;
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use virtio_drivers::transport::SomeTransport;

use hal::virtio_net::NetQueues;

/// Entries per virtqueue (receive buffers posted at once).
pub const QUEUE_SIZE: usize = 128;
/// Largest Ethernet frame we send or take (1500-byte MTU + 14 header).
pub const MAX_FRAME: usize = 1514;

/// Counters as Linux keeps them per interface (`struct rtnl_link_stats64`),
/// the ones /proc/net/dev shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub multicast: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

type Queues = NetQueues<SomeTransport<'static>, QUEUE_SIZE>;

/// The interface's device: queues, a receive scratch frame, counters.
/// Its parts are boxed: kernel stacks are small, and these are KiBs.
pub struct Nic {
    queues: Box<Queues>,
    /// The packet smoltcp is handed: copied out of the DMA buffer so the
    /// buffer goes straight back to the device.
    rx_frame: Box<[u8; MAX_FRAME]>,
    pub stats: Stats,
    pub mac: [u8; 6],
}

impl Nic {
    pub fn new(queues: Box<Queues>) -> Nic {
        let mac = queues.mac();
        Nic {
            queues,
            rx_frame: Box::new([0; MAX_FRAME]),
            stats: Stats::default(),
            mac,
        }
    }

    /// Acknowledges the device interrupt; true if it had raised one.
    pub fn ack_interrupt(&mut self) -> bool {
        self.queues.ack_interrupt()
    }

    /// Whether received packets wait (then the stack must be polled again).
    pub fn has_rx(&self) -> bool {
        self.queues.can_receive()
    }
}

pub struct RxTok<'a> {
    frame: &'a [u8],
}

pub struct TxTok<'a> {
    queues: &'a mut Queues,
    stats: &'a mut Stats,
}

impl phy::RxToken for RxTok<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut f = Some(f);
        let mut fill = |buf: &mut [u8]| f.take().map(|f| f(buf));
        match self.queues.transmit(len, &mut fill) {
            Ok(Some(r)) => {
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += len as u64;
                r
            }
            Err(Some(Some(r))) => {
                self.stats.tx_errors += 1;
                r
            }
            _ => {
                // The queue filled (or no buffer memory): smoltcp still
                // needs its closure run; the frame is dropped, and TCP
                // retransmits.
                self.stats.tx_dropped += 1;
                let mut scratch = alloc::vec![0u8; len.min(MAX_FRAME)];
                fill(&mut scratch).expect("the closure has not run yet")
            }
        }
    }
}

impl phy::Device for Nic {
    type RxToken<'a>
        = RxTok<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxTok<'a>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(RxTok<'_>, TxTok<'_>)> {
        let n = loop {
            let n = self.queues.receive(&mut self.rx_frame[..])?;
            // Runts (shorter than an Ethernet header) are counted and skipped.
            if n >= 14 {
                break n;
            }
            self.stats.rx_errors += 1;
        };
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += n as u64;
        let dst = &self.rx_frame[..6];
        if dst[0] & 1 == 1 && dst != [0xff; 6] {
            self.stats.multicast += 1;
        }
        Some((
            RxTok {
                frame: &self.rx_frame[..n],
            },
            TxTok {
                queues: &mut self.queues,
                stats: &mut self.stats,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxTok<'_>> {
        if !self.queues.can_send() {
            return None;
        }
        Some(TxTok {
            queues: &mut self.queues,
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps.max_burst_size = Some(QUEUE_SIZE / 2);
        caps
    }
}
