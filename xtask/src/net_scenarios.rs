//! Network scenarios: the guest's virtio-net NIC on QEMU user networking
//! (`--net --forward`), proven from both ends. The guest takes a DHCP
//! lease and shows it in /proc/net/route; the host then talks TCP to the
//! kernel's debug echo responder (`netdebug.echo=PORT`, a test aid, not a
//! socket API) through the forwarded loopback port, and the guest sees
//! the packets in /proc/net/dev's counters.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use crate::qemu::{self, Machine};
use crate::RunOpts;

const GUEST_PORT: u16 = 7777;

/// Waits (bounded) for the lease, prints the routes and LEASED, then waits
/// until at least 4 more packets have arrived (the host's TCP exchange),
/// and prints the counters.
const SCRIPT: &str = r#"
i=0
until grep -q '^eth0' /proc/net/route; do
  i=$((i+1)); [ $i -gt 600 ] && { echo NO LEASE; cat /proc/net/dev; exit 3; }; sleep 0.1
done
rx() { awk '/eth0:/ {print $3}' /proc/net/dev; }
rx0=$(rx)
cat /proc/net/route
echo "RX0 $rx0"
echo LEASED
i=0
until [ "$(rx)" -ge $((rx0 + 4)) ]; do
  i=$((i+1)); [ $i -gt 600 ] && { echo NO TRAFFIC; exit 4; }; sleep 0.1
done
sleep 1
cat /proc/net/dev
"#;

pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// One TCP exchange through the forwarded port: send, half-close, read
/// the echo to EOF.
fn exchange(port: u16, payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    s.write_all(payload).map_err(|e| format!("write: {e}"))?;
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let mut back = Vec::new();
    s.read_to_end(&mut back).map_err(|e| format!("read: {e}"))?;
    Ok(back)
}

/// The rx_packets column of eth0 in a /proc/net/dev text.
fn rx_packets(dev: &str) -> Option<u64> {
    dev.lines()
        .find(|l| l.trim_start().starts_with("eth0:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
}

pub fn dhcp_and_tcp_echo(machine: Machine) -> Result<(), String> {
    let host_port = free_port()?;
    let opts = RunOpts {
        exec: Some(SCRIPT.to_string()),
        machine: Some(machine),
        net: true,
        forwards: vec![(host_port, GUEST_PORT)],
        append: vec![format!("netdebug.echo={GUEST_PORT}")],
        ..Default::default()
    };
    let cfg = opts.config("net")?;
    let (tx, rx) = mpsc::channel();
    let payload = format!(
        "hello through virtio-net from host pid {} at {:?}\n",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let sent = payload.clone().into_bytes();
    let host = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        rx.recv_timeout(Duration::from_secs(240))
            .map_err(|_| "the guest never printed LEASED".to_string())?;
        exchange(host_port, &sent)
    });
    let out = qemu::run_captured_notify(
        &cfg,
        Duration::from_secs(300),
        false,
        Some(("LEASED".into(), tx)),
    )
    .map_err(|e| format!("qemu: {e}"));
    let _ = std::fs::remove_file(&cfg.log);
    if let Some(i) = &cfg.initrd {
        let _ = std::fs::remove_file(i);
    }
    let out = out?;
    let echoed = host.join().map_err(|_| "host thread panicked")?;
    let console = out.console_str();
    let fail = |what: &str| crate::scenarios::explain(&out, what);
    if out.guest_status() != Some(0) {
        return Err(fail("the guest script failed"));
    }
    // DHCP from QEMU's user network: 10.0.2.15/24, so the on-link route
    // 10.0.2.0/24 (as Linux prints it: 0002000A / 00FFFFFF).
    if !out.log.contains("leased 10.0.2.15/24 by DHCP")
        || !console.contains("eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF")
    {
        return Err(fail(
            "no DHCP lease of 10.0.2.15/24 in the log and /proc/net/route",
        ));
    }
    match echoed {
        Ok(back) if back == payload.as_bytes() => {}
        Ok(back) => {
            return Err(fail(&format!(
                "the echo differs: sent {payload:?}, got {:?}",
                String::from_utf8_lossy(&back)
            )))
        }
        Err(e) => return Err(fail(&format!("TCP exchange from the host failed: {e}"))),
    }
    let rx0: u64 = console
        .lines()
        .find_map(|l| l.strip_prefix("RX0 "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| fail("no RX0 line"))?;
    let last_dev = console.rsplit("Inter-|").next().unwrap_or("");
    match rx_packets(last_dev) {
        Some(n) if n >= rx0 + 4 => Ok(()),
        other => Err(fail(&format!(
            "eth0 rx_packets {other:?} after the exchange, {rx0} before"
        ))),
    }
}

/// Internet checksum (RFC 1071).
fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const HOST_IP: [u8; 4] = [10, 0, 2, 2];
const GUEST_IP: [u8; 4] = [10, 0, 2, 15];

fn arp_request() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&HOST_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&GUEST_IP);
    f
}

