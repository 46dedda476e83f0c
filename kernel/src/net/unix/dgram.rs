//! AF_UNIX datagrams: each send is one record in the receiver's queue
//! (at most max_dgram_qlen + 1 of them, and the sender's SO_SNDBUF in
//! bytes), with the sender's name; connect only sets the default
//! destination and who may send to us.

use abi::{Errno, KResult};
use alloc::sync::Arc;

use super::{addr, UnixSocket, RCV, SEND};
use crate::net::mem;
use crate::net::socket::*;

pub(super) fn connect(s: &UnixSocket, raw: &[u8]) -> KResult<()> {
    if raw.len() >= 2 && u16::from_le_bytes([raw[0], raw[1]]) == AF_UNSPEC {
        // Dissolves the association.
        s.st.lock().peer = None;
        s.notify();
        return Ok(());
    }
    let t = addr::parse(raw)?;
    if matches!(t, addr::Target::Unnamed) {
        return Err(Errno::EINVAL);
    }
    let other = addr::lookup(&t, s.ty)?;
    if other.ty != s.ty {
        return Err(Errno::EPROTOTYPE);
    }
    s.st.lock().peer = Some(Arc::downgrade(&other));
    s.notify();
    Ok(())
}

pub(super) fn send(
    s: &UnixSocket,
    data: &[u8],
    anc: Option<Ancillary>,
    to: Option<&[u8]>,
    flags: u32,
) -> KResult<usize> {
    let (sndbuf, shut, peer, bound) = {
        let st = s.st.lock();
        (st.sndbuf, st.shut, st.peer.clone(), st.name.is_some())
    };
    let target = match to {
        Some(raw) => {
            let t = addr::parse(raw)?;
            if matches!(t, addr::Target::Unnamed) {
                return Err(Errno::EINVAL);
            }
            addr::lookup(&t, s.ty)?
        }
        None => {
            let w = peer.ok_or(Errno::ENOTCONN)?;
            match w.upgrade().filter(|p| !p.is_released()) {
                Some(p) => p,
                None => {
                    // The peer is gone: refused, and no longer connected.
                    s.st.lock().peer = None;
                    return Err(Errno::ECONNREFUSED);
                }
            }
        }
    };
    if target.ty != s.ty {
        return Err(Errno::EPROTOTYPE);
    }
    if shut & SEND != 0 {
        return Err(Errno::EPIPE);
    }
    if data.len() + sockbuf::RECORD_OVERHEAD > sndbuf {
        return Err(Errno::EMSGSIZE);
    }
    let from = bound.then(|| s.name_bytes());
    let mut anc = anc;
    s.creds_for(&target, &mut anc);
    let nonblock = flags & MSG_DONTWAIT != 0;
    target.wq.wait_until(|| {
        if target.is_released() {
            return Some(Err(Errno::ECONNREFUSED));
        }
        let mut ts = target.st.lock();
        // A socket connected to another accepts only its peer's.
        if let Some(w) = &ts.peer {
            if !core::ptr::eq(w.as_ptr(), s) {
                return Some(Err(Errno::EPERM));
            }
        }
        if ts.shut & RCV != 0 {
            return Some(Err(Errno::EPIPE));
        }
        ts.rx.set_limit(sndbuf);
        if !ts.rx.record_fits(data.len()) {
            return if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            };
        }
        if !mem::may_charge(data.len() + sockbuf::RECORD_OVERHEAD) {
            return Some(Err(Errno::ENOBUFS));
        }
        let before = ts.rx.charge();
        let r = ts
            .rx
            .push_record(data, anc.take(), from.clone())
            .map_err(|_| Errno::ENOBUFS);
        mem::account(before, ts.rx.charge());
        Some(r)
    })??;
    target.notify();
    Ok(data.len())
}
