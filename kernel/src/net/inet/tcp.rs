//! AF_INET SOCK_STREAM over smoltcp's TCP sockets.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec;
use core::sync::atomic::Ordering;
use core::task::Waker;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Duration;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint, Ipv4Address};

use super::listener::{self, Listener};
use super::{
    addr, arm, quiet, reserve, route, unreserve, wait, InetSocket, St, ORPHANS, RCV, SEND,
};
use crate::fs::file::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::net::socket::*;
use crate::net::stack;
use crate::net::unix::POLLRDHUP;

/// How long a connect (and a closed socket's FIN exchange) may wait for
/// the peer before smoltcp gives up.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How long a listening socket that got a SYN waits for the handshake's
/// last ACK. Linux gives a SYN-RECV entry 5 SYN-ACK resends (~63 s);
/// here a listener has a few listening sockets, so a half-open one (a
/// SYN flood's spoofed peer never answers) holds a larger share of them:
/// 20 s of silence, then it is reset and its place listens again
/// (`listener::refill`).
const SYN_TIMEOUT: Duration = Duration::from_secs(20);

/// A zeroed socket buffer, or ENOBUFS if the heap has no room for it
/// (the socket cap keeps all of them to a quarter of the heap, but the
/// rest of the kernel may have taken or fragmented the remainder: an
/// allocation failure must not be a panic).
fn buffer() -> KResult<alloc::vec::Vec<u8>> {
    let mut v = alloc::vec::Vec::new();
    v.try_reserve_exact(super::BUF)
        .map_err(|_| Errno::ENOBUFS)?;
    v.resize(super::BUF, 0);
    Ok(v)
}

/// A new smoltcp TCP socket with the family's buffers, counted.
fn new_socket(nodelay: bool) -> KResult<tcp::Socket<'static>> {
    reserve()?;
    let (rx, tx) = match (buffer(), buffer()) {
        (Ok(rx), Ok(tx)) => (rx, tx),
        _ => {
            unreserve();
            return Err(Errno::ENOBUFS);
        }
    };
    let mut s = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
    s.set_nagle_enabled(!nodelay);
    // Until the peer is known (`ack_for_peer`), every segment is
    // acknowledged at once.
    s.set_ack_delay(None);
    Ok(s)
}

/// How long a connection to a peer on the wire holds back a pure ACK,
/// hoping to carry it on the reply: a request answered within it costs
/// one frame each way instead of two (612-byte lighttpd pages through
/// the NIC: p50 ~10% lower, measured). Short, so that a sender whose
/// Nagle waits for our ACK (two small writes) stalls ~1-2 ms, not
/// Linux's 40 ms; smoltcp still acknowledges every second full segment
/// at once.
const WIRE_ACK_DELAY: Duration = Duration::from_millis(1);

/// Sets `sock`'s ACK policy for `peer`: delayed on the wire, immediate
/// over the loopback (`own` is the interface's address), where an ACK is
/// a frame in memory and a segment can fill the window: there a delayed
/// ACK stalls a bulk sender (in-guest 1 MiB downloads: -26% requests/s,
/// measured).
fn ack_for_peer(sock: &mut tcp::Socket, peer: Option<IpEndpoint>, own: Option<Ipv4Address>) {
    let local = peer.is_none_or(|p| match p.addr {
        smoltcp::wire::IpAddress::Ipv4(a) => a.is_loopback() || Some(a) == own,
    });
    sock.set_ack_delay((!local).then_some(WIRE_ACK_DELAY));
}

fn listen_ep(local: (Ipv4Address, u16)) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!local.0.is_unspecified()).then_some(local.0.into()),
        port: local.1,
    }
}

