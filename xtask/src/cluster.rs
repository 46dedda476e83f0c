//! `cargo xtask cluster`: N RSE OS VMs on one Linux bridge, inside a
//! network namespace of their own.
//!
//! As root, xtask creates the namespace `rse-cluster-PID` (`ip netns
//! add`), a bridge `br0` and one tap `tapK` per node in it, and starts
//! every QEMU inside it (`ip netns exec NS qemu-system-x86_64 …`, which
//! execs QEMU: the pid we hold is QEMU's). The bridge has no address and
//! the namespace no other interface, so guest traffic reaches only the
//! other guests: nothing leaves the namespace. Node K gets the MAC
//! 52:54:00:c1:00:K, the static address 10.77.0.(K+1)/24 (`ip=`) and the
//! list of every node's address (`cluster.node=K cluster.peers=…`).
//!
//! Node 0's console is this terminal, or with `--exec CMD` runs CMD and
//! prints its output (the exit status is CMD's); the other nodes run
//! `--others CMD` (default: a shell on a console nobody types into), their
//! consoles in `target/cluster/nodeK.console`. Every node's kernel log is
//! `target/cluster/nodeK.log`. `--kill K@S` SIGKILLs node K's QEMU S
//! seconds after every node has started init (a machine dying
//! mid-instruction). When node 0 ends, xtask kills the QEMUs it started
//! (by pid, never by name) and deletes the namespace; a namespace left by
//! an xtask that was itself killed is deleted by the next run (its pid is
//! gone).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::artifacts::{self, Addition};
use crate::cluster_faults::{self, Action, Fault};
use crate::deps;
use crate::qemu::{self, Accel, Config, Net};

/// Prefix of the namespaces we create (then the xtask pid).
const NS_PREFIX: &str = "rse-cluster-";
/// Most nodes (one /24, MAC bytes, the kernel's ring of at most 64).
pub const MAX_NODES: usize = 16;
/// The kernel log line that says a node has booted.
const BOOTED: &str = "boot: init started";

/// Node `k`'s address inside the namespace.
pub fn addr(k: usize) -> String {
    format!("10.77.0.{}", k + 1)
}

/// Node `k`'s MAC.
pub fn mac(k: usize) -> String {
    format!("52:54:00:c1:00:{k:02x}")
}

/// Where the cluster's logs go.
pub fn dir() -> PathBuf {
    artifacts::root().join("target/cluster")
}

/// Node `k`'s kernel log.
pub fn log_path(k: usize) -> PathBuf {
    dir().join(format!("node{k}.log"))
}

/// Options of `cargo xtask cluster`.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    pub nodes: usize,
    pub smp: Option<u32>,
    pub mem: Option<u32>,
    pub accel: Option<Accel>,
    /// Node 0 runs this (and its status is ours).
    pub exec: Option<String>,
    /// Every other node runs this.
    pub others: Option<String>,
    /// Kills, revivals and partitions, in seconds after all booted.
    pub faults: Vec<Fault>,
    /// With (TEXT, N), the faults' seconds count from when node 0's kernel
    /// log has TEXT N times (and every node has booted), for scenarios
    /// whose fault must hit a state, not a time.
    pub faults_after: Option<(String, usize)>,
    /// Give up after this long (with --exec; default 600 s).
    pub timeout: Option<u64>,
    /// Extra kernel command-line words for every node.
    pub append: Vec<String>,
    /// Extra words for one node (scenarios: node, words).
    pub node_append: Vec<(usize, String)>,
    /// Show node 0's kernel log on its console too (with --exec).
    pub log: bool,
    /// Files for the initramfs besides the test programs.
    pub adds: Vec<Addition>,
}

impl Opts {
    /// The scenarios' cluster: 3 nodes of 1 CPU; node 0 runs `exec`, the
    /// others idle.
    pub fn three_nodes(exec: String) -> Opts {
        Opts {
            nodes: 3,
            smp: Some(1),
            exec: Some(exec),
            others: Some("sleep 100000".into()),
            ..Opts::default()
        }
    }

