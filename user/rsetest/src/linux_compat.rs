//! Small differences from Linux that a program can see, one `ok:` line
//! each: SA_RESTART restarts a pipe read and wait4, pause(2), no core-dump
//! bit without a core, the signals of user exceptions (int3, #DE, #UD,
//! #GP) and their si_code/si_addr, wait4's ECHILD before EFAULT, poll/select timeouts that overflow
//! or are invalid, /proc/self/exe (readlink, open, execve), long pipe
//! writes, 400 blocked 1 MiB pipe reads, partial writev, brk(-1), mmap of /dev/zero, SIGBUS past the
//! end of a mapped file, execve's E2BIG, /proc/PID/status, a bad fpstate
//! in rt_sigreturn, the job-control checks of setpgid, TIOCSPGRP and
//! TIOCSCTTY, a non-canonical tty read's MIN and TIME.

use crate::util::{
    check, close, errname, errno, fork, handle, pipe, sleep_ms, spawn, status_str, sys, wait,
    write_all,
};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering::SeqCst};

static HITS: AtomicU32 = AtomicU32::new(0);
static TRAP_CODE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn count(_: i32) {
    HITS.fetch_add(1, SeqCst);
}

extern "C" fn on_trap(_: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: SA_SIGINFO handlers get a valid siginfo.
    TRAP_CODE.store(unsafe { (*info).si_code }, SeqCst);
}

fn counter() -> libc::sighandler_t {
    count as extern "C" fn(i32) as *const () as libc::sighandler_t
}

fn getpid() -> libc::pid_t {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

/// A child that sends SIGUSR1 to `target` after 100 ms, then runs `then`.
fn poke_later(target: libc::pid_t, then: impl FnOnce()) -> Result<libc::pid_t, String> {
    spawn(move || {
        sleep_ms(100);
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(target, libc::SIGUSR1) };
        then();
        Ok(())
    })
}

pub fn run(_: &[String]) -> Result<(), String> {
    sa_restart()?;
    pause()?;
    no_core_bit()?;
    exceptions()?;
    fault_info()?;
    wait4_echild()?;
    timeouts()?;
    proc_exe()?;
    pipe_io()?;
    blocked_readers()?;
    memory()?;
    e2big()?;
    proc_status()?;
    bad_fpstate()?;
    job_control()?;
    tty_min_time()?;
    cpu_clocks()?;
    Ok(())
}

/// CLOCK_THREAD_CPUTIME_ID and CLOCK_PROCESS_CPUTIME_ID count CPU time,
/// not time: 300 ms of spinning moves them by about that much, 300 ms
/// of sleep barely (they returned the monotonic clock); the process's
/// includes a thread's that has exited; getrusage agrees.
fn cpu_clocks() -> Result<(), String> {
    use crate::util::clock_ns;
    let (t0, p0) = (
        clock_ns(libc::CLOCK_THREAD_CPUTIME_ID),
        clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID),
    );
    sleep_ms(300);
    let (t1, p1) = (
        clock_ns(libc::CLOCK_THREAD_CPUTIME_ID),
        clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID),
    );
    let spin_until = std::time::Instant::now() + std::time::Duration::from_millis(300);
    let mut x = 1u64;
    while std::time::Instant::now() < spin_until {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    let t2 = clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
    let spun = std::thread::spawn(|| {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
    });
    spun.join()
        .map_err(|_| "spinning thread panicked".to_string())?;
    let p3 = clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
    let t3 = clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ru_ns = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) as u64 * 1_000_000_000
        + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) as u64 * 1000;
    let ms = |ns: u64| ns / 1_000_000;
    check(
        t1 - t0 < 50_000_000
            && p1 - p0 < 50_000_000
            && t2 - t1 >= 150_000_000
            && p3 - t3 >= 100_000_000 + p0.saturating_sub(t0)
            && ru_ns + 10_000_000 >= p3,
        format_args!(
            "CPU-time clocks: a 300 ms sleep took {} ms (thread) and {} ms (process), 300 ms \
             of spinning {} ms; the process's clock is {} ms ahead of this thread's after a \
             200 ms spinning thread exited; getrusage says {} ms, the process clock {} ms",
            ms(t1 - t0),
            ms(p1 - p0),
            ms(t2 - t1),
            ms(p3.saturating_sub(t3)),
            ms(ru_ns),
            ms(p3)
        ),
    )
}

