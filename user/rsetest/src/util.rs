//! Helpers shared by the tests: checks that print one line each, raw
//! syscalls, fork and wait.

use std::fmt::Display;

/// Prints `ok: WHAT` and returns Ok if `cond` holds, otherwise prints
/// `not ok: WHAT` and returns Err(WHAT) so the test stops there.
pub fn check(cond: bool, what: impl Display) -> Result<(), String> {
    if cond {
        say_args(format_args!("ok: {what}"));
        Ok(())
    } else {
        say_args(format_args!("not ok: {what}"));
        Err(what.to_string())
    }
}

/// Prints one line at once with a single write(2), so lines from a parent
/// and its children never interleave mid-line and nothing sits in a
/// buffer across fork.
pub fn say_args(args: std::fmt::Arguments) {
    let mut s = std::fmt::format(args);
    s.push('\n');
    write_all(1, s.as_bytes());
}

/// `say!` is `println!` without buffering (see [`say_args`]).
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::util::say_args(format_args!($($t)*)) };
}

/// write(2) until everything is written or an error occurs.
pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A name for an errno value, for messages.
pub fn errname(e: i32) -> String {
    let n = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EPIPE => "EPIPE",
        libc::ENOSYS => "ENOSYS",
        libc::ENOLCK => "ENOLCK",
        libc::EDEADLK => "EDEADLK",
        libc::ENOTTY => "ENOTTY",
        libc::E2BIG => "E2BIG",
        _ => return format!("errno {e}"),
    };
    n.to_string()
}

/// A raw system call: Ok(return value) or Err(errno).
pub fn sys(nr: libc::c_long, a: [libc::c_long; 6]) -> Result<libc::c_long, i32> {
    // SAFETY: raw syscalls with arbitrary arguments are what these tests
    // are about; callers pass pointers that are either valid or meant to be
    // rejected by the kernel without it touching our memory.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// Formats the result of a syscall for a message.
pub fn show(r: Result<libc::c_long, i32>) -> String {
    match r {
        Ok(v) => format!("returned {v}"),
        Err(e) => format!("failed with {}", errname(e)),
    }
}

/// fork(2); Ok(0) in the child.
pub fn fork() -> Result<libc::pid_t, String> {
    // SAFETY: the tests are single-threaded, so the child may run anything.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(format!("fork failed: {}", errname(errno())))
    } else {
        Ok(pid)
    }
}

/// Ends a forked child at once, without running exit handlers or
/// flushing the parent's buffers a second time.
pub fn child_exit(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Runs `f` in a forked child whose exit status is 0 if `f` returned Ok
/// (its error is printed by the child otherwise); returns the child's pid.
pub fn spawn(f: impl FnOnce() -> Result<(), String>) -> Result<libc::pid_t, String> {
    let pid = fork()?;
    if pid == 0 {
        let code = match f() {
            Ok(()) => 0,
            Err(e) => {
                say!("child: {e}");
                1
            }
        };
        child_exit(code);
    }
    Ok(pid)
}

/// waitpid(pid, 0), retried on EINTR: the raw wait status.
pub fn wait(pid: libc::pid_t) -> Result<i32, String> {
    let mut st = 0;
    loop {
        // SAFETY: st is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r > 0 && (r == pid || pid == -1) {
            return Ok(st);
        }
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        return Err(format!(
            "waitpid({pid}) returned {r}: {}",
            if r < 0 {
                errname(errno())
            } else {
                "wrong pid".into()
            }
        ));
    }
}

/// A field of /proc/meminfo in KiB (e.g. "Slab": kernel object memory).
pub fn meminfo_kib(field: &str) -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/meminfo"))
}

