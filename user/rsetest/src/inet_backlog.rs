//! A listener under more connections than it has accepted:
//! `rsetest inet_backlog`.
//!
//! - A burst: 12 non-blocking connects to a listener with backlog 16
//!   before any accept; every one completes and is accepted (none
//!   refused).
//! - The accept queue: with backlog 64, 32 non-blocking connects and no
//!   accept yet all complete (SO_ERROR 0) within 5 s, then are accepted
//!   and carry a byte each way. RSE OS keeps only a few smoltcp sockets
//!   listening per listener; established ones move to its accept queue
//!   at once, and SYNs that found every listening socket taken are
//!   parked and taken again, not left to the client's 1 s resend (before
//!   the accept queue, the connections beyond the listening sockets
//!   never completed without an accept).
//! - Its bound: with backlog 2, three connections complete before any
//!   accept (Linux's backlog + 1) and a fourth does not until one is
//!   accepted; then it completes too.
//! - The family's socket cap (RSE OS: ENOBUFS past a number of AF_INET
//!   sockets; Linux has none this low, and that part is skipped there):
//!   with every socket slot taken by UDP sockets, four connections
//!   accepted one by one use the listener's listening sockets up without
//!   fresh ones in their place; once the UDP sockets are closed the
//!   listener must take a connection again (it refills at its next
//!   check, and is not left with no listening socket for good).

use std::time::{Duration, Instant};

use crate::inet::{bind4, connect4, name, tcp, udp};
use crate::sock::{errname_net, listen, r, revents, send};
use crate::util::{check, close, read_byte};

const LO: [u8; 4] = [127, 0, 0, 1];

