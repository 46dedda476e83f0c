//! A listener under more connections than it has accepted:
//! `rsetest inet_backlog`.
//!
//! - A burst: 12 non-blocking connects to a listener with backlog 16
//!   before any accept; every one completes and is accepted (none
//!   refused). RSE OS keeps only a few smoltcp sockets listening per
//!   listener, so the SYNs beyond them are dropped and resent, as on
//!   Linux when the accept queue is full, not refused.
//! - The family's socket cap (RSE OS: ENOBUFS past a number of AF_INET
//!   sockets; Linux has none this low, and that part is skipped there):
//!   with every socket slot taken by UDP sockets, four connections
//!   accepted one by one use the listener's listening sockets up without
//!   fresh ones in their place; once the UDP sockets are closed the
//!   listener must take a connection again (it refills at its next
//!   check, and is not left with no listening socket for good).

use crate::inet::{bind4, connect4, name, tcp, udp};
use crate::sock::{errname_net, listen, r};
use crate::util::{check, close};

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
    for fd in cs.into_iter().chain(accepted) {
        close(fd);
    }
    close(l);
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
    cap()
}