fn icmp_echo(guest_mac: [u8; 6], id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(payload);
    let c = csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&HOST_IP);
    ip.extend_from_slice(&GUEST_IP);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&guest_mac);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

/// Receives frames until `want` accepts one (or 20 s pass).
fn await_frame<T>(
    sock: &std::net::UdpSocket,
    mut want: impl FnMut(&[u8]) -> Option<T>,
) -> Result<T, String> {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            if let Some(t) = want(&buf[..n]) {
                return Ok(t);
            }
        }
    }
    Err("no answer within 20 s".into())
}

/// The host's side of the ARP/ICMP scenario: who-has 10.0.2.15, then an
/// echo request to the MAC that answered; returns the guest's MAC.
fn arp_and_ping(sock: &std::net::UdpSocket, qemu_port: u16) -> Result<[u8; 6], String> {
    let to = ("127.0.0.1", qemu_port);
    sock.send_to(&arp_request(), to)
        .map_err(|e| format!("send: {e}"))?;
    let guest_mac = await_frame(sock, |f| {
        let is_reply = f.len() >= 42
            && f[12..14] == [0x08, 0x06]
            && f[20..22] == [0, 2]
            && f[28..32] == GUEST_IP
            && f[32..38] == HOST_MAC
            && f[38..42] == HOST_IP;
        is_reply.then(|| f[22..28].try_into().expect("6 bytes"))
    })
    .map_err(|e| format!("ARP who-has 10.0.2.15: {e}"))?;
    let payload: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(7)).collect();
    let (id, seq) = (0x5253, 7);
    sock.send_to(&icmp_echo(guest_mac, id, seq, &payload), to)
        .map_err(|e| format!("send: {e}"))?;
    await_frame(sock, |f| {
        if f.len() < 34 || f[12..14] != [0x08, 0x00] || f[0..6] != HOST_MAC {
            return None;
        }
        let ihl = (f[14] & 0xf) as usize * 4;
        let (ip, icmp) = (&f[14..14 + ihl], &f[14 + ihl..]);
        let ok = ip[9] == 1
            && ip[12..16] == GUEST_IP
            && ip[16..20] == HOST_IP
            && csum(ip) == 0
            && icmp.len() == 8 + payload.len()
            && icmp[0] == 0
            && icmp[4..6] == id.to_be_bytes()
            && icmp[6..8] == seq.to_be_bytes()
            && icmp[8..] == payload[..]
            && csum(icmp) == 0;
        ok.then_some(())
    })
    .map_err(|e| format!("ICMP echo request to 10.0.2.15: {e}"))?;
    Ok(guest_mac)
}