/// A handler installed with SA_RESTART: the interrupted pipe read and
/// wait4 go on (Linux restarts them); without it they return EINTR.
fn sa_restart() -> Result<(), String> {
    handle(libc::SIGUSR1, counter(), libc::SA_RESTART)?;
    let me = getpid();
    let (r, w) = pipe()?;
    let pid = poke_later(me, || {
        sleep_ms(100);
        write_all(w, b"x");
    })?;
    close(w);
    HITS.store(0, SeqCst);
    let mut b = 0u8;
    // SAFETY: b is a valid one-byte buffer.
    let n = unsafe { libc::read(r, (&mut b as *mut u8).cast(), 1) };
    let e = errno();
    close(r);
    check(
        n == 1 && b == b'x' && HITS.load(SeqCst) == 1,
        format_args!(
            "SA_RESTART: a pipe read interrupted by a handler goes on (read returned {n}{}, handler ran {}x)",
            if n < 0 { format!(" {}", errname(e)) } else { String::new() },
            HITS.load(SeqCst)
        ),
    )?;
    wait(pid)?;

    let pid = poke_later(me, || {
        sleep_ms(100);
        crate::util::child_exit(7);
    })?;
    HITS.store(0, SeqCst);
    let mut st = 0;
    // SAFETY: st is a valid out-pointer.
    let got = unsafe { libc::waitpid(pid, &mut st, 0) };
    let e = errno();
    check(
        got == pid && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 7 && HITS.load(SeqCst) == 1,
        format_args!(
            "SA_RESTART: waitpid interrupted by a handler goes on (returned {got}{}, handler ran {}x)",
            if got < 0 { format!(" {}", errname(e)) } else { String::new() },
            HITS.load(SeqCst)
        ),
    )?;

    // Without SA_RESTART the same wait fails with EINTR.
    handle(libc::SIGUSR1, counter(), 0)?;
    let pid = poke_later(me, || {
        sleep_ms(100);
        crate::util::child_exit(7);
    })?;
    // SAFETY: st is a valid out-pointer.
    let got = unsafe { libc::waitpid(pid, &mut st, 0) };
    let e = errno();
    check(
        got == -1 && e == libc::EINTR,
        format_args!(
            "without SA_RESTART waitpid returns EINTR (returned {got} {})",
            errname(e)
        ),
    )?;
    wait(pid)?;
    Ok(())
}

/// pause(2) sleeps until a handler runs, then fails with EINTR.
fn pause() -> Result<(), String> {
    handle(libc::SIGUSR1, counter(), libc::SA_RESTART)?;
    HITS.store(0, SeqCst);
    let pid = poke_later(getpid(), || {})?;
    // SAFETY: pause has no preconditions.
    let r = unsafe { libc::pause() };
    let e = errno();
    check(
        r == -1 && e == libc::EINTR && HITS.load(SeqCst) == 1,
        format_args!(
            "pause returns EINTR after the handler, even with SA_RESTART (returned {r} {}, handler ran {}x)",
            errname(e),
            HITS.load(SeqCst)
        ),
    )?;
    wait(pid)?;
    Ok(())
}

/// A child that sets RLIMIT_CORE to 0 (the host may allow cores) and runs
/// `f`; its wait status.
fn no_core_child(f: impl FnOnce()) -> Result<i32, String> {
    let pid = fork()?;
    if pid == 0 {
        let lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) };
        // Rust's runtime handles SIGSEGV/SIGBUS (stack overflow checks).
        let _ = handle(libc::SIGSEGV, libc::SIG_DFL, 0);
        let _ = handle(libc::SIGBUS, libc::SIG_DFL, 0);
        f();
        crate::util::child_exit(99);
    }
    wait(pid)
}

/// Linux sets the core-dump bit of the wait status only when it wrote a
/// core, which it never does with RLIMIT_CORE 0.
fn no_core_bit() -> Result<(), String> {
    let st = no_core_child(|| {
        // SAFETY: the child kills itself.
        unsafe { libc::kill(libc::getpid(), libc::SIGSEGV) };
    })?;
    check(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV && !libc::WCOREDUMP(st),
        format_args!(
            "SIGSEGV death with RLIMIT_CORE 0: no core-dump bit (status {st:#x}, {})",
            status_str(st)
        ),
    )
}

/// The signal each user-mode exception gives, as Linux: int3 SIGTRAP
/// (si_code SI_KERNEL), divide error SIGFPE, ud2 SIGILL, a privileged
/// instruction (#GP) SIGSEGV.
fn exceptions() -> Result<(), String> {
    let cases: [(&str, fn(), i32); 4] = [
        ("int3", || trap_int3(), libc::SIGTRAP),
        ("a divide by zero", || trap_div0(), libc::SIGFPE),
        ("ud2", || trap_ud2(), libc::SIGILL),
        ("hlt (#GP)", || trap_hlt(), libc::SIGSEGV),
    ];
    for (what, f, sig) in cases {
        let st = no_core_child(f)?;
        check(
            libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == sig,
            format_args!(
                "{what} in user mode kills with signal {sig} ({})",
                status_str(st)
            ),
        )?;
    }
    let pid = spawn(|| {
        let h = on_trap as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void);
        handle(
            libc::SIGTRAP,
            h as *const () as libc::sighandler_t,
            libc::SA_SIGINFO,
        )?;
        trap_int3();
        let code = TRAP_CODE.load(SeqCst);
        check(
            code == libc::SI_KERNEL,
            format_args!("int3's SIGTRAP handler gets si_code SI_KERNEL and execution goes on after it (si_code {code})"),
        )
    })?;
    crate::util::wait_ok(pid, "int3 handled")
}

fn trap_int3() {
    // SAFETY: int3 only raises SIGTRAP; the handler (if any) returns to
    // the next instruction.
    unsafe { core::arch::asm!("int3") };
}

fn trap_div0() {
    // SAFETY: the divide faults (#DE) and the child dies of it.
    unsafe {
        core::arch::asm!(
            "xor edx, edx",
            "mov eax, 1",
            "xor ecx, ecx",
            "div ecx",
            out("eax") _, out("edx") _, out("ecx") _
        )
    };
}

