//! NETLINK_ROUTE from a program's side (rtnetlink(7)): a link dump that
//! names `lo` with its index and ends in NLMSG_DONE carrying our
//! sequence number and port id; an address dump with 127.0.0.1/8 on lo;
//! MSG_PEEK|MSG_TRUNC giving a datagram's full length; EAGAIN on an empty
//! queue; and bad input answered with errors: an unknown protocol, a
//! malformed message (ignored), an unknown request type (NLMSG_ERROR),
//! a bad pointer (EFAULT). Passes on Linux too.

use crate::say;
use crate::sock::{errname_net, r};
use crate::util::{check, close};

const NETLINK_ROUTE: i32 = 0;
const RTM_GETLINK: u16 = 18;
const RTM_NEWLINK: u16 = 16;
const RTM_GETADDR: u16 = 22;
const RTM_NEWADDR: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFA_LOCAL: u16 = 2;

/// A request: nlmsghdr and a 16-byte zeroed body (room for ifinfomsg,
/// and ifaddrmsg's 8 bytes), with family `fam` in its first byte.
fn request(ty: u16, flags: u16, seq: u32, fam: u8) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&32u32.to_le_bytes());
    m.extend_from_slice(&ty.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.push(fam);
    m.extend_from_slice(&[0; 15]);
    m
}

fn send(fd: i32, m: &[u8]) -> Result<(), String> {
    // SAFETY: a buffer of our own.
    let n = r(unsafe { libc::send(fd, m.as_ptr().cast(), m.len(), 0) });
    check(
        n == Ok(m.len() as isize),
        format!("send a {}-byte request: {n:?}", m.len()),
    )
}

/// One message received: (type, seq, portid, body).
type Msg = (u16, u32, u32, Vec<u8>);

/// The messages of the datagrams received until NLMSG_DONE or
/// NLMSG_ERROR.
fn answers(fd: i32) -> Result<Vec<Msg>, String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: into our buffer.
        let n = r(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
            .map_err(|e| format!("recv: {}", errname_net(e)))? as usize;
        let mut b = &buf[..n];
        while b.len() >= 16 {
            let len = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
            if len < 16 || len > b.len() {
                return Err(format!("a message of length {len} in {} bytes", b.len()));
            }
            let ty = u16::from_le_bytes([b[4], b[5]]);
            let seq = u32::from_le_bytes(b[8..12].try_into().unwrap());
            let pid = u32::from_le_bytes(b[12..16].try_into().unwrap());
            out.push((ty, seq, pid, b[16..len].to_vec()));
            if ty == NLMSG_DONE || ty == NLMSG_ERROR {
                return Ok(out);
            }
            b = &b[((len + 3) & !3).min(b.len())..];
        }
    }
}

/// The (type, payload) attributes of a body after its fixed header.
fn attrs(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut v = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_le_bytes([b[0], b[1]]) as usize;
        if len < 4 || len > b.len() {
            break;
        }
        v.push((u16::from_le_bytes([b[2], b[3]]), b[4..len].to_vec()));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    v
}

