//! The Linux x86_64 system-call table.
//!
//! Every syscall is an event handled by the current torus (DESIGN.md): the
//! trap path hands us the frame, we run the handler, and the result goes
//! back in rax (`-errno` on failure, in this one place). Unknown numbers
//! return ENOSYS and are logged once each. On the way out we deliver
//! pending signals and honour the end of the time slice.

pub mod fs;
pub mod futex;
pub mod poll;
pub mod process;
pub mod time;

use abi::{Errno, KResult};
use core::sync::atomic::{AtomicU64, Ordering};
use hal::idt::TrapFrame;
use linux_raw_sys::general as nr;

/// Bitmap of numbers already reported as unknown.
static UNKNOWN_SEEN: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

fn unknown(n: u64) -> KResult<u64> {
    let (w, b) = ((n / 64) as usize, n % 64);
    let first = match UNKNOWN_SEEN.get(w) {
        Some(word) => word.fetch_or(1 << b, Ordering::Relaxed) & (1 << b) == 0,
        None => true,
    };
    if first {
        crate::klog!("syscall {n} not implemented: ENOSYS");
    }
    Err(Errno::ENOSYS)
}

/// Entry from hal's syscall stub.
pub extern "C" fn handle(frame: &mut TrapFrame) {
    hal::cpu::enable_interrupts();
    // A syscall entry is a boundary of the torus: SQPOLL rings see SQEs
    // published just before it (say, a write a blocking read waits for).
    crate::io_uring::boundary();
    let r = dispatch(frame);
    match r {
        Ok(v) => frame.rax = v,
        Err(e) => frame.rax = e.as_return(),
    }
    return_to_user(frame);
}

/// Work done on every return to user mode (syscalls, interrupts, faults),
/// with interrupts off at the end. The common case is one load of the
/// work word (proc::work); otherwise each bit's work runs with interrupts
/// on, and the word is looked at again until it stays clear.
pub fn return_to_user(frame: &mut TrapFrame) {
    use crate::proc::work;
    loop {
        hal::cpu::disable_interrupts();
        if work::pending() == 0 {
            return;
        }
        hal::cpu::enable_interrupts();
        if work::take(work::DEFERRED) {
            crate::trap::deferred_work();
        }
        crate::proc::sched::preempt_point();
        if work::take(work::SIGNALS) {
            crate::proc::signal::deliver(frame);
        }
    }
}

