//! A UDP echo exchange between two machines (the cluster's first
//! scenario: node 0 pings node 1).
//!
//! - `udp_ping serve PORT`: echo every datagram back to its sender,
//!   forever (what the other node runs).
//! - `udp_ping HOST PORT [COUNT]`: wait (up to 120 s: the peer may still be
//!   booting) for a first echo, then send COUNT (default 20) numbered
//!   datagrams of different sizes one at a time; each echo must come back
//!   from HOST:PORT with the same bytes. Prints the round trips (min,
//!   median, max).
//! - `udp_ping` alone: forks a server on 127.0.0.1 and pings it (how the
//!   check is validated on the host; RSE OS has no loopback device yet).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::say;
use crate::util::check;

fn serve(port: u16) -> Result<(), String> {
    let s = UdpSocket::bind(("0.0.0.0", port)).map_err(|e| format!("bind {port}: {e}"))?;
    say!("udp_ping: echoing on port {port}");
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = s.recv_from(&mut buf).map_err(|e| format!("recv: {e}"))?;
        let _ = s.send_to(&buf[..n], from);
    }
}

/// Datagram `i`: its number, then a pattern of a length that varies.
fn payload(i: u32) -> Vec<u8> {
    let len = 8 + (i as usize * 97) % 1200;
    let mut v = i.to_le_bytes().to_vec();
    v.extend((4..len).map(|j| (j as u32 ^ i.wrapping_mul(31)) as u8));
    v
}

/// recvfrom after poll(2) says a datagram is there, or None after `ms`.
/// (poll, not SO_RCVTIMEO: RSE OS's sockets have no timeouts yet.)
fn recv_within(s: &UdpSocket, buf: &mut [u8], ms: i32) -> Option<(usize, SocketAddr)> {
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    if n != 1 {
        return None;
    }
    s.recv_from(buf).ok()
}

fn ping(peer: SocketAddr, count: u32) -> Result<(), String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    let mut buf = [0u8; 2048];
    // The peer may still be booting: knock until it answers.
    let deadline = Instant::now() + Duration::from_secs(120);
    let hello = b"hello";
    let mut answered = false;
    while !answered && Instant::now() < deadline {
        s.send_to(hello, peer).map_err(|e| format!("sendto: {e}"))?;
        if let Some((n, from)) = recv_within(&s, &mut buf, 250) {
            answered = from == peer && &buf[..n] == hello;
        }
    }
    check(answered, format!("{peer} echoes a first datagram"))?;
    let mut rtts = Vec::new();
    for i in 1..=count {
        let p = payload(i);
        let t = Instant::now();
        s.send_to(&p, peer).map_err(|e| format!("sendto: {e}"))?;
        // Late echoes of the knocks may still arrive: skip them.
        let got = loop {
            match recv_within(&s, &mut buf, 5000) {
                Some((n, from)) if from == peer && &buf[..n] == hello => continue,
                Some((n, from)) => break Some((buf[..n].to_vec(), from)),
                None => break None,
            }
        };
        rtts.push(t.elapsed());
        let Some((echo, from)) = got else {
            return check(false, format!("echo {i} of {count} came back"));
        };
        if from != peer || echo != p {
            return check(
                false,
                format!(
                    "echo {i} ({} bytes) came back intact from {peer} (got {} bytes from {from})",
                    p.len(),
                    echo.len()
                ),
            );
        }
    }
    check(
        true,
        format!("{count} echoes of 8..1200 bytes came back intact from {peer}"),
    )?;
    rtts.sort();
    say!(
        "udp_ping: round trip min {} us, median {} us, max {} us",
        rtts[0].as_micros(),
        rtts[rtts.len() / 2].as_micros(),
        rtts[rtts.len() - 1].as_micros()
    );
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    match args {
        [mode, port] if mode == "serve" => serve(port.parse().map_err(|_| "bad PORT")?),
        [host, port, rest @ ..] => {
            let peer: SocketAddr = format!("{host}:{port}")
                .parse()
                .map_err(|_| format!("bad HOST:PORT {host}:{port}"))?;
            let count = match rest.first() {
                Some(c) => c.parse().map_err(|_| "bad COUNT")?,
                None => 20,
            };
            ping(peer, count.max(1))
        }
        [] => {
            let port = 47000 + (std::process::id() % 1000) as u16;
            let server = crate::util::fork()?;
            if server == 0 {
                let _ = serve(port);
                crate::util::child_exit(1);
            }
            let r = ping(SocketAddr::from(([127, 0, 0, 1], port)), 20);
            // SAFETY: our own child.
            unsafe { libc::kill(server, libc::SIGKILL) };
            let _ = crate::util::wait(server);
            r
        }
        _ => Err("usage: udp_ping [serve PORT | HOST PORT [COUNT]]".into()),
    }
}
