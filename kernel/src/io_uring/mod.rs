//! io_uring: Linux's shared-ring syscall interface (the "exception-less"
//! path of DESIGN.md), with the real uapi layouts, so programs written
//! against Linux's io_uring(7) run unchanged.
//!
//! - `setup.rs`: io_uring_setup(2) — checks the parameters, allocates the
//!   rings, returns the ring fd (an [`OpenFile`] of kind `IoUring`).
//! - `mem.rs`: frames shared by the kernel (direct map) and user space
//!   (an mmap of the ring fd, see `mm::syscalls::mmap`).
//! - `ring.rs`: SQ consumption, CQ posting, the overflow list.
//! - `nop.rs`: the batch fast path for NOPs, from SQE to CQE slot.
//! - `ops.rs`: the opcodes.
//! - `pending.rs`: requests that complete later (poll, timeout, a read
//!   that would block).
//! - `enter.rs`: io_uring_enter(2), waiting for completions.
//! - `register.rs`: io_uring_register(2).
//! - `sqpoll.rs`: IORING_SETUP_SQPOLL, served by the torus polling the
//!   ring at its event boundaries.
//!
//! Every SQE is one event of the torus: it runs to completion where it is
//! consumed, or becomes a pending request the torus re-examines at each
//! boundary ([`boundary`]: every syscall entry, and every timer tick's
//! deferred work, run on the way back to user mode or in the idle loop).

mod enter;
mod mem;
mod nop;
mod ops;
mod pending;
mod register;
mod ring;
mod setup;
mod sqpoll;
mod uapi;

pub use enter::enter;
pub use register::register;
pub use ring::Ring;
pub use setup::setup;

use abi::{Errno, KResult};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use crate::fs::file::OpenFile;

/// SQEs consumed so far, by io_uring_enter and by SQPOLL (for /proc and
/// the benchmarks).
pub static EVENTS: AtomicU64 = AtomicU64::new(0);

/// Rings that boundaries must look at: SQPOLL rings, and rings with
/// pending requests. Weak: a ring's life is its fd and mappings.
static ACTIVE_RINGS: Mutex<Vec<Weak<Ring>>> = Mutex::new(Vec::new());
/// `ACTIVE_RINGS.len()`: boundaries cost one load while it is 0.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

const fn errno(e: u32) -> Errno {
    Errno(e as u16)
}
/// Errors abi::Errno does not name.
pub(crate) const ETIME: u16 = linux_raw_sys::errno::ETIME as u16;
const EBADR: Errno = errno(linux_raw_sys::errno::EBADR);
const EBADFD: Errno = errno(linux_raw_sys::errno::EBADFD);
const EOWNERDEAD: Errno = errno(linux_raw_sys::errno::EOWNERDEAD);

/// Puts a ring on the boundary list (no-op if it is there).
fn register_active(r: &Arc<Ring>) {
    let mut g = ACTIVE_RINGS.lock();
    if !g.iter().any(|w| core::ptr::eq(w.as_ptr(), Arc::as_ptr(r))) {
        g.push(Arc::downgrade(r));
        set_active(g.len());
    }
}

/// Records how many rings need boundaries (under `ACTIVE_RINGS`' lock):
/// while any does, hal's light syscall path sends every call to the full
/// handler, whose entry runs [`boundary`].
fn set_active(n: usize) {
    ACTIVE.store(n, Ordering::Relaxed);
    hal::syscall::set_leaf_paused(n != 0);
}

/// Whether a syscall boundary has io_uring work to do ([`boundary`]).
#[inline(always)]
pub fn boundary_pending() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

/// An event boundary of the torus: complete what is ready among pending
/// requests, let SQPOLL rings consume their SQ. Called with no kernel
/// lock held (trap::deferred_work, syscall entry).
#[inline]
pub fn boundary() {
    // Inlined test, out-of-line work: every syscall entry passes here, and
    // the common case must cost one load, not a function prologue.
    if boundary_pending() {
        boundary_work();
    }
}

#[cold]
#[inline(never)]
fn boundary_work() {
    let rings: Vec<Arc<Ring>> = ACTIVE_RINGS
        .lock()
        .iter()
        .filter_map(|w| w.upgrade())
        .collect();
    let me = crate::proc::sched::try_current();
    let mut completed = false;
    for r in &rings {
        completed |= r.run_pending(me.as_ref());
        if r.is_sqpoll() {
            r.sqpoll_boundary(me.as_ref());
        }
    }
    {
        let mut g = ACTIVE_RINGS.lock();
        g.retain(|w| w.upgrade().is_some_and(|r| r.needs_boundaries()));
        set_active(g.len());
    }
    if completed {
        // Waiters in io_uring_enter sleep on the poll queue.
        crate::fs::POLL_WQ.wake_all();
    }
    drop(rings);
}

/// The ring behind a descriptor: EBADF if none, EOPNOTSUPP if it is not a
/// ring (as Linux answers io_uring_enter/register on another file).
fn ring_of(fd: u64) -> KResult<(Arc<OpenFile>, Arc<Ring>)> {
    // Borrowing the process, not counting a reference to it: every
    // io_uring_enter passes here.
    let f = crate::proc::sched::with_current(|p| p.file_at(fd as i32))?;
    let r = f.io_uring().ok_or(Errno::EOPNOTSUPP)?.clone();
    Ok((f, r))
}

/// For mmap(2) of `f` at `off`: the frames to map if `f` is a ring fd
/// (Ok(None) for any other file).
pub fn mmap_frames(f: &OpenFile, off: u64, len: u64) -> KResult<Option<Vec<u64>>> {
    match f.io_uring() {
        Some(r) => r.mmap_frames(off, len).map(Some),
        None => Ok(None),
    }
}
