//! `rt_sigtimedwait(2)`: a thread takes a pending signal from a set
//! instead of having it delivered (sigwait, sigwaitinfo, sigtimedwait).

use abi::{Errno, KResult};

use super::signal::{bit, siginfo, SigInfo, UNBLOCKABLE};
use crate::syscall::time::{get_timespec, wait_or_deadline};
use crate::uaccess;

/// Takes the lowest pending signal of `want` from the current thread.
fn take(want: u64) -> Option<(u32, SigInfo)> {
    let me = super::sched::current();
    let mut s = me.sig.lock();
    let ready = s.pending & want;
    if ready == 0 {
        return me.group.shared_sig.lock().take(want);
    }
    let sig = ready.trailing_zeros() + 1;
    s.pending &= !bit(sig);
    Some((sig, core::mem::take(&mut s.info[sig as usize])))
}

/// Takes the lowest pending signal of `want` for the current thread as
/// sigwaitinfo would (a POSIX timer's overrun latched): signalfd reads.
pub fn take_current(want: u64) -> Option<(u32, SigInfo)> {
    let me = super::sched::current();
    take(want).map(|(sig, info)| (sig, super::timers::latch(me.tgid, info)))
}

/// The signals pending for the current thread: its own and its
/// process's shared set (signalfd readiness).
pub fn pending_current() -> u64 {
    let me = super::sched::current();
    let own = me.sig.lock().pending;
    let shared = me.group.shared_sig.lock().pending;
    own | shared
}

/// rt_sigtimedwait(set, info, timeout, sigsetsize): EAGAIN when the
/// timeout passes first, EINTR when a signal outside the set is
/// delivered meanwhile.
pub fn sigtimedwait(set: u64, info: u64, timeout: u64, sigsetsize: u64) -> KResult<u64> {
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let want = uaccess::read_u64(set)? & !UNBLOCKABLE;
    let deadline = match timeout {
        0 => None,
        t => Some(hal::time::now_ns().saturating_add(get_timespec(t)?)),
    };
    let me = super::sched::current();
    // Signals of the set wake this thread even while blocked: a process-
    // directed one is sent here (signal::send_process), and the wake-up
    // comes from the sender's notify.
    me.sig.lock().waiting = want;
    let got = wait_or_deadline(deadline, || {
        take(want).map(|(sig, info)| (sig, super::timers::latch(me.tgid, info)))
    });
    me.sig.lock().waiting = 0;
    let (sig, si) = got?.ok_or(Errno::EAGAIN)?;
    if info != 0 {
        uaccess::copy_out(info, &siginfo(sig, si, 0))?;
    }
    Ok(sig as u64)
}
