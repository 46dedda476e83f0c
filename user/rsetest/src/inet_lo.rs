//! AF_INET over the loopback, both ends in this process: a listener on
//! 0.0.0.0 reached through 127.0.0.1 (and through 0.0.0.0, which means
//! 127.0.0.1), the names each end sees, 1 MiB each way with half-closes,
//! MSG_PEEK and FIONREAD, a listener bound to 127.0.0.1, a refused
//! connect, UDP sendto/recvfrom/connect and datagram truncation, and a
//! send after shutdown(SHUT_WR): EPIPE with SIGPIPE, or without it under
//! MSG_NOSIGNAL. Then buffers the kernel must fault in or refuse (RSE OS
//! copies TCP data between user memory and the socket's ring under the
//! stack's lock with a copy that fails rather than fault a page in, and
//! falls back): a send from and a receive into never-touched anonymous
//! memory, a send whose second page is unmapped (EFAULT with nothing
//! sent, as the host's Linux 6.18 does: its copy into the socket's page
//! fragment spans both pages; a kernel copying page by page may send the
//! first page's bytes instead), a send from an unmapped page (EFAULT).
//! Then epoll over TCP sockets, which wake only the instances watching
//! them: an edge-triggered item is not reported again for traffic on
//! another connection, a sleeping epoll_wait wakes when another process
//! sends, and times out when nothing comes. Needs no NIC.

use crate::inet::{bind4, connect4, name, tcp, udp};
use crate::sock::{errname_net, r};
use crate::util::{check, close};

const LO: [u8; 4] = [127, 0, 0, 1];

fn listen(fd: i32, n: i32) -> Result<(), String> {
    // SAFETY: plain syscall.
    r(unsafe { libc::listen(fd, n) } as isize)
        .map(|_| ())
        .map_err(|e| format!("listen: {}", errname_net(e)))
}

fn accept(fd: i32) -> Result<i32, String> {
    // SAFETY: null address out-parameters are allowed.
    r(unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    } as isize)
    .map(|v| v as i32)
    .map_err(|e| format!("accept: {}", errname_net(e)))
}

fn send(fd: i32, b: &[u8], flags: i32) -> Result<usize, i32> {
    // SAFETY: a valid buffer.
    r(unsafe { libc::send(fd, b.as_ptr().cast(), b.len(), flags) }).map(|n| n as usize)
}

fn recv(fd: i32, b: &mut [u8], flags: i32) -> Result<usize, i32> {
    // SAFETY: a valid buffer.
    r(unsafe { libc::recv(fd, b.as_mut_ptr().cast(), b.len(), flags) }).map(|n| n as usize)
}

fn write_all(fd: i32, mut b: &[u8]) -> Result<(), String> {
    while !b.is_empty() {
        let n = send(fd, b, 0).map_err(|e| format!("send: {}", errname_net(e)))?;
        b = &b[n..];
    }
    Ok(())
}

fn read_to_end(fd: i32) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    let mut b = vec![0u8; 65536];
    loop {
        let n = recv(fd, &mut b, 0).map_err(|e| format!("recv: {}", errname_net(e)))?;
        if n == 0 {
            return Ok(v);
        }
        v.extend_from_slice(&b[..n]);
    }
}

fn shutdown(fd: i32, how: i32) -> Result<(), String> {
    // SAFETY: plain syscall.
    r(unsafe { libc::shutdown(fd, how) } as isize)
        .map(|_| ())
        .map_err(|e| format!("shutdown: {}", errname_net(e)))
}

/// Waits (at most 10 s) for `events` on `fd`; the revents.
fn poll1(fd: i32, events: i16) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 10_000) };
    p.revents
}

fn fionread(fd: i32) -> Result<i32, i32> {
    let mut n: libc::c_int = -1;
    // SAFETY: FIONREAD writes one int.
    r(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } as isize)?;
    Ok(n)
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// Whether SIGPIPE is pending (it is blocked); takes it if so.
fn take_sigpipe() -> bool {
    // SAFETY: sigset initialised by sigemptyset; a zero timeout polls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) == libc::SIGPIPE
    }
}

