//! Process-level syscalls: ids, groups and sessions, kill, limits, uname,
//! sysinfo, getrandom, arch_prctl, priorities.

use abi::{Errno, KResult};
use core::sync::atomic::Ordering;

use crate::proc::{self, exit, sched::current, signal, Pid};
use crate::uaccess;

/// exit(2): ends the calling thread.
pub fn exit(code: u64) -> KResult<u64> {
    let me = current();
    exit::exit_process(me, exit::exited(code as i32))
}

/// exit_group(2): ends every thread of the process.
pub fn exit_group(code: u64) -> KResult<u64> {
    let me = current();
    exit::exit_group(me, exit::exited(code as i32))
}

/// tgkill(2) (`tgid` > 0) and tkill(2) (`tgid` None): a signal to one
/// thread.
pub fn tgkill(tgid: Option<i64>, tid: i64, sig: u64) -> KResult<u64> {
    let sig = signal::check_signo(sig, true)?;
    if tid <= 0 || tgid.is_some_and(|g| g <= 0) {
        return Err(Errno::EINVAL);
    }
    let t = proc::lookup(tid as Pid).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g as Pid != t.tgid) || t.is_zombie() {
        return Err(Errno::ESRCH);
    }
    let me = current();
    if !may_signal(&me, &t, sig) {
        return Err(Errno::EPERM);
    }
    if sig != 0 {
        signal::send_info(&t, sig, sent_by(&me, -6)); // SI_TKILL
    }
    Ok(0)
}

/// kill(2)'s permission rule (credentials' `may_signal`), and SIGCONT to
/// any process of the sender's session (job control).
fn may_signal(me: &proc::Process, target: &proc::Process, sig: u32) -> bool {
    me.cred().may_signal(&target.cred())
        || (sig == signal::SIGCONT && session_of(me) == session_of(target))
}

/// The session of `p`'s process (its leader holds the relations).
fn session_of(p: &proc::Process) -> Pid {
    proc::lookup(p.tgid).map_or(0, |l| l.rel.lock().sid)
}

/// The siginfo of a signal sent by `me` (si_pid, si_uid: its real uid).
fn sent_by(me: &proc::Process, code: i32) -> signal::SigInfo {
    let mut info = signal::SigInfo::sent(code, me.tgid);
    info.uid = me.cred().ruid;
    info
}

/// kill(2): pid > 0, 0 (own group), -1 (everyone but init), < -1 (group).
pub fn kill(pid: i64, sig: u64) -> KResult<u64> {
    let sig = signal::check_signo(sig, true)?;
    let me = current();
    let targets: alloc::vec::Vec<_> = match pid {
        p if p > 0 => alloc::vec![proc::lookup(p as Pid).ok_or(Errno::ESRCH)?.leader()],
        0 => {
            let g = me.leader().rel.lock().pgid;
            proc::all()
                .into_iter()
                .filter(|p| p.rel.lock().pgid == g)
                .collect()
        }
        -1 => proc::all()
            .into_iter()
            .filter(|p| p.pid != 1 && p.pid != me.tgid)
            .collect(),
        p => proc::all()
            .into_iter()
            .filter(|q| q.rel.lock().pgid == (-p) as Pid)
            .collect(),
    };
    let live: alloc::vec::Vec<_> = targets
        .into_iter()
        .filter(|p| !p.is_dead_process() || pid > 0)
        .collect();
    if live.is_empty() {
        return Err(Errno::ESRCH);
    }
    // Linux: a group or broadcast kill succeeds if one target could be
    // signalled, and is EPERM if none could.
    let mut sent = false;
    for p in live {
        if !may_signal(&me, &p, sig) {
            continue;
        }
        sent = true;
        if sig != 0 && !p.is_dead_process() {
            signal::send_process(&p, sig, sent_by(&me, 0));
        }
    }
    if !sent {
        return Err(Errno::EPERM);
    }
    Ok(0)
}

