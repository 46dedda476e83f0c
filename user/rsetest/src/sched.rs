//! Scheduling behaviour on a multi-CPU machine (run with 3 CPUs):
//! nice weights, SCHED_FIFO/SCHED_RR, balancing between CPUs, and state
//! kept across migrations. Not part of the all-in-one run: each needs
//! the CPUs to itself for a few seconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::{check, errname, errno, fork, pin, wait_ok};

/// A shared (MAP_SHARED) array of counters that survives fork.
fn shared(words: usize) -> Result<&'static [AtomicU64], String> {
    let p =
        crate::util::mmap_shared(words * 8).map_err(|e| format!("mmap shared: {}", errname(e)))?;
    // SAFETY: the mapping is zeroed, page-aligned, `words` u64s long and
    // never unmapped; AtomicU64 has u64's layout.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<AtomicU64>(), words) })
}

fn set_nice(n: i32) -> Result<(), String> {
    // SAFETY: plain syscall.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) } != 0 {
        return Err(format!("setpriority: {}", errname(errno())));
    }
    Ok(())
}

fn set_policy(policy: i32, prio: i32) -> Result<(), String> {
    let p = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: p is a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, policy, &p) } != 0 {
        return Err(format!("sched_setscheduler: {}", errname(errno())));
    }
    Ok(())
}

/// The CPU the calling process runs on.
fn cpu_now() -> usize {
    // SAFETY: plain call.
    unsafe { libc::sched_getcpu() }.max(0) as usize
}

/// Busy work the compiler cannot drop: `n` rounds of an LCG.
#[inline(never)]
fn spin(n: u64, mut x: u64) -> u64 {
    for _ in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
    std::hint::black_box(x)
}

/// Runs `f` in a child and returns its pid (the child exits 0 on Ok).
fn child(f: impl FnOnce() -> Result<(), String>) -> Result<libc::pid_t, String> {
    crate::util::spawn(f)
}

/// `n` busy children working until `end` (into one shared counter).
fn busy_children(n: usize, end: Instant) -> Result<Vec<libc::pid_t>, String> {
    let c = shared(1)?;
    (0..n)
        .map(|_| {
            child(move || {
                work_until(end, &c[0]);
                Ok(())
            })
        })
        .collect()
}

