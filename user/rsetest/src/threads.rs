//! Threads of one process (clone(CLONE_THREAD) through std::thread and
//! glibc's pthreads): a parallel sum over 2 * CPUs threads, Mutex +
//! Condvar ping-pong, an mpsc channel, getpid shared and gettid distinct,
//! SYS_exit ending one thread, process::exit from a thread ending them
//! all, a child process with threads waited for once with its status,
//! process- and thread-directed signals, and the clone flag checks.

use crate::util::{check, close, fork, pipe, read_byte, show, sys, wait};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

fn gettid() -> i32 {
    sys(libc::SYS_gettid, [0; 6]).unwrap_or(-1) as i32
}

fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

pub fn run(_: &[String]) -> Result<(), String> {
    clone_flags()?;
    exit_from_thread()?;
    leader_exits_first()?;
    parallel_sum()?;
    ping_pong()?;
    channel()?;
    ids()?;
    sys_exit_one()?;
    signals()?;
    Ok(())
}

/// Flag combinations Linux rejects, before it creates anything.
fn clone_flags() -> Result<(), String> {
    let r = sys(
        libc::SYS_clone,
        [
            (libc::CLONE_THREAD | libc::CLONE_VM) as libc::c_long,
            0,
            0,
            0,
            0,
            0,
        ],
    );
    check(
        r == Err(libc::EINVAL),
        format_args!(
            "clone(CLONE_THREAD without CLONE_SIGHAND) fails with EINVAL ({})",
            show(r)
        ),
    )?;
    let r = sys(
        libc::SYS_clone,
        [libc::CLONE_SIGHAND as libc::c_long, 0, 0, 0, 0, 0],
    );
    check(
        r == Err(libc::EINVAL),
        format_args!(
            "clone(CLONE_SIGHAND without CLONE_VM) fails with EINVAL ({})",
            show(r)
        ),
    )
}

/// process::exit in one thread ends the others (blocked for 30 s here),
/// and the parent sees that exit code.
fn exit_from_thread() -> Result<(), String> {
    let t0 = Instant::now();
    let pid = fork()?;
    if pid == 0 {
        for _ in 0..3 {
            std::thread::spawn(|| std::thread::sleep(Duration::from_secs(30)));
        }
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            std::process::exit(7);
        });
        std::thread::sleep(Duration::from_secs(30));
        crate::util::child_exit(99);
    }
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7 && t0.elapsed() < Duration::from_secs(20),
        format_args!(
            "process::exit(7) in a thread ends all 5 threads: {} after {:?}",
            crate::util::status_str(st),
            t0.elapsed()
        ),
    )
}

static CHLD: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_chld(_: libc::c_int) {
    CHLD.fetch_add(1, Ordering::SeqCst);
}

/// The leader of a child process exits first (SYS_exit); its 3 threads go
/// on; the parent can wait for the process only once all have ended, and
/// does so once, with one SIGCHLD.
fn leader_exits_first() -> Result<(), String> {
    crate::util::handle(
        libc::SIGCHLD,
        on_chld as *const () as libc::sighandler_t,
        libc::SA_RESTART,
    )?;
    CHLD.store(0, Ordering::SeqCst);
    let (r, w) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        close(r);
        for _ in 0..3 {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(400));
                crate::util::write_all(w, b"t");
            });
        }
        crate::util::write_all(w, b"L");
        // The leader ends alone; glibc's thread count still includes it,
        // so the last thread ends with SYS_exit(0) rather than exit_group.
        let _ = sys(libc::SYS_exit, [0; 6]);
        crate::util::child_exit(98);
    }
    close(w);
    let first = read_byte(r);
    std::thread::sleep(Duration::from_millis(100));
    let mut st = 0;
    // SAFETY: st is a valid out-pointer.
    let early = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
    check(
        first == Some(b'L') && early == 0,
        format_args!("after its leader's exit, a process with live threads is not waitable (waitpid WNOHANG = {early})"),
    )?;
    let mut rest = Vec::new();
    while let Some(b) = read_byte(r) {
        rest.push(b);
    }
    close(r);
    check(
        rest == b"ttt",
        format_args!(
            "its 3 threads ran on after the leader exited ({:?})",
            String::from_utf8_lossy(&rest)
        ),
    )?;
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!("then waited for once: {}", crate::util::status_str(st)),
    )?;
    let again = crate::util::wait(pid);
    std::thread::sleep(Duration::from_millis(50));
    let n = CHLD.load(Ordering::SeqCst);
    crate::util::handle(libc::SIGCHLD, libc::SIG_DFL, 0)?;
    check(
        again.as_ref().is_err_and(|e| e.contains("ECHILD")) && n == 1,
        format_args!("a second waitpid fails with ECHILD ({again:?}), one SIGCHLD ({n})"),
    )
}

