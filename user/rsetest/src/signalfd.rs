//! signalfd(2): blocked signals of the mask read as `signalfd_siginfo`
//! records (SIGUSR1 from this process and from a child, SIGCHLD of an
//! exiting child: signo, pid, uid, code, status), taken as sigwaitinfo
//! takes them; SFD_NONBLOCK's EAGAIN, SFD_CLOEXEC, a blocking read woken
//! by a signal, poll and epoll readiness, replacing the mask, several
//! records in one read, close; EINVAL/EFAULT/EBADF for bad arguments.

use crate::util::{check, close, errname, errno, fork, sigmask, sys, wait};

const REC: usize = std::mem::size_of::<libc::signalfd_siginfo>();

fn set_of(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before use.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        for &g in sigs {
            libc::sigaddset(&mut s, g);
        }
        s
    }
}

fn sfd(fd: i32, sigs: &[i32], flags: i32) -> Result<i32, i32> {
    let s = set_of(sigs);
    // SAFETY: s is a valid sigset.
    let r = unsafe { libc::signalfd(fd, &s, flags) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// Reads up to `n` records: the records, or the errno.
fn rd(fd: i32, n: usize) -> Result<Vec<libc::signalfd_siginfo>, i32> {
    // SAFETY: an all-zero signalfd_siginfo is valid.
    let mut v: Vec<libc::signalfd_siginfo> = vec![unsafe { std::mem::zeroed() }; n];
    loop {
        // SAFETY: v holds n records.
        let r = unsafe { libc::read(fd, v.as_mut_ptr().cast(), n * REC) };
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        if r < 0 {
            return Err(errno());
        }
        if !(r as usize).is_multiple_of(REC) {
            return Err(-1);
        }
        v.truncate(r as usize / REC);
        return Ok(v);
    }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid, sig) };
}

fn pending(sig: i32) -> bool {
    // SAFETY: s is filled by sigpending.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut s);
        libc::sigismember(&s, sig) == 1
    }
}

fn epoll_ready(ep: i32) -> Result<u32, String> {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: one event slot.
    let n = unsafe { libc::epoll_wait(ep, &mut ev, 1, 0) };
    if n < 0 {
        return Err(format!("epoll_wait: {}", errname(errno())));
    }
    Ok(if n == 0 { 0 } else { ev.events })
}

fn poll_in(fd: i32) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd.
    unsafe { libc::poll(&mut p, 1, 0) };
    p.revents
}

