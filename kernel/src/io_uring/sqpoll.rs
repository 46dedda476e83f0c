//! IORING_SETUP_SQPOLL without a kernel thread: the torus polls the SQ
//! ring at its event boundaries.
//!
//! There is one CPU and no kernel threads, so nothing can spin on the ring
//! the way Linux's SQ thread does. Instead every boundary of the torus —
//! each timer tick's deferred work (on the way back to user mode, so every
//! tick while the application spins in user space, or in the idle loop),
//! each syscall entry — looks at the ring. SQEs are consumed in the creator's context only (their buffers,
//! descriptors and paths are the creator's), which is every boundary
//! while it runs: an application that publishes SQEs and spins on the CQ
//! sees them completed within a tick, without any syscall.
//!
//! `sq_thread_idle` is honoured: when no SQE has been seen for that long
//! the poller "goes to sleep" — it sets IORING_SQ_NEED_WAKEUP in sq_flags
//! and stops consuming — until io_uring_enter(IORING_ENTER_SQ_WAKEUP).
//! As on Linux, the flag is set before a last look at the SQ tail, so an
//! SQE published concurrently is not stranded.

use alloc::sync::Arc;

use super::ring::Ring;
use super::uapi::{ring_off as ro, IORING_SQ_NEED_WAKEUP};
use crate::proc::Process;

/// Linux's default idle time when sq_thread_idle is 0: one second.
const DEFAULT_IDLE_MS: u64 = 1000;

/// The poller's state.
pub struct SqPoll {
    idle_ns: u64,
    last_active: u64,
    sleeping: bool,
}

impl SqPoll {
    /// A poller that idles after `idle_ms` (0: one second).
    pub fn new(idle_ms: u32, now: u64) -> SqPoll {
        let ms = if idle_ms == 0 {
            DEFAULT_IDLE_MS
        } else {
            idle_ms as u64
        };
        SqPoll {
            idle_ns: ms * 1_000_000,
            last_active: now,
            sleeping: false,
        }
    }
}

impl Ring {
    /// One boundary of the torus: consume the SQ if we are in the owner's
    /// context and the poller is awake; go idle after sq_thread_idle.
    pub fn sqpoll_boundary(self: &Arc<Self>, me: Option<&Arc<Process>>) {
        let owner_here = me.is_some_and(|p| core::ptr::eq(Arc::as_ptr(p), self.owner.as_ptr()));
        let now = hal::time::now_ns();
        let work = {
            let mut st = self.state.lock();
            let pending = self.sq_pending(&st);
            let Some(sp) = st.sqpoll.as_mut() else { return };
            if sp.sleeping {
                return;
            }
            if pending > 0 {
                if owner_here {
                    sp.last_active = now;
                }
                owner_here
            } else if now.wrapping_sub(sp.last_active) > sp.idle_ns {
                sp.sleeping = true;
                self.set_sq_flags(&mut st, IORING_SQ_NEED_WAKEUP, 0);
                // The last look (Linux: smp_mb, then re-read the tail).
                core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
                if self.rings.load(ro::SQ_TAIL) != st.sq_head {
                    if let Some(sp) = st.sqpoll.as_mut() {
                        sp.sleeping = false;
                        sp.last_active = now;
                    }
                    self.set_sq_flags(&mut st, 0, IORING_SQ_NEED_WAKEUP);
                    owner_here
                } else {
                    false
                }
            } else {
                false
            }
        };
        if work {
            self.submit(u32::MAX);
            let mut st = self.state.lock();
            self.flush_overflow(&mut st);
        }
    }

    /// IORING_ENTER_SQ_WAKEUP: the poller wakes (and, in the owner's
    /// context, consumes the SQ at once).
    pub fn sqpoll_wakeup(&self) {
        let now = hal::time::now_ns();
        let mut st = self.state.lock();
        if let Some(sp) = st.sqpoll.as_mut() {
            sp.sleeping = false;
            sp.last_active = now;
        }
        self.set_sq_flags(&mut st, 0, IORING_SQ_NEED_WAKEUP);
    }

    /// Whether the SQPOLL owner still exists (Linux: EOWNERDEAD when the
    /// SQ thread is gone).
    pub fn sqpoll_owner_alive(&self) -> bool {
        self.owner.upgrade().is_some_and(|p| !p.is_zombie())
    }
}
