//! Scenario: a process's CLOCK_MONOTONIC does not jump when it moves to a
//! machine that booted later and whose clock runs faster.
//!
//! 3 nodes of 1 CPU; node 1 is killed 1 s after all have booted and
//! booted again 2 s later, so its monotonic clock is seconds behind node
//! 0's, and it is told a TSC frequency 10 % below the one a probe boot
//! measured (`tsc_early_khz`), so its clock runs 11 % fast: away (a 1 s
//! sleep), the process's clock gets ~0.1 s ahead of its home's. Once node
//! 1 is back in the view, `rsetest clockmove 1` on node 0 moves itself
//! there and back: the clock, read through the vDSO and the system call,
//! must only move forward, by less than 5 s a step (also on the way home,
//! where the home waits for its clock to pass the process's), and the two
//! must agree while away.

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
    let khz = probe_tsc_khz()?;
    let o = Opts {
        faults,
        append: vec!["cluster.balance=0".into()],
        node_append: vec![(1, format!("tsc_early_khz={}", khz * 90 / 100))],
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
    if !out.logs[0].contains(" ahead of this clock; it waits ") {
        return Err(out.explain("the process did not wait for its home's clock"));
    }
    if !out.logs[1].contains("kHz (Given)") {
        return Err(out.explain("node 1 did not take tsc_early_khz"));
    }
    Ok(())
}

/// The TSC frequency a boot measures here, in kHz (from /proc/cpuinfo's
/// MHz).
fn probe_tsc_khz() -> Result<u64, String> {
    let (out, st) = crate::scenarios::exec_in_guest("cat /proc/cpuinfo", &[], Some(1), "")?;
    let mhz = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("cpu MHz")?
                .split(':')
                .nth(1)?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .filter(|_| st == 0)
        .ok_or_else(|| format!("no cpu MHz in /proc/cpuinfo (status {st}):\n{out}"))?;
    Ok(mhz * 1000)
}
