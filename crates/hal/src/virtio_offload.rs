//! Feature negotiation beyond what `virtio-drivers` asks for: its net
//! driver accepts a fixed set of features (MAC, STATUS, the ring formats,
//! VERSION_1) and no offload. This transport wrapper adds, when the device
//! offers them, the transmit offloads the kernel's driver uses:
//! `VIRTIO_NET_F_CSUM` (the device completes a TCP checksum from the
//! pseudo-header sum the driver leaves in it) and `VIRTIO_NET_F_HOST_TSO4`
//! (the device cuts one large TCP segment into MSS-sized ones, as Linux's
//! virtio_net sends its GSO packets). Both only permit the driver to send
//! such packets; the device sends the driver nothing new, so the receive
//! path is unchanged. A device on QEMU's user networking does not offer
//! them (slirp takes no virtio-net header); one on a tap with a vnet
//! header does.
//!
//! Wrapping the transport, rather than patching the crate, works because
//! the driver's `begin_init` writes its choice through
//! [`Transport::write_driver_features`], which this type extends with the
//! offloads before the device sees it.

use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// `VIRTIO_NET_F_CSUM`: the driver may send packets with a partial checksum.
pub const F_CSUM: u64 = 1 << 0;
/// `VIRTIO_NET_F_HOST_TSO4`: the driver may send TCPv4 segments larger
/// than the MTU for the device to cut.
pub const F_HOST_TSO4: u64 = 1 << 11;

/// The offloads the kernel's driver uses, as feature bits.
pub const OFFLOADS: u64 = F_CSUM | F_HOST_TSO4;

/// Whether `features` hold TCPv4 segmentation offload (which needs the
/// checksum offload as well).
pub fn has_tso4(features: u64) -> bool {
    features & OFFLOADS == OFFLOADS
}

/// A transport that also accepts `extra` features (those of [`OFFLOADS`]
/// the device offered: read them before building the driver).
pub struct OffloadTransport<T: Transport> {
    inner: T,
    extra: u64,
}

impl<T: Transport> OffloadTransport<T> {
    /// Wraps `inner`; `extra` is cut down to [`OFFLOADS`].
    pub fn new(inner: T, extra: u64) -> Self {
        OffloadTransport {
            inner,
            extra: extra & OFFLOADS,
        }
    }
}

impl<T: Transport> Transport for OffloadTransport<T> {
    fn device_type(&self) -> DeviceType {
        self.inner.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        self.inner.read_device_features()
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.inner
            .write_driver_features(driver_features | self.extra)
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.inner.max_queue_size(queue)
    }

    fn notify(&mut self, queue: u16) {
        self.inner.notify(queue)
    }

    fn get_status(&self) -> DeviceStatus {
        self.inner.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.inner.set_status(status)
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.inner.set_guest_page_size(guest_page_size)
    }

    fn requires_legacy_layout(&self) -> bool {
        self.inner.requires_legacy_layout()
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.inner
            .queue_set(queue, size, descriptors, driver_area, device_area)
    }

    fn queue_unset(&mut self, queue: u16) {
        self.inner.queue_unset(queue)
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.inner.queue_used(queue)
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.inner.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.inner.read_config_generation()
    }

    fn read_config_space<V: FromBytes + IntoBytes>(&self, offset: usize) -> Result<V> {
        self.inner.read_config_space(offset)
    }

    fn write_config_space<V: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: V,
    ) -> Result<()> {
        self.inner.write_config_space(offset, value)
    }
}
