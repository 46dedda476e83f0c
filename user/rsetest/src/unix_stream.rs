//! AF_UNIX SOCK_STREAM and SOCK_SEQPACKET: socketpair, named (path and
//! abstract) listen/connect/accept with Linux's errors, a bounded
//! backlog, non-blocking calls, MSG_PEEK, MSG_WAITALL, shutdown, EPIPE
//! and SIGPIPE, options and credentials, /proc/net/unix, bad pointers,
//! and 10,000 socketpairs that leave the kernel heap where it was.

use crate::sock::*;
use crate::util::{check, close, errno, fork, meminfo_kib, wait_ok};

static mut SIGPIPES: i32 = 0;
extern "C" fn on_sigpipe(_: i32) {
    // SAFETY: single-threaded test; a plain counter.
    unsafe { SIGPIPES += 1 };
}

fn sigpipes() -> i32 {
    // SAFETY: read of the counter above.
    unsafe { std::ptr::addr_of!(SIGPIPES).read_volatile() }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let pairs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    pair_basics()?;
    named(b"path")?;
    named(b"\0rsetest-abstract")?;
    backlog_and_nonblock()?;
    shutdown_and_sigpipe()?;
    options()?;
    seqpacket()?;
    bad_pointers()?;
    proc_net_unix()?;
    many_pairs(pairs)?;
    Ok(())
}

fn pair_basics() -> Result<(), String> {
    let (a, b) = pair(libc::SOCK_STREAM)?;
    check(
        send(a, b"hello", 0) == Ok(5),
        "send 5 bytes on a stream socketpair",
    )?;
    check(send(a, b" world", 0) == Ok(6), "send 6 more")?;
    check(
        recv_vec(b, 3, libc::MSG_PEEK) == Ok(b"hel".to_vec()),
        "MSG_PEEK sees the first bytes",
    )?;
    check(
        recv_vec(b, 100, 0) == Ok(b"hello world".to_vec()),
        "a stream read takes both writes at once (no boundaries)",
    )?;
    check(
        recv_vec(b, 10, libc::MSG_DONTWAIT) == Err(libc::EAGAIN),
        "MSG_DONTWAIT on an empty stream: EAGAIN",
    )?;
    // The other direction, through read/write.
    // SAFETY: valid buffers.
    let w = unsafe { libc::write(b, b"back".as_ptr().cast(), 4) };
    let mut buf = [0u8; 8];
    // SAFETY: valid buffer.
    let n = unsafe { libc::read(a, buf.as_mut_ptr().cast(), 8) };
    check(
        w == 4 && n == 4 && &buf[..4] == b"back",
        "write/read work the other way",
    )?;
    // MSG_WAITALL: a child sends 3 pieces slowly; one recv gets all 9.
    let pid = fork()?;
    if pid == 0 {
        for p in [b"abc", b"def", b"ghi"] {
            crate::util::sleep_ms(30);
            let _ = send(a, p, 0);
        }
        crate::util::child_exit(0);
    }
    let got = recv_vec(b, 9, libc::MSG_WAITALL);
    wait_ok(pid, "writer of 3 pieces")?;
    check(
        got == Ok(b"abcdefghi".to_vec()),
        format!("MSG_WAITALL waits for all 9 bytes: {got:?}"),
    )?;
    // fstat says socket.
    // SAFETY: st is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    unsafe { libc::fstat(a, &mut st) };
    check(
        st.st_mode & libc::S_IFMT == libc::S_IFSOCK,
        format!("fstat: S_IFSOCK (mode {:o})", st.st_mode),
    )?;
    // Close one end: the other reads EOF, poll says POLLIN|POLLHUP.
    close(a);
    check(
        recv_vec(b, 10, 0) == Ok(vec![]),
        "after the peer closes: EOF (0)",
    )?;
    let ev = revents(b, libc::POLLIN | libc::POLLRDHUP);
    check(
        ev & libc::POLLIN != 0 && ev & libc::POLLHUP != 0 && ev & libc::POLLRDHUP != 0,
        format!("poll after the peer closed: POLLIN|POLLHUP|POLLRDHUP ({ev:#x})"),
    )?;
    close(b);
    Ok(())
}