    pub fn parse(args: &[String]) -> Result<Opts, String> {
        let mut o = Opts {
            nodes: 2,
            ..Opts::default()
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--nodes" => o.nodes = val()?.parse().map_err(|_| "--nodes needs a number")?,
                "--smp" => o.smp = Some(val()?.parse().map_err(|_| "--smp needs a number")?),
                "--mem" => o.mem = Some(val()?.parse().map_err(|_| "--mem needs MiB")?),
                "--accel" => o.accel = Some(Accel::parse(&val()?)?),
                "--exec" => o.exec = Some(val()?),
                "--others" => o.others = Some(val()?),
                "--kill" | "--revive" | "--partition" => {
                    o.faults.extend(cluster_faults::parse(a, &val()?)?)
                }
                "--timeout" => {
                    o.timeout = Some(val()?.parse().map_err(|_| "--timeout needs seconds")?)
                }
                "--append" => o.append.push(val()?),
                "--add" => o.adds.push(Addition::parse(&val()?)?),
                "--log" => o.log = true,
                _ => return Err(format!("unknown option {a}\n{}", crate::USAGE)),
            }
        }
        o.check()?;
        Ok(o)
    }

    fn check(&self) -> Result<(), String> {
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return Err(format!("--nodes must be 1..={MAX_NODES}"));
        }
        cluster_faults::check(&self.faults, self.nodes)
    }
}

/// The namespace, its bridge and taps; deleted (with all of them) on drop.
pub struct Netns {
    pub name: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// `rse-cluster-PID` with `br0` and `tap0..tapN-1` on it, all up.
    pub fn create(nodes: usize) -> Result<Netns, String> {
        sweep_stale();
        let name = format!("{NS_PREFIX}{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        let n = ns.name.as_str();
        // No IPv6 in here: the host side would send router solicitations
        // and MLD reports to every tap as it comes up, frames the guests
        // (IPv4 only) have no use for, arriving while their NICs start.
        // RSE OS sometimes takes no frame after such an early one (see
        // crates/hal/src/virtio_net.rs, used_event_published).
        let off = Command::new("ip")
            .args(["netns", "exec", n, "sysctl", "-q", "-w"])
            .args([
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ])
            .status()
            .map_err(|e| format!("sysctl: {e}"))?;
        if !off.success() {
            return Err("sysctl disable_ipv6 in the namespace failed".into());
        }
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        ip(&["-n", n, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", n, "link", "set", "br0", "up"])?;
        for k in 0..nodes {
            let tap = format!("tap{k}");
            ip(&["-n", n, "tuntap", "add", "dev", &tap, "mode", "tap"])?;
            ip(&["-n", n, "link", "set", &tap, "master", "br0"])?;
            ip(&["-n", n, "link", "set", &tap, "up"])?;
        }
        Ok(ns)
    }

    /// Gives the bridge an address (`CIDR`, e.g. 10.77.0.1/24): the host's
    /// side of the namespace, for programs run there that talk to guests.
    pub fn address_bridge(&self, cidr: &str) -> Result<(), String> {
        ip(&["-n", &self.name, "addr", "add", cidr, "dev", "br0"])
    }

    /// A command that runs `program` inside the namespace (`ip netns
    /// exec` execs it, so the child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its bridge and taps.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("xtask: {e}");
        }
    }
}

/// Deletes namespaces of ours whose xtask is gone (killed before it could
/// clean up). Another live xtask's namespace is left alone.
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// How a cluster run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Node 0's console (with --exec).
    pub console: String,
    /// CMD's exit status on node 0, from its kernel log.
    pub status: Option<i32>,
    pub timed_out: bool,
    /// Every node's kernel log, read at the end.
    pub logs: Vec<String>,
    /// (node, host time from all booted to the SIGKILL).
    pub killed: Vec<(usize, Duration)>,
    /// Every fault carried out, with the host time from all booted.
    pub faults: Vec<(Fault, Duration)>,
    /// (node, host time from its SIGKILL until node 0's kernel log said
    /// it left the view).
    pub detected: Vec<(usize, Duration)>,
}

