//! epoll over pipes, sockets, eventfd and another epoll: level- and
//! edge-triggered reports, EPOLLONESHOT, EPOLLRDHUP, EPOLL_CTL_MOD/DEL
//! and their errors, timeouts, a wait woken by another process, EINTR,
//! epoll_pwait2, a closed file leaving the set, nesting loops (ELOOP).

use std::time::{Duration, Instant};

use crate::sock::*;
use crate::util::{check, close, errno, fork, wait_ok};

fn ctl(ep: i32, op: i32, fd: i32, events: u32, data: u64) -> R {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: a valid event.
    r(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } as isize)
}

/// epoll_wait: (events, data) pairs, or the errno.
fn wait(ep: i32, max: usize, timeout: i32) -> Result<Vec<(u32, u64)>, i32> {
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; max];
    // SAFETY: evs has room for max events.
    let n = r(unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), max as i32, timeout) } as isize)?;
    Ok(evs[..n as usize]
        .iter()
        .map(|e| (e.events, e.u64))
        .collect())
}

fn create() -> Result<i32, String> {
    // SAFETY: plain syscall.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(format!("epoll_create1: {}", errname_net(errno())));
    }
    Ok(ep)
}

fn write1(fd: i32) {
    // SAFETY: one byte from a valid buffer.
    unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
}

fn read_some(fd: i32) -> isize {
    let mut b = [0u8; 256];
    // SAFETY: valid buffer.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 256) }
}

const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;
const ET: u32 = libc::EPOLLET as u32;

extern "C" fn on_alarm(_: i32) {}

