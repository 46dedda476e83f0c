//! A minimal /proc: the files ps, top and free read, generated at open.

use abi::{Errno, KResult};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::file::Kind;
use crate::proc::{self, Process};

const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;

/// /proc/PID/stat (`whole`: the process, with its threads' times summed)
/// or /proc/PID/task/TID/stat (that thread).
fn pid_stat(p: &Arc<Process>, whole: bool) -> String {
    let info = p.info.lock().clone();
    let (ppid, pgid, sid) = {
        let r = p.rel.lock();
        (r.ppid, r.pgid, r.sid)
    };
    let state = match p.run_state() {
        proc::RunState::Running | proc::RunState::Runnable => 'R',
        proc::RunState::Sleeping | proc::RunState::Blocking => 'S',
        proc::RunState::Zombie => 'Z',
    };
    let ticks_of = |t: &Process| t.ticks.load(core::sync::atomic::Ordering::Relaxed);
    let ticks = if whole {
        let others: u64 = p
            .group
            .snapshot()
            .iter()
            .filter(|t| !Arc::ptr_eq(t, p))
            .map(|t| ticks_of(t))
            .sum();
        ticks_of(p) + others
    } else {
        ticks_of(p)
    } / 10; // 1000 Hz → USER_HZ 100
    let threads = p
        .group
        .live
        .load(core::sync::atomic::Ordering::Relaxed)
        .max(1);
    let start = info.start_ns / 10_000_000;
    let (vsize, rss) =
        p.mm.lock()
            .as_ref()
            .map(|m| {
                let m = m.lock();
                (m.mapped(), m.mapped() / 4096)
            })
            .unwrap_or((0, 0));
    let params = p.params();
    // proc(5)'s priority: -1 - rt_priority for RT, 20 + nice otherwise.
    let prio = if params.policy.is_rt() {
        -1 - params.rt_prio_clamped() as i64
    } else {
        20 + params.nice_clamped() as i64
    };
    // Fields as proc(5) lists them; "processor" (39) is the CPU of the
    // torus it runs or waits on, then rt_priority and policy.
    format!(
        "{} ({}) {} {} {} {} 0 -1 0 0 0 0 0 {} 0 0 0 {} {} {} 0 {} {} {} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 {} {} {} 0 0 0\n",
        p.pid,
        info.comm,
        state,
        ppid,
        pgid,
        sid,
        ticks,
        prio,
        params.nice_clamped(),
        threads,
        start,
        vsize,
        rss,
        proc::torus::host(p.torus()),
        params.rt_prio_clamped(),
        params.policy.to_linux()
    )
}

/// /proc/PID/maps in Linux's format: a line per mapping with its rights
/// (p private, s shared), the offset into its file, device 00:00, the
/// inode, and `[heap]`/`[stack]` where Linux names them. A file's path
/// is not kept with its mapping (its inode number is), so file mappings
/// show no path. At most `mm::vma::MAX_MAP_COUNT` lines.
fn pid_maps(p: &Process) -> KResult<String> {
    use core::fmt::Write;
    use mm::vma::{Prot, VmaKind};
    let Some(space) = p.mm.lock().clone() else {
        return Ok(String::new());
    };
    let m = space.lock();
    // Up to 65,530 lines of at most MAP_LINE bytes, held as long as the
    // file is open: taken only if the heap has room (a process with
    // many mappings opening the file again and again ran the heap out,
    // a panic), and reserved whole so the writes below never grow it.
    let want = m.vmas.len().saturating_mul(MAP_LINE);
    // An empty buffer is valid UTF-8: the String keeps its capacity.
    let mut out = String::from_utf8(crate::uaccess::kernel_vec(want)?).unwrap_or_default();
    for v in m.vmas.iter() {
        let bit = |r: Prot, c: char| if v.prot.contains(r) { c } else { '-' };
        let (off, ino) = v.backing.as_ref().map_or((0, 0), |(b, off)| (*off, b.ino));
        let start = out.len();
        let _ = write!(
            out,
            "{:08x}-{:08x} {}{}{}{} {off:08x} 00:00 {ino}",
            v.start,
            v.end,
            bit(Prot::READ, 'r'),
            bit(Prot::WRITE, 'w'),
            bit(Prot::EXEC, 'x'),
            if v.shared { 's' } else { 'p' },
        );
        let name = match v.kind {
            VmaKind::Heap => "[heap]",
            VmaKind::Stack => "[stack]",
            VmaKind::Anon | VmaKind::File => "",
        };
        if !name.is_empty() {
            // Linux pads the name to column 74.
            let used = out.len() - start;
            out.extend(core::iter::repeat_n(
                ' ',
                73usize.saturating_sub(used).max(1),
            ));
            out.push_str(name);
        }
        out.push('\n');
    }
    Ok(out)
}

