//! Networking. Sockets: `socket.rs` is the protocol-family interface every
//! family implements (and the registry `socket(2)` picks a family from),
//! with what all families share: ancillary data, credentials, flags;
//! `mem.rs` bounds the kernel memory sockets hold for users; `unix/` is
//! AF_UNIX, `inet/` AF_INET (TCP, UDP over the smoltcp stack); the
//! syscall layer (`syscall/socket.rs`) knows no family.
//!
//! The wire: one virtio-net NIC (`device`, found by `drivers::virtio`)
//! and the loopback, one smoltcp device together (`wire`); the smoltcp
//! TCP/IP stack over it (`stack`), which exists with or without a NIC;
//! /proc/net (`procfs`).
//!
//! The device's interrupt goes to torus A's CPU (CPU 0), which owns the
//! device: the handler only masks the line and asks for a poll; A's next
//! event boundary polls the stack (acknowledging the device) and unmasks.
//! Sockets on any torus reach the stack through [`stack::with`].
//!
//! Kernel command line: `ip=dhcp` (default), `ip=off`, or
//! `ip=ADDR[:SERVER[:GATEWAY[:NETMASK]]]` as Linux's nfsroot `ip=`;
//! `netdebug.echo=PORT` starts a TCP echo responder inside the kernel
//! (a test aid for the harness, not a socket API).

mod device;
pub mod ifreq;
pub mod inet;
pub mod mem;
pub mod netlink;
pub mod procfs;
pub mod socket;
pub mod stack;
mod testserve;
pub mod unix;
pub mod wire;

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use stack::AddrConfig;

/// Vector of the NIC's interrupt.
pub const NET_VECTOR: u8 = 0x40;
/// The CPU (torus A's) that takes the interrupt and polls the stack.
const OWNER_CPU: usize = 0;

/// GSI of the NIC's line (u32::MAX: none, the stack is polled every tick).
static GSI: AtomicU32 = AtomicU32::new(u32::MAX);
/// The handler masked the line; the next boundary unmasks it.
static MASKED: AtomicBool = AtomicBool::new(false);
static UP: AtomicBool = AtomicBool::new(false);
/// A NIC without an interrupt line: polled at every boundary.
static POLLED: AtomicBool = AtomicBool::new(false);

/// Starts the stack, with the NIC if the machine has one (the loopback
/// alone otherwise). Runs on the boot CPU (CPU 0) once frames and the
/// I/O APIC are set up.
pub fn init(cmdline: &str) {
    let nic_found = crate::drivers::virtio::take(virtio_drivers::transport::DeviceType::Network);
    let queues = nic_found.map(|found| {
        // `net.offload=off`: frames the size of the MTU, checksums here
        // (what a device without offloads gets; for comparisons).
        let offload = crate::cmdline::get(cmdline, "net.offload") != Some("off");
        let q = hal::virtio_net::NetQueues::new(found.transport, offload);
        (found.place, found.gsi, q)
    });
    let (place, gsi, queues) = match queues {
        Some((place, gsi, Ok(q))) => (place, gsi, q),
        Some((place, _, Err(e))) => {
            crate::klog!("net: {place}: virtio-net set-up failed: {e}");
            return lo_only();
        }
        None => return lo_only(),
    };
    let offloads = match (queues.tso4(), queues.csum_offload()) {
        (true, _) => "checksum and TSO offload",
        (false, true) => "checksum offload",
        (false, false) => "no offload",
    };
    let nic = device::Nic::new(queues);
    let m = nic.mac;
    let cfg = addr_config(crate::cmdline::get(cmdline, "ip"));
    stack::install(Some(nic), cfg);
    let irq = match gsi {
        Some(gsi) if hal::apic::route_gsi(gsi, NET_VECTOR, hal::apic::id(), true) => {
            GSI.store(gsi, Ordering::Relaxed);
            alloc::format!("GSI {gsi} (level) on vector {NET_VECTOR:#x}")
        }
        _ => {
            POLLED.store(true, Ordering::Relaxed);
            alloc::string::String::from("no interrupt line found: polled every tick")
        }
    };
    UP.store(true, Ordering::Release);
    crate::klog!(
        "net: eth0 {} MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, {irq}, {offloads}, address {cfg:?}",
        place,
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5]
    );
    if let Some(port) = crate::cmdline::get(cmdline, "netdebug.echo").and_then(|p| p.parse().ok()) {
        testserve::start(port);
    }
}

/// No NIC: the stack over the loopback alone.
fn lo_only() {
    stack::install(None, AddrConfig::Off);
    UP.store(true, Ordering::Release);
}

/// `ip=` as Linux reads it for an nfsroot: `dhcp`/`on`/`any` (or
/// absent), `off`/`none`, or client:server:gateway:netmask:... with the
/// netmask defaulting to the class C /24 QEMU's user network uses.
fn addr_config(ip: Option<&str>) -> AddrConfig {
    let Some(ip) = ip else {
        return AddrConfig::Dhcp;
    };
    match ip {
        "" | "dhcp" | "on" | "any" | "both" | "bootp" => return AddrConfig::Dhcp,
        "off" | "none" => return AddrConfig::Off,
        _ => {}
    }
    let mut f = ip.split(':');
    let parse = |s: Option<&str>| s.and_then(|s| s.parse::<Ipv4Address>().ok());
    let Some(addr) = parse(f.next()) else {
        crate::klog!("net: ip={ip} not understood; using DHCP");
        return AddrConfig::Dhcp;
    };
    let _server = f.next();
    let gateway = parse(f.next());
    let prefix = parse(f.next())
        .and_then(|m| Ipv4Cidr::from_netmask(addr, m).ok())
        .map_or(24, |c| c.prefix_len());
    AddrConfig::Static {
        addr: Ipv4Cidr::new(addr, prefix),
        gateway,
    }
}

/// The NIC's interrupt line, if it has one (a disk may share it).
pub fn gsi() -> Option<u32> {
    let g = GSI.load(Ordering::Relaxed);
    (g != u32::MAX).then_some(g)
}

/// The NIC's interrupt (interrupt context, on the owner CPU): the line is
/// level-triggered and stays asserted until the device is acknowledged,
/// which needs the stack's lock, so mask it and leave the work to the
/// next event boundary.
pub fn on_interrupt() {
    let gsi = GSI.load(Ordering::Relaxed);
    if gsi != u32::MAX {
        hal::apic::mask_gsi(gsi, true);
        MASKED.store(true, Ordering::Release);
    }
    stack::interrupted();
}

/// The owner's event boundary: poll the stack when the device
/// interrupted or a smoltcp timer is due, then unmask the line.
pub fn boundary() {
    if !UP.load(Ordering::Acquire) || crate::proc::cpu::id() != OWNER_CPU {
        return;
    }
    let polled = POLLED.load(Ordering::Relaxed);
    // A masked line always means a poll (and the unmask after it): a
    // socket call on another CPU may have polled in between (taking the
    // kick and acknowledging the device), and returning early would leave
    // the line masked for good.
    let masked = MASKED.load(Ordering::Acquire);
    if !(polled || masked || stack::due(hal::time::now_ns())) {
        return;
    }
    stack::poll();
    testserve::service();
    if MASKED.swap(false, Ordering::AcqRel) {
        hal::apic::mask_gsi(GSI.load(Ordering::Relaxed), false);
    }
}
