//! AF_INET SOCK_DGRAM over smoltcp's UDP sockets.

use abi::{Errno, KResult};
use alloc::vec;
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use super::{addr, quiet, reserve, route, unreserve, wait, InetSocket, St, RCV, SEND};
use crate::fs::file::{POLLIN, POLLOUT};
use crate::net::socket::*;
use crate::net::stack;

/// Registers `w` as a UDP socket's receive and send waker.
fn arm(sock: &mut udp::Socket, w: &core::task::Waker) {
    sock.register_recv_waker(w);
    sock.register_send_waker(w);
}

/// Datagrams each direction's buffer holds (besides the bytes).
const RECORDS: usize = 64;

/// Gives a bound socket its smoltcp socket (bind and autobind).
pub(super) fn open(st: &mut St) -> KResult<()> {
    if st.h.is_some() {
        return Ok(());
    }
    let (a, port) = st.local.ok_or(Errno::EINVAL)?;
    reserve()?;
    let meta = || vec![udp::PacketMetadata::EMPTY; RECORDS];
    let mut s = udp::Socket::new(
        udp::PacketBuffer::new(meta(), vec![0; super::UDP_BUF]),
        udp::PacketBuffer::new(meta(), vec![0; super::UDP_BUF]),
    );
    let ep = IpListenEndpoint {
        addr: (!a.is_unspecified()).then_some(a.into()),
        port,
    };
    let added = if s.bind(ep).is_ok() {
        quiet(|_, set| set.add(s))
    } else {
        Err(Errno::EINVAL)
    };
    match added {
        Ok(h) => {
            st.h = Some(h);
            Ok(())
        }
        Err(e) => {
            unreserve();
            Err(e)
        }
    }
}

/// Binds an ephemeral port and opens, if not done yet.
fn autoopen(s: &InetSocket, st: &mut St) -> KResult<smoltcp::iface::SocketHandle> {
    let fresh = st.local.is_none();
    let had = st.h.is_some();
    s.autobind(st)?;
    if let Err(e) = open(st) {
        if fresh {
            if let Some((_, p)) = st.local.take() {
                addr::free(s.ty, p);
            }
        }
        return Err(e);
    }
    if !had {
        // A receive blocked before the socket was opened armed no
        // waker: it looks again now.
        s.notify();
    }
    Ok(st.h.expect("opened above"))
}

pub(super) fn connect(s: &InetSocket, raw: &[u8]) -> KResult<()> {
    let mut st = s.st.lock();
    match addr::parse(raw)? {
        addr::Target::Unspec => {
            st.peer = None;
            Ok(())
        }
        addr::Target::Inet(a, port) => {
            let a = route(a)?;
            autoopen(s, &mut st)?;
            st.peer = Some(IpEndpoint::new(a.into(), port));
            st.shut = 0;
            Ok(())
        }
    }
}

pub(super) fn send(s: &InetSocket, data: &[u8], to: Option<&[u8]>, flags: u32) -> KResult<usize> {
    let nonblock = flags & MSG_DONTWAIT != 0;
    let dest = match to {
        Some(raw) => {
            let (a, port) = addr::parse_inet(raw)?;
            if port == 0 {
                return Err(Errno::EINVAL);
            }
            let a = route(a)?;
            IpEndpoint::new(a.into(), port)
        }
        None => s.st.lock().peer.ok_or(Errno::EDESTADDRREQ)?,
    };
    if data.len() > super::UDP_BUF {
        return Err(Errno::EMSGSIZE);
    }
    let h = {
        let mut st = s.st.lock();
        if st.shut & SEND != 0 {
            return Err(Errno::EPIPE);
        }
        autoopen(s, &mut st)?
    };
    let timeo = s.sndtimeo.load(core::sync::atomic::Ordering::Relaxed);
    let n = wait(s, nonblock, timeo, || {
        let r = quiet(|_, set| {
            let sock = set.get_mut::<udp::Socket>(h);
            arm(sock, &s.waker);
            match sock.send_slice(data, dest) {
                Ok(()) => Some(Ok(data.len())),
                Err(udp::SendError::BufferFull) => None,
                Err(udp::SendError::Unaddressable) => Some(Err(Errno::EINVAL)),
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
    let timeo = s.rcvtimeo.load(core::sync::atomic::Ordering::Relaxed);
    wait(s, nonblock, timeo, || {
        let st = s.st.lock();
        if st.shut & RCV != 0 {
            return Some(Ok(Received {
                data: vec![],
                full_len: 0,
                from: None,
                anc: None,
            }));
        }
        // Unbound: nothing can arrive (Linux would autobind; so does the
        // first send here).
        let h = st.h?;
        let peer = st.peer;
        let r = quiet(|_, set| {
            let sock = set.get_mut::<udp::Socket>(h);
            arm(sock, &s.waker);
            loop {
                let (data, meta) = sock.peek().ok()?;
                let from = meta.endpoint;
                // A connected socket takes datagrams from its peer only.
                if peer.is_some_and(|p| p != from) {
                    let _ = sock.recv();
                    continue;
                }
                let n = data.len().min(max);
                let got = Received {
                    data: data[..n].to_vec(),
                    full_len: data.len(),
                    from: Some(addr::endpoint_addr(from)),
                    anc: None,
                };
                if !peek {
                    let _ = sock.recv();
                }
                return Some(got);
            }
        });
        match r {
            Ok(Some(got)) => Some(Ok(got)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    })
}

pub(super) fn poll(s: &InetSocket) -> u16 {
    let st = s.st.lock();
    let Some(h) = st.h else {
        return POLLOUT;
    };
    quiet(|_, set| {
        let sock = set.get_mut::<udp::Socket>(h);
        arm(sock, &s.waker);
        let mut ev = 0;
        if sock.can_recv() {
            ev |= POLLIN;
        }
        if sock.can_send() {
            ev |= POLLOUT;
        }
        ev
    })
    .unwrap_or(POLLOUT)
}

pub(super) fn readable_len(s: &InetSocket) -> usize {
    let st = s.st.lock();
    match st.h {
        Some(h) => quiet(|_, set| {
            set.get_mut::<udp::Socket>(h)
                .peek()
                .map_or(0, |(d, _)| d.len())
        })
        .unwrap_or(0),
        None => 0,
    }
}