/// rt_sigsuspend(2): waits for a signal with a temporary mask.
pub fn sigsuspend(mask: u64, size: u64) -> KResult<u64> {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let m = uaccess::read_u64(mask)?;
    let me = current();
    let old = me.sig.lock().mask;
    me.sig.lock().set_mask(m);
    static NEVER: crate::proc::sched::WaitQueue = crate::proc::sched::WaitQueue::new();
    let _ = NEVER.wait_until(|| None::<()>);
    // The old mask comes back after the handler runs: signal delivery
    // saves the mask in effect now (the temporary one) in the frame, so
    // restore the old one there instead.
    me.sig.lock().restore_mask = Some(old);
    Err(Errno::EINTR)
}

/// pause(2): sleeps until a signal is delivered; EINTR after a handler
/// (a signal that is ignored does not wake it: see signal::send).
pub fn pause() -> KResult<u64> {
    static NEVER: crate::proc::sched::WaitQueue = crate::proc::sched::WaitQueue::new();
    NEVER.wait_until(|| None::<()>)?;
    Err(Errno::EINTR)
}

/// rt_sigpending(2).
pub fn sigpending(set: u64) -> KResult<u64> {
    let me = current();
    let p = me.sig.lock().pending | me.group.shared_sig.lock().pending;
    uaccess::write_u64(set, p)?;
    Ok(0)
}

/// waitid(2) for P_ALL/P_PID/P_PGID with WEXITED.
pub fn waitid(idtype: u64, id: u64, infop: u64, options: u64) -> KResult<u64> {
    let pid = match idtype {
        0 => -1,
        1 => id as i64,
        2 => -(id as i64),
        _ => return Err(Errno::EINVAL),
    };
    let got = exit::wait_any(pid, options & exit::WNOHANG)?;
    if infop != 0 {
        let mut b = [0u8; 128];
        if let Some((cpid, st)) = got {
            b[0..4].copy_from_slice(&(signal::SIGCHLD).to_le_bytes());
            // CLD_EXITED = 1, CLD_KILLED = 2.
            let (code, val) = if st & 0x7f == 0 {
                (1i32, (st >> 8) & 0xff)
            } else {
                (2i32, st & 0x7f)
            };
            b[8..12].copy_from_slice(&code.to_le_bytes());
            b[16..20].copy_from_slice(&cpid.to_le_bytes());
            b[24..28].copy_from_slice(&val.to_le_bytes());
        }
        uaccess::copy_out(infop, &b)?;
    }
    Ok(0)
}

