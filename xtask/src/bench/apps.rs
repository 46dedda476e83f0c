//! `cargo xtask bench apps`: Debian's lighttpd on RSE OS and on Debian's
//! Linux kernel, side by side in one run: the same QEMU flags (`-M pc`,
//! TCG, user networking with a forwarded port), the same initramfs root
//! (lighttpd's packages, the same configuration and files), loaded from
//! the host by Debian's `wrk` (downloaded and unpacked, not installed).
//! The Linux guest loads its virtio-net modules from its kernel package
//! with busybox `insmod` and takes the address QEMU's DHCP would give.
//!
//! Each boot runs every load once (612-byte and 1 MiB files, 1 and 16
//! connections) from the host, then the same loads again from Debian's
//! wrk inside the guest over 127.0.0.1 ("in-guest loopback": no QEMU user
//! networking, but the client shares the guest's vCPUs with lighttpd);
//! boots alternate between the systems; the table shows medians over the
//! boots of requests/s and p50/p99 latency.
//!
//! `--tap` (root) leaves QEMU's user networking out of the host rows too:
//! the NIC is a tap on a bridge in a network namespace this command
//! creates, and wrk runs in that namespace against the guest's address,
//! so the host's own TCP stack talks to the guest's over a Linux bridge
//! (slirp listens with a backlog of 1 and terminates every connection
//! itself, which is what its 16-connection p99 measures).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use crate::artifacts::{self, Addition};
use crate::cluster::Netns;
use crate::qemu::{self, Accel, Config, Machine, Net};

const USAGE: &str = "usage: cargo xtask bench apps [--quick] [--runs N] [--seconds S] [--smp N] \
     [--tap] [--no-write]";

/// The guest's address on user networking (what QEMU's DHCP gives).
const USER_ADDR: &str = "10.0.2.15";
/// The guest's address on the `--tap` bridge; the bridge (the host side)
/// is `TAP_HOST`.
const TAP_ADDR: &str = "10.77.0.2";
const TAP_HOST: &str = "10.77.0.1";

/// The guest's init on both systems.
const INIT: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
if [ -f /etc/rse/apps/modules ]; then
  # Linux: its NIC driver is modules; the address QEMU's DHCP would give.
  mount -t proc proc /proc
  mount -t sysfs sys /sys
  for m in $(cat /etc/rse/apps/modules); do insmod $m || echo "insmod $m failed"; done
  ifconfig lo 127.0.0.1 up
  addr=$(cat /etc/rse/apps/addr)
  i=0
  until ifconfig eth0 $addr netmask 255.255.255.0 up 2>/dev/null; do
    i=$((i+1)); [ $i -gt 100 ] && { echo NO ETH0; exit 3; }; sleep 0.1
  done
fi
i=0
until grep -q '^eth0' /proc/net/route; do
  i=$((i+1)); [ $i -gt 600 ] && { echo NO ROUTE; exit 3; }; sleep 0.1
done
lighttpd -D -f /etc/rse/apps/lighttpd.conf &
pid=$!
i=0
until grep -q 'server started' /tmp/lighttpd.err 2>/dev/null; do
  i=$((i+1)); [ $i -gt 600 ] && { echo NOT STARTED; cat /tmp/lighttpd.err; exit 4; }; sleep 0.1
done
echo APPS-READY
# The host connects here when its loads are done.
nc -l -p 9 > /dev/null
# In-guest loopback: the same lighttpd loaded by wrk inside the guest.
# Each line of the list is "ROW PATH CONNECTIONS"; the host reads the
# output between the markers from the console. (":80": the root has no
# /etc/services for wrk's getaddrinfo to name "http".)
s=$(cat /etc/rse/apps/seconds)
while read row path conns; do
  echo "LOOPBACK-BEGIN $row"
  wrk -t1 -c$conns -d${s}s --timeout 10s --latency http://127.0.0.1:80$path
  echo "LOOPBACK-END $row $?"
done < /etc/rse/apps/loopback
kill $pid
wait $pid
echo "APPS-DONE $?"
"#;