pub fn run(_: &[String]) -> Result<(), String> {
    let ep = create()?;
    let (r1, w1) = crate::util::pipe()?;
    check(
        ctl(ep, libc::EPOLL_CTL_ADD, r1, IN, 1) == Ok(0),
        "EPOLL_CTL_ADD a pipe's read end",
    )?;
    check(
        ctl(ep, libc::EPOLL_CTL_ADD, r1, IN, 1) == Err(libc::EEXIST),
        "adding it again: EEXIST",
    )?;
    check(
        ctl(ep, libc::EPOLL_CTL_MOD, w1, IN, 1) == Err(libc::ENOENT),
        "MOD of a file not in the set: ENOENT",
    )?;
    check(
        ctl(ep, libc::EPOLL_CTL_DEL, w1, 0, 0) == Err(libc::ENOENT),
        "DEL of a file not in the set: ENOENT",
    )?;
    check(
        ctl(ep, libc::EPOLL_CTL_ADD, ep, IN, 0) == Err(libc::EINVAL),
        "adding the epoll to itself: EINVAL",
    )?;
    check(
        ctl(ep, 99, r1, IN, 0) == Err(libc::EINVAL),
        "an unknown op: EINVAL",
    )?;
    check(
        ctl(ep, libc::EPOLL_CTL_ADD, 999, IN, 0) == Err(libc::EBADF),
        "a closed fd: EBADF",
    )?;
    check(
        ctl(r1, libc::EPOLL_CTL_ADD, w1, IN, 0) == Err(libc::EINVAL),
        "epfd not an epoll: EINVAL",
    )?;
    let f = std::fs::File::open("/proc/self/stat").map_err(|e| e.to_string())?;
    use std::os::unix::io::AsRawFd;
    let t0 = Instant::now();
    check(
        wait(ep, 8, 100) == Ok(vec![]),
        "nothing ready: epoll_wait times out with 0",
    )?;
    let dt = t0.elapsed();
    check(
        dt >= Duration::from_millis(90) && dt < Duration::from_secs(3),
        format!("... after {} ms", dt.as_millis()),
    )?;
    // Level-triggered: reported while readable.
    write1(w1);
    check(
        wait(ep, 8, 0) == Ok(vec![(IN, 1)]),
        "a byte in the pipe: EPOLLIN with our data",
    )?;
    check(
        wait(ep, 8, 0) == Ok(vec![(IN, 1)]),
        "level-triggered: reported again while unread",
    )?;
    read_some(r1);
    check(wait(ep, 8, 0) == Ok(vec![]), "read: no longer reported")?;
    // Edge-triggered: once per change.
    check(
        ctl(ep, libc::EPOLL_CTL_MOD, r1, IN | ET, 2) == Ok(0),
        "MOD to EPOLLIN|EPOLLET",
    )?;
    write1(w1);
    check(
        wait(ep, 8, 0) == Ok(vec![(IN, 2)]),
        "edge-triggered: reported once",
    )?;
    check(
        wait(ep, 8, 0) == Ok(vec![]),
        "... not again without new data",
    )?;
    write1(w1);
    check(
        wait(ep, 8, 0) == Ok(vec![(IN, 2)]),
        "new data on a still-readable pipe: reported again",
    )?;
    read_some(r1);
    // One-shot.
    check(
        ctl(
            ep,
            libc::EPOLL_CTL_MOD,
            r1,
            IN | libc::EPOLLONESHOT as u32,
            3,
        ) == Ok(0),
        "MOD to EPOLLONESHOT",
    )?;
    write1(w1);
    check(wait(ep, 8, 0) == Ok(vec![(IN, 3)]), "one-shot: reported")?;
    check(
        wait(ep, 8, 0) == Ok(vec![]),
        "... then disabled though still readable",
    )?;
    check(
        ctl(ep, libc::EPOLL_CTL_MOD, r1, IN, 4) == Ok(0),
        "MOD re-arms it",
    )?;
    check(wait(ep, 8, 0) == Ok(vec![(IN, 4)]), "... reported again")?;
    read_some(r1);
    check(ctl(ep, libc::EPOLL_CTL_DEL, r1, 0, 0) == Ok(0), "DEL")?;
    write1(w1);
    check(
        wait(ep, 8, 0) == Ok(vec![]),
        "a deleted file is not reported",
    )?;
    read_some(r1);
    // Sockets: writable, readable, EPOLLRDHUP on the peer's shutdown.
    let (a, b) = pair(libc::SOCK_STREAM)?;
    ctl(
        ep,
        libc::EPOLL_CTL_ADD,
        a,
        IN | OUT | libc::EPOLLRDHUP as u32,
        10,
    )
    .map_err(errname_net)?;
    check(
        wait(ep, 8, 0) == Ok(vec![(OUT, 10)]),
        "a fresh socket: EPOLLOUT only",
    )?;
    send(b, b"hi", 0).map_err(errname_net)?;
    check(
        wait(ep, 8, 0) == Ok(vec![(IN | OUT, 10)]),
        "data from the peer: EPOLLIN|EPOLLOUT",
    )?;
    // SAFETY: plain syscall.
    unsafe { libc::shutdown(b, libc::SHUT_WR) };
    let got = wait(ep, 8, 0);
    check(
        matches!(&got, Ok(v) if v.len() == 1 && v[0].0 & libc::EPOLLRDHUP as u32 != 0),
        format!("the peer's SHUT_WR: EPOLLRDHUP ({got:?})"),
    )?;
    ctl(ep, libc::EPOLL_CTL_DEL, a, 0, 0).map_err(errname_net)?;
    // Edge-triggered writes: fill, EAGAIN, drain from another process,
    // EPOLLOUT comes back.
    let (c, d) = pair(libc::SOCK_STREAM)?;
    set_nonblock(c);
    ctl(ep, libc::EPOLL_CTL_ADD, c, OUT | ET, 20).map_err(errname_net)?;
    let got = wait(ep, 8, 0).map_err(errname_net)?;
    check(got.iter().any(|e| e.1 == 20), "ET writable at first")?;
    let chunk = [1u8; 4096];
    while send(c, &chunk, 0).is_ok() {}
    let got = wait(ep, 8, 0).map_err(errname_net)?;
    check(!got.iter().any(|e| e.1 == 20), "full: no EPOLLOUT")?;
    let pid = fork()?;
    if pid == 0 {
        crate::util::sleep_ms(100);
        let mut b = vec![0u8; 1 << 20];
        // SAFETY: valid buffer.
        while unsafe { libc::recv(d, b.as_mut_ptr().cast(), b.len(), libc::MSG_DONTWAIT) } > 0 {}
        crate::util::child_exit(0);
    }
    let got = wait(ep, 8, 5000).map_err(errname_net)?;
    wait_ok(pid, "a reader drains the socket")?;
    check(
        got.iter().any(|e| e.1 == 20 && e.0 & OUT != 0),
        format!("edge-triggered EPOLLOUT once drained, waking the waiter: {got:?}"),
    )?;
    ctl(ep, libc::EPOLL_CTL_DEL, c, 0, 0).map_err(errname_net)?;
    // eventfd.
    // SAFETY: plain syscall.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    ctl(ep, libc::EPOLL_CTL_ADD, efd, IN, 30).map_err(errname_net)?;
    check(wait(ep, 8, 0) == Ok(vec![]), "eventfd at 0: not readable")?;
    let pid = fork()?;
    if pid == 0 {
        crate::util::sleep_ms(100);
        // SAFETY: 8 bytes from a valid u64.
        unsafe { libc::write(efd, (&5u64 as *const u64).cast(), 8) };
        crate::util::child_exit(0);
    }
    let t0 = Instant::now();
    let got = wait(ep, 8, 5000);
    wait_ok(pid, "eventfd writer")?;
    check(
        got == Ok(vec![(IN, 30)]),
        format!(
            "epoll_wait sleeps until another process writes the eventfd ({} ms)",
            t0.elapsed().as_millis()
        ),
    )?;
    // A closed file leaves the set.
    close(efd);
    check(
        wait(ep, 8, 0) == Ok(vec![]),
        "a closed eventfd is no longer reported",
    )?;
    // Nesting: an epoll in an epoll, and loops refused.
    let outer = create()?;
    ctl(outer, libc::EPOLL_CTL_ADD, ep, IN, 40).map_err(errname_net)?;
    check(
        ctl(ep, libc::EPOLL_CTL_ADD, outer, IN, 0) == Err(libc::ELOOP),
        "a loop of epolls: ELOOP",
    )?;
    ctl(ep, libc::EPOLL_CTL_ADD, r1, IN, 41).map_err(errname_net)?;
    write1(w1);
    check(
        wait(outer, 8, 0) == Ok(vec![(IN, 40)]),
        "an inner epoll with a ready file is readable in the outer one",
    )?;
    read_some(r1);
    // EINTR.
    crate::util::handle(
        libc::SIGUSR1,
        on_alarm as *const () as libc::sighandler_t,
        libc::SA_RESTART,
    )?;
    // SAFETY: plain syscall.
    let me = unsafe { libc::getpid() };
    let pid = fork()?;
    if pid == 0 {
        crate::util::sleep_ms(200);
        // SAFETY: plain syscall.
        unsafe { libc::kill(me, libc::SIGUSR1) };
        crate::util::child_exit(0);
    }
    let got = wait(ep, 8, 10_000);
    wait_ok(pid, "the signal sender")?;
    check(
        got == Err(libc::EINTR),
        format!("a signal interrupts epoll_wait: EINTR even with SA_RESTART ({got:?})"),
    )?;
    // epoll_pwait2 with a timespec.
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
    let t0 = Instant::now();
    // SAFETY: valid buffers.
    let n = unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait2,
            ep,
            evs.as_mut_ptr(),
            4,
            &ts,
            0usize,
            8usize,
        )
    };
    check(
        n == 0 && t0.elapsed() >= Duration::from_millis(45),
        "epoll_pwait2: 50 ms timeout",
    )?;
    // Bad arguments.
    // SAFETY: deliberate bad pointers and counts.
    unsafe {
        check(
            libc::epoll_wait(ep, evs.as_mut_ptr(), 0, 0) < 0 && errno() == libc::EINVAL,
            "maxevents 0: EINVAL",
        )?;
        check(
            libc::epoll_wait(
                ep,
                0xffff_8000_0000_0000usize as *mut libc::epoll_event,
                4,
                0,
            ) < 0
                && errno() == libc::EFAULT,
            "events buffer in kernel space: EFAULT",
        )?;
        check(
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, w1, 0x10 as *mut libc::epoll_event) < 0
                && errno() == libc::EFAULT,
            "bad event pointer: EFAULT",
        )?;
        check(
            libc::epoll_create1(12345) < 0 && errno() == libc::EINVAL,
            "epoll_create1(bad flags): EINVAL",
        )?;
    }
    check(
        ctl(ep, libc::EPOLL_CTL_ADD, f.as_raw_fd(), IN, 0) == Err(libc::EPERM),
        "a regular file: EPERM",
    )?;
    for fd in [ep, outer, r1, w1, a, b, c, d] {
        close(fd);
    }
    Ok(())
}
