//! The NIC: a virtio-net device's queues (hal's `NetQueues`: a pool of
//! receive buffers kept posted, transmit buffers reused once sent), with
//! the counters /proc/net/dev prints. smoltcp reaches it through
//! [`super::wire::Wire`], which also carries the loopback.

use alloc::boxed::Box;
use virtio_drivers::transport::SomeTransport;

use hal::virtio_net::{NetQueues, TxOffload};

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

pub type Queues = NetQueues<SomeTransport<'static>, QUEUE_SIZE>;

/// The interface's device: queues, a receive scratch frame, counters.
/// Its parts are boxed: kernel stacks are small, and these are KiBs.
pub struct Nic {
    pub queues: Box<Queues>,
    /// The packet smoltcp is handed: copied out of the DMA buffer so the
    /// buffer goes straight back to the device.
    pub rx_frame: Box<[u8; MAX_FRAME]>,
    pub stats: Stats,
    pub mac: [u8; 6],
    /// Sending stopped when the queue filled, until a quarter of it is
    /// free again ([`Nic::can_send`]).
    tx_paused: bool,
}

impl Nic {
    pub fn new(queues: Box<Queues>) -> Nic {
        let mac = queues.mac();
        Nic {
            queues,
            rx_frame: Box::new([0; MAX_FRAME]),
            stats: Stats::default(),
            mac,
            tx_paused: false,
        }
    }

    /// Acknowledges the device interrupt; true if it had raised one.
    pub fn ack_interrupt(&mut self) -> bool {
        self.queues.ack_interrupt()
    }

    /// Whether smoltcp may send a frame now: once the queue has filled,
    /// not before a quarter of it (32 frames) is free again. smoltcp
    /// gives its sockets a segment each in the order of their slots,
    /// round after round, and stops at the first frame the device
    /// refuses; its next poll starts again at the first slot. Offered
    /// the one or two buffers the device freed since, the sockets in the
    /// first slots took them all and the last ones waited: 16 host
    /// connections each fetching 1 MiB from lighttpd (`-smp 3`) had a
    /// p99 of 4.7-6 s for a median of 0.3 s. Refilled 32 frames at a
    /// time, every socket with data gets its turns, at most one frame
    /// apart (p99 0.75-3 s, the same requests/s; half a queue at a time
    /// lost a quarter of the throughput: the device ran dry between
    /// refills).
    pub fn can_send(&mut self) -> bool {
        if self.tx_paused {
            self.queues.reclaim_tx();
            if self.queues.tx_in_flight() > QUEUE_SIZE * 3 / 4 {
                return false;
            }
            self.tx_paused = false;
        }
        if !self.queues.can_send() {
            self.tx_paused = true;
            return false;
        }
        true
    }

    /// Whether received packets wait (then the stack must be polled again).
    pub fn has_rx(&self) -> bool {
        self.queues.can_receive()
    }

    /// Takes the next received frame into `rx_frame`: its length, or
    /// None when nothing waits. Runts (shorter than an Ethernet header),
    /// martians (IPv4 from or to 127.0.0.0/8, which only the loopback
    /// carries) and TCP/UDP segments with a wrong checksum are counted
    /// and dropped.
    pub fn receive(&mut self) -> Option<usize> {
        loop {
            let n = self.queues.receive(&mut self.rx_frame[..])?;
            if n < 14 {
                self.stats.rx_errors += 1;
                continue;
            }
            let f = &self.rx_frame[..n];
            if n >= 34 && f[12..14] == [0x08, 0x00] && (f[26] == 127 || f[30] == 127) {
                self.stats.rx_dropped += 1;
                continue;
            }
            // smoltcp checks no TCP/UDP checksum (the loopback needs
            // none): the NIC's frames are checked here.
            if !super::wire::l4_checksum_ok(&mut self.rx_frame[..n]) {
                self.stats.rx_errors += 1;
                continue;
            }
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += n as u64;
            // The interface's MTU is the loopback's: a peer's SYN must
            // not let smoltcp size segments beyond what the NIC sends,
            // a frame, or with TSO a 64 KiB segment the device cuts.
            if self.queues.tso4() {
                super::wire::raise_mss(&mut self.rx_frame[..n]);
            } else {
                super::wire::clamp_mss(&mut self.rx_frame[..n], super::wire::NIC_MSS);
            }
            let f = &self.rx_frame[..n];
            let dst = &f[..6];
            if dst[0] & 1 == 1 && dst != [0xff; 6] {
                self.stats.multicast += 1;
            }
            return Some(n);
        }
    }
}

/// Sends `frame` on the NIC's queues with the device doing what
/// `offload` asks, counting it (a segment the device cuts counts once,
/// as Linux counts a GSO packet).
pub fn transmit(queues: &mut Queues, stats: &mut Stats, frame: &[u8], offload: TxOffload) {
    match queues.transmit(frame.len(), offload, |buf| {
        buf.copy_from_slice(&frame[..buf.len()])
    }) {
        Ok(()) => {
            stats.tx_packets += 1;
            stats.tx_bytes += frame.len() as u64;
        }
        Err(Some(())) => stats.tx_errors += 1,
        // The queue filled (or no buffer memory): the frame is dropped,
        // and TCP retransmits.
        Err(None) => stats.tx_dropped += 1,
    }
}