/// A connected pair over the loopback: (client, accepted).
pub fn tcp_pair(l: i32, port: u16) -> Result<(i32, i32), String> {
    let c = tcp()?;
    connect4(c, LO, port).map_err(|e| format!("connect 127.0.0.1:{port}: {}", errname_net(e)))?;
    Ok((c, accept(l)?))
}

fn stream(l: i32, port: u16) -> Result<(), String> {
    let c = tcp()?;
    let got = connect4(c, LO, port);
    check(
        got == Ok(0),
        format!("connect to 127.0.0.1:{port}, a listener on 0.0.0.0 (got {got:?})"),
    )?;
    let a = accept(l)?;
    let (ca, cport, _) = name(c, false).map_err(|e| format!("getsockname: {e}"))?;
    check(
        ca == LO && cport >= 1024,
        format!("the client's name is 127.0.0.1:ephemeral (got {ca:?}:{cport})"),
    )?;
    check(
        name(c, true) == Ok((LO, port, libc::AF_INET)),
        "the client's peer is 127.0.0.1:the listener's port",
    )?;
    check(
        name(a, false) == Ok((LO, port, libc::AF_INET))
            && name(a, true) == Ok((LO, cport, libc::AF_INET)),
        "the accepted socket: name 127.0.0.1:port, peer the client's name",
    )?;

    // 1 MiB each way: the client writes and half-closes; the server reads
    // to EOF, answers with every byte complemented, and closes.
    let out = pattern(1 << 20, 7);
    let sent = out.clone();
    let writer = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        write_all(c, &sent)?;
        shutdown(c, libc::SHUT_WR)?;
        read_to_end(c)
    });
    let got = read_to_end(a)?;
    check(
        got == out,
        format!(
            "the server got the client's 1 MiB to EOF ({} bytes)",
            got.len()
        ),
    )?;
    let back: Vec<u8> = got.iter().map(|b| !b).collect();
    write_all(a, &back)?;
    close(a);
    let echoed = writer.join().map_err(|_| "writer panicked")??;
    check(
        echoed == back,
        format!(
            "the client got the server's 1 MiB to EOF ({} bytes)",
            echoed.len()
        ),
    )?;
    close(c);

    // PEEK and FIONREAD.
    let (c, a) = tcp_pair(l, port)?;
    let msg = pattern(100, 3);
    write_all(c, &msg)?;
    check(
        poll1(a, libc::POLLIN) & libc::POLLIN != 0,
        "poll: the receiver is readable",
    )?;
    // Segments may still be arriving: wait until all 100 bytes are in.
    let mut n = 0;
    for _ in 0..100 {
        n = fionread(a).unwrap_or(-1);
        if n >= 100 {
            break;
        }
        crate::util::sleep_ms(10);
    }
    check(n == 100, format!("FIONREAD: 100 bytes queued (got {n})"))?;
    let mut b = [0u8; 200];
    check(
        recv(a, &mut b[..10], libc::MSG_PEEK) == Ok(10) && b[..10] == msg[..10],
        "MSG_PEEK: the first 10 bytes",
    )?;
    check(
        recv(a, &mut b, 0) == Ok(100) && b[..100] == msg[..],
        "recv: all 100 bytes, the peeked ones first",
    )?;
    check(
        recv(a, &mut b, libc::MSG_DONTWAIT) == Err(libc::EAGAIN),
        "recv with nothing queued, MSG_DONTWAIT: EAGAIN",
    )?;

    // Sending after shutdown(SHUT_WR): EPIPE, SIGPIPE unless MSG_NOSIGNAL.
    crate::util::sigmask(libc::SIG_BLOCK, &[libc::SIGPIPE])?;
    shutdown(c, libc::SHUT_WR)?;
    let got = send(c, b"x", 0);
    check(
        got == Err(libc::EPIPE) && take_sigpipe(),
        format!("send after SHUT_WR: EPIPE and SIGPIPE (got {got:?})"),
    )?;
    let got = send(c, b"x", libc::MSG_NOSIGNAL);
    check(
        got == Err(libc::EPIPE) && !take_sigpipe(),
        format!("send after SHUT_WR with MSG_NOSIGNAL: EPIPE, no SIGPIPE (got {got:?})"),
    )?;
    crate::util::sigmask(libc::SIG_UNBLOCK, &[libc::SIGPIPE])?;
    check(
        recv(a, &mut b, 0) == Ok(0),
        "the peer of a SHUT_WR reads EOF",
    )?;
    check(
        send(a, b"still", 0) == Ok(5) && recv(c, &mut b, 0) == Ok(5) && &b[..5] == b"still",
        "the other direction still carries data after SHUT_WR",
    )?;
    close(a);
    close(c);

    // 0.0.0.0 as a destination is the loopback.
    let c = tcp()?;
    let got = connect4(c, [0; 4], port);
    check(
        got == Ok(0),
        format!("connect to 0.0.0.0:{port} reaches the listener (got {got:?})"),
    )?;
    let a = accept(l)?;
    check(name(a, true).map(|n| n.0) == Ok(LO), "... from 127.0.0.1")?;
    close(a);
    close(c);
    Ok(())
}