/// Adds a listening socket on `local` to the set, waking `w` (the
/// listener's) when it changes state.
pub(super) fn add_listener(
    local: (Ipv4Address, u16),
    nodelay: bool,
    w: &Waker,
) -> KResult<SocketHandle> {
    let mut s = new_socket(nodelay)?;
    s.set_timeout(Some(SYN_TIMEOUT));
    arm(&mut s, w);
    if s.listen(listen_ep(local)).is_err() {
        unreserve();
        return Err(Errno::EINVAL);
    }
    match quiet(|_, set| set.add(s)) {
        Ok(h) => Ok(h),
        Err(e) => {
            unreserve();
            Err(e)
        }
    }
}

pub(super) fn listen(s: &InetSocket, backlog: i32) -> KResult<()> {
    let mut st = s.st.lock();
    if st.h.is_some() {
        return Err(Errno::EINVAL);
    }
    if let Some(l) = st.listen.as_mut() {
        // Linux: listen again on a listener changes its backlog.
        l.max = listener::limit(backlog);
    } else {
        if !stack::present() {
            return Err(Errno::ENETDOWN);
        }
        let local = s.autobind(&mut st)?;
        // The first listening socket must exist (ENOBUFS otherwise); the
        // rest come as the cap allows.
        let first = add_listener(local, st.nodelay, &s.waker)?;
        let mut l = Listener::new(backlog, s.waker.clone());
        l.half.push_back(first);
        st.listen = Some(l);
        super::synbusy::add(local.0, local.1);
        listener::register(s.ino);
    }
    let released = listener::refill(&mut st);
    drop(st);
    if released {
        stack::poll();
    }
    s.notify();
    Ok(())
}

