//! AF_NETLINK: the kernel's side of netlink(7) for NETLINK_ROUTE, enough
//! for busybox `ip addr`/`ip link`/`ip route`, glibc's getifaddrs and
//! if_nameindex. A request sent to the kernel (port 0) is answered at
//! once into the socket's receive queue, one datagram per request
//! (`route.rs` builds it); receives take datagrams in order, cut with
//! MSG_TRUNC as Linux's datagram sockets are. Other netlink protocols
//! are EPROTONOSUPPORT. Multicast groups may be bound but no
//! notification is ever sent (the links and addresses do not change
//! after boot, except a DHCP lease).
//!
//! Bounded: the queue holds at most SO_RCVBUF bytes; an answer that
//! does not fit is dropped and the next receive fails with ENOBUFS, as
//! Linux reports a netlink overrun.

mod route;

use abi::{Errno, KResult};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use super::socket::{
    buf_size, int_opt, next_ino, read_int_opt, Ancillary, Family, Received, Socket, BUF_DEFAULT,
    MSG_DONTWAIT, MSG_PEEK, SOCK_DGRAM, SOCK_RAW, SOL_SOCKET, SO_DOMAIN, SO_ERROR, SO_PROTOCOL,
    SO_RCVBUF, SO_RCVBUFFORCE, SO_SNDBUF, SO_SNDBUFFORCE, SO_TYPE,
};
use crate::fs::file::{POLLERR, POLLIN, POLLOUT};
use crate::proc::sched::WaitQueue;
use route::{Batch, Request, NLMSG_HDRLEN, NLM_F_REQUEST};

pub const AF_NETLINK: u16 = 16;
const NETLINK_ROUTE: u32 = 0;
/// SOL_NETLINK and the options programs set on a route socket.
const SOL_NETLINK: u32 = 270;
const NETLINK_ADD_MEMBERSHIP: u32 = 1;
const NETLINK_DROP_MEMBERSHIP: u32 = 2;
const NETLINK_PKTINFO: u32 = 3;
const NETLINK_NO_ENOBUFS: u32 = 5;
const NETLINK_LISTEN_ALL_NSID: u32 = 8;
const NETLINK_CAP_ACK: u32 = 10;
const NETLINK_EXT_ACK: u32 = 11;
const NETLINK_GET_STRICT_CHK: u32 = 12;
/// The SOL_NETLINK on/off options accepted (and reported off): what they
/// change (extended acks, strict checks, packet info) is never sent here.
fn flag_opt(name: u32) -> bool {
    matches!(
        name,
        NETLINK_PKTINFO
            | NETLINK_NO_ENOBUFS
            | NETLINK_LISTEN_ALL_NSID
            | NETLINK_CAP_ACK
            | NETLINK_EXT_ACK
            | NETLINK_GET_STRICT_CHK
    )
}

/// struct sockaddr_nl: family, pad, port id, groups.
const SOCKADDR_NL: usize = 12;

pub const FAMILY: Family = Family {
    domain: AF_NETLINK,
    create,
    pair: None,
};

