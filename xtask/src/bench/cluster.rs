//! `cargo xtask bench cluster [--runs N] [--no-write]`: what distributed
//! mode costs and gives, on 3 RSE OS machines of 1 CPU on this host (the
//! `cargo xtask cluster` namespace and bridge), medians of N runs.
//!
//! Each run boots the cluster twice. The first boot (balancer off until
//! the job on three machines) measures on node 0: the braid's projection
//! round trip between machines (/proc/braid), a forwarded system call
//! against the same call at home, moves of 1, 8 and 32 MiB resident
//! (time and bytes per MiB), a CPU-bound job away against at home (what
//! the checkpoint at every call costs a job that makes none), and six
//! CPU-bound processes on one machine against on three (the balancer
//! on). The second boot moves three `rsetest ticker`s to machine 1 and
//! SIGKILLs it: failure detection (host time from the SIGKILL until node
//! 0 logs the departure, and the silence node 0 measured) and how long
//! after that the three run again at home.

use crate::cluster::{self, wait_formed, Opts};
use crate::{artifacts, cluster_faults};

const README_START: &str = "<!-- bench-cluster:start -->";
const README_END: &str = "<!-- bench-cluster:end -->";
/// Units of `rsetest cluster_work` per process (1 unit = 10^6 loop steps,
/// about 4 ms under TCG here).
const UNITS: u32 = 1000;
/// Processes of the compute job.
const JOB: usize = 6;
const BALLAST_MIB: [u32; 3] = [1, 8, 32];

#[derive(Default, Clone)]
struct Run {
    rtt_p50_ms: f64,
    rtt_p99_ms: f64,
    call_home_us: f64,
    call_away_us: f64,
    /// Per ballast size: (ms, bytes sent).
    moves: Vec<(f64, f64)>,
    work_home_s: f64,
    work_away_s: f64,
    /// The job's own compute time, on its machine's clock.
    compute_home_ms: f64,
    compute_away_ms: f64,
    job_one_s: f64,
    job_three_s: f64,
    detect_host_ms: f64,
    detect_silent_ms: f64,
    resume_ms: f64,
}

/// `BENCH key v1 v2 …` lines of the console.
fn bench_line<'a>(console: &'a str, key: &str) -> Option<Vec<&'a str>> {
    let prefix = format!("BENCH {key} ");
    console
        .lines()
        .find_map(|l| l.trim_end().strip_prefix(prefix.as_str()))
        .map(|r| r.split_whitespace().collect())
}

fn num(v: Option<&&str>) -> Option<f64> {
    v.and_then(|s| s.parse().ok())
}

/// Seconds between two `/proc/uptime` readings printed as `KEY A B`.
fn span(console: &str, key: &str) -> Result<f64, String> {
    let v = bench_line(console, key).ok_or(format!("no BENCH {key} line"))?;
    match (num(v.first()), num(v.get(1))) {
        (Some(a), Some(b)) => Ok(b - a),
        _ => Err(format!("BENCH {key}: {v:?}")),
    }
}

