//! The TCP/IP stack: one smoltcp interface over the NIC, its sockets, and
//! how it is driven.
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
//! socket's state (smoltcp's own per-socket `register_recv_waker`/
//! `register_send_waker` work too, with the `async` feature on): that is
//! where AF_INET sockets will wake their waiters.

use alloc::boxed::Box;
use alloc::vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};
use spin::Mutex;

use super::device::{Nic, Stats};

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
    nic: Nic,
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
static WAKE_HOOK: spin::Once<fn()> = spin::Once::new();

/// The stack's clock: the kernel's monotonic clock.
pub fn now() -> Instant {
    Instant::from_micros((hal::time::now_ns() / 1000) as i64)
}

/// Builds the interface over `nic` and starts addressing it.
pub fn install(mut nic: Nic, cfg: AddrConfig) {
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(nic.mac)));
    let mut seed = [0u8; 8];
    crate::random::fill(&mut seed);
    config.random_seed = u64::from_le_bytes(seed);
    let iface = Interface::new(config, &mut nic, now());
    let mut st = Box::new(Stack {
        iface,
        sockets: SocketSet::new(vec![]),
        nic,
        dhcp: None,
        addr: None,
        gateway: None,
    });
    match cfg {
        AddrConfig::Dhcp => st.dhcp = Some(st.sockets.add(dhcpv4::Socket::new())),
        AddrConfig::Static { addr, gateway } => st.set_address(Some(addr), gateway),
        AddrConfig::Off => {}
    }
    *STACK.lock() = Some(st);
    KICKED.store(true, Ordering::Release);
}

impl Stack {
    /// Gives the interface `addr` (or none) and its default route.
    fn set_address(&mut self, addr: Option<Ipv4Cidr>, gw: Option<Ipv4Address>) {
        self.iface.update_ip_addrs(|a| {
            a.clear();
            if let Some(addr) = addr {
                let _ = a.push(IpCidr::Ipv4(addr));
            }
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = gw {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
        self.addr = addr;
        self.gateway = gw;
    }
}

/// Runs `f` on the interface and the sockets, then polls, so what `f`
/// queued is sent now. None when there is no NIC.
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
/// packets can wait for the next poll. None when there is no NIC.
pub fn with_quiet<R>(f: impl FnOnce(&mut Interface, &mut SocketSet<'static>) -> R) -> Option<R> {
    let mut g = STACK.lock();
    let st = g.as_mut()?;
    Some(f(&mut st.iface, &mut st.sockets))
}

/// Whether there is a NIC with a stack over it.
pub fn present() -> bool {
    STACK.lock().is_some()
}

/// Registers the function called after a poll that may have changed the
/// state of sockets (once; later calls are ignored). The AF_INET socket
/// layer (`net/inet`) is its user.
pub fn set_wake_hook(hook: fn()) {
    WAKE_HOOK.call_once(|| hook);
}

/// Asks for a poll at the owner's next event boundary (the interrupt
/// handler calls this).
pub fn kick() {
    KICKED.store(true, Ordering::Release);
}

/// Whether the owner should poll now: kicked, or smoltcp's timer is due.
pub fn due(now_ns: u64) -> bool {
    KICKED.load(Ordering::Acquire) || POLL_AT.load(Ordering::Relaxed) <= now_ns
}

/// Moves packets: acknowledges the device, lets smoltcp take what was
/// received and send what sockets queued, follows DHCP, and notes when
/// smoltcp next needs a poll.
pub fn poll() {
    KICKED.store(false, Ordering::Release);
    let changed = {
        let mut g = STACK.lock();
        let Some(st) = g.as_mut() else {
            return;
        };
        st.nic.ack_interrupt();
        let mut changed = false;
        // A packet may land between smoltcp's last look and the ack; the
        // second round takes it (the device will not interrupt for it).
        for _ in 0..2 {
            let t = now();
            changed |=
                st.iface.poll(t, &mut st.nic, &mut st.sockets) == PollResult::SocketStateChanged;
            follow_dhcp(st);
            if !st.nic.has_rx() {
                break;
            }
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

/// What /proc/net shows of the interface.
pub struct Snapshot {
    pub stats: Stats,
    pub addr: Option<Ipv4Cidr>,
    pub gateway: Option<Ipv4Address>,
}

/// The interface's counters and addresses, None without a NIC.
pub fn snapshot() -> Option<Snapshot> {
    let g = STACK.lock();
    let st = g.as_ref()?;
    Some(Snapshot {
        stats: st.nic.stats,
        addr: st.addr,
        gateway: st.gateway,
    })
}
