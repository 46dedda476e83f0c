//! Resource limits are real: what setrlimit/prlimit64 set is read back,
//! inherited by fork, and enforced: RLIMIT_NOFILE (EMFILE, dup2 EBADF,
//! F_DUPFD EINVAL, poll EINVAL), RLIMIT_FSIZE (short write, EFBIG,
//! SIGXFSZ), RLIMIT_AS (mmap ENOMEM), RLIMIT_DATA (brk); bad arguments
//! get EINVAL/EPERM/ESRCH/EFAULT as on Linux.

use crate::util::{check, errname, errno, fork, status_str, sys, wait};

fn get(res: libc::__rlimit_resource_t) -> Result<(u64, u64), String> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: l is a valid out-pointer.
    if unsafe { libc::getrlimit(res, &mut l) } != 0 {
        return Err(format!("getrlimit({res}): {}", errname(errno())));
    }
    Ok((l.rlim_cur, l.rlim_max))
}

fn set(res: libc::__rlimit_resource_t, cur: u64, max: u64) -> Result<(), i32> {
    let l = libc::rlimit {
        rlim_cur: cur,
        rlim_max: max,
    };
    // SAFETY: l is valid.
    if unsafe { libc::setrlimit(res, &l) } != 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Runs `f` in a child; its exit status.
fn in_child(f: impl FnOnce() -> i32) -> Result<i32, String> {
    let pid = fork()?;
    if pid == 0 {
        crate::util::child_exit(f());
    }
    wait(pid)
}

fn exits_0(what: &str, st: i32) -> Result<(), String> {
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!("{what} ({})", status_str(st)),
    )
}