fn measure_boot() -> Result<Run, String> {
    let formed = wait_formed();
    let t = "$(cut -d' ' -f1 /proc/uptime)";
    let sent = "$(grep '^migrate' /proc/braid | sed 's/.* bytes_sent \\([0-9]*\\).*/\\1/')";
    let ballast: Vec<String> = BALLAST_MIB
        .iter()
        .map(|m| {
            format!(
                "a={sent}; /usr/bin/rsetest cluster_ballast {m} 1 > /dev/null; b={sent}; echo \"BENCH ballast_{m} $a $b\""
            )
        })
        .collect();
    let job = format!(
        "P=; for i in $(seq {JOB}); do /usr/bin/rsetest cluster_work {UNITS} > /dev/null & P=\"$P $!\"; done; wait $P"
    );
    let script = format!(
        "{formed} > /dev/null && sleep 3 && grep '^projection_rtt_us' /proc/braid | sed 's/^/BENCH /' && \
         /usr/bin/rsetest cluster_calls 2000 | sed 's/^/BENCH home_/' && \
         /usr/bin/rsetest cluster_calls 300 1 | sed 's/^/BENCH away_/' && \
         {ballast} && \
         a={t}; /usr/bin/rsetest cluster_work {UNITS} | sed 's/^/BENCH home_/'; b={t}; echo \"BENCH work_home $a $b\" && \
         a={t}; /usr/bin/rsetest cluster_work {UNITS} 1 | sed 's/^/BENCH away_/'; b={t}; echo \"BENCH work_away $a $b\" && \
         a={t}; {job}; b={t}; echo \"BENCH job_one $a $b\" && echo 'balance on' > /proc/braid && \
         a={t}; {job}; b={t}; echo \"BENCH job_three $a $b\"; grep '^balance' /proc/braid",
        ballast = ballast.join(" && ")
    );
    let o = Opts {
        append: vec!["cluster.balance=0".into()],
        timeout: Some(900),
        ..Opts::three_nodes(script)
    };
    let out = cluster::run(&o, false)?;
    if out.timed_out || out.status != Some(0) {
        return Err(out.explain("the measuring boot failed"));
    }
    let c = &out.console;
    let mut r = Run::default();
    let rtt = bench_line(c, "projection_rtt_us").ok_or("no projection round trip")?;
    let field = |k: &str| {
        rtt.iter()
            .position(|w| *w == k)
            .and_then(|i| num(rtt.get(i + 1)))
            .ok_or(format!("projection_rtt_us has no {k}"))
    };
    r.rtt_p50_ms = field("p50")? / 1000.0;
    r.rtt_p99_ms = field("p99")? / 1000.0;
    let per_call = |key: &str| -> Result<f64, String> {
        let v = bench_line(c, key).ok_or(format!("no BENCH {key}"))?;
        num(v.get(2)).ok_or(format!("BENCH {key}: {v:?}"))
    };
    r.call_home_us = per_call("home_calls")?;
    r.call_away_us = per_call("away_calls")?;
    // The kernel's own account of each move, in the script's order: the
    // calls' move, then the ballasts.
    let moved: Vec<f64> = out.logs[0]
        .lines()
        .filter(|l| l.contains(" moved to machine "))
        .filter_map(|l| l.split(") in ").nth(1))
        .filter_map(|l| l.split(" ms").next()?.trim().parse().ok())
        .collect();
    for (i, mib) in BALLAST_MIB.iter().enumerate() {
        let bytes = span(c, &format!("ballast_{mib}"))?;
        let ms = *moved.get(i + 1).ok_or("the kernel log lacks a move")?;
        r.moves.push((ms, bytes));
    }
    let compute = |key: &str| -> Result<f64, String> {
        let v = bench_line(c, key).ok_or(format!("no BENCH {key}"))?;
        let i = v.iter().position(|w| *w == "compute_ms");
        num(i.and_then(|i| v.get(i + 1))).ok_or(format!("BENCH {key}: {v:?}"))
    };
    r.compute_home_ms = compute("home_work")?;
    r.compute_away_ms = compute("away_work")?;
    r.work_home_s = span(c, "work_home")?;
    r.work_away_s = span(c, "work_away")?;
    r.job_one_s = span(c, "job_one")?;
    r.job_three_s = span(c, "job_three")?;
    Ok(r)
}

/// Guest time (µs) of a kernel log line.
fn stamp(line: &str) -> Option<f64> {
    let s = line.trim_start().strip_prefix('[')?;
    s.split(" us]").next()?.trim().parse().ok()
}

