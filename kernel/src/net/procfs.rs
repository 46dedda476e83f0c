//! /proc/net: the files as Linux prints them, from the interface's real
//! counters and addresses (busybox `cat`, `route`, `netstat -r` read them).

use alloc::format;
use alloc::string::String;
use smoltcp::wire::Ipv4Address;

use super::device::Stats;
use super::stack;

/// The names under /proc/net (besides unix).
pub const FILES: [&str; 9] = [
    "dev", "route", "tcp", "udp", "tcp6", "udp6", "raw", "raw6", "sockstat",
];

/// The text of /proc/net/NAME, None if there is no such file.
pub fn file(name: &str) -> Option<String> {
    use super::inet::procfs as ip;
    Some(match name {
        "dev" => dev(),
        "route" => route(),
        "tcp" => ip::tcp(),
        "udp" => ip::udp(),
        "tcp6" => String::from(ip::TCP6),
        "udp6" | "raw6" => String::from(ip::DGRAM6),
        "raw" => String::from(ip::RAW),
        "sockstat" => sockstat(),
        _ => return None,
    })
}

/// /proc/net/sockstat (net/ipv4/proc.c, sockstat_seq_show).
fn sockstat() -> String {
    let c = super::inet::procfs::counts();
    format!(
        "sockets: used {}\nTCP: inuse {} orphan {} tw {} alloc {} mem {}\nUDP: inuse {} mem {}\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n",
        c.sockets + super::unix::procfs::count(),
        c.tcp_inuse,
        c.tcp_orphan,
        c.tcp_tw,
        c.tcp_alloc,
        c.tcp_mem,
        c.udp_inuse,
        c.udp_mem
    )
}

/// /proc/net/dev (net/core/net-procfs.c, dev_seq_printf_stats).
fn dev() -> String {
    let mut s = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    if let Some(snap) = stack::snapshot() {
        dev_line(&mut s, "lo", &snap.lo);
        if let Some((t, _)) = &snap.eth {
            dev_line(&mut s, "eth0", t);
        }
    }
    s
}

/// One interface's line of /proc/net/dev.
fn dev_line(s: &mut String, name: &str, t: &Stats) {
    *s += &format!(
        "{:>6}: {:7} {:7} {:4} {:4} {:4} {:5} {:10} {:9} {:8} {:7} {:4} {:4} {:4} {:5} {:7} {:10}\n",
        name,
        t.rx_bytes,
        t.rx_packets,
        t.rx_errors,
        t.rx_dropped,
        0,
        0,
        0,
        t.multicast,
        t.tx_bytes,
        t.tx_packets,
        t.tx_errors,
        t.tx_dropped,
        0,
        0,
        0,
        0
    );
}

/// An IPv4 address as Linux prints a `__be32` in /proc/net/route: the
/// network-order bytes read as a little-endian word, in hex.
fn be32(a: Ipv4Address) -> u32 {
    u32::from_le_bytes(a.octets())
}

/// One line of /proc/net/route padded to 127 columns (seq_pad).
fn route_line(s: &mut String, line: String) {
    s.push_str(&format!("{line:<127}\n"));
}

/// /proc/net/route (net/ipv4/fib_trie.c, fib_route_seq_show): the
/// default route first, then the on-link subnet.
fn route() -> String {
    const RTF_UP: u32 = 1;
    const RTF_GATEWAY: u32 = 2;
    let mut s = String::new();
    route_line(
        &mut s,
        String::from(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
        ),
    );
    let Some(snap) = stack::snapshot() else {
        return s;
    };
    let Some(addr) = snap.addr else {
        return s;
    };
    if let Some(gw) = snap.gateway {
        route_line(
            &mut s,
            format!(
                "eth0\t{:08X}\t{:08X}\t{:04X}\t0\t0\t0\t{:08X}\t0\t0\t0",
                0,
                be32(gw),
                RTF_UP | RTF_GATEWAY,
                0
            ),
        );
    }
    let net = addr.network();
    route_line(
        &mut s,
        format!(
            "eth0\t{:08X}\t{:08X}\t{:04X}\t0\t0\t0\t{:08X}\t0\t0\t0",
            be32(net.address()),
            0,
            RTF_UP,
            be32(net.netmask())
        ),
    );
    s
}
