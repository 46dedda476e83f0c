//! Signals: sigaction handlers (with siginfo), the handler's own signal
//! blocked while it runs, sigprocmask blocking and pending signals,
//! SIGCHLD with sigsuspend, kill to a child (default action, ignored
//! signal, SIGKILL, handler), EINTR from a blocking read, SIGPIPE/EPIPE.
//! (A shell reporting 128+signal is the shell's work; the raw wait status
//! checked here is the kernel's.)

use crate::util::{
    check, close, errname, errno, fork, handle, pipe, read_byte, sigmask, sleep_ms, spawn,
    status_str, wait, write_all,
};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering::SeqCst};

static USR1: AtomicU32 = AtomicU32::new(0);
static DEPTH: AtomicU32 = AtomicU32::new(0);
static MAX_DEPTH: AtomicU32 = AtomicU32::new(0);
static RESEND: AtomicU32 = AtomicU32::new(0);
static SI_SIGNO: AtomicI32 = AtomicI32::new(0);
static SI_CODE: AtomicI32 = AtomicI32::new(0);
static SI_PID: AtomicI32 = AtomicI32::new(0);
static CHLD: AtomicU32 = AtomicU32::new(0);
static CHLD_PID: AtomicI32 = AtomicI32::new(0);
static CHLD_STATUS: AtomicI32 = AtomicI32::new(0);
static CHLD_CODE: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_usr1(_: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let d = DEPTH.fetch_add(1, SeqCst) + 1;
    MAX_DEPTH.fetch_max(d, SeqCst);
    USR1.fetch_add(1, SeqCst);
    // SAFETY: SA_SIGINFO handlers get a valid siginfo.
    unsafe {
        SI_SIGNO.store((*info).si_signo, SeqCst);
        SI_CODE.store((*info).si_code, SeqCst);
        SI_PID.store((*info).si_pid(), SeqCst);
    }
    if RESEND.swap(0, SeqCst) == 1 {
        // Blocked while we run: must arrive after we return, not nest.
        // SAFETY: no preconditions.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    }
    DEPTH.fetch_sub(1, SeqCst);
}

extern "C" fn on_chld(_: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    CHLD.fetch_add(1, SeqCst);
    // SAFETY: SA_SIGINFO handlers get a valid siginfo.
    unsafe {
        CHLD_PID.store((*info).si_pid(), SeqCst);
        CHLD_STATUS.store((*info).si_status(), SeqCst);
        CHLD_CODE.store((*info).si_code, SeqCst);
    }
}

extern "C" fn exit42(_: i32) {
    crate::util::child_exit(42);
}

extern "C" fn nothing(_: i32) {}

fn handler(f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void)) -> libc::sighandler_t {
    f as *const () as libc::sighandler_t
}

fn plain(f: extern "C" fn(i32)) -> libc::sighandler_t {
    f as *const () as libc::sighandler_t
}

fn kill(pid: libc::pid_t, sig: i32) -> i32 {
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(pid, sig) }
}

fn getpid() -> libc::pid_t {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

fn blocked(sig: i32) -> bool {
    // SAFETY: querying the mask into a valid sigset.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, std::ptr::null(), &mut old);
        libc::sigismember(&old, sig) == 1
    }
}

fn pending(sig: i32) -> bool {
    // SAFETY: sigpending into a valid sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set);
        libc::sigismember(&set, sig) == 1
    }
}

/// A child that reports "ready" on a pipe and then waits for signals.
fn waiting_child(setup: impl FnOnce()) -> Result<libc::pid_t, String> {
    let (r, w) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        close(r);
        setup();
        write_all(w, b"r");
        loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        }
    }
    close(w);
    let ready = read_byte(r);
    close(r);
    if ready != Some(b'r') {
        return Err("child did not get ready".into());
    }
    Ok(pid)
}

fn killed_by(st: i32, sig: i32) -> bool {
    libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == sig && !libc::WIFEXITED(st)
}