/// Counts work rounds until `until`, adding to `counter` as it goes.
fn work_until(until: Instant, counter: &AtomicU64) {
    let mut x = 1;
    while Instant::now() < until {
        x = spin(2000, x);
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Bad arguments to the scheduling syscalls get Linux's errors, and the
/// process goes on.
pub fn args(_: &[String]) -> Result<(), String> {
    use crate::util::{show, sys};
    // sched_setscheduler(pid, policy, &{prio}): the param is a local the
    // call reads before returning.
    let setscheduler = |pid: libc::c_long, policy: libc::c_int, prio: i32| {
        let param = prio;
        sys(
            libc::SYS_sched_setscheduler,
            [pid, policy as _, &param as *const i32 as _, 0, 0, 0],
        )
    };
    let mask_hi: u64 = 1 << 63;
    let mut mask = 0u64;
    type Outcome = Result<libc::c_long, i32>;
    let cases: [(&str, Outcome, Outcome); 10] = [
        (
            "sched_setscheduler(0, 1234, {1})",
            setscheduler(0, 1234, 1),
            Err(libc::EINVAL),
        ),
        (
            "sched_setscheduler(0, SCHED_FIFO, {0})",
            setscheduler(0, libc::SCHED_FIFO, 0),
            Err(libc::EINVAL),
        ),
        (
            "sched_setscheduler(0, SCHED_RR, {100})",
            setscheduler(0, libc::SCHED_RR, 100),
            Err(libc::EINVAL),
        ),
        (
            "sched_setscheduler(0, SCHED_OTHER, {1})",
            setscheduler(0, libc::SCHED_OTHER, 1),
            Err(libc::EINVAL),
        ),
        (
            "sched_setscheduler(-1, SCHED_OTHER, {0})",
            setscheduler(-1, libc::SCHED_OTHER, 0),
            Err(libc::EINVAL),
        ),
        (
            "sched_getscheduler(4000000)",
            sys(libc::SYS_sched_getscheduler, [4_000_000, 0, 0, 0, 0, 0]),
            Err(libc::ESRCH),
        ),
        (
            "sched_get_priority_max(77)",
            sys(libc::SYS_sched_get_priority_max, [77, 0, 0, 0, 0, 0]),
            Err(libc::EINVAL),
        ),
        (
            "sched_setaffinity(0, 8, {cpu 63 only})",
            sys(
                libc::SYS_sched_setaffinity,
                [0, 8, &mask_hi as *const u64 as _, 0, 0, 0],
            ),
            Err(libc::EINVAL),
        ),
        (
            "sched_getaffinity(0, 3, buf)",
            sys(
                libc::SYS_sched_getaffinity,
                [0, 3, &mut mask as *mut u64 as _, 0, 0, 0],
            ),
            Err(libc::EINVAL),
        ),
        (
            "setpriority(7, 0, 0)",
            sys(libc::SYS_setpriority, [7, 0, 0, 0, 0, 0]),
            Err(libc::EINVAL),
        ),
    ];
    for (what, got, want) in cases {
        check(
            got == want,
            format!("{what} -> {} (want {})", show(got), show(want)),
        )?;
    }
    // And what is allowed still works afterwards.
    check(
        sys(
            libc::SYS_sched_get_priority_max,
            [libc::SCHED_RR as _, 0, 0, 0, 0, 0],
        ) == Ok(99),
        "sched_get_priority_max(SCHED_RR) = 99",
    )?;
    check(
        sys(
            libc::SYS_setpriority,
            [libc::PRIO_PROCESS as _, 0, 40, 0, 0, 0],
        ) == Ok(0)
            && sys(
                libc::SYS_getpriority,
                [libc::PRIO_PROCESS as _, 0, 0, 0, 0, 0],
            ) == Ok(1),
        "setpriority(nice 40) clamps to 19 (getpriority returns 20 - 19 = 1)",
    )?;
    crate::say!("alive");
    Ok(())
}

/// Two CPU-bound processes pinned to CPU 1 at nice 0 and nice 5 share it
/// 1024:335 (within 15 %) over 5 s, in the CPU time the scheduler gave
/// each (CLOCK_THREAD_CPUTIME_ID). Their rounds of work are printed too,
/// but not checked: on a busy host the vCPU stops for whole host time
/// slices while the guest clock runs on, charged to whichever process was
/// current, so the work done drifts from the share given.
pub fn fair(_: &[String]) -> Result<(), String> {
    let c = shared(4)?;
    let start = Instant::now() + Duration::from_millis(300);
    let end = start + Duration::from_secs(5);
    let mut pids = Vec::new();
    for (i, nice) in [0, 5].into_iter().enumerate() {
        pids.push(child(move || {
            pin(0, 1)?;
            set_nice(nice)?;
            std::thread::sleep(start.saturating_duration_since(Instant::now()));
            let cpu0 = thread_cpu_ns();
            work_until(end, &c[i]);
            c[2 + i].store(thread_cpu_ns() - cpu0, Ordering::Relaxed);
            Ok(())
        })?);
    }
    for p in pids {
        wait_ok(p, "worker")?;
    }
    let (a, b) = (c[0].load(Ordering::Relaxed), c[1].load(Ordering::Relaxed));
    let (ta, tb) = (c[2].load(Ordering::Relaxed), c[3].load(Ordering::Relaxed));
    let ratio = ta as f64 / tb.max(1) as f64;
    let want = 1024.0 / 335.0;
    crate::say!(
        "nice 0: {} ms of CPU, {a} rounds; nice 5: {} ms, {b} rounds; CPU ratio {ratio:.3} \
         (want {want:.3}), rounds ratio {:.3}",
        ta / 1_000_000,
        tb / 1_000_000,
        a as f64 / b.max(1) as f64
    );
    check(
        (ratio / want - 1.0).abs() <= 0.15 && ta + tb >= 4_000_000_000,
        format!(
            "CPU share nice 0 : nice 5 = {ratio:.3}, within 15% of 1024:335, of at least 4 s \
             of CPU time"
        ),
    )
}

/// The calling thread's CPU time (ns).
fn thread_cpu_ns() -> u64 {
    crate::util::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// SCHED_FIFO preempts fair processes on its CPU; two SCHED_RR processes
/// of one priority alternate every RR interval.
pub fn rt(_: &[String]) -> Result<(), String> {
    rt_demand_spreads()?;
    pin(0, 0)?;
    fifo_preempts()?;
    rr_alternates()
}

/// Two SCHED_FIFO spinners started on one CPU (no affinity): the second
/// would get nothing behind the first, so it must move to another CPU;
/// both make progress.
fn rt_demand_spreads() -> Result<(), String> {
    let c = shared(2)?;
    let end = Instant::now() + Duration::from_millis(1500);
    let mut pids = Vec::new();
    for counter in c.iter() {
        pids.push(child(move || {
            set_policy(libc::SCHED_FIFO, 30)?;
            work_until(end, counter);
            Ok(())
        })?);
    }
    for p in pids {
        wait_ok(p, "FIFO spinner")?;
    }
    let (a, b) = (c[0].load(Ordering::Relaxed), c[1].load(Ordering::Relaxed));
    crate::say!("FIFO spinners: {a} and {b} rounds");
    check(
        a.min(b) * 3 >= a.max(b),
        "two SCHED_FIFO spinners both run (on different CPUs), within 3x of each other",
    )
}

fn fifo_preempts() -> Result<(), String> {
    // [0]: fair worker's rounds; [1]: FIFO running (1) / done (2).
    let c = shared(2)?;
    let fair_end = Instant::now() + Duration::from_secs(4);
    let fair = child(move || {
        pin(0, 1)?;
        work_until(fair_end, &c[0]);
        Ok(())
    })?;
    std::thread::sleep(Duration::from_millis(500));
    check(
        c[0].load(Ordering::Relaxed) > 0,
        "the fair worker runs on CPU 1",
    )?;
    let fifo = child(move || {
        pin(0, 1)?;
        set_policy(libc::SCHED_FIFO, 10)?;
        c[1].store(1, Ordering::SeqCst);
        let until = Instant::now() + Duration::from_millis(1200);
        while Instant::now() < until {
            spin(2000, 3);
        }
        c[1].store(2, Ordering::SeqCst);
        Ok(())
    })?;
    while c[1].load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = c[0].load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(700));
    let during = c[0].load(Ordering::Relaxed) - before;
    let still = c[1].load(Ordering::SeqCst) == 1;
    wait_ok(fifo, "FIFO worker")?;
    let after0 = c[0].load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let after = c[0].load(Ordering::Relaxed) - after0;
    wait_ok(fair, "fair worker")?;
    check(still, "the FIFO worker was still running during the sample")?;
    crate::say!("fair rounds: {during} in 700 ms under FIFO, {after} in 300 ms after");
    check(during == 0, "no fair work on the CPU while SCHED_FIFO runs")?;
    check(
        after > 0,
        "the fair worker resumes once the FIFO worker is done",
    )
}

fn rr_alternates() -> Result<(), String> {
    // [0]: who ran last (1 or 2); [1]: number of switches; [2..]: switch
    // times in µs since `t0`.
    const MAX: usize = 200;
    let c = shared(2 + MAX)?;
    let t0 = Instant::now() + Duration::from_millis(300);
    let end = t0 + Duration::from_millis(1500);
    let mut pids = Vec::new();
    for me in 1..=2u64 {
        pids.push(child(move || {
            pin(0, 1)?;
            set_policy(libc::SCHED_RR, 20)?;
            std::thread::sleep(t0.saturating_duration_since(Instant::now()));
            loop {
                let now = Instant::now();
                if now >= end {
                    return Ok(());
                }
                if c[0].swap(me, Ordering::SeqCst) != me {
                    let n = c[1].fetch_add(1, Ordering::SeqCst) as usize;
                    if n < MAX {
                        let us = now.saturating_duration_since(t0).as_micros() as u64;
                        c[2 + n].store(us, Ordering::SeqCst);
                    }
                }
                spin(500, me);
            }
        })?);
    }
    for p in pids {
        wait_ok(p, "RR worker")?;
    }
    let n = (c[1].load(Ordering::SeqCst) as usize).min(MAX);
    let times: Vec<u64> = (0..n).map(|i| c[2 + i].load(Ordering::SeqCst)).collect();
    let mut gaps: Vec<u64> = times
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    crate::say!(
        "RR switch times (ms): {:?}",
        times.iter().map(|t| t / 1000).collect::<Vec<_>>()
    );
    check(
        gaps.len() >= 8,
        format!("{} RR switches in 1.5 s (at least 8)", gaps.len()),
    )?;
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    check(
        (70_000..=130_000).contains(&median),
        format!(
            "median time between RR switches {} ms, the 100 ms RR interval",
            median / 1000
        ),
    )
}

/// Reads field 39 (processor) of /proc/PID/stat.
fn processor(pid: libc::pid_t) -> Option<usize> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split(' ').nth(36)?.parse().ok()
}

/// Whether `balance` and `fail` count processes per torus rather than per
/// CPU (argument `tori`: one CPU hosting three tori, `tori=3`).
static BY_TORUS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn set_placement(args: &[String]) -> &'static str {
    let tori = args.first().is_some_and(|a| a == "tori");
    BY_TORUS.store(tori, Ordering::Relaxed);
    if tori {
        "torus"
    } else {
        "CPU"
    }
}