fn trap_ud2() {
    // SAFETY: ud2 faults (#UD) and the child dies of it.
    unsafe { core::arch::asm!("ud2") };
}

fn trap_hlt() {
    // SAFETY: hlt is privileged: #GP in user mode, and the child dies.
    unsafe { core::arch::asm!("hlt") };
}

/// wait4 without children fails with ECHILD before looking at the status
/// pointer (Linux checks the children first).
fn wait4_echild() -> Result<(), String> {
    let r = sys(libc::SYS_wait4, [-1, 8, 0, 0, 0, 0]);
    check(
        r == Err(libc::ECHILD),
        format_args!(
            "wait4 with no children and a bad status pointer: ECHILD ({})",
            crate::util::show(r)
        ),
    )
}

/// A huge timeout (tv_sec = INT64_MAX) sleeps until a signal, rather than
/// overflowing into the past; out-of-range fields are EINVAL (but select
/// carries whole seconds out of tv_usec, as Linux does).
fn timeouts() -> Result<(), String> {
    handle(libc::SIGUSR1, counter(), 0)?;
    let (r, w) = pipe()?;
    let mut pfd = libc::pollfd {
        fd: r,
        events: libc::POLLIN,
        revents: 0,
    };
    let pfd_ptr = &mut pfd as *mut libc::pollfd as libc::c_long;
    let fill = |set: &mut [u64; 16]| {
        *set = [0; 16];
        set[r as usize / 64] |= 1 << (r as usize % 64);
    };
    let huge_ts = [i64::MAX, 999_999_999];
    let huge_tv = [i64::MAX, 999_999];
    type Call<'a> = (&'a str, &'a dyn Fn(&[i64; 2]) -> Result<libc::c_long, i32>);
    let ppoll = |ts: &[i64; 2]| sys(libc::SYS_ppoll, [pfd_ptr, 1, ts.as_ptr() as _, 0, 0, 0]);
    let pselect = |ts: &[i64; 2]| {
        let mut set = [0u64; 16];
        fill(&mut set);
        sys(
            libc::SYS_pselect6,
            [
                r as libc::c_long + 1,
                set.as_mut_ptr() as _,
                0,
                0,
                ts.as_ptr() as _,
                0,
            ],
        )
    };
    let select = |tv: &[i64; 2]| {
        let mut set = [0u64; 16];
        fill(&mut set);
        sys(
            libc::SYS_select,
            [
                r as libc::c_long + 1,
                set.as_mut_ptr() as _,
                0,
                0,
                tv.as_ptr() as _,
                0,
            ],
        )
    };
    let calls: [(Call, &[i64; 2]); 3] = [
        (("ppoll", &ppoll), &huge_ts),
        (("pselect6", &pselect), &huge_ts),
        (("select", &select), &huge_tv),
    ];
    for ((name, call), huge) in calls {
        let pid = poke_later(getpid(), || {})?;
        let t0 = std::time::Instant::now();
        let res = call(huge);
        let ms = t0.elapsed().as_millis();
        check(
            res == Err(libc::EINTR) && ms >= 50,
            format_args!(
                "{name} with tv_sec INT64_MAX sleeps until a signal (EINTR after {ms} ms; {})",
                crate::util::show(res)
            ),
        )?;
        wait(pid)?;
    }
    for (name, call, bad) in [
        (
            "ppoll",
            &ppoll as &dyn Fn(&[i64; 2]) -> _,
            [0, 1_000_000_000],
        ),
        ("ppoll", &ppoll, [-1, 0]),
        ("pselect6", &pselect, [0, 1_000_000_000]),
        ("pselect6", &pselect, [0, -1]),
        ("select", &select, [0, -1]),
        ("select", &select, [-1, 0]),
    ] {
        let res = call(&bad);
        check(
            res == Err(libc::EINVAL),
            format_args!(
                "{name} with timeout {{{}, {}}} is EINVAL ({})",
                bad[0],
                bad[1],
                crate::util::show(res)
            ),
        )?;
    }
    // 1.5 s written as 0 s + 1,500,000 us: valid for select (Linux
    // normalises it); data already there returns at once.
    write_all(w, b"x");
    let res = select(&[0, 1_500_000]);
    check(
        res == Ok(1),
        format_args!(
            "select with tv_usec 1500000 is accepted ({})",
            crate::util::show(res)
        ),
    )?;
    close(r);
    close(w);
    Ok(())
}

