//! NETLINK_ROUTE's answers (rtnetlink(7)): the link, address and route
//! dumps that busybox `ip`, glibc's getifaddrs and iproute2 read, built
//! from the same interface list the ioctls use (`ifreq::ifaces`).
//! Changing anything (a new address, a route, a link going down) is
//! EOPNOTSUPP: addresses come from `ip=` or DHCP. Layouts are those of
//! linux/netlink.h, rtnetlink.h, if_link.h and if_addr.h.

use abi::Errno;
use alloc::vec::Vec;

use crate::net::ifreq::{ifaces, Iface};

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 1;
pub const NLM_F_MULTI: u16 = 2;
pub const NLM_F_ACK: u16 = 4;
/// NLM_F_ROOT | NLM_F_MATCH.
pub const NLM_F_DUMP: u16 = 0x300;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_PACKET: u8 = 17;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_QDISC: u16 = 6;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_CARRIER: u16 = 33;
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_UP: u8 = 6;
/// Linux reports it with IFF_RUNNING on a link whose carrier is up.
const IFF_LOWER_UP: u32 = 0x1_0000;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFA_F_PERMANENT: u8 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_KERNEL: u8 = 2;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// A request's header fields the answer echoes.
#[derive(Clone, Copy)]
pub struct Request {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
}

/// Messages being built into one buffer, each 4-byte aligned.
pub struct Batch {
    pub buf: Vec<u8>,
    seq: u32,
    portid: u32,
}

impl Batch {
    pub fn new(seq: u32, portid: u32) -> Batch {
        Batch {
            buf: Vec::new(),
            seq,
            portid,
        }
    }

    /// Starts a message of type `ty`; returns where it starts.
    fn begin(&mut self, ty: u16, flags: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.buf.extend_from_slice(&ty.to_le_bytes());
        self.buf.extend_from_slice(&flags.to_le_bytes());
        self.buf.extend_from_slice(&self.seq.to_le_bytes());
        self.buf.extend_from_slice(&self.portid.to_le_bytes());
        at
    }