fn failure_boot(r: &mut Run) -> Result<(), String> {
    let formed = wait_formed();
    let script = format!(
        "{formed} > /dev/null && for k in 0 1 2; do /usr/bin/rsetest ticker $k 60 1 > /dev/null & done; wait"
    );
    let o = Opts {
        faults: cluster_faults::parse("--kill", "1@2")?,
        faults_after: Some(("moved to machine ".into(), 3)),
        timeout: Some(400),
        ..Opts::three_nodes(script)
    };
    let out = cluster::run(&o, false)?;
    if out.timed_out || out.status != Some(0) {
        return Err(out.explain("the failure boot failed"));
    }
    let (_, host) = out
        .detected
        .first()
        .ok_or("node 0 never saw node 1 leave")?;
    r.detect_host_ms = host.as_secs_f64() * 1000.0;
    let log = &out.logs[0];
    let left = log
        .lines()
        .find(|l| l.contains("cluster: machine 1 left the view"))
        .ok_or("no departure in node 0's log")?;
    r.detect_silent_ms = left
        .split(" after ")
        .nth(1)
        .and_then(|s| s.split(" ms").next()?.trim().parse().ok())
        .ok_or("departure line without silence")?;
    let resumed: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("it goes on here from its last system call"))
        .filter_map(stamp)
        .collect();
    if resumed.len() != 3 {
        return Err(format!("{} of 3 processes went on at home", resumed.len()));
    }
    let t_left = stamp(left).ok_or("no time on the departure line")?;
    let last = resumed.iter().copied().fold(0.0, f64::max);
    r.resume_ms = (last - t_left) / 1000.0;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn table(runs: &[Run]) -> String {
    let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let mut s = String::from("| measure | RSE OS | goal (issue 15) |\n|---|---:|---|\n");
    s += &format!(
        "| projection round trip between machines, p50 / p99 | {:.2} / {:.2} ms | p99 < 1 ms |\n",
        m(&|r| r.rtt_p50_ms),
        m(&|r| r.rtt_p99_ms)
    );
    s += &format!(
        "| failure detection: SIGKILL → node 0's view drops it (host time); silence node 0 saw | {:.0} ms; {:.0} ms | < 100 ms |\n",
        m(&|r| r.detect_host_ms),
        m(&|r| r.detect_silent_ms)
    );
    s += &format!(
        "| the dead machine's guests run again at home, after the view change | {:.1} ms | |\n",
        m(&|r| r.resume_ms)
    );
    for (i, mib) in BALLAST_MIB.iter().enumerate() {
        s += &format!(
            "| move of a process with {mib} MiB of heap touched (rsetest's own ~2.5 MiB besides): time; bytes sent | {:.0} ms; {:.1} MiB | |\n",
            m(&|r| r.moves[i].0),
            m(&|r| r.moves[i].1) / 1048576.0
        );
    }
    let (small, big) = (BALLAST_MIB[1], BALLAST_MIB[2]);
    s += &format!(
        "| bytes sent per MiB resident ({small} → {big} MiB) | {:.0} KiB | |\n",
        m(&|r| (r.moves[2].1 - r.moves[1].1) / f64::from(big - small)) / 1024.0
    );
    s += &format!(
        "| a system call served by the home (getuid, away) / at home | {:.0} µs / {:.2} µs | |\n",
        m(&|r| r.call_away_us),
        m(&|r| r.call_home_us)
    );
    let overhead = m(&|r| (r.compute_away_ms / r.compute_home_ms - 1.0) * 100.0);
    s += &format!(
        "| CPU-bound job ({UNITS} units, no calls), its own compute time away vs at home | {:.0} ms vs {:.0} ms ({overhead:+.1} %) | checkpoint overhead < 1 % |\n",
        m(&|r| r.compute_away_ms),
        m(&|r| r.compute_home_ms)
    );
    s += &format!(
        "| the same job from start to exit, with the move there (node 0's clock) | {:.2} s vs {:.2} s | |\n",
        m(&|r| r.work_away_s),
        m(&|r| r.work_home_s)
    );
    s += &format!(
        "| {JOB} CPU-bound processes started on node 0: on 1 machine vs spread over 3 | {:.1} s vs {:.1} s ({:.2}×) | |\n",
        m(&|r| r.job_one_s),
        m(&|r| r.job_three_s),
        m(&|r| r.job_one_s / r.job_three_s)
    );
    s
}

pub fn bench(args: &[String]) -> Result<i32, String> {
    let mut runs = 3usize;
    let mut write = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--runs needs a number")?
            }
            "--no-write" => write = false,
            _ => {
                return Err(format!(
                    "usage: cargo xtask bench cluster [--runs N] [--no-write] ({a}?)"
                ))
            }
        }
    }
    let mut all = Vec::new();
    for i in 0..runs {
        eprintln!("bench cluster: run {} of {runs}", i + 1);
        let mut r = measure_boot()?;
        failure_boot(&mut r)?;
        all.push(r);
    }
    let commit = artifacts::short_commit();
    let body = format!(
        "Measured at commit {commit} by `cargo xtask bench cluster --runs {runs}` (medians): 3 RSE OS \
         machines of 1 CPU and 512 MiB under QEMU TCG on this host, tap devices on one bridge in a \
         network namespace.\n\n{}",
        table(&all)
    );
    println!("{body}");
    if write {
        let doc = artifacts::root().join("docs/benchmarks-cluster.md");
        std::fs::write(
            &doc,
            format!("# Distributed mode: `cargo xtask bench cluster`\n\n{body}"),
        )
        .map_err(|e| format!("{}: {e}", doc.display()))?;
        let readme = artifacts::root().join("README.md");
        let text = std::fs::read_to_string(&readme).map_err(|e| e.to_string())?;
        if let (Some(a), Some(b)) = (text.find(README_START), text.find(README_END)) {
            let new = format!("{}{README_START}\n{body}{}", &text[..a], &text[b..]);
            std::fs::write(&readme, new).map_err(|e| e.to_string())?;
        }
        eprintln!("bench cluster: wrote docs/benchmarks-cluster.md and the README table");
    }
    Ok(0)
}
