//! What sockets make the kernel hold for users, bounded:
//! - queued data: every socket queue is bounded by its sender's
//!   SO_SNDBUF, and all of them together by [`limit`] (an eighth of the
//!   heap): beyond it a send waits or fails as if the peer's queue were
//!   full (ENOBUFS for datagrams), so many sockets cannot exhaust the
//!   heap;
//! - descriptors in flight (SCM_RIGHTS): at most [`MAX_IN_FLIGHT`] at
//!   once (ETOOMANYREFS beyond, as Linux's per-user limit);
//! - dropping what a closed socket still queued never recurses: a file
//!   in flight may be a socket whose own queue holds files in flight, so
//!   such files go to a reaper list that one loop drains ([`InFlight`]'s
//!   drop), and the kernel stack stays flat however long the chain.
//!
//! Not collected: a cycle of sockets each in flight in another's queue
//! with no descriptor left (Linux has a garbage collector for that); its
//! memory stays charged, within the bounds above.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Mutex;

use crate::fs::file::OpenFile;

/// Bytes charged by all socket queues.
static CHARGED: AtomicUsize = AtomicUsize::new(0);

/// Most descriptors in flight at once.
pub const MAX_IN_FLIGHT: usize = 4096;
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// The bound on all socket queues together.
pub fn limit() -> usize {
    hal::heap::size() / 8
}

/// Whether `n` more bytes may be queued now.
pub fn may_charge(n: usize) -> bool {
    CHARGED.load(Ordering::Relaxed) + n <= limit()
}

/// Records a queue's change of charge from `before` to `after` bytes.
pub fn account(before: usize, after: usize) {
    if after > before {
        CHARGED.fetch_add(after - before, Ordering::Relaxed);
    } else {
        CHARGED.fetch_sub(before - after, Ordering::Relaxed);
    }
}

/// Descriptors passed with SCM_RIGHTS, from sendmsg until recvmsg
/// installs them (or the queue holding them is dropped).
pub struct InFlight(Vec<Arc<OpenFile>>);

impl InFlight {
    /// Takes `files` in flight; ETOOMANYREFS beyond [`MAX_IN_FLIGHT`].
    pub fn new(files: Vec<Arc<OpenFile>>) -> KResult<Arc<InFlight>> {
        let n = files.len();
        if IN_FLIGHT.fetch_add(n, Ordering::Relaxed) + n > MAX_IN_FLIGHT {
            IN_FLIGHT.fetch_sub(n, Ordering::Relaxed);
            return Err(Errno::ETOOMANYREFS);
        }
        Ok(Arc::new(InFlight(files)))
    }

    /// The files, in the order they were sent.
    pub fn files(&self) -> &[Arc<OpenFile>] {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(self.0.len(), Ordering::Relaxed);
        drop_later(core::mem::take(&mut self.0));
    }
}

static REAP: Mutex<Vec<Arc<OpenFile>>> = Mutex::new(Vec::new());
static DRAINING: AtomicBool = AtomicBool::new(false);

/// Drops `files` from a loop rather than from inside the caller: if a
/// drop releases a socket whose queue held more files, those join the
/// list instead of recursing.
pub fn drop_later(files: Vec<Arc<OpenFile>>) {
    if files.is_empty() {
        return;
    }
    REAP.lock().extend(files);
    loop {
        if DRAINING.swap(true, Ordering::Acquire) {
            return; // whoever drains takes ours too
        }
        loop {
            let f = REAP.lock().pop();
            match f {
                Some(f) => drop(f),
                None => break,
            }
        }
        DRAINING.store(false, Ordering::Release);
        // A file pushed after our last look and before the store saw us
        // draining and left: look again.
        if REAP.lock().is_empty() {
            return;
        }
    }
}