/// A copy of `bytes` for an open file to hold (a command line: up to a
/// quarter of the stack limit), taken only if the heap has room: ENOMEM
/// otherwise, as for /proc/PID/maps.
fn held_copy(bytes: &[u8]) -> KResult<Vec<u8>> {
    let mut v = crate::uaccess::kernel_vec(bytes.len())?;
    v.extend_from_slice(bytes);
    Ok(v)
}

/// The longest /proc/PID/maps line: two 16-digit addresses, rights,
/// offset, device and a 10-digit inode, padded to column 73, a name.
const MAP_LINE: usize = 128;

/// /proc/PID/status in Linux's format (the lines programs parse: State,
/// Tgid, Pid, PPid, VmSize, VmRSS, Threads, the signal masks), plus the
/// torus lines of RSE OS.
fn pid_status(p: &Process) -> String {
    let i = p.info.lock().clone();
    let state = match p.run_state() {
        proc::RunState::Running | proc::RunState::Runnable => "R (running)",
        proc::RunState::Sleeping | proc::RunState::Blocking => "S (sleeping)",
        proc::RunState::Zombie => "Z (zombie)",
    };
    let (vsize, rss) =
        p.mm.lock()
            .as_ref()
            .map(|m| {
                let m = m.lock();
                (m.mapped(), m.mapped())
            })
            .unwrap_or((0, 0));
    let (pending, blocked, ignored, caught) = {
        let s = p.sig.lock();
        let (mut ign, mut cgt) = (0u64, 0u64);
        for sig in 1..=proc::signal::NSIG {
            match s.actions[sig as usize].handler {
                0 => {}
                1 => ign |= 1 << (sig - 1),
                _ => cgt |= 1 << (sig - 1),
            }
        }
        (s.pending, s.mask, ign, cgt)
    };
    let c = p.cred();
    // Linux: each group followed by a space.
    let groups: String = c.groups.iter().map(|g| format!("{g} ")).collect();
    format!(
        "Name:\t{}\nUmask:\t{:04o}\nState:\t{state}\nTgid:\t{}\nPid:\t{}\nPPid:\t{}\nTracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t64\nGroups:\t{}\nVmSize:\t{:8} kB\nVmRSS:\t{:8} kB\nThreads:\t{}\nSigPnd:\t{pending:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{blocked:016x}\nSigIgn:\t{ignored:016x}\nSigCgt:\t{caught:016x}\nCpus_allowed:\t{:x}\nvoluntary_ctxt_switches:\t{}\nnonvoluntary_ctxt_switches:\t{}\nTorus:\t{} (home {}, cell {:?})\n",
        i.comm,
        p.fs.lock().umask,
        p.tgid,
        p.pid,
        p.ppid(),
        c.ruid,
        c.euid,
        c.suid,
        c.fsuid,
        c.rgid,
        c.egid,
        c.sgid,
        c.fsgid,
        groups,
        vsize / 1024,
        rss / 1024,
        p.group.live.load(core::sync::atomic::Ordering::Relaxed),
        p.group.shared_sig.lock().pending,
        p.affinity(),
        p.switches.get().0,
        p.switches.get().1,
        p.torus(),
        i.torus,
        i.cell,
    )
}

fn meminfo() -> String {
    let (mut free, mut total) = (0usize, 0usize);
    for t in 0..crate::frames::torus_count() {
        let (f, tt) = crate::frames::stats(t);
        free += f;
        total += tt;
    }
    // tmpfs data is in those frames; Linux counts it as Shmem, within
    // Cached, and not as available (it cannot be dropped).
    let shmem_kb = super::with(|fs| fs.usage().bytes_used) / 1024;
    // The kernel heap holds kernel objects, as Linux's slab does; none of
    // it is reclaimable.
    let slab_kb = hal::heap::used() / 1024;
    // ext4's page cache is Cached too; not counted as available, though
    // most of it is given back before an allocation fails.
    let cached_kb = shmem_kb + super::ext4_pages::cached_kb() as u64;
    // Disk blocks the file systems keep (heap memory: within Slab too).
    let buffers_kb = crate::block::buffers_held() / 1024;
    format!(
        "MemTotal:       {:8} kB\nMemFree:        {:8} kB\nMemAvailable:   {:8} kB\nBuffers:        {:8} kB\nCached:         {:8} kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\nDirty:          {:8} kB\nShmem:          {:8} kB\nSlab:           {:8} kB\nSUnreclaim:     {:8} kB\n",
        total * 4,
        free * 4,
        free * 4,
        buffers_kb,
        cached_kb,
        super::ext4_pages::dirty_kb(),
        shmem_kb,
        slab_kb,
        slab_kb
    )
}