pub fn run(_args: &[String]) -> Result<(), String> {
    // SAFETY: plain syscalls.
    let bad = r(unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, 99) } as isize);
    check(
        bad == Err(libc::EPROTONOSUPPORT),
        format!("netlink protocol 99: EPROTONOSUPPORT (got {bad:?})"),
    )?;
    // SAFETY: plain syscall.
    let fd = r(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_ROUTE,
        )
    } as isize)
    .map_err(|e| format!("socket(AF_NETLINK): {}", errname_net(e)))? as i32;
    // SAFETY: sockaddr_nl is plain data; bind to an automatic port id.
    let mut sa: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    let size = core::mem::size_of::<libc::sockaddr_nl>() as u32;
    // SAFETY: a valid sockaddr_nl of our own.
    let b = r(unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_nl).cast(), size) } as isize);
    check(b == Ok(0), format!("bind(port 0): {b:?}"))?;
    let mut len = size;
    // SAFETY: writes at most `len` bytes into sa.
    unsafe { libc::getsockname(fd, (&mut sa as *mut libc::sockaddr_nl).cast(), &mut len) };
    let port = sa.nl_pid;
    check(
        port != 0,
        format!("getsockname: a port id was assigned ({port})"),
    )?;

    // SAFETY: a non-blocking receive into our buffer, nothing queued.
    let mut x = [0u8; 64];
    let e = r(unsafe { libc::recv(fd, x.as_mut_ptr().cast(), x.len(), libc::MSG_DONTWAIT) });
    check(
        e == Err(libc::EAGAIN),
        format!("recv with nothing queued: EAGAIN (got {e:?})"),
    )?;

    send(fd, &request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 41, 0))?;
    // SAFETY: a peek into an empty buffer for the datagram's length.
    let full = r(unsafe {
        libc::recv(
            fd,
            x.as_mut_ptr().cast(),
            0,
            libc::MSG_PEEK | libc::MSG_TRUNC,
        )
    });
    check(
        matches!(full, Ok(n) if n > 16),
        format!("MSG_PEEK|MSG_TRUNC gives the answer's full length ({full:?})"),
    )?;
    let msgs = answers(fd)?;
    let done = msgs.last().unwrap();
    check(
        done.0 == NLMSG_DONE && done.1 == 41 && done.2 == port,
        format!(
            "the dump ends in NLMSG_DONE with seq 41 and our port (got type {} seq {} port {})",
            done.0, done.1, done.2
        ),
    )?;
    let lo = msgs.iter().filter(|m| m.0 == RTM_NEWLINK).find(|m| {
        attrs(&m.3[16..])
            .iter()
            .any(|(t, v)| *t == IFLA_IFNAME && v.starts_with(b"lo\0"))
    });
    let Some(lo) = lo else {
        return Err("RTM_GETLINK dump: no link named lo".into());
    };
    let lo_index = i32::from_le_bytes(lo.3[4..8].try_into().unwrap());
    // SAFETY: a NUL-terminated name.
    let by_name = unsafe { libc::if_nametoindex(c"lo".as_ptr()) } as i32;
    check(
        lo_index == by_name && lo_index > 0,
        format!("lo's index in the dump ({lo_index}) is if_nametoindex's ({by_name})"),
    )?;

    send(
        fd,
        &request(
            RTM_GETADDR,
            NLM_F_REQUEST | NLM_F_DUMP,
            42,
            libc::AF_INET as u8,
        ),
    )?;
    let msgs = answers(fd)?;
    let has_lo = msgs.iter().filter(|m| m.0 == RTM_NEWADDR).any(|m| {
        m.3[1] == 8
            && i32::from_le_bytes(m.3[4..8].try_into().unwrap()) == lo_index
            && attrs(&m.3[8..])
                .iter()
                .any(|(t, v)| *t == IFA_LOCAL && v[..] == [127, 0, 0, 1])
    });
    check(has_lo, "RTM_GETADDR dump: 127.0.0.1/8 on lo")?;

    // A malformed message (length past the datagram) is dropped; an
    // unknown request type is answered with NLMSG_ERROR.
    let mut junk = request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 43, 0);
    junk[..4].copy_from_slice(&4096u32.to_le_bytes());
    // SAFETY: our buffer.
    let n = r(unsafe { libc::send(fd, junk.as_ptr().cast(), junk.len(), 0) });
    check(
        n.is_ok() || n == Err(libc::EINVAL),
        format!("send of a malformed message: taken or EINVAL ({n:?})"),
    )?;
    send(fd, &request(250, NLM_F_REQUEST, 44, 0))?;
    let msgs = answers(fd)?;
    let last = msgs.last().unwrap();
    let err = i32::from_le_bytes(last.3[..4].try_into().unwrap());
    check(
        last.0 == NLMSG_ERROR && last.1 == 44 && err == -libc::EOPNOTSUPP,
        format!(
            "request type 250: NLMSG_ERROR with -EOPNOTSUPP for seq 44 (type {} seq {} error {err})",
            last.0, last.1
        ),
    )?;
    // SAFETY: a bad pointer on purpose.
    let f = r(unsafe { libc::send(fd, 8 as *const libc::c_void, 32, 0) });
    check(
        f == Err(libc::EFAULT),
        format!("send from a bad pointer: EFAULT ({f:?})"),
    )?;
    // SAFETY: a bad pointer on purpose.
    send(fd, &request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 45, 0))?;
    let f = r(unsafe { libc::recv(fd, 8 as *mut libc::c_void, 64, 0) });
    check(
        f == Err(libc::EFAULT),
        format!("recv into a bad pointer: EFAULT ({f:?})"),
    )?;
    close(fd);
    say!("netlink: link and address dumps, peeks and bad input as Linux");
    Ok(())
}
