//! The one table of fuzzed system calls: number (from `libc::SYS_*`),
//! name and the kind of each argument.
//!
//! Left out on purpose, with the reason:
//! - exit, exit_group: end the worker (workers end on their own).
//! - rt_sigreturn: restores a frame from the stack; with a fuzzed stack it
//!   jumps anywhere in the worker (the rsetest bad_iret/bad_rip checks
//!   cover the kernel side).
//! - clone, clone3, fork, vfork: a child would run the fuzzer on shared or
//!   copied state; fork/exit churn is done by the worker itself
//!   (`Worker::churn`), with children that fuzz a few calls and exit.
//! - execve, execveat with valid paths: would replace the worker; only
//!   never-valid pointers are passed (`A::BadPtr`).
//! - alarm, setitimer(ITIMER_REAL): the worker's SIGALRM tick breaks every
//!   blocking call; getitimer and the other timers are fuzzed.
//! - setrlimit, prlimit64 with a new limit: lowering NOFILE/AS/STACK/CPU to
//!   zero wrecks the worker; only reads (and bad pointers) are fuzzed.
//! - kill/tkill/tgkill with SIGKILL/SIGSTOP/SIGSEGV…, to pid -1/0/own:
//!   signals are drawn from `A::SafeSig` (ignored or handled ones).
//! - rt_sigaction with a handler for arbitrary signals: a fuzzed handler
//!   address or SIG_DFL for SIGALRM/SIGUSR1/SIGPIPE ends the worker; only
//!   harmless signals and bad pointers (`Worker::fixup`).
//! - sched_setscheduler/sched_setparam to SCHED_FIFO/RR: a busy RT worker
//!   starves the shell and the harness; other policies are fuzzed.
//! - arch_prctl(ARCH_SET_FS, ARCH_SET_CPUID, ARCH_MAP_VDSO_*), prctl(PR_SET_SECCOMP,
//!   PR_SET_TSC): move the worker's TLS, make cpuid/rdtsc fault, map over it,
//!   or kill it on its next call.
//! - ioctl TCSETS*/TIOCSPGRP/TIOCSCTTY/TIOCSWINSZ/TIOCSTI: change the console
//!   the harness reads (`Worker::fixup`).
//! - munmap/mprotect/mmap(MAP_FIXED)/madvise/brk outside the arena: the
//!   worker's code, stack and heap (`A::Addr` stays in the arena or at
//!   never-valid addresses; lengths are clamped to the arena's end).
//! - chdir/fchdir out of the scratch directory: relative paths must stay
//!   in it (chdir takes `PathW`).

use crate::gen::A::{self, *};

pub struct Call {
    pub nr: i64,
    pub name: &'static str,
    pub args: &'static [A],
}

const O_ALL: u64 = 0o37777777;
const AT_FLAGS: u64 = 0x1f00; // SYMLINK_NOFOLLOW, REMOVEDIR, SYMLINK_FOLLOW, NO_AUTOMOUNT, EMPTY_PATH
const MAP_FLAGS: u64 = 0x1fffff;
const IOCTLS: &[u64] = &[
    0x5401, 0x540f, 0x5413, 0x541b, 0x5421, 0x5429, 0x5451, 0x5450, 0x8912, 0,
];
// No F_SETOWN/F_GETOWN/F_SETSIG: SIGIO (fatal by default) could reach the
// shell; F_GETOWN returns negative pgids, which the return check refuses.
const FCNTLS: &[u64] = &[
    0, 1, 2, 3, 4, 1030, 1024, 1025, 1026, 1031, 1032, 5, 6, 7, 99,
];
const FUTEX_OPS: &[u64] = &[0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 128, 129, 137, 138, 12, 13];
// No PR_SET_SECCOMP (strict mode kills the worker on its next call) nor
// PR_SET_TSC (rdtsc would fault).
const PRCTLS: &[u64] = &[1, 2, 3, 4, 15, 16, 36, 37, 38, 39, 40, 0, 1000];
// No ARCH_SET_FS (TLS), ARCH_SET_CPUID (cpuid would fault), ARCH_MAP_VDSO_*
// (maps over anything).
const ARCH: &[u64] = &[0x1001, 0x1003, 0x1004, 0x1011, 7];
const POLICIES: &[u64] = &[0, 3, 5, 7, 8];

macro_rules! t {
    ($($sys:ident: [$($a:expr),*]),* $(,)?) => {
        pub const CALLS: &[Call] = &[
            $(Call { nr: libc::$sys, name: stringify!($sys), args: &[$($a),*] }),*
        ];
    };
}