fn refused_and_bound_to_lo() -> Result<(), String> {
    // A port bound but not listening refuses.
    let b = tcp()?;
    bind4(b, LO, 0).map_err(|e| format!("bind: {}", errname_net(e)))?;
    let (_, bport, _) = name(b, false).map_err(|e| format!("getsockname: {e}"))?;
    let c = tcp()?;
    let got = connect4(c, LO, bport);
    check(
        got == Err(libc::ECONNREFUSED),
        format!("connect to a bound, not listening port: ECONNREFUSED (got {got:?})"),
    )?;
    close(c);
    // A listener on 127.0.0.1 itself.
    listen(b, 2)?;
    let (c, a) = tcp_pair(b, bport)?;
    check(
        send(c, b"lo", 0) == Ok(2) && recv(a, &mut [0u8; 4], 0) == Ok(2),
        "a listener bound to 127.0.0.1 accepts and carries data",
    )?;
    close(a);
    close(c);
    close(b);
    Ok(())
}

fn datagrams() -> Result<(), String> {
    let s = udp()?;
    bind4(s, [0; 4], 0).map_err(|e| format!("bind: {}", errname_net(e)))?;
    let (_, sport, _) = name(s, false).map_err(|e| format!("getsockname: {e}"))?;
    let u = udp()?;
    let to = crate::inet::sin(LO, sport);
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: valid buffer and address.
    let got = r(unsafe {
        libc::sendto(
            u,
            b"ping".as_ptr().cast(),
            4,
            0,
            (&to as *const libc::sockaddr_in).cast(),
            len,
        )
    });
    check(
        got == Ok(4),
        "UDP sendto 127.0.0.1:port of a socket on 0.0.0.0",
    )?;
    let (_, uport, _) = name(u, false).map_err(|e| format!("getsockname: {e}"))?;
    check(
        poll1(s, libc::POLLIN) & libc::POLLIN != 0,
        "the receiver becomes readable",
    )?;
    check(
        fionread(s) == Ok(4),
        "FIONREAD on UDP: the next datagram's size",
    )?;
    let mut b = [0u8; 64];
    // SAFETY: plain data.
    let mut from: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut flen = len;
    // SAFETY: valid buffers.
    let n = r(unsafe {
        libc::recvfrom(
            s,
            b.as_mut_ptr().cast(),
            b.len(),
            0,
            (&mut from as *mut libc::sockaddr_in).cast(),
            &mut flen,
        )
    });
    check(
        n == Ok(4)
            && &b[..4] == b"ping"
            && from.sin_addr.s_addr.to_ne_bytes() == LO
            && u16::from_be(from.sin_port) == uport,
        format!("recvfrom: the datagram, from 127.0.0.1:{uport} (got {n:?})"),
    )?;
    // SAFETY: valid buffer and the sender's address.
    let got = r(unsafe {
        libc::sendto(
            s,
            b"pong!".as_ptr().cast(),
            5,
            0,
            (&from as *const libc::sockaddr_in).cast(),
            flen,
        )
    });
    check(
        got == Ok(5) && recv(u, &mut b, 0) == Ok(5) && &b[..5] == b"pong!",
        "the answer sent to recvfrom's address arrives",
    )?;
    // A connected UDP socket; a datagram cut by a short buffer.
    check(connect4(u, LO, sport) == Ok(0), "UDP connect to 127.0.0.1")?;
    check(
        name(u, true) == Ok((LO, sport, libc::AF_INET)),
        "getpeername of the connected UDP socket",
    )?;
    check(send(u, b"0123456789", 0) == Ok(10), "send on it")?;
    poll1(s, libc::POLLIN);
    check(
        recv(s, &mut b[..4], 0) == Ok(4)
            && &b[..4] == b"0123"
            && recv(s, &mut b, libc::MSG_DONTWAIT) == Err(libc::EAGAIN),
        "a datagram read into 4 bytes is cut, the rest discarded",
    )?;
    close(u);
    close(s);
    Ok(())
}