const CONFIG: &str = r#"server.document-root = "/srv/www"
server.port          = 80
server.errorlog      = "/tmp/lighttpd.err"
server.pid-file      = "/run/lighttpd.pid"
index-file.names     = ( "index.html" )
mimetype.assign      = ( ".html" => "text/html", "" => "application/octet-stream" )
"#;

/// (row name, URL path, connections).
const LOADS: &[(&str, &str, u32)] = &[
    ("612 B, 1 conn", "/index.html", 1),
    ("612 B, 16 conns", "/index.html", 16),
    ("1 MiB, 1 conn", "/one.bin", 1),
    ("1 MiB, 16 conns", "/one.bin", 16),
];

struct Options {
    runs: usize,
    seconds: u32,
    smp: u32,
    write: bool,
    /// Indexes into `LOADS` run by wrk inside the guest over 127.0.0.1.
    loopback: Vec<usize>,
    /// The NIC on a tap in a namespace of our own, not user networking.
    tap: bool,
}

impl Options {
    fn guest_addr(&self) -> &'static str {
        if self.tap {
            TAP_ADDR
        } else {
            USER_ADDR
        }
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        runs: 3,
        seconds: 10,
        smp: 1,
        write: true,
        loopback: (0..LOADS.len()).collect(),
        tap: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => {
                o.runs = 1;
                o.seconds = 2;
                o.write = false;
                // One short in-guest run per kernel: the path is exercised.
                o.loopback = vec![1];
            }
            "--runs" => o.runs = val()?.parse().map_err(|_| "--runs needs a number")?,
            "--seconds" => o.seconds = val()?.parse().map_err(|_| "--seconds needs a number")?,
            "--smp" => o.smp = val()?.parse().map_err(|_| "--smp needs a number")?,
            "--no-write" => o.write = false,
            "--tap" => o.tap = true,
            _ => return Err(format!("unknown option {a}\n{USAGE}")),
        }
    }
    o.runs = o.runs.max(1);
    o.seconds = o.seconds.max(1);
    Ok(o)
}

/// One wrk run: requests/s, p50 and p99 latency in µs, transfer/s in
/// MB/s, wrk's socket errors (connect + read + write + timeout), the
/// requests it completed, and (host rows) the CPU time QEMU spent per
/// request in µs, or None.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Load {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    mbps: f64,
    errors: f64,
    requests: f64,
    cpu_us: Option<f64>,
}

/// `12.34us` / `1.20ms` / `2.00s` → µs.
fn duration_us(s: &str) -> Option<f64> {
    let (n, mult) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    n.parse::<f64>().ok().map(|v| v * mult)
}

/// `31.02MB` / `512.00KB` / `1.2GB` → MB.
fn size_mb(s: &str) -> Option<f64> {
    for (suffix, mult) in [
        ("GB", 1024.0),
        ("MB", 1.0),
        ("KB", 1.0 / 1024.0),
        ("B", 1.0 / 1048576.0),
    ] {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|v| v * mult);
        }
    }
    None
}

/// The figures of `wrk --latency` output.
fn parse_wrk(out: &str) -> Option<Load> {
    let mut l = Load::default();
    let (mut rps, mut p50, mut p99, mut mbps) = (false, false, false, false);
    for line in out.lines().map(str::trim) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["Requests/sec:", n] => {
                l.rps = n.parse().ok()?;
                rps = true;
            }
            ["Transfer/sec:", n] => {
                l.mbps = size_mb(n)?;
                mbps = true;
            }
            ["50%", d] => {
                l.p50_us = duration_us(d)?;
                p50 = true;
            }
            ["99%", d] => {
                l.p99_us = duration_us(d)?;
                p99 = true;
            }
            [n, "requests", "in", ..] => l.requests = n.parse().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                l.errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<f64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    (rps && p50 && p99 && mbps).then_some(l)
}

/// Debian's wrk, unpacked under target/debs, with its libraries found
/// beside it (the host's own libc).
struct Wrk {
    bin: PathBuf,
    lib_path: String,
}

