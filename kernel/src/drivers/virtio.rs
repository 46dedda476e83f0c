//! Finding virtio devices: virtio-pci on `pc`/`q35` (PCI bus 0 through the
//! configuration ports), virtio-mmio on `microvm` (QEMU's fixed windows).
//!
//! [`init`] scans the machine once at boot and keeps every virtio device
//! it finds (one transport per device: a window is never opened twice);
//! a driver then [`take`]s the first device of its type. What it gets is a
//! transport and the global system interrupt (GSI) its interrupt line
//! arrives on at the I/O APIC.

use alloc::vec::Vec;
use spin::Mutex;
use virtio_drivers::transport::pci::bus::{Command, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::{DeviceType, SomeTransport, Transport};

use hal::virtio::PortCam;

/// A virtio device found on the machine.
pub struct Found {
    pub transport: SomeTransport<'static>,
    /// Where its interrupt arrives; None when we could not tell (polled).
    pub gsi: Option<u32>,
    /// How it was found, for the log ("virtio-mmio@0xfeb02e00", "pci 00:03.0").
    pub place: alloc::string::String,
}

/// QEMU `microvm`: 24 virtio-mmio windows of 512 bytes from 0xfeb00000;
/// window i interrupts on GSI base+i, the base being 24 (the second I/O
/// APIC) when the machine has one, else 5 (hw/i386/microvm.c).
const MMIO_BASE: u64 = 0xfeb0_0000;
const MMIO_SLOTS: u64 = 24;

/// Devices found by [`init`] and not yet taken by a driver.
static FOUND: Mutex<Vec<Found>> = Mutex::new(Vec::new());

/// Where DMA memory comes from (virtqueues and buffers): frames of this
/// CPU's torus (CPU 0 at boot), which the drivers' buffers live in.
const DMA_CPU: usize = 0;

/// Registers the DMA frame source and scans for virtio devices (once, on
/// the boot CPU, after the frame pools and the I/O APIC are set up).
pub fn init() {
    hal::dma::set_frame_source(hal::dma::FrameSource {
        alloc: |n| crate::frames::alloc_contiguous_on(DMA_CPU, n),
        free: crate::frames::free_contiguous,
    });
    let found = if pci_present() {
        find_pci()
    } else {
        find_mmio()
    };
    for f in &found {
        crate::klog!("virtio: {:?} at {}", f.transport.device_type(), f.place);
    }
    *FOUND.lock() = found;
}

/// Takes the first device of type `ty` found by [`init`], if any.
pub fn take(ty: DeviceType) -> Option<Found> {
    let mut found = FOUND.lock();
    let i = found.iter().position(|f| f.transport.device_type() == ty)?;
    Some(found.remove(i))
}

/// A PCI host bridge answers at 00:00.0 on `pc` and `q35`; on `microvm`
/// the configuration ports read all ones.
fn pci_present() -> bool {
    use virtio_drivers::transport::pci::bus::ConfigurationAccess;
    let id = PortCam.read_word(
        DeviceFunction {
            bus: 0,
            device: 0,
            function: 0,
        },
        0,
    );
    id as u16 != 0xffff && id != 0
}

/// Every occupied virtio-mmio window (an empty one has device id 0, which
/// the transport refuses).
fn find_mmio() -> Vec<Found> {
    let ioapics = hal::boot::info().ioapics();
    let irq_base = if ioapics.iter().any(|a| a.gsi_base == 24) {
        24
    } else {
        5
    };
    (0..MMIO_SLOTS)
        .filter_map(|i| {
            let pa = MMIO_BASE + i * hal::virtio::MMIO_WINDOW;
            let t = hal::virtio::mmio_transport(pa).ok()?;
            Some(Found {
                transport: t.into(),
                gsi: Some(irq_base + i as u32),
                place: alloc::format!("virtio-mmio@{pa:#x}"),
            })
        })
        .collect()
}

/// Every virtio function on PCI bus 0, with bus mastering enabled.
fn find_pci() -> Vec<Found> {
    let mut root = PciRoot::new(PortCam);
    let dfs: Vec<DeviceFunction> = root
        .enumerate_bus(0)
        .filter(|(_, info)| virtio_device_type(info).is_some())
        .map(|(df, _)| df)
        .collect();
    let mut found = Vec::new();
    for df in dfs {
        // DMA needs bus mastering; the firmware enabled memory decoding
        // when it assigned the BARs.
        let (_, cmd) = root.get_status_command(df);
        root.set_command(
            df,
            cmd | Command::MEMORY_SPACE | Command::IO_SPACE | Command::BUS_MASTER,
        );
        let gsi = intx_gsi(df);
        let place = alloc::format!("pci {:02x}:{:02x}.{}", df.bus, df.device, df.function);
        match PciTransport::new::<hal::dma::DmaHal, _>(&mut root, df) {
            Ok(t) => found.push(Found {
                transport: t.into(),
                gsi,
                place,
            }),
            Err(e) => crate::klog!("virtio: {place}: not a usable virtio-pci device: {e}"),
        }
    }
    found
}

/// The GSI of a bus-0 device's INTx line. On `pc` (PIIX) the PCI links
/// are wired to ISA IRQs and the firmware wrote the one it chose into the
/// Interrupt Line register; that IRQ is the GSI. On `q35` (ICH9) the
/// links go to the I/O APIC directly: INTA..D of slot s use PIRQ
/// E..H rotated by s, GSI 20..23 (QEMU's default routing, which its ACPI
/// tables describe).
fn intx_gsi(df: DeviceFunction) -> Option<u32> {
    use virtio_drivers::transport::pci::bus::ConfigurationAccess;
    let host = PortCam.read_word(
        DeviceFunction {
            bus: 0,
            device: 0,
            function: 0,
        },
        0,
    );
    let reg = PortCam.read_word(df, 0x3c);
    let line = reg & 0xff;
    let pin = (reg >> 8) & 0xff; // 1 = INTA .. 4 = INTD, 0 = none
    if pin == 0 {
        return None;
    }
    const ICH9_Q35_HOST: u32 = 0x29c0_8086;
    if host == ICH9_Q35_HOST {
        Some(20 + (df.device as u32 + pin - 1) % 4)
    } else if line != 0 && line < 16 {
        Some(line)
    } else {
        None
    }
}
