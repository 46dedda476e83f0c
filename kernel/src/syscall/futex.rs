//! futex(2): FUTEX_WAIT and FUTEX_WAKE (private or shared, same thing with
//! one address space per process), enough for glibc's locks and
//! CLONE_CHILD_CLEARTID. Waiters are keyed by user address.

use abi::{Errno, KResult};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use spin::Mutex;

use crate::proc::sched::WaitQueue;
use crate::uaccess;

static QUEUES: Mutex<BTreeMap<u64, Arc<WaitQueue>>> = Mutex::new(BTreeMap::new());

fn queue(addr: u64) -> Arc<WaitQueue> {
    QUEUES
        .lock()
        .entry(addr)
        .or_insert_with(|| Arc::new(WaitQueue::new()))
        .clone()
}

/// Wakes waiters on `addr` (all of them: they re-check their word).
pub fn wake_addr(addr: u64, _n: u32) {
    let q = QUEUES.lock().remove(&addr);
    if let Some(q) = q {
        q.wake_all();
    }
}

/// futex(uaddr, op, val, timeout).
pub fn futex(uaddr: u64, op: u64, val: u64, _timeout: u64) -> KResult<u64> {
    match op & 0x7f {
        0 | 9 => {
            // FUTEX_WAIT(_BITSET): sleep while *uaddr == val. The wake
            // count is read before the value, so a FUTEX_WAKE between the
            // two (on another CPU) is not lost.
            let q = queue(uaddr);
            let since = q.wakes();
            if uaccess::read_u32(uaddr)? != val as u32 {
                return Err(Errno::EAGAIN);
            }
            q.wait_for_wake(since)?;
            Ok(0)
        }
        1 | 10 => {
            wake_addr(uaddr, val as u32);
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}
