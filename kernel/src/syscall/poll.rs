//! poll(2), ppoll(2), select(2), pselect6(2). Sleepers wait on the global
//! POLL_WQ (pipes, the tty and io_uring completions wake it; the tick when
//! a poller's deadline is due).

use abi::{Errno, KResult};
use alloc::vec::Vec;

use crate::fs::file::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};
use crate::proc::sched::current;
use crate::uaccess;

/// Waits until `check` reports something or the deadline passes.
pub(super) fn wait(deadline: Option<u64>, mut check: impl FnMut() -> usize) -> KResult<usize> {
    use crate::fs::{POLL_DEADLINES, POLL_WQ};
    loop {
        let since = POLL_WQ.wakes();
        let n = check();
        if n > 0 || deadline.is_some_and(|d| hal::time::now_ns() >= d) {
            return Ok(n);
        }
        POLL_WQ.wait_for_wake_until(since, deadline, &POLL_DEADLINES)?;
    }
}

pub(super) fn deadline_ms(ms: i64) -> Option<u64> {
    (ms >= 0).then(|| hal::time::now_ns() + ms as u64 * 1_000_000)
}

/// Most descriptors one poll may watch: RLIMIT_NOFILE's soft limit, as
/// Linux checks it, but never more than this: a blocked poller holds a
/// kernel copy of its array, and this bounds that memory (docs/syscalls.md).
const POLL_MAX_FDS: u64 = 1024;

fn poll_fds(fds: u64, nfds: u64, deadline: Option<u64>) -> KResult<u64> {
    if nfds > POLL_MAX_FDS || nfds > crate::proc::limits::nofile() as u64 {
        return Err(Errno::EINVAL);
    }
    let raw = uaccess::read_vec(fds, nfds as usize * 8)?;
    let mut entries: Vec<(i32, u16, u16)> = raw
        .chunks(8)
        .map(|c| {
            (
                i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                u16::from_le_bytes([c[4], c[5]]),
                0,
            )
        })
        .collect();
    let files = current().files();
    let n = wait(deadline, || {
        let t = files.lock();
        let mut ready = 0;
        for e in entries.iter_mut() {
            e.2 = if e.0 < 0 {
                0
            } else {
                match t.get(e.0) {
                    Ok(f) => f.poll() & (e.1 | POLLERR | POLLHUP),
                    Err(_) => POLLNVAL,
                }
            };
            if e.2 != 0 {
                ready += 1;
            }
        }
        ready
    })?;
    let mut out = raw;
    for (i, e) in entries.iter().enumerate() {
        out[i * 8 + 6..i * 8 + 8].copy_from_slice(&e.2.to_le_bytes());
    }
    uaccess::copy_out(fds, &out)?;
    Ok(n as u64)
}

/// poll(2).
pub fn poll(fds: u64, nfds: u64, timeout_ms: i64) -> KResult<u64> {
    poll_fds(fds, nfds, deadline_ms(timeout_ms))
}

pub(super) fn read_timespec_deadline(ts: u64) -> KResult<Option<u64>> {
    if ts == 0 {
        return Ok(None);
    }
    let b = uaccess::read_vec(ts, 16)?;
    let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    let nsec = i64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(deadline_after(sec as u64, nsec as u64))
}

/// The deadline `sec` s + `nsec` ns from now; None (no deadline) when it
/// does not fit in 64 bits of nanoseconds (some 584 years): a timeout of
/// INT64_MAX seconds sleeps forever rather than wrapping to the past.
fn deadline_after(sec: u64, nsec: u64) -> Option<u64> {
    sec.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(nsec))
        .and_then(|ns| ns.checked_add(hal::time::now_ns()))
}

/// ppoll(2) (the signal mask argument is applied for the call's duration).
pub fn ppoll(fds: u64, nfds: u64, ts: u64, sigmask: u64) -> KResult<u64> {
    let deadline = read_timespec_deadline(ts)?;
    with_mask(sigmask, || poll_fds(fds, nfds, deadline))
}

/// Runs `f` with the signal mask at user address `sigmask` (0: unchanged),
/// as ppoll(2) and io_uring_enter(2) do.
pub(crate) fn with_mask(sigmask: u64, f: impl FnOnce() -> KResult<u64>) -> KResult<u64> {
    if sigmask == 0 {
        return f();
    }
    let m = uaccess::read_u64(sigmask)?;
    let me = current();
    let old = me.sig.lock().mask;
    me.sig.lock().set_mask(m);
    let r = f();
    if r == Err(Errno::EINTR) {
        me.sig.lock().restore_mask = Some(old);
    } else {
        me.sig.lock().set_mask(old);
    }
    r
}

/// select(2) and pselect6(2).
pub fn select(nfds: u64, rd: u64, wr: u64, ex: u64, tmo: u64, is_pselect: bool) -> KResult<u64> {
    if nfds > 1024 {
        return Err(Errno::EINVAL);
    }
    let words = (nfds as usize).div_ceil(64);
    let read_set = |p: u64| -> KResult<Vec<u64>> {
        if p == 0 {
            return Ok(alloc::vec![0; words]);
        }
        let b = uaccess::read_vec(p, words * 8)?;
        Ok(b.chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    };
    let (r, w, e) = (read_set(rd)?, read_set(wr)?, read_set(ex)?);
    // pselect6's sigmask argument (a {ptr, size} pair) is not applied yet.
    let deadline = if is_pselect {
        read_timespec_deadline(tmo)?
    } else if tmo == 0 {
        None
    } else {
        let b = uaccess::read_vec(tmo, 16)?;
        let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let usec = i64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
        // Linux's select carries whole seconds out of tv_usec (only
        // negative values are EINVAL), unlike pselect6's timespec.
        let sec = sec.saturating_add(usec / 1_000_000);
        if sec < 0 || usec < 0 {
            return Err(Errno::EINVAL);
        }
        deadline_after(sec as u64, (usec % 1_000_000) as u64 * 1000)
    };
    let files = current().files();
    let mut out = (
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
        alloc::vec![0u64; words],
    );
    let n = wait(deadline, || {
        let t = files.lock();
        let mut count = 0;
        out = (
            alloc::vec![0u64; words],
            alloc::vec![0u64; words],
            alloc::vec![0u64; words],
        );
        for fd in 0..nfds as usize {
            let (wi, bit) = (fd / 64, 1u64 << (fd % 64));
            if (r[wi] | w[wi] | e[wi]) & bit == 0 {
                continue;
            }
            let ev = match t.get(fd as i32) {
                Ok(f) => f.poll(),
                Err(_) => return usize::MAX,
            };
            if r[wi] & bit != 0 && ev & (POLLIN | POLLHUP | POLLERR) != 0 {
                out.0[wi] |= bit;
                count += 1;
            }
            if w[wi] & bit != 0 && ev & (POLLOUT | POLLERR) != 0 {
                out.1[wi] |= bit;
                count += 1;
            }
            if e[wi] & bit != 0 && ev & POLLPRI != 0 {
                out.2[wi] |= bit;
                count += 1;
            }
        }
        count
    })?;
    if n == usize::MAX {
        return Err(Errno::EBADF);
    }
    let write_set = |p: u64, v: &Vec<u64>| -> KResult<()> {
        if p == 0 {
            return Ok(());
        }
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        uaccess::copy_out(p, &bytes)
    };
    write_set(rd, &out.0)?;
    write_set(wr, &out.1)?;
    write_set(ex, &out.2)?;
    Ok(n as u64)
}
