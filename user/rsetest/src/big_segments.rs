//! Bulk TCP over the loopback with large writes and reads: 8 MiB each
//! way at once through 127.0.0.1 (and through the NIC's own address when
//! eth0 has one: that traffic loops too), written in writes of 1 and
//! 2 MiB and odd sizes around 64 KiB, read in reads of odd sizes, every
//! byte checked in place. lo's counters in /proc/net/dev must show
//! segments larger than an Ethernet MSS (1460 bytes): lo's MTU is 64 KiB
//! on both systems, NIC or not, while eth0 keeps its Ethernet MTU. Then a
//! non-blocking writer: a write larger than the send buffer is cut short
//! (not EAGAIN), writes fill the buffer to EAGAIN, POLLOUT is off while
//! it is full and back once the reader has drained it.

use crate::inet::{bind4, connect4, name, tcp};
use crate::sock::{errname_net, r};
use crate::util::{check, close};

const LO: [u8; 4] = [127, 0, 0, 1];
const TOTAL: usize = 8 << 20;
const WRITES: &[usize] = &[1 << 20, 65_537, 300_007, 12_293, 2 << 20, 65_535];
const READS: &[usize] = &[1 << 20, 70_001, 65_536, 200_003, 4_099];

/// The byte at offset `i` of stream `seed`: a mix of both, so that bytes
/// out of place, repeated or lost show at any distance.
fn byte_at(seed: u64, i: usize) -> u8 {
    let mut x = (i as u64) ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x as u8
}

fn pattern(seed: u64, from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|i| byte_at(seed, i)).collect()
}

fn send(fd: i32, b: &[u8], flags: i32) -> Result<usize, i32> {
    // SAFETY: a valid buffer.
    r(unsafe { libc::send(fd, b.as_ptr().cast(), b.len(), flags) }).map(|n| n as usize)
}

fn recv(fd: i32, b: &mut [u8], flags: i32) -> Result<usize, i32> {
    // SAFETY: a valid buffer.
    r(unsafe { libc::recv(fd, b.as_mut_ptr().cast(), b.len(), flags) }).map(|n| n as usize)
}

/// Writes `TOTAL` bytes of stream `seed` in writes of `WRITES` sizes.
fn writer(fd: i32, seed: u64) -> Result<(), String> {
    let mut off = 0;
    let mut k = 0;
    while off < TOTAL {
        let len = WRITES[k % WRITES.len()].min(TOTAL - off);
        k += 1;
        let buf = pattern(seed, off, len);
        let mut b = &buf[..];
        while !b.is_empty() {
            let n = send(fd, b, 0).map_err(|e| format!("send at {off}: {}", errname_net(e)))?;
            b = &b[n..];
            off += n;
        }
    }
    Ok(())
}

/// Reads to EOF in reads of `READS` sizes, checking every byte against
/// stream `seed`; the number of bytes.
fn reader(fd: i32, seed: u64) -> Result<usize, String> {
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    let mut k = 0;
    loop {
        let want = READS[k % READS.len()];
        k += 1;
        let n = recv(fd, &mut buf[..want], 0)
            .map_err(|e| format!("recv at {off}: {}", errname_net(e)))?;
        if n == 0 {
            return Ok(off);
        }
        if let Some(i) = (0..n).find(|&i| buf[i] != byte_at(seed, off + i)) {
            return Err(format!(
                "byte {} of the stream is {:#04x}, want {:#04x} (in a read of {n})",
                off + i,
                buf[i],
                byte_at(seed, off + i)
            ));
        }
        off += n;
    }
}

/// lo's received bytes and packets, from /proc/net/dev.
fn lo_rx() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/dev").ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("lo:"))?;
    let mut w = line.split(':').nth(1)?.split_whitespace();
    Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
}

/// An interface's IPv4 address and MTU (SIOCGIFADDR, SIOCGIFMTU).
fn iface(name: &str) -> (Option<[u8; 4]>, Option<i32>) {
    let fd = match crate::inet::udp() {
        Ok(fd) => fd,
        Err(_) => return (None, None),
    };
    // SAFETY: plain data; each ioctl reads and writes one struct ifreq.
    let (addr, mtu) = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        let mut q = req;
        let addr = (libc::ioctl(fd, libc::SIOCGIFADDR, &mut q) == 0).then(|| {
            let sin: libc::sockaddr_in = std::mem::transmute_copy(&q.ifr_ifru.ifru_addr);
            sin.sin_addr.s_addr.to_ne_bytes()
        });
        let mut q = req;
        let mtu = (libc::ioctl(fd, libc::SIOCGIFMTU, &mut q) == 0).then_some(q.ifr_ifru.ifru_mtu);
        (addr, mtu)
    };
    close(fd);
    (addr, mtu)
}