fn create(ty: u32, protocol: u32) -> KResult<Arc<dyn Socket>> {
    if ty != SOCK_RAW && ty != SOCK_DGRAM {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    if protocol != NETLINK_ROUTE {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(Arc::new(NetlinkSocket {
        ty,
        ino: next_ino(),
        st: Mutex::new(State {
            portid: 0,
            groups: 0,
            rx: VecDeque::new(),
            queued: 0,
            rcvbuf: BUF_DEFAULT,
            sndbuf: BUF_DEFAULT,
            overrun: false,
        }),
        wq: WaitQueue::new(),
        gen: AtomicU64::new(0),
    }))
}

struct State {
    /// The port id (0 until bound or autobound by the first send).
    portid: u32,
    groups: u32,
    /// Answers not yet received, one datagram each.
    rx: VecDeque<Vec<u8>>,
    /// Their bytes.
    queued: usize,
    rcvbuf: usize,
    sndbuf: usize,
    /// An answer was dropped for want of room: the next receive fails.
    overrun: bool,
}

pub struct NetlinkSocket {
    ty: u32,
    ino: u64,
    st: Mutex<State>,
    wq: WaitQueue,
    gen: AtomicU64,
}

/// Port ids in use, so two sockets of one process get different ones.
static PORTS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Takes `want` (0: any free one, the caller's tgid first, as Linux's
/// autobind does) as this socket's port id.
fn claim_port(want: u32) -> KResult<u32> {
    let mut p = PORTS.lock();
    if want != 0 {
        if p.contains(&want) {
            return Err(Errno::EADDRINUSE);
        }
        p.push(want);
        return Ok(want);
    }
    let tgid = crate::proc::sched::current().tgid;
    let mut id = tgid;
    // Linux then tries negative ids counting down from -4096.
    let mut next = 0xffff_f000u32;
    while p.contains(&id) {
        id = next;
        next = next.wrapping_sub(1);
    }
    p.push(id);
    Ok(id)
}

fn sockaddr_nl(portid: u32, groups: u32) -> Vec<u8> {
    let mut a = alloc::vec![0u8; SOCKADDR_NL];
    a[..2].copy_from_slice(&AF_NETLINK.to_le_bytes());
    a[4..8].copy_from_slice(&portid.to_le_bytes());
    a[8..12].copy_from_slice(&groups.to_le_bytes());
    a
}

/// (family, port id, groups) of a sockaddr_nl.
fn parse_addr(a: &[u8]) -> KResult<(u16, u32, u32)> {
    if a.len() < SOCKADDR_NL {
        return Err(Errno::EINVAL);
    }
    let w = |i: usize| u32::from_le_bytes(a[i..i + 4].try_into().unwrap_or([0; 4]));
    Ok((u16::from_le_bytes([a[0], a[1]]), w(4), w(8)))
}

impl NetlinkSocket {
    fn portid(&self) -> KResult<u32> {
        let mut s = self.st.lock();
        if s.portid == 0 {
            s.portid = claim_port(0)?;
        }
        Ok(s.portid)
    }

    fn changed(&self) {
        self.gen.fetch_add(1, Ordering::AcqRel);
        self.wq.wake_all();
        crate::fs::POLL_WQ.wake_all();
    }
}

impl Socket for NetlinkSocket {
    fn family(&self) -> u16 {
        AF_NETLINK
    }

    fn sock_type(&self) -> u32 {
        self.ty
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn bind(&self, addr: &[u8]) -> KResult<()> {
        let (fam, port, groups) = parse_addr(addr)?;
        if fam != AF_NETLINK {
            return Err(Errno::EINVAL);
        }
        let mut s = self.st.lock();
        if s.portid != 0 {
            // Rebinding to the same port only changes the groups.
            if port != 0 && port != s.portid {
                return Err(Errno::EINVAL);
            }
        } else {
            s.portid = claim_port(port)?;
        }
        s.groups = groups;
        Ok(())
    }

    fn listen(&self, _backlog: i32) -> KResult<()> {
        Err(Errno::EOPNOTSUPP)
    }

    fn accept(&self, _flags: u32) -> KResult<Arc<dyn Socket>> {
        Err(Errno::EOPNOTSUPP)
    }

    fn connect(&self, addr: &[u8], _flags: u32) -> KResult<()> {
        // Only the kernel (port 0) answers anything here.
        let (fam, port, _) = parse_addr(addr)?;
        if fam != AF_NETLINK {
            return Err(Errno::EINVAL);
        }
        if port != 0 {
            return Err(Errno::ECONNREFUSED);
        }
        self.portid().map(|_| ())
    }

    fn shutdown(&self, _how: u32) -> KResult<()> {
        Err(Errno::EOPNOTSUPP)
    }

    fn local_name(&self) -> KResult<Vec<u8>> {
        let s = self.st.lock();
        Ok(sockaddr_nl(s.portid, s.groups))
    }

    fn peer_name(&self) -> KResult<Vec<u8>> {
        Ok(sockaddr_nl(0, 0))
    }

    fn send(
        &self,
        data: &[u8],
        _anc: Option<Ancillary>,
        to: Option<&[u8]>,
        _flags: u32,
    ) -> KResult<usize> {
        if let Some(to) = to {
            let (fam, port, _) = parse_addr(to)?;
            if fam != AF_NETLINK {
                return Err(Errno::EINVAL);
            }
            // To another process's socket (no such traffic is kept).
            if port != 0 {
                return Err(Errno::ECONNREFUSED);
            }
        }
        let portid = self.portid()?;
        if data.len() > self.st.lock().sndbuf {
            return Err(Errno::EMSGSIZE);
        }
        // Every message of the datagram, answered in order into one.
        let mut out: Option<Batch> = None;
        let mut rest = data;
        while rest.len() >= NLMSG_HDRLEN {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap_or([0; 4])) as usize;
            if len < NLMSG_HDRLEN || len > rest.len() {
                break;
            }
            let req = Request {
                ty: u16::from_le_bytes([rest[4], rest[5]]),
                flags: u16::from_le_bytes([rest[6], rest[7]]),
                seq: u32::from_le_bytes(rest[8..12].try_into().unwrap_or([0; 4])),
            };
            // Only requests are answered (Linux ignores the rest).
            if req.flags & NLM_F_REQUEST != 0 && req.ty >= 16 {
                let b = out.get_or_insert_with(|| Batch::new(req.seq, portid));
                route::answer(req, &rest[..len], b);
            }
            rest = &rest[((len + 3) & !3).min(rest.len())..];
        }
        if let Some(b) = out {
            let mut s = self.st.lock();
            if s.queued + b.buf.len() > s.rcvbuf {
                s.overrun = true;
            } else {
                s.queued += b.buf.len();
                s.rx.push_back(b.buf);
            }
            drop(s);
            self.changed();
        }
        Ok(data.len())
    }

    fn recv(&self, max: usize, flags: u32) -> KResult<Received> {
        let take = || {
            let mut s = self.st.lock();
            if s.overrun {
                s.overrun = false;
                return Some(Err(Errno::ENOBUFS));
            }
            let full = s.rx.front()?.len();
            let data = if flags & MSG_PEEK != 0 {
                s.rx.front()?[..full.min(max)].to_vec()
            } else {
                let mut d = s.rx.pop_front()?;
                s.queued -= full;
                d.truncate(max);
                d
            };
            Some(Ok(Received {
                data,
                full_len: full,
                from: Some(sockaddr_nl(0, 0)),
                anc: None,
            }))
        };
        if flags & MSG_DONTWAIT != 0 {
            return take().unwrap_or(Err(Errno::EAGAIN));
        }
        self.wq.wait_until(take)?
    }

    fn poll(&self) -> u16 {
        let s = self.st.lock();
        let mut ev = POLLOUT;
        if !s.rx.is_empty() {
            ev |= POLLIN;
        }
        if s.overrun {
            ev |= POLLERR;
        }
        ev
    }

    fn poll_gen(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }

    fn getsockopt(&self, level: u32, name: u32) -> KResult<Vec<u8>> {
        let s = self.st.lock();
        match (level, name) {
            (SOL_SOCKET, SO_TYPE) => Ok(int_opt(self.ty as i32)),
            (SOL_SOCKET, SO_DOMAIN) => Ok(int_opt(i32::from(AF_NETLINK))),
            (SOL_SOCKET, SO_PROTOCOL) => Ok(int_opt(NETLINK_ROUTE as i32)),
            (SOL_SOCKET, SO_ERROR) => Ok(int_opt(0)),
            (SOL_SOCKET, SO_RCVBUF) => Ok(int_opt(s.rcvbuf as i32)),
            (SOL_SOCKET, SO_SNDBUF) => Ok(int_opt(s.sndbuf as i32)),
            (SOL_NETLINK, n) if flag_opt(n) => Ok(int_opt(0)),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn setsockopt(&self, level: u32, name: u32, val: &[u8]) -> KResult<()> {
        let mut s = self.st.lock();
        match (level, name) {
            (SOL_SOCKET, SO_RCVBUF | SO_RCVBUFFORCE) => s.rcvbuf = buf_size(val)?,
            (SOL_SOCKET, SO_SNDBUF | SO_SNDBUFFORCE) => s.sndbuf = buf_size(val)?,
            (SOL_NETLINK, NETLINK_ADD_MEMBERSHIP) => {
                let g = read_int_opt(val)?;
                if (1..=32).contains(&g) {
                    s.groups |= 1 << (g - 1);
                }
            }
            (SOL_NETLINK, NETLINK_DROP_MEMBERSHIP) => {
                let g = read_int_opt(val)?;
                if (1..=32).contains(&g) {
                    s.groups &= !(1 << (g - 1));
                }
            }
            (SOL_NETLINK, n) if flag_opt(n) => {
                read_int_opt(val)?;
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn readable_len(&self) -> usize {
        self.st.lock().rx.front().map_or(0, Vec::len)
    }

    fn release(&self) {
        let mut s = self.st.lock();
        s.rx.clear();
        s.queued = 0;
        if s.portid != 0 {
            PORTS.lock().retain(|&p| p != s.portid);
            s.portid = 0;
        }
    }
}