/// Runnable processes on each torus, this one included: /proc/braid's
/// `nr` column (waiting processes) plus this process on its own torus.
/// With all tori on one CPU, every process but the caller waits in a
/// queue while the caller reads, so this is exact, in two small reads.
fn runnable_per_torus(tori: usize) -> Option<Vec<usize>> {
    let s = std::fs::read_to_string("/proc/braid").ok()?;
    let mut n = vec![0; tori];
    for l in s.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        if f.len() > 10 && f[0].len() == 1 && f[1].parse::<usize>().is_ok_and(|i| i < tori) {
            n[f[1].parse::<usize>().ok()?] = f[9].parse().ok()?;
        }
    }
    let me = std::fs::read_to_string("/proc/self/status").ok()?;
    let t: usize = me
        .lines()
        .find_map(|l| l.strip_prefix("Torus:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    *n.get_mut(t)? += 1;
    Some(n)
}

/// Whether `s` (from [`spread`]) is the balanced spread of 6 workers over
/// 3 CPUs: 2/2/2. Over 3 tori on one CPU the sampler (this process) is a
/// seventh runnable process whose load counts as much as a worker's (on a
/// shared CPU it waits for its torus's turn at every wake-up, so it is
/// runnable a good part of the time): balanced is then 3/2/2 counting it.
fn balanced(s: &[usize]) -> bool {
    if BY_TORUS.load(Ordering::Relaxed) {
        let mut s = s.to_vec();
        s.sort_unstable();
        s == [2, 2, 3]
    } else {
        s == [2, 2, 2]
    }
}

/// What [`balanced`] looks for, for messages.
fn balanced_name() -> &'static str {
    if BY_TORUS.load(Ordering::Relaxed) {
        "3/2/2 with the sampler"
    } else {
        "2/2/2"
    }
}

