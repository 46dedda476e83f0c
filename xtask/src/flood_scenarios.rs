//! A SYN flood and malformed frames from the host, through a tap in a
//! network namespace (issue 14: "malformed frames … a SYN flood from the
//! host (bounded backlog)"). As root only, like the cluster scenarios.
//!
//! The guest (static address 10.77.0.2 on the namespace's bridge) runs
//! busybox `httpd`. From the namespace `flood.py` gets a page, sends
//! 20,000 SYNs to port 80 from spoofed addresses that never answer (the
//! guest's ARP for them goes unanswered, so no handshake ends), then
//! 5,000 malformed frames of every layer (truncated, bad IHL and
//! lengths, bad checksums, bad TCP offsets and flags, fragments,
//! garbage IPv4/ARP/IPv6, lying UDP lengths, odd ICMP, oversized), then
//! must get the page again: the half-open connections time out and their
//! places listen again. The guest prints its TCP socket count every
//! second (bounded: the listener's backlog, not one per SYN) and, once
//! the host is done, checks /proc/net/sockstat and the socket and
//! open-file counts of /proc/kobjects are back at the baseline. The
//! segments with a bad TCP checksum must show as eth0 receive errors
//! (the NIC's path checks TCP/UDP checksums; smoltcp does not).

use std::time::Duration;

use crate::qemu;
use crate::RunOpts;

const SYNS: usize = 20_000;
const BAD: usize = 5_000;
const GUEST: &str = "10.77.0.2";

const GUEST_SCRIPT: &str = r#"
mkdir -p /www
echo flood-test-page > /www/index.html
httpd -f -p 80 -h /www &
hpid=$!
snap() { grep -E '^(sockets|TCP|UDP):' /proc/net/sockstat; grep -E '^(sockets|open_files) ' /proc/kobjects; }
sleep 1
snap > /tmp/before
grep eth0 /proc/net/dev > /tmp/dev-before
( while :; do grep '^TCP:' /proc/net/sockstat; sleep 1; done ) > /tmp/tcp &
wpid=$!
echo SERVING
# The host connects here when it is done.
nc -l -p 9 > /dev/null
kill $wpid
wait $wpid 2>/dev/null
i=0
until snap | cmp -s - /tmp/before; do
  i=$((i+1)); [ $i -gt 600 ] && break; sleep 0.1
done
snap > /tmp/after
echo BEFORE; cat /tmp/before; echo AFTER; cat /tmp/after
cmp -s /tmp/before /tmp/after && echo "BASELINE OK"
echo "ETH0 BEFORE $(cat /tmp/dev-before)"
echo "ETH0 AFTER $(grep eth0 /proc/net/dev)"
echo "PEAK TCP INUSE $(awk '{print $3}' /tmp/tcp | sort -n | tail -1)"
kill $hpid
echo "FLOOD DONE"
"#;

/// `cargo xtask test net_tap_syn_flood` (root).
pub fn syn_flood() -> Result<(), String> {
    if !crate::deps::is_root() {
        return Err("needs root (network namespace and tap)".into());
    }
    let ns = crate::cluster::Netns::create(1)?;
    ns.address_bridge("10.77.0.1/24")?;
    let opts = RunOpts {
        exec: Some(GUEST_SCRIPT.to_string()),
        net: true,
        tap: Some("tap0".into()),
        append: vec![format!("ip={GUEST}::10.77.0.1:255.255.255.0")],
        ..Default::default()
    };
    let mut cfg = opts.config("net-flood")?;
    cfg.netns = Some(ns.name.clone());
    let script = crate::artifacts::out_dir().join(format!("flood-{}.py", std::process::id()));
    std::fs::write(&script, include_str!("flood.py"))
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let (out, host) = std::thread::scope(|s| {
        let ns = &ns;
        let script = &script;
        let host = s.spawn(move || -> Result<String, String> {
            rx.recv_timeout(Duration::from_secs(400))
                .map_err(|_| "the guest never printed SERVING".to_string())?;
            let o = ns
                .command("python3")
                .arg(script)
                .args(["br0", GUEST, "52:54:00:12:34:56"])
                .args([SYNS.to_string(), BAD.to_string()])
                .output()
                .map_err(|e| format!("python3: {e}"))?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            if o.status.success() {
                Ok(text)
            } else {
                Err(format!("flood.py failed:\n{text}"))
            }
        });
        let out = qemu::run_captured_notify(
            &cfg,
            Duration::from_secs(900),
            false,
            Some(("SERVING".into(), tx)),
        );
        (out, host.join())
    });
    let _ = std::fs::remove_file(&script);
    let _ = std::fs::remove_file(&cfg.log);
    if let Some(i) = &cfg.initrd {
        let _ = std::fs::remove_file(i);
    }
    let out = out.map_err(|e| format!("qemu: {e}"))?;
    let fail = |what: &str| crate::scenarios::explain(&out, what);
    let text = host
        .map_err(|_| "host thread panicked")?
        .map_err(|e| fail(&e))?;
    let console = out.console_str();
    if console.contains("panic") {
        return Err(fail("the kernel log shows a panic"));
    }
    if !console.contains("FLOOD DONE") {
        return Err(fail("the guest did not finish"));
    }
    if !console.contains("BASELINE OK") {
        return Err(fail(&format!(
            "/proc/net/sockstat or /proc/kobjects sockets/open_files not back at the baseline\n{text}"
        )));
    }
    // The flood holds the listener's few sockets, not one per SYN.
    let peak: usize = console
        .lines()
        .find_map(|l| l.strip_prefix("PEAK TCP INUSE "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| fail("no PEAK line"))?;
    if peak > 16 {
        return Err(fail(&format!(
            "{peak} TCP sockets in use during the flood: the backlog is not bounded"
        )));
    }
    for l in text.lines() {
        println!("    {l}");
    }
    // Frames the guest's NIC took in while the host flooded (QEMU and
    // the tap drop what the receive ring has no room for).
    // Column `col` of eth0's receive counters (1: packets, 2: errors).
    let rx = |tag: &str, col: usize| -> Option<u64> {
        let l = console.lines().find_map(|l| l.strip_prefix(tag))?;
        l.split(':')
            .nth(1)?
            .split_whitespace()
            .nth(col)?
            .parse()
            .ok()
    };
    let delta = |col: usize| match (rx("ETH0 BEFORE ", col), rx("ETH0 AFTER ", col)) {
        (Some(a), Some(b)) => Ok(b.saturating_sub(a)),
        _ => Err(fail("no eth0 lines from /proc/net/dev")),
    };
    let got = delta(1)?;
    if got < 1000 {
        return Err(fail(&format!(
            "the guest received {got} frames: the flood did not reach it"
        )));
    }
    // smoltcp verifies no TCP/UDP checksum (the loopback needs none):
    // the NIC's receive path drops and counts the bad ones.
    let errs = delta(2)?;
    if errs == 0 {
        return Err(fail(
            "eth0 counted no receive errors: the segments with a bad TCP checksum were not dropped",
        ));
    }
    println!(
        "    peak TCP sockets in use during the flood: {peak}; eth0 received {got} frames, {errs} dropped as errors (bad TCP checksums)"
    );
    Ok(())
}
