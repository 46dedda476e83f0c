//! Scenario: processes that moved to another machine survive its death.
//!
//! On 3 nodes, node 0 starts a job of six `rsetest ticker` processes,
//! each printing a numbered line with a running checksum every 100 ms;
//! after their third line three move to machine 1 and three to machine 2.
//! Two seconds after all six have moved, node 1's QEMU is SIGKILLed. The
//! three that ran there must go on at home from their last system call:
//! node 0's console must hold every line of every process exactly once,
//! in order, with the checksums an uninterrupted run gives, and node 0's
//! log must say that those three (and no other) went on at home. The
//! second scenario cuts machine 2 off for 3 s instead: its copies live on
//! there, cut off, but the home never prints a line twice, and the ring
//! heals after. A third moves one process from machine 1 to machine 2
//! (through its home) mid-run.

use crate::cluster::{self, wait_formed, wait_then_show, Opts};
use crate::cluster_faults;

const JOBS: u64 = 6;
const LINES: u64 = 100;

/// `rsetest ticker`'s step (user/rsetest/src/ticker.rs): the oracle.
fn step(sum: u64, id: u64, i: u64) -> u64 {
    let mut h = (sum ^ (id << 32 | i)).wrapping_mul(0x0000_0100_0000_01b3);
    for k in 0..50_000u64 {
        h = h.rotate_left(7) ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    h
}

/// What job `id` must print, line by line.
fn expected(id: u64) -> Vec<String> {
    expected_lines(id, LINES)
}

/// What `rsetest ticker id lines` prints.
fn expected_lines(id: u64, lines: u64) -> Vec<String> {
    let mut sum = id;
    let mut v = Vec::new();
    for i in 0..lines {
        sum = step(sum, id, i);
        v.push(format!("tick {id} {i} {sum:016x}"));
    }
    v.push(format!("tick {id} done {sum:016x}"));
    v
}

/// Checks job `id`'s lines on the console: all there, once, in order.
fn check_job(console: &str, id: u64) -> Result<(), String> {
    check_lines(console, id, &expected(id))
}

fn check_lines(console: &str, id: u64, want: &[String]) -> Result<(), String> {
    let prefix = format!("tick {id} ");
    let got: Vec<&str> = console
        .lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with(&prefix))
        .collect();
    if got.len() != want.len() {
        return Err(format!(
            "job {id} printed {} lines, want {}",
            got.len(),
            want.len()
        ));
    }
    for (g, w) in got.iter().zip(want) {
        if g != w {
            return Err(format!("job {id}: got `{g}`, want `{w}`"));
        }
    }
    Ok(())
}

/// What happens to the machine that runs three of the jobs.
#[derive(Clone, Copy)]
enum Fault {
    /// Machine 1's QEMU is SIGKILLed.
    Kill,
    /// Machine 2's tap leaves the bridge for 3 s.
    Partition,
}

/// Node 0's console and logs after the job, checked: every line once, in
/// order, right; the three jobs of the machine hit went on at home, the
/// others not.
fn run_job(fault: Fault) -> Result<(), String> {
    let formed = wait_formed();
    let start = |ids: &str, m: usize| {
        format!("for k in {ids}; do /usr/bin/rsetest ticker $k {LINES} {m} & done")
    };
    // After a partition the ring must heal: machine 2, fenced, rejoins.
    let healed = wait_then_show(
        "grep -q '^cluster machine 0 .* members 0,1,2 ' /proc/braid && \
         grep -q '^torus 2\\.A 2 [0-9]* up ' /proc/braid",
        "healed",
    );
    let after = match fault {
        Fault::Kill => "true".to_string(),
        Fault::Partition => healed,
    };
    let script = format!(
        "{formed} && {} && {} && wait && echo '--- jobs done' && {after} && grep '^migrate' /proc/braid",
        start("0 1 2", 1),
        start("3 4 5", 2)
    );
    let (hit, faults) = match fault {
        Fault::Kill => (1, cluster_faults::parse("--kill", "1@2")?),
        Fault::Partition => (2, cluster_faults::parse("--partition", "2@2+3")?),
    };
    let o = Opts {
        faults,
        faults_after: Some(("moved to machine ".into(), JOBS as usize)),
        timeout: Some(400),
        ..Opts::three_nodes(script)
    };
    let out = cluster::run(&o, false)?;
    if out.timed_out || out.status != Some(0) {
        return Err(out.explain("the job did not finish (or the ring did not heal)"));
    }
    if out.faults.is_empty() {
        return Err(out.explain("the fault never happened"));
    }
    let c = &out.console;
    if !c.contains("--- jobs done") || c.matches("PASS ticker").count() != JOBS as usize {
        return Err(out.explain("not every ticker passed"));
    }
    for id in 0..JOBS {
        check_job(c, id).map_err(|e| out.explain(&e))?;
    }
    let log = &out.logs[0];
    let went_on = |m: usize| {
        log.lines()
            .filter(|l| {
                l.contains(&format!(" on machine {m} lost ("))
                    && l.contains("it goes on here from its last system call")
            })
            .count()
    };
    let spared = 3 - hit;
    if went_on(hit) != 3 || went_on(spared) != 0 {
        return Err(out.explain(&format!(
            "node 0's log says {} processes of machine {hit} and {} of machine {spared} went on at home (want 3 and 0)",
            went_on(hit),
            went_on(spared)
        )));
    }
    if log.contains(&format!(" is back from machine {hit}")) {
        return Err(out.explain("a process came back from the machine hit by itself"));
    }
    eprintln!(
        "  machine {hit} hit {:.1} s after the moves; its 3 processes went on at home, every line once",
        out.faults[0].1.as_secs_f64()
    );
    Ok(())
}

/// Scenario `cluster_3_nodes_moved_jobs_survive_kill`.
pub fn kill_scenario() -> Result<(), String> {
    run_job(Fault::Kill)
}

/// Scenario `cluster_3_nodes_partition_no_job_runs_twice`: the machine
/// is cut off, not dead; its copies must not print anything at home
/// (every line once), and it rejoins after.
pub fn partition_scenario() -> Result<(), String> {
    run_job(Fault::Partition)
}

/// Scenario `cluster_3_nodes_move_between_remotes`: a ticker moves itself
/// to machine 1; `move PID 2` at home sends it on to machine 2 (through
/// home); every line once, in order, right.
pub fn between_remotes_scenario() -> Result<(), String> {
    let formed = wait_formed();
    let away_on = |m: usize| {
        wait_then_show(
            &format!("grep -q \"^remote $P machine {m} \" /proc/braid"),
            &format!("on {m}"),
        )
    };
    let script = format!(
        "{formed} || exit 1; /usr/bin/rsetest ticker 0 60 1 & P=$!; {} && echo \"move $P 2\" > /proc/braid && {} && wait $P && echo '--- job done'",
        away_on(1),
        away_on(2)
    );
    let o = Opts {
        append: vec!["cluster.balance=0".into()],
        timeout: Some(300),
        ..Opts::three_nodes(script)
    };
    let out = cluster::run(&o, false)?;
    if out.timed_out || out.status != Some(0) || !out.console.contains("--- job done") {
        return Err(out.explain("the process did not go from machine 1 to machine 2"));
    }
    let expect = expected_lines(0, 60);
    check_lines(&out.console, 0, &expect).map_err(|e| out.explain(&e))?;
    let log = &out.logs[0];
    if !log.contains(" is back from machine 1") || !log.contains(" moved to machine 2 ") {
        return Err(out.explain("node 0's log does not show the way through home"));
    }
    Ok(())
}