/// setpgid(2).
pub fn setpgid(pid: u64, pgid: u64) -> KResult<u64> {
    let me = current().leader();
    let target = if pid == 0 || pid as Pid == me.pid {
        me.clone()
    } else {
        proc::lookup(pid as Pid).ok_or(Errno::ESRCH)?.leader()
    };
    if target.pid != me.pid && target.ppid() != me.pid {
        return Err(Errno::ESRCH);
    }
    if (pgid as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let pg = if pgid == 0 { target.pid } else { pgid as Pid };
    let my_sid = me.rel.lock().sid;
    // As Linux: the target must be in the caller's session and not lead
    // one, and a group other than its own pid must already exist there.
    {
        let r = target.rel.lock();
        if r.sid == target.pid || r.sid != my_sid {
            return Err(Errno::EPERM);
        }
    }
    if pg != target.pid
        && !proc::all().iter().any(|p| {
            let r = p.rel.lock();
            r.pgid == pg && r.sid == my_sid
        })
    {
        return Err(Errno::EPERM);
    }
    target.rel.lock().pgid = pg;
    Ok(0)
}

/// The process a pid argument names: 0 means the caller.
fn target(pid: u64) -> KResult<alloc::sync::Arc<proc::Process>> {
    if pid == 0 {
        Ok(current().leader())
    } else {
        proc::lookup(pid as Pid)
            .map(|p| p.leader())
            .ok_or(Errno::ESRCH)
    }
}

/// getpgid(2).
pub fn getpgid(pid: u64) -> KResult<u64> {
    let p = target(pid)?;
    let g = p.rel.lock().pgid;
    Ok(g as u64)
}

/// setsid(2).
pub fn setsid() -> KResult<u64> {
    let me = current().leader();
    let pid = me.pid;
    if proc::all()
        .iter()
        .any(|p| p.pid != pid && p.rel.lock().pgid == pid)
    {
        return Err(Errno::EPERM);
    }
    let mut r = me.rel.lock();
    r.pgid = pid;
    r.sid = pid;
    Ok(pid as u64)
}

/// getsid(2).
pub fn getsid(pid: u64) -> KResult<u64> {
    let p = target(pid)?;
    let s = p.rel.lock().sid;
    Ok(s as u64)
}

/// arch_prctl(2): ARCH_SET_FS/GET_FS/SET_GS/GET_GS.
pub fn arch_prctl(code: u64, addr: u64) -> KResult<u64> {
    let canonical = addr < hal::probe::USER_TOP;
    match code {
        0x1002 => {
            if !canonical {
                return Err(Errno::EPERM);
            }
            current().set_fs_base(addr);
            Ok(0)
        }
        0x1003 => uaccess::write_u64(addr, hal::percpu::user_fs_base()).map(|_| 0),
        0x1001 => {
            if !canonical {
                return Err(Errno::EPERM);
            }
            current().set_gs_base(addr);
            Ok(0)
        }
        0x1004 => uaccess::write_u64(addr, hal::percpu::user_gs_base()).map(|_| 0),
        _ => Err(Errno::EINVAL),
    }
}

/// set_tid_address(2).
pub fn set_tid_address(addr: u64) -> KResult<u64> {
    let me = current();
    me.clear_child_tid.store(addr, Ordering::Relaxed);
    Ok(me.pid as u64)
}

/// prctl(2): PR_SET_NAME / PR_GET_NAME; others EINVAL.
pub fn prctl(op: u64, arg: u64) -> KResult<u64> {
    match op {
        15 => {
            let name = uaccess::read_cstr(arg, 4096)?;
            let n = name.len().min(15);
            current().info.lock().comm =
                alloc::string::String::from_utf8_lossy(&name[..n]).into_owned();
            Ok(0)
        }
        16 => {
            let mut b = [0u8; 16];
            let c = current().info.lock().comm.clone();
            let n = c.len().min(15);
            b[..n].copy_from_slice(&c.as_bytes()[..n]);
            uaccess::copy_out(arg, &b).map(|_| 0)
        }
        // PR_SET_NO_NEW_PRIVS / PR_GET_NO_NEW_PRIVS.
        38 if arg == 1 => {
            current().set_no_new_privs();
            Ok(0)
        }
        39 => Ok(current().no_new_privs() as u64),
        _ => Err(Errno::EINVAL),
    }
}

/// prlimit64(2) (getrlimit and setrlimit are it on the caller): the old
/// limit is the one before the change.
pub fn prlimit64(pid: u64, res: u64, new: u64, old: u64) -> KResult<u64> {
    use crate::proc::limits::NLIMITS;
    let p = match pid {
        0 => current(),
        pid => proc::lookup(Pid::try_from(pid).map_err(|_| Errno::ESRCH)?)
            .filter(|p| !p.is_zombie())
            .ok_or(Errno::ESRCH)?,
    };
    let res = usize::try_from(res)
        .ok()
        .filter(|r| *r < NLIMITS)
        .ok_or(Errno::EINVAL)?;
    let new = match new {
        0 => None,
        a => {
            let b = uaccess::read_vec(a, 16)?;
            let w = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
            Some((w(0), w(8)))
        }
    };
    let prev = {
        let mut l = p.group.limits.lock();
        let prev = l.0[res];
        if let Some((soft, hard)) = new {
            l.set(res, soft, hard)?;
        }
        prev
    };
    if old != 0 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&prev.0.to_le_bytes());
        b[8..].copy_from_slice(&prev.1.to_le_bytes());
        uaccess::copy_out(old, &b)?;
    }
    Ok(0)
}