fn named(name: &[u8]) -> Result<(), String> {
    let abs = name.first() == Some(&0);
    let name = if abs {
        name.to_vec()
    } else {
        tmp_path("stream")
    };
    let kind = if abs { "abstract" } else { "path" };
    let l = socket(libc::AF_UNIX, libc::SOCK_STREAM).map_err(errname_net)? as i32;
    check(
        connect(l, &name)
            == Err(if abs {
                libc::ECONNREFUSED
            } else {
                libc::ENOENT
            }),
        format!(
            "{kind}: connect to a name nobody bound: {}",
            if abs { "ECONNREFUSED" } else { "ENOENT" }
        ),
    )?;
    check(bind(l, &name) == Ok(0), format!("{kind}: bind"))?;
    if !abs {
        let st = std::fs::metadata(std::str::from_utf8(&name).unwrap_or(""));
        use std::os::unix::fs::FileTypeExt;
        check(
            st.map(|m| m.file_type().is_socket()).unwrap_or(false),
            "path: bind made a socket file",
        )?;
    }
    let c0 = socket(libc::AF_UNIX, libc::SOCK_STREAM).map_err(errname_net)? as i32;
    check(
        connect(c0, &name) == Err(libc::ECONNREFUSED),
        format!("{kind}: connect before listen: ECONNREFUSED"),
    )?;
    close(c0);
    let l2 = socket(libc::AF_UNIX, libc::SOCK_STREAM).map_err(errname_net)? as i32;
    check(
        bind(l2, &name) == Err(libc::EADDRINUSE),
        format!("{kind}: a second bind: EADDRINUSE"),
    )?;
    close(l2);
    check(listen(l, 5) == Ok(0), format!("{kind}: listen"))?;
    let c = socket(libc::AF_UNIX, libc::SOCK_STREAM).map_err(errname_net)? as i32;
    check(connect(c, &name) == Ok(0), format!("{kind}: connect"))?;
    check(
        connect(c, &name) == Err(libc::EISCONN),
        format!("{kind}: connect again: EISCONN"),
    )?;
    let s = accept(l, libc::SOCK_CLOEXEC).map_err(errname_net)? as i32;
    check(send(c, b"ping", 0) == Ok(4), "client sends")?;
    check(
        recv_vec(s, 10, 0) == Ok(b"ping".to_vec()),
        "server receives",
    )?;
    check(send(s, b"pong", 0) == Ok(4), "server answers")?;
    check(
        recv_vec(c, 10, 0) == Ok(b"pong".to_vec()),
        "client receives",
    )?;
    let want = {
        let (a, len) = addr(&name);
        // SAFETY: a is plain bytes.
        unsafe {
            std::slice::from_raw_parts((&a as *const libc::sockaddr_un).cast::<u8>(), len as usize)
        }
        .to_vec()
    };
    check(
        name_of(l, false) == Ok(want.clone()),
        format!("{kind}: getsockname of the listener"),
    )?;
    check(
        name_of(c, true) == Ok(want.clone()),
        format!("{kind}: getpeername of the client"),
    )?;
    check(
        name_of(s, false) == Ok(want),
        format!("{kind}: getsockname of the accepted socket"),
    )?;
    check(
        name_of(s, true).map(|v| v.len()) == Ok(2),
        format!("{kind}: getpeername of an unnamed client: the family alone"),
    )?;
    check(
        name_of(l, true) == Err(libc::ENOTCONN),
        format!("{kind}: getpeername of the listener: ENOTCONN"),
    )?;
    // A datagram socket cannot connect to a stream listener: a path is
    // the wrong type; abstract names are per type, so nobody holds it.
    let d = socket(libc::AF_UNIX, libc::SOCK_DGRAM).map_err(errname_net)? as i32;
    let want = if abs {
        libc::ECONNREFUSED
    } else {
        libc::EPROTOTYPE
    };
    check(
        connect(d, &name) == Err(want),
        format!("{kind}: dgram to a stream listener: {}", errname_net(want)),
    )?;
    if abs {
        check(
            bind(d, &name) == Ok(0),
            "abstract: a datagram socket may bind the stream listener's name",
        )?;
    }
    close(d);
    for fd in [c, s, l] {
        close(fd);
    }
    // Closed: the name is free again (abstract) / the file stays (path).
    let again = socket(libc::AF_UNIX, libc::SOCK_STREAM).map_err(errname_net)? as i32;
    if abs {
        check(
            bind(again, &name) == Ok(0),
            "abstract: the name is free once its socket is closed",
        )?;
    } else {
        check(
            connect(again, &name) == Err(libc::ECONNREFUSED),
            "path: connect to the file of a closed socket: ECONNREFUSED",
        )?;
        let _ = std::fs::remove_file(std::str::from_utf8(&name).unwrap_or(""));
    }
    close(again);
    Ok(())
}

