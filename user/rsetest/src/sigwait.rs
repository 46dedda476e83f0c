//! rt_sigtimedwait(2): a pending signal of the set is taken (with its
//! siginfo), the timeout gives EAGAIN, a signal sent later wakes the
//! waiter, and a process-directed signal that every thread blocks goes
//! to the thread waiting for it. A standard signal already pending is
//! not queued again and keeps its first siginfo.

use std::time::{Duration, Instant};

use crate::util::{check, errname, errno, fork, sigmask, sleep_ms, wait_ok};

/// The thread the SIGUSR2 handler ran in.
static TAKEN_BY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn on_usr2(_: i32) {
    // SAFETY: gettid has no side effects.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
    TAKEN_BY.store(tid, std::sync::atomic::Ordering::SeqCst);
}

fn set_of(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        for &g in sigs {
            libc::sigaddset(&mut s, g);
        }
        s
    }
}

/// sigtimedwait for `sigs` with a timeout in ms: Ok((signo, si_pid)).
fn timed_wait(sigs: &[i32], ms: u64) -> Result<(i32, i32), i32> {
    let set = set_of(sigs);
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as i64,
        tv_nsec: ((ms % 1000) * 1_000_000) as i64,
    };
    // SAFETY: set, info and ts are valid for the call.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::sigtimedwait(&set, &mut info, &ts);
        if r < 0 {
            Err(errno())
        } else {
            Ok((r, info.si_pid()))
        }
    }
}

fn show(r: Result<(i32, i32), i32>) -> String {
    match r {
        Ok((s, p)) => format!("signal {s} from pid {p}"),
        Err(e) => errname(e),
    }
}

pub fn run(_: &[String]) -> Result<(), String> {
    sigmask(libc::SIG_BLOCK, &[libc::SIGUSR1, libc::SIGUSR2])?;
    // SAFETY: getpid and kill are always safe.
    let me = unsafe { libc::getpid() };
    unsafe { libc::kill(me, libc::SIGUSR1) };
    let r = timed_wait(&[libc::SIGUSR1], 0);
    check(
        r == Ok((libc::SIGUSR1, me)),
        format_args!(
            "a pending SIGUSR1 is taken at once with its sender: {}",
            show(r)
        ),
    )?;

    let t = Instant::now();
    let r = timed_wait(&[libc::SIGUSR1], 100);
    let took = t.elapsed();
    check(
        r == Err(libc::EAGAIN) && took >= Duration::from_millis(95),
        format_args!(
            "nothing pending: EAGAIN after the timeout ({}, {took:?})",
            show(r)
        ),
    )?;

    // A signal sent later (by a child) wakes the waiter.
    let pid = fork()?;
    if pid == 0 {
        sleep_ms(100);
        // SAFETY: kill is always safe.
        unsafe { libc::kill(libc::getppid(), libc::SIGUSR2) };
        crate::util::child_exit(0);
    }
    let r = timed_wait(&[libc::SIGUSR1, libc::SIGUSR2], 10_000);
    check(
        r == Ok((libc::SIGUSR2, pid)),
        format_args!("a signal sent later wakes the waiter: {}", show(r)),
    )?;
    wait_ok(pid, "sender")?;

    // Every thread blocks SIGUSR1 (the mask is inherited); a second
    // thread waits for it; kill() to the process must reach that thread.
    let waiter = std::thread::spawn(|| timed_wait(&[libc::SIGUSR1], 10_000));
    sleep_ms(100);
    // SAFETY: kill is always safe.
    unsafe { libc::kill(me, libc::SIGUSR1) };
    let r = waiter.join().map_err(|_| "waiter panicked".to_string())?;
    check(
        r == Ok((libc::SIGUSR1, me)),
        format_args!(
            "a process-directed signal goes to the thread waiting for it: {}",
            show(r)
        ),
    )?;
    // SAFETY: sigpending writes a sigset.
    let pending = unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut s);
        libc::sigismember(&s, libc::SIGUSR1)
    };
    check(
        pending == 0,
        "and it is not left pending on the main thread",
    )?;

    // Every thread blocks SIGUSR2; kill() to the process waits for the
    // process, and a thread that unblocks it later takes it (Linux's
    // shared queue), not the main thread it could have been parked on.
    // SAFETY: kill is always safe.
    unsafe { libc::kill(me, libc::SIGUSR2) };
    let taker = std::thread::spawn(|| {
        TAKEN_BY.store(0, std::sync::atomic::Ordering::SeqCst);
        let _ = crate::util::handle(libc::SIGUSR2, on_usr2 as *const () as libc::sighandler_t, 0);
        let _ = sigmask(libc::SIG_UNBLOCK, &[libc::SIGUSR2]);
        // SAFETY: gettid has no side effects.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
        (tid, TAKEN_BY.load(std::sync::atomic::Ordering::SeqCst))
    });
    let (tid, by) = taker.join().map_err(|_| "taker panicked".to_string())?;
    check(
        by == tid,
        format_args!("a signal all threads blocked is taken by the thread that unblocks it (handler ran in {by}, thread {tid})"),
    )?;
    let _ = crate::util::handle(libc::SIGUSR2, libc::SIG_DFL, 0);

    // A standard signal sent to a thread while it is pending is not
    // queued again: one is taken, with the first sender's siginfo.
    // SAFETY: tgkill to our own main thread (tid == pid).
    unsafe { libc::syscall(libc::SYS_tgkill, me, me, libc::SIGUSR1) };
    let pid = fork()?;
    if pid == 0 {
        // SAFETY: the same, from the child, to its parent's main thread.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::getppid(),
                libc::getppid(),
                libc::SIGUSR1,
            )
        };
        crate::util::child_exit(0);
    }
    wait_ok(pid, "second sender")?;
    let first = timed_wait(&[libc::SIGUSR1], 0);
    let second = timed_wait(&[libc::SIGUSR1], 0);
    check(
        first == Ok((libc::SIGUSR1, me)) && second == Err(libc::EAGAIN),
        format_args!(
            "SIGUSR1 sent twice while pending is taken once, from its first sender {me}: {}, then {}",
            show(first),
            show(second)
        ),
    )?;

    let bad = libc::timespec {
        tv_sec: 0,
        tv_nsec: 2_000_000_000,
    };
    let set = set_of(&[libc::SIGUSR1]);
    // SAFETY: the set is valid; the timeout is invalid on purpose.
    let r = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &bad) };
    check(r == -1 && errno() == libc::EINVAL, "tv_nsec of 2e9: EINVAL")?;
    // SAFETY: a deliberately bad set pointer.
    let r =
        unsafe { libc::sigtimedwait(4096 as *const libc::sigset_t, std::ptr::null_mut(), &bad) };
    check(
        r == -1 && errno() == libc::EFAULT,
        "a bad set pointer: EFAULT",
    )?;
    sigmask(libc::SIG_UNBLOCK, &[libc::SIGUSR1, libc::SIGUSR2])
}