/// accept4 with SO_RCVTIMEO set on the listener: the accepted fd.
fn accept(l: i32) -> Result<i32, i32> {
    // SAFETY: null address out-parameters are allowed.
    r(unsafe {
        libc::accept4(
            l,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    } as isize)
    .map(|v| v as i32)
}

/// A non-blocking TCP socket connecting to 127.0.0.1:port.
fn start_connect(port: u16) -> Result<i32, String> {
    let c = tcp()?;
    crate::sock::set_nonblock(c);
    match connect4(c, LO, port) {
        Ok(_) | Err(libc::EINPROGRESS) => Ok(c),
        Err(e) => Err(format!("connect 127.0.0.1:{port}: {}", errname_net(e))),
    }
}

/// Waits (up to 20 s) for a non-blocking connect to finish: its SO_ERROR.
fn finish_connect(c: i32) -> i32 {
    let mut p = libc::pollfd {
        fd: c,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 20_000) };
    crate::inet::getint(c, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or(-1)
}

fn listener() -> Result<(i32, u16), String> {
    let l = tcp()?;
    check(bind4(l, LO, 0) == Ok(0), "bind 127.0.0.1:0")?;
    check(listen(l, 16) == Ok(0), "listen with backlog 16")?;
    // timeval {20 s, 0}: accept gives EAGAIN rather than hang.
    let tv = libc::timeval {
        tv_sec: 20,
        tv_usec: 0,
    };
    // SAFETY: tv is a valid timeval for the call.
    let rc = unsafe {
        libc::setsockopt(
            l,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    check(rc == 0, "SO_RCVTIMEO on the listener")?;
    let (_, port, _) = name(l, false).map_err(|e| format!("getsockname: {e}"))?;
    Ok((l, port))
}

fn burst() -> Result<(), String> {
    let (l, port) = listener()?;
    let t = Instant::now();
    let cs = (0..12)
        .map(|_| start_connect(port))
        .collect::<Result<Vec<_>, _>>()?;
    let mut accepted = Vec::new();
    for i in 0..cs.len() {
        match accept(l) {
            Ok(a) => accepted.push(a),
            Err(e) => {
                return Err(format!(
                    "burst of 12 connects: accept {} of 12: {}",
                    i + 1,
                    errname_net(e)
                ))
            }
        }
    }
    let errs: Vec<i32> = cs.iter().map(|&c| finish_connect(c)).collect();
    check(
        errs.iter().all(|&e| e == 0),
        format!("12 connects before any accept all complete, none refused (SO_ERROR {errs:?})"),
    )?;
    crate::say!(
        "inet_backlog: 12 connects then 12 accepts in {} ms",
        t.elapsed().as_millis()
    );
    for fd in cs.into_iter().chain(accepted) {
        close(fd);
    }
    close(l);
    Ok(())
}

/// poll(2) over `fds` for writability until `want` of them are
/// writable or `ms` pass: which are.
fn writable(fds: &[i32], want: usize, ms: u64) -> Vec<bool> {
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut done = vec![false; fds.len()];
    loop {
        let mut ps: Vec<libc::pollfd> = fds
            .iter()
            .zip(&done)
            .filter(|(_, &d)| !d)
            .map(|(&fd, _)| libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            })
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if fds.len() - ps.len() >= want || left.is_zero() {
            return done;
        }
        // SAFETY: ps is a valid array of pollfds.
        unsafe { libc::poll(ps.as_mut_ptr(), ps.len() as _, left.as_millis() as i32 + 1) };
        for p in ps.iter().filter(|p| p.revents != 0) {
            if let Some(i) = fds.iter().position(|&fd| fd == p.fd) {
                done[i] = true;
            }
        }
    }
}

/// Accepts `n` connections (each within the listener's SO_RCVTIMEO)
/// and checks each carries a byte both ways with its client in `cs`.
fn accept_and_talk(l: i32, cs: &[i32], what: &str) -> Result<Vec<i32>, String> {
    let mut accepted = Vec::new();
    for i in 0..cs.len() {
        let a = accept(l).map_err(|e| {
            format!(
                "{what}: accept {} of {}: {}",
                i + 1,
                cs.len(),
                errname_net(e)
            )
        })?;
        accepted.push(a);
        let (_, port, _) = name(a, true).map_err(|e| format!("getpeername: {e}"))?;
        let c = *cs
            .iter()
            .find(|&&c| name(c, false).map(|n| n.1) == Ok(port))
            .ok_or(format!("{what}: accepted a peer port {port} no client has"))?;
        let b = i as u8;
        if send(c, &[b], 0) != Ok(1) || read_byte(a) != Some(b) {
            return Err(format!("{what}: connection {i}: client to server"));
        }
        if send(a, &[!b], 0) != Ok(1) || !ready(c, libc::POLLIN) || read_byte(c) != Some(!b) {
            return Err(format!("{what}: connection {i}: server to client"));
        }
    }
    crate::say!(
        "inet_backlog: {what}: {} accepted, a byte each way on each",
        cs.len()
    );
    Ok(accepted)
}

/// Whether `fd` gets `ev` within 5 s.
fn ready(fd: i32, ev: i16) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: ev,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 5_000) == 1 }
}

fn listener_with(backlog: i32) -> Result<(i32, u16), String> {
    let (l, port) = listener()?;
    check(
        listen(l, backlog) == Ok(0),
        format!("listen again with backlog {backlog}"),
    )?;
    Ok((l, port))
}

