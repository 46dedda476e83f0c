//! `cargo xtask fuzz [--calls N] [--seed S] [--smp K] [--workers W]`:
//! boots RSE OS and runs the in-guest syscall fuzzer (`user/rsefuzz`,
//! docs/fuzzing.md) with the given seed.
//!
//! The fuzzer reports what it can see itself (a worker stuck in a call,
//! killed by a signal, a broken invariant, a leak); this harness adds
//! what only the host sees: a kernel panic (QEMU's failure status, the
//! kernel log) and a hang of the whole machine (QEMU timing out). After
//! either it boots again with the same seed and `--trace` (every call is
//! printed before it is made) and shows the last calls before the end.

use std::time::Duration;

use crate::artifacts::Addition;
use crate::qemu::{self, Outcome};
use crate::RunOpts;

/// What one run asks.
#[derive(Clone, Debug)]
pub struct FuzzOpts {
    pub calls: u64,
    pub seed: u64,
    pub smp: u32,
    pub workers: u32,
}

/// `cargo xtask fuzz ARGS`.
pub fn fuzz(args: &[String]) -> Result<i32, String> {
    let mut o = FuzzOpts {
        calls: 100_000,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ u64::from(std::process::id()),
        smp: 3,
        workers: 4,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or(format!("{a} needs a value"))?;
        let n = match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => v.parse(),
        }
        .map_err(|_| format!("{a}: bad number {v}"))?;
        match a.as_str() {
            "--calls" => o.calls = n,
            "--seed" => o.seed = n,
            "--smp" => o.smp = n as u32,
            "--workers" => o.workers = n as u32,
            _ => return Err(format!("unknown option {a}\n{}", crate::USAGE)),
        }
    }
    let adds: Vec<Addition> = crate::userland::build_user_programs()?
        .into_iter()
        .map(|(host, guest)| Addition { host, guest })
        .collect();
    eprintln!(
        "xtask fuzz: seed {:#x}, {} calls, {} workers, -smp {}",
        o.seed, o.calls, o.workers, o.smp
    );
    match run(&o, &adds, true) {
        Ok(summary) => {
            eprintln!("xtask fuzz: passed (seed {:#x}): {summary}", o.seed);
            Ok(0)
        }
        Err(e) => {
            eprintln!("xtask fuzz: FAILED (seed {:#x}): {e}", o.seed);
            eprintln!(
                "xtask fuzz: replay: cargo xtask fuzz --seed {:#x} --calls {} --smp {} --workers {}",
                o.seed, o.calls, o.smp, o.workers
            );
            Ok(1)
        }
    }
}

/// About 7,000 calls/s under TCG (3 CPUs); allow 1 s per 500 calls plus
/// the boot, for a loaded host.
fn timeout(calls: u64) -> Duration {
    Duration::from_secs(120 + calls / 500)
}

/// Boots and fuzzes; Ok(the fuzzer's summary lines) or Err(why, with the
/// last calls when the kernel went down). With `replay`, a kernel panic
/// or hang is followed by a traced run of the same seed.
fn run(o: &FuzzOpts, adds: &[Addition], replay: bool) -> Result<String, String> {
    let out = boot(o, adds, false)?;
    let console = out.console_str().replace("\r\n", "\n");
    let down = if out.timed_out {
        Some("the machine hung (QEMU timed out)")
    } else if !out.kernel_ok() {
        Some("the kernel failed (panic or fatal exception; see the log)")
    } else {
        None
    };
    if let Some(why) = down {
        let tail: Vec<&str> = out.log.lines().rev().take(30).collect();
        let mut msg = format!(
            "{why}\n--- kernel log (end) ---\n{}\n--- console (end) ---\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            last_lines(&console, 40)
        );
        if replay {
            eprintln!(
                "xtask fuzz: {why}; replaying seed {:#x} with --trace",
                o.seed
            );
            let again = boot(o, adds, true)?;
            let c = again.console_str().replace("\r\n", "\n");
            let calls: Vec<&str> = c.lines().filter(|l| l.starts_with('w')).collect();
            let from = calls.len().saturating_sub(20);
            msg.push_str(&format!(
                "\n--- traced replay: {} (last calls made) ---\n{}",
                if again.timed_out || !again.kernel_ok() {
                    "went down again"
                } else {
                    "did not go down this time"
                },
                calls[from..].join("\n")
            ));
        }
        return Err(msg);
    }
    let summary: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("rsefuzz: ") && !l.starts_with("rsefuzz: replay"))
        .collect();
    if !console.lines().any(|l| l.trim_end() == "PASS rsefuzz")
        || console.lines().any(|l| l.contains("FAIL"))
        || !console.lines().any(|l| l.trim_end() == "alive")
    {
        let tail: Vec<&str> = out.log.lines().rev().take(30).collect();
        // The OOM killer's and the fault signals' lines from the whole
        // log say why a worker died (the tail is mostly ENOSYS lines).
        let deaths: Vec<&str> = out
            .log
            .lines()
            .filter(|l| {
                ["Out of memory", "oom:", "fault: pid"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .collect();
        return Err(format!(
            "the fuzzer reported a failure\n--- kernel log: OOM and fault lines ---\n{}\n--- kernel log (end) ---\n{}\n--- console (end) ---\n{}",
            deaths.join("\n"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            last_lines(&console, 60)
        ));
    }
    Ok(summary.join("\n"))
}

fn boot(o: &FuzzOpts, adds: &[Addition], trace: bool) -> Result<Outcome, String> {
    let opts = RunOpts {
        exec: Some(format!(
            "rsefuzz --seed {:#x} --calls {} --workers {}{}; echo alive",
            o.seed,
            o.calls,
            o.workers,
            if trace { " --trace" } else { "" }
        )),
        adds: adds.to_vec(),
        smp: Some(o.smp),
        ..Default::default()
    };
    let cfg = opts.config("fuzz")?;
    let out = qemu::run_captured(&cfg, timeout(o.calls), false).map_err(|e| format!("qemu: {e}"));
    let _ = std::fs::remove_file(&cfg.log);
    if let Some(i) = &cfg.initrd {
        let _ = std::fs::remove_file(i);
    }
    out
}

fn last_lines(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}
