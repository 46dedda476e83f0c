//! AF_INET (ip(7)): SOCK_STREAM (`tcp.rs`) and SOCK_DGRAM (`udp.rs`) over
//! smoltcp's sockets in the stack's socket set (`net::stack`).
//!
//! An `InetSocket` is what the descriptor holds; the smoltcp socket(s)
//! behind it live in the stack's set and are reached by handle under the
//! stack's lock. A TCP socket gets its smoltcp socket at connect (or, for
//! a listener, a few at listen: smoltcp has no accept queue, one
//! listening socket becomes one connection, so a listener keeps a few
//! listening on its port and moves each that becomes established to its
//! own accept queue: `listener.rs`). A UDP socket gets its at bind
//! (explicit, or implicit at the first send/connect).
//!
//! **Wake-ups.** Each socket has its own waiters ([`Waiters`]: a wait
//! queue, a readiness generation for edge-triggered epoll, and the epoll
//! instances watching it), and a `Waker` for them that every readiness
//! check registers as the receive and send waker of the smoltcp
//! socket(s) it looked at ([`arm`]), under the stack's lock. smoltcp
//! wakes it (once; the next look registers it again) when that socket's
//! state changes in a way its calls could see: data or an ACK arrived, a
//! state transition, a reset. So a poll of the stack wakes the waiters
//! of the sockets it changed, not every AF_INET waiter: a blocked
//! reader on socket A sleeps on through traffic on socket B, and an
//! epoll instance watching only AF_INET sockets sleeps on its own queue
//! (`fs::epoll`). A listener's waker is registered on its listening
//! sockets, so a connection's handshake wakes its acceptors. Changes
//! made outside smoltcp (shutdown, release, listen) wake the socket's
//! waiters directly ([`InetSocket::notify`]). The pollers' queue
//! (poll/select, epoll watching other kinds too) is woken with every
//! socket's, as before; a released socket's smoltcp socket (an orphan
//! finishing its FIN exchange) wakes nobody.
//!
//! **Locking.** A socket's own lock, then the stack's; never the other
//! way round. Readiness checks run under the stack's lock without
//! polling ([`stack::with_quiet`]) — polling from inside a waiter's check
//! would wake the waiter itself; what queues packets polls after.
//!
//! **Bounds.** Every smoltcp TCP socket has 256 KiB receive and 256 KiB
//! send buffers (a UDP one 64 KiB each); the number AF_INET holds (connections, listeners' listening sockets,
//! closed-but-finishing ones) is capped ([`max_sockets`], ENOBUFS
//! beyond). A closed TCP socket finishes its FIN exchange as an orphan
//! (with a timeout) and leaves the set when closed.
//!
//! **Loopback.** 127.0.0.0/8 and the interface's own address go through
//! the loopback (`net::wire`), with or without a NIC; a destination of
//! 0.0.0.0 means 127.0.0.1, as on Linux. Other destinations need the
//! NIC's address (ENETUNREACH before it has one).

mod addr;
mod listener;
pub mod procfs;
pub mod synbusy;
mod tcp;
mod udp;

use abi::{Errno, KResult};
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::task::Waker;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::wire::{IpEndpoint, Ipv4Address};
use spin::Mutex;

use crate::net::socket::*;
use crate::net::stack;
use crate::proc::sched::WaitQueue;

pub const AF_INET: u16 = 2;
pub const IPPROTO_IP: u32 = 0;
pub const IPPROTO_TCP: u32 = 6;
pub const IPPROTO_UDP: u32 = 17;
pub const TCP_NODELAY: u32 = 1;
pub const TCP_CORK: u32 = 3;

/// Each smoltcp TCP socket's receive and send buffers: four segments of
/// the loopback's 64 KiB MSS in flight, so the receiver ACKs every
/// second one at once (smoltcp acknowledges when more than one MSS is
/// unacknowledged) instead of each waiting out the 10 ms delayed ACK.
pub const BUF: usize = 256 * 1024;
/// Each smoltcp UDP socket's receive and send buffers.
pub const UDP_BUF: usize = 64 * 1024;

