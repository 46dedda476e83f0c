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

fn free_port() -> Result<u16, String> {
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
