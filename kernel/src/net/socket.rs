//! The protocol-family interface: a [`Socket`] is what a socket
//! descriptor's open file holds (`fs::file::Kind::Socket`), and a
//! [`Family`] creates them. The syscall layer copies user memory in and
//! out and turns file flags into `MSG_DONTWAIT`; a family sees kernel
//! buffers and raw `sockaddr` bytes only, blocks on its own wait queues
//! (so signals interrupt it: EINTR) and reports readiness through
//! [`Socket::poll`], the one readiness notion poll, select and epoll use.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::fs::file::OpenFile;

pub const SOCK_STREAM: u32 = 1;
pub const SOCK_DGRAM: u32 = 2;
pub const SOCK_RAW: u32 = 3;
pub const SOCK_SEQPACKET: u32 = 5;
/// The type bits of socket(2)'s type argument (the rest are flags).
pub const SOCK_TYPE_MASK: u32 = 0xf;

pub const AF_UNSPEC: u16 = 0;
pub const AF_UNIX: u16 = 1;

pub const MSG_PEEK: u32 = 2;
pub const MSG_CTRUNC: u32 = 8;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;
pub const MSG_WAITALL: u32 = 0x100;
pub const MSG_NOSIGNAL: u32 = 0x4000;
pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

pub const SOL_SOCKET: u32 = 1;
pub const SO_DEBUG: u32 = 1;
pub const SO_REUSEADDR: u32 = 2;
pub const SO_TYPE: u32 = 3;
pub const SO_ERROR: u32 = 4;
pub const SO_DONTROUTE: u32 = 5;
pub const SO_BROADCAST: u32 = 6;
pub const SO_SNDBUF: u32 = 7;
pub const SO_RCVBUF: u32 = 8;
pub const SO_KEEPALIVE: u32 = 9;
pub const SO_OOBINLINE: u32 = 10;
pub const SO_LINGER: u32 = 13;
pub const SO_REUSEPORT: u32 = 15;
pub const SO_PASSCRED: u32 = 16;
pub const SO_PEERCRED: u32 = 17;
pub const SO_RCVLOWAT: u32 = 18;
pub const SO_SNDLOWAT: u32 = 19;
pub const SO_RCVTIMEO: u32 = 20;
pub const SO_SNDTIMEO: u32 = 21;
pub const SO_ACCEPTCONN: u32 = 30;
pub const SO_SNDBUFFORCE: u32 = 32;
pub const SO_RCVBUFFORCE: u32 = 33;
pub const SO_PROTOCOL: u32 = 38;
pub const SO_DOMAIN: u32 = 39;

pub const SCM_RIGHTS: u32 = 1;
pub const SCM_CREDENTIALS: u32 = 2;

/// Linux's net.core.wmem_default / rmem_default (SO_SNDBUF, SO_RCVBUF
/// of a new socket) and wmem_max / rmem_max (the most setsockopt gives,
/// before Linux's doubling).
pub const BUF_DEFAULT: usize = 212_992;
pub const BUF_MAX: usize = 212_992;
/// The least SO_SNDBUF / SO_RCVBUF may be (Linux's SOCK_MIN_SNDBUF).
pub const BUF_MIN: usize = 4608;

/// A process's credentials as SO_PEERCRED and SCM_CREDENTIALS carry
/// them (struct ucred).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Ucred {
    /// The calling process's (every process is root for now).
    pub fn current() -> Ucred {
        Ucred {
            pid: crate::proc::sched::current().tgid as i32,
            uid: 0,
            gid: 0,
        }
    }

    /// struct ucred's 12 bytes.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.pid.to_le_bytes());
        b[4..8].copy_from_slice(&self.uid.to_le_bytes());
        b[8..].copy_from_slice(&self.gid.to_le_bytes());
        b
    }

    /// From struct ucred's bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Ucred> {
        let w = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
        Some(Ucred {
            pid: w(0)? as i32,
            uid: w(4)?,
            gid: w(8)?,
        })
    }
}

/// Ancillary data travelling with a message: descriptors (SCM_RIGHTS)
/// and credentials (SCM_CREDENTIALS). Cloning shares the descriptors
/// (MSG_PEEK hands out the same files again).
#[derive(Clone, Default)]
pub struct Ancillary {
    pub rights: Option<Arc<super::mem::InFlight>>,
    pub creds: Option<Ucred>,
}