/// uname(2).
pub fn uname(buf: u64) -> KResult<u64> {
    let mut b = [0u8; 65 * 6];
    let fields: [&[u8]; 6] = [
        b"Linux",
        b"rse",
        b"6.1.0-rse",
        b"#1 SMP RSE OS",
        b"x86_64",
        b"(none)",
    ];
    for (i, f) in fields.iter().enumerate() {
        b[i * 65..i * 65 + f.len()].copy_from_slice(f);
    }
    uaccess::copy_out(buf, &b).map(|_| 0)
}

/// sysinfo(2).
pub fn sysinfo(buf: u64) -> KResult<u64> {
    let (mut free, mut total) = (0u64, 0u64);
    for t in 0..crate::frames::torus_count() {
        let (f, tt) = crate::frames::stats(t);
        free += f as u64;
        total += tt as u64;
    }
    let mut b = [0u8; 112];
    let put = |b: &mut [u8], off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut b, 0, hal::time::now_ns() / 1_000_000_000);
    put(&mut b, 32, total * 4096);
    put(&mut b, 40, free * 4096);
    b[80..82].copy_from_slice(&(proc::count() as u16).to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes()); // mem_unit
    uaccess::copy_out(buf, &b).map(|_| 0)
}

/// getrandom(2).
pub fn getrandom(buf: u64, len: u64, flags: u64) -> KResult<u64> {
    if flags & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let n = (len as usize).min(1 << 20);
    let mut b = uaccess::kernel_buf(n)?;
    crate::random::fill(&mut b);
    uaccess::copy_out(buf, &b)?;
    Ok(n as u64)
}

/// times(2).
pub fn times(buf: u64) -> KResult<u64> {
    let t = current().ticks.load(Ordering::Relaxed) / 10;
    if buf != 0 {
        let mut b = [0u8; 32];
        b[8..16].copy_from_slice(&t.to_le_bytes());
        uaccess::copy_out(buf, &b)?;
    }
    Ok(crate::trap::ticks() / 10)
}

/// getrusage(2): the caller's CPU time to the nanosecond (as system
/// time: user and system are not split yet), its process's for
/// RUSAGE_SELF, and context switches, RUSAGE_SELF summing its threads';
/// RUSAGE_CHILDREN is not kept (the caller's time, no switches).
pub fn getrusage(who: i64, buf: u64) -> KResult<u64> {
    const RUSAGE_SELF: i64 = 0;
    const RUSAGE_CHILDREN: i64 = -1;
    const RUSAGE_THREAD: i64 = 1;
    let me = current();
    let (nvcsw, nivcsw) = match who {
        RUSAGE_SELF => me
            .group
            .threads
            .lock()
            .iter()
            .map(|t| t.switches.get())
            .fold((0, 0), |(v, i), (tv, ti)| (v + tv, i + ti)),
        RUSAGE_THREAD => me.switches.get(),
        RUSAGE_CHILDREN => (0, 0),
        _ => return Err(Errno::EINVAL),
    };
    let ns = match who {
        RUSAGE_THREAD => crate::proc::cputime::thread_ns(&me),
        _ => crate::proc::cputime::process_ns(&me),
    };
    let mut b = [0u8; 144];
    b[16..24].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[24..32].copy_from_slice(&(ns % 1_000_000_000 / 1000).to_le_bytes());
    b[128..136].copy_from_slice(&nvcsw.to_le_bytes());
    b[136..144].copy_from_slice(&nivcsw.to_le_bytes());
    uaccess::copy_out(buf, &b).map(|_| 0)
}

/// getcpu(2): the torus is the CPU.
pub fn getcpu(cpu: u64, node: u64) -> KResult<u64> {
    if cpu != 0 {
        uaccess::write_u32(cpu, hal::percpu::cpu_id() as u32)?;
    }
    if node != 0 {
        uaccess::write_u32(node, 0)?;
    }
    Ok(0)
}