/// Takes `port` of socket type `ty` for a kernel user of the stack (the
/// cluster's braid sockets), so that a program's bind to it gets
/// EADDRINUSE instead of sharing it.
pub fn reserve_port(ty: u32, port: u16) -> KResult<u16> {
    addr::claim(ty, port)
}

/// The family entry socket(2) uses.
pub const FAMILY: Family = Family {
    domain: AF_INET,
    create,
    pair: None,
};

/// Shutdown bits.
const RCV: u8 = 1;
const SEND: u8 = 2;

/// One socket's waiters, woken through its `Waker` (smoltcp) or
/// [`InetSocket::notify`].
pub(super) struct Waiters {
    /// Blocked callers (accept, connect, send, recv without a timeout).
    wq: WaitQueue,
    /// Bumped at every wake-up (edge-triggered epoll).
    gen: AtomicU64,
    /// Epoll instances watching the socket.
    watchers: alloc::sync::Arc<crate::fs::epoll::Watchers>,
}

impl Waiters {
    fn wake(&self) {
        self.gen.fetch_add(1, Ordering::AcqRel);
        self.wq.wake_all();
        self.watchers.wake();
        crate::fs::POLL_WQ.wake_all();
    }
}

impl alloc::task::Wake for Waiters {
    fn wake(self: Arc<Self>) {
        Waiters::wake(&self);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        Waiters::wake(self);
    }
}

/// Registers `w` as a TCP socket's receive and send waker (under the
/// stack's lock, by a look at its state: a change after the look wakes
/// `w`).
pub(super) fn arm(sock: &mut smoltcp::socket::tcp::Socket, w: &Waker) {
    sock.register_recv_waker(w);
    sock.register_send_waker(w);
}
/// smoltcp sockets AF_INET holds now.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Every live socket of the family by inode (/proc/net/tcp, udp).
static LIVE: Mutex<BTreeMap<u64, Weak<InetSocket>>> = Mutex::new(BTreeMap::new());
/// Closed TCP sockets still finishing their FIN exchange.
static ORPHANS: Mutex<Vec<SocketHandle>> = Mutex::new(Vec::new());

/// The most smoltcp sockets AF_INET may hold: a quarter of the heap in
/// their buffers (counted at the TCP size), between 8 and 256: 121 with
/// `-m 1024` (a 243 MiB heap).
pub fn max_sockets() -> usize {
    (hal::heap::size() / 4 / (2 * BUF)).clamp(8, 256)
}

/// Counts one more smoltcp socket, or ENOBUFS at the cap.
fn reserve() -> KResult<()> {
    HELD.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < max_sockets()).then_some(n + 1)
    })
    .map(|_| ())
    .map_err(|_| Errno::ENOBUFS)
}

fn unreserve() {
    HELD.fetch_sub(1, Ordering::AcqRel);
}

/// The stack's hook after a poll that changed sockets (their waiters
/// were woken by their wakers during it): drop orphans that are done,
/// move established connections to their accept queues and refill
/// listeners short of listening sockets (the sweep may have freed some
/// under the cap).
fn on_stack_change() {
    sweep();
    listener::on_poll();
}

/// Removes orphaned TCP sockets that reached Closed or TimeWait; whether
/// it removed any.
fn sweep() -> bool {
    let Some(mut o) = ORPHANS.try_lock() else {
        return false;
    };
    if o.is_empty() {
        return false;
    }
    let before = o.len();
    stack::with_quiet(|_, set| {
        o.retain(|&h| {
            use smoltcp::socket::tcp::State;
            let st = set.get::<smoltcp::socket::tcp::Socket>(h).state();
            if matches!(st, State::Closed | State::TimeWait) {
                set.remove(h);
                unreserve();
                false
            } else {
                true
            }
        })
    });
    o.len() < before
}