impl Outcome {
    /// Node 0's log with a message saying how the run went (for a failed
    /// scenario).
    pub fn explain(&self, why: &str) -> String {
        let mut s = format!(
            "{why} (status {:?}, timed out {})\n--- node 0 console ---\n{}--- end ---\n",
            self.status, self.timed_out, self.console
        );
        for (k, log) in self.logs.iter().enumerate() {
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            s += &format!("--- node {k} kernel log (last lines) ---\n");
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }
}

fn node_config(
    o: &Opts,
    k: usize,
    kernel: &Path,
    initrd: &Path,
    exec: bool,
) -> Result<Config, String> {
    let mut cfg = Config::new(kernel, &log_path(k));
    cfg.initrd = Some(initrd.to_path_buf());
    if let Some(a) = o.accel {
        cfg.accel = a;
    }
    cfg.smp = o.smp.unwrap_or(2);
    cfg.mem_mib = o.mem.unwrap_or(512);
    cfg.net = Some(Net::Tap {
        ifname: format!("tap{k}"),
        mac: Some(mac(k)),
    });
    let peers: Vec<String> = (0..o.nodes).map(addr).collect();
    let mut words = vec![
        format!("ip={}", addr(k)),
        format!("cluster.node={k}"),
        format!("cluster.peers={}", peers.join(",")),
    ];
    words.extend(o.append.iter().cloned());
    words.extend(
        o.node_append
            .iter()
            .filter(|(n, _)| *n == k)
            .map(|(_, w)| w.clone()),
    );
    if exec {
        words.push("exec".into());
        if !(o.log && k == 0) {
            words.push("quiet".into());
        }
    }
    cfg.append = words.join(" ");
    Ok(cfg)
}

/// A started node: its QEMU and, for a node whose console nobody types
/// into, the write end of its stdin (held so that its shell waits).
struct Node {
    child: Child,
    _stdin: Option<std::process::ChildStdin>,
    dead: bool,
}

/// What booting a node needs (at the start, and again for `--revive`).
struct Launch<'a> {
    o: &'a Opts,
    kernel: &'a Path,
    /// Node 0's initramfs, and the others'.
    first: &'a Path,
    rest: &'a Path,
    ns: &'a Netns,
}

/// Node 0's console output, collected by a thread (and echoed).
type Reader = std::thread::JoinHandle<Vec<u8>>;

impl Launch<'_> {
    /// Boots node `k` (again, when `revived`: its console is appended to).
    fn spawn(&self, k: usize, echo: bool, revived: bool) -> Result<(Node, Option<Reader>), String> {
        let o = self.o;
        let interactive = o.exec.is_none();
        let (initrd, exec) = if k == 0 {
            (self.first, o.exec.is_some())
        } else {
            (self.rest, o.others.is_some())
        };
        let cfg = node_config(o, k, self.kernel, initrd, exec)?;
        let mut cmd = self.ns.command(qemu::qemu_binary());
        cmd.args(cfg.args());
        if k == 0 && interactive {
            // The terminal is node 0's console.
        } else if k == 0 {
            cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        } else {
            let con = dir().join(format!("node{k}.console"));
            let f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(revived)
                .truncate(!revived)
                .open(&con)
                .map_err(|e| format!("{}: {e}", con.display()))?;
            cmd.stdin(Stdio::piped()).stdout(f);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("ip netns exec qemu: {e}"))?;
        let mut reader = None;
        if k == 0 && !interactive {
            let mut out = child.stdout.take().expect("piped stdout");
            reader = Some(std::thread::spawn(move || {
                let mut all = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if echo {
                        use std::io::Write;
                        let mut so = std::io::stdout();
                        let _ = so.write_all(&buf[..n]);
                        let _ = so.flush();
                    }
                    all.extend_from_slice(&buf[..n]);
                }
                all
            }));
        }
        let stdin = child.stdin.take();
        let node = Node {
            child,
            _stdin: stdin,
            dead: false,
        };
        Ok((node, reader))
    }
}

/// `cargo xtask cluster`.
pub fn main(args: &[String]) -> Result<i32, String> {
    let o = Opts::parse(args)?;
    let out = run(&o, true)?;
    if o.exec.is_none() {
        return Ok(0);
    }
    if out.timed_out {
        return Err("timed out".into());
    }
    out.status
        .ok_or_else(|| out.explain("node 0 did not report an exit status"))
}

