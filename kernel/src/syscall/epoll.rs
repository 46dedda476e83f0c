//! epoll_create1(2), epoll_ctl(2), epoll_wait(2), epoll_pwait(2),
//! epoll_pwait2(2), eventfd2(2) and timerfd_create/settime/gettime(2). The instance is `fs::epoll`; waiting
//! is its [`Epoll::wait`]: its own queue or the pollers', EINTR on a
//! signal (never restarted, as Linux).

use abi::{Errno, KResult};
use alloc::sync::Arc;

use crate::fs::epoll::{self, Epoll};
use crate::fs::eventfd::{self, EventFd};
use crate::fs::file::{self, Kind, OpenFile};
use crate::proc::sched::current;
use crate::uaccess;

/// struct epoll_event is packed on x86_64: u32 events, u64 data.
const EVENT_SIZE: usize = 12;

pub(super) fn install(kind: Kind, flags: u32) -> KResult<u64> {
    let f = OpenFile::new(kind, file::O_RDWR | (flags & file::O_NONBLOCK));
    current()
        .files()
        .lock()
        .insert(f, flags & file::O_CLOEXEC != 0)
        .map(|fd| fd as u64)
}

/// epoll_create1(2) (epoll_create(size) is flags 0 with size > 0).
pub fn epoll_create1(flags: u64) -> KResult<u64> {
    let flags = flags as u32;
    if flags & !file::O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    install(Kind::Epoll(Epoll::new()), flags)
}

/// epoll_create(2).
pub fn epoll_create(size: u64) -> KResult<u64> {
    if size as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    epoll_create1(0)
}

fn epoll_of(epfd: u64) -> KResult<Arc<Epoll>> {
    let f = current().files().lock().get(epfd as i32)?;
    match &f.kind {
        Kind::Epoll(e) => Ok(e.clone()),
        _ => Err(Errno::EINVAL),
    }
}

/// epoll_ctl(2).
pub fn epoll_ctl(epfd: u64, op: u64, fd: u64, event: u64) -> KResult<u64> {
    let (ep_file, target) = {
        let files = current().files();
        let t = files.lock();
        (t.get(epfd as i32)?, t.get(fd as i32)?)
    };
    let Kind::Epoll(ep) = &ep_file.kind else {
        return Err(Errno::EINVAL);
    };
    if Arc::ptr_eq(&ep_file, &target) {
        return Err(Errno::EINVAL);
    }
    let op = op as u32;
    let (events, data) = if op == epoll::EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let b = uaccess::read_vec(event, EVENT_SIZE)?;
        (
            u32::from_le_bytes(b[..4].try_into().unwrap_or([0; 4])),
            u64::from_le_bytes(b[4..].try_into().unwrap_or([0; 8])),
        )
    };
    // EPOLLEXCLUSIVE takes only EPOLLIN/OUT/ERR/HUP/WAKEUP/ET besides.
    if events & epoll::EPOLLEXCLUSIVE != 0 && events & epoll::EPOLLONESHOT != 0 {
        return Err(Errno::EINVAL);
    }
    ep.ctl(op, fd as i32, &target, events, data).map(|()| 0)
}

/// The common part of the epoll_wait family: `deadline` None waits
/// forever.
fn wait(epfd: u64, events: u64, max: u64, deadline: Option<u64>) -> KResult<u64> {
    let max = max as i32;
    if max <= 0 || max as usize > i32::MAX as usize / EVENT_SIZE {
        return Err(Errno::EINVAL);
    }
    let ep = epoll_of(epfd)?;
    uaccess::check_writable(events, max as usize * EVENT_SIZE)?;
    let mut ready = alloc::vec::Vec::new();
    ep.wait(deadline, || {
        ready = ep.collect(max as usize);
        ready.len()
    })?;
    let mut out = alloc::vec::Vec::new();
    out.try_reserve_exact(ready.len() * EVENT_SIZE)
        .map_err(|_| Errno::ENOMEM)?;
    for (ev, data) in &ready {
        out.extend_from_slice(&ev.to_le_bytes());
        out.extend_from_slice(&data.to_le_bytes());
    }
    uaccess::copy_out(events, &out)?;
    Ok(ready.len() as u64)
}

