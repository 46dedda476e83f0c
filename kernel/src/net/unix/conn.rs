//! Connection-mode AF_UNIX sockets (SOCK_STREAM, SOCK_SEQPACKET):
//! listen, connect (which makes the server's socket at once and queues
//! it on the listener, as Linux does), accept; sending into the peer's
//! queue; and receiving, shared with datagrams.

use abi::{Errno, KResult};
use alloc::collections::VecDeque;
use alloc::sync::Arc;

use super::{addr, Role, UnixSocket, RCV, SEND};
use crate::net::mem;
use crate::net::socket::*;

/// Linux's net.core.somaxconn: the most a listen backlog may be.
const SOMAXCONN: usize = 4096;

pub(super) fn listen(s: &UnixSocket, backlog: i32) -> KResult<()> {
    if s.ty == SOCK_DGRAM {
        return Err(Errno::EOPNOTSUPP);
    }
    // A negative backlog is a huge unsigned one: somaxconn.
    let backlog = (backlog as u32 as usize).min(SOMAXCONN);
    let mut st = s.st.lock();
    if st.name.is_none() {
        return Err(Errno::EINVAL);
    }
    match &mut st.role {
        Role::Connected => return Err(Errno::EINVAL),
        Role::Listening { backlog: b, .. } => *b = backlog,
        Role::Unconnected => {
            st.role = Role::Listening {
                backlog,
                pending: VecDeque::new(),
            };
            // Clients get the listener's credentials as SO_PEERCRED.
            st.peercred = Some(Ucred::current());
        }
    }
    drop(st);
    s.notify();
    Ok(())
}

pub(super) fn accept(s: &UnixSocket, flags: u32) -> KResult<Arc<UnixSocket>> {
    if s.ty == SOCK_DGRAM {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = flags & MSG_DONTWAIT != 0;
    let got = s.wq.wait_until(|| {
        let mut st = s.st.lock();
        match &mut st.role {
            Role::Listening { pending, .. } => match pending.pop_front() {
                Some(c) => Some(Ok(c)),
                None if nonblock => Some(Err(Errno::EAGAIN)),
                None => None,
            },
            _ => Some(Err(Errno::EINVAL)),
        }
    })??;
    // Room in the backlog for a waiting connect.
    s.notify();
    Ok(got)
}

pub(super) fn connect(s: &UnixSocket, raw: &[u8], flags: u32) -> KResult<()> {
    let t = addr::parse(raw)?;
    if matches!(t, addr::Target::Unnamed) {
        return Err(Errno::EINVAL);
    }
    match s.st.lock().role {
        Role::Connected => return Err(Errno::EISCONN),
        Role::Listening { .. } => return Err(Errno::EINVAL),
        Role::Unconnected => {}
    }
    let l = addr::lookup(&t, s.ty)?;
    if l.ty != s.ty {
        return Err(Errno::EPROTOTYPE);
    }
    // The server's end, queued on the listener until accepted.
    let server = UnixSocket::new(s.ty);
    {
        let mut ss = server.st.lock();
        ss.role = Role::Connected;
        ss.peer = Some(s.me.clone());
        ss.peercred = Some(Ucred::current());
        ss.shown_name = Some(l.name_bytes());
        ss.sndbuf = l.st.lock().sndbuf;
    }
    let nonblock = flags & MSG_DONTWAIT != 0;
    let lcred = l.wq.wait_until(|| {
        if l.is_released() {
            return Some(Err(Errno::ECONNREFUSED));
        }
        let mut ls = l.st.lock();
        let cred = ls.peercred;
        match &mut ls.role {
            Role::Listening { backlog, pending } => {
                if pending.len() > *backlog {
                    if nonblock {
                        Some(Err(Errno::EAGAIN))
                    } else {
                        None
                    }
                } else {
                    pending.push_back(server.clone());
                    Some(Ok(cred))
                }
            }
            _ => Some(Err(Errno::ECONNREFUSED)),
        }
    })??;
    {
        let mut st = s.st.lock();
        st.role = Role::Connected;
        st.peer = Some(Arc::downgrade(&server));
        st.peercred = lcred;
    }
    l.notify();
    s.notify();
    Ok(())
}

/// Sends on a stream or seqpacket socket: into the peer's queue.
pub(super) fn send(
    s: &UnixSocket,
    data: &[u8],
    anc: Option<Ancillary>,
    to: Option<&[u8]>,
    flags: u32,
) -> KResult<usize> {
    let (sndbuf, shut, connected) = {
        let st = s.st.lock();
        (st.sndbuf, st.shut, matches!(st.role, Role::Connected))
    };
    if to.is_some() && s.ty == SOCK_STREAM {
        return Err(if connected {
            Errno::EISCONN
        } else {
            Errno::EOPNOTSUPP
        });
    }
    if !connected {
        return Err(Errno::ENOTCONN);
    }
    if shut & SEND != 0 {
        return Err(Errno::EPIPE);
    }
    let record = s.ty == SOCK_SEQPACKET;
    if record && data.len() + sockbuf::RECORD_OVERHEAD > sndbuf {
        return Err(Errno::EMSGSIZE);
    }
    // Linux's stream sendmsg sends nothing for an empty write.
    if !record && data.is_empty() {
        return Ok(0);
    }
    let peer = s.peer().ok_or(Errno::EPIPE)?;
    let mut anc = anc;
    s.creds_for(&peer, &mut anc);
    let nonblock = flags & MSG_DONTWAIT != 0;
    let n = peer.wq.wait_until(|| {
        if s.st.lock().shut & SEND != 0 || peer.is_released() {
            return Some(Err(Errno::EPIPE));
        }
        let mut ps = peer.st.lock();
        if ps.shut & RCV != 0 {
            return Some(Err(Errno::EPIPE));
        }
        ps.rx.set_limit(sndbuf);
        let fits = if record {
            ps.rx.record_fits(data.len())
        } else {
            ps.rx.stream_writable()
        };
        if !fits {
            return if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            };
        }
        if !mem::may_charge(data.len().min(sndbuf) + sockbuf::RECORD_OVERHEAD) {
            return Some(Err(Errno::ENOBUFS));
        }
        let before = ps.rx.charge();
        let r = if record {
            ps.rx
                .push_record(data, anc.take(), None)
                .map(|()| data.len())
                .map_err(|_| Errno::ENOBUFS)
        } else {
            match ps.rx.push_stream(data, anc.take()) {
                0 => Err(Errno::ENOBUFS),
                n => Ok(n),
            }
        };
        mem::account(before, ps.rx.charge());
        Some(r)
    })??;
    peer.notify();
    Ok(n)
}