pub(super) fn accept(s: &InetSocket, flags: u32) -> KResult<Arc<InetSocket>> {
    let nonblock = flags & MSG_DONTWAIT != 0;
    let timeo = s.rcvtimeo.load(Ordering::Relaxed);
    let (h, local, nodelay) = wait(s, nonblock, timeo, || {
        let mut st = s.st.lock();
        let local = st.local?;
        let nodelay = st.nodelay;
        match listener::take(&mut st) {
            Ok(Some(h)) => Some(Ok((h, local, nodelay))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    })?;
    // SYNs parked for the place this accept freed.
    if super::synbusy::has_ready() {
        stack::poll();
    }
    let c = InetSocket::new(SOCK_STREAM);
    let own = super::iface_addr();
    // From now on its changes wake the new socket's waiters, not the
    // listener's.
    let peer = quiet(|_, set| {
        let sock = set.get_mut::<tcp::Socket>(h);
        arm(sock, &c.waker);
        let peer = sock.remote_endpoint();
        ack_for_peer(sock, peer, own);
        peer
    })?;
    {
        let mut cs = c.st.lock();
        cs.local = Some(local);
        cs.h = Some(h);
        cs.peer = peer;
        cs.nodelay = nodelay;
    }
    Ok(c)
}

/// Resolves a connect in progress: established (done) or closed (the
/// error SO_ERROR reports: refused, or timed out after [`TIMEOUT`]).
/// Arms `w`, the socket's waker.
fn settle_locked(st: &mut St, w: &Waker) {
    let Some(h) = st.h.filter(|_| st.connecting) else {
        return;
    };
    let state = quiet(|_, set| {
        let sock = set.get_mut::<tcp::Socket>(h);
        arm(sock, w);
        let state = sock.state();
        match state {
            State::SynSent | State::SynReceived => {}
            State::Closed => {
                set.remove(h);
            }
            _ => sock.set_timeout(None),
        }
        state
    });
    match state {
        Ok(State::SynSent | State::SynReceived) => {}
        Ok(State::Closed) => {
            unreserve();
            st.h = None;
            st.connecting = false;
            let waited = hal::time::now_ns().saturating_sub(st.connect_start);
            st.error = Some(if waited >= TIMEOUT.total_millis() * 1_000_000 {
                Errno::ETIMEDOUT
            } else {
                Errno::ECONNREFUSED
            });
        }
        _ => st.connecting = false,
    }
}

pub(super) fn settle(s: &InetSocket) {
    settle_locked(&mut s.st.lock(), &s.waker);
}

pub(super) fn connect(s: &InetSocket, raw: &[u8], flags: u32) -> KResult<()> {
    let nonblock = flags & MSG_DONTWAIT != 0;
    {
        let mut st = s.st.lock();
        settle_locked(&mut st, &s.waker);
        if st.listen.is_some() {
            return Err(Errno::EINVAL);
        }
        if st.connecting {
            if nonblock {
                return Err(Errno::EALREADY);
            }
        } else if st.h.is_some() {
            return Err(Errno::EISCONN);
        } else {
            let (a, port) = addr::parse_inet(raw)?;
            // A failed non-blocking connect's error not yet collected.
            st.error = None;
            let a = route(a)?;
            let local = s.autobind(&mut st)?;
            let remote = IpEndpoint::new(a.into(), port);
            let mut sock = new_socket(!st.nagle())?;
            sock.set_timeout(Some(TIMEOUT));
            ack_for_peer(&mut sock, Some(remote), super::iface_addr());
            arm(&mut sock, &s.waker);
            let r = stack::with(|iface, set| {
                sock.connect(iface.context(), remote, local.1)?;
                Ok::<_, tcp::ConnectError>(set.add(sock))
            });
            let h = match r {
                Some(Ok(h)) => h,
                Some(Err(_)) => {
                    unreserve();
                    return Err(Errno::EINVAL);
                }
                None => {
                    unreserve();
                    return Err(Errno::ENETDOWN);
                }
            };
            st.h = Some(h);
            st.peer = Some(remote);
            st.connecting = true;
            st.connect_start = hal::time::now_ns();
            if nonblock {
                return Err(Errno::EINPROGRESS);
            }
        }
    }
    // SO_SNDTIMEO bounds a connect too; the handshake goes on (Linux:
    // EINPROGRESS, as for a non-blocking one).
    let timeo = s.sndtimeo.load(Ordering::Relaxed);
    let r = wait(s, false, timeo, || {
        let mut st = s.st.lock();
        settle_locked(&mut st, &s.waker);
        if st.connecting {
            return None;
        }
        Some(match st.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        })
    });
    match r {
        Err(Errno::EAGAIN) => Err(Errno::EINPROGRESS),
        r => r,
    }
}

/// A connection's handle, or the error to report.
fn conn(st: &mut St, w: &Waker) -> KResult<SocketHandle> {
    settle_locked(st, w);
    if let Some(e) = st.error.take() {
        return Err(e);
    }
    st.h.ok_or(Errno::ENOTCONN)
}

/// Whether a socket's send buffer has room enough to wake a writer:
/// free space at least half of what is queued (Linux's
/// `sk_stream_is_writeable`). Waking a writer (or reporting POLLOUT) as
/// soon as one byte is free had it copy a few KiB per call and sleep
/// again, a system call and a wake-up per ACK.
fn writeable(sock: &tcp::Socket) -> bool {
    let queued = sock.send_queue();
    sock.send_capacity() - queued >= queued / 2
}

/// Whether a read that left `after` bytes of `sock`'s receive queue,
/// which held `before`, should poll the stack at once to tell the peer
/// its window opened: only when it crossed half the buffer (from less
/// than half free to at least half). A read that leaves the window
/// small would only announce a small one (the sender then sends
/// segments as small as the reads: silly window syndrome), and a poll
/// walks every socket of the stack. Other reads ask the stack's owner
/// for a poll at its next event boundary ([`after_read`]).
fn opens_window(sock: &tcp::Socket, before: usize, after: usize) -> bool {
    let half = sock.recv_capacity() / 2;
    before > half && after <= half
}

/// After a read of `n` bytes: the window it opened is told to the peer
/// now when it crossed half the buffer ([`opens_window`]), or else at
/// the stack owner's next event boundary (a tick at most), batched with
/// every other read until then. smoltcp announces a window once it has
/// doubled, which a read that does not cross half can already do; left
/// to whoever polled next, the announcement could wait for the sender's
/// zero-window probe, one RTO (1 s at least in smoltcp): Debian's
/// lighttpd serving 1 MiB over the loopback to wrk stalled 1 s in 3 of 8
/// runs (p99 0.92-0.97 s), in none of 8 with this (polling at once after
/// every read did the same at half the requests per second).
fn after_read(update: bool, n: usize) {
    if update {
        stack::poll();
    } else if n > 0 {
        stack::kick();
    }
}

pub(super) fn send(s: &InetSocket, data: &[u8], flags: u32) -> KResult<usize> {
    send_with(s, flags, |sock| {
        sock.send_slice(data).map_err(|_| Errno::EPIPE)
    })
}

/// A send straight from user memory at `va` into smoltcp's send ring
/// (no kernel staging buffer): the copy runs under the stack's lock, so
/// it is the no-fault one; a fault before any byte moved gives None
/// (the syscall layer then sends the same bytes the staged way, which
/// faults the pages in).
pub(super) fn send_user(s: &InetSocket, va: u64, len: usize, flags: u32) -> Option<KResult<usize>> {
    let r = send_with(s, flags, |sock| {
        let mut done = 0;
        let mut fault = false;
        // The ring's free space is at most two pieces (it wraps).
        for _ in 0..2 {
            if done == len || fault {
                break;
            }
            let _ = sock.send(|b| {
                let k = b.len().min(len - done);
                if !crate::uaccess::copy_in_nofault(va + done as u64, &mut b[..k]) {
                    fault = true;
                    return (0, ());
                }
                done += k;
                (k, ())
            });
        }
        Ok((done > 0 || !fault).then_some(done))
    });
    match r {
        Ok(Some(n)) => Some(Ok(n)),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }
}

/// A stream send: waits (unless non-blocking) until the connection can
/// take data, then lets `put` queue what fits.
fn send_with<T>(
    s: &InetSocket,
    flags: u32,
    mut put: impl FnMut(&mut tcp::Socket) -> KResult<T>,
) -> KResult<T> {
    let nonblock = flags & MSG_DONTWAIT != 0;
    let timeo = s.sndtimeo.load(Ordering::Relaxed);
    // The first look copies what fits; once the writer has slept, it
    // waits until the buffer is writeable again (the hysteresis above).
    let mut slept = false;
    let n = wait(s, nonblock, timeo, || {
        let mut st = s.st.lock();
        if st.shut & SEND != 0 {
            return Some(Err(Errno::EPIPE));
        }
        let h = match conn(&mut st, &s.waker) {
            Ok(h) => h,
            Err(Errno::ENOTCONN) => return Some(Err(Errno::EPIPE)),
            Err(e) => return Some(Err(e)),
        };
        let r = quiet(|_, set| {
            let sock = set.get_mut::<tcp::Socket>(h);
            arm(sock, &s.waker);
            if sock.can_send() && (!slept || writeable(sock)) {
                return Some(put(sock));
            }
            slept = true;
            match sock.state() {
                State::SynSent | State::SynReceived => None,
                State::Closed => Some(Err(Errno::ECONNRESET)),
                _ if !sock.may_send() => Some(Err(Errno::EPIPE)),
                _ => None,
            }
        });
        r.unwrap_or_else(|e| Some(Err(e)))
    })?;
    stack::poll();
    Ok(n)
}

pub(super) fn recv(s: &InetSocket, max: usize, flags: u32) -> KResult<Received> {
    let nonblock = flags & MSG_DONTWAIT != 0;
    let peek = flags & MSG_PEEK != 0;
    let timeo = s.rcvtimeo.load(Ordering::Relaxed);
    let data = wait(s, nonblock, timeo, || {
        let mut st = s.st.lock();
        if st.shut & RCV != 0 {
            return Some(Ok((vec![], false)));
        }
        let h = match conn(&mut st, &s.waker) {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        if max == 0 {
            return Some(Ok((vec![], false)));
        }
        let r = quiet(|_, set| {
            let sock = set.get_mut::<tcp::Socket>(h);
            arm(sock, &s.waker);
            if sock.can_recv() {
                let before = sock.recv_queue();
                let want = max.min(before);
                if peek {
                    let mut buf = match crate::uaccess::kernel_buf(want) {
                        Ok(b) => b,
                        Err(e) => return Some(Err(e)),
                    };
                    let n = sock.peek_slice(&mut buf);
                    buf.truncate(n.unwrap_or(0));
                    return Some(Ok((buf, false)));
                }
                // Copied straight out of the ring (its two parts when it
                // wraps), not into a zeroed buffer first: for a 128 KiB
                // read that was a 128 KiB memset per call.
                let mut buf = alloc::vec::Vec::new();
                if buf.try_reserve_exact(want).is_err() {
                    return Some(Err(Errno::ENOMEM));
                }
                for _ in 0..2 {
                    let _ = sock.recv(|b| {
                        let k = b.len().min(want - buf.len());
                        buf.extend_from_slice(&b[..k]);
                        (k, ())
                    });
                }
                let update = opens_window(sock, before, sock.recv_queue());
                return Some(Ok((buf, update)));
            }
            match sock.state() {
                State::SynSent | State::SynReceived => None,
                // The peer's FIN (or the end of the connection): EOF.
                _ if !sock.may_recv() => Some(Ok((vec![], false))),
                _ => None,
            }
        });
        r.unwrap_or_else(|e| Some(Err(e)))
    })?;
    let (data, update) = data;
    after_read(update, data.len());
    Ok(Received {
        full_len: data.len(),
        data,
        from: None,
        anc: None,
    })
}

/// A receive straight from smoltcp's receive ring into user memory at
/// `va` (no kernel staging buffer), as [`send_user`]: None if the copy
/// faulted before any byte moved (the data stays queued for the staged
/// path).
pub(super) fn recv_user(s: &InetSocket, va: u64, max: usize, flags: u32) -> Option<KResult<usize>> {
    let nonblock = flags & MSG_DONTWAIT != 0;
    let timeo = s.rcvtimeo.load(Ordering::Relaxed);
    let r = wait(s, nonblock, timeo, || {
        let mut st = s.st.lock();
        if st.shut & RCV != 0 {
            return Some(Ok((Some(0), false)));
        }
        let h = match conn(&mut st, &s.waker) {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        if max == 0 {
            return Some(Ok((Some(0), false)));
        }
        let r = quiet(|_, set| {
            let sock = set.get_mut::<tcp::Socket>(h);
            arm(sock, &s.waker);
            if sock.can_recv() {
                let before = sock.recv_queue();
                let mut done = 0;
                let mut fault = false;
                // The queued data is at most two pieces (the ring wraps).
                for _ in 0..2 {
                    if done == max || fault {
                        break;
                    }
                    let _ = sock.recv(|b| {
                        let k = b.len().min(max - done);
                        if !crate::uaccess::copy_out_nofault(va + done as u64, &b[..k]) {
                            fault = true;
                            return (0, ());
                        }
                        done += k;
                        (k, ())
                    });
                }
                let update = opens_window(sock, before, sock.recv_queue());
                return Some(Ok(((done > 0 || !fault).then_some(done), update)));
            }
            match sock.state() {
                State::SynSent | State::SynReceived => None,
                // The peer's FIN (or the end of the connection): EOF.
                _ if !sock.may_recv() => Some(Ok((Some(0), false))),
                _ => None,
            }
        });
        r.unwrap_or_else(|e| Some(Err(e)))
    });
    match r {
        Ok((Some(n), update)) => {
            after_read(update, n);
            Some(Ok(n))
        }
        Ok((None, _)) => None,
        Err(e) => Some(Err(e)),
    }
}

pub(super) fn shutdown(s: &InetSocket, bits: u8) -> KResult<()> {
    let mut st = s.st.lock();
    let h = match st.h {
        Some(h) if !st.connecting => h,
        _ => return Err(Errno::ENOTCONN),
    };
    st.shut |= bits;
    drop(st);
    if bits & SEND != 0 {
        // FIN after what is queued; receiving goes on.
        let _ = stack::with(|_, set| set.get_mut::<tcp::Socket>(h).close());
    }
    Ok(())
}

pub(super) fn poll(s: &InetSocket) -> u16 {
    let mut st = s.st.lock();
    settle_locked(&mut st, &s.waker);
    let err = if st.error.is_some() { POLLERR } else { 0 };
    if st.listen.is_some() {
        if listener::refill(&mut st) {
            // Parked SYNs released: polling here would wake this
            // waiter itself; the owner polls.
            stack::kick();
        }
        let ready = st.listen.as_ref().is_some_and(|l| !l.queue.is_empty());
        return if ready { POLLIN } else { 0 };
    }
    let Some(h) = st.h else {
        // Linux: a stream socket that is not connected is hung up and
        // writable (a failed connect also reports its error).
        return POLLOUT | POLLHUP | err;
    };
    if st.connecting {
        return err;
    }
    let shut = st.shut;
    quiet(|_, set| {
        let sock = set.get_mut::<tcp::Socket>(h);
        arm(sock, &s.waker);
        let mut ev = err;
        if sock.can_recv() {
            ev |= POLLIN;
        }
        if !sock.may_recv() || shut & RCV != 0 {
            ev |= POLLIN | POLLRDHUP;
        }
        if (sock.can_send() && writeable(sock)) || shut & SEND != 0 {
            ev |= POLLOUT;
        }
        if sock.state() == State::Closed || (!sock.may_recv() && !sock.may_send()) {
            ev |= POLLHUP;
        }
        ev
    })
    .unwrap_or(POLLHUP)
}

pub(super) fn readable_len(s: &InetSocket) -> usize {
    let st = s.st.lock();
    match st.h {
        Some(h) => quiet(|_, set| set.get::<tcp::Socket>(h).recv_queue()).unwrap_or(0),
        None => 0,
    }
}

/// The last close: a listener's listening sockets go at once and the
/// connections it had not handed out (queued or half-open) are reset; a
/// connection sends its FIN (or a reset, with unread data) and finishes
/// as an orphan. A reset socket is Closed at once but stays in the set
/// until the poll that follows has sent its RST (then the sweep removes
/// it).
pub(super) fn release(h: Option<SocketHandle>, listen: Option<Listener>) {
    let orphans = stack::with(|_, set| {
        let mut orphans = alloc::vec::Vec::new();
        for l in listen.iter().flat_map(Listener::handles) {
            let sock = set.get_mut::<tcp::Socket>(l);
            if matches!(sock.state(), State::Listen | State::Closed) {
                set.remove(l);
                unreserve();
            } else {
                arm(sock, Waker::noop());
                sock.abort();
                orphans.push(l);
            }
        }
        if let Some(h) = h {
            let sock = set.get_mut::<tcp::Socket>(h);
            // An orphan wakes nobody.
            arm(sock, Waker::noop());
            if matches!(sock.state(), State::Closed | State::Listen) {
                set.remove(h);
                unreserve();
            } else {
                // Unread data: Linux resets the connection rather than
                // close it.
                if sock.recv_queue() > 0 {
                    sock.abort();
                } else {
                    sock.close();
                }
                sock.set_timeout(Some(TIMEOUT));
                orphans.push(h);
            }
        }
        orphans
    });
    if let Some(o) = orphans {
        if !o.is_empty() {
            ORPHANS.lock().extend(o);
            // Those reset above are done already.
            super::sweep();
        }
    }
}