pub fn run(_: &[String]) -> Result<(), String> {
    let (nofile, nofile_max) = get(libc::RLIMIT_NOFILE)?;
    check(
        set(libc::RLIMIT_NOFILE, 2, 1).err() == Some(libc::EINVAL),
        "soft above hard: EINVAL",
    )?;
    check(
        set(libc::RLIMIT_NOFILE, 1024, 1 << 21).err() == Some(libc::EPERM),
        "RLIMIT_NOFILE hard above nr_open: EPERM",
    )?;
    let r = sys(libc::SYS_prlimit64, [0, 16, 0, 0, 0, 0]);
    check(r == Err(libc::EINVAL), "resource 16: EINVAL")?;
    let r = sys(
        libc::SYS_prlimit64,
        [0, libc::RLIMIT_NOFILE as libc::c_long, 8, 0, 0, 0],
    );
    check(r == Err(libc::EFAULT), "a bad new-limit pointer: EFAULT")?;
    let r = sys(
        libc::SYS_prlimit64,
        [999_999, libc::RLIMIT_NOFILE as libc::c_long, 0, 0, 0, 0],
    );
    check(r == Err(libc::ESRCH), "prlimit64 of no such process: ESRCH")?;

    // NOFILE enforced: 16 descriptors, then EMFILE; dup2 and F_DUPFD past
    // it refused; poll of more than the limit EINVAL.
    let st = in_child(|| {
        if set(libc::RLIMIT_NOFILE, 16, nofile_max).is_err() {
            return 2;
        }
        let mut last = -1;
        let mut err = 0;
        for _ in 0..32 {
            // SAFETY: a valid path.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
            if fd < 0 {
                err = errno();
                break;
            }
            last = fd;
        }
        if last != 15 || err != libc::EMFILE {
            return 3;
        }
        // SAFETY: plain descriptor calls.
        let (d2, e2) = unsafe { (libc::dup2(0, 16), errno()) };
        let (df, ef) = unsafe { (libc::fcntl(0, libc::F_DUPFD, 16), errno()) };
        if d2 != -1 || e2 != libc::EBADF || df != -1 || ef != libc::EINVAL {
            return 4;
        }
        let mut fds = [libc::pollfd {
            fd: 0,
            events: 0,
            revents: 0,
        }; 17];
        // SAFETY: fds is valid for 17 entries.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 17, 0) };
        if r != -1 || errno() != libc::EINVAL {
            return 5;
        }
        0
    })?;
    exits_0(
        "RLIMIT_NOFILE 16: fd 15 is the last, then EMFILE; dup2/F_DUPFD/poll past it refused (codes 2-5)",
        st,
    )?;

    // Inherited by fork; prlimit64 reads and sets another process's.
    set(libc::RLIMIT_NOFILE, 100, nofile_max).map_err(errname)?;
    let st = in_child(|| {
        if get(libc::RLIMIT_NOFILE) == Ok((100, nofile_max)) {
            0
        } else {
            1
        }
    })?;
    exits_0("fork inherits the limits", st)?;
    set(libc::RLIMIT_NOFILE, nofile, nofile_max).map_err(errname)?;
    let (rd, wr) = crate::util::pipe()?;
    let pid = fork()?;
    if pid == 0 {
        crate::util::close(wr);
        let _ = crate::util::read_byte(rd);
        let ok = get(libc::RLIMIT_CORE) == Ok((4096, 8192));
        crate::util::child_exit(if ok { 0 } else { 1 });
    }
    crate::util::close(rd);
    let new = [4096u64, 8192];
    let mut old = [0u64; 2];
    let r = sys(
        libc::SYS_prlimit64,
        [
            pid as libc::c_long,
            libc::RLIMIT_CORE as libc::c_long,
            new.as_ptr() as libc::c_long,
            old.as_mut_ptr() as libc::c_long,
            0,
            0,
        ],
    );
    crate::util::write_all(wr, b"x");
    crate::util::close(wr);
    let st = wait(pid)?;
    check(r.is_ok(), format_args!("prlimit64 on a child: {r:?}"))?;
    exits_0("the child sees what prlimit64 set", st)?;

    // FSIZE: a write that straddles the limit is cut short, the next
    // gets EFBIG (SIGXFSZ ignored), truncate past it too; with SIGXFSZ's
    // default action the process dies of it.
    let path = c"/tmp/rsetest-fsize";
    let st = in_child(|| {
        // SAFETY: plain calls with valid arguments.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if set(libc::RLIMIT_FSIZE, 4096, libc::RLIM_INFINITY).is_err() {
                return 2;
            }
            let fd = libc::open(
                path.as_ptr(),
                libc::O_CREAT | libc::O_TRUNC | libc::O_WRONLY,
                0o600,
            );
            let buf = [7u8; 10_000];
            let n = libc::write(fd, buf.as_ptr().cast(), buf.len());
            let m = libc::write(fd, buf.as_ptr().cast(), 1);
            let e = errno();
            let t = libc::ftruncate(fd, 8192);
            let te = errno();
            libc::close(fd);
            if n != 4096 {
                return 3;
            }
            if m != -1 || e != libc::EFBIG || t != -1 || te != libc::EFBIG {
                return 4;
            }
        }
        0
    })?;
    exits_0(
        "RLIMIT_FSIZE 4096: a 10000-byte write gives 4096, then EFBIG (codes 2-4)",
        st,
    )?;
    let st = in_child(|| {
        let _ = set(libc::RLIMIT_FSIZE, 4096, libc::RLIM_INFINITY);
        // SAFETY: plain calls with valid arguments.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_APPEND);
            libc::write(fd, [1u8].as_ptr().cast(), 1);
        }
        0
    })?;
    // SAFETY: a valid path.
    unsafe { libc::unlink(path.as_ptr()) };
    check(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGXFSZ,
        format_args!(
            "writing past RLIMIT_FSIZE: killed by SIGXFSZ ({})",
            status_str(st)
        ),
    )?;

    // AS: a mapping past it fails, a small one works.
    let st = in_child(|| {
        if set(libc::RLIMIT_AS, 256 << 20, libc::RLIM_INFINITY).is_err() {
            return 2;
        }
        let big = crate::util::mmap_anon(512 << 20);
        let small = crate::util::mmap_anon(1 << 20);
        match (big, small) {
            (Err(libc::ENOMEM), Ok(_)) => 0,
            _ => 3,
        }
    })?;
    exits_0(
        "RLIMIT_AS 256 MiB: a 512 MiB mmap is ENOMEM, 1 MiB works",
        st,
    )?;

    // DATA: brk cannot grow the heap past it.
    let st = in_child(|| {
        if set(libc::RLIMIT_DATA, 1 << 20, libc::RLIM_INFINITY).is_err() {
            return 2;
        }
        let cur = sys(libc::SYS_brk, [0; 6]).unwrap_or(0);
        let want = cur + (8 << 20);
        let got = sys(libc::SYS_brk, [want, 0, 0, 0, 0, 0]).unwrap_or(0);
        if got >= want {
            return 3;
        }
        let _ = set(libc::RLIMIT_DATA, libc::RLIM_INFINITY, libc::RLIM_INFINITY);
        let got = sys(libc::SYS_brk, [want, 0, 0, 0, 0, 0]).unwrap_or(0);
        if got != want {
            return 4;
        }
        0
    })?;
    exits_0(
        "RLIMIT_DATA 1 MiB: brk cannot grow 8 MiB; unlimited it can (codes 2-4)",
        st,
    )?;

    // STACK: execve sizes the new stack by it; a program that needs 1 MiB
    // of stack dies of SIGSEGV under 256 KiB and runs under 8 MiB.
    let eat = |limit: u64| {
        in_child(|| {
            if set(libc::RLIMIT_STACK, limit, libc::RLIM_INFINITY).is_err() {
                return 2;
            }
            let exe = c"/proc/self/exe";
            let argv = [
                c"rsetest".as_ptr(),
                c"stack_eat".as_ptr(),
                c"1024".as_ptr(),
                core::ptr::null(),
            ];
            // SAFETY: NUL-terminated strings and a null-terminated argv.
            unsafe { libc::execv(exe.as_ptr(), argv.as_ptr()) };
            3
        })
    };
    let small = eat(256 << 10)?;
    check(
        libc::WIFSIGNALED(small) && libc::WTERMSIG(small) == libc::SIGSEGV,
        format_args!(
            "RLIMIT_STACK 256 KiB: 1 MiB of stack is SIGSEGV ({})",
            status_str(small)
        ),
    )?;
    exits_0("RLIMIT_STACK 8 MiB: 1 MiB of stack runs", eat(8 << 20)?)?;
    nproc_per_uid()
}

