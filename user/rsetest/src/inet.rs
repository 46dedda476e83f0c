//! AF_INET without a peer: socket types and protocols, bind (ephemeral
//! ports, EADDRINUSE per protocol, EINVAL on a second bind),
//! getsockname/getpeername, listen, a non-blocking accept (EAGAIN) and a
//! blocking one a signal interrupts (EINTR), options
//! (SO_REUSEADDR, TCP_NODELAY, SO_TYPE, SO_ACCEPTCONN), bad pointers
//! (EFAULT), refused connects (blocking, and non-blocking through
//! EINPROGRESS, poll and SO_ERROR), and a UDP sendto that leaves.
//!
//! The peer is the loopback on both systems (a closed port of 127.0.0.1
//! refuses): no NIC is needed.

use crate::sock::{r, socket, R};
use crate::util::{check, close, errno};

pub fn sin(a: [u8; 4], port: u16) -> libc::sockaddr_in {
    // SAFETY: plain data.
    let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = port.to_be();
    s.sin_addr.s_addr = u32::from_ne_bytes(a);
    s
}

pub const SIN_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

pub fn bind4(fd: i32, a: [u8; 4], port: u16) -> R {
    let s = sin(a, port);
    // SAFETY: a valid sockaddr_in.
    r(unsafe { libc::bind(fd, (&s as *const libc::sockaddr_in).cast(), SIN_LEN) } as isize)
}

pub fn connect4(fd: i32, a: [u8; 4], port: u16) -> R {
    let s = sin(a, port);
    // SAFETY: a valid sockaddr_in.
    r(unsafe { libc::connect(fd, (&s as *const libc::sockaddr_in).cast(), SIN_LEN) } as isize)
}

/// getsockname / getpeername: (address, port).
pub fn name(fd: i32, peer: bool) -> Result<([u8; 4], u16, i32), i32> {
    // SAFETY: plain data.
    let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = SIN_LEN;
    let p = (&mut s as *mut libc::sockaddr_in).cast();
    // SAFETY: valid out-parameters.
    let v = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    r(v as isize)?;
    Ok((
        s.sin_addr.s_addr.to_ne_bytes(),
        u16::from_be(s.sin_port),
        s.sin_family as i32,
    ))
}

pub fn getint(fd: i32, level: i32, opt: i32) -> Result<i32, i32> {
    let mut v: i32 = -1;
    let mut len = 4 as libc::socklen_t;
    // SAFETY: valid out-parameters.
    r(unsafe { libc::getsockopt(fd, level, opt, (&mut v as *mut i32).cast(), &mut len) } as isize)?;
    Ok(v)
}

pub fn setint(fd: i32, level: i32, opt: i32, v: i32) -> R {
    // SAFETY: a valid int.
    r(unsafe { libc::setsockopt(fd, level, opt, (&v as *const i32).cast(), 4) } as isize)
}

pub fn tcp() -> Result<i32, String> {
    socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC)
        .map(|f| f as i32)
        .map_err(|e| {
            format!(
                "socket(AF_INET, SOCK_STREAM): {}",
                crate::sock::errname_net(e)
            )
        })
}

pub fn udp() -> Result<i32, String> {
    socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC)
        .map(|f| f as i32)
        .map_err(|e| {
            format!(
                "socket(AF_INET, SOCK_DGRAM): {}",
                crate::sock::errname_net(e)
            )
        })
}