fn readlink(path: &str) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// /proc/self/exe and /proc/PID/exe: readlink gives the program's path;
/// open and execve follow the link to the program.
fn proc_exe() -> Result<(), String> {
    let me = readlink("/proc/self/exe");
    let meta = std::fs::metadata(me.as_deref().unwrap_or("/nonexistent"));
    let via_proc = std::fs::metadata("/proc/self/exe");
    use std::os::unix::fs::MetadataExt;
    check(
        matches!((&meta, &via_proc), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev()),
        format_args!(
            "readlink /proc/self/exe ({me:?}) names the file stat(/proc/self/exe) reaches ({})",
            via_proc
                .as_ref()
                .map(|_| "ok".to_string())
                .unwrap_or_else(|e| e.to_string())
        ),
    )?;
    let head = std::fs::read("/proc/self/exe").map(|d| d.get(..4).map(|h| h.to_vec()));
    check(
        matches!(&head, Ok(Some(h)) if h == b"\x7fELF"),
        format_args!("open+read /proc/self/exe gives the ELF file ({head:?})"),
    )?;
    let pid = fork()?;
    if pid == 0 {
        sleep_ms(2000);
        crate::util::child_exit(0);
    }
    let child = readlink(&format!("/proc/{pid}/exe"));
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait(pid)?;
    check(
        child.is_some() && child == me,
        format_args!("readlink /proc/CHILD/exe names the same program ({child:?})"),
    )?;
    // execve("/proc/self/exe", ["rsetest", "alive"]) prints "alive".
    let (r, w) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        // SAFETY: dup2 of descriptors we own; execve with NUL-terminated
        // strings and null-terminated arrays.
        unsafe {
            libc::dup2(w, 1);
            let argv = [c"rsetest".as_ptr(), c"alive".as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            libc::execve(c"/proc/self/exe".as_ptr(), argv.as_ptr(), envp.as_ptr());
        }
        crate::util::child_exit(errno());
    }
    close(w);
    let mut out = Vec::new();
    let mut b = [0u8; 64];
    loop {
        // SAFETY: b is a valid buffer.
        let n = unsafe { libc::read(r, b.as_mut_ptr().cast(), b.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&b[..n as usize]);
    }
    close(r);
    let st = wait(pid)?;
    check(
        out == b"alive\nPASS alive\n" && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!(
            "execve(/proc/self/exe) runs the program again (output {:?}, {})",
            String::from_utf8_lossy(&out),
            status_str(st)
        ),
    )
}

/// A blocking write of 3 MiB to a pipe returns 3 MiB (Linux sleeps as
/// often as needed); a writev whose second iovec is bad writes the first
/// and returns its length, one whose first is bad fails with EFAULT.
fn pipe_io() -> Result<(), String> {
    const LEN: usize = 3 << 20;
    let (r, w) = pipe()?;
    let reader = spawn(move || {
        close(w);
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0usize;
        let mut sum = 0u64;
        loop {
            // SAFETY: buf is a valid buffer of its length.
            let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            total += n as usize;
            sum += buf[..n as usize].iter().map(|&b| b as u64).sum::<u64>();
        }
        check(
            total == LEN && sum == expected_sum(LEN),
            format_args!(
                "the reader got {total} bytes, intact: {}",
                sum == expected_sum(LEN)
            ),
        )
    })?;
    close(r);
    let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    // SAFETY: data is a valid buffer of its length.
    let n = unsafe { libc::write(w, data.as_ptr().cast(), LEN) };
    close(w);
    check(
        n == LEN as isize,
        format_args!("a blocking 3 MiB write to a pipe returns 3 MiB (returned {n})"),
    )?;
    crate::util::wait_ok(reader, "the reader got all 3 MiB")?;

    let good = b"abc";
    let bad = 8usize as *mut libc::c_void;
    let iov = [
        libc::iovec {
            iov_base: good.as_ptr() as *mut _,
            iov_len: 3,
        },
        libc::iovec {
            iov_base: bad,
            iov_len: 5,
        },
        libc::iovec {
            iov_base: good.as_ptr() as *mut _,
            iov_len: 3,
        },
    ];
    let path = c"/tmp/rse-linux-compat-writev";
    // SAFETY: a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
            0o600,
        )
    };
    let r1 = sys(libc::SYS_writev, [fd as _, iov.as_ptr() as _, 3, 0, 0, 0]);
    let r2 = sys(
        libc::SYS_writev,
        [fd as _, iov[1..].as_ptr() as _, 2, 0, 0, 0],
    );
    let got = std::fs::read("/tmp/rse-linux-compat-writev").unwrap_or_default();
    close(fd);
    // SAFETY: a NUL-terminated path.
    unsafe { libc::unlink(path.as_ptr()) };
    check(
        r1 == Ok(3) && r2 == Err(libc::EFAULT) && got == b"abc",
        format_args!(
            "writev to a file with a bad 2nd iovec writes the 1st ({}), with a bad 1st EFAULT ({}); the file holds {got:?}",
            crate::util::show(r1),
            crate::util::show(r2)
        ),
    )?;
    // A pipe takes nothing from a short writev with a bad iovec: Linux
    // fails the page being filled with EFAULT.
    let (r, w) = pipe()?;
    let r3 = sys(libc::SYS_writev, [w as _, iov.as_ptr() as _, 3, 0, 0, 0]);
    // SAFETY: r is our pipe's read end.
    unsafe { libc::fcntl(r, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut b = [0u8; 16];
    // SAFETY: b is a valid buffer.
    let n = unsafe { libc::read(r, b.as_mut_ptr().cast(), b.len()) };
    close(r);
    close(w);
    check(
        r3 == Err(libc::EFAULT) && n == -1,
        format_args!(
            "writev to a pipe with a bad 2nd iovec: EFAULT, nothing written ({}, read {n})",
            crate::util::show(r3)
        ),
    )
}

fn expected_sum(len: usize) -> u64 {
    (0..len).map(|i| (i % 251) as u64).sum()
}

/// brk(-1) returns the current break; /dev/zero maps as zeroed memory
/// (MAP_SHARED: shared with a fork child); a page of a file mapping wholly
/// past EOF raises SIGBUS, the rest of the last page reads as zeros.
fn memory() -> Result<(), String> {
    let cur = sys(libc::SYS_brk, [0, 0, 0, 0, 0, 0]);
    let bad = sys(libc::SYS_brk, [-1, 0, 0, 0, 0, 0]);
    let huge = sys(libc::SYS_brk, [0x7fff_ffff_f000, 0, 0, 0, 0, 0]);
    check(
        cur.is_ok() && bad == cur && huge == cur,
        format_args!(
            "brk(-1) and brk(top of user space) return the current break ({} / {} / {})",
            crate::util::show(cur),
            crate::util::show(bad),
            crate::util::show(huge)
        ),
    )?;

    // SAFETY: a NUL-terminated path.
    let zero = unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDWR) };
    let map = |flags: i32| {
        // SAFETY: a fresh mapping aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                zero,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            Err(errno())
        } else {
            Ok(p.cast::<u8>())
        }
    };
    let private = map(libc::MAP_PRIVATE);
    let shared = map(libc::MAP_SHARED);
    close(zero);
    let (private, shared) = match (private, shared) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            return check(
                false,
                format_args!("mmap of /dev/zero (private {a:?}, shared {b:?})"),
            )
        }
    };
    // SAFETY: both mappings are 8192 bytes, readable and writable.
    let zeros = unsafe { *private == 0 && *private.add(8191) == 0 && *shared.add(100) == 0 };
    // SAFETY: as above.
    unsafe { *private = 7 };
    let sh = shared as usize;
    let pid = spawn(move || {
        // SAFETY: the shared mapping is inherited.
        unsafe { *(sh as *mut u8).add(100) = 42 };
        Ok(())
    })?;
    wait(pid)?;
    // SAFETY: as above.
    let seen = unsafe { *shared.add(100) };
    check(
        zeros && seen == 42,
        format_args!(
            "mmap of /dev/zero gives zeroed memory; MAP_SHARED is shared with a child (zeros {zeros}, child wrote {seen})"
        ),
    )?;

    let path = "/tmp/rse-linux-compat-bus";
    std::fs::write(path, [1u8; 100]).map_err(|e| format!("{path}: {e}"))?;
    let st = no_core_child(|| {
        let Ok(f) = std::fs::File::open(path) else {
            return;
        };
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh private mapping of our file.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            crate::util::child_exit(10);
        }
        let p = p.cast::<u8>();
        // SAFETY: the mapping is 8192 bytes; the first page holds the file.
        let (first, tail) = unsafe {
            (
                std::ptr::read_volatile(p),
                std::ptr::read_volatile(p.add(200)),
            )
        };
        if first != 1 || tail != 0 {
            crate::util::child_exit(11);
        }
        // SAFETY: mapped, but wholly past EOF: SIGBUS.
        unsafe { std::ptr::read_volatile(p.add(4096)) };
    })?;
    let _ = std::fs::remove_file(path);
    check(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGBUS,
        format_args!(
            "reading a mapped page wholly past EOF raises SIGBUS; the rest of the last page reads 0 ({})",
            status_str(st)
        ),
    )
}