fn uptime() -> String {
    let ns = hal::time::now_ns();
    format!(
        "{}.{:02} 0.00\n",
        ns / 1_000_000_000,
        (ns / 10_000_000) % 100
    )
}

/// /proc/stat: per-CPU user/system/idle time from each CPU's own timer
/// ticks (USER_HZ 100: a tick is 1 ms).
fn stat() -> String {
    use core::sync::atomic::Ordering::Relaxed;
    let mut lines = String::new();
    let mut sum = [0u64; 3];
    for i in (0..proc::cpu::MAX_CPUS).filter(|&i| proc::cpu::is_online(i)) {
        let t = proc::cpu::get(i);
        let v = [
            t.user_ticks.load(Relaxed) / 10,
            t.system_ticks.load(Relaxed) / 10,
            t.idle_ticks.load(Relaxed) / 10,
        ];
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
        lines += &format!("cpu{i} {} 0 {} {} 0 0 0 0 0 0\n", v[0], v[1], v[2]);
    }
    format!(
        "cpu  {} 0 {} {} 0 0 0 0 0 0\n{lines}intr 0\nctxt 0\nbtime 0\nprocesses {}\nprocs_running {}\nprocs_blocked 0\n",
        sum[0],
        sum[1],
        sum[2],
        proc::count(),
        crate::proc::sched::runnable() + 1
    )
}

fn cpuinfo() -> String {
    let mhz = hal::time::tsc_hz() / 1_000_000;
    let mut s = String::new();
    for cpu in 0..hal::gdt::MAX_CPUS {
        if let Some(apic) = hal::smp::apic_id(cpu) {
            s.push_str(&format!(
                "processor\t: {cpu}\nvendor_id\t: RSE\nmodel name\t: QEMU virtual CPU (torus A)\napicid\t\t: {apic}\ncpu MHz\t\t: {mhz}\nflags\t\t: fpu sse sse2\n\n"
            ));
        }
    }
    s
}

/// Opens a path under /proc (given without the "/proc" prefix, e.g.
/// "/meminfo", "/self/stat", "" for the directory itself).
pub fn open(rest: &[u8]) -> KResult<Kind> {
    let s = core::str::from_utf8(rest)
        .ok()
        .ok_or(Errno::ENOENT)?
        .trim_end_matches('/');
    let me = proc::sched::current();
    let mut parts = s.split('/').filter(|x| !x.is_empty());
    let first = parts.next();
    let second = parts.next();
    if let (Some(pid), Some("task")) = (first, second) {
        let p = process(&me, pid).ok_or(Errno::ENOENT)?;
        return task(&p, parts.next(), parts.next(), parts.next());
    }
    if parts.next().is_some() {
        return Err(Errno::ENOENT);
    }
    let text = match (first, second) {
        (None, _) => {
            let mut entries: Vec<(u64, u8, Vec<u8>)> = Vec::new();
            for n in [
                "meminfo",
                "uptime",
                "stat",
                "cpuinfo",
                "loadavg",
                "braid",
                "mounts",
                "filesystems",
                "kobjects",
                "diskstats",
            ] {
                entries.push((2, DT_REG, n.as_bytes().to_vec()));
            }
            entries.push((4, DT_DIR, b"net".to_vec()));
            entries.push((3, DT_LNK, b"self".to_vec()));
            // Threads are reachable by id but listed only under task/.
            for p in proc::all().into_iter().filter(|p| p.is_leader()) {
                entries.push((
                    1000 + p.pid as u64,
                    DT_DIR,
                    format!("{}", p.pid).into_bytes(),
                ));
            }
            return Ok(Kind::ProcDir(entries));
        }
        (Some("net"), None) => {
            let entries = crate::net::procfs::FILES
                .iter()
                .chain(core::iter::once(&"unix"))
                .map(|n| (2, DT_REG, n.as_bytes().to_vec()))
                .collect();
            return Ok(Kind::ProcDir(entries));
        }
        (Some("net"), Some("unix")) => crate::net::unix::procfs::net_unix(),
        (Some("net"), Some(f)) => crate::net::procfs::file(f).ok_or(Errno::ENOENT)?,
        (Some("meminfo"), None) => meminfo(),
        (Some("mounts"), None) => super::mount::proc_mounts(),
        (Some("filesystems"), None) => super::mount::proc_filesystems(),
        (Some("uptime"), None) => uptime(),
        (Some("stat"), None) => stat(),
        (Some("cpuinfo"), None) => cpuinfo(),
        (Some("kobjects"), None) => crate::objects::procfs(),
        (Some("diskstats"), None) => crate::block::proc_diskstats(),
        (Some("braid"), None) => {
            return Ok(Kind::ProcControl(
                (proc::braid::report() + &crate::cluster::report()).into_bytes(),
                super::file::Control::Braid,
            ))
        }
        (Some("loadavg"), None) => format!(
            "0.00 0.00 0.00 {}/{} {}\n",
            proc::sched::runnable() + 1,
            proc::count(),
            proc::count()
        ),
        (Some(pid), file) => {
            let p = process(&me, pid).ok_or(Errno::ENOENT)?;
            return pid_file(&p, file, true);
        }
    };
    Ok(Kind::Proc(text.into_bytes()))
}