/// The kernel answers ARP and ICMP echo itself: the host crafts the frames
/// and QEMU carries them as UDP datagrams on loopback; the guest has its
/// address from `ip=` (no DHCP server on that wire) and shows the
/// exchange in /proc/net/dev.
pub fn arp_and_icmp_echo() -> Result<(), String> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let peer_port = sock.local_addr().map_err(|e| e.to_string())?.port();
    let qemu_port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        probe.local_addr().map_err(|e| e.to_string())?.port()
    };
    let opts = RunOpts {
        exec: Some(
            r#"grep '^eth0' /proc/net/route; echo UP
i=0
until [ "$(awk '/eth0:/ {print $3}' /proc/net/dev)" -ge 2 ]; do
  i=$((i+1)); [ $i -gt 600 ] && { echo NO TRAFFIC; exit 4; }; sleep 0.1
done
sleep 1; cat /proc/net/dev"#
                .to_string(),
        ),
        append: vec!["ip=10.0.2.15::10.0.2.2:255.255.255.0".into()],
        ..Default::default()
    };
    let mut cfg = opts.config("net-icmp")?;
    cfg.net = Some(qemu::Net::Udp {
        qemu_port,
        peer_port,
    });
    let (tx, rx) = mpsc::channel();
    let host = std::thread::spawn(move || -> Result<[u8; 6], String> {
        rx.recv_timeout(Duration::from_secs(240))
            .map_err(|_| "the guest never printed UP".to_string())?;
        arp_and_ping(&sock, qemu_port)
    });
    let out = qemu::run_captured_notify(
        &cfg,
        Duration::from_secs(300),
        false,
        Some(("UP".into(), tx)),
    )
    .map_err(|e| format!("qemu: {e}"));
    let _ = std::fs::remove_file(&cfg.log);
    if let Some(i) = &cfg.initrd {
        let _ = std::fs::remove_file(i);
    }
    let out = out?;
    let fail = |what: &str| crate::scenarios::explain(&out, what);
    let mac = host
        .join()
        .map_err(|_| "host thread panicked")?
        .map_err(|e| fail(&e))?;
    if out.guest_status() != Some(0) {
        return Err(fail("the guest script failed"));
    }
    let mac_text = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let console = out.console_str();
    if !out.log.contains(&format!("MAC {mac_text}"))
        || !console.contains("eth0\t00000000\t0202000A\t0003")
    {
        return Err(fail(&format!(
            "ARP answered by {mac_text}, not the NIC's MAC, or no default route via 10.0.2.2 from ip="
        )));
    }
    match rx_packets(console.rsplit("Inter-|").next().unwrap_or("")) {
        Some(n) if n >= 2 => Ok(()),
        other => Err(fail(&format!("eth0 rx_packets {other:?}, want >= 2"))),
    }
}

/// The guest side of the AF_INET scenario: the lease, `rsetest inet`,
/// `rsetest big_segments` (loopback bulk with a NIC present),
/// then busybox `nc -l` sending `seq 1 30000` and keeping what comes in,
/// which must be `seq 100000 130000` (busybox has no cksum; cmp it is).
const INET_SCRIPT: &str = r#"
i=0
until grep -q '^eth0' /proc/net/route; do
  i=$((i+1)); [ $i -gt 600 ] && { echo NO LEASE; exit 3; }; sleep 0.1
done
/usr/bin/rsetest inet || exit 5
/usr/bin/rsetest big_segments || exit 6
seq 1 30000 > /tmp/out
nc -l -p 7777 < /tmp/out > /tmp/in &
nc=$!
sleep 1
echo LISTENING
wait $nc
echo "NC STATUS $?"
seq 100000 130000 > /tmp/want
echo "IN $(wc -c < /tmp/in) BYTES"
cmp /tmp/in /tmp/want && echo SAME
"#;

/// The host's side: connect through the forwarded port, send `payload`
/// while reading everything the guest sends until its FIN, then
/// half-close (so nc, which stops at our FIN, has sent everything first).
fn inet_exchange(port: u16, payload: Vec<u8>) -> Result<Vec<u8>, String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let writer =
        std::thread::spawn(move || w.write_all(&payload).map_err(|e| format!("write: {e}")));
    let mut back = Vec::new();
    (&s).read_to_end(&mut back)
        .map_err(|e| format!("read (after {} bytes): {e}", back.len()))?;
    writer.join().map_err(|_| "writer panicked")??;
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    Ok(back)
}

/// AF_INET sockets end to end: `rsetest inet` in the guest (with the
/// network up), then busybox `nc -l` (socket, bind, listen, accept, poll,
/// read, write, shutdown) exchanging ~170-210 KB each way with the host
/// through a forwarded port, checked byte for byte in both directions.
pub fn inet_nc_both_ways() -> Result<(), String> {
    let host_port = free_port()?;
    let adds = crate::ext4_programs::rsetest_only()?;
    let opts = RunOpts {
        exec: Some(INET_SCRIPT.to_string()),
        adds,
        net: true,
        forwards: vec![(host_port, GUEST_PORT)],
        ..Default::default()
    };
    let cfg = opts.config("net-inet")?;
    let (tx, rx) = mpsc::channel();
    let payload: Vec<u8> = (100_000..=130_000)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes();
    let sent = payload.len();
    let host = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        rx.recv_timeout(Duration::from_secs(400))
            .map_err(|_| "the guest never printed LISTENING".to_string())?;
        inet_exchange(host_port, payload)
    });
    let out = qemu::run_captured_notify(
        &cfg,
        Duration::from_secs(500),
        false,
        Some(("LISTENING".into(), tx)),
    )
    .map_err(|e| format!("qemu: {e}"));
    let _ = std::fs::remove_file(&cfg.log);
    if let Some(i) = &cfg.initrd {
        let _ = std::fs::remove_file(i);
    }
    let out = out?;
    let got = host.join().map_err(|_| "host thread panicked")?;
    let console = out.console_str();
    let fail = |what: &str| crate::scenarios::explain(&out, what);
    if !console.contains("PASS inet") || console.contains("not ok") {
        return Err(fail("rsetest inet did not pass"));
    }
    if !console.contains("PASS big_segments") {
        return Err(fail("rsetest big_segments (with the NIC up) did not pass"));
    }
    let expect: String = (1..=30000).map(|i| format!("{i}\n")).collect();
    match got {
        Ok(b) if b == expect.as_bytes() => {}
        Ok(b) => {
            return Err(fail(&format!(
                "guest -> host: got {} bytes, want {} (seq 1 30000)",
                b.len(),
                expect.len()
            )))
        }
        Err(e) => return Err(fail(&format!("host side: {e}"))),
    }
    if !console.contains(&format!("IN {sent} BYTES")) || !console.contains("SAME") {
        return Err(fail(&format!(
            "host -> guest: the guest did not get the {sent} bytes sent"
        )));
    }
    if !console.contains("NC STATUS 0") || out.guest_status() != Some(0) {
        return Err(fail("nc or the guest script failed"));
    }
    Ok(())
}

