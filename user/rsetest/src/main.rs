//! `rsetest NAME [ARGS]`: behaviour checks for the Linux ABI of RSE OS.
//!
//! Each subcommand checks one behaviour, prints one line per check
//! (`ok: …` / `not ok: …`) and ends with `PASS NAME` (exit 0) or
//! `FAIL NAME: why` (exit 1). The same binary passes on Linux, which is
//! how the checks themselves are validated.
//!
//! Note for the kernel: Rust's runtime, before main, polls fds 0-2
//! (poll(2) failing with anything but EINTR/EINVAL/EAGAIN/ENOMEM aborts
//! the program), reads /proc/self/maps (failure is tolerated), and
//! installs SIGSEGV/SIGBUS handlers on a sigaltstack.

mod affinity_swap;
mod avx;
mod bad_iret;
mod bad_rip;
mod big_segments;
mod children;
mod clockmove;
mod cluster_bench;
mod create_race;
mod creds;
mod cwd;
mod dev_fd;
mod disk_parallel;
mod efault;
mod enosys;
mod epoll;
mod epoll_quiet;
mod eventfd;
mod fork_cow;
mod futex_bounds;
mod futex_ops;
mod gs_base;
mod heap_after_hog;
mod inet;
mod inet_backlog;
mod inet_badinput;
mod inet_churn;
mod inet_lo;
mod inet_opts;
mod io_uring;
mod leaf;
mod linux_compat;
mod madvise;
mod map_fixed;
mod memhog;
mod migrate;
mod mmap_big;
mod mremap;
mod netlink;
mod orphan_reap;
mod page_cache;
mod pipe_100m;
mod poll_eintr;
mod poll_timeout;
mod populate_hog;
mod probe_race;
mod record_locks;
mod rlimits;
mod sched;
mod sched_threads;
mod scm_rights;
mod segv;
mod sendfile;
mod settid_shootdown;
mod shared_file;
mod shared_mprotect;
mod shared_vm;
mod sigaltstack;
mod signalfd;
mod signals;
mod sigwait;
mod sock;
mod thread_limit;
mod threads;
mod ticker;
mod timerfd;
mod timers;
mod tmpfs_full;
mod udp_flood;
mod udp_ping;
mod unix_dgram;
mod unix_stream;
mod util;
mod vdso;
mod vm_exit_leak;
mod vm_util;
mod vma_limit;
mod wait_bounds;
mod wallclock;
mod writeback;
mod x87;
mod xattr;
mod xmm;

type Test = fn(&[String]) -> Result<(), String>;