/// execve's E2BIG (with RLIMIT_STACK 8 MiB, so 2 MiB of argument space):
/// one string of 128 KiB (MAX_ARG_STRLEN with its NUL) or more is too
/// long (not ENAMETOOLONG); 20
/// strings of 120 KiB are too many; one of 100 KiB runs.
fn e2big() -> Result<(), String> {
    let cases: [(&str, usize, usize, bool); 4] = [
        ("one 128 KiB argument", 1, 128 << 10, false),
        ("one 200 KiB argument", 1, 200 << 10, false),
        ("20 arguments of 120 KiB", 20, 120 << 10, false),
        ("one 100 KiB argument", 1, 100 << 10, true),
    ];
    for (what, count, len, runs) in cases {
        let pid = fork()?;
        if pid == 0 {
            let lim = libc::rlimit {
                rlim_cur: 8 << 20,
                rlim_max: 8 << 20,
            };
            // SAFETY: lim is a valid rlimit.
            unsafe { libc::setrlimit(libc::RLIMIT_STACK, &lim) };
            let big = std::ffi::CString::new(vec![b'a'; len]).unwrap_or_default();
            let devnull = c"/dev/null";
            // SAFETY: NUL-terminated strings in null-terminated arrays;
            // stdout goes to /dev/null so "alive" does not show.
            unsafe {
                let fd = libc::open(devnull.as_ptr(), libc::O_WRONLY);
                libc::dup2(fd, 1);
                let mut argv = vec![c"rsetest".as_ptr(), c"alive".as_ptr()];
                argv.extend(std::iter::repeat_n(big.as_ptr(), count));
                argv.push(std::ptr::null());
                let envp = [std::ptr::null()];
                libc::execve(c"/proc/self/exe".as_ptr(), argv.as_ptr(), envp.as_ptr());
            }
            crate::util::child_exit(if errno() == libc::E2BIG { 100 } else { 101 });
        }
        let st = wait(pid)?;
        let code = if libc::WIFEXITED(st) {
            libc::WEXITSTATUS(st)
        } else {
            -1
        };
        check(
            if runs { code == 0 } else { code == 100 },
            format_args!(
                "execve with {what}: {} (child {})",
                if runs { "runs" } else { "E2BIG" },
                status_str(st)
            ),
        )?;
    }
    Ok(())
}