/// The guest side of the loopback web scenario: busybox `httpd` serving
/// the host's tree on 127.0.0.1, busybox `wget` fetching from it in the
/// same guest (no NIC): each file's md5 as fetched, a 404, and the lo
/// counters.
const LOOPBACK_WEB_SCRIPT: &str = r#"
httpd -f -p 127.0.0.1:8080 -h /mnt/www &
h=$!
i=0
until wget -q -O /dev/null http://127.0.0.1:8080/small.txt; do
  i=$((i+1)); [ $i -gt 100 ] && { echo NO HTTPD; exit 3; }; sleep 0.2
done
for f in small.txt big.bin sub/page.html; do
  wget -q -O /tmp/got http://127.0.0.1:8080/$f || { echo "WGET $f FAILED"; exit 4; }
  echo "GOT $f $(md5sum < /tmp/got | cut -d' ' -f1) $(wc -c < /tmp/got)"
done
wget -q -O /tmp/none http://127.0.0.1:8080/none.txt 2>/tmp/err; echo "MISSING STATUS $?"
cat /tmp/err
kill $h
wait $h
cat /proc/net/dev
"#;

/// A file's md5 (hex) by the host's md5sum.
fn md5_hex(path: &std::path::Path) -> Result<String, String> {
    let out = std::process::Command::new("md5sum")
        .arg(path)
        .output()
        .map_err(|e| format!("md5sum: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(String::from)
        .ok_or_else(|| "md5sum printed nothing".into())
}

/// In-guest loopback without a NIC: busybox httpd serves files the host
/// made (a text file, 3 MiB of pseudo-random bytes, a page in a
/// subdirectory) to busybox wget in the same guest over 127.0.0.1; what
/// wget saved has the host file's md5 and size, a missing file is a 404,
/// and /proc/net/dev shows the traffic on lo.
pub fn loopback_httpd_wget() -> Result<(), String> {
    let dir = crate::artifacts::out_dir().join(format!("lo-www-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut x: u32 = 0x1234_5678 ^ std::process::id();
    let big: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let files: [(&str, Vec<u8>); 3] = [
        (
            "small.txt",
            (1..=2000)
                .map(|i| format!("{i}\n"))
                .collect::<String>()
                .into_bytes(),
        ),
        ("big.bin", big),
        (
            "sub/page.html",
            b"<html><body>served over 127.0.0.1</body></html>\n".to_vec(),
        ),
    ];
    let result = (|| {
        for (name, data) in &files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().expect("has a parent"))
                .map_err(|e| e.to_string())?;
            std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        let opts = RunOpts {
            exec: Some(LOOPBACK_WEB_SCRIPT.to_string()),
            adds: vec![crate::artifacts::Addition {
                host: dir.clone(),
                guest: "/mnt/www".into(),
            }],
            ..Default::default()
        };
        let (console, status) = crate::scenarios::exec_opts(&opts, "lo-www")?;
        let fail = |what: &str| format!("{what}\n--- console ---\n{console}");
        if status != 0 {
            return Err(fail(&format!("the guest script exited with {status}")));
        }
        for (name, data) in &files {
            let want = format!("GOT {name} {} {}", md5_hex(&dir.join(name))?, data.len());
            if !console.lines().any(|l| l.trim_end() == want) {
                return Err(fail(&format!(
                    "wget did not get {name} intact: want `{want}`"
                )));
            }
        }
        if !console.contains("MISSING STATUS 1") || !console.contains("404") {
            return Err(fail("a missing file was not a 404"));
        }
        let lo_rx = console
            .lines()
            .find(|l| l.trim_start().starts_with("lo:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok());
        match lo_rx {
            Some(n) if n > 3 << 20 => Ok(()),
            other => Err(fail(&format!(
                "lo's rx_bytes in /proc/net/dev: {other:?}, want more than the 3 MiB served"
            ))),
        }
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The guest side of the churn scenario: /proc/net/sockstat before and
/// after `rsetest inet_churn 2000` (the closes may still be finishing:
/// up to 5 s for the counts to settle).
const CHURN_SCRIPT: &str = r#"
cat /proc/net/sockstat > /tmp/before
/usr/bin/rsetest inet_churn 2000 || exit 5
i=0
until cmp -s /proc/net/sockstat /tmp/before; do
  i=$((i+1)); [ $i -gt 50 ] && break; sleep 0.1
done
echo BEFORE; cat /tmp/before; echo AFTER; cat /proc/net/sockstat
"#;

/// 2,000 loopback connections opened and closed (no NIC): `rsetest
/// inet_churn` checks /proc/net/tcp during and after, and the kernel's
/// socket counts in /proc/net/sockstat (sockets, TCP in use, orphans,
/// TIME-WAIT, allocated) are back at their baseline afterwards.
pub fn loopback_churn_sockstat() -> Result<(), String> {
    let adds = crate::ext4_programs::rsetest_only()?;
    let opts = RunOpts {
        exec: Some(CHURN_SCRIPT.to_string()),
        adds,
        ..Default::default()
    };
    let (console, status) = crate::scenarios::exec_opts(&opts, "lo-churn")?;
    let fail = |what: &str| format!("{what}\n--- console ---\n{console}");
    if status != 0 || !console.contains("PASS inet_churn") {
        return Err(fail("rsetest inet_churn 2000 did not pass"));
    }
    let section = |from: &str, to: Option<&str>| -> Vec<String> {
        let rest = console.split(from).nth(1).unwrap_or("");
        let rest = to.map_or(rest, |t| rest.split(t).next().unwrap_or(""));
        rest.lines()
            .filter(|l| l.starts_with("sockets:") || l.starts_with("TCP:") || l.starts_with("UDP:"))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let (before, after) = (section("BEFORE", Some("AFTER")), section("AFTER", None));
    if before.len() != 3 || before != after {
        return Err(fail(&format!(
            "/proc/net/sockstat not back at its baseline: before {before:?}, after {after:?}"
        )));
    }
    Ok(())
}

/// NETLINK_ROUTE with a NIC: busybox `ip` lists both links, both
/// addresses and the main table (the connected subnet and the default
/// route through the gateway `ip=` gave) as Linux prints them; a change
/// is refused with EOPNOTSUPP, and malformed requests get errors, not a
/// dead kernel. (Without a NIC, scenario linux_diff_netlink compares the
/// same commands with Linux.)
pub fn ip_netlink() -> Result<(), String> {
    let opts = RunOpts {
        exec: Some(
            r#"ip -o link show | grep -o '^[0-9]*: [a-z0-9]*: <[^>]*> mtu [0-9]*'
ip -o -4 addr show | awk '{print $2, $4, $5, $6}'
ip route
ip addr add 10.9.9.9/24 dev eth0; echo "add status $?"
ip link show dev eth9; echo "eth9 status $?"
echo survived"#
                .to_string(),
        ),
        net: true,
        append: vec!["ip=10.0.2.15::10.0.2.2:255.255.255.0".into()],
        ..Default::default()
    };
    let (c, _) = crate::scenarios::exec_opts(&opts, "net-netlink")?;
    crate::scenarios::expect_lines(
        &c,
        &[
            "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65535".to_string(),
            "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500".into(),
            "lo 127.0.0.1/8 scope host".into(),
            "eth0 10.0.2.15/24 brd 10.0.2.255".into(),
            "default via 10.0.2.2 dev eth0".into(),
            "10.0.2.0/24 dev eth0 scope link  src 10.0.2.15".into(),
            "ip: RTNETLINK answers: Operation not supported".into(),
            "add status 2".into(),
            "ip: can't find device 'eth9'".into(),
            "eth9 status 2".into(),
            "survived".into(),
        ],
    )
}