fn dispatch(f: &mut TrapFrame) -> KResult<u64> {
    let (a0, a1, a2, a3, a4, a5) = (f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9);
    let n = f.rax;
    match n as u32 {
        nr::__NR_read => fs::read(a0, a1, a2),
        nr::__NR_write => fs::write(a0, a1, a2),
        nr::__NR_readv => fs::readv(a0, a1, a2),
        nr::__NR_writev => fs::writev(a0, a1, a2),
        nr::__NR_pread64 => fs::pread(a0, a1, a2, a3),
        nr::__NR_pwrite64 => fs::pwrite(a0, a1, a2, a3),
        nr::__NR_lseek => fs::lseek(a0, a1 as i64, a2),
        nr::__NR_open => fs::openat(fs::AT_FDCWD, a0, a1, a2),
        nr::__NR_openat => fs::openat(a0 as i32 as i64, a1, a2, a3),
        nr::__NR_creat => fs::openat(fs::AT_FDCWD, a0, 0o1101, a1),
        nr::__NR_close => fs::close(a0),
        nr::__NR_dup => fs::dup(a0),
        nr::__NR_dup2 => fs::dup3(a0, a1, 0, true),
        nr::__NR_dup3 => fs::dup3(a0, a1, a2, false),
        nr::__NR_pipe => fs::pipe2(a0, 0),
        nr::__NR_pipe2 => fs::pipe2(a0, a1),
        nr::__NR_fcntl => fs::fcntl(a0, a1, a2),
        nr::__NR_ioctl => fs::ioctl(a0, a1, a2),
        nr::__NR_stat => fs::fstatat(fs::AT_FDCWD, a0, a1, 0),
        nr::__NR_lstat => fs::fstatat(fs::AT_FDCWD, a0, a1, fs::AT_SYMLINK_NOFOLLOW),
        nr::__NR_fstat => fs::fstat(a0, a1),
        nr::__NR_newfstatat => fs::fstatat(a0 as i32 as i64, a1, a2, a3),
        nr::__NR_statx => fs::statx(a0 as i32 as i64, a1, a2, a3, a4),
        nr::__NR_access => fs::faccessat(fs::AT_FDCWD, a0, a1),
        nr::__NR_faccessat | nr::__NR_faccessat2 => fs::faccessat(a0 as i32 as i64, a1, a2),
        nr::__NR_getdents64 => fs::getdents64(a0, a1, a2),
        nr::__NR_mkdir => fs::mkdirat(fs::AT_FDCWD, a0, a1),
        nr::__NR_mkdirat => fs::mkdirat(a0 as i32 as i64, a1, a2),
        nr::__NR_mknod => fs::mknodat(fs::AT_FDCWD, a0, a1, a2),
        nr::__NR_mknodat => fs::mknodat(a0 as i32 as i64, a1, a2, a3),
        nr::__NR_rmdir => fs::unlinkat(fs::AT_FDCWD, a0, fs::AT_REMOVEDIR),
        nr::__NR_unlink => fs::unlinkat(fs::AT_FDCWD, a0, 0),
        nr::__NR_unlinkat => fs::unlinkat(a0 as i32 as i64, a1, a2),
        nr::__NR_rename => fs::renameat(fs::AT_FDCWD, a0, fs::AT_FDCWD, a1),
        nr::__NR_renameat | nr::__NR_renameat2 => {
            fs::renameat(a0 as i32 as i64, a1, a2 as i32 as i64, a3)
        }
        nr::__NR_link => fs::linkat(fs::AT_FDCWD, a0, fs::AT_FDCWD, a1),
        nr::__NR_linkat => fs::linkat(a0 as i32 as i64, a1, a2 as i32 as i64, a3),
        nr::__NR_symlink => fs::symlinkat(a0, fs::AT_FDCWD, a1),
        nr::__NR_symlinkat => fs::symlinkat(a0, a1 as i32 as i64, a2),
        nr::__NR_readlink => fs::readlinkat(fs::AT_FDCWD, a0, a1, a2),
        nr::__NR_readlinkat => fs::readlinkat(a0 as i32 as i64, a1, a2, a3),
        nr::__NR_chdir => fs::chdir(a0),
        nr::__NR_fchdir => fs::fchdir(a0),
        nr::__NR_getcwd => fs::getcwd(a0, a1),
        nr::__NR_umask => fs::umask(a0),
        nr::__NR_chmod => fs::fchmodat(fs::AT_FDCWD, a0, a1),
        nr::__NR_fchmodat => fs::fchmodat(a0 as i32 as i64, a1, a2),
        nr::__NR_fchmod => fs::fchmod(a0, a1),
        nr::__NR_chown | nr::__NR_lchown => fs::fchownat(fs::AT_FDCWD, a0, a1, a2),
        nr::__NR_fchownat => fs::fchownat(a0 as i32 as i64, a1, a2, a3),
        nr::__NR_fchown => Ok(0),
        nr::__NR_utimensat => fs::utimensat(a0 as i32 as i64, a1, a2, a3),
        nr::__NR_truncate => fs::truncate(a0, a1),
        nr::__NR_ftruncate => fs::ftruncate(a0, a1),
        nr::__NR_fsync | nr::__NR_fdatasync | nr::__NR_sync | nr::__NR_syncfs => Ok(0),
        nr::__NR_statfs => fs::statfs(a1),
        nr::__NR_fstatfs => fs::statfs(a1),
        nr::__NR_sendfile => fs::sendfile(a0, a1, a2, a3),
        nr::__NR_poll => poll::poll(a0, a1, a2 as i32 as i64),
        nr::__NR_ppoll => poll::ppoll(a0, a1, a2, a3),
        nr::__NR_select => poll::select(a0, a1, a2, a3, a4, false),
        nr::__NR_pselect6 => poll::select(a0, a1, a2, a3, a4, true),
        nr::__NR_brk => crate::mm::syscalls::brk(a0),
        nr::__NR_mmap => crate::mm::syscalls::mmap(a0, a1, a2, a3, a4 as i32 as i64, a5),
        nr::__NR_munmap => crate::mm::syscalls::munmap(a0, a1),
        nr::__NR_mprotect => crate::mm::syscalls::mprotect(a0, a1, a2),
        nr::__NR_madvise => Ok(0),
        nr::__NR_getpid => Ok(crate::proc::sched::current().pid as u64),
        nr::__NR_gettid => Ok(crate::proc::sched::current().pid as u64),
        nr::__NR_getppid => Ok(crate::proc::sched::with_current(|p| p.ppid()) as u64),
        nr::__NR_getuid | nr::__NR_geteuid | nr::__NR_getgid | nr::__NR_getegid => Ok(0),
        nr::__NR_setuid | nr::__NR_setgid | nr::__NR_setreuid | nr::__NR_setregid => Ok(0),
        nr::__NR_setresuid | nr::__NR_setresgid | nr::__NR_setfsuid | nr::__NR_setfsgid => Ok(0),
        nr::__NR_getresuid | nr::__NR_getresgid => process::getresid(a0, a1, a2),
        nr::__NR_getgroups => Ok(0),
        nr::__NR_setgroups => Ok(0),
        nr::__NR_exit => process::exit(a0),
        nr::__NR_exit_group => process::exit(a0),
        nr::__NR_wait4 => crate::proc::exit::wait4(a0 as i32 as i64, a1, a2, a3),
        nr::__NR_waitid => process::waitid(a0, a1, a2, a3),
        nr::__NR_kill => process::kill(a0 as i32 as i64, a1),
        nr::__NR_tkill => process::kill(a0 as i32 as i64, a1),
        nr::__NR_tgkill => process::kill(a1 as i32 as i64, a2),
        nr::__NR_clone => crate::proc::fork::clone(f, a0, a1, a2, a3, a4),
        nr::__NR_fork => crate::proc::fork::clone(f, 17, 0, 0, 0, 0),
        nr::__NR_vfork => crate::proc::fork::clone(f, 0x4000 | 0x100 | 17, 0, 0, 0, 0),
        nr::__NR_execve => crate::exec::execve(f, fs::AT_FDCWD, a0, a1, a2, 0),
        nr::__NR_execveat => crate::exec::execve(f, a0 as i32 as i64, a1, a2, a3, a4),
        nr::__NR_rt_sigaction => crate::proc::signal::sigaction(a0, a1, a2, a3),
        nr::__NR_rt_sigprocmask => crate::proc::signal::sigprocmask(a0, a1, a2, a3),
        nr::__NR_rt_sigreturn => crate::proc::signal::sigreturn(f),
        nr::__NR_rt_sigsuspend => process::sigsuspend(a0, a1),
        nr::__NR_rt_sigpending => process::sigpending(a0),
        nr::__NR_sigaltstack => Ok(0),
        nr::__NR_setpgid => process::setpgid(a0, a1),
        nr::__NR_getpgid => process::getpgid(a0),
        nr::__NR_getpgrp => process::getpgid(0),
        nr::__NR_setsid => process::setsid(),
        nr::__NR_getsid => process::getsid(a0),
        nr::__NR_arch_prctl => process::arch_prctl(a0, a1),
        nr::__NR_set_tid_address => process::set_tid_address(a0),
        nr::__NR_set_robust_list => Ok(0),
        nr::__NR_prctl => process::prctl(a0, a1),
        nr::__NR_prlimit64 => process::prlimit64(a0, a1, a2, a3),
        nr::__NR_getrlimit => process::prlimit64(0, a0, 0, a1),
        nr::__NR_setrlimit => process::prlimit64(0, a0, a1, 0),
        nr::__NR_uname => process::uname(a0),
        nr::__NR_sysinfo => process::sysinfo(a0),
        nr::__NR_getrandom => process::getrandom(a0, a1, a2),
        nr::__NR_sched_yield => {
            crate::proc::sched::schedule();
            Ok(0)
        }
        nr::__NR_getpriority => process::getpriority(a0, a1),
        nr::__NR_setpriority => process::setpriority(a0, a1, a2 as i32),
        nr::__NR_times => process::times(a0),
        nr::__NR_getrusage => process::getrusage(a1),
        nr::__NR_getcpu => process::getcpu(a0, a1),
        nr::__NR_sched_getaffinity => process::sched_getaffinity(a1, a2),
        nr::__NR_sched_setaffinity => process::sched_setaffinity(a0 as i32 as u64, a1, a2),
        nr::__NR_clock_gettime => time::clock_gettime(a0, a1),
        nr::__NR_clock_getres => time::clock_getres(a0, a1),
        nr::__NR_gettimeofday => time::gettimeofday(a0),
        nr::__NR_time => time::time(a0),
        nr::__NR_nanosleep => time::nanosleep(a0, a1),
        nr::__NR_clock_nanosleep => time::clock_nanosleep(a0, a1, a2, a3),
        nr::__NR_alarm => time::alarm(a0),
        nr::__NR_futex => futex::futex(a0, a1, a2, a3),
        nr::__NR_io_uring_setup => crate::io_uring::setup(a0, a1),
        nr::__NR_io_uring_enter => crate::io_uring::enter(a0, a1, a2, a3, a4, a5),
        nr::__NR_io_uring_register => crate::io_uring::register(a0, a1, a2, a3),
        _ => unknown(n),
    }
}
