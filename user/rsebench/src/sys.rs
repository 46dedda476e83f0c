//! Thin wrappers over the raw syscalls the benchmarks use; failures of
//! calls that must not fail end the program with a message (a benchmark
//! that silently measures an error path would be worse than none).

use std::ffi::CStr;

/// Writes a line with one write(2) (no buffer survives a fork).
pub fn say(line: &str) {
    let mut s = line.to_string();
    s.push('\n');
    write_all(1, s.as_bytes());
}

pub fn die(what: &str) -> ! {
    say(&format!("BENCH-FAILED {what}: errno {}", errno()));
    power_off();
}

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: buf is valid for its length.
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

/// read(2) until `buf` is full; false on EOF or error.
pub fn read_exact(fd: i32, mut buf: &mut [u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: buf is valid and writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return false;
        }
        buf = &mut buf[n as usize..];
    }
    true
}

pub fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        die("pipe");
    }
    (fds[0], fds[1])
}

pub fn close(fd: i32) {
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fd) };
}

/// fork(2); in the child runs `child` and exits with its status.
pub fn fork(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `child` and then _exit; the program is
    // single-threaded.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        die("fork");
    }
    if pid == 0 {
        let st = child();
        // SAFETY: ends the child without running the parent's exit hooks.
        unsafe { libc::_exit(st) };
    }
    pid
}

/// Waits for `pid`; its exit status.
pub fn wait(pid: i32) -> i32 {
    let mut st = 0;
    loop {
        // SAFETY: st is a valid int.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return st;
        }
        if r < 0 && errno() != libc::EINTR {
            die("waitpid");
        }
    }
}

/// Pins the caller to CPU 0. Err(errno) if the kernel cannot.
pub fn pin_to_cpu0() -> Result<(), i32> {
    // SAFETY: an all-zero cpu_set_t is valid; CPU_SET writes inside it.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Undoes [`pin_to_cpu0`]: every CPU allowed.
pub fn unpin() {
    // SAFETY: as in pin_to_cpu0.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

pub fn cstr(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap_or_default()
}

/// This program's own path (for re-executing itself): /proc/self/exe,
/// else argv[0].
pub fn self_path() -> std::ffi::CString {
    let path = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| std::env::args().next().unwrap_or_default());
    cstr(&path)
}

pub fn as_ptr(c: &CStr) -> *const libc::c_char {
    c.as_ptr()
}

/// Ends the run: as init, powers the machine off (on RSE OS, where the
/// reboot call may be missing, exiting pid 1 ends the run too).
pub fn power_off() -> ! {
    if std::process::id() == 1 {
        // SAFETY: no memory is touched; the call either stops the machine
        // or fails.
        unsafe {
            libc::sync();
            libc::reboot(libc::RB_POWER_OFF);
        }
    }
    std::process::exit(0)
}