/// Receives from the socket's own queue (every type).
pub(super) fn recv(s: &UnixSocket, max: usize, flags: u32) -> KResult<Received> {
    let peek = flags & MSG_PEEK != 0;
    let nonblock = flags & MSG_DONTWAIT != 0;
    let got = s.wq.wait_until(|| {
        let mut st = s.st.lock();
        match st.role {
            Role::Listening { .. } => return Some(Err(Errno::EINVAL)),
            Role::Unconnected if s.ty == SOCK_STREAM => return Some(Err(Errno::EINVAL)),
            Role::Unconnected if s.ty == SOCK_SEQPACKET => return Some(Err(Errno::ENOTCONN)),
            _ => {}
        }
        let before = st.rx.charge();
        let r = if s.ty == SOCK_STREAM {
            st.rx.read_stream(max, peek)
        } else {
            st.rx.read_record(max, peek)
        };
        mem::account(before, st.rx.charge());
        if let Some(r) = r {
            return Some(Ok(Some(r)));
        }
        if let Some(e) = st.error.take() {
            return Some(Err(e));
        }
        if st.shut & RCV != 0 {
            return Some(Ok(None));
        }
        if nonblock {
            Some(Err(Errno::EAGAIN))
        } else {
            None
        }
    })??;
    let Some(r) = got else {
        return Ok(Received {
            data: alloc::vec::Vec::new(),
            full_len: 0,
            from: None,
            anc: None,
        });
    };
    if !peek {
        // Room for writers into our queue; the peer's POLLOUT may be back.
        s.notify();
        if let Some(p) = s.peer() {
            p.gen.fetch_add(1, core::sync::atomic::Ordering::Release);
        }
    }
    Ok(Received {
        data: r.data,
        full_len: r.full_len,
        from: r.from,
        anc: s.filter_anc(r.attach),
    })
}