pub fn run(_: &[String]) -> Result<(), String> {
    use libc::{SIGCHLD, SIGUSR1, SIGUSR2};
    sigmask(libc::SIG_BLOCK, &[SIGUSR1, SIGUSR2, SIGCHLD])?;
    // SAFETY: plain syscalls.
    let (me, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    let fd = sfd(-1, &[SIGUSR1], libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {}", errname(e)))?;
    // SAFETY: fcntl on our descriptor.
    let (fdfl, fl) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFD),
            libc::fcntl(fd, libc::F_GETFL),
        )
    };
    check(
        fdfl & libc::FD_CLOEXEC != 0 && fl & libc::O_NONBLOCK != 0,
        "SFD_CLOEXEC and SFD_NONBLOCK are the descriptor's FD_CLOEXEC and O_NONBLOCK",
    )?;
    check(
        rd(fd, 1).err() == Some(libc::EAGAIN),
        "nothing pending: EAGAIN",
    )?;
    // SAFETY: plain syscalls on our descriptors.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 7,
    };
    // SAFETY: ev is a valid event.
    let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    check(r == 0, "epoll_ctl ADD of a signalfd")?;
    check(
        epoll_ready(ep)? == 0,
        "epoll: not ready while nothing is pending",
    )?;
    check(
        poll_in(fd) == 0,
        "poll: not readable while nothing is pending",
    )?;

    kill(me, SIGUSR1);
    check(
        pending(SIGUSR1),
        "SIGUSR1 sent to self is pending (blocked)",
    )?;
    check(
        epoll_ready(ep)? == libc::EPOLLIN as u32,
        "epoll: EPOLLIN once SIGUSR1 is pending",
    )?;
    check(
        poll_in(fd) == libc::POLLIN,
        "poll: POLLIN once SIGUSR1 is pending",
    )?;
    let mut small = [0u8; REC - 1];
    // SAFETY: valid buffer of REC-1 bytes.
    let n = unsafe { libc::read(fd, small.as_mut_ptr().cast(), small.len()) };
    check(n < 0 && errno() == libc::EINVAL, "a 127-byte read: EINVAL")?;
    let got = rd(fd, 1).map_err(|e| format!("read: {}", errname(e)))?;
    let i = &got[0];
    check(
        got.len() == 1 && i.ssi_signo == SIGUSR1 as u32,
        format!("read: one record, ssi_signo SIGUSR1 ({})", i.ssi_signo),
    )?;
    check(
        i.ssi_pid == me as u32 && i.ssi_uid == uid && i.ssi_code == libc::SI_USER,
        format!(
            "kill(self): ssi_pid {} (me {me}), ssi_uid {} ({uid}), ssi_code SI_USER ({})",
            i.ssi_pid, i.ssi_uid, i.ssi_code
        ),
    )?;
    check(
        !pending(SIGUSR1),
        "the read took SIGUSR1: no longer pending",
    )?;
    check(rd(fd, 1).err() == Some(libc::EAGAIN), "then EAGAIN again")?;
    check(epoll_ready(ep)? == 0, "epoll: not ready after the read")?;

    // Signals outside the mask stay pending and are not read.
    kill(me, SIGUSR2);
    check(
        rd(fd, 1).err() == Some(libc::EAGAIN) && pending(SIGUSR2),
        "SIGUSR2 (not in the mask): EAGAIN, still pending",
    )?;
    check(
        sfd(fd, &[SIGUSR2, SIGCHLD], 0) == Ok(fd),
        "signalfd(fd, {SIGUSR2, SIGCHLD}) replaces the mask, returns fd",
    )?;
    check(
        epoll_ready(ep)? == libc::EPOLLIN as u32,
        "epoll: ready for the new mask",
    )?;
    let got = rd(fd, 1).map_err(|e| format!("read: {}", errname(e)))?;
    check(
        got[0].ssi_signo == SIGUSR2 as u32,
        "the new mask reads SIGUSR2",
    )?;
    kill(me, SIGUSR1);
    check(
        rd(fd, 1).err() == Some(libc::EAGAIN) && pending(SIGUSR1),
        "SIGUSR1 (out of the new mask): EAGAIN, still pending",
    )?;
    check(
        sfd(fd, &[SIGUSR1, SIGUSR2], 0) == Ok(fd),
        "mask back to {SIGUSR1, SIGUSR2}",
    )?;
    kill(me, SIGUSR2);
    let got = rd(fd, 4).map_err(|e| format!("read: {}", errname(e)))?;
    let sigs: Vec<u32> = got.iter().map(|r| r.ssi_signo).collect();
    check(
        sigs == [SIGUSR1 as u32, SIGUSR2 as u32],
        format!("a 4-record read takes both pending signals, lowest first: {sigs:?}"),
    )?;

    // A blocking signalfd, woken by a child's SIGUSR1 and by its SIGCHLD.
    let b = sfd(-1, &[SIGUSR1, SIGCHLD], 0).map_err(|e| format!("signalfd: {}", errname(e)))?;
    let child = fork()?;
    if child == 0 {
        crate::util::sleep_ms(50);
        // SAFETY: plain syscalls.
        unsafe {
            libc::kill(libc::getppid(), SIGUSR1);
            libc::_exit(7)
        };
    }
    let got = rd(b, 1).map_err(|e| format!("blocking read: {}", errname(e)))?;
    let i = &got[0];
    check(
        i.ssi_signo == SIGUSR1 as u32 && i.ssi_pid == child as u32 && i.ssi_code == libc::SI_USER,
        format!(
            "blocking read: SIGUSR1 from the child, ssi_pid {} (child {child}), ssi_code {}",
            i.ssi_pid, i.ssi_code
        ),
    )?;
    let got = rd(b, 1).map_err(|e| format!("blocking read: {}", errname(e)))?;
    let i = &got[0];
    check(
        i.ssi_signo == SIGCHLD as u32
            && i.ssi_pid == child as u32
            && i.ssi_uid == uid
            && i.ssi_code == libc::CLD_EXITED
            && i.ssi_status == 7,
        format!(
            "SIGCHLD: signo {}, ssi_pid {} (child {child}), ssi_uid {}, ssi_code {} (CLD_EXITED), ssi_status {} (7)",
            i.ssi_signo, i.ssi_pid, i.ssi_uid, i.ssi_code, i.ssi_status
        ),
    )?;
    let st = wait(child)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7,
        "the child is still reaped by wait",
    )?;

    // Bad arguments.
    let s = set_of(&[SIGUSR1]);
    let sp = &s as *const libc::sigset_t as libc::c_long;
    check(
        sys(libc::SYS_signalfd4, [-1, sp, 8, 1, 0, 0]) == Err(libc::EINVAL),
        "signalfd4 with an unknown flag: EINVAL",
    )?;
    check(
        sys(libc::SYS_signalfd4, [-1, sp, 4, 0, 0, 0]) == Err(libc::EINVAL),
        "signalfd4 with a 4-byte mask size: EINVAL",
    )?;
    check(
        sys(libc::SYS_signalfd4, [-1, 0x10, 8, 0, 0, 0]) == Err(libc::EFAULT),
        "signalfd4 with a bad mask pointer: EFAULT",
    )?;
    check(
        sys(libc::SYS_signalfd4, [ep as libc::c_long, sp, 8, 0, 0, 0]) == Err(libc::EINVAL),
        "signalfd4 on an epoll descriptor: EINVAL",
    )?;
    check(
        sys(libc::SYS_signalfd4, [1000, sp, 8, 0, 0, 0]) == Err(libc::EBADF),
        "signalfd4 on a closed descriptor: EBADF",
    )?;
    let one = [0u8; REC];
    // SAFETY: valid buffer.
    let n = unsafe { libc::write(fd, one.as_ptr().cast(), REC) };
    check(
        n < 0 && errno() == libc::EINVAL,
        "write to a signalfd: EINVAL",
    )?;
    kill(me, SIGUSR1);
    // SAFETY: bad pointer on purpose.
    let n = unsafe { libc::read(fd, 0x10 as *mut libc::c_void, REC) };
    check(
        n < 0 && errno() == libc::EFAULT,
        "read into a bad pointer: EFAULT",
    )?;
    // Linux loses the signal there; RSE OS leaves it pending. Either way
    // nothing of it may remain for the end.
    let _ = rd(fd, 1);
    close(fd);
    check(rd(fd, 1).err() == Some(libc::EBADF), "after close: EBADF")?;
    close(b);
    close(ep);
    check(
        !pending(SIGUSR1) && !pending(SIGUSR2) && !pending(SIGCHLD),
        "nothing left pending",
    )?;
    sigmask(libc::SIG_UNBLOCK, &[SIGUSR1, SIGUSR2, SIGCHLD])
}