/// How many of `pids` are on each of `cpus` CPUs, or with `tori`, how
/// many runnable processes (the workers and this one) on each torus.
fn spread(pids: &[libc::pid_t], cpus: usize) -> Vec<usize> {
    if BY_TORUS.load(Ordering::Relaxed) {
        return runnable_per_torus(cpus).unwrap_or_default();
    }
    let mut n = vec![0; cpus];
    let place = processor;
    for &p in pids {
        if let Some(c) = place(p) {
            if c < cpus {
                n[c] += 1;
            }
        }
    }
    n
}

/// Six CPU-bound processes started on one CPU spread 2/2/2 over three
/// CPUs (or three tori on one CPU) within a second, without any affinity
/// call.
pub fn balance(args: &[String]) -> Result<(), String> {
    let unit = set_placement(args);
    let cpus = 3;
    let end = Instant::now() + Duration::from_secs(3);
    let t0 = Instant::now();
    let pids = busy_children(6, end)?;
    let first = spread(&pids, cpus);
    let mut balanced_at = None;
    let mut samples = Vec::new();
    while Instant::now() < end - Duration::from_millis(300) {
        let s = spread(&pids, cpus);
        let at = t0.elapsed().as_millis();
        if balanced(&s) && balanced_at.is_none() {
            balanced_at = Some(at);
        }
        samples.push((at, s));
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in &pids {
        wait_ok(*p, "worker")?;
    }
    crate::say!("per-{unit} counts at fork: {first:?}");
    let late: Vec<_> = samples.iter().filter(|(at, _)| *at >= 1000).collect();
    let steady = late.iter().filter(|(_, s)| balanced(s)).count();
    crate::say!(
        "balanced ({}) first at {balanced_at:?} ms; {steady} of {} samples after 1 s are balanced",
        balanced_name(),
        late.len()
    );
    check(
        balanced_at.is_some_and(|t| t <= 1000),
        format!("6 busy processes spread {} within 1 s", balanced_name()),
    )?;
    check(
        steady * 10 >= late.len() * 8,
        "and stay spread (80% of samples after 1 s)",
    )
}

/// Linux's weight for a nice value (the ones [`mixed`] uses).
fn weight(nice: i32) -> u64 {
    match nice {
        -5 => 3121,
        0 => 1024,
        5 => 335,
        10 => 110,
        _ => 1024,
    }
}

/// Twelve busy processes of mixed nice values: while they run, the load
/// (sum of weights) of each CPU is within 20% of the mean.
pub fn mixed(_: &[String]) -> Result<(), String> {
    let cpus = online_cpus();
    let nices = [-5, -5, 0, 0, 0, 0, 5, 5, 5, 5, 10, 10];
    let c = shared(1)?;
    let end = Instant::now() + Duration::from_millis(3500);
    let mut pids = Vec::new();
    for nice in nices {
        pids.push(child(move || {
            set_nice(nice)?;
            work_until(end, &c[0]);
            Ok(())
        })?);
    }
    let t0 = Instant::now();
    let mut spreads = Vec::new();
    while Instant::now() < end - Duration::from_millis(300) {
        if t0.elapsed() >= Duration::from_millis(1000) {
            let mut load = vec![0u64; cpus];
            for (p, &n) in pids.iter().zip(&nices) {
                if let Some(cpu) = processor(*p).filter(|&c| c < cpus) {
                    load[cpu] += weight(n);
                }
            }
            let mean = load.iter().sum::<u64>() as f64 / cpus as f64;
            let worst = load
                .iter()
                .map(|&l| (l as f64 - mean).abs() / mean)
                .fold(0.0, f64::max);
            spreads.push((worst, load));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in pids {
        wait_ok(p, "worker")?;
    }
    spreads.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median, load) = &spreads[spreads.len() / 2];
    crate::say!(
        "per-CPU load (weights) at the median sample: {load:?}, worst deviation {:.1}%",
        median * 100.0
    );
    check(
        *median <= 0.20,
        "per-CPU load within 20% of the mean (median of samples after 1 s)",
    )
}

/// A process checksums a 64 MiB buffer (with SSE) while its affinity
/// moves it between CPUs every few milliseconds: the checksum is right
/// and it did move.
pub fn migrate(_: &[String]) -> Result<(), String> {
    const LEN: usize = 64 << 20;
    const MOVES: u64 = 20;
    // [0]: checksum, [1]: CPU changes seen, [2]: passes, [3]: done.
    let c = shared(4)?;
    let cpus = online_cpus();
    check(cpus >= 2, format!("{cpus} CPUs to move between"))?;
    let pid = fork()?;
    if pid == 0 {
        let mut buf = vec![0u8; LEN];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = pattern(i);
        }
        let mut sum = 0u64;
        let (mut moves, mut passes) = (0, 0);
        let mut last = cpu_now();
        // Whole passes until it has moved often enough (bounded).
        while moves < MOVES && passes < 50 {
            for chunk in buf.chunks(4096) {
                sum = sum_chunk(sum, chunk);
                let now = cpu_now();
                if now != last {
                    moves += 1;
                    last = now;
                }
            }
            passes += 1;
        }
        c[0].store(sum, Ordering::SeqCst);
        c[1].store(moves, Ordering::SeqCst);
        c[2].store(passes, Ordering::SeqCst);
        c[3].store(1, Ordering::SeqCst);
        crate::util::child_exit(0);
    }
    let mut k = 0;
    while c[3].load(Ordering::SeqCst) == 0 {
        pin(pid, k % cpus)?;
        k += 1;
        std::thread::sleep(Duration::from_millis(3));
    }
    wait_ok(pid, "checksummer")?;
    let (got, moves, passes) = (
        c[0].load(Ordering::SeqCst),
        c[1].load(Ordering::SeqCst),
        c[2].load(Ordering::SeqCst),
    );
    // The same sum, computed here without migrations.
    let mut want = 0u64;
    let mut chunk = vec![0u8; 4096];
    for _ in 0..passes {
        for base in (0..LEN).step_by(4096) {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = pattern(base + j);
            }
            want = sum_chunk(want, &chunk);
        }
    }
    crate::say!("checksum {got:#x} (want {want:#x}) over {passes} passes, {moves} CPU changes seen, {k} affinity moves");
    check(
        got == want,
        "the checksum of 64 MiB is right after migrations",
    )?;
    check(
        moves >= MOVES,
        format!("the process changed CPU {moves} times (at least {MOVES})"),
    )
}

