//! `udp_flood HOST PORT COUNT [SIZE]`: sends COUNT datagrams of SIZE bytes
//! (default 512) of pseudo-random garbage to HOST:PORT as fast as it can
//! (a flood at a cluster's braid port: the receiver must count and drop
//! them and keep its ring). ENOBUFS/EAGAIN from a full queue are counted,
//! not fatal.

use std::net::UdpSocket;

use crate::say;

pub fn run(args: &[String]) -> Result<(), String> {
    let usage = "usage: udp_flood HOST PORT COUNT [SIZE]";
    let host = args.first().ok_or(usage)?;
    let port: u16 = args.get(1).and_then(|a| a.parse().ok()).ok_or(usage)?;
    let count: u32 = args.get(2).and_then(|a| a.parse().ok()).ok_or(usage)?;
    let size: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(512);
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    let mut buf = vec![0u8; size.min(65_000)];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let (mut sent, mut refused) = (0u32, 0u32);
    for _ in 0..count {
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        match sock.send_to(&buf, (host.as_str(), port)) {
            Ok(_) => sent += 1,
            Err(_) => refused += 1,
        }
    }
    say!("udp_flood sent {sent} refused {refused}");
    Ok(())
}