/// Every subcommand with a one-line description.
const TESTS: &[(&str, Test, &str)] = &[
    ("alive", alive, "prints \"alive\""),
    (
        "creds",
        creds::run,
        "credentials: set*id rules, file permissions for a non-root user, set-user-ID exec, no_new_privs",
    ),
    (
        "fork_cow",
        fork_cow::run,
        "fork gives copy-on-write memory: neither side sees the other's writes",
    ),
    (
        "efault",
        efault::run,
        "bad pointers in syscalls give EFAULT, not a crash",
    ),
    (
        "enosys",
        enosys::run,
        "syscall 1000 (and other unknown numbers) give ENOSYS; the process goes on",
    ),
    (
        "segv",
        segv::run,
        "a null dereference kills the child with SIGSEGV, seen by waitpid",
    ),
    (
        "mmap_big",
        mmap_big::run,
        "mmap 256 MiB, touch every page, verify, munmap",
    ),
    (
        "children",
        children::run,
        "200 concurrent children exit with distinct codes, all reaped",
    ),
    (
        "pipe_100m",
        pipe_100m::run,
        "100 MiB through a pipe between two processes, intact",
    ),
    (
        "memhog",
        memhog::run,
        "a memory hog gets ENOMEM or is killed; the parent can allocate after. [MiB]: RLIMIT_AS for the hog",
    ),
    (
        "populate_hog",
        populate_hog::run,
        "mmaps filled at once (MAP_SHARED anon, MAP_POPULATE) larger than RAM get ENOMEM without starving a bystander",
    ),
    (
        "leaf",
        leaf::run,
        "getpid/gettid/getppid on the kernel's light path: registers, answers in threads and after reparenting, signals meanwhile",
    ),
    (
        "xmm",
        xmm::run,
        "XMM0-15 survive syscalls, yields, preemption, signal handlers and fork",
    ),
    (
        "x87",
        x87::run,
        "the x87 control word, stack and MXCSR survive syscalls, yields, signal handlers and fork",
    ),
    (
        "signals",
        signals::run,
        "sigaction, sigprocmask, SIGCHLD, kill, EINTR, SIGPIPE",
    ),
    (
        "io_uring",
        io_uring::run,
        "io_uring: mmap'd rings, NOP/READ/WRITE/READV/WRITEV/OPENAT/CLOSE/FSYNC/POLL_ADD/TIMEOUT, full SQ/CQ, SQPOLL, EFAULT",
    ),
    (
        "poll_eintr",
        poll_eintr::run,
        "a signal ends a poll of 900 descriptors at once while other CPUs keep waking the pollers' queue",
    ),
    (
        "poll_timeout",
        poll_timeout::run,
        "poll/select/ppoll time out on time and wake when data arrives; concurrent pollers at their own timeouts",
    ),
    (
        "shared_vm",
        shared_vm::run,
        "clone(CLONE_VM) children on another CPU see mmap/mprotect/munmap at once (TLB shootdown)",
    ),
    (
        "affinity_swap",
        affinity_swap::run,
        "two processes moving themselves to each other's CPU, and a sleeper woken onto another CPU each time: no hang",
    ),
    (
        "threads",
        threads::run,
        "threads (std::thread, pthreads): parallel sum, Condvar ping-pong, mpsc, getpid/gettid, SYS_exit vs process::exit, waiting for a threaded child, kill/tgkill",
    ),
    (
        "settid_shootdown",
        settid_shootdown::run,
        "CLONE_VM children write CLONE_CHILD_SETTID into an untouched page during the parent's TLB shootdowns",
    ),
    (
        "futex_bounds",
        futex_bounds::run,
        "3M non-sleeping FUTEX_WAITs hold no memory; FUTEX_WAKE counts; private futexes per address space; timeouts. [N]: calls",
    ),
    (
        "sigaltstack",
        sigaltstack::run,
        "sigaltstack/SA_ONSTACK: handlers on the alternate stack, a stack overflow handled, EPERM/ENOMEM/EINVAL, SS_AUTODISARM",
    ),
    (
        "sigwait",
        sigwait::run,
        "rt_sigtimedwait: takes a pending signal with its siginfo, EAGAIN on timeout, wakes on a later signal, finds the waiting thread",
    ),
    (
        "sendfile",
        sendfile::run,
        "sendfile into a non-blocking socket that takes part of a chunk: the offset moves by what was sent, nothing lost; into a pipe",
    ),
    (
        "wallclock",
        wallclock::run,
        "CLOCK_REALTIME is a date (RTC) and agrees with gettimeofday, time, file mtimes; absolute REALTIME sleeps, timerfds and futex waits",
    ),
    (
        "timers",
        timers::run,
        "alarm, setitimer/getitimer, POSIX timers (SIGEV_SIGNAL/THREAD_ID/NONE, si_value, overruns, gettime, delete)",
    ),
    (
        "rlimits",
        rlimits::run,
        "resource limits read back, inherited, set on another process, enforced: NOFILE, FSIZE (SIGXFSZ), AS, DATA",
    ),
    (
        "vdso",
        vdso::run,
        "the vDSO (AT_SYSINFO_EHDR): clock_gettime/gettimeofday/time/getcpu agree with the syscalls on every CPU",
    ),
    (
        "futex_ops",
        futex_ops::run,
        "FUTEX_CMP_REQUEUE/REQUEUE, FUTEX_WAKE_OP, robust mutexes (EOWNERDEAD across threads and processes), garbage robust lists",
    ),
    (
        "thread_limit",
        thread_limit::run,
        "10,000 threads in one process: created or EAGAIN at the limit, all joined, kernel memory back",
    ),
    (
        "bad_iret",
        bad_iret::run,
        "CS/SS from rt_sigreturn that iretq refuses: SIGSEGV the program can handle, kernel lives; Linux's selectors",
    ),
    (
        "bad_rip",
        bad_rip::run,
        "non-canonical RIP from rt_sigreturn, a handler address or an ELF entry: SIGSEGV, kernel lives",
    ),
    (
        "epoll_quiet",
        epoll_quiet::run,
        "an epoll sleeper on a pipe and an eventfd is not woken by other pipes' and eventfds' traffic",
    ),
    (
        "heap_after_hog",
        heap_after_hog::run,
        "a hog takes the free frames, then the kernel heap grows: the hog is OOM-killed first",
    ),
    (
        "vma_limit",
        vma_limit::run,
        "a process's mappings are bounded (65,530, as Linux): splitting a reservation ends in ENOMEM",
    ),
    (
        "maps_held",
        vma_limit::held,
        "[MAPPINGS]: /proc/self/maps of a process with many mappings, opened again and again and kept open, ends in ENOMEM on a small kernel heap (not a panic) and opens again once closed",
    ),
    (
        "vm_exit_leak",
        vm_exit_leak::run,
        "two CLONE_VM sharers exiting together, 600 times: the address spaces are freed",
    ),
    (
        "gs_base",
        gs_base::run,
        "the user GS base is per process: switches, migrations, another process on the CPU, fork, execve",
    ),
    (
        "shared_mprotect",
        shared_mprotect::run,
        "a MAP_SHARED page made writable again by mprotect after fork stays shared",
    ),
    (
        "wait_bounds",
        wait_bounds::run,
        "45,000 waits (nanosleep, poll, pipe read) ended by signals: the kernel keeps nothing per interruption. [N]",
    ),
    (
        "probe_race",
        probe_race::run,
        "a read's check of its buffer never undoes a CLONE_VM sharer's concurrent writes",
    ),
    (
        "avx",
        avx::run,
        "AVX is enabled when CPUID has it; YMM state survives syscalls, switches and signals",
    ),
    (
        "xattr",
        xattr::run,
        "extended attributes: stored, or EOPNOTSUPP everywhere; ENOENT/EBADF/EFAULT as Linux",
    ),
    (
        "dev_fd",
        dev_fd::run,
        "/proc/self/fd and /dev/fd: listed descriptors, symlinks that reopen pipes and files",
    ),
    (
        "page_cache",
        page_cache::run,
        "[DIR [MIB [CAP_KB]]] re-reads after close come from a cache that stays coherent with write, truncate, mmap, other processes, unlink and rename-over (inode numbers reused), and after a MIB file pressured it (Cached grows at most CAP_KB); memory it holds is given back to a process that needs it",
    ),
    (
        "writeback",
        writeback::run,
        "[DIR [LIMIT_KB]] overwrites stay in dirty pages (within LIMIT_KB when given) (Dirty grows, few disk writes), seen by other processes' read/mmap/stat, truncate and unlink; fsync writes them back",
    ),
    (
        "writeback_dirty",
        writeback::dirty,
        "FILE SEED: FILE (256 KiB) written durably, then overwritten with SEED's bytes and left dirty (no fsync), for the host to find on the disk",
    ),
    (
        "datasync",
        writeback::datasync,
        "FILE SEED [append|odsync|rwf_dsync]: FILE overwritten in place with SEED's bytes (or 3000 of them appended) and fdatasync'd (or written through O_DSYNC, or by io_uring with RWF_DSYNC), for the host to find on the disk after a power cut",
    ),
    (
        "shared_file",
        shared_file::run,
        "[DIR] MAP_SHARED file mappings are coherent with read/write, other mappings and munmap; msync; a child's stores reach the file at its exit; in DIR (default /tmp)",
    ),
    (
        "disk_parallel",
        disk_parallel::run,
        "DEV [DIR] processes read and write their own regions of DEV (a disk or a file of 2 MiB) and their own files in DIR at once, whole, page by page and unaligned; every byte checked",
    ),
    (
        "netlink",
        netlink::run,
        "AF_NETLINK NETLINK_ROUTE: link and address dumps, MSG_PEEK|MSG_TRUNC, EAGAIN, bad requests and pointers",
    ),
    (
        "create_race",
        create_race::run,
        "[DIR] open(O_CREAT) of a name other processes create at the same moment opens it (no EEXIST); umask applies to files and directories; in DIR (default /tmp)",
    ),
    (
        "orphan_reap",
        orphan_reap::run,
        "[ROUNDS] orphans exiting with their parent are reaped by init (each round checked)",
    ),
    (
        "tmpfs_full",
        tmpfs_full::run,
        "fill /tmp with a file, then 4000-byte symlinks, to ENOSPC; list, stat, remove, write again. [DIR [MiB]]",
    ),
    (
        "linux_compat",
        linux_compat::run,
        "small Linux-visible behaviours: SA_RESTART, pause, wait status, exception signals, errno order",
    ),
    (
        "unix_stream",
        unix_stream::run,
        "AF_UNIX stream/seqpacket: socketpair, path and abstract names, errors, backlog, non-blocking, PEEK/WAITALL, shutdown, EPIPE/SIGPIPE, options, /proc/net/unix, bad pointers, [N] socketpairs leave the heap as it was",
    ),
    (
        "unix_dgram",
        unix_dgram::run,
        "AF_UNIX datagrams: names, boundaries, MSG_TRUNC, bounded queue, EMSGSIZE, connect/EPERM/ECONNREFUSED, autobind",
    ),
    (
        "migrate",
        migrate::run,
        "FILE [MACHINE]: numbered lines of FILE then stdin with a checksum; with MACHINE, moves to it (/proc/braid) and back mid-run",
    ),
    (
        "clockmove",
        clockmove::run,
        "MACHINE: CLOCK_MONOTONIC (vDSO and syscall) only moves forward across a move to MACHINE and back",
    ),
    (
        "cluster_work",
        cluster_bench::work,
        "UNITS [MACHINE]: fixed computation, no system call (moved to MACHINE first)",
    ),
    (
        "cluster_ballast",
        cluster_bench::ballast,
        "MIB MACHINE: touches MIB MiB, then moves to MACHINE",
    ),
    (
        "cluster_calls",
        cluster_bench::calls,
        "N [MACHINE]: N getuid calls (served at home when moved to MACHINE), timed",
    ),
    (
        "ticker",
        ticker::run,
        "ID LINES [MACHINE]: `tick ID I SUM` every 100 ms with a running checksum; with MACHINE, moves there after line 2",
    ),
    (
        "udp_flood",
        udp_flood::run,
        "HOST PORT COUNT [SIZE]: COUNT datagrams of garbage to HOST:PORT, as fast as it can",
    ),
    (
        "udp_ping",
        udp_ping::run,
        "UDP echo: [serve PORT | HOST PORT [COUNT]]; alone, pings its own server on 127.0.0.1 (host only: no loopback on RSE OS yet)",
    ),
    (
        "inet",
        inet::run,
        "AF_INET without a peer: bind/ephemeral ports/EADDRINUSE, names, listen, options, EFAULT, refused connects (blocking and EINPROGRESS/SO_ERROR), UDP sendto, over the loopback",
    ),
    (
        "inet_lo",
        inet_lo::run,
        "AF_INET over the loopback: TCP names, 1 MiB each way, PEEK/FIONREAD, EPIPE/SIGPIPE/MSG_NOSIGNAL after SHUT_WR, 0.0.0.0 as 127.0.0.1, refused, UDP sendto/recvfrom/connect/truncation",
    ),
    (
        "big_segments",
        big_segments::run,
        "bulk TCP over the loopback with large writes and reads: 8 MiB each way at once (127.0.0.1, and eth0's own address if it has one), every byte checked; lo's segments larger than an Ethernet MSS; non-blocking short writes, EAGAIN, POLLOUT off while full and back after a drain",
    ),
    (
        "inet_backlog",
        inet_backlog::run,
        "a listener under more connections than it accepted: 12 connects before any accept all complete (none refused); at the AF_INET socket cap (RSE OS) the listener's backlog used up, and once sockets are freed it takes connections again",
    ),
    (
        "inet_churn",
        inet_churn::run,
        "[N] loopback TCP connections opened and closed (default 1000): /proc/net/tcp shows the open pair and the listener with their inodes, and afterwards nothing for the port but TIME-WAIT; descriptors back to where they were",
    ),
    (
        "inet_opts",
        inet_opts::run,
        "AF_INET options and ioctls on the loopback: SO_RCVTIMEO (recv, accept), SO_SNDTIMEO, EDOM, SO_ERROR after a refused non-blocking connect, SIOCGIFCONF/FLAGS/ADDR/NETMASK/HWADDR/MTU/INDEX/NAME on lo, ENODEV",
    ),
    (
        "inet_badinput",
        inet_badinput::run,
        "bad pointers and lengths in every socket call (AF_INET, loopback): EFAULT, EINVAL, EBADF, ENOTSOCK, EMSGSIZE; data survives a receive into a bad buffer",
    ),
    (
        "scm_rights",
        scm_rights::run,
        "SCM_RIGHTS (shared open files, CLOEXEC, MSG_CTRUNC, PEEK), SCM_CREDENTIALS, a chain of 3000 sockets in flight released",
    ),
    (
        "epoll",
        epoll::run,
        "epoll over pipes, sockets, eventfd, epoll: LT, ET, ONESHOT, RDHUP, MOD/DEL, timeouts, wake-ups, EINTR, pwait2, ELOOP",
    ),
    (
        "eventfd",
        eventfd::run,
        "eventfd: counter, EFD_SEMAPHORE, EFD_NONBLOCK, overflow, blocking read woken by a writer, EINVAL/EFAULT",
    ),
    (
        "signalfd",
        signalfd::run,
        "signalfd: SIGUSR1/SIGCHLD records (signo, pid, uid, code, status), EAGAIN, blocking read, poll/epoll readiness, mask update, EINVAL/EFAULT/EBADF",
    ),
    (
        "timerfd",
        timerfd::run,
        "timerfd: one-shot and periodic expirations, blocking read, gettime, disarm, epoll wake-up, EINVAL/EFAULT",
    ),
    (
        "sched_args",
        sched::args,
        "bad scheduling syscall arguments get EINVAL/ESRCH, as Linux",
    ),
    (
        "sched_fair",
        sched::fair,
        "(3 CPUs, 6 s) nice 0 and nice 5 pinned to one CPU share it 1024:335",
    ),
    (
        "sched_rt",
        sched::rt,
        "(3 CPUs) SCHED_FIFO preempts fair work; SCHED_RR alternates every 100 ms",
    ),
    (
        "sched_balance",
        sched::balance,
        "(3 CPUs) 6 busy processes spread 2/2/2 within 1 s. [tori]: over 3 tori on 1 CPU (tori=3)",
    ),
    (
        "sched_mixed",
        sched::mixed,
        "(3 CPUs) 12 busy processes of mixed nice values: per-CPU load within 20%",
    ),
    (
        "sched_migrate",
        sched::migrate,
        "(3 CPUs) a 64 MiB checksum is right across many migrations",
    ),
    (
        "sched_fail",
        sched::fail,
        "(3 CPUs) `fail B` under load: detected, every process finishes once and right; `revive B` rebalances. [tori]: 3 tori on 1 CPU",
    ),
    (
        "sched_stall",
        sched::stall,
        "(3 CPUs) 9 busy processes; `stall B` 60 ms: suspected, refuted, not failed; 400 ms: failed and adopted while alive, rejoins; every process runs once and right. [tori]: 3 tori on 1 CPU",
    ),
    (
        "sched_threads",
        sched_threads::run,
        "(3 CPUs) 4 busy threads of one process run on every CPU (/proc/self/task/*/stat); `fail B` meanwhile loses none, results right",
    ),
    (
        "cwd",
        cwd::run,
        "[DIR] chdir/fchdir/getcwd in nested directories of DIR (default /tmp), openat from a dirfd, `..` and relative paths out of its file system, a removed cwd",
    ),
    (
        "record_locks",
        record_locks::run,
        "[DIR] fcntl record locks between processes (ranges, split/merge, whence, close/exit release, F_SETLKW wake and EINTR, EDEADLK), OFD locks, flock, ENOLCK bound; on a file in DIR (default /tmp)",
    ),
    (
        "mremap",
        mremap::run,
        "mremap: grow in place, shrink, MAYMOVE with contents, FIXED over a mapping, DONTUNMAP, file and shared mappings, errors",
    ),
    (
        "madvise",
        madvise::run,
        "madvise: DONTNEED zeroes private pages (files re-read, shared kept), FREE, hints, DONTFORK/WIPEONFORK, POPULATE, errors",
    ),
    (
        "map_fixed",
        map_fixed::run,
        "MAP_FIXED replaces (and splits) existing mappings; MAP_FIXED_NOREPLACE gives EEXIST over any",
    ),
];

