//! `rsefuzz [--calls N] [--seed S] [--workers W] [--stall SECS] [--trace]`:
//! an in-guest system-call fuzzer for RSE OS (docs/fuzzing.md).
//!
//! The parent forks W workers, each fuzzing N/W calls from the table in
//! table.rs with its own seed derived from S, and watches them through a
//! shared page: a worker whose call does not return for SECS seconds (a
//! call stuck in the kernel), one that dies of a signal, and one whose
//! invariant checks fail are reported with its seed and its last 20
//! calls. Afterwards it checks that the kernel still answers (a syscall,
//! a file written and read back) and that /proc/meminfo's Slab and
//! MemFree are back near their baseline. Ends with `PASS rsefuzz` (exit
//! 0) or `FAIL rsefuzz: why` (exit 1).

mod gen;
mod rng;
mod shared;
mod table;
mod worker;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use shared::{Shared, MAX_WORKERS};

/// How far Slab may stay above its baseline after the run (kB).
const SLAB_TOLERANCE_KB: i64 = 512;
/// How far MemFree may stay below its baseline after the run (kB).
const FREE_TOLERANCE_KB: i64 = 2048;

pub fn name(nr: i64) -> String {
    table::CALLS
        .iter()
        .find(|c| c.nr == nr)
        .map(|c| c.name.trim_start_matches("SYS_").to_string())
        .unwrap_or_else(|| format!("syscall_{nr}"))
}

/// `name(a0, a1, …) ret`, with as many args as the table lists.
pub fn format_call(nr: i64, args: &[u64], ret: &str) -> String {
    let n = table::CALLS
        .iter()
        .find(|c| c.nr == nr)
        .map_or(3, |c| c.args.len());
    let a: Vec<String> = args.iter().take(n).map(|a| format!("{a:#x}")).collect();
    format!("{}({}) {ret}", name(nr), a.join(", "))
}

struct Opts {
    calls: u64,
    seed: u64,
    workers: usize,
    stall: u64,
    trace: bool,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        calls: 20_000,
        seed: Instant::now().elapsed().as_nanos() as u64 ^ std::process::id() as u64 ^ now_ns(),
        workers: 4,
        stall: 30,
        trace: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || -> Result<u64, String> {
            let v = it.next().ok_or(format!("{a} needs a value"))?;
            let r = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => v.parse(),
            };
            r.map_err(|_| format!("{a}: bad number {v}"))
        };
        match a.as_str() {
            "--calls" => o.calls = num()?,
            "--seed" => o.seed = num()?,
            "--workers" => o.workers = (num()? as usize).clamp(1, MAX_WORKERS),
            "--stall" => o.stall = num()?,
            "--trace" => o.trace = true,
            _ => return Err(format!("unknown option {a}")),
        }
    }
    Ok(o)
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// (Slab, MemFree) in kB.
fn meminfo() -> Result<(i64, i64), String> {
    let s = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or(format!("/proc/meminfo has no {k}"))
    };
    Ok((field("Slab:")?, field("MemFree:")?))
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rsefuzz: {e}");
            std::process::exit(2);
        }
    };
    match run(&o) {
        Ok(()) => println!("PASS rsefuzz"),
        Err(e) => {
            println!("FAIL rsefuzz: {e}");
            println!(
                "rsefuzz: replay with: rsefuzz --seed {:#x} --calls {} --workers {} (cargo xtask fuzz --seed {:#x} --calls {})",
                o.seed, o.calls, o.workers, o.seed, o.calls
            );
            std::process::exit(1);
        }
    }
}

