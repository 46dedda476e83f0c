//! Scenario: bad input at the braid's wire between machines.
//!
//! Two boots of 3 nodes of 1 CPU:
//! 1. Node 2 runs another build (`cluster.build=other-build`): nodes 0
//!    and 1 must refuse its frames (a log line naming both builds, the
//!    `other_build` count in /proc/braid) and form their ring without it.
//! 2. All three alike; once the ring has formed, node 0 floods node 1's
//!    braid ports with 20,000 datagrams of garbage each (`rsetest
//!    udp_flood`): node 1 must count them as foreign and drop them, and
//!    no machine may be declared failed (a flood must not pass for a
//!    dead predecessor); the view stays 0,1,2.

use crate::cluster::{self, addr, wait_formed, wait_then_show, Opts};

fn other_build() -> Result<(), String> {
    let two = wait_then_show(
        "grep -q '^cluster machine 0 .* members 0,1 ' /proc/braid && grep -q ' other_build [1-9]' /proc/braid",
        "without 2",
    );
    let o = Opts {
        node_append: vec![(2, "cluster.build=other-build".into())],
        timeout: Some(300),
        ..Opts::three_nodes(format!("{two} && sleep 3 && {two}"))
    };
    let out = cluster::run(&o, false)?;
    if out.timed_out || out.status != Some(0) {
        return Err(out.explain("nodes 0 and 1 did not form a ring without the other build"));
    }
    let last = out.console.rsplit("--- without 2").next().unwrap_or("");
    if last.lines().any(|l| l.starts_with("torus 2.")) {
        return Err(out.explain("node 0 lists machine 2's tori"));
    }
    for k in [0, 1] {
        if !out.logs[k].contains("cluster: machine 2 runs build other-build (ours ") {
            return Err(out.explain(&format!("node {k} did not log the refusal of machine 2")));
        }
    }
    if !out.logs[2].contains("runs build ") || !out.logs[2].contains("(ours other-build)") {
        return Err(out.explain("node 2 did not log the others' build"));
    }
    Ok(())
}

fn flood() -> Result<(), String> {
    let formed = wait_formed();
    let peer = addr(1);
    // Node 1's sockets for machines 0 and 2 (7400 + k).
    let script = format!(
        "{formed} > /dev/null && /usr/bin/rsetest udp_flood {peer} 7400 20000 && \
         /usr/bin/rsetest udp_flood {peer} 7402 20000 && sleep 2 && {formed}"
    );
    let o = Opts {
        nodes: 3,
        smp: Some(1),
        exec: Some(script),
        others: Some("while sleep 1; do grep '^wire' /proc/braid; done".into()),
        timeout: Some(300),
        ..Opts::default()
    };
    let out = cluster::run(&o, false)?;
    if out.timed_out || out.status != Some(0) {
        return Err(out.explain("the flood did not finish with the ring whole"));
    }
    for k in 0..3 {
        if out.logs[k].contains("declared failed") {
            return Err(out.explain(&format!(
                "node {k}'s log declares a machine failed during the flood"
            )));
        }
    }
    let node1 = std::fs::read_to_string(cluster::dir().join("node1.console")).unwrap_or_default();
    let foreign: u64 = node1
        .lines()
        .rev()
        .find_map(|l| l.split(" foreign ").nth(1))
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    let sent: u64 = out
        .console
        .lines()
        .filter_map(|l| l.strip_prefix("udp_flood sent "))
        .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
        .sum();
    if foreign == 0 {
        return Err(out.explain("node 1 counted no foreign datagram"));
    }
    eprintln!("  flood: node 0 sent {sent} datagrams; node 1 took {foreign} off its queues as foreign (the rest dropped by full queues); no machine declared failed");
    Ok(())
}

pub fn scenario() -> Result<(), String> {
    other_build()?;
    flood()
}
