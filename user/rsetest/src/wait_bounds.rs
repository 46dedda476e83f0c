//! A process interrupted by signals again and again while it waits
//! (nanosleep, poll, a read on an empty pipe) must not make the kernel
//! keep anything per interruption: each wait ends with its registration
//! taken out of the queue it slept on.
//!
//! The check is a leak bound, not a speed bound: it runs up to WAITS
//! interrupted waits or BUDGET, whichever comes first, and needs at least
//! MIN_WAITS of them (a lost wake-up stops the count). An interruption
//! costs ~2.5 ms on 3 CPUs of a 2-core TCG host and ~15 ms on 8, so a
//! fixed count would time the host, not the kernel. The heap may grow by
//! a fixed slack plus under 8 bytes per wait: a wait-queue entry left
//! behind is at least 16.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::{check, errname, fork, meminfo_kib, status_str, wait};

extern "C" fn on_usr1(_: i32) {}

const WAITS: u32 = 45_000;
const BUDGET: Duration = Duration::from_secs(60);
const MIN_WAITS: u32 = 2_000;
const SLACK_KIB: u64 = 16;
const LEAK_BYTES_PER_WAIT: u64 = 8;

pub fn run(args: &[String]) -> Result<(), String> {
    let waits: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(WAITS);
    let min_waits = MIN_WAITS.min(waits);
    let page = crate::util::mmap_shared(4096).map_err(errname)?;
    // SAFETY: a live shared page, used as one atomic word.
    let done = unsafe { &*(page as *const AtomicU32) };
    // SAFETY: the same page, the next word: set when the budget is spent,
    // so the child ends after the wait it is in.
    let stop = unsafe { &*(page.add(4) as *const AtomicU32) };
    // SAFETY: the same page, three words after it: the time (ns) the
    // child spent in each kind of wait.
    let spent = unsafe { &*(page.add(8) as *const [AtomicU64; 3]) };
    let (r, _w) = crate::util::pipe()?;
    let slab_before = meminfo_kib("Slab")?;
    // Installed before the fork, so the child has it from its first
    // instruction. No SA_RESTART: every wait ends with EINTR.
    crate::util::handle(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t, 0)?;
    let pid = fork()?;
    if pid == 0 {
        let mut k = 0u32;
        while k < waits && stop.load(Ordering::SeqCst) == 0 {
            let t = Instant::now();
            let r = match k % 3 {
                0 => {
                    let ts = libc::timespec {
                        tv_sec: 100,
                        tv_nsec: 0,
                    };
                    // SAFETY: valid timespec; no remainder wanted.
                    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) }
                }
                1 => {
                    let mut p = libc::pollfd {
                        fd: r,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, 100_000) }
                }
                _ => {
                    let mut b = 0u8;
                    // SAFETY: one-byte buffer; the pipe stays empty.
                    unsafe { libc::read(r, (&mut b as *mut u8).cast(), 1) as i32 }
                }
            };
            if r == -1 && crate::util::errno() == libc::EINTR {
                spent[k as usize % 3].fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                k += 1;
                done.store(k, Ordering::SeqCst);
            } else {
                crate::util::child_exit(3);
            }
        }
        crate::util::child_exit(0);
    }
    let t0 = Instant::now();
    let mut stalls = Vec::new();
    let (mut last, mut since) = (0, Instant::now());
    // After the budget, the child gets signals for its last wait for up
    // to 10 s more; a child still waiting then lost a wake-up.
    let mut ended = None;
    loop {
        if stop.load(Ordering::SeqCst) == 0 && t0.elapsed() >= BUDGET {
            stop.store(1, Ordering::SeqCst);
        }
        if stop.load(Ordering::SeqCst) != 0 && t0.elapsed() >= BUDGET + Duration::from_secs(10) {
            break;
        }
        let mut st = 0;
        // SAFETY: polling our own child.
        if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
            ended = Some(st);
            break;
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
        // SAFETY: plain call.
        unsafe { libc::sched_yield() };
        let now = done.load(Ordering::SeqCst);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_millis(300) && stalls.len() < 6 {
            stalls.push(stall(pid, done));
            since = Instant::now();
        }
    }
    let got = done.load(Ordering::SeqCst);
    // SAFETY: plain call.
    let cpu = unsafe { libc::sched_getcpu() };
    let placed = match ended {
        Some(_) => format!("child ended, parent on {cpu}"),
        None => format!("child {}, parent on {cpu}", proc_stat(pid)),
    };
    let each = |i: usize| {
        let n = (got as u64 + 2 - i as u64) / 3;
        spent[i].load(Ordering::Relaxed) / n.max(1) / 1000
    };
    crate::say!(
        "wait_bounds: {got} waits in {:.1} s; mean µs from call to EINTR: nanosleep {}, poll {}, pipe read {}; {placed}",
        t0.elapsed().as_secs_f64(),
        each(0),
        each(1),
        each(2)
    );
    if !stalls.is_empty() {
        crate::say!("wait_bounds stalls: {}", stalls.join("; "));
        // RSE OS: whether the tori's failure detector took a torus out
        // meanwhile (a loaded host may not run a vCPU for a while).
        if let Ok(b) = std::fs::read_to_string("/proc/braid") {
            crate::say!("/proc/braid:\n{}", b.trim_end());
        }
    }
    let st = match ended {
        Some(st) => st,
        None => {
            // SAFETY: ending our own child, still in a wait.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            wait(pid)?
        }
    };
    check(
        got >= min_waits && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!(
            "{got} interrupted waits (at least {min_waits} wanted), child {}",
            status_str(st)
        ),
    )?;
    let slab_after = meminfo_kib("Slab")?;
    let grew = slab_after.saturating_sub(slab_before);
    let allowed = SLACK_KIB + got as u64 * LEAK_BYTES_PER_WAIT / 1024;
    check(
        grew < allowed,
        format_args!("kernel objects (Slab) grew by {grew} kB over {got} interrupted waits (under {allowed} allowed)"),
    )?;
    Ok(())
}

/// The child made no progress for a while, a signal pending for it all
/// along: what it is doing. If it finishes its wait once the signals stop
/// (each of which may wake others as well), it was not asleep but kept
/// looking again; if not, a wake-up was lost.
fn stall(pid: libc::pid_t, done: &AtomicU32) -> String {
    let st_a = proc_stat(pid);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
        // SAFETY: plain call.
        unsafe { libc::sched_yield() };
    }
    let before = done.load(Ordering::SeqCst);
    let st0 = format!(
        "{st_a} -> 0.3 s signalled: {}, parent on {}",
        proc_stat(pid),
        unsafe { libc::sched_getcpu() }
    );
    crate::util::sleep_ms(500);
    let after = done.load(Ordering::SeqCst);
    format!(
        "at wait {before} ({}, {}): after 0.5 s without signals, wait {after} ({})",
        ["nanosleep", "poll", "pipe read"][before as usize % 3],
        st0,
        proc_stat(pid)
    )
}

/// The state and CPU ticks of /proc/PID/stat.
fn proc_stat(pid: libc::pid_t) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    format!(
        "state {} utime {} cpu {}",
        f.first().unwrap_or(&"?"),
        f.get(11).unwrap_or(&"?"),
        f.get(36).unwrap_or(&"?")
    )
}
