//! Timers that signal: alarm, setitimer/getitimer (ITIMER_REAL), and
//! POSIX timers (timer_create/settime/gettime/getoverrun/delete) with
//! SIGEV_SIGNAL, SIGEV_THREAD_ID and SIGEV_NONE. The signals are blocked
//! and taken with sigtimedwait, so each check sees its siginfo.

use std::time::{Duration, Instant};

use crate::util::{check, errname, errno, sigmask, sys};

const NS: i64 = 1_000_000_000;

/// sigtimedwait for `sig` up to `ms`: (si_code, si_value) or the errno.
fn take(sig: i32, ms: i64) -> Result<(i32, u64), i32> {
    // SAFETY: the set, siginfo and timeout are valid for the call.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        let ts = libc::timespec {
            tv_sec: ms / 1000,
            tv_nsec: (ms % 1000) * 1_000_000,
        };
        let mut info: libc::siginfo_t = std::mem::zeroed();
        if libc::sigtimedwait(&set, &mut info, &ts) < 0 {
            return Err(errno());
        }
        // si_value sits at offset 24 of siginfo_t for timers.
        let raw: [u8; 128] = std::mem::transmute(info);
        let value = u64::from_le_bytes(raw[24..32].try_into().unwrap_or([0; 8]));
        Ok((info.si_code, value))
    }
}

fn itimer(value_ms: i64, interval_ms: i64) -> Result<libc::itimerval, String> {
    let tv = |ms: i64| libc::timeval {
        tv_sec: ms / 1000,
        tv_usec: (ms % 1000) * 1000,
    };
    let new = libc::itimerval {
        it_interval: tv(interval_ms),
        it_value: tv(value_ms),
    };
    // SAFETY: both pointers are valid.
    unsafe {
        let mut old: libc::itimerval = std::mem::zeroed();
        if libc::setitimer(libc::ITIMER_REAL, &new, &mut old) != 0 {
            return Err(format!("setitimer: {}", errname(errno())));
        }
        Ok(old)
    }
}

fn spec(value_ns: i64, interval_ns: i64) -> libc::itimerspec {
    libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: interval_ns / NS,
            tv_nsec: interval_ns % NS,
        },
        it_value: libc::timespec {
            tv_sec: value_ns / NS,
            tv_nsec: value_ns % NS,
        },
    }
}

/// timer_create through the raw syscall (the kernel's id, no glibc
/// wrapper state): SIGEV_SIGNAL, or SIGEV_THREAD_ID to `tid`.
fn create(signo: i32, notify: i32, tid: i32, value: u64) -> Result<i32, i32> {
    // struct sigevent: sigev_value, sigev_signo, sigev_notify, tid, pad.
    let mut ev = [0u8; 64];
    ev[..8].copy_from_slice(&value.to_le_bytes());
    ev[8..12].copy_from_slice(&signo.to_le_bytes());
    ev[12..16].copy_from_slice(&notify.to_le_bytes());
    ev[16..20].copy_from_slice(&tid.to_le_bytes());
    let mut id: i32 = -1;
    sys(
        libc::SYS_timer_create,
        [
            libc::CLOCK_MONOTONIC as libc::c_long,
            ev.as_ptr() as libc::c_long,
            &mut id as *mut i32 as libc::c_long,
            0,
            0,
            0,
        ],
    )?;
    Ok(id)
}

fn settime(id: i32, value_ns: i64, interval_ns: i64) -> Result<(), i32> {
    let s = spec(value_ns, interval_ns);
    sys(
        libc::SYS_timer_settime,
        [
            id as libc::c_long,
            0,
            &s as *const _ as libc::c_long,
            0,
            0,
            0,
        ],
    )
    .map(|_| ())
}

fn gettime(id: i32) -> Result<libc::itimerspec, i32> {
    let mut s = spec(0, 0);
    sys(
        libc::SYS_timer_gettime,
        [
            id as libc::c_long,
            &mut s as *mut _ as libc::c_long,
            0,
            0,
            0,
            0,
        ],
    )?;
    Ok(s)
}

fn delete(id: i32) -> Result<(), i32> {
    sys(libc::SYS_timer_delete, [id as libc::c_long, 0, 0, 0, 0, 0]).map(|_| ())
}

const SI_TIMER: i32 = -2;
const SI_KERNEL: i32 = 0x80;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;

