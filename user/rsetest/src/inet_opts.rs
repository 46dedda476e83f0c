//! AF_INET options and ioctls over the loopback: SO_RCVTIMEO (recv and
//! accept give EAGAIN once it passes, not before), SO_SNDTIMEO (a send
//! into a full connection stops with EAGAIN), their values read back,
//! EDOM for bad microseconds, SO_ERROR after a refused non-blocking
//! connect, and the interface ioctls on lo (SIOCGIFCONF, SIOCGIFFLAGS,
//! SIOCGIFADDR, SIOCGIFNETMASK, SIOCGIFHWADDR, SIOCGIFMTU, SIOCGIFINDEX,
//! SIOCGIFNAME; ENODEV for an unknown name); TCP_CORK read back and
//! MSG_MORE sends, all delivered.

use std::time::{Duration, Instant};

use crate::inet::{bind4, connect4, getint, name, setint, tcp, udp};
use crate::inet_lo::tcp_pair;
use crate::sock::{errname_net, r, recv, send};
use crate::util::{check, close};

fn set_timeo(fd: i32, opt: i32, sec: i64, usec: i64) -> Result<isize, i32> {
    let tv = libc::timeval {
        tv_sec: sec,
        tv_usec: usec,
    };
    // SAFETY: a valid timeval.
    r(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    } as isize)
}

fn get_timeo(fd: i32, opt: i32) -> Result<(i64, i64), i32> {
    // SAFETY: plain data.
    let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: valid out-parameters.
    r(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    } as isize)?;
    Ok((tv.tv_sec, tv.tv_usec))
}

/// Runs `f`, returning its result and how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn timeouts() -> Result<(), String> {
    let l = tcp()?;
    bind4(l, [127, 0, 0, 1], 0).map_err(|e| format!("bind: {}", errname_net(e)))?;
    // SAFETY: plain syscall.
    r(unsafe { libc::listen(l, 4) } as isize).map_err(|e| format!("listen: {e}"))?;
    let (_, port, _) = name(l, false).map_err(|e| format!("getsockname: {e}"))?;
    check(
        set_timeo(l, libc::SO_RCVTIMEO, 0, 1_000_000) == Err(libc::EDOM),
        "SO_RCVTIMEO with tv_usec 1000000: EDOM",
    )?;
    check(
        set_timeo(l, libc::SO_RCVTIMEO, 0, 250_000) == Ok(0)
            // Linux keeps it in jiffies: rounded up to its tick.
            && matches!(get_timeo(l, libc::SO_RCVTIMEO), Ok((0, us)) if (250_000..260_000).contains(&us)),
        format!(
            "SO_RCVTIMEO 250 ms set and read back (got {:?})",
            get_timeo(l, libc::SO_RCVTIMEO)
        ),
    )?;
    check(
        get_timeo(l, libc::SO_SNDTIMEO) == Ok((0, 0)),
        "SO_SNDTIMEO unset reads 0",
    )?;
    // SAFETY: null address out-parameters are allowed.
    let (got, took) = timed(|| {
        r(unsafe { libc::accept(l, std::ptr::null_mut(), std::ptr::null_mut()) } as isize)
    });
    check(
        got == Err(libc::EAGAIN) && took >= Duration::from_millis(240) && took < Duration::from_secs(10),
        format!("accept with SO_RCVTIMEO 250 ms and nobody connecting: EAGAIN after {took:?} (got {got:?})"),
    )?;
    let (c, a) = tcp_pair(l, port)?;
    check(
        set_timeo(a, libc::SO_RCVTIMEO, 0, 200_000) == Ok(0),
        "SO_RCVTIMEO 200 ms on a connection",
    )?;
    let mut b = [0u8; 16];
    // SAFETY: a valid buffer.
    let (got, took) = timed(|| r(unsafe { libc::recv(a, b.as_mut_ptr().cast(), 16, 0) }));
    check(
        got == Err(libc::EAGAIN)
            && took >= Duration::from_millis(190)
            && took < Duration::from_secs(10),
        format!(
            "recv with SO_RCVTIMEO 200 ms and nothing sent: EAGAIN after {took:?} (got {got:?})"
        ),
    )?;
    // Data that comes in time is read.
    // SAFETY: a valid buffer.
    let sent = unsafe { libc::send(c, b"hi".as_ptr().cast(), 2, 0) };
    // SAFETY: a valid buffer.
    let got = r(unsafe { libc::recv(a, b.as_mut_ptr().cast(), 16, 0) });
    check(
        sent == 2 && got == Ok(2),
        "data sent before the timeout is received",
    )?;
    // A send into a connection nobody reads fills it, then times out.
    check(
        set_timeo(c, libc::SO_SNDTIMEO, 0, 200_000) == Ok(0),
        "SO_SNDTIMEO 200 ms",
    )?;
    let chunk = vec![7u8; 65536];
    let mut total = 0usize;
    let mut last = Ok(0);
    let mut took = Duration::ZERO;
    for _ in 0..4096 {
        // SAFETY: a valid buffer.
        let (g, t) = timed(|| r(unsafe { libc::send(c, chunk.as_ptr().cast(), chunk.len(), 0) }));
        last = g;
        took = t;
        match g {
            Ok(n) => total += n as usize,
            Err(_) => break,
        }
    }
    check(
        last == Err(libc::EAGAIN) && took >= Duration::from_millis(190) && total > 0,
        format!("sending into an unread connection: {total} bytes taken, then EAGAIN after {took:?} (got {last:?})"),
    )?;
    close(a);
    close(c);
    close(l);
    Ok(())
}