/// The process a /proc directory names: "self" or a pid. A thread's id
/// names its process's directory too (as on Linux, though unlisted), with
/// that thread's own files.
fn process(me: &Arc<Process>, pid: &str) -> Option<Arc<Process>> {
    if pid == "self" {
        Some(me.leader())
    } else {
        proc::lookup(pid.parse().ok()?)
    }
}

/// Files of a process directory (`whole`) or of a task directory.
fn pid_file(p: &Arc<Process>, file: Option<&str>, whole: bool) -> KResult<Kind> {
    let text = match file {
        None => {
            let mut entries: Vec<(u64, u8, Vec<u8>)> = [
                "stat",
                "cmdline",
                "status",
                "maps",
                "comm",
                "oom_score",
                "oom_score_adj",
            ]
            .iter()
            .map(|n| (2, DT_REG, n.as_bytes().to_vec()))
            .collect();
            entries.push((2, DT_LNK, b"exe".to_vec()));
            entries.push((3, DT_DIR, b"fd".to_vec()));
            if whole {
                entries.push((3, DT_DIR, b"task".to_vec()));
            }
            return Ok(Kind::ProcDir(entries));
        }
        Some("fd") => {
            let entries = p
                .files()
                .lock()
                .fds()
                .into_iter()
                .map(|fd| (0x100 + fd as u64, DT_LNK, format!("{fd}").into_bytes()))
                .collect();
            return Ok(Kind::ProcDir(entries));
        }
        Some("stat") => pid_stat(p, whole),
        Some("cmdline") => return held_copy(&p.info.lock().cmdline).map(Kind::Proc),
        Some("mounts") => super::mount::proc_mounts(),
        Some("comm") => format!("{}\n", p.info.lock().comm),
        Some("status") => pid_status(p),
        Some("maps") => pid_maps(p)?,
        Some("oom_score") => format!("{}\n", proc::oom::score(&p.leader())),
        Some("oom_score_adj") => {
            return Ok(Kind::ProcControl(
                format!(
                    "{}\n",
                    p.group
                        .oom_score_adj
                        .load(core::sync::atomic::Ordering::Relaxed)
                )
                .into_bytes(),
                super::file::Control::OomScoreAdj(p.tgid),
            ))
        }
        _ => return Err(Errno::ENOENT),
    };
    Ok(Kind::Proc(text.into_bytes()))
}

/// The threads of `p`'s process, leader first.
fn threads(p: &Arc<Process>) -> Vec<Arc<Process>> {
    let leader = p.leader();
    let mut all: Vec<Arc<Process>> = p
        .group
        .snapshot()
        .into_iter()
        .filter(|t| !t.is_zombie() || Arc::ptr_eq(t, &leader))
        .collect();
    if !all.iter().any(|t| Arc::ptr_eq(t, &leader)) {
        all.insert(0, leader);
    }
    all.sort_by_key(|t| t.pid);
    all
}

/// /proc/PID/task (one directory per thread) and /proc/PID/task/TID/FILE.
fn task(
    p: &Arc<Process>,
    tid: Option<&str>,
    file: Option<&str>,
    more: Option<&str>,
) -> KResult<Kind> {
    if more.is_some() {
        return Err(Errno::ENOENT);
    }
    let threads = threads(p);
    let Some(tid) = tid else {
        let entries = threads
            .iter()
            .map(|t| {
                (
                    1000 + t.pid as u64,
                    DT_DIR,
                    format!("{}", t.pid).into_bytes(),
                )
            })
            .collect();
        return Ok(Kind::ProcDir(entries));
    };
    let tid: u32 = tid.parse().ok().ok_or(Errno::ENOENT)?;
    let t = threads
        .into_iter()
        .find(|t| t.pid == tid)
        .ok_or(Errno::ENOENT)?;
    pid_file(&t, file, false)
}