fn name_of(fd: i32, peer: bool) -> Result<Vec<u8>, i32> {
    name(fd, peer)
}

fn backlog_and_nonblock() -> Result<(), String> {
    let name = b"\0rsetest-backlog".to_vec();
    let l =
        socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK).map_err(errname_net)? as i32;
    bind(l, &name).map_err(errname_net)?;
    listen(l, 2).map_err(errname_net)?;
    check(
        accept(l, 0) == Err(libc::EAGAIN),
        "accept on a non-blocking listener with nothing pending: EAGAIN",
    )?;
    // Linux takes backlog + 1 connections before it refuses more.
    let mut clients = vec![];
    let mut refused = None;
    for i in 0..10 {
        let c = socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK)
            .map_err(errname_net)? as i32;
        clients.push(c);
        if let Err(e) = connect(c, &name) {
            refused = Some((i, e));
            break;
        }
    }
    check(
        refused == Some((3, libc::EAGAIN)),
        format!("backlog 2: the 4th non-blocking connect gets EAGAIN ({refused:?})"),
    )?;
    let ev = revents(l, libc::POLLIN);
    check(
        ev & libc::POLLIN != 0,
        "poll: a listener with connections pending is readable",
    )?;
    let mut accepted = vec![];
    while let Ok(s) = accept(l, 0) {
        accepted.push(s as i32);
    }
    check(
        accepted.len() == 3,
        format!("3 connections accepted ({})", accepted.len()),
    )?;
    // Non-blocking write until full: EAGAIN, and POLLOUT is gone.
    let (c, s) = (clients[0], accepted[0]);
    let chunk = [7u8; 4096];
    let mut sent = 0usize;
    loop {
        match send(c, &chunk, 0) {
            Ok(n) => sent += n as usize,
            Err(e) => {
                check(
                    e == libc::EAGAIN,
                    format!("a full stream: EAGAIN after {sent} bytes"),
                )?;
                break;
            }
        }
        if sent > 64 << 20 {
            return Err("64 MiB went into a socket nobody reads".into());
        }
    }
    check(
        (64 * 1024..=2 << 20).contains(&sent),
        format!("the stream buffer is bounded: {sent} bytes queued"),
    )?;
    check(
        revents(c, libc::POLLOUT) & libc::POLLOUT == 0,
        "poll: a full stream is not writable",
    )?;
    // Drain it; writable again.
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = recv(s, &mut buf, libc::MSG_DONTWAIT) {
        got += n as usize;
    }
    check(
        got == sent,
        format!("everything sent is read back ({got} of {sent})"),
    )?;
    check(
        revents(c, libc::POLLOUT) & libc::POLLOUT != 0,
        "poll: writable again once drained",
    )?;
    for fd in clients.into_iter().chain(accepted) {
        close(fd);
    }
    close(l);
    Ok(())
}