fn refused_so_error() -> Result<(), String> {
    let b = tcp()?;
    bind4(b, [127, 0, 0, 1], 0).map_err(|e| format!("bind: {}", errname_net(e)))?;
    let (_, port, _) = name(b, false).map_err(|e| format!("getsockname: {e}"))?;
    let c = crate::sock::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK)
        .map_err(|e| format!("socket: {e}"))? as i32;
    let got = connect4(c, [127, 0, 0, 1], port);
    let mut p = libc::pollfd {
        fd: c,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 10_000) };
    let e1 = getint(c, libc::SOL_SOCKET, libc::SO_ERROR);
    let e2 = getint(c, libc::SOL_SOCKET, libc::SO_ERROR);
    check(
        matches!(got, Err(libc::EINPROGRESS) | Err(libc::ECONNREFUSED))
            && (got == Err(libc::ECONNREFUSED) || (e1 == Ok(libc::ECONNREFUSED) && e2 == Ok(0))),
        format!("non-blocking connect to a closed loopback port: EINPROGRESS, then SO_ERROR ECONNREFUSED once (connect {got:?}, SO_ERROR {e1:?} then {e2:?})"),
    )?;
    close(c);
    close(b);
    Ok(())
}

/// An ifreq with `name`.
fn ifreq(name: &str) -> [u8; 40] {
    let mut r = [0u8; 40];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r
}

fn ioc(fd: i32, cmd: libc::c_ulong, req: &mut [u8; 40]) -> Result<isize, i32> {
    // SAFETY: a 40-byte struct ifreq.
    r(unsafe { libc::ioctl(fd, cmd, req.as_mut_ptr()) } as isize)
}

fn interface_ioctls() -> Result<(), String> {
    let s = udp()?;
    let mut q = ifreq("lo");
    check(
        ioc(s, libc::SIOCGIFFLAGS, &mut q) == Ok(0),
        "SIOCGIFFLAGS lo",
    )?;
    let flags = u16::from_le_bytes([q[16], q[17]]) as i32;
    let want = libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING;
    check(
        flags & want == want && flags & libc::IFF_BROADCAST == 0,
        format!("lo is UP, LOOPBACK, RUNNING, not BROADCAST (flags {flags:#x})"),
    )?;
    let mut q = ifreq("lo");
    check(
        ioc(s, libc::SIOCGIFADDR, &mut q) == Ok(0)
            && u16::from_le_bytes([q[16], q[17]]) == libc::AF_INET as u16
            && q[20..24] == [127, 0, 0, 1],
        "SIOCGIFADDR lo: AF_INET 127.0.0.1",
    )?;
    let mut q = ifreq("lo");
    check(
        ioc(s, libc::SIOCGIFNETMASK, &mut q) == Ok(0) && q[20..24] == [255, 0, 0, 0],
        "SIOCGIFNETMASK lo: 255.0.0.0",
    )?;
    let mut q = ifreq("lo");
    check(
        ioc(s, libc::SIOCGIFHWADDR, &mut q) == Ok(0)
            && u16::from_le_bytes([q[16], q[17]]) == libc::ARPHRD_LOOPBACK
            && q[18..24] == [0; 6],
        "SIOCGIFHWADDR lo: ARPHRD_LOOPBACK, all-zero address",
    )?;
    let mut q = ifreq("lo");
    let mtu =
        ioc(s, libc::SIOCGIFMTU, &mut q).map(|_| i32::from_le_bytes([q[16], q[17], q[18], q[19]]));
    check(
        matches!(mtu, Ok(m) if (1280..=65536).contains(&m)),
        format!("SIOCGIFMTU lo: between 1280 and 65536 (got {mtu:?})"),
    )?;
    let mut q = ifreq("lo");
    let idx = ioc(s, libc::SIOCGIFINDEX, &mut q)
        .map(|_| i32::from_le_bytes([q[16], q[17], q[18], q[19]]));
    check(idx == Ok(1), format!("SIOCGIFINDEX lo: 1 (got {idx:?})"))?;
    let mut q = [0u8; 40];
    q[16..20].copy_from_slice(&1i32.to_le_bytes());
    check(
        ioc(s, libc::SIOCGIFNAME, &mut q) == Ok(0) && q[..3] == *b"lo\0",
        "SIOCGIFNAME of index 1: lo",
    )?;
    let mut q = ifreq("nosuch0");
    check(
        ioc(s, libc::SIOCGIFFLAGS, &mut q) == Err(libc::ENODEV),
        "SIOCGIFFLAGS of an unknown interface: ENODEV",
    )?;
    // SIOCGIFCONF: the size asked with a NULL buffer, then the list.
    let mut conf = libc::ifconf {
        ifc_len: 0,
        ifc_ifcu: libc::__c_anonymous_ifc_ifcu {
            ifcu_buf: std::ptr::null_mut(),
        },
    };
    // SAFETY: a valid struct ifconf with a NULL buffer.
    let got = r(unsafe { libc::ioctl(s, libc::SIOCGIFCONF, &mut conf) } as isize);
    let need = conf.ifc_len;
    check(
        got == Ok(0) && need >= 40 && need % 40 == 0,
        format!("SIOCGIFCONF with no buffer: the length of whole ifreqs (got {got:?}, {need})"),
    )?;
    let mut buf = vec![0u8; need as usize + 40];
    conf.ifc_len = buf.len() as i32;
    conf.ifc_ifcu.ifcu_buf = buf.as_mut_ptr().cast();
    // SAFETY: a buffer of ifc_len bytes.
    let got = r(unsafe { libc::ioctl(s, libc::SIOCGIFCONF, &mut conf) } as isize);
    let n = conf.ifc_len as usize;
    let has_lo = buf[..n.min(buf.len())]
        .chunks(40)
        .any(|r| r[..3] == *b"lo\0" && r[20..24] == [127, 0, 0, 1]);
    check(
        got == Ok(0) && n == need as usize && has_lo,
        format!("SIOCGIFCONF: {n} bytes, lo with 127.0.0.1 among them"),
    )?;
    close(s);
    Ok(())
}