/// 8 MiB each way at once between a client connected to `to` and the
/// listener's accepted socket, both checked; each side half-closes after
/// writing and reads to EOF.
fn both_ways(l: i32, port: u16, to: [u8; 4]) -> Result<(), String> {
    let c = tcp()?;
    connect4(c, to, port).map_err(|e| format!("connect {to:?}:{port}: {}", errname_net(e)))?;
    // SAFETY: null address out-parameters are allowed.
    let a = r(unsafe { libc::accept(l, std::ptr::null_mut(), std::ptr::null_mut()) } as isize)
        .map_err(|e| format!("accept: {}", errname_net(e)))? as i32;
    let shut = |fd: i32| {
        // SAFETY: plain syscall.
        unsafe { libc::shutdown(fd, libc::SHUT_WR) };
    };
    let client = std::thread::spawn(move || -> Result<usize, String> {
        let w = std::thread::spawn(move || {
            let r = writer(c, 1);
            shut(c);
            r
        });
        let got = reader(c, 2);
        w.join().map_err(|_| "client writer panicked")??;
        got
    });
    let w = std::thread::spawn(move || {
        let r = writer(a, 2);
        shut(a);
        r
    });
    let server_got = reader(a, 1);
    let server_wrote = w.join().map_err(|_| "server writer panicked")?;
    let client_got = client.join().map_err(|_| "client panicked")?;
    close(a);
    close(c);
    let server_got = server_got?;
    server_wrote?;
    let client_got = client_got?;
    check(
        server_got == TOTAL && client_got == TOTAL,
        format!(
            "{to:?}: 8 MiB each way at once, every byte in place (server got {server_got}, client got {client_got})"
        ),
    )
}

/// The non-blocking writer: short writes, EAGAIN, POLLOUT off while
/// full and back after the reader drains.
fn nonblocking(l: i32, port: u16) -> Result<(), String> {
    let c = tcp()?;
    connect4(c, LO, port).map_err(|e| format!("connect: {}", errname_net(e)))?;
    // SAFETY: null address out-parameters are allowed.
    let a = r(unsafe { libc::accept(l, std::ptr::null_mut(), std::ptr::null_mut()) } as isize)
        .map_err(|e| format!("accept: {}", errname_net(e)))? as i32;
    let big = pattern(3, 0, 16 << 20);
    let first = send(c, &big, libc::MSG_DONTWAIT);
    check(
        matches!(first, Ok(n) if n > 0 && n < big.len()),
        format!("a non-blocking 16 MiB send is cut short (sent {first:?})"),
    )?;
    let mut sent = first.unwrap_or(0);
    let mut last = Ok(0);
    for _ in 0..10_000 {
        last = send(c, &big[sent..], libc::MSG_DONTWAIT);
        match last {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    check(
        last == Err(libc::EAGAIN),
        format!("then sends fill the buffer to EAGAIN after {sent} bytes (last: {last:?})"),
    )?;
    let mut p = libc::pollfd {
        fd: c,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    check(
        n == 0 && p.revents & libc::POLLOUT == 0,
        format!(
            "POLLOUT is off while the buffer is full (poll {n}, revents {:#x})",
            p.revents
        ),
    )?;
    // Drain what was sent, checking it.
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < sent {
        let n = recv(a, &mut buf, 0).map_err(|e| format!("recv: {}", errname_net(e)))?;
        if n == 0 || buf[..n] != big[got..got + n] {
            return Err(format!("the drained bytes at {got} are not what was sent"));
        }
        got += n;
    }
    p.revents = 0;
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    check(
        n == 1 && p.revents & libc::POLLOUT != 0,
        format!(
            "POLLOUT is back once the reader drained it (poll {n}, revents {:#x})",
            p.revents
        ),
    )?;
    let more = send(c, &big[sent..sent + 65_536], libc::MSG_DONTWAIT);
    check(
        more == Ok(65_536),
        format!("and a 64 KiB non-blocking send then goes whole (got {more:?})"),
    )?;
    close(c);
    close(a);
    Ok(())
}

pub fn run(_: &[String]) -> Result<(), String> {
    let l = tcp()?;
    bind4(l, [0, 0, 0, 0], 0).map_err(|e| format!("bind: {}", errname_net(e)))?;
    // SAFETY: plain syscall.
    r(unsafe { libc::listen(l, 4) } as isize).map_err(|e| format!("listen: {}", errname_net(e)))?;
    let port = name(l, false).map_err(|e| format!("getsockname: {e}"))?.1;

    let (_, lo_mtu) = iface("lo");
    check(
        lo_mtu.is_some_and(|m| m >= 65535),
        format!("lo's MTU is 64 KiB (got {lo_mtu:?})"),
    )?;
    let before = lo_rx();
    both_ways(l, port, LO)?;
    let after = lo_rx();
    if let (Some((b0, p0)), Some((b1, p1))) = (before, after) {
        let per = (b1 - b0) / (p1 - p0).max(1);
        check(
            per > 1460,
            format!(
                "lo carried segments larger than an Ethernet MSS: {} bytes in {} packets, {per} per packet",
                b1 - b0,
                p1 - p0
            ),
        )?;
    } else {
        return Err("no lo line in /proc/net/dev".into());
    }

    let (eth, eth_mtu) = iface("eth0");
    if let Some(addr) = eth {
        check(
            eth_mtu.is_some_and(|m| m <= 1500),
            format!("eth0's MTU stays an Ethernet one, at most 1500 (got {eth_mtu:?})"),
        )?;
        both_ways(l, port, addr)?;
    } else {
        crate::say!("ok: (eth0 has no address: the transfer through it is skipped)");
    }

    nonblocking(l, port)?;
    close(l);
    Ok(())
}
