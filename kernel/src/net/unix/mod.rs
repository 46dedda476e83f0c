//! AF_UNIX (unix(7)): SOCK_STREAM, SOCK_SEQPACKET (`conn.rs`: listen,
//! connect, accept, byte streams and records over a connection) and
//! SOCK_DGRAM (`dgram.rs`), with path and abstract names (`addr.rs`),
//! descriptor and credential passing, and /proc/net/unix (`procfs.rs`).
//!
//! Each socket owns its receive queue (a `sockbuf::SockQueue`): a sender
//! writes into its peer's queue, charged to the sender's SO_SNDBUF, as
//! Linux does. Peers are weak references, so two connected sockets keep
//! each other alive only through their descriptors, and a close releases
//! its socket at once ([`UnixSocket::release`]). Locking rule: at most
//! one socket's state lock is held at a time (a sender locks itself,
//! lets go, then locks the peer), so no two sockets wait for each other.
//! Waiters of a socket (its readers, its acceptor, writers into its
//! queue) sleep on its wait queue and re-check after each wake-up.

mod addr;
mod conn;
mod dgram;
pub mod procfs;

use abi::{Errno, KResult};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use sockbuf::SockQueue;
use spin::Mutex;

use crate::fs::file::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::net::socket::*;
use crate::proc::sched::WaitQueue;
use addr::UnixAddr;

/// poll(2)'s POLLRDHUP (the peer shut down writing).
pub const POLLRDHUP: u16 = 0x2000;

/// Shutdown bits: no more receiving, no more sending.
const RCV: u8 = 1;
const SEND: u8 = 2;

/// Records a datagram socket's queue takes (Linux's max_dgram_qlen 10,
/// full once it holds more than that).
const DGRAM_QLEN: usize = 11;

/// The family entry socket(2) uses.
pub const FAMILY: Family = Family {
    domain: AF_UNIX,
    create: |ty, proto| create(ty, proto).map(|s| s as Arc<dyn Socket>),
    pair: Some(|ty, proto| {
        let [a, b] = pair(ty, proto)?;
        Ok([a as Arc<dyn Socket>, b as Arc<dyn Socket>])
    }),
};

/// What a socket is doing.
enum Role {
    Unconnected,
    /// Connections made but not accepted yet, at most `backlog` + 1.
    Listening {
        backlog: usize,
        pending: VecDeque<Arc<UnixSocket>>,
    },
    /// Stream or seqpacket with a peer (which may be gone since).
    Connected,
}

struct State {
    name: Option<UnixAddr>,
    /// An accepted socket's name: its listener's, which it shows but
    /// does not own (getsockname, /proc/net/unix).
    shown_name: Option<Vec<u8>>,
    role: Role,
    /// The connected peer (a datagram socket's default destination).
    peer: Option<Weak<UnixSocket>>,
    rx: SockQueue<Ancillary>,
    /// RCV / SEND bits.
    shut: u8,
    sndbuf: usize,
    rcvbuf: usize,
    passcred: bool,
    /// The peer's credentials when the connection was made (SO_PEERCRED).
    peercred: Option<Ucred>,
    /// A pending error for SO_ERROR / the next call (ECONNRESET).
    error: Option<Errno>,
}

/// One AF_UNIX socket.
pub struct UnixSocket {
    ty: u32,
    ino: u64,
    me: Weak<UnixSocket>,
    st: Mutex<State>,
    wq: WaitQueue,
    gen: AtomicU64,
    released: AtomicBool,
}

/// Every live AF_UNIX socket by inode number (/proc/net/unix).
static ALL: Mutex<BTreeMap<u64, Weak<UnixSocket>>> = Mutex::new(BTreeMap::new());