fn shutdown_and_sigpipe() -> Result<(), String> {
    crate::util::handle(
        libc::SIGPIPE,
        on_sigpipe as *const () as libc::sighandler_t,
        0,
    )?;
    let (a, b) = pair(libc::SOCK_STREAM)?;
    send(a, b"last", 0).map_err(errname_net)?;
    // SAFETY: plain syscall.
    check(
        unsafe { libc::shutdown(a, libc::SHUT_WR) } == 0,
        "shutdown(SHUT_WR)",
    )?;
    check(
        recv_vec(b, 10, 0) == Ok(b"last".to_vec()),
        "the peer still reads what was sent",
    )?;
    check(recv_vec(b, 10, 0) == Ok(vec![]), "then EOF")?;
    check(
        revents(b, libc::POLLRDHUP) & libc::POLLRDHUP != 0,
        "poll: POLLRDHUP after the peer's SHUT_WR",
    )?;
    let before = sigpipes();
    check(
        send(a, b"x", 0) == Err(libc::EPIPE),
        "send after SHUT_WR: EPIPE",
    )?;
    check(sigpipes() == before + 1, "... and SIGPIPE")?;
    check(
        send(a, b"x", libc::MSG_NOSIGNAL) == Err(libc::EPIPE),
        "with MSG_NOSIGNAL: EPIPE",
    )?;
    check(sigpipes() == before + 1, "... and no SIGPIPE")?;
    check(
        send(b, b"other way", 0) == Ok(9),
        "the other direction still works",
    )?;
    check(
        recv_vec(a, 20, 0) == Ok(b"other way".to_vec()),
        "... and is read",
    )?;
    close(b);
    // SAFETY: valid buffer.
    let w = unsafe { libc::write(a, b"y".as_ptr().cast(), 1) };
    check(
        w < 0 && errno() == libc::EPIPE,
        "write to a closed peer: EPIPE",
    )?;
    check(sigpipes() == before + 2, "... with SIGPIPE")?;
    // SAFETY: plain syscall.
    check(
        unsafe { libc::shutdown(a, 7) } < 0 && errno() == libc::EINVAL,
        "shutdown(7): EINVAL",
    )?;
    close(a);
    let u = socket(libc::AF_UNIX, libc::SOCK_STREAM).map_err(errname_net)? as i32;
    // SAFETY: plain syscall.
    check(
        unsafe { libc::shutdown(u, libc::SHUT_RDWR) } == 0,
        "shutdown of an unconnected AF_UNIX socket: 0, as Linux",
    )?;
    check(
        send(u, b"z", libc::MSG_NOSIGNAL) == Err(libc::ENOTCONN),
        "send on an unconnected stream: ENOTCONN",
    )?;
    close(u);
    crate::util::handle(libc::SIGPIPE, libc::SIG_DFL, 0)?;
    // Closing with unread data: the peer's read gets ECONNRESET.
    let (a, b) = pair(libc::SOCK_STREAM)?;
    send(a, b"unread", 0).map_err(errname_net)?;
    close(b);
    check(
        recv_vec(a, 10, 0) == Err(libc::ECONNRESET),
        "peer closed with our data unread: ECONNRESET",
    )?;
    close(a);
    Ok(())
}

