//! Robust futex lists (set_robust_list/get_robust_list): when a thread
//! dies holding a robust mutex (pthread_mutexattr_setrobust), the kernel
//! marks the mutex FUTEX_OWNER_DIED and wakes a waiter, so the next
//! locker gets EOWNERDEAD instead of hanging forever. The list lives in
//! user memory and may be garbage: every read is checked, the walk is
//! bounded, and a bad list only ends the walk.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::{Pid, Process};
use crate::uaccess;

/// `struct robust_list_head`: list.next, futex_offset, list_op_pending.
const HEAD_LEN: u64 = 24;
/// Most entries walked (Linux's ROBUST_LIST_LIMIT).
const LIST_LIMIT: usize = 2048;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// set_robust_list(2).
pub fn set(head: u64, len: u64) -> KResult<u64> {
    if len != HEAD_LEN {
        return Err(Errno::EINVAL);
    }
    super::sched::current()
        .robust_list
        .store(head, Ordering::Relaxed);
    Ok(0)
}

/// get_robust_list(2).
pub fn get(pid: u64, head_ptr: u64, len_ptr: u64) -> KResult<u64> {
    let p = match pid {
        0 => super::sched::current(),
        pid => super::lookup(Pid::try_from(pid).map_err(|_| Errno::ESRCH)?).ok_or(Errno::ESRCH)?,
    };
    uaccess::write_u64(head_ptr, p.robust_list.load(Ordering::Relaxed))?;
    uaccess::write_u64(len_ptr, HEAD_LEN)?;
    Ok(0)
}

/// At a thread's exit (its memory still mapped): releases every robust
/// futex it still owns.
pub fn exit(p: &Arc<Process>) {
    let head = p.robust_list.swap(0, Ordering::Relaxed);
    if head == 0 {
        return;
    }
    let (Ok(first), Ok(offset), Ok(pending)) = (
        uaccess::read_u64(head),
        uaccess::read_u64(head + 8),
        uaccess::read_u64(head + 16),
    ) else {
        return;
    };
    let offset = offset as i64;
    let mut entry = first;
    for _ in 0..LIST_LIMIT {
        if entry == head || entry == 0 {
            break;
        }
        // The next pointer first: releasing may let another thread reuse
        // the entry.
        let Ok(next) = uaccess::read_u64(entry) else {
            break;
        };
        if entry != pending {
            release(entry.wrapping_add_signed(offset), p.pid);
        }
        entry = next;
    }
    if pending != 0 {
        release(pending.wrapping_add_signed(offset), p.pid);
    }
}

/// Marks the futex word at `addr` owner-died if `tid` owns it, and wakes
/// one waiter if there are any (Linux's handle_futex_death).
fn release(addr: u64, tid: Pid) {
    let mut owned = false;
    let r = uaccess::update_u32(addr, |v| {
        owned = v & FUTEX_TID_MASK == tid;
        if owned {
            (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED
        } else {
            v
        }
    });
    if let Ok(old) = r {
        if owned && old & FUTEX_WAITERS != 0 {
            crate::syscall::futex::wake_addr(addr, 1);
        }
    }
}