impl Ancillary {
    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.rights.is_none() && self.creds.is_none()
    }

    /// The passed files, in order.
    pub fn files(&self) -> &[Arc<OpenFile>] {
        self.rights.as_ref().map_or(&[], |r| r.files())
    }
}

/// What a receive returns.
pub struct Received {
    /// The bytes read.
    pub data: Vec<u8>,
    /// The whole record's length (more than `data.len()` when a datagram
    /// was cut: MSG_TRUNC).
    pub full_len: usize,
    /// The sender's address (recvfrom), raw sockaddr bytes.
    pub from: Option<Vec<u8>>,
    /// Ancillary data, if the message carried some.
    pub anc: Option<Ancillary>,
}

/// One socket of some family. Calls that may wait honour `MSG_DONTWAIT`
/// in `flags` (the syscall layer folds the file's O_NONBLOCK into it).
pub trait Socket: Send + Sync {
    /// AF_* of the socket.
    fn family(&self) -> u16;
    /// SOCK_* type (without flags).
    fn sock_type(&self) -> u32;
    /// The socket's inode number (fstat, /proc/net/*, "socket:[N]").
    fn ino(&self) -> u64;
    /// bind(2) to a raw sockaddr.
    fn bind(&self, addr: &[u8]) -> KResult<()>;
    /// listen(2).
    fn listen(&self, backlog: i32) -> KResult<()>;
    /// accept(2): the new connection's socket.
    fn accept(&self, flags: u32) -> KResult<Arc<dyn Socket>>;
    /// connect(2).
    fn connect(&self, addr: &[u8], flags: u32) -> KResult<()>;
    /// shutdown(2) (`how`: SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2).
    fn shutdown(&self, how: u32) -> KResult<()>;
    /// getsockname(2): raw sockaddr.
    fn local_name(&self) -> KResult<Vec<u8>>;
    /// getpeername(2): raw sockaddr.
    fn peer_name(&self) -> KResult<Vec<u8>>;
    /// Sends `data` (with `anc`, to `to` if given). Returns how much was
    /// taken: all of it for record types; a stream may take part.
    fn send(
        &self,
        data: &[u8],
        anc: Option<Ancillary>,
        to: Option<&[u8]>,
        flags: u32,
    ) -> KResult<usize>;
    /// Receives at most `max` bytes (MSG_PEEK, MSG_DONTWAIT, MSG_TRUNC in
    /// `flags`; MSG_WAITALL is the syscall layer's loop).
    fn recv(&self, max: usize, flags: u32) -> KResult<Received>;
    /// A stream receive of at most `len` bytes straight into user memory
    /// at `va` (flags: MSG_DONTWAIT only), without a kernel staging
    /// buffer. None: the family has no such path, or the copy would
    /// have faulted before any byte moved; the caller then uses
    /// [`Socket::recv`].
    fn recv_user(&self, _va: u64, _len: usize, _flags: u32) -> Option<KResult<usize>> {
        None
    }
    /// A stream send of at most `len` bytes straight from user memory at
    /// `va` (flags: MSG_DONTWAIT, MSG_NOSIGNAL), as [`Socket::recv_user`]:
    /// None sends the same bytes through [`Socket::send`] instead.
    fn send_user(&self, _va: u64, _len: usize, _flags: u32) -> Option<KResult<usize>> {
        None
    }
    /// poll(2) events ready now (POLLIN, POLLOUT, POLLHUP, POLLRDHUP, …).
    fn poll(&self) -> u16;
    /// A number that changes whenever the socket's readiness may have
    /// changed (edge-triggered epoll reports an event only then).
    fn poll_gen(&self) -> u64;
    /// The epoll instances watching the socket, for a family that wakes
    /// them itself whenever its readiness may change (then an instance
    /// watching only such sockets sleeps on its own queue); None: the
    /// family wakes the pollers' queue instead.
    fn watchers(&self) -> Option<alloc::sync::Arc<crate::fs::epoll::Watchers>> {
        None
    }
    /// getsockopt(2): the option's value bytes.
    fn getsockopt(&self, level: u32, name: u32) -> KResult<Vec<u8>>;
    /// setsockopt(2).
    fn setsockopt(&self, level: u32, name: u32, val: &[u8]) -> KResult<()>;
    /// FIONREAD: bytes readable now.
    fn readable_len(&self) -> usize;
    /// The last descriptor for it is closed: disconnect, drop queued
    /// data, free the name.
    fn release(&self);
}

