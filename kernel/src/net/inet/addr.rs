//! sockaddr_in in and out, and which ports are taken (bind's
//! EADDRINUSE, port 0's ephemeral choice), per protocol.

use abi::{Errno, KResult};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};
use spin::Mutex;

use super::AF_INET;
use crate::net::socket::AF_UNSPEC;

/// Linux's net.ipv4.ip_local_port_range.
const EPHEMERAL: core::ops::RangeInclusive<u16> = 32768..=60999;

/// (SOCK_* type, port) of every bound AF_INET socket.
static PORTS: Mutex<BTreeSet<(u32, u16)>> = Mutex::new(BTreeSet::new());
/// Where the next ephemeral search starts (spreads reuse out, as Linux).
static NEXT: Mutex<u16> = Mutex::new(32768);

/// A parsed sockaddr: AF_INET with its endpoint, or AF_UNSPEC
/// (connect's "dissolve the association").
pub enum Target {
    Inet(Ipv4Address, u16),
    Unspec,
}

/// Reads a sockaddr_in (at least its 16 bytes, as Linux asks).
pub fn parse(raw: &[u8]) -> KResult<Target> {
    if raw.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let fam = u16::from_le_bytes([raw[0], raw[1]]);
    if fam == AF_UNSPEC {
        return Ok(Target::Unspec);
    }
    if raw.len() < 16 {
        return Err(Errno::EINVAL);
    }
    if fam != AF_INET {
        return Err(Errno::EAFNOSUPPORT);
    }
    let port = u16::from_be_bytes([raw[2], raw[3]]);
    Ok(Target::Inet(
        Ipv4Address::new(raw[4], raw[5], raw[6], raw[7]),
        port,
    ))
}

/// Reads an AF_INET sockaddr (AF_UNSPEC refused).
pub fn parse_inet(raw: &[u8]) -> KResult<(Ipv4Address, u16)> {
    match parse(raw)? {
        Target::Inet(a, p) => Ok((a, p)),
        Target::Unspec => Err(Errno::EAFNOSUPPORT),
    }
}

/// struct sockaddr_in's 16 bytes.
pub fn sockaddr(a: Ipv4Address, port: u16) -> Vec<u8> {
    let mut v = alloc::vec![0u8; 16];
    v[..2].copy_from_slice(&AF_INET.to_le_bytes());
    v[2..4].copy_from_slice(&port.to_be_bytes());
    v[4..8].copy_from_slice(&a.octets());
    v
}

/// The IPv4 address of an endpoint (the stack speaks only IPv4).
pub fn v4(a: IpAddress) -> Ipv4Address {
    match a {
        IpAddress::Ipv4(a) => a,
    }
}

pub fn endpoint_addr(e: IpEndpoint) -> Vec<u8> {
    sockaddr(v4(e.addr), e.port)
}

/// Takes `port` for a socket of type `ty` (port 0: a free ephemeral one).
pub fn claim(ty: u32, port: u16) -> KResult<u16> {
    let mut ports = PORTS.lock();
    if port != 0 {
        return if ports.insert((ty, port)) {
            Ok(port)
        } else {
            Err(Errno::EADDRINUSE)
        };
    }
    let mut next = NEXT.lock();
    let span = EPHEMERAL.end() - EPHEMERAL.start() + 1;
    for _ in 0..span {
        let p = *next;
        *next = if p >= *EPHEMERAL.end() {
            *EPHEMERAL.start()
        } else {
            p + 1
        };
        if ports.insert((ty, p)) {
            return Ok(p);
        }
    }
    Err(Errno::EADDRINUSE)
}

/// Gives `port` back.
pub fn free(ty: u32, port: u16) {
    PORTS.lock().remove(&(ty, port));
}