fn check_type(ty: u32, proto: u32) -> KResult<()> {
    if proto != 0 && proto != AF_UNIX as u32 {
        return Err(Errno::EPROTONOSUPPORT);
    }
    match ty {
        SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET => Ok(()),
        SOCK_RAW => Err(Errno::EPROTONOSUPPORT),
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

/// socket(AF_UNIX, ty, proto).
pub fn create(ty: u32, proto: u32) -> KResult<Arc<UnixSocket>> {
    check_type(ty, proto)?;
    Ok(UnixSocket::new(ty))
}

/// socketpair(AF_UNIX, ty, proto): two sockets connected to each other.
pub fn pair(ty: u32, proto: u32) -> KResult<[Arc<UnixSocket>; 2]> {
    check_type(ty, proto)?;
    let (a, b) = (UnixSocket::new(ty), UnixSocket::new(ty));
    let cred = Ucred::current();
    for (x, y) in [(&a, &b), (&b, &a)] {
        let mut s = x.st.lock();
        s.peer = Some(Arc::downgrade(y));
        s.peercred = Some(cred);
        if ty != SOCK_DGRAM {
            s.role = Role::Connected;
        }
    }
    Ok([a, b])
}

impl UnixSocket {
    fn new(ty: u32) -> Arc<UnixSocket> {
        let max_records = if ty == SOCK_DGRAM {
            DGRAM_QLEN
        } else {
            usize::MAX
        };
        let s = Arc::new_cyclic(|me| UnixSocket {
            ty,
            ino: next_ino(),
            me: me.clone(),
            st: Mutex::new(State {
                name: None,
                shown_name: None,
                role: Role::Unconnected,
                peer: None,
                rx: SockQueue::new(BUF_DEFAULT, max_records),
                shut: 0,
                sndbuf: BUF_DEFAULT,
                rcvbuf: BUF_DEFAULT,
                passcred: false,
                peercred: None,
                error: None,
            }),
            wq: WaitQueue::new(),
            gen: AtomicU64::new(0),
            released: AtomicBool::new(false),
        });
        ALL.lock().insert(s.ino, Arc::downgrade(&s));
        s
    }

    fn arc(&self) -> Arc<UnixSocket> {
        self.me.upgrade().expect("a socket in use is alive")
    }

    fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    /// Something about this socket changed: wake its waiters and pollers.
    fn notify(&self) {
        self.gen.fetch_add(1, Ordering::Release);
        self.wq.wake_all();
        crate::fs::POLL_WQ.wake_all();
    }

    /// The connected peer, if it is still there.
    fn peer(&self) -> Option<Arc<UnixSocket>> {
        self.st
            .lock()
            .peer
            .as_ref()
            .and_then(|w| w.upgrade())
            .filter(|p| !p.is_released())
    }

    /// Our sender credentials to attach to a message for `to`: when
    /// either side asked for them (SO_PASSCRED) or the sender gave some.
    fn creds_for(&self, to: &UnixSocket, anc: &mut Option<Ancillary>) {
        let given = anc.as_ref().and_then(|a| a.creds);
        if given.is_some() {
            return;
        }
        // One lock at a time (`to` may be this very socket).
        let mine = self.st.lock().passcred;
        if mine || to.st.lock().passcred {
            anc.get_or_insert_with(Ancillary::default).creds = Some(Ucred::current());
        }
    }

    /// Delivers what a message carried as this receiver asked: credentials
    /// only with SO_PASSCRED.
    fn filter_anc(&self, anc: Option<Ancillary>) -> Option<Ancillary> {
        let passcred = self.st.lock().passcred;
        let mut a = anc?;
        if !passcred {
            a.creds = None;
        }
        (!a.is_empty()).then_some(a)
    }

    fn name_bytes(&self) -> Vec<u8> {
        let s = self.st.lock();
        match (&s.name, &s.shown_name) {
            (Some(n), _) => n.to_sockaddr(),
            (None, Some(v)) => v.clone(),
            (None, None) => addr::unnamed(),
        }
    }
}

impl Socket for UnixSocket {
    fn family(&self) -> u16 {
        AF_UNIX
    }

    fn sock_type(&self) -> u32 {
        self.ty
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn bind(&self, raw: &[u8]) -> KResult<()> {
        let t = addr::parse(raw)?;
        if self.st.lock().name.is_some() {
            return Err(Errno::EINVAL);
        }
        let name = addr::bind(&self.arc(), t)?;
        let mut s = self.st.lock();
        if s.name.is_some() {
            // Another thread bound it meanwhile.
            drop(s);
            addr::unbind(&name, self);
            return Err(Errno::EINVAL);
        }
        s.name = Some(name);
        Ok(())
    }

    fn listen(&self, backlog: i32) -> KResult<()> {
        conn::listen(self, backlog)
    }

    fn accept(&self, flags: u32) -> KResult<Arc<dyn Socket>> {
        conn::accept(self, flags).map(|s| s as Arc<dyn Socket>)
    }

    fn connect(&self, raw: &[u8], flags: u32) -> KResult<()> {
        if self.ty == SOCK_DGRAM {
            dgram::connect(self, raw)
        } else {
            conn::connect(self, raw, flags)
        }
    }

    fn shutdown(&self, how: u32) -> KResult<()> {
        let bits = match how {
            0 => RCV,
            1 => SEND,
            2 => RCV | SEND,
            _ => return Err(Errno::EINVAL),
        };
        // Linux's unix_shutdown does not ask whether it is connected.
        let peer = {
            let mut s = self.st.lock();
            s.shut |= bits;
            s.peer.as_ref().and_then(|w| w.upgrade())
        };
        self.notify();
        // The peer sees the mirror image (stream and seqpacket).
        if let Some(p) = peer.filter(|_| self.ty != SOCK_DGRAM) {
            let mirror =
                (if bits & RCV != 0 { SEND } else { 0 }) | (if bits & SEND != 0 { RCV } else { 0 });
            p.st.lock().shut |= mirror;
            p.notify();
        }
        Ok(())
    }

    fn local_name(&self) -> KResult<Vec<u8>> {
        Ok(self.name_bytes())
    }

    fn peer_name(&self) -> KResult<Vec<u8>> {
        let connected = {
            let s = self.st.lock();
            s.peer.is_some() && (self.ty == SOCK_DGRAM || matches!(s.role, Role::Connected))
        };
        if !connected {
            return Err(Errno::ENOTCONN);
        }
        // A peer that is gone had its name; Linux still reports it while
        // the socket is connected. An unnamed peer is the family alone.
        let w = self.st.lock().peer.clone();
        Ok(w.and_then(|w| w.upgrade())
            .map_or_else(addr::unnamed, |p| p.name_bytes()))
    }

    fn send(
        &self,
        data: &[u8],
        anc: Option<Ancillary>,
        to: Option<&[u8]>,
        flags: u32,
    ) -> KResult<usize> {
        if self.ty == SOCK_DGRAM {
            dgram::send(self, data, anc, to, flags)
        } else {
            conn::send(self, data, anc, to, flags)
        }
    }

    fn recv(&self, max: usize, flags: u32) -> KResult<Received> {
        conn::recv(self, max, flags)
    }

    fn poll(&self) -> u16 {
        let (mut ev, peer) = {
            let s = self.st.lock();
            let mut ev = 0;
            if !s.rx.is_empty() {
                ev |= POLLIN;
            }
            if s.shut & RCV != 0 {
                ev |= POLLIN | POLLRDHUP;
            }
            if s.shut == RCV | SEND {
                ev |= POLLHUP;
            }
            if s.error.is_some() {
                ev |= POLLERR;
            }
            let peer = match &s.role {
                Role::Listening { pending, .. } => {
                    return if pending.is_empty() { 0 } else { POLLIN };
                }
                Role::Unconnected if self.ty != SOCK_DGRAM => {
                    // Linux: a connection-mode socket that is not
                    // connected is hung up (and writable).
                    return ev | POLLHUP | POLLOUT;
                }
                _ => s.peer.clone(),
            };
            if s.shut & SEND != 0 {
                return ev | POLLOUT;
            }
            (ev, peer)
        };
        // Writable when the peer's queue takes a byte (a datagram socket
        // with no peer sends to names: writable).
        let writable = match peer.and_then(|w| w.upgrade()) {
            Some(p) if !p.is_released() => {
                let ps = p.st.lock();
                if self.ty == SOCK_STREAM {
                    ps.rx.stream_writable()
                } else {
                    ps.rx.record_fits(0)
                }
            }
            _ => true,
        };
        if writable {
            ev |= POLLOUT;
        }
        ev
    }

    fn poll_gen(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }

    fn getsockopt(&self, level: u32, name: u32) -> KResult<Vec<u8>> {
        if level != SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut s = self.st.lock();
        Ok(match name {
            SO_TYPE => int_opt(self.ty as i32),
            SO_DOMAIN => int_opt(AF_UNIX as i32),
            SO_PROTOCOL => int_opt(0),
            SO_ERROR => int_opt(s.error.take().map_or(0, |e| e.0 as i32)),
            SO_SNDBUF => int_opt(s.sndbuf as i32),
            SO_RCVBUF => int_opt(s.rcvbuf as i32),
            SO_PASSCRED => int_opt(s.passcred as i32),
            SO_ACCEPTCONN => int_opt(matches!(s.role, Role::Listening { .. }) as i32),
            SO_PEERCRED => s
                .peercred
                .unwrap_or(Ucred {
                    pid: 0,
                    uid: u32::MAX,
                    gid: u32::MAX,
                })
                .to_bytes()
                .to_vec(),
            SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE | SO_BROADCAST | SO_DEBUG | SO_DONTROUTE
            | SO_OOBINLINE => int_opt(0),
            SO_RCVLOWAT | SO_SNDLOWAT => int_opt(1),
            SO_LINGER => alloc::vec![0; 8],
            SO_RCVTIMEO | SO_SNDTIMEO => alloc::vec![0; 16],
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn setsockopt(&self, level: u32, name: u32, val: &[u8]) -> KResult<()> {
        if level != SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut s = self.st.lock();
        match name {
            SO_SNDBUF | SO_SNDBUFFORCE => s.sndbuf = buf_size(val)?,
            SO_RCVBUF | SO_RCVBUFFORCE => s.rcvbuf = buf_size(val)?,
            SO_PASSCRED => s.passcred = read_int_opt(val)? != 0,
            // Accepted without effect on AF_UNIX (as on Linux, or no
            // timeouts yet: SO_RCVTIMEO / SO_SNDTIMEO).
            SO_REUSEADDR | SO_REUSEPORT | SO_KEEPALIVE | SO_BROADCAST | SO_DEBUG | SO_DONTROUTE
            | SO_OOBINLINE | SO_RCVLOWAT | SO_SNDLOWAT => {
                read_int_opt(val)?;
            }
            SO_LINGER => {
                if val.len() < 8 {
                    return Err(Errno::EINVAL);
                }
            }
            SO_RCVTIMEO | SO_SNDTIMEO => {
                if val.len() < 16 {
                    return Err(Errno::EINVAL);
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn readable_len(&self) -> usize {
        let s = self.st.lock();
        if self.ty == SOCK_STREAM {
            s.rx.len()
        } else {
            s.rx.first_len()
        }
    }

    fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let (name, peer, pending, dropped, had_data) = {
            let mut s = self.st.lock();
            let before = s.rx.charge();
            let had_data = !s.rx.is_empty();
            let dropped = s.rx.clear();
            crate::net::mem::account(before, s.rx.charge());
            let pending = match core::mem::replace(&mut s.role, Role::Unconnected) {
                Role::Listening { pending, .. } => pending,
                _ => VecDeque::new(),
            };
            s.shut = RCV | SEND;
            (s.name.take(), s.peer.take(), pending, dropped, had_data)
        };
        if let Some(n) = &name {
            addr::unbind(n, self);
        }
        ALL.lock().remove(&self.ino);
        // Connections nobody accepted are refused: their clients see the
        // end (Linux resets them).
        for p in pending {
            p.release();
        }
        if let Some(p) = peer.and_then(|w| w.upgrade()) {
            if self.ty != SOCK_DGRAM {
                let mut ps = p.st.lock();
                ps.shut = RCV | SEND;
                if had_data {
                    ps.error = Some(Errno::ECONNRESET);
                }
            }
            p.notify();
        }
        self.notify();
        // Queued descriptors go through the reaper (InFlight's drop).
        drop(dropped);
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        // A socket never installed in a descriptor (an error path) is
        // released here; the usual release came with its last close.
        self.release();
    }
}