/// socketpair(2) of a family: two connected sockets.
pub type PairFn = fn(ty: u32, protocol: u32) -> KResult<[Arc<dyn Socket>; 2]>;

/// A protocol family: how socket(2) and socketpair(2) make its sockets.
pub struct Family {
    pub domain: u16,
    pub create: fn(ty: u32, protocol: u32) -> KResult<Arc<dyn Socket>>,
    /// socketpair(2), for families that have it (EOPNOTSUPP otherwise).
    pub pair: Option<PairFn>,
}

/// The families socket(2) knows. Others get EAFNOSUPPORT.
static FAMILIES: &[Family] = &[
    super::unix::FAMILY,
    super::inet::FAMILY,
    super::netlink::FAMILY,
];

fn family(domain: u32) -> KResult<&'static Family> {
    FAMILIES
        .iter()
        .find(|f| f.domain as u32 == domain)
        .ok_or(Errno::EAFNOSUPPORT)
}

/// socket(2) without the flags.
pub fn create(domain: u32, ty: u32, protocol: u32) -> KResult<Arc<dyn Socket>> {
    (family(domain)?.create)(ty, protocol)
}

/// socketpair(2) without the flags.
pub fn pair(domain: u32, ty: u32, protocol: u32) -> KResult<[Arc<dyn Socket>; 2]> {
    let f = family(domain)?;
    (f.pair.ok_or(Errno::EOPNOTSUPP)?)(ty, protocol)
}

/// A new socket inode number: unique while the kernel runs.
pub fn next_ino() -> u64 {
    use core::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(20_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// An int option's value.
pub fn int_opt(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// An int option's argument (setsockopt gives at least 4 bytes).
pub fn read_int_opt(val: &[u8]) -> KResult<i32> {
    Ok(i32::from_le_bytes(
        val.get(..4)
            .ok_or(Errno::EINVAL)?
            .try_into()
            .map_err(|_| Errno::EINVAL)?,
    ))
}

/// SO_SNDBUF / SO_RCVBUF as Linux sets them: doubled (for bookkeeping
/// overhead), within [BUF_MIN, 2 * BUF_MAX].
pub fn buf_size(val: &[u8]) -> KResult<usize> {
    let v = read_int_opt(val)?.max(0) as usize;
    Ok((v.min(BUF_MAX) * 2).max(BUF_MIN))
}

/// SIGPIPE for a send that failed with EPIPE having sent nothing, unless
/// MSG_NOSIGNAL (Linux's rule for every family).
pub fn sigpipe(e: Errno, flags: u32) {
    if e == Errno::EPIPE && flags & MSG_NOSIGNAL == 0 {
        let me = crate::proc::sched::current();
        crate::proc::signal::send(&me, crate::proc::signal::SIGPIPE);
    }
}

/// Sends `data`: all of it on a stream (blocking as often as needed)
/// unless MSG_DONTWAIT stops it early, one record otherwise. A failure
/// after some bytes went returns their count.
pub fn send_all(
    s: &dyn Socket,
    data: &[u8],
    anc: Option<Ancillary>,
    to: Option<&[u8]>,
    flags: u32,
) -> KResult<usize> {
    let mut done = 0;
    let mut anc = anc;
    loop {
        match s.send(&data[done..], anc.take(), to, flags) {
            Ok(n) => {
                done += n;
                if done >= data.len() || n == 0 || s.sock_type() != SOCK_STREAM {
                    return Ok(done);
                }
            }
            Err(e) if done > 0 => {
                let _ = e;
                return Ok(done);
            }
            Err(e) => {
                sigpipe(e, flags);
                return Err(e);
            }
        }
    }
}

/// read(2) on a socket: a receive without address or control buffer
/// (descriptors passed with the data are closed, as on Linux).
pub fn read(s: &dyn Socket, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
    let r = s.recv(buf.len(), if nonblock { MSG_DONTWAIT } else { 0 })?;
    let n = r.data.len().min(buf.len());
    buf[..n].copy_from_slice(&r.data[..n]);
    Ok(n)
}

/// write(2) on a socket.
pub fn write(s: &dyn Socket, data: &[u8], nonblock: bool) -> KResult<usize> {
    send_all(s, data, None, None, if nonblock { MSG_DONTWAIT } else { 0 })
}