/// 2 * CPUs threads each sum a slice; join gives every part.
fn parallel_sum() -> Result<(), String> {
    let n = 2 * std::thread::available_parallelism().map_or(1, |n| n.get());
    let data: Arc<Vec<u64>> = Arc::new((1..=1_000_000).collect());
    let chunk = data.len().div_ceil(n);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let d = data.clone();
            std::thread::spawn(move || {
                d[(i * chunk).min(d.len())..((i + 1) * chunk).min(d.len())]
                    .iter()
                    .sum::<u64>()
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h
            .join()
            .map_err(|_| "a summing thread panicked".to_string())?;
    }
    check(
        total == 500_000_500_000,
        format_args!("{n} threads sum 1..=1000000 in parallel: {total}"),
    )
}

/// Two threads hand a token back and forth 2000 times.
fn ping_pong() -> Result<(), String> {
    const ROUNDS: u32 = 2000;
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let p2 = pair.clone();
    let other = std::thread::spawn(move || {
        let (m, c) = &*p2;
        let mut v = m.lock().unwrap();
        while *v < 2 * ROUNDS {
            if *v % 2 == 1 {
                *v += 1;
                c.notify_one();
            } else {
                v = c.wait(v).unwrap();
            }
        }
    });
    {
        let (m, c) = &*pair;
        let mut v = m.lock().unwrap();
        while *v < 2 * ROUNDS {
            if *v % 2 == 0 {
                *v += 1;
                c.notify_one();
            } else {
                v = c.wait(v).unwrap();
            }
        }
    }
    other
        .join()
        .map_err(|_| "ping-pong thread panicked".to_string())?;
    let v = *pair.0.lock().unwrap();
    check(
        v == 2 * ROUNDS,
        format_args!("Mutex + Condvar ping-pong: {ROUNDS} rounds ({v} moves)"),
    )
}

/// 4 producers, one consumer.
fn channel() -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<u64>();
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    tx.send(p * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let got: Vec<u64> = rx.iter().collect();
    for p in producers {
        p.join().map_err(|_| "producer panicked".to_string())?;
    }
    let mut sorted = got.clone();
    sorted.sort();
    check(
        sorted == (0..4000).collect::<Vec<_>>(),
        format_args!(
            "mpsc: 4 producers x 1000 messages, each received once ({})",
            got.len()
        ),
    )
}

/// getpid is the process's in every thread; gettid is each thread's.
fn ids() -> Result<(), String> {
    let pid = getpid();
    let main_tid = gettid();
    let hs: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| (getpid(), gettid())))
        .collect();
    let mut ids: Vec<(i32, i32)> = Vec::new();
    for h in hs {
        ids.push(h.join().map_err(|_| "id thread panicked".to_string())?);
    }
    let mut tids: Vec<i32> = ids.iter().map(|x| x.1).collect();
    tids.push(main_tid);
    tids.sort();
    tids.dedup();
    check(
        main_tid == pid && ids.iter().all(|x| x.0 == pid) && tids.len() == 5,
        format_args!("getpid is {pid} in all threads, gettid distinct ({main_tid} and {ids:?})"),
    )
}

