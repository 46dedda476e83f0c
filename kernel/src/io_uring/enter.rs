//! io_uring_enter(2): submit, wake the SQ poller, wait for completions.

use abi::{Errno, KResult};
use alloc::sync::Arc;

use super::ring::Ring;
use super::uapi::*;
use super::{EBADFD, EBADR, EOWNERDEAD, ETIME};
use crate::proc::sched::current;
use crate::uaccess;

const FLAGS_OK: u32 =
    IORING_ENTER_GETEVENTS | IORING_ENTER_SQ_WAKEUP | IORING_ENTER_SQ_WAIT | IORING_ENTER_EXT_ARG;
/// sizeof(sigset_t) for the kernel (_NSIG / 8).
const SIGSET_SIZE: u64 = 8;

/// io_uring_enter(fd, to_submit, min_complete, flags, arg, argsz).
///
/// Returns the number of SQEs consumed (with SQPOLL: `to_submit`, as
/// Linux does, the poller having consumed them). A wait error (EINTR,
/// ETIME, EBADR) is returned only if nothing was submitted.
pub fn enter(
    fd: u64,
    to_submit: u64,
    min_complete: u64,
    flags: u64,
    arg: u64,
    argsz: u64,
) -> KResult<u64> {
    let (to_submit, min_complete) = (to_submit as u32, min_complete as u32);
    if flags & !(FLAGS_OK as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = flags as u32;
    let (_file, ring) = super::ring_of(fd)?;
    if !ring.enabled.load(core::sync::atomic::Ordering::Acquire) {
        return Err(EBADFD);
    }
    let mut ret = 0u64;
    if ring.is_sqpoll() {
        {
            let mut st = ring.state.lock();
            ring.flush_overflow(&mut st);
        }
        if !ring.sqpoll_owner_alive() {
            return Err(EOWNERDEAD);
        }
        if flags & IORING_ENTER_SQ_WAKEUP != 0 {
            ring.sqpoll_wakeup();
        }
        // This syscall is a boundary too: in the owner's context the
        // (awake) poller consumes the SQ now, so SQ_WAIT has nothing left
        // to wait for.
        ring.sqpoll_boundary(Some(&current()));
        ret = to_submit as u64;
    } else if to_submit > 0 {
        ret = ring.submit(to_submit) as u64;
    }
    if flags & IORING_ENTER_GETEVENTS != 0 {
        let r = wait_args(flags, arg, argsz).and_then(|(sig, sigsz, ts)| {
            let min = min_complete.min(ring.cq_entries);
            wait(&ring, min, sig, sigsz, ts)
        });
        if ret == 0 {
            r?;
        }
    }
    Ok(ret)
}

/// (sigmask, sigmask size, timespec pointer) from the last two arguments:
/// a sigset directly, or with IORING_ENTER_EXT_ARG a struct
/// io_uring_getevents_arg.
fn wait_args(flags: u32, arg: u64, argsz: u64) -> KResult<(u64, u64, u64)> {
    if flags & IORING_ENTER_EXT_ARG == 0 {
        return Ok((arg, argsz, 0));
    }
    if argsz != GETEVENTS_ARG_SIZE as u64 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; GETEVENTS_ARG_SIZE];
    uaccess::copy_in(arg, &mut b)?;
    // Linux 6.1 calls the word after sigmask_sz `pad` and wants it zero.
    if u32_at(&b, 12) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((u64_at(&b, 0), u32_at(&b, 8) as u64, u64_at(&b, 16)))
}

/// Waits until `min` CQEs are in the CQ ring, the timeout at `ts` (if
/// any, relative) passes, or a signal arrives.
fn wait(ring: &Arc<Ring>, min: u32, sig: u64, sigsz: u64, ts: u64) -> KResult<u64> {
    let deadline = if ts == 0 {
        None
    } else {
        let mut b = [0u8; 16];
        uaccess::copy_in(ts, &mut b)?;
        let (sec, nsec) = (u64_at(&b, 0) as i64, u64_at(&b, 8) as i64);
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Some(
            hal::time::now_ns()
                .saturating_add((sec as u64).saturating_mul(1_000_000_000))
                .saturating_add(nsec as u64),
        )
    };
    if sig != 0 && sigsz != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    // Already there (the batch just submitted completed at once): the
    // answer of wait_loop's first look, for one lock. With a sigmask the
    // slow path reads it first (EFAULT for a bad pointer).
    if sig == 0 && ring.cq_ready_now(min) {
        return Ok(0);
    }
    crate::syscall::poll::with_mask(sig, || wait_loop(ring, min, deadline))
}

fn wait_loop(ring: &Arc<Ring>, min: u32, deadline: Option<u64>) -> KResult<u64> {
    let me = current();
    loop {
        let since = crate::fs::POLL_WQ.wakes();
        ring.run_pending(Some(&me));
        if ring.is_sqpoll() {
            ring.sqpoll_boundary(Some(&me));
        }
        let ready = {
            let mut st = ring.state.lock();
            ring.flush_overflow(&mut st);
            let ready = ring.cq_ready(&st);
            if ready >= min {
                return Ok(0);
            }
            if st.dropped_cqes {
                // Reported once; the application has now been told.
                st.dropped_cqes = false;
                return Err(EBADR);
            }
            ready
        };
        if deadline.is_some_and(|d| hal::time::now_ns() >= d) {
            return if ready == 0 { Err(Errno(ETIME)) } else { Ok(0) };
        }
        // Sleep until a pipe/tty change or an io_uring completion (they
        // wake the poll queue) or the deadline, then look again. An SQPOLL
        // ring's SQEs are consumed only in its creator's context, so
        // another process sharing the ring may publish some that only this
        // waiter can take: it looks again at every tick, as the kernel
        // thread of Linux's SQPOLL would.
        let wake_at = if ring.is_sqpoll() {
            let tick = hal::time::now_ns() + 1_000_000;
            Some(deadline.map_or(tick, |d| d.min(tick)))
        } else {
            deadline
        };
        crate::fs::POLL_WQ.wait_for_wake_until(since, wake_at, &crate::fs::POLL_DEADLINES)?;
    }
}