pub fn run(_: &[String]) -> Result<(), String> {
    sigmask(
        libc::SIG_BLOCK,
        &[libc::SIGALRM, libc::SIGUSR1, libc::SIGUSR2],
    )?;

    // alarm: the previous alarm's seconds, rounded up.
    // SAFETY: alarm is always safe.
    let (a, b) = unsafe { (libc::alarm(5), libc::alarm(0)) };
    check(
        a == 0 && b == 5,
        format_args!("alarm(5) then alarm(0): {a}, {b} (want 0, 5)"),
    )?;

    // ITIMER_REAL one-shot: SIGALRM after the time, from the kernel.
    let t = Instant::now();
    itimer(100, 0)?;
    let r = take(libc::SIGALRM, 5000);
    let took = t.elapsed();
    check(
        matches!(r, Ok((SI_KERNEL, _))) && took >= Duration::from_millis(95),
        format_args!("setitimer 100 ms: SIGALRM (SI_KERNEL) after {took:?}: {r:?}"),
    )?;

    // getitimer of an armed timer; setitimer returns the old setting.
    itimer(10_000, 0)?;
    let old = itimer(0, 0)?;
    let left = old.it_value.tv_sec * 1_000_000 + old.it_value.tv_usec;
    check(
        (9_000_000..=10_000_000).contains(&left),
        format_args!("setitimer returns the time left of the old timer: {left} us"),
    )?;
    // SAFETY: a valid out-pointer.
    let cur = unsafe {
        let mut v: libc::itimerval = std::mem::zeroed();
        libc::getitimer(libc::ITIMER_REAL, &mut v);
        v
    };
    check(
        cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0,
        "getitimer after disarming: zero",
    )?;

    // Periodic: three expiries, then disarm.
    itimer(30, 30)?;
    let mut got = 0;
    for _ in 0..3 {
        if take(libc::SIGALRM, 5000).is_ok() {
            got += 1;
        }
    }
    itimer(0, 0)?;
    check(
        got == 3,
        format_args!("a 30 ms periodic itimer fires again and again ({got}/3)"),
    )?;
    let bad = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 0,
            tv_usec: 1_000_000,
        },
    };
    // SAFETY: valid pointers; the value is invalid on purpose.
    let r = unsafe { libc::setitimer(libc::ITIMER_REAL, &bad, std::ptr::null_mut()) };
    check(r == -1 && errno() == libc::EINVAL, "tv_usec of 1e6: EINVAL")?;

    // POSIX timer, SIGEV_SIGNAL: SI_TIMER with our sigev_value.
    let value = 0x1234_abcd_5678_u64;
    let id = create(libc::SIGUSR1, SIGEV_SIGNAL, 0, value)
        .map_err(|e| format!("timer_create: {}", errname(e)))?;
    settime(id, 50_000_000, 0).map_err(errname)?;
    let r = take(libc::SIGUSR1, 5000);
    check(
        r == Ok((SI_TIMER, value)),
        format_args!("timer_create + settime 50 ms: SIGUSR1, SI_TIMER, our si_value: {r:?}"),
    )?;

    // timer_gettime of an armed timer, then delete.
    settime(id, 10 * NS, 0).map_err(errname)?;
    let s = gettime(id).map_err(errname)?;
    check(
        s.it_value.tv_sec == 9 || (s.it_value.tv_sec == 10 && s.it_value.tv_nsec == 0),
        format_args!(
            "timer_gettime: {}.{:09} s left of 10",
            s.it_value.tv_sec, s.it_value.tv_nsec
        ),
    )?;
    delete(id).map_err(errname)?;
    check(
        gettime(id).err() == Some(libc::EINVAL) && delete(id).err() == Some(libc::EINVAL),
        "a deleted timer: EINVAL",
    )?;

    // Overruns: a 2 ms periodic timer whose signal stays pending.
    let id = create(libc::SIGUSR1, SIGEV_SIGNAL, 0, 7).map_err(errname)?;
    settime(id, 2_000_000, 2_000_000).map_err(errname)?;
    std::thread::sleep(Duration::from_millis(200));
    let r = take(libc::SIGUSR1, 1000);
    let over = sys(
        libc::SYS_timer_getoverrun,
        [id as libc::c_long, 0, 0, 0, 0, 0],
    );
    delete(id).map_err(errname)?;
    check(
        r.is_ok() && over.is_ok_and(|n| n >= 10),
        format_args!("a 2 ms timer pending for 200 ms: one signal, overrun {over:?} (want >= 10)"),
    )?;
    // Drain a signal that may have come after.
    let _ = take(libc::SIGUSR1, 0);

    // SIGEV_THREAD_ID: only the named thread gets it.
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        // SAFETY: gettid has no side effects.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        let _ = tx.send(tid);
        take(libc::SIGUSR2, 5000)
    });
    let tid = rx.recv().map_err(|e| e.to_string())?;
    let id = create(libc::SIGUSR2, SIGEV_THREAD_ID, tid, 99).map_err(errname)?;
    settime(id, 50_000_000, 0).map_err(errname)?;
    let r = waiter.join().map_err(|_| "waiter panicked".to_string())?;
    delete(id).map_err(errname)?;
    check(
        r == Ok((SI_TIMER, 99)),
        format_args!("SIGEV_THREAD_ID: the named thread takes it: {r:?}"),
    )?;
    check(
        create(libc::SIGUSR2, SIGEV_THREAD_ID, 999_999, 0).err() == Some(libc::EINVAL),
        "SIGEV_THREAD_ID with a tid outside the process: EINVAL",
    )?;

    // SIGEV_NONE: no signal, but the timer runs.
    let id = create(0, SIGEV_NONE, 0, 0).map_err(errname)?;
    settime(id, 20_000_000, 0).map_err(errname)?;
    std::thread::sleep(Duration::from_millis(60));
    let s = gettime(id).map_err(errname)?;
    delete(id).map_err(errname)?;
    check(
        s.it_value.tv_sec == 0 && s.it_value.tv_nsec == 0,
        "SIGEV_NONE: expires silently (gettime 0 after)",
    )?;
    check(
        create(0, SIGEV_SIGNAL, 0, 0).err() == Some(libc::EINVAL)
            && create(libc::SIGUSR1, 77, 0, 0).err() == Some(libc::EINVAL),
        "signal 0 or an unknown sigev_notify: EINVAL",
    )?;
    let r = sys(
        libc::SYS_timer_create,
        [libc::CLOCK_MONOTONIC as libc::c_long, 8, 0, 0, 0, 0],
    );
    check(r == Err(libc::EFAULT), "a bad sigevent pointer: EFAULT")?;
    sigmask(
        libc::SIG_UNBLOCK,
        &[libc::SIGALRM, libc::SIGUSR1, libc::SIGUSR2],
    )
}