fn options() -> Result<(), String> {
    let (a, b) = pair(libc::SOCK_STREAM)?;
    check(
        getsockopt_int(a, libc::SOL_SOCKET, libc::SO_TYPE) == Ok(libc::SOCK_STREAM as isize),
        "SO_TYPE",
    )?;
    check(
        getsockopt_int(a, libc::SOL_SOCKET, libc::SO_DOMAIN) == Ok(libc::AF_UNIX as isize),
        "SO_DOMAIN",
    )?;
    check(
        getsockopt_int(a, libc::SOL_SOCKET, libc::SO_ERROR) == Ok(0),
        "SO_ERROR 0",
    )?;
    check(
        getsockopt_int(a, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Ok(0),
        "SO_ACCEPTCONN 0",
    )?;
    check(
        setsockopt_int(a, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1) == Ok(0),
        "SO_REUSEADDR accepted",
    )?;
    check(
        setsockopt_int(a, libc::SOL_SOCKET, libc::SO_SNDBUF, 10000) == Ok(0),
        "set SO_SNDBUF 10000",
    )?;
    check(
        getsockopt_int(a, libc::SOL_SOCKET, libc::SO_SNDBUF) == Ok(20000),
        format!(
            "SO_SNDBUF reads back doubled: {:?}",
            getsockopt_int(a, libc::SOL_SOCKET, libc::SO_SNDBUF)
        ),
    )?;
    let rb = getsockopt_int(a, libc::SOL_SOCKET, libc::SO_RCVBUF);
    check(matches!(rb, Ok(v) if v > 0), format!("SO_RCVBUF {rb:?}"))?;
    check(
        setsockopt_int(a, libc::SOL_SOCKET, 9999, 1) == Err(libc::ENOPROTOOPT),
        "an unknown option: ENOPROTOOPT",
    )?;
    let mut cred: libc::ucred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid out-parameters.
    let rv = unsafe {
        libc::getsockopt(
            b,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    // SAFETY: plain calls.
    let (pid, uid, gid) = unsafe { (libc::getpid(), libc::getuid(), libc::getgid()) };
    check(
        rv == 0 && cred.pid == pid && cred.uid == uid && cred.gid == gid && len == 12,
        format!(
            "SO_PEERCRED of a socketpair: our pid {} uid {} gid {}",
            cred.pid, cred.uid, cred.gid
        ),
    )?;
    // SO_PEERCRED across a connect: the client sees the listener's pid,
    // the server the client's (a child).
    let name = b"\0rsetest-peercred".to_vec();
    let l = socket(libc::AF_UNIX, libc::SOCK_STREAM).map_err(errname_net)? as i32;
    bind(l, &name).map_err(errname_net)?;
    listen(l, 1).map_err(errname_net)?;
    let child = fork()?;
    if child == 0 {
        let c = socket(libc::AF_UNIX, libc::SOCK_STREAM).unwrap_or(-1) as i32;
        let ok = connect(c, &name).is_ok();
        let mut cr: libc::ucred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = 12 as libc::socklen_t;
        // SAFETY: valid out-parameters.
        unsafe {
            libc::getsockopt(
                c,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cr as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        let _ = send(c, b"x", 0);
        crate::util::child_exit(if ok && cr.pid == pid { 0 } else { 1 });
    }
    let s = accept(l, 0).map_err(errname_net)? as i32;
    let mut cr: libc::ucred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = 12 as libc::socklen_t;
    // SAFETY: valid out-parameters.
    unsafe {
        libc::getsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cr as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    wait_ok(child, "the client saw the listener's pid as SO_PEERCRED")?;
    check(
        cr.pid == child,
        format!(
            "the server sees the client's pid {child} as SO_PEERCRED ({})",
            cr.pid
        ),
    )?;
    for fd in [s, l, a, b] {
        close(fd);
    }
    Ok(())
}

fn seqpacket() -> Result<(), String> {
    let (a, b) = pair(libc::SOCK_SEQPACKET)?;
    send(a, b"one", 0).map_err(errname_net)?;
    send(a, b"two!", 0).map_err(errname_net)?;
    check(
        recv_vec(b, 100, 0) == Ok(b"one".to_vec()),
        "seqpacket keeps record boundaries (1)",
    )?;
    check(
        recv_vec(b, 2, 0) == Ok(b"tw".to_vec()),
        "a short read takes part of a record",
    )?;
    check(
        recv_vec(b, 100, libc::MSG_DONTWAIT) == Err(libc::EAGAIN),
        "... and drops the rest",
    )?;
    let big = vec![0u8; 1 << 20];
    check(
        send(a, &big, 0) == Err(libc::EMSGSIZE),
        "a record larger than the send buffer: EMSGSIZE",
    )?;
    close(a);
    check(
        recv_vec(b, 10, 0) == Ok(vec![]),
        "EOF after the peer closes",
    )?;
    close(b);
    Ok(())
}

fn bad_pointers() -> Result<(), String> {
    let bad = 0x10usize as *mut libc::c_void;
    let (a, b) = pair(libc::SOCK_STREAM)?;
    // SAFETY: each call is given a bad pointer on purpose; the kernel must
    // refuse it without touching our memory.
    unsafe {
        check(
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, bad.cast()) < 0
                && errno() == libc::EFAULT,
            "socketpair(bad sv): EFAULT",
        )?;
        check(
            libc::bind(a, bad.cast(), 10) < 0 && errno() == libc::EFAULT,
            "bind(bad addr): EFAULT",
        )?;
        check(
            libc::connect(a, bad.cast(), 10) < 0 && errno() == libc::EFAULT,
            "connect(bad addr): EFAULT",
        )?;
        let (ad, _) = addr(b"x");
        check(
            libc::bind(a, (&ad as *const libc::sockaddr_un).cast(), 1000) < 0
                && errno() == libc::EINVAL,
            "bind(len 1000): EINVAL",
        )?;
        check(
            libc::bind(a, (&ad as *const libc::sockaddr_un).cast(), 1) < 0
                && errno() == libc::EINVAL,
            "bind(len 1): EINVAL",
        )?;
        check(
            libc::send(a, bad, 10, 0) < 0 && errno() == libc::EFAULT,
            "send(bad buf): EFAULT",
        )?;
        libc::send(a, b"data".as_ptr().cast(), 4, 0);
        check(
            libc::recv(b, bad, 10, 0) < 0 && errno() == libc::EFAULT,
            "recv(bad buf): EFAULT",
        )?;
        let mut buf = [0u8; 8];
        check(
            libc::recv(b, buf.as_mut_ptr().cast(), 8, 0) == 4,
            "the data is still there after the EFAULT",
        )?;
        check(
            libc::getsockname(a, bad.cast(), bad.cast()) < 0 && errno() == libc::EFAULT,
            "getsockname(bad): EFAULT",
        )?;
        let mut len: libc::socklen_t = 16;
        check(
            libc::getsockname(a, bad.cast(), &mut len) < 0 && errno() == libc::EFAULT,
            "getsockname(bad addr): EFAULT",
        )?;
        let mut neg: libc::socklen_t = (-1i32) as libc::socklen_t;
        let mut sa: libc::sockaddr_un = std::mem::zeroed();
        check(
            libc::getsockname(a, (&mut sa as *mut libc::sockaddr_un).cast(), &mut neg) < 0
                && errno() == libc::EINVAL,
            "getsockname(len -1): EINVAL",
        )?;
        check(
            libc::getsockopt(a, libc::SOL_SOCKET, libc::SO_TYPE, bad, bad.cast()) < 0
                && errno() == libc::EFAULT,
            "getsockopt(bad): EFAULT",
        )?;
        check(
            libc::setsockopt(a, libc::SOL_SOCKET, libc::SO_SNDBUF, bad, 4) < 0
                && errno() == libc::EFAULT,
            "setsockopt(bad): EFAULT",
        )?;
        check(
            libc::setsockopt(a, libc::SOL_SOCKET, libc::SO_SNDBUF, c"".as_ptr().cast(), 1) < 0
                && errno() == libc::EINVAL,
            "setsockopt(int, len 1): EINVAL",
        )?;
        check(
            libc::sendmsg(a, bad.cast(), 0) < 0 && errno() == libc::EFAULT,
            "sendmsg(bad msghdr): EFAULT",
        )?;
        check(
            libc::recvmsg(a, bad.cast(), 0) < 0 && errno() == libc::EFAULT,
            "recvmsg(bad msghdr): EFAULT",
        )?;
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = bad.cast();
        m.msg_iovlen = 1;
        check(
            libc::sendmsg(a, &m, 0) < 0 && errno() == libc::EFAULT,
            "sendmsg(bad iovec array): EFAULT",
        )?;
        m.msg_iovlen = 5000;
        check(
            libc::sendmsg(a, &m, 0) < 0 && errno() == libc::EMSGSIZE,
            "sendmsg(5000 iovecs): EMSGSIZE",
        )?;
        let mut iov = libc::iovec {
            iov_base: b"x".as_ptr() as *mut _,
            iov_len: 1,
        };
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_control = bad;
        m.msg_controllen = 32;
        check(
            libc::sendmsg(a, &m, 0) < 0 && errno() == libc::EFAULT,
            "sendmsg(bad control): EFAULT",
        )?;
        let mut ctl = [0u8; 32];
        ctl[..8].copy_from_slice(&100u64.to_le_bytes());
        m.msg_control = ctl.as_mut_ptr().cast();
        check(
            libc::sendmsg(a, &m, 0) < 0 && errno() == libc::EINVAL,
            "sendmsg(cmsg_len past the buffer): EINVAL",
        )?;
        check(
            libc::accept(a, bad.cast(), bad.cast()) < 0 && errno() == libc::EINVAL,
            "accept on a connected socket: EINVAL",
        )?;
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        check(
            libc::listen(fd, 1) < 0 && errno() == libc::ENOTSOCK,
            "listen on /dev/null: ENOTSOCK",
        )?;
        close(fd);
        check(
            libc::listen(999, 1) < 0 && errno() == libc::EBADF,
            "listen on a closed fd: EBADF",
        )?;
        check(
            libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | 0x1000_0000, 0) < 0
                && errno() == libc::EINVAL,
            "socket(unknown type flag): EINVAL",
        )?;
        check(
            libc::socket(libc::AF_UNIX, 9, 0) < 0 && errno() == libc::ESOCKTNOSUPPORT,
            "socket(AF_UNIX, type 9): ESOCKTNOSUPPORT",
        )?;
        check(
            libc::socket(12345, libc::SOCK_STREAM, 0) < 0 && errno() == libc::EAFNOSUPPORT,
            "socket(family 12345): EAFNOSUPPORT",
        )?;
    }
    close(a);
    close(b);
    Ok(())
}

fn proc_net_unix() -> Result<(), String> {
    let path = tmp_path("procnet");
    let l = socket(libc::AF_UNIX, libc::SOCK_STREAM).map_err(errname_net)? as i32;
    bind(l, &path).map_err(errname_net)?;
    listen(l, 1).map_err(errname_net)?;
    let ab = socket(libc::AF_UNIX, libc::SOCK_DGRAM).map_err(errname_net)? as i32;
    bind(ab, b"\0rsetest-proc").map_err(errname_net)?;
    let text =
        std::fs::read_to_string("/proc/net/unix").map_err(|e| format!("/proc/net/unix: {e}"))?;
    let header = text.lines().next().unwrap_or("");
    check(
        header.trim_end() == "Num       RefCount Protocol Flags    Type St Inode Path",
        format!("/proc/net/unix header: {header:?}"),
    )?;
    let p = String::from_utf8_lossy(&path).to_string();
    // SAFETY: st is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    unsafe { libc::fstat(l, &mut st) };
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!(" {p}")))
        .unwrap_or("");
    let f: Vec<&str> = line.split_whitespace().collect();
    check(
        f.len() == 8
            && f[3] == "00010000"
            && f[4] == "0001"
            && f[5] == "01"
            && f[6] == st.st_ino.to_string(),
        format!(
            "the listener's line: flags __SO_ACCEPTCON, type 1, state 01, inode {}: {line:?}",
            st.st_ino
        ),
    )?;
    check(
        text.lines()
            .any(|l| l.ends_with(" @rsetest-proc") && l.contains(" 0002 ")),
        "the abstract datagram socket's line: type 2, name @rsetest-proc",
    )?;
    close(l);
    close(ab);
    let _ = std::fs::remove_file(&p);
    let text = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    check(!text.contains(&p), "closed sockets leave /proc/net/unix")?;
    Ok(())
}

fn many_pairs(n: usize) -> Result<(), String> {
    // Warm up (the first sockets may grow kernel tables once).
    for _ in 0..100 {
        let (a, b) = pair(libc::SOCK_STREAM)?;
        close(a);
        close(b);
    }
    let before = meminfo_kib("Slab")?;
    for i in 0..n {
        let (a, b) = pair(if i % 2 == 0 {
            libc::SOCK_STREAM
        } else {
            libc::SOCK_DGRAM
        })?;
        // Some data left unread in each direction.
        let _ = send(a, b"left", 0);
        let _ = send(b, b"behind", 0);
        close(a);
        close(b);
    }
    // Freed memory may be returned to the heap lazily on Linux (RCU);
    // give it a moment.
    crate::util::sleep_ms(200);
    let after = meminfo_kib("Slab")?;
    let grew = after.saturating_sub(before);
    check(
        grew < 2048,
        format!("{n} socketpairs with unread data opened and closed: Slab {before} -> {after} kB"),
    )
}