/// Runs `f` under the stack's lock without polling (ENETDOWN: no NIC).
fn quiet<R>(f: impl FnOnce(&mut Interface, &mut SocketSet<'static>) -> R) -> KResult<R> {
    stack::with_quiet(f).ok_or(Errno::ENETDOWN)
}

/// Waits until `f` decides (Some), on `s`'s queue (`f` looks at `s`'s
/// smoltcp socket, which arms its waker); with `nonblock` only looks
/// once (EAGAIN); with a timeout (`timeo` ns, SO_RCVTIMEO/SO_SNDTIMEO; 0
/// none) gives EAGAIN once it passes. Signals interrupt (EINTR).
///
/// A timed wait sleeps on the pollers' queue instead: every socket's
/// wake-up wakes it too, and its deadlines are what the tick checks.
fn wait<T>(
    s: &InetSocket,
    nonblock: bool,
    timeo: u64,
    mut f: impl FnMut() -> Option<KResult<T>>,
) -> KResult<T> {
    if nonblock {
        return f().unwrap_or(Err(Errno::EAGAIN));
    }
    if timeo == 0 {
        return s.waiters.wq.wait_until(f)?;
    }
    let deadline = hal::time::now_ns().saturating_add(timeo);
    crate::fs::POLL_WQ.wait_until(|| {
        if let Some(r) = f() {
            return Some(r);
        }
        crate::fs::POLL_DEADLINES.note(deadline);
        (hal::time::now_ns() >= deadline).then_some(Err(Errno::EAGAIN))
    })?
}

/// SO_RCVTIMEO / SO_SNDTIMEO from a struct timeval: ns, 0 for none
/// ({0, 0}); a negative time is 1 ns (Linux: no wait at all); EDOM for
/// microseconds outside 0..1000000.
fn read_timeo(val: &[u8]) -> KResult<u64> {
    let w = |i: usize| -> KResult<i64> {
        Ok(i64::from_le_bytes(
            val.get(i..i + 8)
                .ok_or(Errno::EINVAL)?
                .try_into()
                .map_err(|_| Errno::EINVAL)?,
        ))
    };
    let (sec, usec) = (w(0)?, w(8)?);
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    if sec < 0 {
        return Ok(1);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(usec as u64 * 1000))
}

/// A timeout (ns) as the struct timeval getsockopt returns.
fn timeval(ns: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&((ns / 1_000_000_000) as i64).to_le_bytes());
    v.extend_from_slice(&((ns % 1_000_000_000 / 1000) as i64).to_le_bytes());
    v
}

/// The interface's address, if it has one.
fn iface_addr() -> Option<Ipv4Address> {
    stack::snapshot().and_then(|s| s.addr).map(|c| c.address())
}

/// The address to send to for destination `a`, if the stack can reach
/// it: loopback always (0.0.0.0 standing for 127.0.0.1), others once the
/// NIC has an address.
fn route(a: Ipv4Address) -> KResult<Ipv4Address> {
    if a.is_unspecified() {
        return Ok(Ipv4Address::new(127, 0, 0, 1));
    }
    if a.is_loopback() || Some(a) == iface_addr() {
        return Ok(a);
    }
    if iface_addr().is_none() {
        return Err(Errno::ENETUNREACH);
    }
    Ok(a)
}

struct St {
    /// The bound address and port (the port is ours in `addr`'s table
    /// when `owns_port`; an accepted socket shares its listener's).
    local: Option<(Ipv4Address, u16)>,
    owns_port: bool,
    /// A listener's smoltcp sockets: listening on its port, half-open,
    /// and its accept queue.
    listen: Option<listener::Listener>,
    /// The TCP connection's or the UDP socket's smoltcp socket.
    h: Option<SocketHandle>,
    /// TCP: the remote end; UDP: the connected default destination.
    peer: Option<IpEndpoint>,
    /// A TCP connect in progress (non-blocking or interrupted).
    connecting: bool,
    /// When that connect began (ns): tells a timeout from a refusal.
    connect_start: u64,
    /// The error SO_ERROR reports (and the next call returns).
    error: Option<Errno>,
    shut: u8,
    nodelay: bool,
    /// TCP_CORK: while set, small writes are held back (Nagle on,
    /// whatever TCP_NODELAY says) so they leave as full segments.
    cork: bool,
    reuseaddr: bool,
}

impl St {
    /// Whether the TCP socket coalesces small writes: Nagle unless
    /// TCP_NODELAY, always while corked.
    fn nagle(&self) -> bool {
        !self.nodelay || self.cork
    }
}