/// A child that pauses until killed; its pid (in the child: never returns).
fn pauser() -> libc::pid_t {
    // SAFETY: fork in a single-threaded program; the child only pauses.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        loop {
            // SAFETY: plain call.
            unsafe { libc::pause() };
        }
    }
    pid
}

fn kill_all(pids: &[libc::pid_t]) {
    for &p in pids.iter().filter(|&&p| p > 0) {
        // SAFETY: our own children, killed and reaped.
        unsafe {
            libc::kill(p, libc::SIGKILL);
            libc::waitpid(p, std::ptr::null_mut(), 0);
        }
    }
}

/// RLIMIT_NPROC counts the tasks of the caller's real uid, not everyone's:
/// with root running more tasks than the limit, a process of another uid
/// limited to 3 forks twice, and the third fork is EAGAIN.
fn nproc_per_uid() -> Result<(), String> {
    const UID: u32 = 54321;
    let roots: Vec<libc::pid_t> = (0..4).map(|_| pauser()).collect();
    let st = in_child(|| {
        // SAFETY: plain calls changing this child's own ids.
        if unsafe { libc::setgid(UID) } != 0 || unsafe { libc::setuid(UID) } != 0 {
            return 2;
        }
        if set(libc::RLIMIT_NPROC, 3, 3).is_err() {
            return 3;
        }
        let mine: Vec<libc::pid_t> = (0..2).map(|_| pauser()).collect();
        let third = pauser();
        let e = errno();
        kill_all(&mine);
        kill_all(&[third]);
        match (mine.iter().all(|&p| p > 0), third) {
            (false, _) => 10,
            (true, t) if t > 0 => 11,
            (true, _) if e != libc::EAGAIN => 12,
            _ => 0,
        }
    });
    kill_all(&roots);
    let st = st?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!(
            "RLIMIT_NPROC 3 for uid {UID} beside {} root tasks: two forks, then EAGAIN (child status {}: 10 = a fork under the limit failed, 11 = over it succeeded, 12 = wrong errno)",
            roots.len(),
            status_str(st)
        ),
    )
}

/// Uses about `kib` KiB of stack (1 KiB frames), for the RLIMIT_STACK check.
#[inline(never)]
pub fn eat_stack(kib: u32) -> u64 {
    let mut buf = [0u8; 1024];
    buf[(kib % 1024) as usize] = kib as u8;
    let buf = std::hint::black_box(buf);
    if kib == 0 {
        return buf[0] as u64;
    }
    eat_stack(kib - 1) + buf[1] as u64
}
