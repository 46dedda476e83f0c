//! A virtio-blk disk through `virtio-drivers`' blocking API: a request is
//! queued, the device notified, and the used ring polled until it
//! completes; one request in flight per disk (the caller holds the disk's
//! lock). The buffers are kernel heap memory, which is one physically
//! contiguous region of the direct map, so the device reads and writes
//! them in place (hal's `DmaHal::share` translates the address).
//!
//! Not yet: interrupt-driven completion with several requests in flight
//! (the task would sleep instead of the CPU polling).

use abi::{Errno, KResult};
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::SomeTransport;

use hal::dma::DmaHal;

/// Bytes per sector (virtio-blk's unit, whatever the device's block size).
pub const SECTOR: usize = virtio_drivers::device::blk::SECTOR_SIZE;

pub struct VirtioBlk {
    dev: VirtIOBlk<DmaHal, SomeTransport<'static>>,
    flush: bool,
}

fn eio(e: virtio_drivers::Error) -> Errno {
    crate::klog!("block: device error {e}");
    Errno::EIO
}

impl VirtioBlk {
    pub fn new(transport: SomeTransport<'static>) -> Result<VirtioBlk, virtio_drivers::Error> {
        use virtio_drivers::transport::Transport;
        // VIRTIO_BLK_F_FLUSH (bit 9): whether fsync can ask the device to
        // write back its cache. Read before the driver negotiates.
        let mut transport = transport;
        let flush = transport.read_device_features() & (1 << 9) != 0;
        let mut dev = VirtIOBlk::new(transport)?;
        // Completion is polled: no interrupt wanted.
        dev.disable_interrupts();
        Ok(VirtioBlk { dev, flush })
    }

    pub fn sectors(&self) -> u64 {
        self.dev.capacity()
    }

    pub fn readonly(&self) -> bool {
        self.dev.readonly()
    }

    pub fn has_flush(&self) -> bool {
        self.flush
    }

    /// Reads whole sectors from `first` into `buf` (a multiple of SECTOR).
    pub fn read(&mut self, first: u64, buf: &mut [u8]) -> KResult<()> {
        if buf.is_empty() || !buf.len().is_multiple_of(SECTOR) {
            return Err(Errno::EINVAL);
        }
        self.dev.read_blocks(first as usize, buf).map_err(eio)
    }

    /// Writes whole sectors from `first` (a multiple of SECTOR).
    pub fn write(&mut self, first: u64, buf: &[u8]) -> KResult<()> {
        if buf.is_empty() || !buf.len().is_multiple_of(SECTOR) {
            return Err(Errno::EINVAL);
        }
        self.dev.write_blocks(first as usize, buf).map_err(eio)
    }

    /// VIRTIO_BLK_T_FLUSH (a no-op when the device has no write cache to
    /// flush, i.e. did not offer the feature).
    pub fn flush(&mut self) -> KResult<()> {
        self.dev.flush().map_err(eio)
    }
}
