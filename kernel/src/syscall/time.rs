//! Clocks and sleeping. CLOCK_REALTIME is the monotonic clock plus the
//! wall-clock offset (crate::clock, set from the RTC at boot).

use abi::{Errno, KResult};

use crate::proc::sched::{Deadlines, WaitQueue};
use crate::uaccess;

/// Sleepers, woken to re-check their deadline when the earliest one is
/// due ([`expire`]), not at every tick: a process sleeping for seconds
/// costs nothing meanwhile (a shell in `sleep` used to run 1000 times a
/// second, taking turns from busy processes).
static SLEEPERS: WaitQueue = WaitQueue::new();
static SLEEPERS_DUE: Deadlines = Deadlines::new();

/// From the timer's deferred work (once per tick): wakes the sleepers if
/// the earliest deadline has passed. They re-check and those not due
/// note their deadlines again.
pub fn expire(now: u64) {
    if SLEEPERS_DUE.take_due(now) {
        SLEEPERS.wake_all();
    }
}

fn put_timespec(addr: u64, ns: u64) -> KResult<()> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    uaccess::copy_out(addr, &b)
}

pub(crate) fn get_timespec(addr: u64) -> KResult<u64> {
    let b = uaccess::read_vec(addr, 16)?;
    let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    let nsec = i64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

/// clock_gettime(2): the REALTIME clocks read the wall clock, the CPU-time
/// clocks the time the thread or process ran, the others the TSC-based
/// monotonic time.
pub fn clock_gettime(clock: u64, tp: u64) -> KResult<u64> {
    clock_gettime_shifted(clock, tp, 0)
}

/// clock_gettime(2) for a process whose monotonic clocks read `shift_ns`
/// later than this machine's (one moved here from another machine keeps
/// the time of its home); its CPU-time and realtime clocks are this
/// machine's.
pub fn clock_gettime_shifted(clock: u64, tp: u64, shift_ns: i64) -> KResult<u64> {
    if clock > 11 {
        return Err(Errno::EINVAL);
    }
    const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
    const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
    let ns = match clock {
        CLOCK_PROCESS_CPUTIME_ID => {
            crate::proc::sched::with_current(crate::proc::cputime::process_ns)
        }
        CLOCK_THREAD_CPUTIME_ID => {
            crate::proc::sched::with_current(crate::proc::cputime::thread_ns)
        }
        c if crate::clock::is_realtime(c) => crate::clock::now(c),
        _ => crate::clock::now(clock).saturating_add_signed(shift_ns),
    };
    put_timespec(tp, ns)?;
    Ok(0)
}

/// CAP_SYS_TIME: root only.
fn may_set_time() -> KResult<()> {
    if crate::proc::sched::current().cred().privileged() {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// clock_settime(2): only CLOCK_REALTIME can be set (EINVAL otherwise,
/// as Linux).
pub fn clock_settime(clock: u64, tp: u64) -> KResult<u64> {
    if clock != 0 {
        return Err(Errno::EINVAL);
    }
    may_set_time()?;
    crate::clock::set_realtime(get_timespec(tp)?);
    Ok(0)
}

/// settimeofday(2): the time (struct timeval) if given; the timezone is
/// accepted and ignored, as Linux does for everything but the RTC.
pub fn settimeofday(tv: u64, _tz: u64) -> KResult<u64> {
    may_set_time()?;
    if tv != 0 {
        let b = uaccess::read_vec(tv, 16)?;
        let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let usec = i64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
        if sec < 0 || !(0..1_000_000).contains(&usec) {
            return Err(Errno::EINVAL);
        }
        let ns = (sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(usec as u64 * 1000);
        crate::clock::set_realtime(ns);
    }
    Ok(0)
}

/// clock_getres(2): 1 ns.
pub fn clock_getres(clock: u64, tp: u64) -> KResult<u64> {
    if clock > 11 {
        return Err(Errno::EINVAL);
    }
    if tp != 0 {
        put_timespec(tp, 1)?;
    }
    Ok(0)
}

/// gettimeofday(2).
pub fn gettimeofday(tv: u64) -> KResult<u64> {
    if tv != 0 {
        let ns = crate::clock::realtime_ns();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        b[8..].copy_from_slice(&((ns / 1000) % 1_000_000).to_le_bytes());
        uaccess::copy_out(tv, &b)?;
    }
    Ok(0)
}

/// time(2).
pub fn time(t: u64) -> KResult<u64> {
    let s = crate::clock::realtime_ns() / 1_000_000_000;
    if t != 0 {
        uaccess::write_u64(t, s)?;
    }
    Ok(s)
}

/// Sleeps until `ready()` gives Some, `deadline` (monotonic ns) passes
/// (Ok(None)) or a signal arrives (EINTR). Whoever changes what `ready`
/// looks at wakes the sleeper itself (e.g. a signal's notify).
pub fn wait_or_deadline<T>(
    deadline: Option<u64>,
    mut ready: impl FnMut() -> Option<T>,
) -> KResult<Option<T>> {
    SLEEPERS.wait_until(|| {
        if let Some(v) = ready() {
            return Some(Some(v));
        }
        let d = deadline?;
        SLEEPERS_DUE.note(d);
        (hal::time::now_ns() >= d).then_some(None)
    })
}

/// Sleeps until `deadline` (monotonic ns); EINTR on a signal, reporting
/// the time left in `rem`.
fn sleep_until(deadline: u64, rem: u64) -> KResult<u64> {
    let due = || {
        SLEEPERS_DUE.note(deadline);
        (hal::time::now_ns() >= deadline).then_some(())
    };
    match SLEEPERS.wait_until(due) {
        Ok(()) => Ok(0),
        Err(e) => {
            if rem != 0 {
                put_timespec(rem, deadline.saturating_sub(hal::time::now_ns()))?;
            }
            Err(e)
        }
    }
}

/// Sleeps until `deadline` (monotonic ns), signals or not: for the
/// kernel's own waits on a process's behalf.
pub fn sleep_uninterruptible_until(deadline: u64) {
    SLEEPERS.wait_until_uninterruptible(|| {
        SLEEPERS_DUE.note(deadline);
        (hal::time::now_ns() >= deadline).then_some(())
    })
}

/// nanosleep(2).
pub fn nanosleep(req: u64, rem: u64) -> KResult<u64> {
    let d = get_timespec(req)?;
    sleep_until(hal::time::now_ns().saturating_add(d), rem)
}

/// clock_nanosleep(2) (TIMER_ABSTIME honoured).
pub fn clock_nanosleep(clock: u64, flags: u64, req: u64, rem: u64) -> KResult<u64> {
    if clock > 11 {
        return Err(Errno::EINVAL);
    }
    let d = get_timespec(req)?;
    let deadline = if flags & 1 != 0 {
        crate::clock::abs_to_monotonic(clock, d)
    } else {
        hal::time::now_ns().saturating_add(d)
    };
    sleep_until(deadline, if flags & 1 != 0 { 0 } else { rem })
}