/// Boots the cluster, runs node 0 to its end (echoing its console when
/// `echo`), and tears everything down.
pub fn run(o: &Opts, echo: bool) -> Result<Outcome, String> {
    o.check()?;
    deps::ensure(&[&deps::QEMU, &deps::BUSYBOX, &deps::IPROUTE2])?;
    if !deps::is_root() {
        return Err("cargo xtask cluster needs root (network namespace, bridge, taps)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing (modprobe tun)".into());
    }
    let kernel = artifacts::build_kernel()?;
    let mut adds: Vec<Addition> = crate::userland::build_user_programs()?
        .into_iter()
        .map(|(host, guest)| Addition { host, guest })
        .collect();
    adds.extend(o.adds.iter().cloned());
    let pid = std::process::id();
    let first = artifacts::build_initramfs(
        o.exec.as_deref(),
        &adds,
        &[],
        &format!("initramfs-cluster0-{pid}.cpio"),
    )?;
    let rest = artifacts::build_initramfs(
        o.others.as_deref(),
        &adds,
        &[],
        &format!("initramfs-cluster-{pid}.cpio"),
    )?;
    std::fs::create_dir_all(dir()).map_err(|e| format!("{}: {e}", dir().display()))?;
    let ns = Netns::create(o.nodes)?;
    let start = Instant::now();
    let mut nodes: Vec<Node> = Vec::new();
    let mut reader = None;
    let interactive = o.exec.is_none();
    let launch = Launch {
        o,
        kernel: &kernel,
        first: &first,
        rest: &rest,
        ns: &ns,
    };
    let spawned = (|| -> Result<(), String> {
        for k in 0..o.nodes {
            let _ = std::fs::remove_file(log_path(k));
            let (node, r) = launch.spawn(k, echo, false)?;
            if r.is_some() {
                reader = r;
            }
            nodes.push(node);
        }
        Ok(())
    })();
    if interactive && spawned.is_ok() {
        eprintln!(
            "xtask: {} nodes in namespace {} (10.77.0.1..{}); node 0 is this console; logs in {}",
            o.nodes,
            ns.name,
            o.nodes,
            dir().display()
        );
    }
    let mut outcome = Outcome::default();
    if spawned.is_ok() {
        supervise(&launch, &mut nodes, start, &mut outcome, echo);
    }
    // Stop what we started, by pid.
    for n in nodes.iter_mut() {
        if n.child.try_wait().ok().flatten().is_none() {
            let _ = n.child.kill();
        }
        let _ = n.child.wait();
    }
    drop(ns);
    spawned?;
    if let Some(r) = reader {
        outcome.console = String::from_utf8_lossy(&r.join().unwrap_or_default()).into_owned();
    }
    outcome.logs = (0..o.nodes)
        .map(|k| std::fs::read_to_string(log_path(k)).unwrap_or_default())
        .collect();
    outcome.status = outcome.logs[0]
        .lines()
        .rev()
        .find_map(|l| l.split("init exited: status=").nth(1))
        .and_then(|s| s.trim().parse().ok());
    Ok(outcome)
}

