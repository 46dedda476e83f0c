//! The TCP/IP stack: one smoltcp interface over the wire (the NIC if
//! there is one, and the loopback: `wire.rs`), its sockets, and how it is
//! driven. The stack always exists: without a NIC it carries loopback
//! traffic alone.
//!
//! **Ownership.** Torus A (CPU 0) owns the device: its interrupt is routed
//! there, and A's event boundaries (the deferred work of every tick, the
//! return to user mode, the idle loop) poll the stack when the device has
//! interrupted or smoltcp's next timer (retransmission, DHCP) is due.
//! The interface, its sockets and the device sit behind one lock, so any
//! torus may use sockets through [`with`], which polls right away on the
//! caller's CPU so that what it queued leaves at once (multiqueue per
//! torus is the later goal; docs/architecture.md). The lock is never taken
//! in interrupt context, so it may be held with interrupts on.
//!
//! **The interface for sockets.** [`with`] gives the interface and the
//! socket set (add a smoltcp socket, read, write, close); [`set_wake_hook`]
//! registers a function called after every poll that may have changed a
//! socket's state (AF_INET's bookkeeping: orphans, accept queues).
//! Waiters are woken by smoltcp's per-socket wakers
//! (`register_recv_waker`/`register_send_waker`, the `async` feature),
//! which it calls during the poll, under the stack's lock: a waker must
//! take neither the stack's lock nor a socket's.

use alloc::boxed::Box;
use alloc::vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};
use spin::Mutex;

use super::device::{Nic, Stats};
use super::wire::Wire;

/// How the interface gets its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrConfig {
    /// DHCPv4 (the default).
    Dhcp,
    /// Fixed, from `ip=` on the kernel command line.
    Static {
        addr: Ipv4Cidr,
        gateway: Option<Ipv4Address>,
    },
    /// No address (`ip=off`).
    Off,
}

struct Stack {
    iface: Interface,
    sockets: SocketSet<'static>,
    wire: Wire,
    dhcp: Option<SocketHandle>,
    addr: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Address>,
}

/// Boxed: smoltcp's interface and the NIC are KiBs, too much to move
/// through kernel stacks.
static STACK: Mutex<Option<Box<Stack>>> = Mutex::new(None);
/// smoltcp's next deadline in ns of `hal::time` (u64::MAX: none).
static POLL_AT: AtomicU64 = AtomicU64::new(u64::MAX);
/// Set by the interrupt (or anyone) to ask the owner for a poll.
static KICKED: AtomicBool = AtomicBool::new(false);
/// Set by the NIC's interrupt: the next poll acknowledges the device.
static IRQ: AtomicBool = AtomicBool::new(false);
static WAKE_HOOK: spin::Once<fn()> = spin::Once::new();

/// The stack's clock: the kernel's monotonic clock.
pub fn now() -> Instant {
    Instant::from_micros((hal::time::now_ns() / 1000) as i64)
}

/// The loopback's address, which the interface always holds.
const LOOPBACK: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(127, 0, 0, 1), 8);
/// The interface's MAC without a NIC (locally administered; only the
/// loopback sees it).
const LO_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0];
/// Looped frames one round of polling takes, and the most rounds one
/// poll runs; what is left waits for the next poll (the owner's).
const ROUND_FRAMES: usize = 256;
const ROUNDS: usize = 8;

/// Builds the interface over the NIC (if any) and the loopback and starts
/// addressing it.
pub fn install(nic: Option<Nic>, cfg: AddrConfig) {
    let mac = nic.as_ref().map_or(LO_MAC, |n| n.mac);
    let mut wire = Wire::new(nic);
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    let mut seed = [0u8; 8];
    crate::random::fill(&mut seed);
    config.random_seed = u64::from_le_bytes(seed);
    let iface = Interface::new(config, &mut wire, now());
    let mut st = Box::new(Stack {
        iface,
        sockets: SocketSet::new(vec![]),
        wire,
        dhcp: None,
        addr: None,
        gateway: None,
    });
    match cfg {
        AddrConfig::Dhcp => st.dhcp = Some(st.sockets.add(dhcpv4::Socket::new())),
        AddrConfig::Static { addr, gateway } => st.set_address(Some(addr), gateway),
        AddrConfig::Off => st.set_address(None, None),
    }
    *STACK.lock() = Some(st);
    KICKED.store(true, Ordering::Release);
}