fn alive(_: &[String]) -> Result<(), String> {
    say!("alive");
    Ok(())
}

fn usage() -> ! {
    let mut s = String::from("usage: rsetest NAME [ARGS]\n");
    for (name, _, what) in TESTS {
        s.push_str(&format!("  {name:<10} {what}\n"));
    }
    util::write_all(2, s.as_bytes());
    util::child_exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else { usage() };
    // Helper for `rlimits`: uses N KiB of stack, then exits 0.
    if name == "stack_eat" {
        let kib = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
        // Rust's own overflow handler would turn SIGSEGV into an abort.
        // SAFETY: resetting a signal disposition.
        unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
        std::hint::black_box(rlimits::eat_stack(kib));
        util::child_exit(0);
    }
    // Helper for `creds`: prints the ids a set-user-ID exec gave.
    if name == "creds_probe" {
        creds::probe();
    }
    if name == "list" {
        for (n, _, _) in TESTS {
            say!("{n}");
        }
        return;
    }
    let Some(&(name, test, _)) = TESTS.iter().find(|(n, _, _)| n == name) else {
        usage()
    };
    // A panic is a failure of this test, reported like the others (the
    // profile aborts on panic, so exit here before the abort).
    std::panic::set_hook(Box::new(move |info| {
        say!("FAIL {name}: panic: {info}");
        util::child_exit(1);
    }));
    match test(&args[1..]) {
        Ok(()) => {
            say!("PASS {name}");
            util::child_exit(0);
        }
        Err(why) => {
            say!("FAIL {name}: {why}");
            util::child_exit(1);
        }
    }
}