pub fn run(_: &[String]) -> Result<(), String> {
    // Types and protocols.
    // SAFETY: plain syscalls.
    let bad = unsafe {
        [
            libc::socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_UDP),
            libc::socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_TCP),
        ]
    };
    check(
        bad == [-1, -1] && errno() == libc::EPROTONOSUPPORT,
        "SOCK_STREAM with IPPROTO_UDP, SOCK_DGRAM with IPPROTO_TCP: EPROTONOSUPPORT",
    )?;

    // Names and ports.
    let t = tcp()?;
    check(
        name(t, false) == Ok(([0; 4], 0, libc::AF_INET)),
        "an unbound TCP socket's name is 0.0.0.0:0",
    )?;
    check(
        name(t, true) == Err(libc::ENOTCONN),
        "getpeername unconnected: ENOTCONN",
    )?;
    check(bind4(t, [0; 4], 0) == Ok(0), "bind 0.0.0.0:0")?;
    let (a, port, fam) = name(t, false).map_err(|e| format!("getsockname: {e}"))?;
    check(
        a == [0; 4] && port >= 1024 && fam == libc::AF_INET,
        format!("bound to an ephemeral port (got {a:?}:{port})"),
    )?;
    check(
        bind4(t, [0; 4], 0) == Err(libc::EINVAL),
        "a second bind: EINVAL",
    )?;
    let t2 = tcp()?;
    check(
        bind4(t2, [0; 4], port) == Err(libc::EADDRINUSE),
        "bind to a TCP port in use: EADDRINUSE",
    )?;
    let u = udp()?;
    check(
        bind4(u, [0; 4], port) == Ok(0),
        "the same port number for UDP is free (ports are per protocol)",
    )?;
    let u2 = udp()?;
    check(
        bind4(u2, [0; 4], port) == Err(libc::EADDRINUSE),
        "bind to a UDP port in use: EADDRINUSE",
    )?;
    check(
        bind4(u2, [203, 0, 113, 7], 0) == Err(libc::EADDRNOTAVAIL),
        "bind to an address not ours: EADDRNOTAVAIL",
    )?;
    close(u2);

    // Listening.
    check(
        // SAFETY: plain syscall.
        r(unsafe { libc::listen(t, 4) } as isize) == Ok(0),
        "listen",
    )?;
    check(
        getint(t, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Ok(1),
        "SO_ACCEPTCONN is 1 on a listener",
    )?;
    // SAFETY: plain syscalls (accept on a non-blocking listener).
    let got = unsafe {
        libc::fcntl(t, libc::F_SETFL, libc::O_NONBLOCK);
        let v = r(libc::accept4(t, std::ptr::null_mut(), std::ptr::null_mut(), 0) as isize);
        libc::fcntl(t, libc::F_SETFL, 0);
        v
    };
    check(
        got == Err(libc::EAGAIN),
        "accept on a non-blocking listener with no connection: EAGAIN",
    )?;
    // A blocking accept sleeps on a wait queue: a signal interrupts it.
    extern "C" fn nothing(_: i32) {}
    crate::util::handle(libc::SIGALRM, nothing as *const () as libc::sighandler_t, 0)?;
    // SAFETY: plain syscalls.
    let got = unsafe {
        libc::alarm(1);
        r(libc::accept(t, std::ptr::null_mut(), std::ptr::null_mut()) as isize)
    };
    crate::util::handle(libc::SIGALRM, libc::SIG_DFL, 0)?;
    check(
        got == Err(libc::EINTR),
        format!("a blocking accept interrupted by SIGALRM: EINTR (got {got:?})"),
    )?;
    check(
        // SAFETY: plain syscall.
        r(unsafe { libc::listen(u, 1) } as isize) == Err(libc::EOPNOTSUPP),
        "listen on UDP: EOPNOTSUPP",
    )?;

    // Options.
    check(
        setint(t2, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1) == Ok(0)
            && getint(t2, libc::SOL_SOCKET, libc::SO_REUSEADDR) == Ok(1),
        "SO_REUSEADDR set and read back",
    )?;
    check(
        setint(t2, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1) == Ok(0)
            && getint(t2, libc::IPPROTO_TCP, libc::TCP_NODELAY) == Ok(1),
        "TCP_NODELAY set and read back",
    )?;
    check(
        getint(u, libc::SOL_SOCKET, libc::SO_TYPE) == Ok(libc::SOCK_DGRAM)
            && getint(t2, libc::SOL_SOCKET, libc::SO_PROTOCOL) == Ok(libc::IPPROTO_TCP)
            && getint(t2, libc::SOL_SOCKET, libc::SO_ERROR) == Ok(0),
        "SO_TYPE, SO_PROTOCOL, SO_ERROR",
    )?;

    // Bad pointers and lengths.
    let bad_ptr = 8usize as *const libc::sockaddr;
    check(
        // SAFETY: the kernel must refuse the bad pointer.
        r(unsafe { libc::bind(t2, bad_ptr, SIN_LEN) } as isize) == Err(libc::EFAULT),
        "bind with a bad address pointer: EFAULT",
    )?;
    check(
        // SAFETY: as above.
        r(unsafe { libc::connect(t2, bad_ptr, SIN_LEN) } as isize) == Err(libc::EFAULT),
        "connect with a bad address pointer: EFAULT",
    )?;
    let mut len = SIN_LEN;
    check(
        // SAFETY: as above.
        r(unsafe { libc::getsockname(t, 8usize as *mut libc::sockaddr, &mut len) } as isize)
            == Err(libc::EFAULT),
        "getsockname into a bad pointer: EFAULT",
    )?;
    let s = sin([0; 4], 0);
    check(
        // SAFETY: a valid buffer, too short a length.
        r(unsafe { libc::bind(t2, (&s as *const libc::sockaddr_in).cast(), 8) } as isize)
            == Err(libc::EINVAL),
        "bind with an 8-byte address: EINVAL",
    )?;
    close(t2);

    // A refused connect, blocking and not.
    let closed = [127, 0, 0, 1];
    let c = tcp()?;
    let got = connect4(c, closed, 1);
    check(
        got == Err(libc::ECONNREFUSED),
        format!("connect to {closed:?}:1 (closed): ECONNREFUSED (got {got:?})"),
    )?;
    close(c);
    let c = socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK)
        .map_err(|e| format!("socket: {e}"))? as i32;
    let got = connect4(c, closed, 1);
    let refused = match got {
        Err(libc::ECONNREFUSED) => true,
        Err(libc::EINPROGRESS) => {
            let mut p = libc::pollfd {
                fd: c,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut p, 1, 20_000) };
            n == 1
                && p.revents & (libc::POLLOUT | libc::POLLERR) != 0
                && getint(c, libc::SOL_SOCKET, libc::SO_ERROR) == Ok(libc::ECONNREFUSED)
                && getint(c, libc::SOL_SOCKET, libc::SO_ERROR) == Ok(0)
        }
        _ => false,
    };
    check(
        refused,
        format!("non-blocking connect: EINPROGRESS, then poll and SO_ERROR ECONNREFUSED once (connect gave {got:?})"),
    )?;
    close(c);

    // A UDP datagram that leaves (to loopback's discard port: nobody
    // needs to answer).
    let dest = [127, 0, 0, 1];
    let d = sin(dest, 9);
    let msg = b"rsetest inet datagram";
    check(
        // SAFETY: valid buffer and address.
        r(unsafe {
            libc::sendto(
                u,
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&d as *const libc::sockaddr_in).cast(),
                SIN_LEN,
            )
        }) == Ok(msg.len() as isize),
        format!("UDP sendto {dest:?}:9 takes the whole datagram"),
    )?;
    check(
        // SAFETY: as above, with an unmapped buffer.
        r(unsafe {
            libc::sendto(
                u,
                8usize as *const libc::c_void,
                16,
                0,
                (&d as *const libc::sockaddr_in).cast(),
                SIN_LEN,
            )
        }) == Err(libc::EFAULT),
        "UDP sendto from a bad buffer: EFAULT",
    )?;
    let mut b = [0u8; 8];
    check(
        // SAFETY: a valid buffer.
        r(unsafe { libc::recv(u, b.as_mut_ptr().cast(), 8, libc::MSG_DONTWAIT) })
            == Err(libc::EAGAIN),
        "UDP recv with nothing queued, MSG_DONTWAIT: EAGAIN",
    )?;
    close(u);
    close(t);
    Ok(())
}
