//! The interface ioctls on sockets (netdevice(7)) that busybox
//! `ifconfig` and friends use: SIOCGIFCONF, SIOCGIFNAME, SIOCGIFINDEX,
//! SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFDSTADDR, SIOCGIFBRDADDR,
//! SIOCGIFNETMASK, SIOCGIFHWADDR, SIOCGIFMTU, SIOCGIFMETRIC, SIOCGIFMAP,
//! SIOCGIFTXQLEN. Two interfaces: `lo` (index 1, 127.0.0.1/8) and, with
//! a NIC, `eth0` (index 2). Setting anything (SIOCSIF*) is EOPNOTSUPP,
//! addresses come from `ip=` or DHCP, except SIOCSIFFLAGS asking for the
//! up state an interface already has (`ifconfig lo up`).

use abi::{Errno, KResult};
use alloc::vec::Vec;
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use super::stack;

const SIOCGIFNAME: u64 = 0x8910;
const SIOCGIFCONF: u64 = 0x8912;
const SIOCGIFFLAGS: u64 = 0x8913;
const SIOCSIFFLAGS: u64 = 0x8914;
const SIOCGIFADDR: u64 = 0x8915;
const SIOCGIFDSTADDR: u64 = 0x8917;
const SIOCGIFBRDADDR: u64 = 0x8919;
const SIOCGIFNETMASK: u64 = 0x891b;
const SIOCGIFMETRIC: u64 = 0x891d;
const SIOCGIFMTU: u64 = 0x8921;
const SIOCGIFHWADDR: u64 = 0x8927;
const SIOCGIFINDEX: u64 = 0x8933;
const SIOCGIFTXQLEN: u64 = 0x8942;
const SIOCGIFMAP: u64 = 0x8970;
/// The SIOCSIF* setters and other device requests we refuse.
const SIOC_RANGE: core::ops::RangeInclusive<u64> = 0x8900..=0x89ff;

const IFF_UP: u16 = 0x1;
const IFF_BROADCAST: u16 = 0x2;
pub(crate) const IFF_LOOPBACK: u16 = 0x8;
const IFF_RUNNING: u16 = 0x40;
const IFF_MULTICAST: u16 = 0x1000;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
/// sizeof(struct ifreq): a 16-byte name and a 24-byte union.
const IFREQ: usize = 40;
const IFNAMSIZ: usize = 16;

/// One interface as the ioctls (and NETLINK_ROUTE) describe it.
pub(crate) struct Iface {
    pub name: &'static str,
    pub index: i32,
    pub flags: u16,
    pub mtu: usize,
    pub hw_family: u16,
    pub mac: [u8; 6],
    pub addr: Option<Ipv4Cidr>,
}

/// The interfaces: `lo`, and `eth0` with a NIC.
pub(crate) fn ifaces() -> Vec<Iface> {
    let Some(snap) = stack::snapshot() else {
        return Vec::new();
    };
    let mut v = alloc::vec![Iface {
        name: "lo",
        index: 1,
        flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING,
        mtu: super::wire::ip_mtu(false),
        hw_family: ARPHRD_LOOPBACK,
        mac: [0; 6],
        addr: Some(Ipv4Cidr::new(Ipv4Address::new(127, 0, 0, 1), 8)),
    }];
    if let Some((_, mac)) = snap.eth {
        v.push(Iface {
            name: "eth0",
            index: 2,
            flags: IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST,
            mtu: super::wire::ip_mtu(true),
            hw_family: ARPHRD_ETHER,
            mac,
            addr: snap.addr,
        });
    }
    v
}

/// A struct sockaddr_in of `a` (port 0).
fn sin(a: Ipv4Address) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..2].copy_from_slice(&super::inet::AF_INET.to_le_bytes());
    s[4..8].copy_from_slice(&a.octets());
    s
}

/// The ifreq's name field: the bytes before the NUL (all 16 if none).
fn req_name(req: &[u8]) -> &[u8] {
    let n = &req[..IFNAMSIZ];
    &n[..n.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ)]
}

fn put_name(req: &mut [u8], name: &str) {
    req[..IFNAMSIZ].fill(0);
    req[..name.len()].copy_from_slice(name.as_bytes());
}

/// The interface ioctls on a socket: None if `cmd` is not one of them.
pub fn ioctl(cmd: u64, arg: u64) -> Option<KResult<u64>> {
    if !SIOC_RANGE.contains(&cmd) {
        return None;
    }
    Some(match cmd {
        SIOCGIFCONF => ifconf(arg),
        SIOCGIFNAME | SIOCGIFFLAGS | SIOCGIFADDR | SIOCGIFDSTADDR | SIOCGIFBRDADDR
        | SIOCGIFNETMASK | SIOCGIFMETRIC | SIOCGIFMTU | SIOCGIFHWADDR | SIOCGIFINDEX
        | SIOCGIFTXQLEN | SIOCGIFMAP => ifreq(cmd, arg),
        SIOCSIFFLAGS => set_flags(arg),
        _ => Err(Errno::EOPNOTSUPP),
    })
}

