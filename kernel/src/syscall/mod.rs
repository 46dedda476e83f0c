//! The Linux x86_64 system-call table.
//!
//! Every syscall is an event handled by the current torus (DESIGN.md): the
//! trap path hands us the frame, we run the handler, and the result goes
//! back in rax (`-errno` on failure, in this one place). Unknown numbers
//! return ENOSYS and are logged once each. On the way out we deliver
//! pending signals and honour the end of the time slice.

mod cred;
pub mod epoll;
pub mod errtrace;
pub mod fs;
pub mod futex;
pub mod leaf;
mod mount;
pub mod poll;
pub mod process;
mod reboot;
pub mod sched;
mod signalfd;
pub mod socket;
pub mod time;
pub mod timer;
pub mod xattr;

use abi::{Errno, KResult};
use core::sync::atomic::{AtomicU64, Ordering};
use hal::idt::TrapFrame;
use linux_raw_sys::general as nr;

/// Bitmap of numbers already reported as unknown.
static UNKNOWN_SEEN: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

fn unknown(n: u64) -> KResult<u64> {
    let (w, b) = ((n / 64) as usize, n % 64);
    // Numbers past the bitmap (garbage, a fuzzer's) share its last bit:
    // reported once in all, not once per call.
    let (w, b) = if w < UNKNOWN_SEEN.len() {
        (w, b)
    } else {
        (UNKNOWN_SEEN.len() - 1, 63)
    };
    let first = UNKNOWN_SEEN[w].fetch_or(1 << b, Ordering::Relaxed) & (1 << b) == 0;
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
    // A process moved here from another machine sends its calls home.
    if crate::cluster::migrate::guest_syscall(frame) {
        return_to_user(frame);
        return;
    }
    let n = frame.rax;
    frame.rax = dispatch(frame);
    // One test on the common (successful) exit: failures are rare.
    if frame.rax >= Errno::MAX_RETURN_FLOOR {
        failed(frame, n);
    }
    return_to_user(frame);
}

/// Runs the call in `frame` as the current process (a moved process's
/// deputy at home runs its forwarded calls so): the result in rax, EINTR's
/// restart noted as on the normal path.
pub fn run_for_deputy(frame: &mut TrapFrame) {
    let n = frame.rax;
    frame.rax = dispatch(frame);
    if frame.rax >= Errno::MAX_RETURN_FLOOR {
        failed(frame, n);
    }
}

/// A syscall that returned an error: the error trace, and EINTR's
/// restart or conversion.
#[cold]
fn failed(frame: &mut TrapFrame, n: u64) {
    errtrace::failed(n, [frame.rdi, frame.rsi, frame.rdx, frame.r10], frame.rax);
    if frame.rax == Errno::EINTR.as_return() {
        crate::proc::signal::interrupted(frame, n);
    }
}

/// Work done on every return to user mode (syscalls, interrupts, faults),
/// with interrupts off at the end. The common case is one load of the
/// work word (proc::work); otherwise each bit's work runs with interrupts
/// on, and the word is looked at again until it stays clear.
#[inline(always)]
///
/// It is also where a non-canonical user RIP (from rt_sigreturn, a signal
/// handler's address, an ELF entry point) is stopped: `iretq` to one
/// faults in ring 0 after swapgs on Intel CPUs. Such a return becomes a
/// SIGSEGV, as the fault Linux's bad-iret fixup turns it into.
pub fn return_to_user(frame: &mut TrapFrame) {
    hal::cpu::disable_interrupts();
    if crate::proc::work::pending() != 0 || frame.rip >= hal::probe::USER_TOP {
        return_with_work(frame);
    }
}

/// The rest of [`return_to_user`], out of line so that the common exit
/// (nothing pending) stays a load and a branch in the caller.
#[cold]
#[inline(never)]
fn return_with_work(frame: &mut TrapFrame) {
    use crate::proc::work;
    loop {
        hal::cpu::enable_interrupts();
        if work::take(work::DEFERRED) {
            crate::trap::deferred_work();
        }
        crate::proc::sched::preempt_point();
        if work::take(work::SIGNALS) {
            // A move asked for starts here (and the process is served
            // from here until it is back); a guest recalled goes home.
            crate::cluster::migrate::at_return(frame);
            crate::proc::signal::deliver(frame);
        }
        if frame.rip >= hal::probe::USER_TOP {
            // Delivering it replaces the RIP with a handler's (itself
            // checked on the next turn) or ends the process; a blocked or
            // ignored SIGSEGV is forced to its default.
            let me = crate::proc::sched::current();
            me.sig.lock().fault_addr = 0;
            crate::proc::signal::force(&me, crate::proc::signal::SIGSEGV);
            continue;
        }
        hal::cpu::disable_interrupts();
        if work::pending() == 0 {
            return;
        }
    }
}