impl Stack {
    /// Gives the interface `addr` (or none) and its default route. The
    /// loopback address stays, last: smoltcp picks the first address as
    /// the source for destinations off every subnet.
    fn set_address(&mut self, addr: Option<Ipv4Cidr>, gw: Option<Ipv4Address>) {
        self.iface.update_ip_addrs(|a| {
            a.clear();
            if let Some(addr) = addr {
                let _ = a.push(IpCidr::Ipv4(addr));
            }
            let _ = a.push(IpCidr::Ipv4(LOOPBACK));
        });
        self.wire.lo.own = addr.map(|c| c.address());
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = gw {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
        self.addr = addr;
        self.gateway = gw;
    }
}

/// Runs `f` on the interface and the sockets, then polls, so what `f`
/// queued is sent now. None before the stack is installed.
pub fn with<R>(f: impl FnOnce(&mut Interface, &mut SocketSet<'static>) -> R) -> Option<R> {
    let r = {
        let mut g = STACK.lock();
        let st = g.as_mut()?;
        f(&mut st.iface, &mut st.sockets)
    };
    poll();
    Some(r)
}

/// Runs `f` on the interface and the sockets without polling: for looks
/// at a socket's state (a waiter's readiness check) and changes whose
/// packets can wait for the next poll. None before the stack is installed.
pub fn with_quiet<R>(f: impl FnOnce(&mut Interface, &mut SocketSet<'static>) -> R) -> Option<R> {
    let mut g = STACK.lock();
    let st = g.as_mut()?;
    Some(f(&mut st.iface, &mut st.sockets))
}

/// Whether the stack is installed.
pub fn present() -> bool {
    STACK.lock().is_some()
}

/// Registers the function called after a poll that may have changed the
/// state of sockets (once; later calls are ignored). The AF_INET socket
/// layer (`net/inet`) is its user.
pub fn set_wake_hook(hook: fn()) {
    WAKE_HOOK.call_once(|| hook);
}

/// The NIC interrupted: asks for a poll that acknowledges the device
/// (the interrupt handler calls this).
pub fn interrupted() {
    IRQ.store(true, Ordering::Release);
    KICKED.store(true, Ordering::Release);
}

/// Whether the owner should poll now: kicked, or smoltcp's timer is due.
pub fn due(now_ns: u64) -> bool {
    KICKED.load(Ordering::Acquire) || POLL_AT.load(Ordering::Relaxed) <= now_ns
}

/// Moves packets: acknowledges the device (after an interrupt), lets smoltcp take what was
/// received (from the NIC and the loopback) and send what sockets
/// queued, follows DHCP, and notes when smoltcp next needs a poll. A
/// poll's work is bounded ([`ROUNDS`] of [`ROUND_FRAMES`] looped frames):
/// what is left asks the owner for another poll.
pub fn poll() {
    // SYNs a listener had no socket for, released by the hook (a socket
    // freed up): taken at once rather than at the owner's next boundary.
    for _ in 0..ROUNDS {
        poll_once();
        if !crate::net::inet::synbusy::has_ready() {
            return;
        }
    }
    KICKED.store(true, Ordering::Release);
}

/// Asks the owner for a poll (what was queued without one waits no
/// longer than its next event boundary).
pub fn kick() {
    KICKED.store(true, Ordering::Release);
}

fn poll_once() {
    KICKED.store(false, Ordering::Release);
    let changed = {
        let mut g = STACK.lock();
        let Some(st) = g.as_mut() else {
            return;
        };
        // Only after an interrupt: reading the device's ISR is a trap to
        // the hypervisor, and most polls (every socket call's) follow no
        // interrupt. Whoever polls first after one acknowledges it; the
        // line stays masked until the owner's boundary has polled too.
        if IRQ.swap(false, Ordering::AcqRel) {
            if let Some(nic) = st.wire.nic.as_mut() {
                nic.ack_interrupt();
            }
        }
        let mut changed = false;
        // A packet may land between smoltcp's last look and the ack, and
        // the loopback's replies land during a round; later rounds take
        // them (the device will not interrupt for those).
        for _ in 0..ROUNDS {
            let t = now();
            st.wire
                .receive_again(crate::net::inet::synbusy::take_ready());
            st.wire.refill(ROUND_FRAMES);
            changed |=
                st.iface.poll(t, &mut st.wire, &mut st.sockets) == PollResult::SocketStateChanged;
            follow_dhcp(st);
            if !st.wire.pending() {
                break;
            }
        }
        if st.wire.pending() {
            KICKED.store(true, Ordering::Release);
        }
        let next = st
            .iface
            .poll_at(now(), &st.sockets)
            .map_or(u64::MAX, |t| t.total_micros().max(0) as u64 * 1000);
        POLL_AT.store(next, Ordering::Relaxed);
        changed
    };
    if changed {
        if let Some(hook) = WAKE_HOOK.get() {
            hook();
        }
    }
}

fn follow_dhcp(st: &mut Stack) {
    let Some(h) = st.dhcp else {
        return;
    };
    let event = st.sockets.get_mut::<dhcpv4::Socket>(h).poll();
    match event {
        None => {}
        Some(dhcpv4::Event::Configured(c)) => {
            let (addr, router) = (c.address, c.router);
            st.set_address(Some(addr), router);
            match router {
                Some(gw) => crate::klog!("net: eth0 leased {addr} by DHCP, gateway {gw}"),
                None => crate::klog!("net: eth0 leased {addr} by DHCP, no gateway"),
            }
        }
        // smoltcp also says this when the client (re)starts.
        Some(dhcpv4::Event::Deconfigured) => {
            if st.addr.is_some() {
                crate::klog!("net: eth0 lost its DHCP lease");
            }
            st.set_address(None, None);
        }
    }
}

/// What /proc/net and the interface ioctls show of the stack.
pub struct Snapshot {
    /// The NIC's counters and MAC (None: no NIC).
    pub eth: Option<(Stats, [u8; 6])>,
    /// The loopback's counters.
    pub lo: Stats,
    /// The NIC's address and default gateway.
    pub addr: Option<Ipv4Cidr>,
    pub gateway: Option<Ipv4Address>,
}

/// The counters and addresses, None before the stack is installed.
pub fn snapshot() -> Option<Snapshot> {
    let g = STACK.lock();
    let st = g.as_ref()?;
    Some(Snapshot {
        eth: st.wire.nic.as_ref().map(|n| (n.stats, n.mac)),
        lo: st.wire.lo.stats,
        addr: st.addr,
        gateway: st.gateway,
    })
}
