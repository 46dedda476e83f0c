//! Scenario: load spreads over the machines of a cluster by itself.
//!
//! On 3 nodes of 1 CPU, node 0 starts 12 CPU-bound shells. The balancer
//! between machines (kernel/src/cluster/balance.rs) must move them until
//! node 0's /proc/braid lists at least 3 away on machine 1 and 3 on
//! machine 2. Then node 1's QEMU is SIGKILLed: its processes go on at
//! home, and once it is booted again and has rejoined, the load spreads
//! to it again (at least one process away on machine 1).

use crate::cluster::{self, wait_formed, wait_then_show, Opts};
use crate::cluster_faults;

const SPINNERS: usize = 12;

fn away_on(m: usize) -> String {
    format!("$(grep -c '^remote [0-9]* machine {m} ' /proc/braid)")
}

pub fn scenario() -> Result<(), String> {
    let formed = wait_formed();
    let spread = wait_then_show(
        &format!("[ {} -ge 3 ] && [ {} -ge 3 ]", away_on(1), away_on(2)),
        "spread",
    );
    let killed = wait_then_show("grep -q '^departure machine 1 ' /proc/braid", "1 killed");
    let again = wait_then_show(
        &format!(
            "grep -q '^torus 1\\.A 1 [0-9]* up ' /proc/braid && [ {} -ge 1 ]",
            away_on(1)
        ),
        "spread again",
    );
    let script = format!(
        "{formed} && P=; for i in $(seq {SPINNERS}); do sh -c 'while :; do :; done' & P=\"$P $!\"; done; \
         {spread} && {killed} && {again}; s=$?; kill -9 $P; exit $s"
    );
    let mut faults = cluster_faults::parse("--kill", "1@4")?;
    faults.extend(cluster_faults::parse("--revive", "1@10")?);
    let o = Opts {
        faults,
        faults_after: Some(("cluster: balance: process ".into(), 6)),
        timeout: Some(500),
        ..Opts::three_nodes(script)
    };
    let out = cluster::run(&o, false)?;
    if out.timed_out || out.status != Some(0) {
        return Err(out.explain("the load did not spread (or not again after node 1 came back)"));
    }
    if out.faults.len() != 2 {
        return Err(out.explain(&format!("{} of 2 faults carried out", out.faults.len())));
    }
    let c = &out.console;
    let count = |section: &str, m: usize| {
        c.split(&format!("--- {section}")).nth(1).map_or(0, |s| {
            s.split("\n--- ")
                .next()
                .unwrap_or("")
                .lines()
                .filter(|l| l.starts_with("remote ") && l.contains(&format!(" machine {m} ")))
                .count()
        })
    };
    let (s1, s2) = (count("spread", 1), count("spread", 2));
    let again = count("spread again", 1);
    let moves = out.logs[0].matches("cluster: balance: process ").count();
    eprintln!(
        "  spread: {s1} on machine 1, {s2} on machine 2, {} at home; after node 1 came back: {again} there ({moves} moves by the balancer)",
        SPINNERS - s1 - s2
    );
    if out.logs[1].contains("cluster: balance: process ")
        || out.logs[2].contains("cluster: balance: process ")
    {
        return Err(out.explain("an idle machine moved processes"));
    }
    Ok(())
}
