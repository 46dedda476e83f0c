//! AF_UNIX SOCK_DGRAM: records with the sender's name, truncation
//! (MSG_TRUNC), a bounded queue (EAGAIN), EMSGSIZE, connect as default
//! destination and filter (EPERM), ECONNREFUSED once the peer is gone,
//! autobind, and blocking senders woken by a reader.

use crate::sock::*;
use crate::util::{check, close, fork, wait_ok};

fn recvfrom(fd: i32, max: usize, flags: i32) -> Result<(Vec<u8>, Vec<u8>, isize), i32> {
    let mut b = vec![0u8; max];
    // SAFETY: plain data.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: valid buffers and out-parameters.
    let n = r(unsafe {
        libc::recvfrom(
            fd,
            b.as_mut_ptr().cast(),
            max,
            flags,
            (&mut a as *mut libc::sockaddr_un).cast(),
            &mut len,
        )
    })?;
    b.truncate((n as usize).min(max));
    // SAFETY: a is plain bytes.
    let from = unsafe {
        std::slice::from_raw_parts((&a as *const libc::sockaddr_un).cast::<u8>(), len as usize)
    };
    Ok((b, from.to_vec(), n))
}

fn sendto(fd: i32, data: &[u8], name: &[u8], flags: i32) -> R {
    let (a, len) = addr(name);
    // SAFETY: valid buffer and address.
    r(unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            flags,
            (&a as *const libc::sockaddr_un).cast(),
            len,
        )
    })
}