/// Waits for node 0 to end, carrying out the faults on time; says when
/// every node has booted and each fault happened.
fn supervise(l: &Launch, nodes: &mut [Node], start: Instant, out: &mut Outcome, echo: bool) {
    let o = l.o;
    let timeout = Duration::from_secs(o.timeout.unwrap_or(600));
    let mut booted: Option<Instant> = None;
    let mut faults = o.faults.clone();
    faults.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mut faults = std::collections::VecDeque::from(faults);
    // Killed nodes whose departure node 0 has not logged yet: (node,
    // SIGKILL time, departures of it node 0 had logged before).
    let mut watching: Vec<(usize, Instant, usize)> = Vec::new();
    let departures = |k: usize| {
        let log = std::fs::read_to_string(log_path(0)).unwrap_or_default();
        log.matches(&format!("cluster: machine {k} left the view"))
            .count()
    };
    loop {
        if !watching.is_empty() {
            watching.retain(|&(k, at, before)| {
                let seen = departures(k) > before;
                if seen {
                    out.detected.push((k, at.elapsed()));
                    if echo {
                        eprintln!(
                            "xtask: node 0 saw node {k} leave the view {} ms after its SIGKILL (host time)",
                            at.elapsed().as_millis()
                        );
                    }
                }
                !seen
            });
        }
        if nodes[0].dead || matches!(nodes[0].child.try_wait(), Ok(Some(_))) {
            return;
        }
        if o.exec.is_some() && start.elapsed() > timeout {
            out.timed_out = true;
            return;
        }
        if booted.is_none()
            && (0..nodes.len())
                .all(|k| std::fs::read_to_string(log_path(k)).is_ok_and(|l| l.contains(BOOTED)))
            && o.faults_after.as_ref().is_none_or(|(text, n)| {
                std::fs::read_to_string(log_path(0))
                    .is_ok_and(|l| l.matches(text.as_str()).count() >= *n)
            })
        {
            booted = Some(Instant::now());
            if echo && !faults.is_empty() {
                eprintln!(
                    "xtask: all {} nodes booted after {:.1} s",
                    nodes.len(),
                    start.elapsed().as_secs_f64()
                );
            }
        }
        if let Some(t0) = booted {
            while faults
                .front()
                .is_some_and(|f| t0.elapsed().as_secs_f64() >= f.at)
            {
                let Some(f) = faults.pop_front() else {
                    break;
                };
                let at = t0.elapsed();
                let k = f.node;
                let what = match f.action {
                    Action::Kill => {
                        let n = &mut nodes[k];
                        // Child::kill is SIGKILL to this pid: QEMU itself
                        // (ip netns exec exec'd it).
                        let _ = n.child.kill();
                        let killed_at = Instant::now();
                        let _ = n.child.wait();
                        n.dead = true;
                        if k != 0 {
                            watching.push((k, killed_at, departures(k)));
                        }
                        out.killed.push((k, at));
                        format!("SIGKILL to node {k} (QEMU pid {})", n.child.id())
                    }
                    Action::Revive => {
                        // The dead incarnation's log is kept beside.
                        let _ = std::fs::rename(
                            log_path(k),
                            dir().join(format!("node{k}.before-revive.log")),
                        );
                        match l.spawn(k, echo, true) {
                            Ok((n, _)) => {
                                nodes[k] = n;
                                format!("node {k} booted again (QEMU pid {})", nodes[k].child.id())
                            }
                            Err(e) => format!("node {k} could not be booted again: {e}"),
                        }
                    }
                    Action::Partition | Action::Heal => {
                        let tap = format!("tap{k}");
                        let r = if f.action == Action::Partition {
                            ip(&["-n", &l.ns.name, "link", "set", &tap, "nomaster"])
                        } else {
                            ip(&["-n", &l.ns.name, "link", "set", &tap, "master", "br0"])
                        };
                        match (r, f.action) {
                            (Err(e), _) => e,
                            (Ok(()), Action::Partition) => format!("node {k}'s tap off the bridge"),
                            (Ok(()), _) => format!("node {k}'s tap back on the bridge"),
                        }
                    }
                };
                out.faults.push((f, at));
                if echo {
                    eprintln!("xtask: {what} {:.2} s after boot", at.as_secs_f64());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Scenario: 2 nodes; node 1 echoes UDP, node 0 pings it through the
/// bridge (`rsetest udp_ping`), 20 datagrams of up to 1200 bytes.
pub fn udp_ping_scenario() -> Result<(), String> {
    let o = Opts {
        nodes: 2,
        smp: Some(1),
        exec: Some(format!("/usr/bin/rsetest udp_ping {} 7000 20", addr(1))),
        others: Some("/usr/bin/rsetest udp_ping serve 7000".into()),
        timeout: Some(300),
        ..Opts::default()
    };
    let out = run(&o, false)?;
    if out.timed_out {
        return Err(out.explain("timed out"));
    }
    let passed = out.console.contains("PASS udp_ping") && !out.console.contains("FAIL");
    if out.status != Some(0) || !passed {
        return Err(out.explain("node 0's udp_ping did not pass"));
    }
    Ok(())
}

/// A guest shell snippet: wait (up to 90 s) until /proc/braid lists
/// `tori` tori up, across machines, then print it after a marker line.
fn wait_for_tori(tori: usize) -> String {
    wait_then_show(
        &format!(
            "[ \"$(grep -c '^torus [0-9]*\\.[A-Z] [0-9]* [0-9]* up ' /proc/braid)\" -ge {tori} ]"
        ),
        "/proc/braid",
    )
}

/// The last /proc/braid printed on a console (after the marker).
fn last_braid(console: &str) -> Option<&str> {
    console.rsplit_once("--- /proc/braid").map(|(_, b)| b)
}

/// Checks that a /proc/braid lists every torus (A..) of every machine
/// (0..nodes) up, and the view has them all.
fn lists_all(braid: &str, nodes: usize, smp: usize) -> Result<(), String> {
    let ls: Vec<&str> = braid.lines().map(str::trim_end).collect();
    let members: Vec<String> = (0..nodes).map(|m| m.to_string()).collect();
    let members = format!(" members {} ", members.join(","));
    if !ls
        .iter()
        .any(|l| l.starts_with("cluster machine") && l.contains(&members))
    {
        return Err(format!("no view with{members}"));
    }
    for m in 0..nodes {
        for t in 0..smp {
            let name = format!("torus {m}.{} {m} ", (b'A' + t as u8) as char);
            if !ls
                .iter()
                .any(|l| l.starts_with(&name) && l.contains(" up "))
            {
                return Err(format!("no line `{name}… up`"));
            }
        }
    }
    Ok(())
}

/// Scenario: 3 nodes of 2 CPUs; every node's /proc/braid comes to list
/// the 6 tori of the 3 machines (the machine ring's view has all three,
/// and each machine's roster reached the others).
pub fn braid_scenario() -> Result<(), String> {
    let (nodes, smp) = (3, 2);
    let wait = wait_for_tori(nodes * smp);
    let o = Opts {
        nodes,
        smp: Some(smp as u32),
        // Node 0 waits a little more so the others have printed theirs.
        exec: Some(format!("{wait}; sleep 4")),
        others: Some(format!("{wait}; sleep 100000")),
        timeout: Some(300),
        ..Opts::default()
    };
    let out = run(&o, false)?;
    if out.timed_out || out.status != Some(0) {
        return Err(out.explain("node 0 did not see the whole cluster"));
    }
    for k in 0..nodes {
        let console = if k == 0 {
            out.console.clone()
        } else {
            std::fs::read_to_string(dir().join(format!("node{k}.console"))).unwrap_or_default()
        };
        let Some(b) = last_braid(&console) else {
            return Err(out.explain(&format!("node {k} printed no /proc/braid")));
        };
        lists_all(b, nodes, smp)
            .map_err(|e| out.explain(&format!("node {k}'s /proc/braid: {e}:\n{b}")))?;
    }
    Ok(())
}

/// Scenario: 3 nodes; once every node's /proc/braid lists the whole
/// cluster, node 1's QEMU is SIGKILLed. Its successor (node 2) must
/// declare it failed, and node 0's /proc/braid must show it gone, its
/// tori no longer listed, within 1 s of node 0's guest time after the
/// last frame node 1 sent it.
pub fn kill_scenario() -> Result<(), String> {
    let (nodes, smp) = (3, 2);
    let wait = wait_for_tori(nodes * smp);
    let gone = format!(
        "n=$(grep -c '^departure machine 1 ' /proc/braid); {}",
        wait_then_show(
            "grep -q '^1 [0-9.]* gone ' /proc/braid && \
             [ \"$(grep -c '^departure machine 1 ' /proc/braid)\" -gt $n ]",
            "after the kill"
        )
    );
    let o = Opts {
        nodes,
        smp: Some(smp as u32),
        exec: Some(format!("{wait} && {gone}")),
        others: Some(format!("{wait}; sleep 100000")),
        faults: cluster_faults::parse("--kill", "1@10")?,
        timeout: Some(300),
        ..Opts::default()
    };
    let out = run(&o, false)?;
    if out.timed_out || out.status != Some(0) {
        return Err(out.explain("node 0 did not see node 1 leave"));
    }
    let Some((before, after)) = out.console.split_once("--- after the kill") else {
        return Err(out.explain("no /proc/braid after the kill"));
    };
    let before = last_braid(before).unwrap_or("");
    lists_all(before, nodes, smp).map_err(|e| out.explain(&format!("before the kill: {e}")))?;
    let ls: Vec<&str> = after.lines().map(str::trim_end).collect();
    if !ls
        .iter()
        .any(|l| l.starts_with("cluster machine 0 ") && l.contains(" members 0,2 "))
    {
        return Err(out.explain("the view after the kill is not {0,2}"));
    }
    if ls.iter().any(|l| l.starts_with("torus 1.")) {
        return Err(out.explain("machine 1's tori are still listed"));
    }
    for m in [0, 2] {
        for t in 0..smp {
            let name = format!("torus {m}.{} {m} ", (b'A' + t as u8) as char);
            if !ls.iter().any(|l| l.starts_with(&name)) {
                return Err(out.explain(&format!("{name}is no longer listed")));
            }
        }
    }
    // The departure's silence, as node 0 measured it (guest time).
    if out.killed.is_empty() {
        return Err(out.explain("node 0 saw machine 1 leave before it was killed"));
    }
    let silent_ms: Option<f64> = ls
        .iter()
        .rfind(|l| l.starts_with("departure machine 1 "))
        .and_then(|l| l.split(" silent_ms ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok());
    let Some(silent_ms) = silent_ms else {
        return Err(out.explain("no departure line for machine 1"));
    };
    if silent_ms >= 1000.0 {
        return Err(out.explain(&format!(
            "node 0 saw machine 1 leave {silent_ms} ms after its last frame (want < 1000)"
        )));
    }
    // Its successor declared it failed (the detector, not a bystander).
    if !out.logs[2].contains("machine 1 declared failed by this machine") {
        return Err(out.explain("node 2 (node 1's successor) did not declare it failed"));
    }
    eprintln!(
        "  node 1 killed: node 0 saw it leave {silent_ms} ms after its last frame (guest); host: {:?}",
        out.detected
    );
    Ok(())
}

/// A guest shell snippet for node 0: wait until its view holds machines
/// 0, 1 and 2, then print `--- formed` and /proc/braid.
pub(crate) fn wait_formed() -> String {
    wait_then_show(
        "grep -q '^cluster machine 0 .* members 0,1,2 ' /proc/braid",
        "formed",
    )
}

/// A guest shell snippet for node 0: wait (up to 90 s) until the shell
/// condition `cond` holds, then print `--- NAME` and /proc/braid.
pub(crate) fn wait_then_show(cond: &str, name: &str) -> String {
    format!(
        "i=0; until {cond}; do i=$((i+1)); if [ $i -gt 900 ]; then echo 'never: {name}'; \
         cat /proc/braid; exit 1; fi; sleep 0.1; done; echo '--- {name}'; cat /proc/braid"
    )
}

/// How many times a node's kernel log says its machine was fenced.
fn times_fenced(log: &str) -> usize {
    log.matches("this machine was declared failed; rejoining")
        .count()
}

/// Scenario: 3 nodes of 1 CPU. Node 1 is killed and booted again: it
/// comes back with the incarnation it always boots with, is fenced by
/// its successor (that incarnation was declared failed) and rejoins as a
/// new one. Then node 2's tap leaves the bridge for 5 s: its successor
/// declares it failed, and when the link is back it is fenced and
/// rejoins. Node 0 must see each machine leave and come back, and no
/// machine may be fenced but those two, once each (a live machine taken
/// for dead would lose its processes).
pub fn revive_partition_scenario() -> Result<(), String> {
    let in_view = |m: usize| {
        format!(
            "grep -q '^cluster machine 0 .* members 0,1,2 ' /proc/braid && \
             grep -q '^torus {m}\\.A {m} [0-9]* up ' /proc/braid"
        )
    };
    let left = |m: usize| format!("grep -q '^departure machine {m} ' /proc/braid");
    let steps = [
        wait_then_show(&format!("{} && {}", in_view(1), in_view(2)), "formed"),
        wait_then_show(&left(1), "1 killed"),
        wait_then_show(&in_view(1), "1 revived"),
        wait_then_show(&left(2), "2 cut off"),
        wait_then_show(&in_view(2), "2 healed"),
    ];
    let mut faults = cluster_faults::parse("--kill", "1@8")?;
    faults.extend(cluster_faults::parse("--revive", "1@12")?);
    faults.extend(cluster_faults::parse("--partition", "2@30+5")?);
    let o = Opts {
        faults,
        timeout: Some(400),
        ..Opts::three_nodes(steps.join(" && "))
    };
    let out = run(&o, false)?;
    if out.timed_out || out.status != Some(0) {
        return Err(out.explain("node 0 did not see every departure and return"));
    }
    if out.faults.len() != 4 {
        return Err(out.explain(&format!("{} of 4 faults carried out", out.faults.len())));
    }
    for (k, want) in [(0, 0), (1, 1), (2, 1)] {
        let got = times_fenced(&out.logs[k]);
        if got != want {
            return Err(out.explain(&format!(
                "node {k} was fenced {got} times (want {want}: only a revived or cut-off machine rejoins)"
            )));
        }
    }
    if !out.logs[1].contains("this machine joined the ring") {
        return Err(out.explain("the revived node 1 never joined the ring"));
    }
    if !out.logs[2].contains("this machine joined the ring") {
        return Err(out.explain("node 2 never rejoined after the partition"));
    }
    Ok(())
}

/// Scenario: 2 nodes; on node 0, `rsetest migrate` reads a file and a
/// pipe and prints numbered lines with a checksum, once staying home and
/// once moving itself to node 1 and back mid-run (/proc/braid): the two
/// outputs must be the same byte for byte, /proc/braid at home must have
/// listed it on machine 1, and bad move requests are refused (the kernel
/// lives on), and so is garbage sent to node 1's migration port (counted
/// as corrupt there). Then a copy that moved and waits on a pipe at home is
/// SIGKILLed at home: its copy on node 1 must end too. Last, a copy
/// computing on node 1 gets SIGUSR1 at home: it must come home, run its
/// handler there, and still print the same output.
pub fn migrate_scenario() -> Result<(), String> {
    let wait = wait_then_show("grep -q ' members 0,1 ' /proc/braid", "view");
    let bad = [
        "move 99999 1",
        "move 1 1",
        "move $$ 7",
        "move $$ 0",
        "move $$ home",
        "move garbage",
        "move $$ 1.a",
        "move",
    ];
    let bad: Vec<String> = bad
        .iter()
        .map(|b| format!("if echo '{b}' > /proc/braid 2>/dev/null; then echo 'ACCEPTED {b}'; fi"))
        .collect();
    let script = format!(
        "{wait}; seq 1 40 | sed 's/^/line /' > /tmp/in; {bad}; echo 'bad moves done'; \
         head -c 20000 /dev/urandom | nc -w 3 {peer} 7500; \
         printf '1GMR\\001\\000\\000\\000\\010\\000\\000\\000\\000\\000\\000\\000AAAAAAAA' | nc -w 3 {peer} 7500; \
         echo 'garbage sent'; \
         seq 100 140 | /usr/bin/rsetest migrate /tmp/in > /tmp/stay.out; \
         seq 100 140 | /usr/bin/rsetest migrate /tmp/in 1 > /tmp/move.out; \
         if cmp /tmp/stay.out /tmp/move.out; then echo 'SAME OUTPUT'; fi; \
         tail -n 2 /tmp/move.out; wc -c /tmp/move.out; grep '^migrate' /proc/braid; \
         (sleep 1000 | /usr/bin/rsetest migrate /tmp/in 1 > /tmp/kill.out 2>&1) & \
         i=0; until grep -q '^remote ' /proc/braid; do i=$((i+1)); \
         if [ $i -gt 300 ]; then echo 'never moved'; break; fi; sleep 0.1; done; \
         P=$(awk '/^remote /{{print $2}}' /proc/braid); kill -9 $P; sleep 2; \
         if grep '^remote ' /proc/braid; then echo 'STILL REMOTE AFTER KILL'; else echo 'killed at home'; fi; \
         seq 100 140 | /usr/bin/rsetest migrate /tmp/in 1 spin > /tmp/spin.out & S=$!; \
         i=0; until grep -q '^remote ' /proc/braid; do i=$((i+1)); \
         if [ $i -gt 300 ]; then echo 'never moved'; break; fi; sleep 0.1; done; \
         P=$(awk '/^remote /{{print $2}}' /proc/braid); sleep 1; kill -USR1 $P; wait $S; \
         if cmp /tmp/stay.out /tmp/spin.out; then echo 'SAME AFTER SIGNAL'; fi; grep '^migrate' /proc/braid",
        bad = bad.join("; "),
        peer = addr(1)
    );
    let o = Opts {
        nodes: 2,
        smp: Some(1),
        exec: Some(script),
        others: Some("while sleep 1; do grep '^migrate' /proc/braid; done".into()),
        timeout: Some(300),
        ..Opts::default()
    };
    let out = run(&o, false)?;
    if out.timed_out {
        return Err(out.explain("timed out"));
    }
    let c = &out.console;
    // Node 1 counted the two garbage connections as corrupt and went on.
    let node1 = std::fs::read_to_string(dir().join("node1.console")).unwrap_or_default();
    let corrupt = node1
        .lines()
        .rev()
        .find_map(|l| l.split(" corrupt ").nth(1))
        .and_then(|v| v.split(' ').next()?.parse::<u64>().ok())
        .unwrap_or(0);
    let why = if c.contains("ACCEPTED") {
        "a bad move request was accepted"
    } else if !c.contains("bad moves done") {
        "the bad move requests did not finish"
    } else if !c.contains("migrate: moved: /proc/braid at home: remote ") {
        "/proc/braid did not list the process on machine 1"
    } else if !c.contains("migrate: back home") {
        "the process did not come back"
    } else if !c.contains("SAME OUTPUT") || !c.contains("PASS migrate") {
        "the output with moves differs from the output without"
    } else if !c.contains("SIGUSR1 brought it home") || !c.contains("SAME AFTER SIGNAL") {
        "a signal sent at home did not bring the process home, or changed its output"
    } else if !c.contains("garbage sent") || corrupt < 2 {
        "node 1 did not count the garbage sent to its port 7500 as corrupt"
    } else if !c.contains("killed at home") {
        "the process killed at home still ran on machine 1"
    } else if out
        .logs
        .get(1)
        .map_or(0, |l| l.matches(") ended here after").count())
        < 2
    {
        "node 1 did not end both copies"
    } else {
        ""
    };
    if !why.is_empty() {
        return Err(out.explain(why));
    }
    Ok(())
}