fn run(o: &Opts) -> Result<(), String> {
    println!(
        "rsefuzz: seed {:#x} calls {} workers {} ({} syscalls in the table)",
        o.seed,
        o.calls,
        o.workers,
        table::CALLS.len()
    );
    // A SIGUSR1 a worker sends to its process group must not end us.
    worker::handle(libc::SIGUSR1);
    // The supervisor must outlive any memory shortage the workers cause.
    let _ = std::fs::write("/proc/self/oom_score_adj", "-1000");
    let shared = Shared::map();
    let (slab0, free0) = meminfo()?;
    let t0 = Instant::now();
    let mut pids = Vec::new();
    for i in 0..o.workers {
        let seed = rng::derive(o.seed, i as u64 + 1);
        let calls = o.calls / o.workers as u64 + u64::from((i as u64) < o.calls % o.workers as u64);
        // SAFETY: fork in a single-threaded process.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // Workers are fair game for the OOM killer (fork inherited -1000).
            let _ = std::fs::write("/proc/self/oom_score_adj", "0");
            limit_files();
            let mut w = worker::Worker::new(i, seed, o.workers, shared, o.trace);
            let st = match w.run(calls) {
                Ok(()) => 0,
                Err(e) => {
                    println!("rsefuzz: worker {i} (seed {seed:#x}) invariant broken: {e}");
                    3
                }
            };
            // SAFETY: _exit in the child (the parent reports).
            unsafe { libc::_exit(st) };
        }
        if pid < 0 {
            return Err("fork failed".into());
        }
        shared.slots[i].pid.store(pid as u64, Relaxed);
        pids.push(Some(pid));
    }
    let mut failures = Vec::new();
    let mut last = vec![(0u64, Instant::now()); o.workers];
    while pids.iter().any(Option::is_some) {
        std::thread::sleep(Duration::from_millis(100));
        for i in 0..o.workers {
            let Some(pid) = pids[i] else { continue };
            let slot = &shared.slots[i];
            let mut st = 0;
            // SAFETY: waitpid on our child.
            let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            if r == pid {
                pids[i] = None;
                let why = if libc::WIFSIGNALED(st) {
                    Some(format!("killed by signal {}", libc::WTERMSIG(st)))
                } else if libc::WEXITSTATUS(st) != 0 {
                    Some(format!("exited with status {}", libc::WEXITSTATUS(st)))
                } else {
                    None
                };
                if let Some(why) = why {
                    failures.push(report(i, slot, &why));
                }
                continue;
            }
            let p = slot.progress.load(Relaxed);
            if p != last[i].0 {
                last[i] = (p, Instant::now());
            } else if last[i].1.elapsed() > Duration::from_secs(o.stall) {
                failures.push(report(
                    i,
                    slot,
                    &format!("no call returned for {} s (stuck in the kernel?)", o.stall),
                ));
                // SAFETY: kill our own child; it must still die.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let r = unsafe { libc::waitpid(pid, &mut st, 0) };
                println!("rsefuzz: SIGKILL of the stuck worker: waitpid returned {r}");
                pids[i] = None;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let mut tot = [0u64; 7];
    for s in shared.slots.iter().take(o.workers) {
        for (t, v) in tot.iter_mut().zip(s.stats.iter()) {
            *t += v.load(Relaxed);
        }
    }
    let calls = tot[0] + tot[1] + tot[2] + tot[3] + tot[4];
    println!(
        "rsefuzz: {calls} calls in {secs:.1} s ({:.0}/s): {} ok, {} errors ({} EFAULT, {} ENOSYS, {} EINTR); {} churn forks, {} signals",
        calls as f64 / secs,
        tot[0],
        tot[1] + tot[2] + tot[3] + tot[4],
        tot[2],
        tot[3],
        tot[4],
        tot[5],
        tot[6]
    );
    for i in 0..o.workers {
        let _ = std::fs::remove_dir_all(format!("/tmp/rsefuzz.{i}"));
    }
    alive()?;
    // Deferred frees (reaped children, closed files) get a moment.
    let mut leak = String::new();
    for attempt in 0..5 {
        std::thread::sleep(Duration::from_millis(200 * (attempt + 1)));
        let (slab1, free1) = meminfo()?;
        println!(
            "rsefuzz: meminfo Slab {slab0} -> {slab1} kB ({:+}), MemFree {free0} -> {free1} kB ({:+})",
            slab1 - slab0,
            free1 - free0
        );
        leak.clear();
        if slab1 - slab0 > SLAB_TOLERANCE_KB {
            leak = format!(
                "Slab grew by {} kB (tolerance {SLAB_TOLERANCE_KB})",
                slab1 - slab0
            );
        } else if free0 - free1 > FREE_TOLERANCE_KB {
            leak = format!(
                "MemFree fell by {} kB (tolerance {FREE_TOLERANCE_KB})",
                free0 - free1
            );
        }
        if leak.is_empty() {
            break;
        }
    }
    if !leak.is_empty() {
        failures.push(leak);
    }
    let trampled = shared.trampled();
    if !trampled.is_empty() {
        failures.push(format!(
            "the shared page was overwritten (slots {trampled:?}): a write reached it from elsewhere"
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

fn report(i: usize, slot: &shared::Slot, why: &str) -> String {
    let seed = slot.seed.load(Relaxed);
    println!("rsefuzz: worker {i} (seed {seed:#x}) {why}; its last calls:");
    for l in slot.last_calls(20) {
        println!("  {l}");
    }
    format!("worker {i} {why}")
}

/// The kernel still answers: a syscall and a file written and read back.
fn alive() -> Result<(), String> {
    // SAFETY: getpid.
    if unsafe { libc::getpid() } as u32 != std::process::id() {
        return Err("getpid disagrees after the run".into());
    }
    let p = "/tmp/rsefuzz.alive";
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(p, &data).map_err(|e| format!("after the run, write {p}: {e}"))?;
    let back = std::fs::read(p).map_err(|e| format!("after the run, read {p}: {e}"))?;
    let _ = std::fs::remove_file(p);
    if back != data {
        return Err("after the run, a file read back differs from what was written".into());
    }
    println!("rsefuzz: kernel alive after the run (syscall, file write/read ok)");
    Ok(())
}

/// Each worker's files stay at most 16 MiB (RLIMIT_FSIZE; SIGXFSZ ignored,
/// so a write past it is EFBIG). Without it, fuzzed writes, fallocates
/// and truncates at huge offsets filled tmpfs (half of RAM) and, with the
/// workers' arenas, ran the machine out of frames: the kernel's OOM
/// killer then killed workers (SIGKILL) and the supervisor's own
/// allocations failed (seed 0x2, docs/fuzzing.md).
fn limit_files() {
    const FSIZE: libc::rlim_t = 16 << 20;
    let r = libc::rlimit {
        rlim_cur: FSIZE,
        rlim_max: FSIZE,
    };
    // SAFETY: plain libc calls on this process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        libc::setrlimit(libc::RLIMIT_FSIZE, &r);
    }
}