t! {
    SYS_read: [Fd, Ptr, Len],
    SYS_write: [Fd, Ptr, Len],
    SYS_open: [PathW, Flags(O_ALL), Flags(0o7777)],
    SYS_open: [PathR, RoFlags, Flags(0o7777)],
    SYS_close: [Fd],
    SYS_stat: [PathR, Ptr],
    SYS_fstat: [Fd, Ptr],
    SYS_lstat: [PathR, Ptr],
    SYS_poll: [Ptr, Count, Pick(&[0, 1, 10, u64::MAX])],
    SYS_lseek: [Fd, Off, Small],
    SYS_mmap: [Addr, Len, Prot, Flags(MAP_FLAGS), Fd, Off],
    SYS_mprotect: [Addr, Len, Prot],
    SYS_munmap: [Addr, Len],
    SYS_brk: [Addr],
    SYS_rt_sigaction: [SafeSig, Ptr, Ptr, Pick(&[8, 0, 16])],
    SYS_rt_sigprocmask: [Small, SafeMask, Ptr, Pick(&[8, 0, 16])],
    SYS_ioctl: [Fd, Pick(IOCTLS), Ptr],
    SYS_pread64: [Fd, Ptr, Len, Off],
    SYS_pwrite64: [Fd, Ptr, Len, Off],
    SYS_readv: [Fd, Iov, Count],
    SYS_writev: [Fd, Iov, Count],
    SYS_access: [PathR, Small],
    SYS_pipe: [Ptr],
    SYS_select: [Pick(&[0, 1, 8, 64, 1024, 1025, u64::MAX]), Ptr, Ptr, Ptr, Time],
    SYS_sched_yield: [],
    SYS_madvise: [Addr, Len, Small],
    SYS_dup: [Fd],
    SYS_dup2: [Fd, NewFd],
    SYS_pause: [],
    SYS_nanosleep: [Time, Ptr],
    SYS_getitimer: [Small, Ptr],
    SYS_getpid: [],
    SYS_sendfile: [Fd, Fd, Ptr, Len],
    SYS_execve: [BadPtr, BadPtr, BadPtr],
    SYS_wait4: [Pid, Ptr, Flags(0x6000000f), Ptr],
    SYS_kill: [Pid, SafeSig],
    SYS_uname: [Ptr],
    SYS_fcntl: [Fd, Pick(FCNTLS), Int],
    SYS_fsync: [Fd],
    SYS_fdatasync: [Fd],
    SYS_truncate: [PathW, Off],
    SYS_ftruncate: [Fd, Off],
    SYS_getdents64: [Fd, Ptr, Len],
    SYS_getcwd: [Ptr, Len],
    SYS_chdir: [PathW],
    SYS_rename: [PathW, PathW],
    SYS_mkdir: [PathW, Flags(0o7777)],
    SYS_rmdir: [PathW],
    SYS_creat: [PathW, Flags(0o7777)],
    SYS_link: [PathW, PathW],
    SYS_unlink: [PathW],
    SYS_symlink: [PathR, PathW],
    SYS_readlink: [PathR, Ptr, Len],
    SYS_chmod: [PathW, Flags(0o7777)],
    SYS_fchmod: [Fd, Flags(0o7777)],
    SYS_chown: [PathW, Int, Int],
    SYS_fchown: [Fd, Int, Int],
    SYS_lchown: [PathW, Int, Int],
    SYS_umask: [Flags(0o777)],
    SYS_gettimeofday: [Ptr, Ptr],
    SYS_getrlimit: [Small, Ptr],
    SYS_getrusage: [Pick(&[0, 1, -1i64 as u64, 2]), Ptr],
    SYS_sysinfo: [Ptr],
    SYS_times: [Ptr],
    SYS_getuid: [],
    SYS_getgid: [],
    SYS_setuid: [Pick(&[0, 1000])],
    SYS_setgid: [Pick(&[0, 1000])],
    SYS_geteuid: [],
    SYS_getegid: [],
    SYS_setpgid: [Pid, Pid],
    SYS_getppid: [],
    SYS_getpgrp: [],
    SYS_setsid: [],
    SYS_getgroups: [Count, Ptr],
    SYS_setgroups: [Count, Ptr],
    SYS_getresuid: [Ptr, Ptr, Ptr],
    SYS_getresgid: [Ptr, Ptr, Ptr],
    SYS_getpgid: [Pid],
    SYS_getsid: [Pid],
    SYS_rt_sigpending: [Ptr, Pick(&[8, 0, 16, 4096])],
    SYS_rt_sigtimedwait: [SafeMask, Ptr, Time, Pick(&[8, 0, 16])],
    SYS_rt_sigsuspend: [SafeMask, Pick(&[8, 0, 16])],
    SYS_sigaltstack: [Ptr, Ptr],
    SYS_mknod: [PathW, Int, Int],
    SYS_statfs: [PathR, Ptr],
    SYS_fstatfs: [Fd, Ptr],
    SYS_getpriority: [Small, Pid],
    SYS_setpriority: [Small, Pid, Pick(&[0, 5, 19, -20i64 as u64, 40])],
    SYS_sched_setparam: [Pid, BadPtr],
    SYS_sched_getparam: [Pid, Ptr],
    SYS_sched_setscheduler: [Pid, Pick(POLICIES), Ptr],
    SYS_sched_getscheduler: [Pid],
    SYS_sched_get_priority_max: [Small],
    SYS_sched_get_priority_min: [Small],
    SYS_sched_rr_get_interval: [Pid, Ptr],
    SYS_prctl: [Pick(PRCTLS), Int, Int, Int, Int],
    SYS_arch_prctl: [Pick(ARCH), Ptr],
    SYS_sync: [],
    SYS_gettid: [],
    SYS_time: [Ptr],
    SYS_futex: [Ptr, Pick(FUTEX_OPS), Int, Time, Ptr, Int],
    SYS_sched_setaffinity: [Pid, Pick(&[0, 1, 8, 16, 128, 4096, u64::MAX]), Ptr],
    SYS_sched_getaffinity: [Pid, Pick(&[0, 1, 8, 16, 128, 4096, u64::MAX]), Ptr],
    SYS_set_tid_address: [Ptr],
    SYS_timer_create: [Clock, Ptr, Ptr],
    SYS_timer_settime: [Small, Flags(1), Time, Ptr],
    SYS_timer_gettime: [Small, Ptr],
    SYS_timer_getoverrun: [Small],
    SYS_timer_delete: [Small],
    SYS_clock_gettime: [Clock, Ptr],
    SYS_clock_getres: [Clock, Ptr],
    SYS_clock_nanosleep: [Clock, Flags(1), Time, Ptr],
    SYS_tgkill: [Pid, Pid, SafeSig],
    SYS_tkill: [Pid, SafeSig],
    SYS_waitid: [Small, Pid, Ptr, Flags(0x0100000f), Ptr],
    SYS_openat: [DirFd, PathW, Flags(O_ALL), Flags(0o7777)],
    SYS_openat: [DirFd, PathR, RoFlags, Flags(0o7777)],
    SYS_mkdirat: [DirFd, PathW, Flags(0o7777)],
    SYS_mknodat: [DirFd, PathW, Int, Int],
    SYS_fchownat: [DirFd, PathW, Int, Int, Flags(AT_FLAGS)],
    SYS_newfstatat: [DirFd, PathR, Ptr, Flags(AT_FLAGS)],
    SYS_unlinkat: [DirFd, PathW, Flags(AT_FLAGS)],
    SYS_renameat: [DirFd, PathW, DirFd, PathW],
    SYS_renameat2: [DirFd, PathW, DirFd, PathW, Flags(7)],
    SYS_linkat: [DirFd, PathW, DirFd, PathW, Flags(AT_FLAGS)],
    SYS_symlinkat: [PathR, DirFd, PathW],
    SYS_readlinkat: [DirFd, PathR, Ptr, Len],
    SYS_fchmodat: [DirFd, PathW, Flags(0o7777), Flags(AT_FLAGS)],
    SYS_faccessat: [DirFd, PathR, Small],
    SYS_faccessat2: [DirFd, PathR, Small, Flags(AT_FLAGS)],
    SYS_pselect6: [Pick(&[0, 1, 8, 64, 1024, 1025]), Ptr, Ptr, Ptr, Time, Ptr],
    SYS_ppoll: [Ptr, Count, Time, SafeMask, Pick(&[8, 0, 16])],
    SYS_set_robust_list: [Ptr, Pick(&[24, 0, 25])],
    SYS_get_robust_list: [Pid, Ptr, Ptr],
    SYS_utimensat: [DirFd, PathW, Ptr, Flags(AT_FLAGS)],
    SYS_dup3: [Fd, NewFd, Flags(0o2000000)],
    SYS_pipe2: [Ptr, Flags(O_ALL)],
    SYS_prlimit64: [Pid, Small, BadPtr, Ptr],
    SYS_syncfs: [Fd],
    SYS_getcpu: [Ptr, Ptr, Ptr],
    SYS_getrandom: [Ptr, Len, Flags(7)],
    SYS_statx: [DirFd, PathR, Flags(AT_FLAGS | 0x6000), Flags(0xfff), Ptr],
    SYS_io_uring_setup: [Count, Ptr],
    SYS_io_uring_enter: [Fd, Count, Count, Flags(0x1f), SafeMask, Pick(&[8, 0, 16])],
    SYS_io_uring_register: [Fd, Small, Ptr, Count],
    // Numbers the kernel does not implement (ENOSYS, never a crash).
    SYS_mremap: [Addr, Len, Len, Flags(7), Addr],
    SYS_socket: [Small, Small, Small],
    SYS_epoll_create1: [Flags(0o2000000)],
}

/// A number no kernel implements, for the ENOSYS path (also negative).
pub const BOGUS_NRS: &[i64] = &[-1, 600, 512, 1000, 1 << 20, i64::MIN];