/// Reads exactly `n` bytes.
fn read_n(fd: i32, n: usize) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    let mut b = vec![0u8; 65536];
    while v.len() < n {
        let k = (n - v.len()).min(b.len());
        let got = recv(fd, &mut b[..k], 0).map_err(|e| format!("recv: {}", errname_net(e)))?;
        if got == 0 {
            return Err(format!("EOF after {} of {n} bytes", v.len()));
        }
        v.extend_from_slice(&b[..got]);
    }
    Ok(v)
}

fn fresh_pages(len: usize) -> Result<*mut u8, String> {
    crate::util::mmap_anon(len).map_err(|e| format!("mmap: {}", crate::util::errname(e)))
}

fn unfaulted_buffers(l: i32, port: u16) -> Result<(), String> {
    let (c, a) = tcp_pair(l, port)?;
    // A send straight from never-touched memory: all of it, zeros.
    const LEN: usize = 64 << 10;
    let p = fresh_pages(LEN)?;
    // SAFETY: a fresh readable mapping of LEN bytes (never touched: the
    // kernel reads it first).
    let n = r(unsafe { libc::send(c, p.cast(), LEN, 0) });
    check(
        n == Ok(LEN as isize),
        format!("send of 64 KiB from never-touched memory (got {n:?})"),
    )?;
    let got = read_n(a, LEN)?;
    check(
        got.iter().all(|&b| b == 0),
        "the receiver got 64 KiB of zeros",
    )?;
    // A receive into never-touched memory.
    let msg = pattern(5000, 11);
    write_all(c, &msg)?;
    let q = fresh_pages(8192)?;
    let mut have = 0;
    while have < msg.len() {
        // SAFETY: a fresh writable mapping of 8192 bytes.
        let n = r(unsafe { libc::recv(a, q.add(have).cast(), 8192 - have, 0) })
            .map_err(|e| format!("recv into fresh memory: {}", errname_net(e)))?;
        check(n > 0, "recv into fresh memory: data, not EOF")?;
        have += n as usize;
    }
    // SAFETY: the mapping holds `have` received bytes.
    let into = unsafe { std::slice::from_raw_parts(q, have) };
    check(
        into == &msg[..],
        "recv into never-touched memory: the 5000 bytes sent",
    )?;
    // A send whose second page is unmapped: the first page's bytes go,
    // then the fault ends the call; a wholly bad buffer is EFAULT.
    let b = fresh_pages(8192)?;
    let first = pattern(4096, 5);
    // SAFETY: our own mapping: fill the first page, unmap the second.
    unsafe {
        std::ptr::copy_nonoverlapping(first.as_ptr(), b, 4096);
        libc::munmap(b.add(4096).cast(), 4096);
    }
    // SAFETY: a pointer into our own (partly unmapped) mapping.
    let n = r(unsafe { libc::send(c, b.cast(), 8192, 0) });
    match n {
        // A kernel that copies page by page: what it copied before the fault.
        Ok(4096) => check(
            read_n(a, 4096)? == first,
            "the receiver got the first page's bytes",
        )?,
        // RSE OS and Linux 6.18: the call fails as a whole, sends nothing.
        Err(libc::EFAULT) => {
            crate::util::sleep_ms(50);
            let mut x = [0u8; 16];
            let got = recv(a, &mut x, libc::MSG_DONTWAIT);
            check(
                got == Err(libc::EAGAIN),
                format!("a send that failed with EFAULT sent nothing (recv: {got:?})"),
            )?
        }
        other => {
            return Err(format!(
                "send with its second page unmapped: the first page's 4096 bytes or EFAULT (got {other:?})"
            ))
        }
    }
    // SAFETY: a pointer into the unmapped page.
    let n = r(unsafe { libc::send(c, b.add(4096).cast(), 4096, 0) });
    check(
        n == Err(libc::EFAULT),
        format!("send from an unmapped page: EFAULT (got {n:?})"),
    )?;
    // SAFETY: our own mappings.
    unsafe {
        libc::munmap(p.cast(), LEN);
        libc::munmap(q.cast(), 8192);
        libc::munmap(b.cast(), 4096);
    }
    close(a);
    close(c);
    Ok(())
}