fn pattern(i: usize) -> u8 {
    (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8
}

/// CPUs this process may run on.
pub(crate) fn online_cpus() -> usize {
    // SAFETY: cpu_set_t is plain data, filled by the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 1;
        }
        libc::CPU_COUNT(&set) as usize
    }
}

/// A checksum that keeps state in XMM registers across the chunk (so a
/// migration that lost SSE state would show).
fn sum_chunk(h: u64, chunk: &[u8]) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is baseline on x86_64; loads are unaligned-safe and in
    // bounds (16-byte steps over a 4096-byte chunk).
    unsafe {
        let mut acc = _mm_set_epi64x(h as i64, (h >> 7) as i64);
        let mut mix = _mm_set1_epi32(0x9e37_79b9u32 as i32);
        for b in chunk.chunks_exact(16) {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            acc = _mm_add_epi64(acc, _mm_xor_si128(v, mix));
            mix = _mm_add_epi32(_mm_slli_epi32(mix, 1), _mm_srli_epi32(mix, 31));
            acc = _mm_add_epi64(acc, _mm_sad_epu8(v, _mm_setzero_si128()));
        }
        let lo = _mm_cvtsi128_si64(acc) as u64;
        let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)) as u64;
        lo.rotate_left(13) ^ hi.wrapping_mul(0x100_0000_01b3)
    }
}

