//! poll/select timeouts and wake-ups: a poll on an empty pipe returns 0
//! after its timeout (not much later, not earlier), a poll with a long
//! timeout returns as soon as another process writes, and select and
//! ppoll time out the same way. Several pollers with different timeouts
//! each wake at their own.

use std::time::{Duration, Instant};

use crate::util::{check, errname, errno, fork, pipe, wait_ok};

fn poll_in(fd: i32, timeout_ms: i32) -> Result<(i32, Duration), String> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let t0 = Instant::now();
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if n < 0 {
        return Err(format!("poll: {}", errname(errno())));
    }
    Ok((n, t0.elapsed()))
}

fn within(d: Duration, lo_ms: u64, hi_ms: u64) -> bool {
    d >= Duration::from_millis(lo_ms) && d <= Duration::from_millis(hi_ms)
}

pub fn run(_: &[String]) -> Result<(), String> {
    let (r, w) = pipe()?;

    let (n, d) = poll_in(r, 200)?;
    check(
        n == 0 && within(d, 200, 1500),
        format!(
            "poll on an empty pipe, 200 ms: 0 after {} ms",
            d.as_millis()
        ),
    )?;

    // A writer 150 ms from now; the poller's timeout is 5 s.
    let pid = fork()?;
    if pid == 0 {
        std::thread::sleep(Duration::from_millis(150));
        // SAFETY: one byte from a valid buffer.
        unsafe { libc::write(w, b"x".as_ptr().cast(), 1) };
        crate::util::child_exit(0);
    }
    let (n, d) = poll_in(r, 5000)?;
    wait_ok(pid, "writer")?;
    check(
        n == 1 && within(d, 100, 2000),
        format!(
            "poll wakes when a byte arrives: 1 after {} ms",
            d.as_millis()
        ),
    )?;
    let mut b = [0u8; 1];
    // SAFETY: reads the byte into a valid buffer.
    unsafe { libc::read(r, b.as_mut_ptr().cast(), 1) };

    // select with a 300 ms timeval.
    // SAFETY: fd_set is plain data; r < FD_SETSIZE.
    let (n, d) = unsafe {
        let mut set: libc::fd_set = std::mem::zeroed();
        libc::FD_SET(r, &mut set);
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 300_000,
        };
        let t0 = Instant::now();
        let n = libc::select(
            r + 1,
            &mut set,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut tv,
        );
        (n, t0.elapsed())
    };
    check(
        n == 0 && within(d, 300, 1600),
        format!("select, 300 ms: 0 after {} ms", d.as_millis()),
    )?;

    // ppoll with a timespec of 250 ms.
    let mut p = libc::pollfd {
        fd: r,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 250_000_000,
    };
    let t0 = Instant::now();
    // SAFETY: valid pollfd and timespec; no signal mask.
    let n = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
    let d = t0.elapsed();
    check(
        n == 0 && within(d, 250, 1500),
        format!("ppoll, 250 ms: 0 after {} ms", d.as_millis()),
    )?;

    // Three children poll with 100, 400 and 800 ms at once: each returns
    // at its own timeout, not at the earliest or the latest.
    let mut kids = Vec::new();
    for ms in [100u64, 400, 800] {
        let pid = fork()?;
        if pid == 0 {
            let ok = matches!(poll_in(r, ms as i32), Ok((0, d)) if within(d, ms, ms + 1200));
            crate::util::child_exit(if ok { 0 } else { 1 });
        }
        kids.push((pid, ms));
    }
    let mut late = Vec::new();
    for (pid, ms) in kids {
        if crate::util::wait(pid)? != 0 {
            late.push(ms);
        }
    }
    check(
        late.is_empty(),
        format!("three pollers with 100/400/800 ms each time out at their own (wrong: {late:?})"),
    )
}