fn queue32() -> Result<(), String> {
    let (l, port) = listener_with(64)?;
    let t = Instant::now();
    let cs = (0..32)
        .map(|_| start_connect(port))
        .collect::<Result<Vec<_>, _>>()?;
    let done = writable(&cs, 32, 5_000);
    let n = done.iter().filter(|&&d| d).count();
    check(
        n == 32,
        format!("backlog 64, 32 connects, no accept: {n} of 32 connected within 5 s"),
    )?;
    let ms = t.elapsed().as_millis();
    let errs: Vec<i32> = cs
        .iter()
        .map(|&c| crate::inet::getint(c, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or(-1))
        .collect();
    check(
        errs.iter().all(|&e| e == 0),
        format!("32 connects before any accept: SO_ERROR all 0 ({errs:?})"),
    )?;
    check(
        revents(l, libc::POLLIN) & libc::POLLIN != 0,
        "the listener polls readable with connections queued",
    )?;
    let accepted = accept_and_talk(l, &cs, "backlog 64")?;
    crate::say!("inet_backlog: 32 connects started and established before accept in {ms} ms");
    for fd in cs.into_iter().chain(accepted) {
        close(fd);
    }
    close(l);
    Ok(())
}

fn backlog2() -> Result<(), String> {
    let (l, port) = listener_with(2)?;
    let cs = (0..4)
        .map(|_| start_connect(port))
        .collect::<Result<Vec<_>, _>>()?;
    // Three within 5 s; the fourth has had time to complete and must not.
    let _ = writable(&cs, 3, 5_000);
    let done = writable(&cs, 4, 500);
    let n = done.iter().filter(|&&d| d).count();
    check(
        n == 3,
        format!("backlog 2, 4 connects, no accept: {n} connected (backlog + 1 = 3)"),
    )?;
    let fourth = cs[done.iter().position(|&d| !d).unwrap_or(3)];
    let first = accept(l).map_err(|e| format!("backlog 2: first accept: {}", errname_net(e)))?;
    let t = Instant::now();
    check(
        writable(&[fourth], 1, 5_000)[0],
        "backlog 2: the fourth connect completes once one is accepted",
    )?;
    // Linux: at the client's next SYN resend; RSE OS: its parked SYN is
    // taken as soon as the accept frees a place.
    crate::say!(
        "inet_backlog: backlog 2: the fourth connect completed {} ms after the first accept",
        t.elapsed().as_millis()
    );
    check(
        crate::inet::getint(fourth, libc::SOL_SOCKET, libc::SO_ERROR) == Ok(0),
        "backlog 2: the fourth connect's SO_ERROR is 0",
    )?;
    // The first accepted one's client is not among those left.
    let (_, p1, _) = name(first, true).map_err(|e| format!("getpeername: {e}"))?;
    let rest: Vec<i32> = cs
        .iter()
        .copied()
        .filter(|&c| name(c, false).map(|n| n.1) != Ok(p1))
        .collect();
    let accepted = accept_and_talk(l, &rest, "backlog 2")?;
    for fd in cs.into_iter().chain(accepted).chain([first, l]) {
        close(fd);
    }
    Ok(())
}

fn cap() -> Result<(), String> {
    let (l, port) = listener()?;
    // Take every AF_INET socket slot left (bounded: Linux has no such cap).
    let mut fill = Vec::new();
    let mut capped = false;
    for _ in 0..600 {
        let u = udp()?;
        match bind4(u, LO, 0) {
            Ok(_) => fill.push(u),
            Err(libc::ENOBUFS) => {
                close(u);
                capped = true;
                break;
            }
            Err(e) => return Err(format!("bind UDP: {}", errname_net(e))),
        }
    }
    let mut held = Vec::new();
    if capped {
        // Each round frees one slot, which the client takes; the accepted
        // connection leaves its listening socket's place empty.
        for round in 0..4 {
            close(fill.pop().ok_or("no UDP socket to free")?);
            let c = start_connect(port)?;
            let a = accept(l)
                .map_err(|e| format!("at the cap, round {round}: accept: {}", errname_net(e)))?;
            check(
                finish_connect(c) == 0,
                format!("at the cap, round {round}: connect completes"),
            )?;
            held.extend([c, a]);
        }
    }
    for u in fill.drain(..) {
        close(u);
    }
    let c = start_connect(port)?;
    let a = accept(l).map_err(|e| {
        format!(
            "after the cap{} the listener takes a connection again: accept: {}",
            if capped { "" } else { " (not reached)" },
            errname_net(e)
        )
    })?;
    check(finish_connect(c) == 0, "that connect completes")?;
    for fd in held.into_iter().chain([c, a, l]) {
        close(fd);
    }
    crate::say!(
        "inet_backlog: socket cap {}",
        if capped {
            "reached"
        } else {
            "not reached (600 UDP sockets)"
        }
    );
    Ok(())
}

pub fn run(_: &[String]) -> Result<(), String> {
    burst()?;
    queue32()?;
    backlog2()?;
    cap()
}