/// LCG steps each process of [`fail`] takes: a fixed amount of work (a
/// few CPU seconds under TCG), whose result the parent checks cheaply by
/// jumping the LCG ahead.
pub(crate) const FAIL_STEPS: u64 = 2000 * 1_000_000;
const LCG_A: u64 = 6364136223846793005;
const LCG_C: u64 = 1442695040888963407;

pub(crate) fn fail_work(seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..FAIL_STEPS / 2000 {
        x = spin(2000, x);
    }
    x
}

/// The LCG of [`spin`] applied `n` times to `x`, by squaring the affine map.
pub(crate) fn lcg_jump(mut n: u64, x: u64) -> u64 {
    let (mut a, mut c) = (LCG_A, LCG_C);
    let (mut ta, mut tc) = (1u64, 0u64);
    while n > 0 {
        if n & 1 == 1 {
            ta = ta.wrapping_mul(a);
            tc = tc.wrapping_mul(a).wrapping_add(c);
        }
        c = c.wrapping_mul(a).wrapping_add(c);
        a = a.wrapping_mul(a);
        n >>= 1;
    }
    x.wrapping_mul(ta).wrapping_add(tc)
}

/// With 6 busy processes running, `fail B` (via /proc/braid): the other
/// CPUs detect it, every process finishes once with the right result;
/// then `revive B` and B takes work again.
pub fn fail(args: &[String]) -> Result<(), String> {
    set_placement(args);
    // Per process: [3i] starts, [3i+1] finishes, [3i+2] result.
    let c = shared(18)?;
    let mut pids = Vec::new();
    for i in 0..6u64 {
        pids.push(child(move || {
            c[3 * i as usize].fetch_add(1, Ordering::SeqCst);
            let r = fail_work(i + 1);
            c[3 * i as usize + 2].store(r, Ordering::SeqCst);
            c[3 * i as usize + 1].fetch_add(1, Ordering::SeqCst);
            Ok(())
        })?);
    }
    std::thread::sleep(Duration::from_millis(500));
    let on_b = spread(&pids, 3)[1];
    crate::say!("{on_b} runnable on B when it fails");
    std::fs::write("/proc/braid", "fail B").map_err(|e| format!("fail B: {e}"))?;
    for p in &pids {
        wait_ok(*p, "busy process")?;
    }
    // B's processes may all have finished elsewhere (idle neighbours
    // steal from it) before its successor has waited out the suspicion.
    let detected_by = Instant::now() + Duration::from_secs(3);
    let braid = loop {
        let braid = std::fs::read_to_string("/proc/braid").map_err(|e| e.to_string())?;
        if braid.contains("failure B detected by") || Instant::now() > detected_by {
            break braid;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for l in braid.lines() {
        crate::say!("{l}");
    }
    let line = braid
        .lines()
        .find(|l| l.starts_with("failure B detected by"));
    check(line.is_some(), "the survivors detected the failure of B")?;
    let ms: f64 = line
        .and_then(|l| l.split(" in ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::MAX);
    // Suspected after 40 ms of silence, declared when the suspicion is
    // not refuted within 80-500 ms (twice the lateness the detector saw
    // lately), later if the host did not run the detector meanwhile.
    check(ms < 1500.0, format!("detected in {ms} ms (under 1.5 s)"))?;
    // The adopter finds B's processes through its replica of B (roster
    // and join log), then checks B's queue itself: nothing may be left.
    let line = line.unwrap_or_default();
    check(
        line.contains(" from the replica, 0 missed by it)"),
        "every adopted process came from the replica (none missed, replica complete, queue checked)",
    )?;
    for i in 0..6 {
        let (s, f) = (
            c[3 * i].load(Ordering::SeqCst),
            c[3 * i + 1].load(Ordering::SeqCst),
        );
        check(
            s == 1 && f == 1,
            format!("process {i} started once and finished once ({s}, {f})"),
        )?;
    }
    for i in 0..6u64 {
        let want = lcg_jump(FAIL_STEPS, i + 1);
        let got = c[3 * i as usize + 2].load(Ordering::SeqCst);
        check(
            got == want,
            format!("process {i}'s result {got:#x} is right"),
        )?;
    }
    std::fs::write("/proc/braid", "revive B").map_err(|e| format!("revive B: {e}"))?;
    std::thread::sleep(Duration::from_millis(100));
    // Balance returns: six new busy processes spread over A, B and C.
    let end = Instant::now() + Duration::from_millis(2000);
    let pids = busy_children(6, end)?;
    let t0 = Instant::now();
    let mut on_b_at = None;
    let mut balanced_at = None;
    while Instant::now() < end - Duration::from_millis(300) {
        let s = spread(&pids, 3);
        if s[1] > 0 && on_b_at.is_none() {
            on_b_at = Some(t0.elapsed().as_millis());
        }
        if balanced(&s) && balanced_at.is_none() {
            balanced_at = Some(t0.elapsed().as_millis());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in pids {
        wait_ok(p, "busy process after revive")?;
    }
    crate::say!(
        "after revive: work on B at {on_b_at:?} ms, {} at {balanced_at:?} ms",
        balanced_name()
    );
    check(on_b_at.is_some(), "B runs processes again after revive")?;
    check(
        balanced_at.is_some_and(|t| t <= 1000),
        format!("balance returns ({} within 1 s)", balanced_name()),
    )
}

/// /proc/braid's per-torus table: one map of column name to value per
/// torus, in torus order.
fn braid_table() -> Result<Vec<std::collections::HashMap<String, String>>, String> {
    let s = std::fs::read_to_string("/proc/braid").map_err(|e| format!("/proc/braid: {e}"))?;
    let mut lines = s.lines().skip_while(|l| !l.starts_with("torus index "));
    let head: Vec<String> = lines
        .next()
        .ok_or("/proc/braid has no torus table")?
        .split(' ')
        .map(String::from)
        .collect();
    Ok(lines
        .take_while(|l| !l.starts_with("failure "))
        .map(|l| {
            head.iter()
                .cloned()
                .zip(l.split(' ').map(String::from))
                .collect()
        })
        .collect())
}

/// Column `col` of torus `t` in a [`braid_table`], as a number.
fn braid_num(table: &[std::collections::HashMap<String, String>], t: usize, col: &str) -> u64 {
    table
        .get(t)
        .and_then(|r| r.get(col))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Failures declared by all tori together.
fn failures(table: &[std::collections::HashMap<String, String>]) -> u64 {
    (0..table.len())
        .map(|t| braid_num(table, t, "failures_detected"))
        .sum()
}

fn say_braid() {
    if let Ok(s) = std::fs::read_to_string("/proc/braid") {
        for l in s.lines() {
            crate::say!("{l}");
        }
    }
}

/// Stall lengths of [`stall`]: the short one is longer than the silence
/// after which a torus is suspected (40 ms), and than the old detector's
/// failure timeout (the same 40 ms), shorter than a suspicion's shortest
/// end (40 + 80 ms); the long one outlasts its longest (40 + 500 ms).
const SHORT_STALL_MS: u64 = 60;
const LONG_STALL_MS: u64 = 1000;

/// A torus that is only late is not declared failed, and one declared
/// failed while alive loses nothing and runs nothing twice. Nine busy
/// processes (three per torus) each count rounds of the LCG until told to
/// stop; `stall B 60` (via /proc/braid: B takes no events for 60 ms, as a
/// vCPU the host does not run) must end in a refuted suspicion, no
/// failure; `stall B 1000` in B declared failed by C, its waiting processes
/// adopted while it is alive, and B rejoining. Every process then
/// started once, finished once, and its result matches its count of
/// rounds (a process resumed twice from one saved context would finish
/// twice or lose rounds).
pub fn stall(args: &[String]) -> Result<(), String> {
    set_placement(args);
    const N: usize = 9;
    // Per process: [4i] starts, [4i+1] finishes, [4i+2] rounds, [4i+3]
    // result; [4N] the stop flag.
    let c = shared(4 * N + 1)?;
    let mut pids = Vec::new();
    for i in 0..N {
        pids.push(child(move || {
            c[4 * i].fetch_add(1, Ordering::SeqCst);
            let (mut x, mut n) = (i as u64 + 1, 0u64);
            while c[4 * N].load(Ordering::Relaxed) == 0 {
                x = spin(2000, x);
                n += 1;
            }
            c[4 * i + 2].store(n, Ordering::SeqCst);
            c[4 * i + 3].store(x, Ordering::SeqCst);
            c[4 * i + 1].fetch_add(1, Ordering::SeqCst);
            Ok(())
        })?);
    }
    std::thread::sleep(Duration::from_millis(500));
    let t0 = braid_table()?;
    crate::say!("per-unit spread before the stalls: {:?}", spread(&pids, 3));
    std::fs::write("/proc/braid", format!("stall B {SHORT_STALL_MS}"))
        .map_err(|e| format!("stall B: {e}"))?;
    std::thread::sleep(Duration::from_millis(400));
    let t1 = braid_table()?;
    say_braid();
    check(
        braid_num(&t1, 1, "stalls") == braid_num(&t0, 1, "stalls") + 1,
        format!("B stalled for {SHORT_STALL_MS} ms"),
    )?;
    check(
        failures(&t1) == failures(&t0),
        format!(
            "no torus declared failed after a {SHORT_STALL_MS} ms stall ({} failures before, {} after)",
            failures(&t0),
            failures(&t1)
        ),
    )?;
    check(
        braid_num(&t1, 1, "refutations") > braid_num(&t0, 1, "refutations"),
        "B was suspected and refuted it",
    )?;
    std::fs::write("/proc/braid", format!("stall B {LONG_STALL_MS}"))
        .map_err(|e| format!("stall B: {e}"))?;
    std::thread::sleep(Duration::from_millis(LONG_STALL_MS + 600));
    let t2 = braid_table()?;
    let braid = std::fs::read_to_string("/proc/braid").map_err(|e| e.to_string())?;
    say_braid();
    check(
        braid_num(&t2, 1, "stalls") == braid_num(&t1, 1, "stalls") + 1,
        format!("B stalled for {LONG_STALL_MS} ms"),
    )?;
    let line = braid
        .lines()
        .find(|l| l.starts_with("failure B detected by"))
        .unwrap_or_default();
    let adopted: u64 = line
        .split(", ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    check(
        braid_num(&t2, 2, "failures_detected") > braid_num(&t1, 2, "failures_detected")
            && !line.is_empty(),
        format!("C declared B failed during a {LONG_STALL_MS} ms stall"),
    )?;
    check(
        adopted >= 1,
        format!("B's waiting processes were adopted while it was alive ({adopted})"),
    )?;
    check(
        braid_num(&t2, 1, "rejoins") > braid_num(&t1, 1, "rejoins")
            && t2.get(1).and_then(|r| r.get("state")).map(String::as_str) == Some("up"),
        "B rejoined the ring after its stall",
    )?;
    c[4 * N].store(1, Ordering::SeqCst);
    // A lost process never finishes: look for one before waiting.
    let deadline = Instant::now() + Duration::from_secs(20);
    while (0..N).any(|i| c[4 * i + 1].load(Ordering::SeqCst) == 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..N {
        let (s, f) = (
            c[4 * i].load(Ordering::SeqCst),
            c[4 * i + 1].load(Ordering::SeqCst),
        );
        check(
            s == 1 && f == 1,
            format!("process {i} started once and finished once ({s}, {f})"),
        )?;
    }
    for p in &pids {
        wait_ok(*p, "busy process")?;
    }
    for i in 0..N {
        let n = c[4 * i + 2].load(Ordering::SeqCst);
        let got = c[4 * i + 3].load(Ordering::SeqCst);
        check(
            got == lcg_jump(2000 * n, i as u64 + 1) && n > 0,
            format!("process {i}'s result {got:#x} matches its {n} rounds"),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn jump_matches_steps() {
        let mut x = 7;
        for _ in 0..4000 {
            x = x.wrapping_mul(super::LCG_A).wrapping_add(super::LCG_C);
        }
        assert_eq!(super::lcg_jump(4000, 7), x);
        assert_eq!(super::spin(4000, 7), x);
    }
}