/// The value of `key:` in a /proc/PID/status text.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

fn mask_has(text: &str, key: &str, sig: i32) -> bool {
    field(text, key)
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .is_some_and(|m| m & (1 << (sig - 1)) != 0)
}

/// /proc/PID/status has Linux's lines: State, Threads, VmRSS and the
/// signal masks (SigBlk, SigIgn, SigCgt) in hex.
fn proc_status() -> Result<(), String> {
    let pid = spawn(|| {
        handle(libc::SIGUSR2, libc::SIG_IGN, 0)?;
        handle(libc::SIGUSR1, counter(), 0)?;
        crate::util::sigmask(libc::SIG_BLOCK, &[libc::SIGHUP])?;
        let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let ok = field(&text, "State").as_deref() == Some("R (running)")
            && field(&text, "Threads").as_deref() == Some("1")
            && field(&text, "VmRSS").is_some_and(|v| v.ends_with(" kB"))
            && mask_has(&text, "SigBlk", libc::SIGHUP)
            && mask_has(&text, "SigIgn", libc::SIGUSR2)
            && mask_has(&text, "SigCgt", libc::SIGUSR1)
            && !mask_has(&text, "SigCgt", libc::SIGUSR2);
        if !ok {
            crate::say!("{text}");
        }
        check(
            ok,
            "/proc/self/status: State, Threads, VmRSS, SigBlk/SigIgn/SigCgt as Linux",
        )
    })?;
    crate::util::wait_ok(pid, "/proc/self/status lines")?;
    let (r, w) = pipe()?;
    let pid = spawn(|| {
        write_all(w, b"r");
        sleep_ms(5000);
        Ok(())
    })?;
    close(w);
    crate::util::read_byte(r);
    close(r);
    // It may take a moment to get from the write to its sleep. Wait by
    // yielding, not sleeping: a sleeper of ours coming due wakes every
    // sleeper to re-check its deadline (one queue), so on one CPU we would
    // read the child at the instant our own wake-up made it runnable.
    let mut text = String::new();
    for _ in 0..50 {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(20);
        while std::time::Instant::now() < until {
            std::thread::yield_now();
        }
        text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if field(&text, "State").as_deref() == Some("S (sleeping)") {
            break;
        }
    }
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait(pid)?;
    check(
        field(&text, "State").as_deref() == Some("S (sleeping)"),
        format_args!(
            "/proc/CHILD/status of a sleeping child: State S (sleeping) ({:?})",
            field(&text, "State")
        ),
    )
}

extern "C" fn break_fpstate(_: i32, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: SA_SIGINFO handlers get their ucontext; we point its FPU
    // state at an unmapped address for rt_sigreturn to find.
    unsafe { (*uc.cast::<libc::ucontext_t>()).uc_mcontext.fpregs = 24usize as *mut _ };
}

/// rt_sigreturn with a bad fpstate pointer kills with SIGSEGV (Linux
/// checks the whole frame before restoring anything).
fn bad_fpstate() -> Result<(), String> {
    let st = no_core_child(|| {
        let h = break_fpstate as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void);
        let _ = handle(
            libc::SIGUSR1,
            h as *const () as libc::sighandler_t,
            libc::SA_SIGINFO,
        );
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    })?;
    check(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV,
        format_args!(
            "rt_sigreturn with a bad fpstate pointer: SIGSEGV ({})",
            status_str(st)
        ),
    )
}

/// A terminal to try job control on: a new pty on Linux, the console in
/// RSE OS (which has no ptys). Opened with O_NOCTTY.
fn open_terminal() -> Option<i32> {
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname on a descriptor we own;
    // ptsname's static buffer is used at once in this single thread.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if m >= 0 && libc::grantpt(m) == 0 && libc::unlockpt(m) == 0 {
            let name = libc::ptsname(m);
            if !name.is_null() {
                let s = libc::open(name, libc::O_RDWR | libc::O_NOCTTY);
                if s >= 0 {
                    return Some(s); // the master stays open with the child
                }
            }
        }
        let c = libc::open(c"/dev/console".as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        (c >= 0).then_some(c)
    }
}

fn ioctl_int(fd: i32, req: libc::c_ulong, arg: libc::c_long) -> Result<libc::c_long, i32> {
    sys(libc::SYS_ioctl, [fd as _, req as _, arg, 0, 0, 0])
}

fn tiocspgrp(fd: i32, pg: i32) -> Result<libc::c_long, i32> {
    let v = pg;
    ioctl_int(fd, libc::TIOCSPGRP, &v as *const i32 as libc::c_long)
}

