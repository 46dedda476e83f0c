//! Threads of one process are separate entities in the tori's run
//! queues: four CPU-bound threads keep every CPU busy (each thread's CPU
//! read from /proc/self/task/TID/stat, as on Linux), and `fail B` while
//! they run loses none of them and changes no result.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sched::{fail_work, lcg_jump, online_cpus, FAIL_STEPS};
use crate::util::check;

const THREADS: u64 = 4;

/// (tid, state, processor) of every thread of this process but `skip`.
fn tasks(skip: u32) -> Vec<(u32, char, usize)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for e in dir.flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after "(comm)": state is field 3, processor field 39.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let state = f.first().and_then(|s| s.chars().next()).unwrap_or('?');
        if let Some(cpu) = f.get(36).and_then(|c| c.parse().ok()) {
            if tid != skip {
                v.push((tid, state, cpu));
            }
        }
    }
    v
}

pub fn run(_: &[String]) -> Result<(), String> {
    let cpus = online_cpus();
    // SAFETY: gettid has no side effects.
    let me = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    // Per thread: starts, finishes, result.
    let counts: Arc<Vec<AtomicU64>> =
        Arc::new((0..3 * THREADS).map(|_| AtomicU64::new(0)).collect());
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let c = counts.clone();
            std::thread::spawn(move || {
                c[3 * i as usize].fetch_add(1, Ordering::SeqCst);
                let r = fail_work(i + 1);
                c[3 * i as usize + 2].store(r, Ordering::SeqCst);
                c[3 * i as usize + 1].fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();

    // Which CPUs the running threads are on, sampled for up to 2 s.
    let mut seen = BTreeSet::new();
    let mut listed = 0;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && seen.len() < cpus {
        let t = tasks(me);
        listed = listed.max(t.len());
        seen.extend(t.iter().filter(|(_, s, _)| *s == 'R').map(|(_, _, c)| *c));
        std::thread::sleep(Duration::from_millis(20));
    }
    check(
        listed == THREADS as usize,
        format_args!("/proc/self/task lists the {THREADS} workers ({listed}) besides this thread"),
    )?;
    check(
        seen.len() >= cpus.min(THREADS as usize),
        format_args!("{THREADS} busy threads ran on CPUs {seen:?} of {cpus}"),
    )?;

    // `fail B` while they run (RSE OS's braid control; Linux has none).
    let braid = std::path::Path::new("/proc/braid").exists();
    if braid {
        std::fs::write("/proc/braid", "fail B").map_err(|e| format!("fail B: {e}"))?;
    }
    for h in handles {
        h.join().map_err(|_| "a worker panicked".to_string())?;
    }
    if braid {
        let detected = std::fs::read_to_string("/proc/braid")
            .map_err(|e| e.to_string())?
            .contains("failure B detected by");
        std::fs::write("/proc/braid", "revive B").map_err(|e| format!("revive B: {e}"))?;
        check(detected, "B failed while the threads ran, and was detected")?;
    }
    for i in 0..THREADS as usize {
        let (s, f, r) = (
            counts[3 * i].load(Ordering::SeqCst),
            counts[3 * i + 1].load(Ordering::SeqCst),
            counts[3 * i + 2].load(Ordering::SeqCst),
        );
        check(
            s == 1 && f == 1 && r == lcg_jump(FAIL_STEPS, i as u64 + 1),
            format_args!("thread {i} started once, finished once, right result ({s}, {f})"),
        )?;
    }
    Ok(())
}
