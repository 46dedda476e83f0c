//! Requests that do not complete when submitted: POLL_ADD on a file that
//! is not ready, TIMEOUT, and reads or writes that would block (a pipe
//! with nothing to read: the request waits for readiness and is retried,
//! Linux's IORING_FEAT_FAST_POLL).
//!
//! They are events the torus re-examines at its boundaries (every syscall
//! entry, every timer tick's deferred work — on the way back to user mode
//! or in the idle loop — and the loop of a process waiting in
//! io_uring_enter, which pipe and tty changes wake). Polls and timeouts
//! need nothing from a process, so any boundary completes them; a retried
//! read or write copies to or from the submitter's memory, so only a
//! boundary in that process's context runs it.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use super::ring::{Outcome, Ring};
use super::uapi::{Cqe, Sqe};
use crate::fs::file::{OpenFile, POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::proc::Process;

/// What a pending request waits for.
pub enum PendingKind {
    /// IORING_OP_POLL_ADD: completes with the ready events.
    Poll { file: Arc<OpenFile>, events: u16 },
    /// IORING_OP_TIMEOUT: -ETIME at `deadline` (monotonic ns), or 0 once
    /// `target` completions have been posted.
    Timeout {
        deadline: Option<u64>,
        target: Option<u64>,
    },
    /// A read or write that would have blocked: retried when `file` is
    /// ready, in the submitter's context.
    Retry {
        sqe: Sqe,
        file: Arc<OpenFile>,
        write: bool,
        submitter: Weak<Process>,
    },
}

/// One request in flight.
pub struct Pending {
    pub user_data: u64,
    /// IOSQE_CQE_SKIP_SUCCESS.
    pub skip_success: bool,
    pub kind: PendingKind,
}

impl Pending {
    /// Its completion with result `res`.
    pub fn cqe(&self, res: i32) -> Cqe {
        Cqe {
            user_data: self.user_data,
            res,
            flags: 0,
        }
    }
}

fn is(me: Option<&Arc<Process>>, who: &Weak<Process>) -> bool {
    me.is_some_and(|p| core::ptr::eq(Arc::as_ptr(p), who.as_ptr()))
}

impl Ring {
    /// Completes what is ready among the pending requests. `me` is the
    /// process whose context we are in (None in the idle loop). Returns
    /// whether anything completed.
    pub fn run_pending(self: &Arc<Self>, me: Option<&Arc<Process>>) -> bool {
        let list = {
            let mut st = self.state.lock();
            if st.pending.is_empty() {
                return false;
            }
            core::mem::take(&mut st.pending)
        };
        let now = hal::time::now_ns();
        let mut keep: Vec<Pending> = Vec::new();
        // (request, result, is a timeout)
        let mut done: Vec<(Pending, i32, bool)> = Vec::new();
        let mut poke = false;
        for p in list {
            match &p.kind {
                PendingKind::Poll { file, events } => {
                    let m = file.poll() & (events | POLLERR | POLLHUP);
                    if m != 0 {
                        done.push((p, m as i32, false));
                    } else {
                        keep.push(p);
                    }
                }
                PendingKind::Timeout { deadline, .. } => {
                    if deadline.is_some_and(|d| now >= d) {
                        done.push((p, -(super::ETIME as i32), true));
                    } else {
                        keep.push(p);
                    }
                }
                PendingKind::Retry {
                    sqe,
                    file,
                    write,
                    submitter,
                } => {
                    let want = if *write {
                        POLLOUT | POLLERR
                    } else {
                        POLLIN | POLLHUP | POLLERR
                    };
                    let ready = file.poll() & want != 0;
                    if !is(me, submitter) || !ready {
                        // Ready, but only its submitter may issue it (its
                        // buffers are in its memory): make sure it looks,
                        // it may be asleep in io_uring_enter having missed
                        // the list while we held it.
                        poke |= ready;
                        keep.push(p);
                        continue;
                    }
                    let sqe = *sqe;
                    match super::ops::issue(self, &sqe) {
                        Outcome::Done(r) | Outcome::Failed(r) => done.push((p, r, false)),
                        Outcome::Pending(kind) => keep.push(Pending { kind, ..p }),
                    }
                }
            }
        }
        let any = !done.is_empty();
        let mut st = self.state.lock();
        // Requests added while we worked (by an operation we ran) follow.
        keep.append(&mut st.pending);
        st.pending = keep;
        for (p, res, is_timeout) in done {
            if res >= 0 && p.skip_success {
                continue;
            }
            let c = p.cqe(res);
            self.post(&mut st, c, is_timeout);
        }
        let still_pending = !st.pending.is_empty();
        drop(st);
        // While the list was out of the state, a boundary on another CPU
        // may have found none pending and dropped the ring from the
        // boundary list: put it back, or what is left waits forever (a
        // waiter in io_uring_enter sleeps until a boundary completes it).
        if still_pending {
            super::register_active(self);
        }
        if poke {
            crate::fs::POLL_WQ.wake_all();
        }
        any
    }
}