/// epoll over AF_INET sockets, which wake only the epoll instances
/// watching them: an edge-triggered item is reported again only when
/// its own socket changes (traffic on another connection is no news to
/// it, as on Linux), an instance watching only sockets sleeps until one
/// of them changes (woken by another process) or its timeout passes.
fn epoll_per_socket(l: i32, port: u16) -> Result<(), String> {
    use std::time::{Duration, Instant};
    let pair = || -> Result<(i32, i32), String> {
        let c = tcp()?;
        connect4(c, LO, port).map_err(|e| format!("connect: {}", errname_net(e)))?;
        Ok((c, accept(l)?))
    };
    let (ac, a) = pair()?;
    let (bc, b) = pair()?;
    // SAFETY: plain syscall.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err("epoll_create1 failed".into());
    }
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 7,
    };
    // SAFETY: a valid event.
    let got = r(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, a, &mut ev) } as isize);
    check(got == Ok(0), "EPOLL_CTL_ADD a TCP socket, edge-triggered")?;
    let wait = |timeout: i32| -> Result<Vec<u64>, String> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: evs has room for 4 events.
        let n = r(unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), 4, timeout) } as isize)
            .map_err(|e| format!("epoll_wait: {}", errname_net(e)))?;
        Ok(evs[..n as usize].iter().map(|e| e.u64).collect())
    };
    let t = Instant::now();
    let got = wait(100)?;
    let waited = t.elapsed();
    check(
        got.is_empty() && waited >= Duration::from_millis(90) && waited < Duration::from_secs(3),
        format!(
            "nothing sent: epoll_wait on a socket times out after 100 ms ({waited:?}, {got:?})"
        ),
    )?;
    write_all(ac, b"a")?;
    let got = wait(2000)?;
    check(
        got == [7],
        format!("data on the socket: reported ({got:?})"),
    )?;
    write_all(bc, b"b")?;
    let mut one = [0u8; 1];
    let n = recv(b, &mut one, 0);
    check(n == Ok(1), "the other connection carries a byte")?;
    let got = wait(100)?;
    check(
        got.is_empty(),
        format!("edge-triggered: traffic on another connection is not reported ({got:?})"),
    )?;
    // Another process sends while this one sleeps in epoll_wait.
    let pid = crate::util::fork()?;
    if pid == 0 {
        crate::util::sleep_ms(200);
        let ok = write_all(ac, b"c").is_ok();
        crate::util::child_exit(if ok { 0 } else { 1 });
    }
    let t = Instant::now();
    let got = wait(10_000)?;
    let waited = t.elapsed();
    crate::util::wait_ok(pid, "a child sends on the connection")?;
    check(
        got == [7] && waited < Duration::from_secs(5),
        format!("epoll_wait sleeping on a socket wakes when another process sends ({waited:?}, {got:?})"),
    )?;
    let mut two = [0u8; 2];
    let n = recv(a, &mut two, 0);
    check(n == Ok(2), format!("both bytes are there ({n:?})"))?;
    for fd in [ep, ac, a, bc, b] {
        close(fd);
    }
    Ok(())
}

pub fn run(_: &[String]) -> Result<(), String> {
    let l = tcp()?;
    bind4(l, [0; 4], 0).map_err(|e| format!("bind: {}", errname_net(e)))?;
    listen(l, 8)?;
    let (_, port, _) = name(l, false).map_err(|e| format!("getsockname: {e}"))?;
    stream(l, port)?;
    unfaulted_buffers(l, port)?;
    epoll_per_socket(l, port)?;
    close(l);
    refused_and_bound_to_lo()?;
    datagrams()?;
    Ok(())
}