/// SYS_exit in a thread ends it alone: it disappears (tgkill ESRCH), the
/// process goes on.
fn sys_exit_one() -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        tx.send(gettid()).unwrap();
        let _ = sys(libc::SYS_exit, [0; 6]);
    });
    // Never joined: its result is never written. Dropping detaches.
    drop(h);
    let tid = rx.recv().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let gone = loop {
        let r = sys(libc::SYS_tgkill, [getpid() as _, tid as _, 0, 0, 0, 0]);
        if r == Err(libc::ESRCH) {
            break true;
        }
        if t0.elapsed() > Duration::from_secs(5) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    check(
        gone,
        format_args!("SYS_exit ends only its thread ({tid} gone, the process goes on)"),
    )
}

static USR1: AtomicUsize = AtomicUsize::new(0);
static USR1_TID: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_usr1(_: libc::c_int) {
    USR1.fetch_add(1, Ordering::SeqCst);
    USR1_TID.store(gettid(), Ordering::SeqCst);
}

fn wait_usr1(n: usize) -> usize {
    let t0 = Instant::now();
    while USR1.load(Ordering::SeqCst) < n && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(100));
    USR1.load(Ordering::SeqCst)
}

/// kill(getpid()) is delivered once, to a thread that does not block it;
/// tgkill to the thread named.
fn signals() -> Result<(), String> {
    crate::util::handle(
        libc::SIGUSR1,
        on_usr1 as *const () as libc::sighandler_t,
        libc::SA_RESTART,
    )?;
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let (tx, rx) = mpsc::channel();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                tx.send(gettid()).unwrap();
                let (m, c) = &*stop;
                let mut s = m.lock().unwrap();
                while !*s {
                    s = c.wait(s).unwrap();
                }
            })
        })
        .collect();
    let tids: Vec<i32> = (0..3).filter_map(|_| rx.recv().ok()).collect();
    // SAFETY: kill has no memory preconditions.
    let r = unsafe { libc::kill(getpid(), libc::SIGUSR1) };
    let n = wait_usr1(1);
    check(
        r == 0 && n == 1,
        format_args!("kill(getpid(), SIGUSR1) with 4 threads runs the handler once ({n})"),
    )?;
    // Blocked in this thread: it must go to one of the others.
    crate::util::sigmask(libc::SIG_BLOCK, &[libc::SIGUSR1])?;
    // SAFETY: as above.
    unsafe { libc::kill(getpid(), libc::SIGUSR1) };
    let n = wait_usr1(2);
    let who = USR1_TID.load(Ordering::SeqCst);
    check(
        n == 2 && tids.contains(&who),
        format_args!("with SIGUSR1 blocked in the main thread, kill delivers it to another ({who} in {tids:?})"),
    )?;
    let target = tids[1];
    let r = sys(
        libc::SYS_tgkill,
        [getpid() as _, target as _, libc::SIGUSR1 as _, 0, 0, 0],
    );
    let n = wait_usr1(3);
    let who = USR1_TID.load(Ordering::SeqCst);
    check(
        r.is_ok() && n == 3 && who == target,
        format_args!(
            "tgkill(pid, {target}, SIGUSR1) runs the handler in that thread ({who}, {})",
            show(r)
        ),
    )?;
    let r = sys(
        libc::SYS_tgkill,
        [(getpid() + 100000) as _, target as _, 0, 0, 0, 0],
    );
    check(
        r == Err(libc::ESRCH),
        format_args!("tgkill with the wrong tgid fails with ESRCH ({})", show(r)),
    )?;
    crate::util::sigmask(libc::SIG_UNBLOCK, &[libc::SIGUSR1])?;
    *stop.0.lock().unwrap() = true;
    stop.1.notify_all();
    for w in waiters {
        w.join().map_err(|_| "waiter panicked".to_string())?;
    }
    // A joined thread may still be leaving (the join wakes at its tid
    // clear, before it is counted out, on Linux too).
    let t0 = Instant::now();
    let threads = loop {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let t = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .map(|s| s.trim().to_string());
        if t.as_deref() == Some("1") || t0.elapsed() > Duration::from_secs(2) {
            break t;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    check(
        threads.as_deref() == Some("1"),
        format_args!("/proc/self/status says Threads: 1 once they are joined ({threads:?})"),
    )?;
    Ok(())
}