/// One syscall's result as the user sees it in rax (`-errno` on failure).
/// Applied in each arm, so the common exit stores a plain u64: joining the
/// arms on a `KResult` made every syscall write and re-read the enum.
#[inline(always)]
fn ret(r: KResult<u64>) -> u64 {
    match r {
        Ok(v) => v,
        Err(e) => e.as_return(),
    }
}

fn dispatch(f: &mut TrapFrame) -> u64 {
    let (a0, a1, a2, a3, a4, a5) = (f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9);
    let n = f.rax;
    match n as u32 {
        nr::__NR_read => ret(fs::read(a0, a1, a2)),
        nr::__NR_write => ret(fs::write(a0, a1, a2)),
        nr::__NR_readv => ret(fs::readv(a0, a1, a2)),
        nr::__NR_writev => ret(fs::writev(a0, a1, a2)),
        nr::__NR_pread64 => ret(fs::pread(a0, a1, a2, a3)),
        nr::__NR_pwrite64 => ret(fs::pwrite(a0, a1, a2, a3)),
        nr::__NR_lseek => ret(fs::lseek(a0, a1 as i64, a2)),
        nr::__NR_open => ret(fs::openat(fs::AT_FDCWD, a0, a1, a2)),
        nr::__NR_openat => ret(fs::openat(a0 as i32 as i64, a1, a2, a3)),
        nr::__NR_creat => ret(fs::openat(fs::AT_FDCWD, a0, 0o1101, a1)),
        nr::__NR_close => ret(fs::close(a0)),
        nr::__NR_dup => ret(fs::dup(a0)),
        nr::__NR_dup2 => ret(fs::dup3(a0, a1, 0, true)),
        nr::__NR_dup3 => ret(fs::dup3(a0, a1, a2, false)),
        nr::__NR_pipe => ret(fs::pipe2(a0, 0)),
        nr::__NR_pipe2 => ret(fs::pipe2(a0, a1)),
        nr::__NR_fcntl => ret(fs::fcntl(a0, a1, a2)),
        nr::__NR_flock => ret(fs::flock(a0, a1)),
        nr::__NR_ioctl => ret(fs::ioctl(a0, a1, a2)),
        nr::__NR_stat => ret(fs::fstatat(fs::AT_FDCWD, a0, a1, 0)),
        nr::__NR_lstat => ret(fs::fstatat(fs::AT_FDCWD, a0, a1, fs::AT_SYMLINK_NOFOLLOW)),
        nr::__NR_fstat => ret(fs::fstat(a0, a1)),
        nr::__NR_newfstatat => ret(fs::fstatat(a0 as i32 as i64, a1, a2, a3)),
        nr::__NR_statx => ret(fs::statx(a0 as i32 as i64, a1, a2, a3, a4)),
        nr::__NR_access => ret(fs::faccessat(fs::AT_FDCWD, a0, a1, 0)),
        nr::__NR_faccessat => ret(fs::faccessat(a0 as i32 as i64, a1, a2, 0)),
        nr::__NR_faccessat2 => ret(fs::faccessat(a0 as i32 as i64, a1, a2, a3)),
        nr::__NR_getdents64 => ret(fs::getdents64(a0, a1, a2)),
        nr::__NR_mkdir => ret(fs::mkdirat(fs::AT_FDCWD, a0, a1)),
        nr::__NR_mkdirat => ret(fs::mkdirat(a0 as i32 as i64, a1, a2)),
        nr::__NR_mknod => ret(fs::mknodat(fs::AT_FDCWD, a0, a1, a2)),
        nr::__NR_mknodat => ret(fs::mknodat(a0 as i32 as i64, a1, a2, a3)),
        nr::__NR_rmdir => ret(fs::unlinkat(fs::AT_FDCWD, a0, fs::AT_REMOVEDIR)),
        nr::__NR_unlink => ret(fs::unlinkat(fs::AT_FDCWD, a0, 0)),
        nr::__NR_unlinkat => ret(fs::unlinkat(a0 as i32 as i64, a1, a2)),
        nr::__NR_rename => ret(fs::renameat(fs::AT_FDCWD, a0, fs::AT_FDCWD, a1)),
        nr::__NR_renameat | nr::__NR_renameat2 => {
            ret(fs::renameat(a0 as i32 as i64, a1, a2 as i32 as i64, a3))
        }
        nr::__NR_link => ret(fs::linkat(fs::AT_FDCWD, a0, fs::AT_FDCWD, a1)),
        nr::__NR_linkat => ret(fs::linkat(a0 as i32 as i64, a1, a2 as i32 as i64, a3)),
        nr::__NR_symlink => ret(fs::symlinkat(a0, fs::AT_FDCWD, a1)),
        nr::__NR_symlinkat => ret(fs::symlinkat(a0, a1 as i32 as i64, a2)),
        nr::__NR_readlink => ret(fs::readlinkat(fs::AT_FDCWD, a0, a1, a2)),
        nr::__NR_readlinkat => ret(fs::readlinkat(a0 as i32 as i64, a1, a2, a3)),
        nr::__NR_setxattr
        | nr::__NR_lsetxattr
        | nr::__NR_fsetxattr
        | nr::__NR_getxattr
        | nr::__NR_lgetxattr
        | nr::__NR_fgetxattr
        | nr::__NR_listxattr
        | nr::__NR_llistxattr
        | nr::__NR_flistxattr
        | nr::__NR_removexattr
        | nr::__NR_lremovexattr
        | nr::__NR_fremovexattr => {
            use xattr::{Op, Target};
            let op = match n as u32 {
                nr::__NR_setxattr | nr::__NR_lsetxattr | nr::__NR_fsetxattr => Op::Set,
                nr::__NR_getxattr | nr::__NR_lgetxattr | nr::__NR_fgetxattr => Op::Get,
                nr::__NR_listxattr | nr::__NR_llistxattr | nr::__NR_flistxattr => Op::List,
                _ => Op::Remove,
            };
            let target = match n as u32 {
                nr::__NR_fsetxattr
                | nr::__NR_fgetxattr
                | nr::__NR_flistxattr
                | nr::__NR_fremovexattr => Target::Fd(a0),
                nr::__NR_lsetxattr
                | nr::__NR_lgetxattr
                | nr::__NR_llistxattr
                | nr::__NR_lremovexattr => Target::Path {
                    path: a0,
                    follow: false,
                },
                _ => Target::Path {
                    path: a0,
                    follow: true,
                },
            };
            ret(xattr::call(op, target, a1))
        }
        nr::__NR_chdir => ret(fs::chdir(a0)),
        nr::__NR_fchdir => ret(fs::fchdir(a0)),
        nr::__NR_getcwd => ret(fs::getcwd(a0, a1)),
        nr::__NR_umask => ret(fs::umask(a0)),
        nr::__NR_chmod => ret(fs::fchmodat(fs::AT_FDCWD, a0, a1)),
        nr::__NR_fchmodat => ret(fs::fchmodat(a0 as i32 as i64, a1, a2)),
        nr::__NR_fchmod => ret(fs::fchmod(a0, a1)),
        nr::__NR_chown | nr::__NR_lchown => ret(fs::fchownat(fs::AT_FDCWD, a0, a1, a2)),
        nr::__NR_fchownat => ret(fs::fchownat(a0 as i32 as i64, a1, a2, a3)),
        nr::__NR_fchown => ret(Ok(0)),
        nr::__NR_utimensat => ret(fs::utimensat(a0 as i32 as i64, a1, a2, a3)),
        nr::__NR_truncate => ret(fs::truncate(a0, a1)),
        nr::__NR_ftruncate => ret(fs::ftruncate(a0, a1)),
        nr::__NR_fsync => ret(fs::fsync(a0, false)),
        nr::__NR_fdatasync => ret(fs::fsync(a0, true)),
        nr::__NR_syncfs => ret(fs::syncfs(a0)),
        nr::__NR_sync => {
            crate::fs::mount::sync_all();
            ret(Ok(0))
        }
        nr::__NR_reboot => ret(reboot::reboot(a0, a1, a2)),
        nr::__NR_statfs => ret(fs::statfs(a0, a1)),
        nr::__NR_fstatfs => ret(fs::fstatfs(a0, a1)),
        nr::__NR_mount => ret(mount::mount(a0, a1, a2, a3)),
        nr::__NR_umount2 => ret(mount::umount2(a0, a1)),
        nr::__NR_sendfile => ret(fs::sendfile(a0, a1, a2, a3)),
        nr::__NR_poll => ret(poll::poll(a0, a1, a2 as i32 as i64)),
        nr::__NR_ppoll => ret(poll::ppoll(a0, a1, a2, a3)),
        nr::__NR_select => ret(poll::select(a0, a1, a2, a3, a4, false)),
        nr::__NR_pselect6 => ret(poll::select(a0, a1, a2, a3, a4, true)),
        nr::__NR_brk => ret(crate::mm::syscalls::brk(a0)),
        nr::__NR_mmap => ret(crate::mm::syscalls::mmap(
            a0,
            a1,
            a2,
            a3,
            a4 as i32 as i64,
            a5,
        )),
        nr::__NR_munmap => ret(crate::mm::syscalls::munmap(a0, a1)),
        nr::__NR_msync => ret(crate::mm::syscalls::msync(a0, a1, a2)),
        nr::__NR_mprotect => ret(crate::mm::syscalls::mprotect(a0, a1, a2)),
        nr::__NR_madvise => ret(crate::mm::advise::madvise(a0, a1, a2)),
        nr::__NR_mremap => ret(crate::mm::remap::mremap(a0, a1, a2, a3, a4)),
        nr::__NR_getpid => ret(Ok(crate::proc::sched::current().tgid as u64)),
        nr::__NR_gettid => ret(Ok(crate::proc::sched::current().pid as u64)),
        nr::__NR_getppid => ret(Ok(crate::proc::sched::with_current(|p| p.ppid()) as u64)),
        nr::__NR_getuid => ret(cred::getid(|c| c.ruid)),
        nr::__NR_geteuid => ret(cred::getid(|c| c.euid)),
        nr::__NR_getgid => ret(cred::getid(|c| c.rgid)),
        nr::__NR_getegid => ret(cred::getid(|c| c.egid)),
        nr::__NR_setuid => ret(cred::setuid(a0)),
        nr::__NR_setgid => ret(cred::setgid(a0)),
        nr::__NR_setreuid => ret(cred::setreuid(a0, a1)),
        nr::__NR_setregid => ret(cred::setregid(a0, a1)),
        nr::__NR_setresuid => ret(cred::setresuid(a0, a1, a2)),
        nr::__NR_setresgid => ret(cred::setresgid(a0, a1, a2)),
        nr::__NR_setfsuid => ret(cred::setfsid(a0, true)),
        nr::__NR_setfsgid => ret(cred::setfsid(a0, false)),
        nr::__NR_getresuid => ret(cred::getresid(a0, a1, a2, true)),
        nr::__NR_getresgid => ret(cred::getresid(a0, a1, a2, false)),
        nr::__NR_getgroups => ret(cred::getgroups(a0, a1)),
        nr::__NR_setgroups => ret(cred::setgroups(a0, a1)),
        nr::__NR_exit => ret(process::exit(a0)),
        nr::__NR_exit_group => ret(process::exit_group(a0)),
        nr::__NR_wait4 => ret(crate::proc::exit::wait4(a0 as i32 as i64, a1, a2, a3)),
        nr::__NR_waitid => ret(process::waitid(a0, a1, a2, a3)),
        nr::__NR_kill => ret(process::kill(a0 as i32 as i64, a1)),
        nr::__NR_tkill => ret(process::tgkill(None, a0 as i32 as i64, a1)),
        nr::__NR_tgkill => ret(process::tgkill(
            Some(a0 as i32 as i64),
            a1 as i32 as i64,
            a2,
        )),
        nr::__NR_clone => ret(crate::proc::fork::clone(f, a0, a1, a2, a3, a4)),
        nr::__NR_clone3 => ret(crate::proc::fork::clone3(f, a0, a1)),
        nr::__NR_fork => ret(crate::proc::fork::clone(f, 17, 0, 0, 0, 0)),
        nr::__NR_vfork => ret(crate::proc::fork::clone(f, 0x4000 | 0x100 | 17, 0, 0, 0, 0)),
        nr::__NR_execve => ret(crate::exec::execve(f, fs::AT_FDCWD, a0, a1, a2, 0)),
        nr::__NR_execveat => ret(crate::exec::execve(f, a0 as i32 as i64, a1, a2, a3, a4)),
        nr::__NR_rt_sigaction => ret(crate::proc::signal::sigaction(a0, a1, a2, a3)),
        nr::__NR_rt_sigprocmask => ret(crate::proc::signal::sigprocmask(a0, a1, a2, a3)),
        nr::__NR_rt_sigreturn => ret(crate::proc::signal::sigreturn(f)),
        nr::__NR_rt_sigsuspend => ret(process::sigsuspend(a0, a1)),
        nr::__NR_pause => ret(process::pause()),
        nr::__NR_rt_sigpending => ret(process::sigpending(a0)),
        nr::__NR_rt_sigtimedwait => ret(crate::proc::sigwait::sigtimedwait(a0, a1, a2, a3)),
        nr::__NR_sigaltstack => ret(crate::proc::altstack::sigaltstack(a0, a1, f.rsp)),
        nr::__NR_setpgid => ret(process::setpgid(a0, a1)),
        nr::__NR_getpgid => ret(process::getpgid(a0)),
        nr::__NR_getpgrp => ret(process::getpgid(0)),
        nr::__NR_setsid => ret(process::setsid()),
        nr::__NR_getsid => ret(process::getsid(a0)),
        nr::__NR_arch_prctl => ret(process::arch_prctl(a0, a1)),
        nr::__NR_set_tid_address => ret(process::set_tid_address(a0)),
        nr::__NR_set_robust_list => ret(crate::proc::robust::set(a0, a1)),
        nr::__NR_get_robust_list => ret(crate::proc::robust::get(a0, a1, a2)),
        nr::__NR_prctl => ret(process::prctl(a0, a1)),
        nr::__NR_prlimit64 => ret(process::prlimit64(a0, a1, a2, a3)),
        nr::__NR_getrlimit => ret(process::prlimit64(0, a0, 0, a1)),
        nr::__NR_setrlimit => ret(process::prlimit64(0, a0, a1, 0)),
        nr::__NR_uname => ret(process::uname(a0)),
        nr::__NR_sysinfo => ret(process::sysinfo(a0)),
        nr::__NR_getrandom => ret(process::getrandom(a0, a1, a2)),
        nr::__NR_sched_yield => ret(sched::sched_yield()),
        nr::__NR_getpriority => ret(sched::getpriority(a0, a1)),
        nr::__NR_setpriority => ret(sched::setpriority(a0, a1, a2 as i32)),
        nr::__NR_sched_setscheduler => ret(sched::sched_setscheduler(a0, a1, a2)),
        nr::__NR_sched_getscheduler => ret(sched::sched_getscheduler(a0)),
        nr::__NR_sched_setparam => ret(sched::sched_setparam(a0, a1)),
        nr::__NR_sched_getparam => ret(sched::sched_getparam(a0, a1)),
        nr::__NR_sched_get_priority_max => ret(sched::sched_get_priority_max(a0)),
        nr::__NR_sched_get_priority_min => ret(sched::sched_get_priority_min(a0)),
        nr::__NR_sched_rr_get_interval => ret(sched::sched_rr_get_interval(a0, a1)),
        nr::__NR_times => ret(process::times(a0)),
        nr::__NR_getrusage => ret(process::getrusage(a0 as i64, a1)),
        nr::__NR_getcpu => ret(process::getcpu(a0, a1)),
        nr::__NR_sched_getaffinity => ret(sched::sched_getaffinity(a0, a1, a2)),
        nr::__NR_sched_setaffinity => ret(sched::sched_setaffinity(a0, a1, a2)),
        nr::__NR_clock_gettime => ret(time::clock_gettime(a0, a1)),
        nr::__NR_clock_settime => ret(time::clock_settime(a0, a1)),
        nr::__NR_settimeofday => ret(time::settimeofday(a0, a1)),
        nr::__NR_clock_getres => ret(time::clock_getres(a0, a1)),
        nr::__NR_gettimeofday => ret(time::gettimeofday(a0)),
        nr::__NR_time => ret(time::time(a0)),
        nr::__NR_nanosleep => ret(time::nanosleep(a0, a1)),
        nr::__NR_clock_nanosleep => ret(time::clock_nanosleep(a0, a1, a2, a3)),
        nr::__NR_alarm => ret(timer::alarm(a0)),
        nr::__NR_setitimer => ret(timer::setitimer(a0, a1, a2)),
        nr::__NR_getitimer => ret(timer::getitimer(a0, a1)),
        nr::__NR_timer_create => ret(timer::timer_create(a0, a1, a2)),
        nr::__NR_timer_settime => ret(timer::timer_settime(a0, a1, a2, a3)),
        nr::__NR_timer_gettime => ret(timer::timer_gettime(a0, a1)),
        nr::__NR_timer_getoverrun => ret(timer::timer_getoverrun(a0)),
        nr::__NR_timer_delete => ret(timer::timer_delete(a0)),
        nr::__NR_futex => ret(futex::futex(a0, a1, a2, a3, a4, a5)),
        nr::__NR_io_uring_setup => ret(crate::io_uring::setup(a0, a1)),
        nr::__NR_io_uring_enter => ret(crate::io_uring::enter(a0, a1, a2, a3, a4, a5)),
        nr::__NR_io_uring_register => ret(crate::io_uring::register(a0, a1, a2, a3)),
        nr::__NR_socket => ret(socket::socket(a0, a1, a2)),
        nr::__NR_socketpair => ret(socket::socketpair(a0, a1, a2, a3)),
        nr::__NR_bind => ret(socket::bind(a0, a1, a2)),
        nr::__NR_listen => ret(socket::listen(a0, a1)),
        nr::__NR_accept => ret(socket::accept4(a0, a1, a2, 0)),
        nr::__NR_accept4 => ret(socket::accept4(a0, a1, a2, a3)),
        nr::__NR_connect => ret(socket::connect(a0, a1, a2)),
        nr::__NR_shutdown => ret(socket::shutdown(a0, a1)),
        nr::__NR_getsockname => ret(socket::getname(a0, a1, a2, false)),
        nr::__NR_getpeername => ret(socket::getname(a0, a1, a2, true)),
        nr::__NR_getsockopt => ret(socket::getsockopt(a0, a1, a2, a3, a4)),
        nr::__NR_setsockopt => ret(socket::setsockopt(a0, a1, a2, a3, a4)),
        nr::__NR_sendto => ret(socket::sendto(a0, a1, a2, a3, a4, a5)),
        nr::__NR_recvfrom => ret(socket::recvfrom(a0, a1, a2, a3, a4, a5)),
        nr::__NR_sendmsg => ret(socket::sendmsg(a0, a1, a2)),
        nr::__NR_recvmsg => ret(socket::recvmsg(a0, a1, a2)),
        nr::__NR_epoll_create => ret(epoll::epoll_create(a0)),
        nr::__NR_epoll_create1 => ret(epoll::epoll_create1(a0)),
        nr::__NR_epoll_ctl => ret(epoll::epoll_ctl(a0, a1, a2, a3)),
        nr::__NR_epoll_wait => ret(epoll::epoll_wait(a0, a1, a2, a3)),
        nr::__NR_epoll_pwait => ret(epoll::epoll_pwait(a0, a1, a2, a3, a4, a5)),
        nr::__NR_epoll_pwait2 => ret(epoll::epoll_pwait2(a0, a1, a2, a3, a4, a5)),
        nr::__NR_eventfd => ret(epoll::eventfd2(a0, 0)),
        nr::__NR_eventfd2 => ret(epoll::eventfd2(a0, a1)),
        nr::__NR_signalfd => ret(signalfd::signalfd4(a0, a1, a2, 0)),
        nr::__NR_signalfd4 => ret(signalfd::signalfd4(a0, a1, a2, a3)),
        nr::__NR_timerfd_create => ret(epoll::timerfd_create(a0, a1)),
        nr::__NR_timerfd_settime => ret(epoll::timerfd_settime(a0, a1, a2, a3)),
        nr::__NR_timerfd_gettime => ret(epoll::timerfd_gettime(a0, a1)),
        _ => ret(unknown(n)),
    }
}
