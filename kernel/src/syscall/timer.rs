//! The timer syscalls: alarm, setitimer/getitimer (ITIMER_REAL) and the
//! POSIX timers (timer_create/settime/gettime/getoverrun/delete); the
//! timers themselves are in proc/timers.rs.

use abi::{Errno, KResult};

use crate::proc::sched::current;
use crate::proc::timers::{self, Notify, Setting};
use crate::uaccess;

const NS: u64 = 1_000_000_000;
const ITIMER_REAL: u64 = 0;
const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;
const SIGEV_SIGNAL: u32 = 0;
const SIGEV_NONE: u32 = 1;
const SIGEV_THREAD_ID: u32 = 4;
const TIMER_ABSTIME: u64 = 1;
const SIGALRM: u32 = 14;

/// Reads two (sec, sub-second) pairs: `struct itimerval` (µs) or
/// `struct itimerspec` (ns): (interval, value) in ns.
fn get_pair(addr: u64, unit: u64) -> KResult<(u64, u64)> {
    let b = uaccess::read_vec(addr, 32)?;
    let w = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let one = |sec: i64, sub: i64| {
        if sec < 0 || sub < 0 || sub as u64 >= NS / unit {
            return Err(Errno::EINVAL);
        }
        Ok((sec as u64)
            .saturating_mul(NS)
            .saturating_add(sub as u64 * unit))
    };
    Ok((one(w(0), w(1))?, one(w(2), w(3))?))
}

fn put_pair(addr: u64, (left, interval): Setting, unit: u64) -> KResult<()> {
    let mut b = [0u8; 32];
    for (i, ns) in [interval, left].into_iter().enumerate() {
        b[i * 16..i * 16 + 8].copy_from_slice(&(ns / NS).to_le_bytes());
        b[i * 16 + 8..i * 16 + 16].copy_from_slice(&((ns % NS) / unit).to_le_bytes());
    }
    uaccess::copy_out(addr, &b)
}

/// ITIMER_VIRTUAL and ITIMER_PROF count CPU time, which is not kept per
/// process yet: ENOSYS (docs/syscalls.md).
fn check_which(which: u64) -> KResult<()> {
    match which {
        ITIMER_REAL => Ok(()),
        ITIMER_VIRTUAL | ITIMER_PROF => Err(Errno::ENOSYS),
        _ => Err(Errno::EINVAL),
    }
}

/// alarm(2): the seconds left on the previous alarm (rounded up, as
/// Linux does, so that a pending alarm never reads as none).
pub fn alarm(secs: u64) -> KResult<u64> {
    let secs = secs.min(u32::MAX as u64);
    let (left, _) = timers::set(current().tgid, timers::itimer_real(), secs * NS, false, 0)?;
    Ok(left.div_ceil(NS))
}

/// setitimer(2) (a null `new` disarms, as Linux accepts).
pub fn setitimer(which: u64, new: u64, old: u64) -> KResult<u64> {
    check_which(which)?;
    let (interval, value) = if new == 0 {
        (0, 0)
    } else {
        get_pair(new, 1000)?
    };
    let prev = timers::set(
        current().tgid,
        timers::itimer_real(),
        value,
        false,
        interval,
    )?;
    if old != 0 {
        put_pair(old, prev, 1000)?;
    }
    Ok(0)
}

/// getitimer(2).
pub fn getitimer(which: u64, cur: u64) -> KResult<u64> {
    check_which(which)?;
    put_pair(
        cur,
        timers::get(current().tgid, timers::itimer_real())?,
        1000,
    )?;
    Ok(0)
}

/// The clocks a timer may use: REALTIME, MONOTONIC, BOOTTIME (MONOTONIC
/// and BOOTTIME are one clock here: nothing suspends). The CPU-time
/// clocks are not kept: EINVAL.
fn check_clock(clock: u64) -> KResult<()> {
    match clock {
        0 | 1 | 7 => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// timer_create(2). `struct sigevent`: sigev_value (8), sigev_signo (4),
/// sigev_notify (4), then the thread id for SIGEV_THREAD_ID.
pub fn timer_create(clock: u64, sevp: u64, idp: u64) -> KResult<u64> {
    check_clock(clock)?;
    let me = current();
    let (notify, target, value) = if sevp == 0 {
        (Notify::Process(SIGALRM), me.leader(), None)
    } else {
        let b = uaccess::read_vec(sevp, 24)?;
        let value = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let signo = u32::from_le_bytes(b[8..12].try_into().unwrap_or([0; 4]));
        let how = u32::from_le_bytes(b[12..16].try_into().unwrap_or([0; 4]));
        let tid = i32::from_le_bytes(b[16..20].try_into().unwrap_or([0; 4]));
        let sig = || match signo {
            1..=64 => Ok(signo),
            _ => Err(Errno::EINVAL),
        };
        match how {
            SIGEV_NONE => (Notify::None, me.leader(), Some(value)),
            SIGEV_SIGNAL => (Notify::Process(sig()?), me.leader(), Some(value)),
            SIGEV_THREAD_ID => {
                let t = crate::proc::lookup(tid.max(0) as crate::proc::Pid)
                    .filter(|t| t.tgid == me.tgid && !t.is_zombie())
                    .ok_or(Errno::EINVAL)?;
                (Notify::Thread(sig()?), t, Some(value))
            }
            _ => return Err(Errno::EINVAL),
        }
    };
    // Check the id's destination before creating, so a bad pointer leaks
    // no timer.
    uaccess::write_u32(idp, 0)?;
    let id = timers::create(&me, clock, notify, &target, value)?;
    uaccess::write_u32(idp, id as u32)?;
    Ok(0)
}

fn timer_id(id: u64) -> KResult<i32> {
    i32::try_from(id as i64)
        .ok()
        .filter(|i| *i >= 0)
        .ok_or(Errno::EINVAL)
}

/// timer_settime(2).
pub fn timer_settime(id: u64, flags: u64, new: u64, old: u64) -> KResult<u64> {
    let id = timer_id(id)?;
    let (interval, value) = get_pair(new, 1)?;
    let prev = timers::set(
        current().tgid,
        id,
        value,
        flags & TIMER_ABSTIME != 0,
        interval,
    )?;
    if old != 0 {
        put_pair(old, prev, 1)?;
    }
    Ok(0)
}

/// timer_gettime(2).
pub fn timer_gettime(id: u64, cur: u64) -> KResult<u64> {
    let s = timers::get(current().tgid, timer_id(id)?)?;
    put_pair(cur, s, 1)?;
    Ok(0)
}

/// timer_getoverrun(2).
pub fn timer_getoverrun(id: u64) -> KResult<u64> {
    Ok(timers::overrun(current().tgid, timer_id(id)?)? as u64)
}

/// timer_delete(2).
pub fn timer_delete(id: u64) -> KResult<u64> {
    timers::delete(current().tgid, timer_id(id)?)?;
    Ok(0)
}
