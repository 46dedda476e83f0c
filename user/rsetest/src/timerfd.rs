//! timerfd: a one-shot timer read after it fires, a blocking read that
//! waits for it, periodic expirations counted, gettime, disarming,
//! epoll waking on expiry, and EINVAL/EFAULT for bad arguments.

use std::time::{Duration, Instant};

use crate::util::{check, close, errno};

fn its(value_ms: u64, interval_ms: u64) -> libc::itimerspec {
    let ts = |ms: u64| libc::timespec {
        tv_sec: (ms / 1000) as i64,
        tv_nsec: ((ms % 1000) * 1_000_000) as i64,
    };
    libc::itimerspec {
        it_interval: ts(interval_ms),
        it_value: ts(value_ms),
    }
}

fn set(fd: i32, value_ms: u64, interval_ms: u64) -> i32 {
    let t = its(value_ms, interval_ms);
    // SAFETY: a valid itimerspec; no old value wanted.
    unsafe { libc::timerfd_settime(fd, 0, &t, std::ptr::null_mut()) }
}

fn rd(fd: i32) -> Result<u64, i32> {
    let mut v = 0u64;
    // SAFETY: 8 bytes into a valid u64.
    let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    if n < 0 {
        Err(errno())
    } else {
        Ok(v)
    }
}

pub fn run(_: &[String]) -> Result<(), String> {
    // SAFETY: plain syscall.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    check(
        fd >= 0,
        "timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK|TFD_CLOEXEC)",
    )?;
    check(rd(fd) == Err(libc::EAGAIN), "a disarmed timer: EAGAIN")?;
    check(set(fd, 100, 0) == 0, "arm a 100 ms one-shot")?;
    check(rd(fd) == Err(libc::EAGAIN), "before it fires: EAGAIN")?;
    let mut cur = its(0, 0);
    // SAFETY: valid out-pointer.
    unsafe { libc::timerfd_gettime(fd, &mut cur) };
    let left = cur.it_value.tv_sec * 1000 + cur.it_value.tv_nsec / 1_000_000;
    check(
        left > 0 && left <= 100,
        format!("timerfd_gettime: {left} ms left"),
    )?;
    crate::util::sleep_ms(150);
    check(
        crate::sock::revents(fd, libc::POLLIN) == libc::POLLIN,
        "poll: readable once it fired",
    )?;
    check(rd(fd) == Ok(1), "read: 1 expiration")?;
    check(rd(fd) == Err(libc::EAGAIN), "then nothing (one-shot)")?;
    // Blocking read, periodic.
    // SAFETY: plain syscall.
    let b = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, 0) };
    let t0 = Instant::now();
    set(b, 50, 50);
    let v = rd(b);
    let dt = t0.elapsed();
    check(
        v == Ok(1) && dt >= Duration::from_millis(45) && dt < Duration::from_secs(3),
        format!(
            "a blocking read waits for the first expiry ({v:?} after {} ms)",
            dt.as_millis()
        ),
    )?;
    crate::util::sleep_ms(220);
    let v = rd(b).unwrap_or(0);
    check(
        (3..=6).contains(&v),
        format!("periodic 50 ms, 220 ms later: {v} expirations counted"),
    )?;
    // epoll wakes when it fires.
    // SAFETY: plain syscalls with valid arguments.
    let ep = unsafe { libc::epoll_create1(0) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 7,
    };
    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    set(fd, 80, 0);
    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 2];
    let t0 = Instant::now();
    // SAFETY: valid buffer.
    let n = unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 2, 5000) };
    let dt = t0.elapsed();
    check(
        n == 1 && out[0].u64 == 7 && dt >= Duration::from_millis(70) && dt < Duration::from_secs(3),
        format!("epoll_wait wakes at the expiry ({} ms)", dt.as_millis()),
    )?;
    // Disarm.
    set(b, 0, 0);
    // SAFETY: valid out-pointer.
    unsafe { libc::timerfd_gettime(b, &mut cur) };
    check(
        cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0,
        "disarmed: gettime says 0",
    )?;
    // Bad arguments.
    // SAFETY: deliberate bad arguments.
    unsafe {
        check(
            libc::timerfd_create(12345, 0) < 0 && errno() == libc::EINVAL,
            "an unknown clock: EINVAL",
        )?;
        check(
            libc::timerfd_create(libc::CLOCK_MONOTONIC, 0x4_0000) < 0 && errno() == libc::EINVAL,
            "unknown flags: EINVAL",
        )?;
        let bad = its(0, 0);
        let mut t = bad;
        t.it_value.tv_nsec = 2_000_000_000;
        check(
            libc::timerfd_settime(fd, 0, &t, std::ptr::null_mut()) < 0 && errno() == libc::EINVAL,
            "tv_nsec ≥ 1e9: EINVAL",
        )?;
        check(
            libc::timerfd_settime(fd, 0, 0x10 as *const libc::itimerspec, std::ptr::null_mut()) < 0
                && errno() == libc::EFAULT,
            "a bad itimerspec: EFAULT",
        )?;
        check(
            libc::timerfd_settime(ep, 0, &bad, std::ptr::null_mut()) < 0 && errno() == libc::EINVAL,
            "not a timerfd: EINVAL",
        )?;
        let mut small = [0u8; 4];
        check(
            libc::read(fd, small.as_mut_ptr().cast(), 4) < 0 && errno() == libc::EINVAL,
            "a 4-byte read: EINVAL",
        )?;
    }
    close(ep);
    close(fd);
    close(b);
    Ok(())
}