/// setpgid, TIOCSPGRP and TIOCSCTTY check what Linux checks: a session
/// leader takes a terminal another session holds only with TIOCSCTTY 1
/// (root); TIOCSPGRP needs the caller's controlling terminal and a
/// group of its session (EINVAL/ESRCH/EPERM); setpgid only joins an
/// existing group of the caller's session (EPERM).
fn job_control() -> Result<(), String> {
    // A pid no process or group has: a child's, once reaped.
    let gone = spawn(|| Ok(()))?;
    wait(gone)?;
    // SAFETY: no preconditions.
    let outer_pgrp = unsafe { libc::getpgrp() };
    let pid = spawn(move || {
        // SAFETY: setsid has no preconditions.
        check(unsafe { libc::setsid() } > 0, "setsid in a child")?;
        let t = open_terminal().ok_or("no terminal to open")?;
        let r = ioctl_int(t, libc::TIOCSCTTY, 1);
        check(
            r == Ok(0),
            format_args!(
                "a session leader takes the terminal with TIOCSCTTY 1 ({})",
                crate::util::show(r)
            ),
        )?;
        let r = ioctl_int(t, libc::TIOCSCTTY, 0);
        check(
            r == Ok(0),
            format_args!(
                "TIOCSCTTY on its own controlling terminal: 0 ({})",
                crate::util::show(r)
            ),
        )?;
        for (pg, want, what) in [
            (-1, Err(libc::EINVAL), "a negative group: EINVAL"),
            (gone, Err(libc::ESRCH), "a group that does not exist: ESRCH"),
            (
                outer_pgrp,
                Err(libc::EPERM),
                "a group of another session: EPERM",
            ),
            // SAFETY: no preconditions.
            (unsafe { libc::getpid() }, Ok(0), "its own group: 0"),
        ] {
            let r = tiocspgrp(t, pg);
            check(
                r == want,
                format_args!("TIOCSPGRP to {what} ({})", crate::util::show(r)),
            )?;
        }
        let (rd, wr) = pipe()?;
        let member = spawn(move || {
            for (pg, what) in [
                (gone, "a group that does not exist"),
                (outer_pgrp, "a group of another session"),
            ] {
                let r = sys(libc::SYS_setpgid, [0, pg as _, 0, 0, 0, 0]);
                check(
                    r == Err(libc::EPERM),
                    format_args!("setpgid(0, {what}): EPERM ({})", crate::util::show(r)),
                )?;
            }
            // SAFETY: setsid has no preconditions.
            check(unsafe { libc::setsid() } > 0, "setsid in a grandchild")?;
            let r = ioctl_int(t, libc::TIOCSCTTY, 0);
            check(
                r == Err(libc::EPERM),
                format_args!(
                    "another new session leader cannot take it with TIOCSCTTY 0: EPERM ({})",
                    crate::util::show(r)
                ),
            )?;
            // SAFETY: no preconditions.
            let r = tiocspgrp(t, unsafe { libc::getpid() });
            check(
                r == Err(libc::ENOTTY),
                format_args!(
                    "TIOCSPGRP on a terminal that is not its controlling one: ENOTTY ({})",
                    crate::util::show(r)
                ),
            )?;
            write_all(wr, b"d");
            Ok(())
        })?;
        close(wr);
        crate::util::read_byte(rd);
        close(rd);
        crate::util::wait_ok(member, "the grandchild's checks")
    })?;
    crate::util::wait_ok(pid, "job control checks in a new session")
}

/// A non-canonical terminal read with nothing to read: MIN 0 TIME 0
/// returns 0 at once; MIN 0 TIME 2 returns 0 after 0.2 s.
fn tty_min_time() -> Result<(), String> {
    let t = open_terminal().ok_or("no terminal to open")?;
    // SAFETY: termios structs filled by tcgetattr before use.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::tcgetattr(t, &mut old) } != 0 {
        return Err(format!("tcgetattr: {}", errname(errno())));
    }
    let mut raw = old;
    raw.c_lflag &= !(libc::ICANON | libc::ECHO);
    let mut results = Vec::new();
    for time in [0u8, 2] {
        raw.c_cc[libc::VMIN] = 0;
        raw.c_cc[libc::VTIME] = time;
        // SAFETY: raw is a valid termios.
        unsafe { libc::tcsetattr(t, libc::TCSANOW, &raw) };
        let mut b = [0u8; 16];
        let t0 = std::time::Instant::now();
        // SAFETY: b is a valid buffer.
        let n = unsafe { libc::read(t, b.as_mut_ptr().cast(), b.len()) };
        results.push((n, t0.elapsed().as_millis()));
    }
    // SAFETY: old is the termios read above.
    unsafe { libc::tcsetattr(t, libc::TCSANOW, &old) };
    close(t);
    let (n0, ms0) = results[0];
    let (n2, ms2) = results[1];
    check(
        n0 == 0 && ms0 < 100,
        format_args!("a tty read with VMIN 0 VTIME 0 and no input returns 0 at once (returned {n0} after {ms0} ms)"),
    )?;
    check(
        n2 == 0 && (150..2000).contains(&ms2),
        format_args!("a tty read with VMIN 0 VTIME 2 and no input returns 0 after 0.2 s (returned {n2} after {ms2} ms)"),
    )
}