impl Wrk {
    fn fetch() -> Result<Wrk, String> {
        let trees = crate::debian::prepare(&["wrk".to_string()])?;
        let bin = trees
            .iter()
            .map(|u| u.tree.join("usr/bin/wrk"))
            .find(|p| p.exists())
            .ok_or("the wrk package has no usr/bin/wrk")?;
        let lib_path = trees
            .iter()
            .filter(|u| u.name != "libc6")
            .map(|u| {
                u.tree
                    .join("usr/lib/x86_64-linux-gnu")
                    .display()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(":");
        Ok(Wrk { bin, lib_path })
    }

    fn run(&self, net: &HostNet, path: &str, conns: u32, seconds: u32) -> Result<Load, String> {
        let out = net
            .command(&self.bin.to_string_lossy())
            .env("LD_LIBRARY_PATH", &self.lib_path)
            .args([
                "-t1",
                &format!("-c{conns}"),
                &format!("-d{seconds}s"),
                "--latency",
            ])
            .args(["--timeout", "10s"])
            .arg(format!("{}{path}", net.base_url()))
            .output()
            .map_err(|e| format!("wrk: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "wrk {path} -c{conns}: {}\n{text}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        judge_wrk(&text, &format!("wrk {path} -c{conns}"))
    }
}

/// Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on
/// every x86 Linux).
const USER_HZ: f64 = 100.0;

/// The CPU time (user + system, in seconds) process `pid` has used: for
/// QEMU under TCG that is the guest's vCPU and its devices' emulation
/// (an idle vCPU halts and costs nothing), the same for either kernel.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis: state is field 3,
    // utime 14 and stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / USER_HZ)
}

/// Where the host's loads go in: QEMU's forwarded ports on the host's
/// loopback, or (`--tap`) the guest's own address from inside the
/// namespace that holds its tap.
enum HostNet<'a> {
    /// User networking: lighttpd's port and the port that tells the guest
    /// the host is done.
    User {
        port: u16,
        stop: u16,
    },
    Tap(&'a Netns),
}

impl HostNet<'_> {
    fn command(&self, program: &str) -> Command {
        match self {
            HostNet::User { .. } => Command::new(program),
            HostNet::Tap(ns) => ns.command(program),
        }
    }

    fn base_url(&self) -> String {
        match self {
            HostNet::User { port, .. } => format!("http://127.0.0.1:{port}"),
            HostNet::Tap(_) => format!("http://{TAP_ADDR}:80"),
        }
    }

    /// Tells the guest's init the host rows are done (a connection to
    /// its port 9); from the namespace through bash's /dev/tcp, which
    /// needs no other tool there.
    fn stop(&self) {
        match self {
            HostNet::User { stop, .. } => {
                let _ = std::net::TcpStream::connect(("127.0.0.1", *stop));
            }
            HostNet::Tap(_) => {
                let _ = self
                    .command("bash")
                    .args(["-c", &format!("exec 3<>/dev/tcp/{TAP_ADDR}/9")])
                    .status();
            }
        }
    }

    /// QEMU's NIC for this network.
    fn configure(&self, cfg: &mut Config) {
        match self {
            HostNet::User { port, stop } => {
                cfg.net = Some(Net::User(vec![(*port, 80), (*stop, 9)]))
            }
            HostNet::Tap(ns) => {
                cfg.net = Some(Net::Tap {
                    ifname: "tap0".into(),
                    mac: None,
                });
                cfg.netns = Some(ns.name.clone());
            }
        }
    }
}

/// wrk's output read as a result: a wrong answer is a failure; socket
/// errors (a connection that broke or timed out) are counted in the table.
fn judge_wrk(text: &str, what: &str) -> Result<Load, String> {
    if text.contains("Non-2xx") {
        return Err(format!("{what}: non-2xx answers\n{text}"));
    }
    parse_wrk(text).ok_or(format!("{what}: unreadable output\n{text}"))
}

/// The in-guest wrk runs from the console: for each row of `rows` (indexes
/// into `LOADS`), the output between `LOOPBACK-BEGIN ROW` and
/// `LOOPBACK-END ROW STATUS`, which must have exited 0.
fn parse_loopback(console: &str, rows: &[usize]) -> Result<Vec<Load>, String> {
    let console = console.replace("\r\n", "\n");
    let mut loads = Vec::new();
    for &row in rows {
        let what = format!("in-guest wrk, {}", LOADS[row].0);
        let begin = format!("LOOPBACK-BEGIN {row}\n");
        let start = console
            .find(&begin)
            .ok_or(format!("{what}: never started"))?
            + begin.len();
        let end_mark = format!("LOOPBACK-END {row} ");
        let len = console[start..]
            .find(&end_mark)
            .ok_or(format!("{what}: never finished"))?;
        let text = &console[start..start + len];
        let status = console[start + len + end_mark.len()..]
            .lines()
            .next()
            .unwrap_or("")
            .trim();
        if status != "0" {
            return Err(format!("{what}: exit status {status}\n{text}"));
        }
        loads.push(judge_wrk(text, &what)?);
    }
    Ok(loads)
}

struct System {
    name: &'static str,
    kernel: PathBuf,
    append: String,
    initrd: PathBuf,
}

/// The files served: a 612-byte page (the size of nginx's welcome page,
/// the usual small-file figure) and 1 MiB of pseudo-random bytes.
fn site(dir: &Path, o: &Options) -> Result<Vec<Addition>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let head = "<!DOCTYPE html>\n<html><head><title>RSE OS</title></head><body>\n";
    let tail = "</body></html>\n";
    let fill = 612 - head.len() - tail.len();
    let page = format!("{head}{}\n{tail}", "x".repeat(fill - 1));
    assert_eq!(page.len(), 612);
    let one = artifacts::noise(1 << 20, 0x2545_f491_4f6c_dd1d);
    let seconds = format!("{}\n", o.seconds);
    let loopback: String = o
        .loopback
        .iter()
        .map(|&i| format!("{i} {} {}\n", LOADS[i].1, LOADS[i].2))
        .collect();
    let addr = format!("{}\n", o.guest_addr());
    let files: [(&str, &[u8], &str); 7] = [
        ("index.html", page.as_bytes(), "/srv/www/index.html"),
        ("one.bin", &one, "/srv/www/one.bin"),
        ("init", INIT.as_bytes(), "/etc/rse/apps/init"),
        (
            "lighttpd.conf",
            CONFIG.as_bytes(),
            "/etc/rse/apps/lighttpd.conf",
        ),
        ("seconds", seconds.as_bytes(), "/etc/rse/apps/seconds"),
        ("loopback", loopback.as_bytes(), "/etc/rse/apps/loopback"),
        ("addr", addr.as_bytes(), "/etc/rse/apps/addr"),
    ];
    let mut adds = Vec::new();
    for (name, data, guest) in files {
        let host = dir.join(name);
        let mode = if name == "init" { 0o755 } else { 0o644 };
        artifacts::write_with_mode(&host, data, mode)?;
        adds.push(Addition {
            host,
            guest: guest.into(),
        });
    }
    Ok(adds)
}

/// Boots `sys`, runs every load, stops the guest; one result per load.
fn boot(sys: &System, wrk: &Wrk, o: &Options, ns: Option<&Netns>) -> Result<Vec<Load>, String> {
    let net = match ns {
        Some(ns) => HostNet::Tap(ns),
        None => HostNet::User {
            port: crate::net_scenarios::free_port()?,
            stop: crate::net_scenarios::free_port()?,
        },
    };
    let log = artifacts::out_dir().join(format!("kernel-apps-{}.log", std::process::id()));
    let mut cfg = Config::new(&sys.kernel, &log);
    cfg.machine = Machine::Pc;
    cfg.accel = Accel::Tcg;
    cfg.smp = o.smp;
    cfg.mem_mib = 1024;
    cfg.initrd = Some(sys.initrd.clone());
    cfg.append = sys.append.clone();
    cfg.ready_mark = "APPS-READY".into();
    net.configure(&mut cfg);
    let pidfile = artifacts::out_dir().join(format!("qemu-apps-{}.pid", std::process::id()));
    cfg.pidfile = Some(pidfile.clone());
    let (tx, rx) = mpsc::channel();
    let seconds = o.seconds;
    let loads_per_boot = (LOADS.len() + o.loopback.len()) as u64;
    let timeout = Duration::from_secs(300 + loads_per_boot * (u64::from(seconds) + 15));
    let (out, loads) = std::thread::scope(|s| {
        let net = &net;
        let pidfile = &pidfile;
        let host = s.spawn(move || -> Result<Vec<Load>, String> {
            rx.recv_timeout(Duration::from_secs(300))
                .map_err(|_| "the guest never printed APPS-READY".to_string())?;
            let qemu = std::fs::read_to_string(pidfile)
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok());
            let mut loads = Vec::new();
            let mut err = None;
            for (name, path, conns) in LOADS {
                eprintln!("bench apps:   {name}");
                let before = qemu.and_then(cpu_seconds);
                match wrk.run(net, path, *conns, seconds) {
                    Ok(mut l) => {
                        let after = qemu.and_then(cpu_seconds);
                        if let (Some(a), Some(b)) = (before, after) {
                            if l.requests > 0.0 {
                                l.cpu_us = Some((b - a) * 1e6 / l.requests);
                            }
                        }
                        loads.push(l)
                    }
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            // Tell the guest to stop whatever happened.
            net.stop();
            err.map_or(Ok(loads), Err)
        });
        let out = qemu::run_captured_notify(&cfg, timeout, false, Some(("APPS-READY".into(), tx)));
        (out, host.join())
    });
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&pidfile);
    let out = out.map_err(|e| format!("qemu: {e}"))?;
    let loads = loads.map_err(|_| "wrk thread panicked")?;
    let console = out.console_str();
    let mut loads = loads.map_err(|e| format!("{e}\n--- console ---\n{console}"))?;
    let inside = parse_loopback(&console, &o.loopback)
        .map_err(|e| format!("{e}\n--- console ---\n{console}"))?;
    loads.extend(inside);
    Ok(loads)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn table(results: &[Vec<Vec<Load>>; 2], o: &Options, linux_version: &str) -> String {
    let mut t = format!(
        "### Applications: Debian's lighttpd 1.4.69 (RSE OS vs Linux {linux_version})\n\n\
         qemu-system-x86_64 -M pc -accel tcg -cpu max -smp {} -m 1024M, {}; \
         rows marked \"in-guest loopback\": Debian's `wrk -t1 --latency` inside the guest \
         against 127.0.0.1:80 for as long, after the host rows of the same boot (no QEMU user \
         networking, but wrk shares the guest's vCPU(s) with lighttpd); \
         medians of {} boots per system.\n\n\
         \"QEMU CPU/req\": the CPU time of the QEMU process (the guest's vCPU and the \
         emulation of its devices) per request served, host rows only.\n\n\
         | load | Linux req/s | RSE OS req/s | ratio | Linux p50 / p99 | RSE OS p50 / p99 | Linux MB/s | RSE OS MB/s | QEMU CPU/req (Linux / RSE OS) | socket errors (Linux / RSE OS) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        o.smp,
        if o.tap {
            format!(
                "virtio-net on a tap bridged in a network namespace of the run's own, host \
                 `wrk -t1 --latency` for {} s per row from that namespace to the guest's \
                 {TAP_ADDR} (the host's TCP stack, no QEMU user networking)",
                o.seconds
            )
        } else {
            format!(
                "virtio-net on user networking, host `wrk -t1 --latency` for {} s per row \
                 through a forwarded port",
                o.seconds
            )
        },
        o.runs
    );
    // Each boot's loads: the host rows (`LOADS`), then the in-guest ones.
    let rows = LOADS.iter().map(|l| l.0.to_string()).chain(
        o.loopback
            .iter()
            .map(|&i| format!("{}, in-guest loopback", LOADS[i].0)),
    );
    for (i, name) in rows.enumerate() {
        let col = |sys: usize, f: fn(&Load) -> f64| {
            median(
                results[sys]
                    .iter()
                    .filter_map(|b| b.get(i))
                    .map(f)
                    .collect(),
            )
        };
        let num = |v: Option<f64>, digits: usize| {
            v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
        };
        let lat = |sys: usize| match (col(sys, |l| l.p50_us), col(sys, |l| l.p99_us)) {
            (Some(a), Some(b)) => format!("{:.2} / {:.2} ms", a / 1e3, b / 1e3),
            _ => "n/a".into(),
        };
        let (lr, rr) = (col(0, |l| l.rps), col(1, |l| l.rps));
        let ratio = match (lr, rr) {
            (Some(l), Some(r)) if l > 0.0 => format!("{:.2}×", r / l),
            _ => "n/a".into(),
        };
        let cpu = |sys: usize| {
            let v = median(
                results[sys]
                    .iter()
                    .filter_map(|b| b.get(i).and_then(|l| l.cpu_us))
                    .collect(),
            );
            v.map_or("–".to_string(), |v| format!("{v:.0} µs"))
        };
        t += &format!(
            "| {name} | {} | {} | {ratio} | {} | {} | {} | {} | {} / {} | {} / {} |\n",
            num(lr, 0),
            num(rr, 0),
            lat(0),
            lat(1),
            num(col(0, |l| l.mbps), 1),
            num(col(1, |l| l.mbps), 1),
            cpu(0),
            cpu(1),
            num(col(0, |l| l.errors), 0),
            num(col(1, |l| l.errors), 0),
        );
    }
    t
}

pub fn apps(args: &[String]) -> Result<i32, String> {
    let o = parse(args)?;
    crate::deps::ensure(&[&crate::deps::QEMU, &crate::deps::BUSYBOX])?;
    let ns = if o.tap {
        if !crate::deps::is_root() {
            return Err("--tap needs root (a network namespace and a tap)".into());
        }
        let ns = Netns::create(1)?;
        ns.address_bridge(&format!("{TAP_HOST}/24"))?;
        Some(ns)
    } else {
        None
    };
    let wrk = Wrk::fetch()?;
    let (vmlinuz, version) = super::linux::kernel()?;
    let rse = artifacts::build_kernel()?;
    let dir = artifacts::out_dir().join(format!("apps-{}", std::process::id()));
    let mut adds = site(&dir, &o)?;
    // wrk in the root too: the in-guest loopback client.
    let pkgs = vec!["lighttpd".to_string(), "wrk".to_string()];
    let rse_initrd = artifacts::build_initramfs(
        None,
        &adds,
        &pkgs,
        &format!("initramfs-apps-rse-{}.cpio", std::process::id()),
    )?;
    let modules = super::linux::modules(&version);
    let mut list = String::new();
    for m in &modules {
        let guest = format!(
            "/lib/modules/{version}/{}",
            m.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        list += &format!("{guest}\n");
        adds.push(Addition {
            host: m.clone(),
            guest,
        });
    }
    let list_file = dir.join("modules");
    std::fs::write(&list_file, list).map_err(|e| format!("{}: {e}", list_file.display()))?;
    adds.push(Addition {
        host: list_file,
        guest: "/etc/rse/apps/modules".into(),
    });
    let linux_initrd = artifacts::build_initramfs(
        None,
        &adds,
        &pkgs,
        &format!("initramfs-apps-linux-{}.cpio", std::process::id()),
    )?;
    let systems = [
        System {
            name: "Linux",
            kernel: vmlinuz,
            append: "console=ttyS0 quiet loglevel=0 panic=-1 rdinit=/etc/rse/apps/init".into(),
            initrd: linux_initrd,
        },
        System {
            name: "RSE OS",
            kernel: rse,
            append: if o.tap {
                format!("quiet rdinit=/etc/rse/apps/init ip={TAP_ADDR}::{TAP_HOST}:255.255.255.0")
            } else {
                "quiet rdinit=/etc/rse/apps/init".into()
            },
            initrd: rse_initrd,
        },
    ];
    let mut results: [Vec<Vec<Load>>; 2] = Default::default();
    let mut failures = Vec::new();
    for run in 0..o.runs {
        for (i, sys) in systems.iter().enumerate() {
            eprintln!("bench apps: run {}/{} on {}", run + 1, o.runs, sys.name);
            match boot(sys, &wrk, &o, ns.as_ref()) {
                Ok(l) => results[i].push(l),
                Err(e) => failures.push(format!("{}: {e}", sys.name)),
            }
        }
    }
    for s in &systems {
        let _ = std::fs::remove_file(&s.initrd);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let text = table(&results, &o, &version);
    println!("{text}");
    if o.write {
        let name = if o.tap {
            "docs/benchmarks-apps-tap.md"
        } else {
            "docs/benchmarks-apps.md"
        };
        let path = artifacts::root().join(name);
        std::fs::write(&path, format!("{text}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("bench apps: wrote {}", path.display());
    }
    if failures.is_empty() {
        Ok(0)
    } else {
        Err(format!("some boots failed:\n{}", failures.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let out = "Running 2s test @ http://127.0.0.1:1/index.html
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.70ms    1.03ms  12.61ms   85.13%
    Req/Sec     5.93k   312.09     6.37k    80.00%
  Latency Distribution
     50%    2.51ms
     75%    3.02ms
     90%    3.70ms
     99%    5.80ms
  11801 requests in 2.00s, 8.95MB read
Requests/sec:   5900.40
Transfer/sec:      4.47MB
";
        let l = parse_wrk(out).expect("parsed");
        assert_eq!(l.rps, 5900.40);
        assert!((l.p50_us - 2510.0).abs() < 1e-6);
        assert!((l.p99_us - 5800.0).abs() < 1e-6);
        assert!((l.mbps - 4.47).abs() < 1e-9);
        assert_eq!(l.errors, 0.0);
        assert_eq!(l.requests, 11801.0);
        let with_errors = out.replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 15, write 1, timeout 2\nRequests/sec",
        );
        assert_eq!(parse_wrk(&with_errors).map(|l| l.errors), Some(18.0));
        assert_eq!(duration_us("812.00us"), Some(812.0));
        assert!(parse_wrk("Requests/sec: 1\n").is_none());
    }

    #[test]
    fn reads_a_process_cpu_time() {
        // This test's own process has run for some CPU time; a process
        // that does not exist has none.
        let me = std::process::id();
        let t = cpu_seconds(me).expect("own /proc/PID/stat");
        assert!(t >= 0.0);
        assert_eq!(cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn reads_in_guest_runs_from_the_console() {
        let wrk = "Running 1s test @ http://127.0.0.1:80/index.html\r
  1 threads and 16 connections\r
  Latency Distribution\r
     50%  732.00us\r
     99%    3.52ms\r
Requests/sec:   7357.12\r
Transfer/sec:      1.18MB\r
";
        let console = format!(
            "APPS-READY\r\nLOOPBACK-BEGIN 1\r\n{wrk}LOOPBACK-END 1 0\r\n\
             LOOPBACK-BEGIN 3\r\n{wrk}LOOPBACK-END 3 0\r\nAPPS-DONE 0\r\n"
        );
        let loads = parse_loopback(&console, &[1, 3]).expect("parsed");
        assert_eq!(loads.len(), 2);
        assert_eq!(loads[1].rps, 7357.12);
        assert!((loads[0].p99_us - 3520.0).abs() < 1e-6);
        // A row that never ran, a failed wrk and a wrong answer all fail.
        assert!(parse_loopback(&console, &[2]).is_err());
        let failed = console.replace("LOOPBACK-END 3 0", "LOOPBACK-END 3 1");
        assert!(parse_loopback(&failed, &[1, 3]).is_err());
        let wrong = console.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 12\r\nRequests/sec",
        );
        assert!(parse_loopback(&wrong, &[1]).is_err());
    }
}