/// epoll_wait(2).
pub fn epoll_wait(epfd: u64, events: u64, max: u64, timeout_ms: u64) -> KResult<u64> {
    wait(
        epfd,
        events,
        max,
        super::poll::deadline_ms(timeout_ms as i32 as i64),
    )
}

/// epoll_pwait(2): with the signal mask at `sigmask` for the wait.
pub fn epoll_pwait(
    epfd: u64,
    events: u64,
    max: u64,
    timeout_ms: u64,
    sigmask: u64,
    sigsetsize: u64,
) -> KResult<u64> {
    if sigmask != 0 && sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    super::poll::with_mask(sigmask, || epoll_wait(epfd, events, max, timeout_ms))
}

/// epoll_pwait2(2): a timespec timeout (NULL: forever).
pub fn epoll_pwait2(
    epfd: u64,
    events: u64,
    max: u64,
    timeout: u64,
    sigmask: u64,
    sigsetsize: u64,
) -> KResult<u64> {
    if sigmask != 0 && sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let deadline = super::poll::read_timespec_deadline(timeout)?;
    super::poll::with_mask(sigmask, || wait(epfd, events, max, deadline))
}

/// eventfd2(2) (eventfd(2) is flags 0).
pub fn eventfd2(init: u64, flags: u64) -> KResult<u64> {
    let flags = flags as u32;
    if flags & !(file::O_CLOEXEC | file::O_NONBLOCK | eventfd::EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let e = EventFd::new(init as u32 as u64, flags & eventfd::EFD_SEMAPHORE != 0);
    install(Kind::EventFd(e), flags)
}

/// timerfd_create(2): the clocks Linux takes (REALTIME and
/// REALTIME_ALARM for absolute times on the wall clock), TFD_NONBLOCK,
/// TFD_CLOEXEC.
pub fn timerfd_create(clock: u64, flags: u64) -> KResult<u64> {
    let flags = flags as u32;
    if !matches!(clock, 0 | 1 | 7 | 8 | 9) || flags & !(file::O_CLOEXEC | file::O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    install(
        Kind::TimerFd(crate::fs::timerfd::TimerFd::new(clock)),
        flags,
    )
}

fn timerfd_of(fd: u64) -> KResult<Arc<crate::fs::timerfd::TimerFd>> {
    let f = current().files().lock().get(fd as i32)?;
    match &f.kind {
        Kind::TimerFd(t) => Ok(t.clone()),
        _ => Err(Errno::EINVAL),
    }
}

/// struct itimerspec (interval, value) from nanoseconds.
fn put_itimerspec(p: u64, (value, interval): (u64, u64)) -> KResult<()> {
    let mut b = [0u8; 32];
    for (i, ns) in [interval, value].into_iter().enumerate() {
        b[i * 16..i * 16 + 8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        b[i * 16 + 8..i * 16 + 16].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    }
    uaccess::copy_out(p, &b)
}

/// timerfd_settime(2): TFD_TIMER_ABSTIME; TFD_TIMER_CANCEL_ON_SET is
/// accepted (the clock is never set).
pub fn timerfd_settime(fd: u64, flags: u64, new: u64, old: u64) -> KResult<u64> {
    if flags & !3 != 0 {
        return Err(Errno::EINVAL);
    }
    let b = uaccess::read_vec(new, 32)?;
    let mut ns = [0u64; 2];
    for (i, v) in ns.iter_mut().enumerate() {
        let sec = i64::from_le_bytes(b[i * 16..i * 16 + 8].try_into().unwrap_or([0; 8]));
        let nsec = i64::from_le_bytes(b[i * 16 + 8..i * 16 + 16].try_into().unwrap_or([0; 8]));
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        *v = (sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(nsec as u64);
    }
    let t = timerfd_of(fd)?;
    let prev = t.set(flags as u32, ns[1], ns[0]);
    if old != 0 {
        put_itimerspec(old, prev)?;
    }
    Ok(0)
}

/// timerfd_gettime(2).
pub fn timerfd_gettime(fd: u64, cur: u64) -> KResult<u64> {
    let t = timerfd_of(fd)?;
    put_itimerspec(cur, t.get()).map(|()| 0)
}