/// SIOCSIFFLAGS: the interfaces are always up, so asking for up (`ifconfig
/// lo up`, busybox `ip link set lo up`, what an init script does first)
/// changes nothing and succeeds; taking one down is EOPNOTSUPP.
fn set_flags(arg: u64) -> KResult<u64> {
    let mut req = [0u8; IFREQ];
    crate::uaccess::copy_in(arg, &mut req)?;
    let want = u16::from_le_bytes([req[16], req[17]]);
    let all = ifaces();
    let name = req_name(&req);
    let ifc = all
        .iter()
        .find(|i| i.name.as_bytes() == name)
        .ok_or(Errno::ENODEV)?;
    if want & IFF_UP == ifc.flags & IFF_UP {
        Ok(0)
    } else {
        Err(Errno::EOPNOTSUPP)
    }
}

/// The get requests on one struct ifreq, read and written in place.
fn ifreq(cmd: u64, arg: u64) -> KResult<u64> {
    let mut req = [0u8; IFREQ];
    crate::uaccess::copy_in(arg, &mut req)?;
    let all = ifaces();
    let ifc = if cmd == SIOCGIFNAME {
        let idx = i32::from_le_bytes(req[16..20].try_into().unwrap_or([0; 4]));
        all.iter().find(|i| i.index == idx).ok_or(Errno::ENODEV)?
    } else {
        let name = req_name(&req);
        all.iter()
            .find(|i| i.name.as_bytes() == name)
            .ok_or(Errno::ENODEV)?
    };
    let u = &mut req[16..];
    match cmd {
        SIOCGIFNAME => put_name(&mut req, ifc.name),
        SIOCGIFINDEX => u[..4].copy_from_slice(&ifc.index.to_le_bytes()),
        SIOCGIFFLAGS => u[..2].copy_from_slice(&ifc.flags.to_le_bytes()),
        SIOCGIFMETRIC => u[..4].fill(0),
        SIOCGIFMTU => u[..4].copy_from_slice(&(ifc.mtu as i32).to_le_bytes()),
        SIOCGIFTXQLEN => u[..4].copy_from_slice(&1000i32.to_le_bytes()),
        SIOCGIFMAP => u.fill(0),
        SIOCGIFHWADDR => {
            u.fill(0);
            u[..2].copy_from_slice(&ifc.hw_family.to_le_bytes());
            u[2..8].copy_from_slice(&ifc.mac);
        }
        _ => {
            // The address requests: EADDRNOTAVAIL without an address.
            let a = ifc.addr.ok_or(Errno::EADDRNOTAVAIL)?;
            let v = match cmd {
                SIOCGIFADDR | SIOCGIFDSTADDR => a.address(),
                SIOCGIFNETMASK => a.netmask(),
                // lo has no broadcast address (0.0.0.0, as Linux).
                _ if ifc.flags & IFF_BROADCAST == 0 => Ipv4Address::UNSPECIFIED,
                _ => a.broadcast().unwrap_or(Ipv4Address::UNSPECIFIED),
            };
            u[..16].copy_from_slice(&sin(v));
        }
    }
    crate::uaccess::copy_out(arg, &req)?;
    Ok(0)
}

/// SIOCGIFCONF: an ifreq (name, address) per interface with an IPv4
/// address, as many whole ones as ifc_len holds; ifc_len becomes the
/// bytes written (with a NULL buffer: the bytes all would take).
fn ifconf(arg: u64) -> KResult<u64> {
    let len = crate::uaccess::read_u32(arg)? as i32;
    let buf = crate::uaccess::read_u64(arg + 8)?;
    let mut out = Vec::new();
    for i in ifaces() {
        let Some(a) = i.addr else { continue };
        let mut r = [0u8; IFREQ];
        put_name(&mut r, i.name);
        r[16..32].copy_from_slice(&sin(a.address()));
        out.extend_from_slice(&r);
    }
    if buf == 0 {
        crate::uaccess::write_u32(arg, out.len() as u32)?;
        return Ok(0);
    }
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let n = out.len().min(len as usize / IFREQ * IFREQ);
    crate::uaccess::copy_out(buf, &out[..n])?;
    crate::uaccess::write_u32(arg, n as u32)?;
    Ok(0)
}