pub fn run(_: &[String]) -> Result<(), String> {
    // 1. A handler runs, with siginfo.
    handle(
        libc::SIGUSR1,
        handler(on_usr1),
        libc::SA_SIGINFO | libc::SA_RESTART,
    )?;
    let me = getpid();
    check(kill(me, libc::SIGUSR1) == 0, "kill(self, SIGUSR1)")?;
    check(
        USR1.load(SeqCst) == 1,
        format_args!("the SIGUSR1 handler ran once (ran {})", USR1.load(SeqCst)),
    )?;
    check(
        SI_SIGNO.load(SeqCst) == libc::SIGUSR1
            && SI_CODE.load(SeqCst) == libc::SI_USER
            && SI_PID.load(SeqCst) == me,
        format_args!(
            "siginfo: si_signo {} si_code {} si_pid {} (want {} SI_USER {me})",
            SI_SIGNO.load(SeqCst),
            SI_CODE.load(SeqCst),
            SI_PID.load(SeqCst),
            libc::SIGUSR1
        ),
    )?;
    // The old action reads back.
    // SAFETY: querying into a valid sigaction.
    let old = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGUSR1, std::ptr::null(), &mut old);
        old
    };
    check(
        old.sa_sigaction == handler(on_usr1) && old.sa_flags & libc::SA_SIGINFO != 0,
        "sigaction reads back the installed handler and SA_SIGINFO",
    )?;

    // 2. While a handler runs, its signal is blocked: a kill from inside
    // is delivered after it returns, not nested; the mask is restored.
    RESEND.store(1, SeqCst);
    kill(me, libc::SIGUSR1);
    check(
        USR1.load(SeqCst) == 3 && MAX_DEPTH.load(SeqCst) == 1,
        format_args!(
            "a signal raised inside its own handler runs after it (count {}, max depth {})",
            USR1.load(SeqCst),
            MAX_DEPTH.load(SeqCst)
        ),
    )?;
    check(
        !blocked(libc::SIGUSR1),
        "the signal mask is restored after the handler (sigreturn)",
    )?;

    // 3. sigprocmask: blocked signals stay pending, coalesce, and are
    // delivered when unblocked.
    sigmask(libc::SIG_BLOCK, &[libc::SIGUSR1])?;
    check(blocked(libc::SIGUSR1), "sigprocmask blocks SIGUSR1")?;
    kill(me, libc::SIGUSR1);
    kill(me, libc::SIGUSR1);
    check(
        USR1.load(SeqCst) == 3,
        "blocked SIGUSR1 x2 does not run the handler",
    )?;
    check(pending(libc::SIGUSR1), "sigpending shows SIGUSR1")?;
    sigmask(libc::SIG_UNBLOCK, &[libc::SIGUSR1])?;
    check(
        USR1.load(SeqCst) == 4,
        format_args!(
            "unblocking delivers it exactly once (handler count {}, want 4)",
            USR1.load(SeqCst)
        ),
    )?;
    check(!pending(libc::SIGUSR1), "nothing pending afterwards")?;

    // 4. SIGCHLD, waited for with sigsuspend.
    handle(
        libc::SIGCHLD,
        handler(on_chld),
        libc::SA_SIGINFO | libc::SA_RESTART,
    )?;
    sigmask(libc::SIG_BLOCK, &[libc::SIGCHLD])?;
    let pid = spawn(|| {
        crate::util::child_exit(7);
    })?;
    // SAFETY: an empty mask for sigsuspend.
    let r = unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigsuspend(&empty)
    };
    let e = errno();
    check(
        r == -1 && e == libc::EINTR,
        format_args!("sigsuspend returns EINTR after SIGCHLD ({})", errname(e)),
    )?;
    check(
        CHLD.load(SeqCst) == 1
            && CHLD_PID.load(SeqCst) == pid
            && CHLD_STATUS.load(SeqCst) == 7
            && CHLD_CODE.load(SeqCst) == libc::CLD_EXITED,
        format_args!(
            "SIGCHLD handler: count {} si_pid {} si_status {} si_code {} (want 1 {pid} 7 CLD_EXITED)",
            CHLD.load(SeqCst),
            CHLD_PID.load(SeqCst),
            CHLD_STATUS.load(SeqCst),
            CHLD_CODE.load(SeqCst)
        ),
    )?;
    check(
        blocked(libc::SIGCHLD),
        "sigsuspend restored the mask (SIGCHLD blocked again)",
    )?;
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7,
        format_args!("waitpid: child {}", status_str(st)),
    )?;
    sigmask(libc::SIG_UNBLOCK, &[libc::SIGCHLD])?;
    handle(libc::SIGCHLD, libc::SIG_DFL, 0)?;

    // 5. kill to a child: default action of SIGTERM.
    let pid = waiting_child(|| {})?;
    check(kill(pid, libc::SIGTERM) == 0, "kill(child, SIGTERM)")?;
    let st = wait(pid)?;
    check(
        killed_by(st, libc::SIGTERM),
        format_args!("the child is killed by SIGTERM ({})", status_str(st)),
    )?;

    // 6. An ignored signal does nothing; SIGKILL cannot be ignored.
    let pid = waiting_child(|| {
        let _ = handle(libc::SIGTERM, libc::SIG_IGN, 0);
        let _ = handle(libc::SIGKILL, libc::SIG_IGN, 0); // must fail
    })?;
    kill(pid, libc::SIGTERM);
    sleep_ms(50);
    let mut st = 0;
    // SAFETY: st is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
    check(r == 0, "a child ignoring SIGTERM survives it")?;
    check(kill(pid, 0) == 0, "kill(child, 0) finds it alive")?;
    kill(pid, libc::SIGKILL);
    let st = wait(pid)?;
    check(
        killed_by(st, libc::SIGKILL),
        format_args!("SIGKILL kills it anyway ({})", status_str(st)),
    )?;
    let r = kill(pid, 0);
    let e = errno();
    check(
        r == -1 && e == libc::ESRCH,
        format_args!("kill(reaped child, 0) -> ESRCH ({})", errname(e)),
    )?;
    // SAFETY: a zeroed sigaction with SIG_IGN; only the result is checked.
    let r = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(libc::SIGKILL, &sa, std::ptr::null_mut())
    };
    let e = errno();
    check(
        r == -1 && e == libc::EINVAL,
        format_args!("sigaction(SIGKILL) -> EINVAL ({})", errname(e)),
    )?;

    // 7. A child's handler runs on kill from the parent.
    let pid = waiting_child(|| {
        let _ = handle(libc::SIGUSR2, plain(exit42), 0);
    })?;
    kill(pid, libc::SIGUSR2);
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 42,
        format_args!(
            "the child's SIGUSR2 handler ran and exited 42 ({})",
            status_str(st)
        ),
    )?;

    // 8. A signal interrupts a blocking read: EINTR (no SA_RESTART).
    let (r, w) = pipe()?;
    let (rr, rw) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        close(w);
        close(rr);
        let _ = handle(libc::SIGUSR1, plain(nothing), 0);
        write_all(rw, b"r");
        let mut b = 0u8;
        // SAFETY: b is a valid buffer.
        let n = unsafe { libc::read(r, (&mut b as *mut u8).cast(), 1) };
        let e = errno();
        crate::util::child_exit(if n == -1 && e == libc::EINTR { 0 } else { 1 });
    }
    close(r);
    close(rw);
    read_byte(rr);
    close(rr);
    // The signal may come before the child blocks: send until it ends.
    let mut st = 0;
    let mut ended = false;
    for _ in 0..500 {
        sleep_ms(10);
        kill(pid, libc::SIGUSR1);
        // SAFETY: st is a valid out-pointer.
        if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
            ended = true;
            break;
        }
    }
    close(w);
    if !ended {
        kill(pid, libc::SIGKILL);
        st = wait(pid)?;
    }
    check(
        ended && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!(
            "a blocking read is interrupted with EINTR (child {})",
            status_str(st)
        ),
    )?;

    // 9. SIGPIPE by default on a pipe without readers; EPIPE if ignored.
    for ignore in [false, true] {
        let (r, w) = pipe()?;
        close(r);
        let pid = spawn(|| {
            // Explicitly: SIGPIPE may be inherited as ignored.
            handle(
                libc::SIGPIPE,
                if ignore { libc::SIG_IGN } else { libc::SIG_DFL },
                0,
            )?;
            // SAFETY: writing from a valid buffer.
            let n = unsafe { libc::write(w, b"x".as_ptr().cast(), 1) };
            let e = errno();
            if ignore && n == -1 && e == libc::EPIPE {
                Ok(())
            } else {
                Err(format!("write returned {n} ({})", errname(e)))
            }
        })?;
        close(w);
        let st = wait(pid)?;
        if ignore {
            check(
                libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
                format_args!(
                    "with SIGPIPE ignored, write gets EPIPE (child {})",
                    status_str(st)
                ),
            )?;
        } else {
            check(
                killed_by(st, libc::SIGPIPE),
                format_args!("writing to a pipe without readers: {}", status_str(st)),
            )?;
        }
    }
    Ok(())
}
