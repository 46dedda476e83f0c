//! `clone(2)`, `fork(2)` and `vfork(2)` for fork-like children (a new
//! process with one thread), which may share the parent's memory
//! (CLONE_VM) and files (CLONE_FILES). Threads (CLONE_THREAD, and
//! CLONE_SIGHAND which only threads use in practice) are not supported yet
//! and get ENOSYS.

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
    if flags & (CLONE_THREAD | CLONE_SIGHAND) != 0 {
        return Err(Errno::ENOSYS);
    }
    // A CLONE_VM child may run on another CPU at the same time as its
    // parent: mapping changes reach both through hal::tlb's shootdown.
    let me = sched::current();
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
    let _ = CLONE_FS;
    let (ppid, pgid, sid) = {
        let r = me.rel.lock();
        let ppid = if flags & CLONE_PARENT != 0 {
            r.ppid
        } else {
            me.pid
        };
        (ppid, r.pgid, r.sid)
    };
    let mut sig = me.sig.lock().clone();
    sig.pending = 0;
    let fs_base = if flags & CLONE_SETTLS != 0 {
        tls
    } else {
        hal::percpu::user_fs_base()
    };
    let child = Process::spawn(NewProcess {
        frame: child_frame,
        fpu: me.fpu().snapshot(),
        fs_base,
        gs_base: hal::percpu::user_gs_base(),
        mm,
        files,
        fs: me.fs.lock().clone(),
        rel: Relations {
            ppid,
            pgid,
            sid,
            children: alloc::vec::Vec::new(),
        },
        sig,
        params: me.params(),
        affinity: me.affinity(),
        info: {
            let mut i = me.info.lock().clone();
            i.start_ns = hal::time::now_ns();
            i
        },
    })?;
    if flags & CLONE_CHILD_CLEARTID != 0 {
        child.clear_child_tid.store(child_tid, Ordering::Relaxed);
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        *child.pending_set_tid.lock() = Some(child_tid);
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        uaccess::write_u32(parent_tid, child.pid)?;
    }
    let parent = if ppid == me.pid {
        me.clone()
    } else {
        super::lookup(ppid).unwrap_or_else(|| me.clone())
    };
    parent.rel.lock().children.push(child.clone());
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
