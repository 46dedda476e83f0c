//! Bad pointers and lengths in every socket call on AF_INET (loopback):
//! EFAULT for an unmapped pointer, EINVAL for a bad length or argument,
//! EBADF/ENOTSOCK for a bad descriptor; queued data survives a receive
//! into a bad buffer, and the process and kernel carry on.

use crate::inet::{bind4, name, sin, tcp, SIN_LEN};
use crate::inet_lo::tcp_pair;
use crate::sock::{errname_net, r, R};
use crate::util::{check, close};

/// An address nothing is mapped at.
const BAD: usize = 8;

fn want(got: R, e: i32, what: &str) -> Result<(), String> {
    check(
        got == Err(e),
        format!(
            "{what}: {} (got {})",
            errname_net(e),
            match got {
                Ok(v) => format!("{v}"),
                Err(g) => errname_net(g),
            }
        ),
    )
}

pub fn run(_: &[String]) -> Result<(), String> {
    let badp = BAD as *mut libc::c_void;
    let l = tcp()?;
    bind4(l, [127, 0, 0, 1], 0).map_err(|e| format!("bind: {}", errname_net(e)))?;
    // SAFETY: plain syscall.
    r(unsafe { libc::listen(l, 4) } as isize).map_err(|e| format!("listen: {e}"))?;
    let (_, port, _) = name(l, false).map_err(|e| format!("getsockname: {e}"))?;
    let s = sin([127, 0, 0, 1], port);
    let sp = (&s as *const libc::sockaddr_in).cast::<libc::sockaddr>();

    // SAFETY (every call below): the kernel must refuse the bad argument;
    // the good ones are valid.
    unsafe {
        // Descriptors and families.
        want(
            r(libc::bind(-1, sp, SIN_LEN) as isize),
            libc::EBADF,
            "bind on fd -1",
        )?;
        want(
            r(libc::listen(0x7fff, 1) as isize),
            libc::EBADF,
            "listen on a closed fd",
        )?;
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        want(
            r(libc::connect(devnull, sp, SIN_LEN) as isize),
            libc::ENOTSOCK,
            "connect on /dev/null",
        )?;
        close(devnull);
        want(
            r(libc::socket(libc::AF_INET, libc::SOCK_STREAM | 0x100, 0) as isize),
            libc::EINVAL,
            "socket with an unknown type flag",
        )?;
        let mut sv = [0i32; 2];
        want(
            r(libc::socketpair(libc::AF_INET, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) as isize),
            libc::EOPNOTSUPP,
            "socketpair(AF_INET)",
        )?;
        want(
            r(libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, BAD as *mut i32) as isize),
            libc::EFAULT,
            "socketpair into a bad array",
        )?;

        // Addresses in.
        let t = tcp()?;
        want(
            r(libc::bind(t, BAD as *const libc::sockaddr, SIN_LEN) as isize),
            libc::EFAULT,
            "bind, bad address",
        )?;
        want(
            r(libc::bind(t, sp, 0) as isize),
            libc::EINVAL,
            "bind, length 0",
        )?;
        want(
            r(libc::bind(t, sp, u32::MAX) as isize),
            libc::EINVAL,
            "bind, length -1",
        )?;
        want(
            r(libc::bind(t, sp, 4096) as isize),
            libc::EINVAL,
            "bind, length 4096",
        )?;
        want(
            r(libc::connect(t, BAD as *const libc::sockaddr, SIN_LEN) as isize),
            libc::EFAULT,
            "connect, bad address",
        )?;
        want(
            r(libc::connect(t, sp, u32::MAX) as isize),
            libc::EINVAL,
            "connect, length -1",
        )?;
        want(
            r(libc::connect(t, sp, 4) as isize),
            libc::EINVAL,
            "connect, length 4",
        )?;
        want(
            r(libc::shutdown(t, 7) as isize),
            libc::EINVAL,
            "shutdown how=7",
        )?;

        // Addresses out.
        let mut len = SIN_LEN;
        want(
            r(libc::getsockname(l, BAD as *mut libc::sockaddr, &mut len) as isize),
            libc::EFAULT,
            "getsockname into a bad buffer",
        )?;
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        let ap = (&mut a as *mut libc::sockaddr_in).cast::<libc::sockaddr>();
        want(
            r(libc::getsockname(l, ap, BAD as *mut u32) as isize),
            libc::EFAULT,
            "getsockname, bad length pointer",
        )?;
        let mut neg: libc::socklen_t = u32::MAX;
        want(
            r(libc::getsockname(l, ap, &mut neg) as isize),
            libc::EINVAL,
            "getsockname, length -1",
        )?;

        // Options.
        let mut v = 0i32;
        let mut vl: libc::socklen_t = 4;
        let vp = (&mut v as *mut i32).cast::<libc::c_void>();
        want(
            r(libc::getsockopt(l, libc::SOL_SOCKET, libc::SO_TYPE, badp, &mut vl) as isize),
            libc::EFAULT,
            "getsockopt into a bad buffer",
        )?;
        want(
            r(libc::getsockopt(l, libc::SOL_SOCKET, libc::SO_TYPE, vp, BAD as *mut u32) as isize),
            libc::EFAULT,
            "getsockopt, bad length pointer",
        )?;
        let mut neg: libc::socklen_t = u32::MAX;
        want(
            r(libc::getsockopt(l, libc::SOL_SOCKET, libc::SO_TYPE, vp, &mut neg) as isize),
            libc::EINVAL,
            "getsockopt, length -1",
        )?;
        want(
            r(libc::setsockopt(l, libc::SOL_SOCKET, libc::SO_REUSEADDR, badp, 4) as isize),
            libc::EFAULT,
            "setsockopt from a bad buffer",
        )?;
        want(
            r(libc::setsockopt(l, libc::SOL_SOCKET, libc::SO_REUSEADDR, vp, 2) as isize),
            libc::EINVAL,
            "setsockopt int option, length 2",
        )?;
        want(
            r(libc::setsockopt(l, libc::SOL_SOCKET, libc::SO_RCVTIMEO, vp, 4) as isize),
            libc::EINVAL,
            "setsockopt SO_RCVTIMEO, length 4",
        )?;

        // A connection, then data calls.
        let (c, acc) = tcp_pair(l, port)?;
        // accept with a bad length pointer: the connection is taken,
        // the call fails.
        let c2 = tcp()?;
        crate::inet::connect4(c2, [127, 0, 0, 1], port)
            .map_err(|e| format!("connect: {}", errname_net(e)))?;
        want(
            r(libc::accept(l, ap, BAD as *mut u32) as isize),
            libc::EFAULT,
            "accept, bad length pointer",
        )?;
        close(c2);
        want(
            r(libc::send(c, badp, 16, 0)),
            libc::EFAULT,
            "send from a bad buffer",
        )?;
        want(
            r(libc::sendto(
                c,
                b"x".as_ptr().cast(),
                1,
                0,
                BAD as *const libc::sockaddr,
                SIN_LEN,
            )),
            libc::EFAULT,
            "sendto, bad address",
        )?;
        let sent = libc::send(c, b"kept".as_ptr().cast(), 4, 0);
        let mut p = libc::pollfd {
            fd: acc,
            events: libc::POLLIN,
            revents: 0,
        };
        libc::poll(&mut p, 1, 10_000);
        want(
            r(libc::recv(acc, badp, 16, 0)),
            libc::EFAULT,
            "recv into a bad buffer",
        )?;
        let mut b = [0u8; 8];
        let got = libc::recv(acc, b.as_mut_ptr().cast(), 8, libc::MSG_DONTWAIT);
        check(
            sent == 4 && got == 4 && b[..4] == *b"kept",
            format!("the data is still there after the EFAULT (got {got})"),
        )?;
        want(
            r(libc::sendmsg(c, BAD as *const libc::msghdr, 0)),
            libc::EFAULT,
            "sendmsg, bad msghdr",
        )?;
        want(
            r(libc::recvmsg(
                acc,
                BAD as *mut libc::msghdr,
                libc::MSG_DONTWAIT,
            )),
            libc::EFAULT,
            "recvmsg, bad msghdr",
        )?;
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = BAD as *mut libc::iovec;
        m.msg_iovlen = 1;
        want(
            r(libc::sendmsg(c, &m, 0)),
            libc::EFAULT,
            "sendmsg, bad iovec array",
        )?;
        let iov = libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: 1,
        };
        m.msg_iov = &iov as *const libc::iovec as *mut libc::iovec;
        m.msg_iovlen = 1025;
        want(
            r(libc::sendmsg(c, &m, 0)),
            libc::EMSGSIZE,
            "sendmsg, 1025 iovecs",
        )?;
        let iov = libc::iovec {
            iov_base: badp,
            iov_len: 4,
        };
        m.msg_iov = &iov as *const libc::iovec as *mut libc::iovec;
        m.msg_iovlen = 1;
        want(
            r(libc::sendmsg(c, &m, 0)),
            libc::EFAULT,
            "sendmsg, an iovec with a bad base",
        )?;
        want(
            r(libc::ioctl(acc, libc::FIONREAD, BAD) as isize),
            libc::EFAULT,
            "FIONREAD into a bad pointer",
        )?;
        want(
            r(libc::ioctl(acc, libc::SIOCGIFFLAGS, BAD) as isize),
            libc::EFAULT,
            "SIOCGIFFLAGS with a bad ifreq",
        )?;
        // Still working after all that.
        let ok = libc::send(c, b"ok".as_ptr().cast(), 2, 0) == 2
            && libc::recv(acc, b.as_mut_ptr().cast(), 8, 0) == 2;
        check(ok, "the connection still carries data")?;
        close(acc);
        close(c);
        close(t);
    }
    close(l);
    Ok(())
}