/// One AF_INET socket.
pub struct InetSocket {
    ty: u32,
    ino: u64,
    waiters: Arc<Waiters>,
    /// Wakes `waiters`: what [`arm`] registers with smoltcp.
    waker: Waker,
    st: Mutex<St>,
    released: AtomicBool,
    /// SO_RCVTIMEO and SO_SNDTIMEO in ns (0: none).
    rcvtimeo: AtomicU64,
    sndtimeo: AtomicU64,
}

fn create(ty: u32, proto: u32) -> KResult<Arc<dyn Socket>> {
    match (ty, proto) {
        (SOCK_STREAM, 0 | IPPROTO_TCP) | (SOCK_DGRAM, 0 | IPPROTO_UDP) => {}
        (SOCK_STREAM | SOCK_DGRAM | SOCK_RAW, _) => return Err(Errno::EPROTONOSUPPORT),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    }
    stack::set_wake_hook(on_stack_change);
    Ok(InetSocket::new(ty))
}

impl InetSocket {
    fn new(ty: u32) -> Arc<InetSocket> {
        let waiters = Arc::new(Waiters {
            wq: WaitQueue::new(),
            gen: AtomicU64::new(0),
            watchers: crate::fs::epoll::Watchers::new(),
        });
        let s = Arc::new(InetSocket {
            ty,
            ino: next_ino(),
            waker: Waker::from(waiters.clone()),
            waiters,
            st: Mutex::new(St {
                local: None,
                owns_port: false,
                listen: None,
                h: None,
                peer: None,
                connecting: false,
                connect_start: 0,
                error: None,
                shut: 0,
                nodelay: false,
                cork: false,
                reuseaddr: false,
            }),
            released: AtomicBool::new(false),
            rcvtimeo: AtomicU64::new(0),
            sndtimeo: AtomicU64::new(0),
        });
        LIVE.lock().insert(s.ino, Arc::downgrade(&s));
        s
    }

    /// Something about the socket changed without smoltcp (shutdown,
    /// release, listen): wakes its waiters.
    fn notify(&self) {
        self.waiters.wake();
    }

    /// Binds `st` to (addr, port), port 0 choosing an ephemeral one.
    fn bind_locked(&self, st: &mut St, a: Ipv4Address, port: u16) -> KResult<()> {
        if st.local.is_some() {
            return Err(Errno::EINVAL);
        }
        if !a.is_unspecified() && !a.is_loopback() && Some(a) != iface_addr() {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let port = addr::claim(self.ty, port)?;
        st.local = Some((a, port));
        st.owns_port = true;
        Ok(())
    }

    /// The local port, binding an ephemeral one if there is none yet.
    fn autobind(&self, st: &mut St) -> KResult<(Ipv4Address, u16)> {
        if st.local.is_none() {
            self.bind_locked(st, Ipv4Address::UNSPECIFIED, 0)?;
        }
        Ok(st.local.expect("bound above"))
    }
}

impl Socket for InetSocket {
    fn family(&self) -> u16 {
        AF_INET
    }

