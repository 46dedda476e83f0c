//! Process exit, reparenting, zombies and `wait4`.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::{sched, signal, Pid, Process, RunState};
use crate::uaccess;

/// Wait status of a normal exit with `code`.
pub fn exited(code: i32) -> i32 {
    (code & 0xff) << 8
}

/// Ends the whole process of `p` (the current thread): exit_group, and a
/// fatal signal. The other threads die as by SIGKILL at their next return
/// to user mode; the process's wait status is the first such `status`.
pub fn exit_group(p: Arc<Process>, status: i32) -> ! {
    let first = {
        let mut e = p.group.exit.lock();
        let first = e.is_none();
        if first {
            *e = Some(status);
        }
        first
    };
    if first {
        kill_others(&p);
    }
    exit_process(p, status)
}

fn kill_others(p: &Arc<Process>) {
    for t in p.group.snapshot() {
        if !Arc::ptr_eq(&t, p) && !t.is_zombie() {
            signal::send(&t, signal::SIGKILL);
        }
    }
}

/// execve's de_thread: kills the other threads of the caller's process
/// and waits until they have exited. The caller keeps its own thread id
/// (Linux gives it the leader's: not done here; getpid is unchanged).
/// Err when the process is already dying.
pub fn kill_other_threads(me: &Arc<Process>) -> KResult<()> {
    let g = &me.group;
    if g.live.load(Ordering::Acquire) <= 1 {
        return Ok(());
    }
    {
        // Marks the group as dying, so the others' SIGKILL ends only them.
        let mut e = g.exit.lock();
        if e.is_some() {
            return Err(Errno::EINTR);
        }
        *e = Some(signal::SIGKILL as i32);
    }
    kill_others(me);
    // Uninterruptible as Linux's (killable) wait: a caught signal must not
    // abort an exec halfway; the others die at their next return to user
    // mode, so this is short.
    while g.live.load(Ordering::Acquire) > 1 {
        if g.exited
            .wait_until(|| (g.live.load(Ordering::Acquire) <= 1).then_some(()))
            .is_err()
        {
            sched::schedule();
        }
    }
    *g.exit.lock() = None;
    Ok(())
}

/// Ends `p` (the current thread) with wait status `status` and never
/// returns. Resources are released here; when it was the process's last
/// thread, the leader's zombie keeps only its status until the parent
/// reaps it. Takes `p` by value: this stack is never unwound, so a
/// reference counted here would keep the zombie alive forever (the
/// scheduler frees it once only its dead list holds it).
pub fn exit_process(p: Arc<Process>, status: i32) -> ! {
    let pid = p.pid;
    crate::cluster::migrate::on_exit(&p);
    super::robust::exit(&p);
    let tid_addr = p.clear_child_tid.swap(0, Ordering::Relaxed);
    if tid_addr != 0 {
        let _ = uaccess::write_u32(tid_addr, 0);
        crate::syscall::futex::wake_addr(tid_addr, 1);
    }
    // Drop files (closing pipes wakes their peers) and memory.
    let files = core::mem::replace(
        &mut *p.files.lock(),
        Arc::new(spin::Mutex::new(crate::fs::fdtable::FdTable::new())),
    );
    drop(files);
    // An ext4 cwd holds its mount busy: until the exit, not the reaping
    // (unless another process shares it, CLONE_FS).
    if Arc::strong_count(&p.fs) == 1 {
        let cwd = core::mem::replace(
            &mut p.fs.lock().cwd,
            crate::fs::cwd::Cwd::Tmpfs(vfs::ROOT_INO),
        );
        drop(cwd);
    }
    crate::mm::release_on_exit(&p);

    // Taken while this thread is live, which keeps the leader in the
    // table (the process cannot be reaped before its last thread exits).
    let leader = p.leader();
    let g = p.group.clone();
    *p.exit_status.lock() = Some(status);
    hal::cpu::without_interrupts(|| *p.run.lock() = RunState::Zombie);
    *p.vfork_done.lock() = true;
    p.vfork_wait.wake_all();
    let last = g.live.fetch_sub(1, Ordering::AcqRel) == 1;
    if !p.is_leader() {
        // Nobody waits for a thread: it leaves the table now (its stack
        // stays until this CPU has switched away, as for any exit).
        g.threads.lock().retain(|t| !Arc::ptr_eq(t, &p));
        // Its time stays the process's (CLOCK_PROCESS_CPUTIME_ID).
        g.exited_cpu_ns
            .fetch_add(super::cputime::thread_ns(&p), Ordering::Relaxed);
        super::remove(pid);
    }
    g.exited.wake_all();
    if last {
        let status = g.exit.lock().unwrap_or(status);
        process_exited(&leader, status);
    }
    drop(leader);
    drop(g);
    drop(p);
    sched::schedule();
    unreachable!("a zombie was scheduled again");
}