/// Whether `rest` (path below /proc) names a directory.
pub fn is_dir(rest: &[u8]) -> bool {
    let s = core::str::from_utf8(rest).unwrap_or("").trim_matches('/');
    let parts: Vec<&str> = s.split('/').collect();
    let pid_like = |x: &str| x == "self" || x.parse::<u32>().is_ok();
    match parts.as_slice() {
        [""] | ["net"] => true,
        [pid] => pid_like(pid),
        [pid, "task"] => pid_like(pid),
        [pid, "task", tid] => pid_like(pid) && tid.parse::<u32>().is_ok(),
        [pid, "fd"] => process(&proc::sched::current(), pid).is_some(),
        _ => false,
    }
}

/// `/proc/PID/fd/N` (and `/dev/fd/N`, a link to it): a symlink to what
/// descriptor N of PID has open. That open file, if `rest` names one.
pub fn fd_link(rest: &[u8]) -> Option<alloc::sync::Arc<super::file::OpenFile>> {
    let s = core::str::from_utf8(rest).ok()?.trim_end_matches('/');
    let mut parts = s.split('/').filter(|x| !x.is_empty());
    let (pid, fd, n) = (parts.next()?, parts.next()?, parts.next()?);
    if fd != "fd" || parts.next().is_some() {
        return None;
    }
    let n: i32 = n.parse().ok()?;
    process(&proc::sched::current(), pid)?
        .files()
        .lock()
        .get(n)
        .ok()
}

/// What readlink(2) of an fd link says: the path for directories, Linux's
/// `pipe:[N]` for pipes, device paths, `anon_inode:[io_uring]`. A regular
/// file's name is not kept by its open file: it reads `/inode:[INO]`
/// (Linux gives the path).
pub fn fd_link_target(f: &super::file::OpenFile) -> Vec<u8> {
    let pipe = |p: &alloc::sync::Arc<super::pipe::Pipe>| {
        format!(
            "pipe:[{}]",
            alloc::sync::Arc::as_ptr(p) as usize as u64 & 0xffff_ffff
        )
    };
    match &f.kind {
        Kind::Inode(ino) => super::with(|fs| fs.path_of(*ino))
            .unwrap_or_else(|_| format!("/inode:[{ino}]").into_bytes()),
        Kind::PipeRead(p) | Kind::PipeWrite(p) => pipe(p).into_bytes(),
        Kind::Tty => b"/dev/console".to_vec(),
        Kind::Null => b"/dev/null".to_vec(),
        Kind::Zero => b"/dev/zero".to_vec(),
        Kind::Random => b"/dev/urandom".to_vec(),
        Kind::Block(d) => format!("/dev/{}", d.name).into_bytes(),
        Kind::Ext(m, ino) => {
            let mut p = m.target.clone();
            p.extend_from_slice(format!("/inode:[{ino}]").as_bytes());
            p
        }
        Kind::Proc(_) | Kind::ProcControl(..) | Kind::ProcDir(_) => b"/proc".to_vec(),
        Kind::IoUring(_) => b"anon_inode:[io_uring]".to_vec(),
        Kind::Socket(sk) => format!(
            "socket:[{}]",
            alloc::sync::Arc::as_ptr(sk) as *const u8 as usize as u64 & 0xffff_ffff
        )
        .into_bytes(),
        Kind::EventFd(_) => b"anon_inode:[eventfd]".to_vec(),
        Kind::Epoll(_) => b"anon_inode:[eventpoll]".to_vec(),
        Kind::TimerFd(_) => b"anon_inode:[timerfd]".to_vec(),
        Kind::SignalFd(_) => b"anon_inode:[signalfd]".to_vec(),
    }
}

/// A write to /proc/PID/oom_score_adj: a decimal in -1000..=1000 (EINVAL
/// otherwise), as Linux (everyone is root here, so lowering is allowed).
pub fn set_oom_score_adj(pid: u32, data: &[u8]) -> abi::KResult<()> {
    let text = core::str::from_utf8(data).map_err(|_| abi::Errno::EINVAL)?;
    let v: i32 = text.trim().parse().map_err(|_| abi::Errno::EINVAL)?;
    if !(proc::oom::ADJ_MIN..=proc::oom::ADJ_MAX).contains(&v) {
        return Err(abi::Errno::EINVAL);
    }
    let p = proc::lookup(pid).ok_or(abi::Errno::ESRCH)?;
    p.group
        .oom_score_adj
        .store(v, core::sync::atomic::Ordering::Relaxed);
    Ok(())
}