/// 400 processes blocked reading 1 MiB each from an empty pipe: the kernel
/// must not hold a buffer of the requested length for each (400 MiB);
/// closing the write end gives them all EOF. Their buffer is one shared
/// mapping, so the user side costs 1 MiB in all.
fn blocked_readers() -> Result<(), String> {
    const N: usize = 400;
    const LEN: usize = 1 << 20;
    let buf = crate::util::mmap_shared(LEN).map_err(|e| format!("mmap: {}", errname(e)))? as usize;
    let (r, w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let mut pids = Vec::new();
    for i in 0..N {
        let pid = match fork() {
            Ok(p) => p,
            Err(e) => {
                close(w);
                return Err(format!("fork #{i}: {e}"));
            }
        };
        if pid == 0 {
            close(w);
            close(ready_r);
            write_all(ready_w, b"r");
            // SAFETY: buf is a shared mapping of LEN bytes.
            let n = unsafe { libc::read(r, buf as *mut libc::c_void, LEN) };
            crate::util::child_exit(if n == 0 { 0 } else { 1 });
        }
        pids.push(pid);
    }
    close(ready_w);
    for _ in 0..N {
        crate::util::read_byte(ready_r);
    }
    close(ready_r);
    sleep_ms(300); // let the last ones block in their read
    close(w);
    close(r);
    let mut bad = 0;
    for pid in pids {
        let st = wait(pid)?;
        if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
            bad += 1;
        }
    }
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(buf as *mut libc::c_void, LEN) };
    check(
        bad == 0,
        format_args!("{N} readers blocked on a pipe with 1 MiB reads all get EOF ({bad} did not)"),
    )
}

/// The si_addr a fault handler expects: an address, or ANY_NONZERO.
static EXPECT_ADDR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const ANY_NONZERO: usize = usize::MAX;

extern "C" fn report_fault(_: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: SA_SIGINFO handlers get a valid siginfo.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    let want = EXPECT_ADDR.load(SeqCst);
    let addr_ok = if want == ANY_NONZERO {
        addr != 0
    } else {
        addr == want
    };
    crate::util::child_exit(if addr_ok { code } else { 200 });
}

/// A child that handles `sig` (exiting with the si_code, or 200 if si_addr
/// is not `addr`) and runs `f`; its exit code.
fn fault_code(sig: i32, addr: usize, f: impl FnOnce()) -> Result<i32, String> {
    let st = no_core_child(|| {
        EXPECT_ADDR.store(addr, SeqCst);
        let h = report_fault as extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void);
        let _ = handle(sig, h as *const () as libc::sighandler_t, libc::SA_SIGINFO);
        f();
    })?;
    Ok(if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else {
        -1
    })
}

/// si_code and si_addr of fault signals, as Linux: SEGV_MAPERR with the
/// address for an unmapped one, SEGV_ACCERR for a write to a read-only
/// mapping, BUS_ADRERR past the end of a mapped file, ILL_ILLOPN and
/// FPE_INTDIV with the instruction's address, SI_KERNEL and no address
/// for #GP.
fn fault_info() -> Result<(), String> {
    let ro = crate::util::mmap_anon(4096).map_err(|e| format!("mmap: {}", errname(e)))? as usize;
    // SAFETY: ro is our 4 KiB mapping.
    unsafe { libc::mprotect(ro as *mut libc::c_void, 4096, libc::PROT_READ) };
    let bus_path = "/tmp/rse-linux-compat-bus2";
    std::fs::write(bus_path, [1u8; 10]).map_err(|e| format!("{bus_path}: {e}"))?;
    let f = std::fs::File::open(bus_path).map_err(|e| format!("{bus_path}: {e}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh private mapping of our file.
    let bus = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            0,
        )
    } as usize;
    drop(f);
    let _ = std::fs::remove_file(bus_path);
    // (what, signal, argument of the faulting function, it, si_addr, si_code)
    type Case<'a> = (&'a str, i32, usize, fn(usize), usize, i32);
    let cases: [Case; 6] = [
        (
            "a read of unmapped address 0x10",
            libc::SIGSEGV,
            0x10,
            |a| {
                // SAFETY: faults on purpose.
                unsafe { std::ptr::read_volatile(a as *const u8) };
            },
            0x10,
            1,
        ),
        (
            "a write to a read-only mapping",
            libc::SIGSEGV,
            ro,
            |a| {
                // SAFETY: faults on purpose.
                unsafe { std::ptr::write_volatile(a as *mut u8, 1) };
            },
            ro,
            2,
        ),
        (
            "a read of a mapped page past EOF",
            libc::SIGBUS,
            bus + 4096,
            |a| {
                // SAFETY: faults on purpose.
                unsafe { std::ptr::read_volatile(a as *const u8) };
            },
            bus + 4096,
            2,
        ),
        ("ud2", libc::SIGILL, 0, |_| trap_ud2(), ANY_NONZERO, 2),
        (
            "a divide by zero",
            libc::SIGFPE,
            0,
            |_| trap_div0(),
            ANY_NONZERO,
            1,
        ),
        (
            "hlt (#GP)",
            libc::SIGSEGV,
            0,
            |_| trap_hlt(),
            0,
            libc::SI_KERNEL,
        ),
    ];
    for (what, sig, arg, f, addr, want) in cases {
        let code = fault_code(sig, addr, move || f(arg))?;
        check(
            code == want,
            format_args!(
                "{what}: signal {sig} with si_code {want} and si_addr {} (child exited {code}; 200 = wrong si_addr)",
                if addr == ANY_NONZERO { "the instruction".to_string() } else { format!("{addr:#x}") }
            ),
        )?;
    }
    Ok(())
}
