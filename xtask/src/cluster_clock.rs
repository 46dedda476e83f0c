//! Scenario: a process's CLOCK_MONOTONIC does not jump when it moves to a
//! machine that booted later.
//!
//! 3 nodes of 1 CPU; node 1 is killed 1 s after all have booted and
//! booted again 2 s later, so its monotonic clock is seconds behind node
//! 0's. Once it is back in the view, `rsetest clockmove 1` on node 0
//! moves itself there and back: the clock, read through the vDSO and the
//! system call, must only move forward, by less than 5 s a step, and the
//! two must agree while away.

use crate::cluster::{self, wait_then_show, Opts};
use crate::cluster_faults;

pub fn scenario() -> Result<(), String> {
    let back = wait_then_show(
        "grep -q '^departure machine 1 ' /proc/braid && \
         grep -q '^cluster machine 0 .* members 0,1,2 ' /proc/braid && \
         grep -q '^torus 1\\.A 1 [0-9]* up ' /proc/braid",
        "1 back",
    );
    let script = format!(
        "{back} > /dev/null && sleep 1 && /usr/bin/rsetest clockmove 1 && echo clockmove done"
    );
    let mut faults = cluster_faults::parse("--kill", "1@1")?;
    faults.extend(cluster_faults::parse("--revive", "1@3")?);
    let o = Opts {
        faults,
        append: vec!["cluster.balance=0".into()],
        timeout: Some(300),
        ..Opts::three_nodes(script)
    };
    let out = cluster::run(&o, false)?;
    if out.timed_out || out.status != Some(0) || !out.console.contains("PASS clockmove") {
        return Err(out.explain("CLOCK_MONOTONIC jumped with the move"));
    }
    if !out.logs[0].contains(" moved to machine 1 ") {
        return Err(out.explain("the process never moved"));
    }
    Ok(())
}
