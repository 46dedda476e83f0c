//! `trace.errors=1` on the kernel command line: every syscall that fails
//! is logged to the kernel log (pid, command, number, first arguments,
//! the path argument if it has one, the errno). It is the tool for "a
//! program fails on RSE OS and not on Linux" when the failing call is
//! inside a program we cannot rebuild (Debian's sqlite3 reporting only
//! "readonly database"): compare the log with `strace -f -Z` of the same
//! program on Linux. Off by default; when off it costs nothing on a
//! successful syscall (the caller tests for an error first).

use core::sync::atomic::{AtomicBool, Ordering};
use linux_raw_sys::general as nr;

use crate::cmdline;

static ON: AtomicBool = AtomicBool::new(false);

/// Reads the switch from the command line.
pub fn init(cmd: &str) {
    ON.store(
        cmdline::get(cmd, "trace.errors") == Some("1"),
        Ordering::Relaxed,
    );
}

/// Which argument of syscall `n` is a path, if one is.
fn path_arg(n: u32) -> Option<usize> {
    Some(match n {
        nr::__NR_open
        | nr::__NR_creat
        | nr::__NR_stat
        | nr::__NR_lstat
        | nr::__NR_access
        | nr::__NR_unlink
        | nr::__NR_rmdir
        | nr::__NR_mkdir
        | nr::__NR_chdir
        | nr::__NR_readlink
        | nr::__NR_rename
        | nr::__NR_execve
        | nr::__NR_truncate => 0,
        nr::__NR_openat
        | nr::__NR_newfstatat
        | nr::__NR_statx
        | nr::__NR_faccessat
        | nr::__NR_faccessat2
        | nr::__NR_unlinkat
        | nr::__NR_mkdirat
        | nr::__NR_readlinkat
        | nr::__NR_renameat
        | nr::__NR_renameat2
        | nr::__NR_execveat => 1,
        _ => return None,
    })
}

/// Logs a failed syscall `n` with arguments `a` and return value `rax`
/// (a negative errno), when tracing is on.
#[cold]
pub fn failed(n: u64, a: [u64; 4], rax: u64) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let me = crate::proc::sched::current();
    let comm = me.info.lock().comm.clone();
    let path = path_arg(n as u32)
        .and_then(|i| crate::uaccess::read_cstr(a[i], 256).ok())
        .map(|p| alloc::string::String::from_utf8_lossy(&p).into_owned())
        .unwrap_or_default();
    crate::klog!(
        "errtrace: pid {} ({}) syscall {} ({:#x}, {:#x}, {:#x}, {:#x}) {:?} = -{}",
        me.pid,
        comm,
        n,
        a[0],
        a[1],
        a[2],
        a[3],
        path,
        (rax as i64).unsigned_abs()
    );
}