/// The last thread of `leader`'s process has exited with the process's
/// wait status `status`: children go to init, the parent is told.
fn process_exited(leader: &Arc<Process>, status: i32) {
    let pid = leader.pid;
    if pid == 1 {
        let code = if status & 0x7f == 0 {
            (status >> 8) & 0xff
        } else {
            128 + (status & 0x7f)
        };
        // The machine stops with init: what the mounted file systems
        // hold goes to their disks first.
        crate::fs::mount::sync_all();
        crate::klog!("init exited: status={code}");
        hal::exit::exit_qemu(hal::exit::ExitCode::Success);
    }

    // Orphans go to init, which reaps them. A child exiting now either
    // sees its new parent (and tells init itself) or is seen dead here:
    // we publish the new parent before looking at the children's states,
    // and an exiting child publishes its state before reading its parent
    // (below), so init is never left asleep with a zombie to reap.
    let children: Vec<Arc<Process>> = core::mem::take(&mut leader.rel.lock().children);
    if !children.is_empty() {
        if let Some(init) = super::lookup(1) {
            for c in &children {
                c.set_ppid(1);
            }
            init.rel.lock().children.extend(children.iter().cloned());
            crate::inject::delay(crate::inject::Point::Reparent);
            core::sync::atomic::fence(Ordering::SeqCst);
            if children.iter().any(|c| c.is_dead_process()) {
                init.child_wait.wake_all();
            }
        }
    }

    *leader.exit_status.lock() = Some(status);
    leader.group.dead.store(true, Ordering::Release);
    super::timers::on_exit(leader.tgid);
    if crate::cluster::migrate::is_guest_pid(pid) {
        // A process moved here from another machine: its parent is at
        // its home, so the kernel reaps it.
        super::remove(pid);
        leader.group.threads.lock().clear();
        return;
    }
    // Pairs with the reparenting above (in our parent's exit).
    core::sync::atomic::fence(Ordering::SeqCst);
    if let Some(parent) = super::lookup(leader.ppid()) {
        // CLD_EXITED with the exit code, or CLD_KILLED/CLD_DUMPED with the signal.
        let info = if status & 0x7f == 0 {
            signal::SigInfo::child(1, pid, (status >> 8) & 0xff)
        } else {
            let code = if status & 0x80 != 0 { 3 } else { 2 };
            signal::SigInfo::child(code, pid, status & 0x7f)
        };
        signal::send_process(&parent, signal::SIGCHLD, info);
        parent.child_wait.wake_all();
    }
}

/// wait4's "don't block" option.
pub const WNOHANG: u64 = 1;

/// Whether the current process has a child matching `pid` (wait4 rules).
fn has_child(pid: i64) -> bool {
    let me = sched::current().leader();
    let my_pgid = me.rel.lock().pgid;
    let rel = me.rel.lock();
    rel.children.iter().any(|c| child_matches(c, pid, my_pgid))
}

fn child_matches(c: &Process, pid: i64, my_pgid: Pid) -> bool {
    match pid {
        -1 => true,
        0 => c.rel.lock().pgid == my_pgid,
        p if p > 0 => c.pid == p as Pid,
        p => c.rel.lock().pgid == (-p) as Pid,
    }
}

/// Waits for a child matching `pid` (wait4 rules) to exit, reaps it and
/// returns (pid, wait status); None with WNOHANG when none has exited.
pub fn wait_any(pid: i64, options: u64) -> KResult<Option<(Pid, i32)>> {
    // Any thread waits for the process's children, which its leader holds.
    let me = sched::current().leader();
    let my_pgid = me.rel.lock().pgid;
    let matches = |c: &Process| child_matches(c, pid, my_pgid);
    let found = me.child_wait.wait_until(|| {
        let rel = me.rel.lock();
        let mut any = false;
        for c in rel.children.iter() {
            if matches(c) {
                any = true;
                if c.is_dead_process() {
                    return Some(Ok(Some(c.clone())));
                }
            }
        }
        if !any {
            return Some(Err(Errno::ECHILD));
        }
        if options & WNOHANG != 0 {
            return Some(Ok(None));
        }
        None
    })??;
    let Some(child) = found else { return Ok(None) };
    let status = child.exit_status.lock().unwrap_or(0);
    me.rel.lock().children.retain(|c| !Arc::ptr_eq(c, &child));
    // Its kernel stack goes with the last reference (the dead list of the
    // CPU it exited on holds one until that CPU has switched away).
    super::remove(child.pid);
    // Breaks the leader -> group -> leader cycle.
    child.group.threads.lock().clear();
    Ok(Some((child.pid, status)))
}

/// `wait4(2)`: waits for a child to exit and reaps it.
pub fn wait4(pid: i64, status_ptr: u64, options: u64, rusage: u64) -> KResult<u64> {
    if options & !(WNOHANG | 2 | 8 | 0x4000_0000 | 0x8000_0000 | 0x2000_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    // ECHILD comes first, as in Linux; then the pointer, so that a bad one
    // does not lose a child's status.
    if !has_child(pid) {
        return Err(Errno::ECHILD);
    }
    if status_ptr != 0 {
        uaccess::write_u32(status_ptr, 0)?;
    }
    let Some((cpid, status)) = wait_any(pid, options)? else {
        return Ok(0);
    };
    if status_ptr != 0 {
        uaccess::write_u32(status_ptr, status as u32)?;
    }
    if rusage != 0 {
        uaccess::copy_out(rusage, &[0u8; 144])?;
    }
    Ok(cpid as u64)
}