    fn sock_type(&self) -> u32 {
        self.ty
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn bind(&self, raw: &[u8]) -> KResult<()> {
        let (a, port) = match addr::parse(raw)? {
            addr::Target::Inet(a, p) => (a, p),
            // Linux takes AF_UNSPEC with INADDR_ANY for compatibility.
            addr::Target::Unspec if raw.len() >= 8 && raw[4..8] == [0; 4] => (
                Ipv4Address::UNSPECIFIED,
                u16::from_be_bytes([raw[2], raw[3]]),
            ),
            addr::Target::Unspec => return Err(Errno::EAFNOSUPPORT),
        };
        let mut st = self.st.lock();
        self.bind_locked(&mut st, a, port)?;
        if self.ty == SOCK_DGRAM {
            if let Err(e) = udp::open(&mut st) {
                if let Some((_, p)) = st.local.take() {
                    addr::free(self.ty, p);
                }
                return Err(e);
            }
            // A receive blocked before the socket had a smoltcp socket
            // armed no waker: it looks again now.
            self.notify();
        }
        Ok(())
    }

    fn listen(&self, backlog: i32) -> KResult<()> {
        if self.ty != SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        tcp::listen(self, backlog)
    }

    fn accept(&self, flags: u32) -> KResult<Arc<dyn Socket>> {
        if self.ty != SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        tcp::accept(self, flags).map(|s| s as Arc<dyn Socket>)
    }

    fn connect(&self, raw: &[u8], flags: u32) -> KResult<()> {
        if self.ty == SOCK_STREAM {
            tcp::connect(self, raw, flags)
        } else {
            udp::connect(self, raw)
        }
    }

    fn shutdown(&self, how: u32) -> KResult<()> {
        let bits = match how {
            0 => RCV,
            1 => SEND,
            2 => RCV | SEND,
            _ => return Err(Errno::EINVAL),
        };
        if self.ty == SOCK_STREAM {
            tcp::shutdown(self, bits)?;
        } else {
            let mut st = self.st.lock();
            if st.peer.is_none() {
                return Err(Errno::ENOTCONN);
            }
            st.shut |= bits;
        }
        self.notify();
        Ok(())
    }

    fn local_name(&self) -> KResult<Vec<u8>> {
        let st = self.st.lock();
        if let (Some(h), SOCK_STREAM) = (st.h, self.ty) {
            let e = quiet(|_, set| set.get::<smoltcp::socket::tcp::Socket>(h).local_endpoint())
                .ok()
                .flatten();
            if let Some(e) = e {
                return Ok(addr::endpoint_addr(e));
            }
        }
        let (a, p) = st.local.unwrap_or((Ipv4Address::UNSPECIFIED, 0));
        Ok(addr::sockaddr(a, p))
    }

    fn peer_name(&self) -> KResult<Vec<u8>> {
        let st = self.st.lock();
        if self.ty == SOCK_STREAM && (st.connecting || st.h.is_none()) {
            return Err(Errno::ENOTCONN);
        }
        st.peer.map(addr::endpoint_addr).ok_or(Errno::ENOTCONN)
    }

    fn send(
        &self,
        data: &[u8],
        _anc: Option<Ancillary>,
        to: Option<&[u8]>,
        flags: u32,
    ) -> KResult<usize> {
        if self.ty == SOCK_STREAM {
            tcp::send(self, data, flags)
        } else {
            udp::send(self, data, to, flags)
        }
    }

    fn recv(&self, max: usize, flags: u32) -> KResult<Received> {
        if self.ty == SOCK_STREAM {
            tcp::recv(self, max, flags)
        } else {
            udp::recv(self, max, flags)
        }
    }

    fn recv_user(&self, va: u64, len: usize, flags: u32) -> Option<KResult<usize>> {
        if self.ty == SOCK_STREAM {
            tcp::recv_user(self, va, len, flags)
        } else {
            None
        }
    }

    fn send_user(&self, va: u64, len: usize, flags: u32) -> Option<KResult<usize>> {
        if self.ty == SOCK_STREAM {
            tcp::send_user(self, va, len, flags)
        } else {
            None
        }
    }

    fn poll(&self) -> u16 {
        if self.ty == SOCK_STREAM {
            tcp::poll(self)
        } else {
            udp::poll(self)
        }
    }

    fn poll_gen(&self) -> u64 {
        self.waiters.gen.load(Ordering::Acquire)
    }

    fn watchers(&self) -> Option<alloc::sync::Arc<crate::fs::epoll::Watchers>> {
        Some(self.waiters.watchers.clone())
    }

    fn getsockopt(&self, level: u32, name: u32) -> KResult<Vec<u8>> {
        if self.ty == SOCK_STREAM {
            tcp::settle(self);
        }
        let mut st = self.st.lock();
        match (level, name) {
            (IPPROTO_TCP, TCP_NODELAY) if self.ty == SOCK_STREAM => {
                return Ok(int_opt(st.nodelay as i32))
            }
            (IPPROTO_TCP, TCP_CORK) if self.ty == SOCK_STREAM => {
                return Ok(int_opt(st.cork as i32))
            }
            (SOL_SOCKET, _) => {}
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(match name {
            SO_TYPE => int_opt(self.ty as i32),
            SO_DOMAIN => int_opt(AF_INET as i32),
            SO_PROTOCOL => int_opt(if self.ty == SOCK_STREAM {
                IPPROTO_TCP
            } else {
                IPPROTO_UDP
            } as i32),
            SO_ERROR => int_opt(st.error.take().map_or(0, |e| e.0 as i32)),
            SO_SNDBUF | SO_RCVBUF => {
                int_opt(if self.ty == SOCK_STREAM { BUF } else { UDP_BUF } as i32)
            }
            SO_REUSEADDR => int_opt(st.reuseaddr as i32),
            SO_ACCEPTCONN => int_opt(st.listen.is_some() as i32),
            SO_REUSEPORT | SO_KEEPALIVE | SO_BROADCAST | SO_DEBUG | SO_DONTROUTE | SO_OOBINLINE => {
                int_opt(0)
            }
            SO_RCVLOWAT | SO_SNDLOWAT => int_opt(1),
            SO_LINGER => alloc::vec![0; 8],
            SO_RCVTIMEO => timeval(self.rcvtimeo.load(Ordering::Relaxed)),
            SO_SNDTIMEO => timeval(self.sndtimeo.load(Ordering::Relaxed)),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn setsockopt(&self, level: u32, name: u32, val: &[u8]) -> KResult<()> {
        match (level, name) {
            (IPPROTO_TCP, TCP_NODELAY | TCP_CORK) if self.ty == SOCK_STREAM => {
                let on = read_int_opt(val)? != 0;
                let (h, nagle) = {
                    let mut st = self.st.lock();
                    if name == TCP_NODELAY {
                        st.nodelay = on;
                    } else {
                        st.cork = on;
                    }
                    (st.h, st.nagle())
                };
                // Uncorking turns Nagle off again under TCP_NODELAY, which
                // sends what was held; with Nagle on, held data leaves as
                // the peer acknowledges (Linux also pushes it at once).
                if let Some(h) = h {
                    let _ = quiet(|_, set| {
                        set.get_mut::<smoltcp::socket::tcp::Socket>(h)
                            .set_nagle_enabled(nagle)
                    });
                }
                return Ok(());
            }
            (SOL_SOCKET, _) => {}
            (IPPROTO_TCP | IPPROTO_IP | IPPROTO_UDP, _) => return Err(Errno::ENOPROTOOPT),
            _ => return Err(Errno::ENOPROTOOPT),
        }
        match name {
            SO_REUSEADDR => self.st.lock().reuseaddr = read_int_opt(val)? != 0,
            // Accepted without effect (fixed buffers; no
            // keepalives yet).
            SO_SNDBUF | SO_RCVBUF | SO_SNDBUFFORCE | SO_RCVBUFFORCE | SO_REUSEPORT
            | SO_KEEPALIVE | SO_BROADCAST | SO_DEBUG | SO_DONTROUTE | SO_OOBINLINE
            | SO_RCVLOWAT | SO_SNDLOWAT => {
                read_int_opt(val)?;
            }
            SO_LINGER if val.len() >= 8 => {}
            SO_RCVTIMEO => self.rcvtimeo.store(read_timeo(val)?, Ordering::Relaxed),
            SO_SNDTIMEO => self.sndtimeo.store(read_timeo(val)?, Ordering::Relaxed),
            SO_LINGER => return Err(Errno::EINVAL),
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn readable_len(&self) -> usize {
        if self.ty == SOCK_STREAM {
            tcp::readable_len(self)
        } else {
            udp::readable_len(self)
        }
    }

    fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let (h, listen, local, owns) = {
            let mut st = self.st.lock();
            st.shut = RCV | SEND;
            (st.h.take(), st.listen.take(), st.local, st.owns_port)
        };
        if let (Some((_, p)), true) = (local, owns) {
            addr::free(self.ty, p);
        }
        if let (Some((a, p)), true) = (local, listen.is_some()) {
            synbusy::remove(a, p);
            listener::unregister(self.ino);
        }
        if self.ty == SOCK_STREAM {
            tcp::release(h, listen);
        } else if let Some(h) = h {
            let _ = quiet(|_, set| set.remove(h));
            unreserve();
        }
        self.notify();
    }
}

impl Drop for InetSocket {
    fn drop(&mut self) {
        self.release();
        LIVE.lock().remove(&self.ino);
    }
}