    /// Ends the message begun at `at`: its length, then padding.
    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// One attribute (struct rtattr and its payload, padded).
    fn attr(&mut self, ty: u16, payload: &[u8]) {
        let len = (4 + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&ty.to_le_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    fn attr_str(&mut self, ty: u16, s: &str) {
        let mut z = Vec::with_capacity(s.len() + 1);
        z.extend_from_slice(s.as_bytes());
        z.push(0);
        self.attr(ty, &z);
    }

    /// NLMSG_DONE closing a dump (its payload: the int 0).
    pub fn done(&mut self) {
        let at = self.begin(NLMSG_DONE, NLM_F_MULTI);
        self.buf.extend_from_slice(&0i32.to_le_bytes());
        self.end(at);
    }

    /// NLMSG_ERROR answering `req` (`err` 0: the acknowledgement), with
    /// the request's header as Linux echoes it (NETLINK_CAP_ACK off).
    pub fn error(&mut self, err: i32, req_hdr: &[u8]) {
        let at = self.begin(NLMSG_ERROR, 0);
        self.buf.extend_from_slice(&err.to_le_bytes());
        self.buf.extend_from_slice(&req_hdr[..NLMSG_HDRLEN]);
        self.end(at);
    }

    fn link(&mut self, i: &Iface, flags: u16) {
        let at = self.begin(RTM_NEWLINK, flags);
        // struct ifinfomsg
        self.buf.push(AF_UNSPEC);
        self.buf.push(0);
        self.buf.extend_from_slice(&i.hw_family.to_le_bytes());
        self.buf.extend_from_slice(&i.index.to_le_bytes());
        self.buf
            .extend_from_slice(&(u32::from(i.flags) | IFF_LOWER_UP).to_le_bytes());
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.attr_str(IFLA_IFNAME, i.name);
        self.attr(IFLA_TXQLEN, &1000u32.to_le_bytes());
        let loopback = i.flags & crate::net::ifreq::IFF_LOOPBACK != 0;
        self.attr(
            IFLA_OPERSTATE,
            &[if loopback {
                IF_OPER_UNKNOWN
            } else {
                IF_OPER_UP
            }],
        );
        self.attr(IFLA_LINKMODE, &[0]);
        self.attr(IFLA_MTU, &(i.mtu as u32).to_le_bytes());
        self.attr_str(IFLA_QDISC, if loopback { "noqueue" } else { "pfifo_fast" });
        self.attr(IFLA_CARRIER, &[1]);
        self.attr(IFLA_ADDRESS, &i.mac);
        let brd = if loopback { [0; 6] } else { [0xff; 6] };
        self.attr(IFLA_BROADCAST, &brd);
        self.end(at);
    }

    fn addr(&mut self, i: &Iface, flags: u16) {
        let Some(cidr) = i.addr else {
            return;
        };
        let loopback = i.flags & crate::net::ifreq::IFF_LOOPBACK != 0;
        let at = self.begin(RTM_NEWADDR, flags);
        // struct ifaddrmsg
        self.buf.push(AF_INET);
        self.buf.push(cidr.prefix_len());
        self.buf.push(IFA_F_PERMANENT);
        self.buf.push(if loopback {
            RT_SCOPE_HOST
        } else {
            RT_SCOPE_UNIVERSE
        });
        self.buf.extend_from_slice(&(i.index as u32).to_le_bytes());
        let a = cidr.address().octets();
        self.attr(IFA_ADDRESS, &a);
        self.attr(IFA_LOCAL, &a);
        if !loopback {
            if let Some(b) = cidr.broadcast() {
                self.attr(IFA_BROADCAST, &b.octets());
            }
        }
        self.attr_str(IFA_LABEL, i.name);
        // struct ifa_cacheinfo: preferred and valid lifetimes forever.
        let mut ci = [0u8; 16];
        ci[..8].fill(0xff);
        self.attr(IFA_CACHEINFO, &ci);
        self.end(at);
    }

    /// A main-table route through interface `oif`.
    fn route(&mut self, r: &Route, flags: u16) {
        let at = self.begin(RTM_NEWROUTE, flags);
        // struct rtmsg
        self.buf.extend_from_slice(&[
            AF_INET,
            r.dst_len,
            0,
            0,
            RT_TABLE_MAIN,
            r.protocol,
            r.scope,
            RTN_UNICAST,
        ]);
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.attr(RTA_TABLE, &u32::from(RT_TABLE_MAIN).to_le_bytes());
        if r.dst_len > 0 {
            self.attr(RTA_DST, &r.dst);
        }
        if let Some(src) = r.prefsrc {
            self.attr(RTA_PREFSRC, &src);
        }
        if let Some(gw) = r.gateway {
            self.attr(RTA_GATEWAY, &gw);
        }
        self.attr(RTA_OIF, &r.oif.to_le_bytes());
        self.end(at);
    }
}

/// One route of the main table.
struct Route {
    dst: [u8; 4],
    dst_len: u8,
    gateway: Option<[u8; 4]>,
    prefsrc: Option<[u8; 4]>,
    oif: u32,
    protocol: u8,
    scope: u8,
}

/// The main table as Linux builds it for the NIC's address: the
/// connected subnet (proto kernel, scope link, src the address) and the
/// default route through the gateway. (Loopback routes live in Linux's
/// local table, which is not kept here.)
fn routes() -> Vec<Route> {
    let mut v = Vec::new();
    let Some(snap) = crate::net::stack::snapshot() else {
        return v;
    };
    let Some(cidr) = snap.addr else {
        return v;
    };
    if let Some(gw) = snap.gateway {
        v.push(Route {
            dst: [0; 4],
            dst_len: 0,
            gateway: Some(gw.octets()),
            prefsrc: None,
            oif: 2,
            protocol: RTPROT_BOOT,
            scope: RT_SCOPE_UNIVERSE,
        });
    }
    v.push(Route {
        dst: cidr.network().address().octets(),
        dst_len: cidr.prefix_len(),
        gateway: None,
        prefsrc: Some(cidr.address().octets()),
        oif: 2,
        protocol: RTPROT_KERNEL,
        scope: RT_SCOPE_LINK,
    });
    v
}

/// The answer to one NETLINK_ROUTE request `msg` (header and payload),
/// appended to `out`.
pub fn answer(req: Request, msg: &[u8], out: &mut Batch) {
    let body = &msg[NLMSG_HDRLEN..];
    let dump = req.flags & NLM_F_DUMP == NLM_F_DUMP;
    // The family asked for: the first byte of every GET's body.
    let family = body.first().copied().unwrap_or(AF_UNSPEC);
    let r = match req.ty {
        RTM_GETLINK if dump => {
            if matches!(family, AF_UNSPEC | AF_INET | AF_PACKET) {
                for i in ifaces() {
                    out.link(&i, NLM_F_MULTI);
                }
            }
            out.done();
            Ok(())
        }
        RTM_GETLINK => get_link(body, out),
        RTM_GETADDR if dump => {
            if matches!(family, AF_UNSPEC | AF_INET) {
                for i in ifaces() {
                    out.addr(&i, NLM_F_MULTI);
                }
            }
            out.done();
            Ok(())
        }
        RTM_GETROUTE if dump => {
            if matches!(family, AF_UNSPEC | AF_INET) {
                for r in routes() {
                    out.route(&r, NLM_F_MULTI);
                }
            }
            out.done();
            Ok(())
        }
        // A route lookup for one destination, other GETs, every change
        // and unknown types (Linux: EOPNOTSUPP for all of them).
        _ => Err(Errno::EOPNOTSUPP),
    };
    match r {
        Err(e) => out.error(-(e.0 as i32), msg),
        Ok(()) if req.flags & NLM_F_ACK != 0 && !dump => out.error(0, msg),
        Ok(()) => {}
    }
}

/// RTM_GETLINK for one link, by index (ifinfomsg) or IFLA_IFNAME.
fn get_link(body: &[u8], out: &mut Batch) -> Result<(), Errno> {
    let index = body
        .get(4..8)
        .map_or(0, |b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])));
    let name = attrs(body.get(16..).unwrap_or(&[]))
        .find(|&(t, _)| t == IFLA_IFNAME)
        .map(|(_, v)| &v[..v.iter().position(|&c| c == 0).unwrap_or(v.len())]);
    let found = ifaces().into_iter().find(|i| {
        (index != 0 && i.index == index) || (index == 0 && name == Some(i.name.as_bytes()))
    });
    match found {
        Some(i) => {
            out.link(&i, 0);
            Ok(())
        }
        None if index == 0 && name.is_none() => Err(Errno::EINVAL),
        None => Err(Errno::ENODEV),
    }
}

/// The attributes (type, payload) in `b`, stopping at a malformed one.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    core::iter::from_fn(move || {
        let len = usize::from(u16::from_le_bytes(b.get(..2)?.try_into().ok()?));
        let ty = u16::from_le_bytes(b.get(2..4)?.try_into().ok()?);
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some((ty, payload))
    })
}
