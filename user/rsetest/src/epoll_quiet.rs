//! An epoll instance sleeps until one of its own files changes: traffic on
//! pipes and eventfds it does not watch must not wake it. A child waits
//! in epoll_wait on a pipe and an eventfd; this process then moves bytes
//! through another pipe and bumps another eventfd thousands of times, and
//! the child's voluntary context switches (/proc/PID/status, as on Linux)
//! must barely move. Then the watched eventfd and the watched pipe each
//! wake the child with their own event.
//!
//! `rsetest epoll_quiet [ROUNDS]` (default 3,000).

use crate::say;
use crate::util::{check, close, errname, errno, pipe, sleep_ms, spawn, wait_ok, write_all};

/// Most wake-ups the child may see while the others' traffic flows
/// (a timer tick or two, not one per change).
const QUIET: u64 = 20;

fn efd() -> Result<i32, String> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(format!("eventfd: {}", errname(errno())));
    }
    Ok(fd)
}

fn bump(fd: i32) {
    let one = 1u64;
    // SAFETY: 8 bytes from a valid u64.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

fn drain(fd: i32) {
    let mut v = 0u64;
    // SAFETY: 8 bytes into a valid u64.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
}

/// The child's (voluntary switches, state letter) from /proc/PID/status.
fn status(pid: libc::pid_t) -> Result<(u64, char), String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    let v = field("voluntary_ctxt_switches:")?
        .parse()
        .map_err(|_| "bad voluntary_ctxt_switches".to_string())?;
    let state = field("State:")?.chars().next().unwrap_or('?');
    Ok((v, state))
}

/// One epoll_wait with no timeout: the data of the events it returns.
fn wait_events(ep: i32) -> Result<Vec<u64>, String> {
    let mut ev = [libc::epoll_event { events: 0, u64: 0 }; 4];
    loop {
        // SAFETY: ev has room for 4 events.
        let n = unsafe { libc::epoll_wait(ep, ev.as_mut_ptr(), 4, -1) };
        match n {
            -1 if errno() == libc::EINTR => continue,
            -1 => return Err(format!("epoll_wait: {}", errname(errno()))),
            n => return Ok(ev[..n as usize].iter().map(|e| e.u64).collect()),
        }
    }
}

fn add(ep: i32, fd: i32, data: u64) -> Result<(), String> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: data,
    };
    // SAFETY: ev is a valid epoll_event.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
        return Err(format!("epoll_ctl ADD: {}", errname(errno())));
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let (watched_r, watched_w) = pipe()?;
    let watched_e = efd()?;
    let (busy_r, busy_w) = pipe()?;
    let busy_e = efd()?;
    let child = spawn(|| {
        // SAFETY: plain syscall.
        let ep = unsafe { libc::epoll_create1(0) };
        if ep < 0 {
            return Err(format!("epoll_create1: {}", errname(errno())));
        }
        add(ep, watched_r, 1)?;
        add(ep, watched_e, 2)?;
        let first = wait_events(ep)?;
        check(first.contains(&2), "the watched eventfd wakes the child")?;
        drain(watched_e);
        if !first.contains(&1) {
            check(wait_events(ep)? == [1], "then the watched pipe wakes it")?;
        }
        Ok(())
    })?;
    close(watched_r);
    // Let the child reach its sleep.
    let mut before = status(child)?;
    for _ in 0..100 {
        if before.1 == 'S' {
            break;
        }
        sleep_ms(10);
        before = status(child)?;
    }
    check(before.1 == 'S', "the child sleeps in epoll_wait")?;
    let mut b = [0u8; 1];
    for _ in 0..rounds {
        write_all(busy_w, b"x");
        // SAFETY: one byte into b.
        unsafe { libc::read(busy_r, b.as_mut_ptr().cast(), 1) };
        bump(busy_e);
        drain(busy_e);
    }
    let after = status(child)?;
    let woken = after.0 - before.0;
    say!(
        "the child woke {woken} times while {rounds} bytes crossed another pipe \
         and another eventfd changed {} times",
        2 * rounds
    );
    check(
        woken <= QUIET,
        format_args!("others' traffic leaves the sleeper alone (at most {QUIET} wake-ups)"),
    )?;
    bump(watched_e);
    // The child takes the eventfd's event before the pipe's byte comes.
    sleep_ms(50);
    write_all(watched_w, b"y");
    close(watched_w);
    wait_ok(child, "the child got its two events")
}
