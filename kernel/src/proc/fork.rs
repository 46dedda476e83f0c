//! `clone(2)`, `clone3(2)`, `fork(2)` and `vfork(2)`: new processes, which
//! may share the parent's memory (CLONE_VM), files (CLONE_FILES) and fs
//! context (CLONE_FS), and new threads of the caller's process
//! (CLONE_THREAD, which requires CLONE_SIGHAND and CLONE_VM, as Linux
//! does). CLONE_SIGHAND without CLONE_THREAD (handlers shared between
//! processes) is not supported and gets ENOSYS.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use hal::idt::TrapFrame;
use spin::Mutex;

use super::{sched, NewProcess, Process, Relations};
use crate::mm::shared::SharedMm;
use crate::uaccess;

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;

/// `clone(flags, newsp, parent_tid, child_tid, tls)` as on x86_64.
pub fn clone(
    frame: &TrapFrame,
    flags: u64,
    newsp: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> KResult<u64> {
    // Linux's checks, in its order.
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SIGHAND != 0 && flags & CLONE_THREAD == 0 {
        return Err(Errno::ENOSYS);
    }
    let thread = flags & CLONE_THREAD != 0;
    // RLIMIT_NPROC counts the tasks of the caller's real uid (threads and
    // zombies included, as Linux counts until release). Linux exempts
    // root; here a limit root sets holds root too, or no fork bomb run as
    // root (the only user of the default initramfs) could be bounded
    // (docs/syscalls.md). The table's own bound applies to everyone.
    let me = sched::current();
    let nproc = super::limits::cur(&me, super::limits::RLIMIT_NPROC);
    if nproc < super::MAX_PROCESSES as u64 && super::count_of_uid(me.cred().ruid) as u64 >= nproc {
        return Err(Errno::EAGAIN);
    }
    // A CLONE_VM child may run on another CPU at the same time as its
    // parent: mapping changes reach both through hal::tlb's shootdown.
    let mut child_frame = frame.clone();
    child_frame.rax = 0;
    if newsp != 0 {
        child_frame.rsp = newsp;
    }
    let mm = if flags & CLONE_VM != 0 {
        me.mm()
    } else {
        SharedMm::new(me.mm().lock().fork()?)
    };
    let files = if flags & CLONE_FILES != 0 {
        me.files()
    } else {
        Arc::new(Mutex::new(me.files().lock().clone()))
    };
    let fs = if flags & CLONE_FS != 0 {
        me.fs.clone()
    } else {
        Arc::new(Mutex::new(me.fs.lock().clone()))
    };
    // A process's relations are its leader's: a child forked by any
    // thread is the process's child, and a thread's "parent" is the
    // process's parent (it is nobody's child: no SIGCHLD, not waitable).
    let leader = me.leader();
    let (ppid, pgid, sid) = {
        let r = leader.rel.lock();
        let ppid = if flags & CLONE_PARENT != 0 || thread {
            r.ppid
        } else {
            leader.pid
        };
        (ppid, r.pgid, r.sid)
    };
    // A new thread copies the handlers under the group's lock, which
    // sigaction holds while it sets them in every thread: no change is
    // lost between the copy and the thread joining the list.
    let mut threads = thread.then(|| me.group.threads.lock());
    if threads.is_some() && me.group.exit.lock().is_some() {
        // The process is dying (exit_group, fatal signal, execve).
        return Err(Errno::EAGAIN);
    }
    let mut sig = me.sig.lock().clone();
    sig.pending = 0;
    sig.restore_mask = None;
    sig.waiting = 0;
    // A child sharing the address space gets no alternate stack: it would
    // share the parent's (Linux clears it for CLONE_VM without VFORK).
    if flags & (CLONE_VM | CLONE_VFORK) == CLONE_VM {
        sig.altstack = Default::default();
    }
    let fs_base = if flags & CLONE_SETTLS != 0 {
        tls
    } else {
        hal::percpu::user_fs_base()
    };
    let child = Process::spawn(NewProcess {
        oom_score_adj: me.group.oom_score_adj.load(Ordering::Relaxed),
        frame: child_frame,
        fpu: me.fpu().snapshot(),
        fs_base,
        gs_base: hal::percpu::user_gs_base(),
        mm,
        files,
        fs,
        group: thread.then(|| (me.tgid, me.group.clone())),
        rel: Relations {
            ppid,
            pgid,
            sid,
            children: alloc::vec::Vec::new(),
        },
        sig,
        limits: *me.group.limits.lock(),
        params: me.params(),
        affinity: me.affinity(),
        cred: me.cred(),
        no_new_privs: me.no_new_privs(),
        info: {
            let mut i = me.info.lock().clone();
            i.start_ns = hal::time::now_ns();
            i
        },
    })?;
    if let Some(t) = threads.as_mut() {
        t.push(child.clone());
        me.group.live.fetch_add(1, Ordering::AcqRel);
    }
    drop(threads);
    if flags & CLONE_CHILD_CLEARTID != 0 {
        child.clear_child_tid.store(child_tid, Ordering::Relaxed);
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        *child.pending_set_tid.lock() = Some(child_tid);
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        // Linux ignores a fault here too: failing now would leave a child
        // that exists but never runs.
        let _ = uaccess::write_u32(parent_tid, child.pid);
    }
    if !thread {
        let parent = if ppid == leader.pid {
            leader.clone()
        } else {
            super::lookup(ppid).unwrap_or_else(|| leader.clone())
        };
        parent.rel.lock().children.push(child.clone());
    }
    let pid = child.pid;
    sched::enqueue_new(child.clone());
    if flags & CLONE_VFORK != 0 {
        // The parent sleeps until the child execs or exits (they share
        // memory until then). Signals do not end the wait early.
        while !*child.vfork_done.lock() {
            if child
                .vfork_wait
                .wait_until(|| (*child.vfork_done.lock()).then_some(()))
                .is_err()
            {
                sched::schedule();
            }
        }
    }
    Ok(pid as u64)
}

/// `clone3(args, size)`: `struct clone_args` with the same semantics as
/// clone. pidfds, set_tid and cgroups are not supported (EINVAL, as a
/// kernel without them would say for set_tid, ENOSYS-like for the rest).
pub fn clone3(frame: &TrapFrame, args: u64, size: u64) -> KResult<u64> {
    const VER0: u64 = 64;
    if size < VER0 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut b = [0u8; 88];
    let n = (size as usize).min(b.len());
    uaccess::copy_in(args, &mut b[..n])?;
    // Fields past the ones known here must be zero (Linux's rule).
    if size as usize > b.len() {
        let rest = uaccess::read_vec(args + b.len() as u64, size as usize - b.len())?;
        if rest.iter().any(|&x| x != 0) {
            return Err(Errno::E2BIG);
        }
    }
    let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (flags, pidfd, child_tid, parent_tid, exit_signal) = (w(0), w(1), w(2), w(3), w(4));
    let (stack, stack_size, tls, set_tid, set_tid_size, cgroup) =
        (w(5), w(6), w(7), w(8), w(9), w(10));
    const CSIGNAL: u64 = 0xff;
    const CLONE_PIDFD: u64 = 0x1000;
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let _ = pidfd;
    if flags & CSIGNAL != 0 || exit_signal > 64 {
        return Err(Errno::EINVAL);
    }
    if flags & (CLONE_PIDFD | CLONE_INTO_CGROUP) != 0 || set_tid != 0 || set_tid_size != 0 {
        return Err(Errno::EINVAL);
    }
    let _ = cgroup;
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_THREAD != 0 && exit_signal != 0 {
        return Err(Errno::EINVAL);
    }
    let sp = if stack != 0 {
        stack.wrapping_add(stack_size)
    } else {
        0
    };
    clone(frame, flags | exit_signal, sp, parent_tid, child_tid, tls)
}

/// Runs in a new process before its first return to user mode.
pub fn first_run() {
    sched::finish_switch();
    if let Some(me) = sched::try_current() {
        let set = me.pending_set_tid.lock().take();
        if let Some(addr) = set {
            let _ = uaccess::write_u32(addr, me.pid);
        }
    }
}