/// TCP_CORK set and read back, sends with MSG_MORE under it, the data
/// all delivered once it is cleared.
fn cork() -> Result<(), String> {
    let l = tcp()?;
    bind4(l, [127, 0, 0, 1], 0).map_err(|e| format!("bind: {}", errname_net(e)))?;
    // SAFETY: plain syscall.
    r(unsafe { libc::listen(l, 4) } as isize).map_err(|e| format!("listen: {e}"))?;
    let (_, port, _) = name(l, false).map_err(|e| format!("getsockname: {e}"))?;
    let (c, a) = tcp_pair(l, port)?;
    check(
        getint(c, libc::IPPROTO_TCP, libc::TCP_CORK) == Ok(0),
        "TCP_CORK is 0 on a new socket",
    )?;
    check(
        setint(c, libc::IPPROTO_TCP, libc::TCP_CORK, 1) == Ok(0)
            && getint(c, libc::IPPROTO_TCP, libc::TCP_CORK) == Ok(1),
        "TCP_CORK 1 set and read back",
    )?;
    for part in [&b"cor"[..], b"ked "] {
        check(
            send(c, part, libc::MSG_MORE) == Ok(part.len() as isize),
            format!("send of {} bytes with MSG_MORE while corked", part.len()),
        )?;
    }
    check(send(c, b"data", 0) == Ok(4), "a last send without MSG_MORE")?;
    check(
        setint(c, libc::IPPROTO_TCP, libc::TCP_CORK, 0) == Ok(0)
            && getint(c, libc::IPPROTO_TCP, libc::TCP_CORK) == Ok(0),
        "TCP_CORK 0 (uncork) set and read back",
    )?;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < 11 {
        match recv(a, &mut buf, 0) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n as usize]),
            other => return Err(format!("recv after uncork: {other:?}")),
        }
    }
    check(
        got == b"corked data",
        format!(
            "the peer receives all of it: {:?}",
            String::from_utf8_lossy(&got)
        ),
    )?;
    // Without TCP_CORK, a send without MSG_MORE pushes what MSG_MORE held.
    check(
        send(a, b"x", libc::MSG_MORE) == Ok(1) && send(a, b"y", 0) == Ok(1),
        "MSG_MORE without TCP_CORK, then a plain send",
    )?;
    let mut got = Vec::new();
    while got.len() < 2 {
        match recv(c, &mut buf, 0) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n as usize]),
            other => return Err(format!("recv: {other:?}")),
        }
    }
    check(got == b"xy", "both bytes delivered")?;
    close(c);
    close(a);
    close(l);
    Ok(())
}

pub fn run(_: &[String]) -> Result<(), String> {
    timeouts()?;
    cork()?;
    refused_so_error()?;
    interface_ioctls()
}