pub fn run(_: &[String]) -> Result<(), String> {
    let sp = tmp_path("dgram-server");
    let s = socket(libc::AF_UNIX, libc::SOCK_DGRAM).map_err(errname_net)? as i32;
    bind(s, &sp).map_err(errname_net)?;
    let c = socket(libc::AF_UNIX, libc::SOCK_DGRAM).map_err(errname_net)? as i32;
    let cn = b"\0rsetest-dgram-client".to_vec();
    bind(c, &cn).map_err(errname_net)?;
    check(
        sendto(c, b"first", &sp, 0) == Ok(5),
        "sendto a path-bound socket",
    )?;
    check(
        sendto(c, b"second message", &sp, 0) == Ok(14),
        "a second datagram",
    )?;
    check(sendto(c, b"", &sp, 0) == Ok(0), "an empty datagram")?;
    let (d, from, _) = recvfrom(s, 100, 0).map_err(errname_net)?;
    let (want_from, _) = {
        let (a, len) = addr(&cn);
        // SAFETY: plain bytes.
        (
            unsafe {
                std::slice::from_raw_parts(
                    (&a as *const libc::sockaddr_un).cast::<u8>(),
                    len as usize,
                )
            }
            .to_vec(),
            0,
        )
    };
    check(
        d == b"first" && from == want_from,
        "recvfrom: one datagram, with the sender's abstract name",
    )?;
    let (d, _, n) = recvfrom(s, 6, libc::MSG_TRUNC).map_err(errname_net)?;
    check(
        d == b"second" && n == 14,
        format!("a short read with MSG_TRUNC: 6 bytes, returns the full 14 ({n})"),
    )?;
    let (d, _, n) = recvfrom(s, 10, 0).map_err(errname_net)?;
    check(d.is_empty() && n == 0, "the empty datagram arrives as one")?;
    // recvmsg's MSG_TRUNC flag.
    sendto(c, b"0123456789", &sp, 0).map_err(errname_net)?;
    let mut buf = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: 4,
    };
    // SAFETY: plain data.
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = &mut iov;
    m.msg_iovlen = 1;
    // SAFETY: valid msghdr.
    let n = unsafe { libc::recvmsg(s, &mut m, 0) };
    check(
        n == 4 && m.msg_flags & libc::MSG_TRUNC != 0,
        "recvmsg of a longer datagram: 4 bytes and MSG_TRUNC in msg_flags",
    )?;
    // Unnamed sender: no address.
    let u = socket(libc::AF_UNIX, libc::SOCK_DGRAM).map_err(errname_net)? as i32;
    sendto(u, b"anon", &sp, 0).map_err(errname_net)?;
    let (_, from, _) = recvfrom(s, 10, 0).map_err(errname_net)?;
    check(
        from.len() <= 2,
        format!("from an unnamed sender: no name ({} bytes)", from.len()),
    )?;
    // The queue is bounded: a non-blocking sender gets EAGAIN.
    let mut sent = 0;
    let err = loop {
        match sendto(u, b"fill", &sp, libc::MSG_DONTWAIT) {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        if sent > 100_000 {
            return Err("100,000 datagrams queued to a socket nobody reads".into());
        }
    };
    check(
        err == libc::EAGAIN && sent >= 10,
        format!("the receive queue fills: EAGAIN after {sent} datagrams"),
    )?;
    // A blocking sender waits until a reader makes room.
    let pid = fork()?;
    if pid == 0 {
        crate::util::child_exit(if sendto(u, b"late", &sp, 0) == Ok(4) {
            0
        } else {
            1
        });
    }
    crate::util::sleep_ms(100);
    let mut drained = 0;
    while recvfrom(s, 10, libc::MSG_DONTWAIT).is_ok() {
        drained += 1;
    }
    wait_ok(pid, "a blocked sender is woken by a read and sends")?;
    while recvfrom(s, 10, libc::MSG_DONTWAIT).is_ok() {
        drained += 1;
    }
    check(
        drained == sent + 1,
        format!("every datagram read once ({drained} of {})", sent + 1),
    )?;
    let big = vec![0u8; 1 << 20];
    check(
        sendto(u, &big, &sp, 0) == Err(libc::EMSGSIZE),
        "a 1 MiB datagram: EMSGSIZE",
    )?;
    check(
        sendto(u, b"x", b"\0rsetest-nobody", 0) == Err(libc::ECONNREFUSED),
        "sendto an abstract name nobody holds: ECONNREFUSED",
    )?;
    check(
        send(u, b"x", 0) == Err(libc::ENOTCONN),
        "send without a destination: ENOTCONN",
    )?;
    // connect: default destination, and only the peer may send to us.
    check(
        connect(s, &cn) == Ok(0),
        "the server connects to the client's name",
    )?;
    check(
        sendto(u, b"x", &sp, 0) == Err(libc::EPERM),
        "a third socket sending to a connected socket: EPERM",
    )?;
    check(sendto(c, b"ok", &sp, 0) == Ok(2), "its peer may")?;
    check(
        send(s, b"reply", 0) == Ok(5),
        "send on a connected datagram socket goes to the peer",
    )?;
    check(
        recv_vec(c, 10, 0) == Ok(b"reply".to_vec()),
        "... and arrives",
    )?;
    let peer = name(s, true).map_err(errname_net)?;
    check(
        peer == want_from,
        "getpeername of a connected datagram socket",
    )?;
    close(c);
    check(
        send(s, b"x", 0) == Err(libc::ECONNREFUSED),
        "send to a peer that closed: ECONNREFUSED",
    )?;
    // Autobind: binding with only the family picks an abstract name.
    // SAFETY: plain data.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // SAFETY: a valid sockaddr of 2 bytes.
    let rv = unsafe { libc::bind(u, (&a as *const libc::sockaddr_un).cast(), 2) };
    let got = name(u, false).map_err(errname_net)?;
    check(
        rv == 0 && got.len() == 8 && got[2] == 0,
        format!(
            "autobind: a 5-character abstract name ({} bytes)",
            got.len()
        ),
    )?;
    // A datagram socketpair.
    let (x, y) = pair(libc::SOCK_DGRAM)?;
    send(x, b"p1", 0).map_err(errname_net)?;
    send(x, b"p2", 0).map_err(errname_net)?;
    check(
        recv_vec(y, 10, 0) == Ok(b"p1".to_vec()) && recv_vec(y, 10, 0) == Ok(b"p2".to_vec()),
        "a datagram socketpair keeps boundaries",
    )?;
    for fd in [s, u, x, y] {
        close(fd);
    }
    let _ = std::fs::remove_file(String::from_utf8_lossy(&sp).to_string());
    Ok(())
}
