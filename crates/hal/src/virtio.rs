//! Virtio transports: finding a virtio-mmio device at a physical address,
//! and PCI configuration space through the legacy I/O ports.
//!
//! Building a transport over raw device registers is what needs `unsafe`;
//! the drivers above (in the kernel) use the safe `virtio-drivers` API.

use core::ptr::NonNull;
use virtio_drivers::transport::mmio::{MmioError, MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use x86_64::instructions::port::Port;

/// Size of one virtio-mmio register window (header and config space).
pub const MMIO_WINDOW: u64 = 0x200;

/// Maps the virtio-mmio window at `pa` and builds a transport over it. Fails
/// (bad magic, device id 0 = empty slot) when no device is there.
pub fn mmio_transport(pa: u64) -> Result<MmioTransport<'static>, MmioError> {
    let va = crate::dma::map_device(pa, MMIO_WINDOW);
    let header = NonNull::new(va as *mut VirtIOHeader).expect("direct map is never null");
    // SAFETY: `va` maps MMIO_WINDOW bytes of device registers uncached for
    // the kernel's lifetime (map_device never unmaps), and the window is
    // aligned to 0x200 as virtio-mmio windows are. The caller builds at
    // most one transport per window, so it is used through one pointer.
    unsafe { MmioTransport::new(header, MMIO_WINDOW as usize) }
}

/// PCI configuration mechanism #1: address to port 0xcf8, data at 0xcfc.
/// Every x86 PC chipset QEMU emulates (`pc`, `q35`) has it.
pub struct PortCam;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

fn address(df: DeviceFunction, offset: u8) -> u32 {
    1 << 31
        | (df.bus as u32) << 16
        | (df.device as u32 & 0x1f) << 11
        | (df.function as u32 & 0x7) << 8
        | (offset as u32 & 0xfc)
}

/// The address/data pair must not be split by another CPU or an
/// interrupt handler doing the same.
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        crate::cpu::without_interrupts(|| {
            let _g = LOCK.lock();
            // SAFETY: 0xcf8/0xcfc are the PCI configuration ports of the
            // chipset; writing an address with the enable bit and reading
            // the data window has no effect beyond the config read.
            unsafe {
                Port::<u32>::new(CONFIG_ADDRESS).write(address(df, offset));
                Port::<u32>::new(CONFIG_DATA).read()
            }
        })
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        crate::cpu::without_interrupts(|| {
            let _g = LOCK.lock();
            // SAFETY: as read_word; the caller (the kernel's PCI code)
            // writes only registers it means to program (command, BARs).
            unsafe {
                Port::<u32>::new(CONFIG_ADDRESS).write(address(df, offset));
                Port::<u32>::new(CONFIG_DATA).write(data);
            }
        })
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}