/// ns on `clock` (clock_gettime through libc: the vDSO for the clocks it
/// answers, the syscall for the CPU-time ones).
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A count from RSE OS's /proc/kobjects (`name value` lines).
pub fn kobject(name: &str) -> Result<u64, String> {
    let s =
        std::fs::read_to_string("/proc/kobjects").map_err(|e| format!("/proc/kobjects: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .ok_or_else(|| format!("no {name} in /proc/kobjects"))
}

/// Waits for `pid` and requires it to have exited with status 0, quietly
/// (for loops: no line unless it fails).
pub fn wait_quiet(pid: libc::pid_t, what: &str) -> Result<(), String> {
    let st = wait(pid)?;
    if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
        Ok(())
    } else {
        Err(format!("{what} (child {})", status_str(st)))
    }
}

/// Waits for `pid` and requires it to have exited with status 0.
pub fn wait_ok(pid: libc::pid_t, what: &str) -> Result<(), String> {
    let st = wait(pid)?;
    check(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        format_args!("{what} (child {})", status_str(st)),
    )
}

/// "exited with 3", "killed by signal 11 (SIGSEGV)".
pub fn status_str(st: i32) -> String {
    if libc::WIFEXITED(st) {
        format!("exited with {}", libc::WEXITSTATUS(st))
    } else if libc::WIFSIGNALED(st) {
        let s = libc::WTERMSIG(st);
        format!("killed by signal {s} ({})", signame(s))
    } else {
        format!("wait status {st:#x}")
    }
}

/// A name for a signal number, for messages.
pub fn signame(s: i32) -> &'static str {
    match s {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        _ => "?",
    }
}

/// pipe2(O_CLOEXEC): (read end, write end).
pub fn pipe() -> Result<(i32, i32), String> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2 failed: {}", errname(errno())));
    }
    Ok((fds[0], fds[1]))
}

/// close(2), ignoring errors.
pub fn close(fd: i32) {
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fd) };
}

/// Reads exactly one byte (retrying on EINTR); None at EOF or error.
pub fn read_byte(fd: i32) -> Option<u8> {
    let mut b = 0u8;
    loop {
        // SAFETY: b is a valid one-byte buffer.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        match n {
            1 => return Some(b),
            -1 if errno() == libc::EINTR => continue,
            _ => return None,
        }
    }
}

/// Installs `handler` for `sig` with sigaction(2) and `flags`.
pub fn handle(sig: i32, handler: libc::sighandler_t, flags: i32) -> Result<(), String> {
    // SAFETY: a zeroed sigaction is valid; the handler is an extern "C" fn
    // of the right shape (or SIG_DFL / SIG_IGN).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(format!("sigaction({sig}) failed: {}", errname(errno())));
        }
    }
    Ok(())
}

/// Blocks (how = SIG_BLOCK), unblocks (SIG_UNBLOCK) or sets (SIG_SETMASK)
/// the signals in `sigs`.
pub fn sigmask(how: i32, sigs: &[i32]) -> Result<(), String> {
    // SAFETY: set is initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(how, &set, std::ptr::null_mut()) != 0 {
            return Err(format!("sigprocmask failed: {}", errname(errno())));
        }
    }
    Ok(())
}

/// Anonymous private read-write mapping of `len` bytes.
pub fn mmap_anon(len: usize) -> Result<*mut u8, i32> {
    mmap_anon_flags(len, libc::MAP_PRIVATE)
}

/// Anonymous shared read-write mapping of `len` bytes (survives fork as
/// the same memory).
pub fn mmap_shared(len: usize) -> Result<*mut u8, i32> {
    mmap_anon_flags(len, libc::MAP_SHARED)
}

fn mmap_anon_flags(len: usize, flags: i32) -> Result<*mut u8, i32> {
    // SAFETY: a fresh anonymous mapping aliases nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(errno())
    } else {
        Ok(p.cast())
    }
}

/// Sleeps for `ms` milliseconds (nanosleep).
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// Lets process `pid` (0: the caller) run on CPU `cpu` only.
pub fn pin(pid: libc::pid_t, cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays in bounds (cpu < 1024).
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r != 0 {
        return Err(format!(
            "sched_setaffinity({pid}, cpu {cpu}): {}",
            errname(errno())
        ));
    }
    Ok(())
}

/// The CPUs online (at least 1).
pub fn cpus() -> usize {
    // SAFETY: plain call.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}
