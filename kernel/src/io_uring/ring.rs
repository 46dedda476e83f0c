//! One io_uring instance: the shared SQ/CQ rings and SQE array, and the
//! kernel's private state (cached head/tail, the CQ overflow list, the
//! requests still in flight, registered files, SQPOLL state).
//!
//! Ownership of the shared words follows Linux: the application writes
//! the SQ tail, the SQ index array, the SQEs and the CQ head; the kernel
//! writes the SQ head, the CQ tail, the CQEs, sq_flags, sq_dropped and
//! cq_overflow. The kernel keeps its own copy of what it writes and never
//! trusts the shared value of it; what the application writes is clamped
//! (a bogus CQ head or SQ tail cannot make the kernel overrun a ring).
//!
//! Locking: `state` is never held while an operation runs (operations
//! touch files, user memory and may post completions themselves), except
//! NOP (`ops::runs_under_state_lock`), which touches nothing: a batch of
//! NOPs is consumed under one lock, its CQEs written straight into the
//! CQ slots, the SQ head and CQ tail published once (see `submit`).
//! `state` holds the kernel's copies of SQ head and CQ tail, which may be
//! ahead of the shared words only while it is locked.

use abi::{Errno, KResult};
use alloc::collections::VecDeque;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicBool, AtomicU64};
use spin::Mutex;

use super::mem::SharedMem;
use super::pending::{Pending, PendingKind};
use super::sqpoll::SqPoll;
use super::uapi::{ring_off as ro, Cqe, Params, Sqe, CQE_SIZE, SQE_SIZE};
use super::uapi::{sqe_flags, IORING_SETUP_R_DISABLED, IORING_SETUP_SUBMIT_ALL};
use super::uapi::{IORING_SETUP_SQPOLL, IORING_SQ_CQ_OVERFLOW};
use crate::fs::file::OpenFile;
use crate::mm::PAGE as PAGE_U64;
use crate::proc::Process;

/// Most completions kept in the overflow list while the CQ ring is full.
/// Linux keeps them until memory runs out (and then drops, counting them
/// in cq_overflow); a bound here keeps a process that never reaps from
/// exhausting the kernel heap. Past it, completions are dropped the same
/// way: cq_overflow counts them and the next wait returns EBADR.
pub const OVERFLOW_CAP: usize = 1 << 16;

const PAGE: usize = PAGE_U64 as usize;

/// What became of one SQE.
pub enum Outcome {
    /// Completed now with this result.
    Done(i32),
    /// Completes later (poll, timeout, a read that would block).
    Pending(PendingKind),
    /// Rejected while being prepared (unknown opcode, bad fields): a CQE
    /// with this error, and submission stops here unless SUBMIT_ALL.
    Failed(i32),
}

pub(super) struct State {
    /// Next SQ entry to consume (the shared SQ head).
    pub sq_head: u32,
    /// Next CQE slot to fill (the shared CQ tail).
    pub cq_tail: u32,
    pub sq_flags: u32,
    pub sq_dropped: u32,
    pub cq_overflow: u32,
    /// Completions waiting for room in the CQ ring, in order.
    pub overflow: VecDeque<Cqe>,
    /// Completions were dropped since the last EBADR.
    pub dropped_cqes: bool,
    /// Requests in flight.
    pub pending: Vec<Pending>,
    /// Completions posted (not counting timeouts), for TIMEOUT's count.
    pub completions: u64,
    /// IORING_REGISTER_FILES table.
    pub files: Option<Vec<Option<Arc<OpenFile>>>>,
    pub sqpoll: Option<SqPoll>,
}

/// An io_uring instance (what the ring fd's open file points at).
pub struct Ring {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub setup_flags: u32,
    /// Offset of the SQ index array in `rings`.
    pub sq_array: usize,
    /// SQ ring + CQ ring (one region: IORING_FEAT_SINGLE_MMAP).
    pub rings: SharedMem,
    /// The SQE array.
    pub sqes: SharedMem,
    pub(super) state: Mutex<State>,
    /// False while IORING_SETUP_R_DISABLED holds (outside `state`: every
    /// io_uring_enter looks at it).
    pub(super) enabled: AtomicBool,
    /// The process that created the ring: SQPOLL submits in its context.
    pub owner: Weak<Process>,
}

impl Ring {
    /// Allocates and initialises the rings for checked parameters.
    pub fn new(p: &Params, torus: usize, owner: Weak<Process>, now: u64) -> KResult<Ring> {
        let sq_array = ro::sq_array(p.cq_entries);
        let ring_bytes = sq_array + p.sq_entries as usize * 4;
        let rings = SharedMem::new(ring_bytes, torus)?;
        let sqes = SharedMem::new(p.sq_entries as usize * SQE_SIZE, torus)?;
        rings.store(ro::SQ_RING_MASK, p.sq_entries - 1);
        rings.store(ro::CQ_RING_MASK, p.cq_entries - 1);
        rings.store(ro::SQ_RING_ENTRIES, p.sq_entries);
        rings.store(ro::CQ_RING_ENTRIES, p.cq_entries);
        let sqpoll =
            (p.flags & IORING_SETUP_SQPOLL != 0).then(|| SqPoll::new(p.sq_thread_idle, now));
        Ok(Ring {
            sq_entries: p.sq_entries,
            cq_entries: p.cq_entries,
            setup_flags: p.flags,
            sq_array,
            rings,
            sqes,
            state: Mutex::new(State {
                sq_head: 0,
                cq_tail: 0,
                sq_flags: 0,
                sq_dropped: 0,
                cq_overflow: 0,
                overflow: VecDeque::new(),
                dropped_cqes: false,
                pending: Vec::new(),
                completions: 0,
                files: None,
                sqpoll,
            }),
            enabled: AtomicBool::new(p.flags & IORING_SETUP_R_DISABLED == 0),
            owner,
        })
    }

    /// Whether the ring was set up with IORING_SETUP_SQPOLL.
    pub fn is_sqpoll(&self) -> bool {
        self.setup_flags & IORING_SETUP_SQPOLL != 0
    }

    /// SQ entries the application has published and we have not consumed.
    pub(super) fn sq_pending(&self, st: &State) -> u32 {
        let tail = self.rings.load(ro::SQ_TAIL);
        tail.wrapping_sub(st.sq_head).min(self.sq_entries)
    }

    /// CQEs in the CQ ring not yet consumed by the application.
    pub(super) fn cq_ready(&self, st: &State) -> u32 {
        let head = self.rings.load(ro::CQ_HEAD);
        st.cq_tail.wrapping_sub(head).min(self.cq_entries)
    }

    /// Whether `min` CQEs are in the CQ ring and nothing could add to
    /// them first (no pending request, no overflow, no SQ poller): what
    /// a wait finds on its first look, without the work of one.
    pub(super) fn cq_ready_now(&self, min: u32) -> bool {
        if self.is_sqpoll() {
            return false;
        }
        let st = self.state.lock();
        st.pending.is_empty() && st.overflow.is_empty() && self.cq_ready(&st) >= min
    }

    pub(super) fn set_sq_flags(&self, st: &mut State, set: u32, clear: u32) {
        let f = (st.sq_flags | set) & !clear;
        if f != st.sq_flags {
            st.sq_flags = f;
            self.rings.store(ro::SQ_FLAGS, f);
        }
    }

    /// The two u64 words of the CQE slot for position `pos` of the CQ.
    fn cqe_slot(&self, pos: u32) -> Option<&[AtomicU64]> {
        let off = ro::CQES + (pos & (self.cq_entries - 1)) as usize * CQE_SIZE;
        let f = self.rings.words64(off / PAGE)?;
        let w = (off % PAGE) / 8;
        f.get(w..w + 2)
    }

    fn write_cqe(&self, st: &mut State, c: &Cqe) {
        if let Some(slot) = self.cqe_slot(st.cq_tail) {
            let [a, b] = c.words();
            slot[0].store(a, Relaxed);
            slot[1].store(b, Relaxed);
        }
        st.cq_tail = st.cq_tail.wrapping_add(1);
        self.rings.store(ro::CQ_TAIL, st.cq_tail);
    }

    /// Room in the CQ ring for new completions (none while older ones
    /// wait in the overflow list).
    pub(super) fn cq_room(&self, st: &State) -> u32 {
        if st.overflow.is_empty() {
            self.cq_entries - self.cq_ready(st)
        } else {
            0
        }
    }

    /// Makes the SQ head and CQ tail the kernel has moved visible to the
    /// application (release: the CQEs written before are visible first).
    /// Done before the state lock is dropped, so the shared values are
    /// never behind while anyone else can look.
    fn publish(&self, st: &State) {
        self.rings.store(ro::SQ_HEAD, st.sq_head);
        self.rings.store(ro::CQ_TAIL, st.cq_tail);
    }

    /// Posts one completion: into the CQ ring if there is room and nothing
    /// older is waiting in the overflow list, else into that list
    /// (IORING_FEAT_NODROP), else dropped and counted.
    fn post_one(&self, st: &mut State, c: Cqe) {
        if st.overflow.is_empty() && self.cq_ready(st) < self.cq_entries {
            self.write_cqe(st, &c);
        } else if st.overflow.len() < OVERFLOW_CAP && st.overflow.try_reserve(1).is_ok() {
            st.overflow.push_back(c);
            self.set_sq_flags(st, IORING_SQ_CQ_OVERFLOW, 0);
        } else {
            st.cq_overflow = st.cq_overflow.wrapping_add(1);
            self.rings.store(ro::CQ_OVERFLOW, st.cq_overflow);
            st.dropped_cqes = true;
        }
    }

    /// Posts a completion; counts it for TIMEOUTs waiting on a number of
    /// completions and completes those whose count is reached (res 0).
    pub(super) fn post(&self, st: &mut State, c: Cqe, is_timeout: bool) {
        self.post_one(st, c);
        if is_timeout {
            return;
        }
        st.completions += 1;
        let done = st.completions;
        let mut i = 0;
        while i < st.pending.len() {
            let hit = matches!(st.pending[i].kind,
                PendingKind::Timeout { target: Some(t), .. } if t <= done);
            if hit {
                let p = st.pending.remove(i);
                if !p.skip_success {
                    self.post_one(st, p.cqe(0));
                }
            } else {
                i += 1;
            }
        }
    }

    /// Moves overflowed completions into the CQ ring while there is room.
    pub(super) fn flush_overflow(&self, st: &mut State) {
        while !st.overflow.is_empty() && self.cq_ready(st) < self.cq_entries {
            if let Some(c) = st.overflow.pop_front() {
                self.write_cqe(st, &c);
            }
        }
        if st.overflow.is_empty() {
            self.set_sq_flags(st, 0, IORING_SQ_CQ_OVERFLOW);
        }
    }

    /// The SQE in slot `idx` of the SQE array, as eight shared words
    /// (None if there is no such slot).
    fn sqe_words(&self, idx: u32) -> Option<&[AtomicU64; 8]> {
        if idx >= self.sq_entries {
            return None;
        }
        const PER_FRAME: usize = PAGE / SQE_SIZE;
        let f = self.sqes.words64(idx as usize / PER_FRAME)?;
        f.as_chunks::<8>().0.get(idx as usize % PER_FRAME)
    }

    /// Takes the next SQE off the SQ ring (the caller has checked there
    /// is one); the SQ head moves in `st` and is published later. None:
    /// the index array named a slot that does not exist (the entry is
    /// consumed and counted in sq_dropped, as on Linux).
    fn take_sqe(&self, st: &mut State) -> Option<Sqe> {
        let pos = (st.sq_head & (self.sq_entries - 1)) as usize;
        let idx = self.rings.load(self.sq_array + 4 * pos);
        st.sq_head = st.sq_head.wrapping_add(1);
        match self.sqe_words(idx) {
            Some(w) => Some(Sqe::from_words(w)),
            None => {
                st.sq_dropped = st.sq_dropped.wrapping_add(1);
                self.rings.store(ro::SQ_DROPPED, st.sq_dropped);
                None
            }
        }
    }

    /// Whether completions may go straight into the CQ ring without
    /// [`Ring::post`]: nothing waits in the overflow list (newer CQEs go
    /// behind it) and no TIMEOUT counts completions (it must complete
    /// right after the one that reaches its count).
    pub(super) fn direct_cq_ok(&self, st: &State) -> bool {
        st.overflow.is_empty()
            && !st.pending.iter().any(|p| {
                matches!(
                    p.kind,
                    PendingKind::Timeout {
                        target: Some(_),
                        ..
                    }
                )
            })
    }

    /// Consumes and runs up to `to_submit` SQEs in the current process's
    /// context; returns how many were consumed. Each SQE is one event of
    /// the torus: it runs to completion here, or becomes a pending request
    /// that later boundaries complete.
    ///
    /// Batch-oriented: the state lock is held across runs of NOPs (which
    /// go through [`Ring::nop_run`] or, for the odd one, ops::issue under
    /// the lock: a NOP touches nothing), and the SQ head and CQ tail are
    /// published once per run. Every other operation runs with the lock
    /// dropped (it may take it, post CQEs, cancel) after everything so far
    /// is published, and goes through the general [`Ring::complete`].
    pub fn submit(self: &Arc<Self>, to_submit: u32) -> u32 {
        let mut done = 0;
        let mut st = self.state.lock();
        while done < to_submit {
            let n = self.sq_pending(&st).min(to_submit - done);
            if n == 0 {
                break;
            }
            if self.direct_cq_ok(&st) {
                let k = self.nop_run(&mut st, n);
                done += k;
                if k == n {
                    continue;
                }
            }
            let Some(sqe) = self.take_sqe(&mut st) else {
                break;
            };
            done += 1;
            let stop = if super::ops::runs_under_state_lock(sqe.opcode) {
                let outcome = super::ops::issue(self, &sqe);
                let stop = self.stops(&outcome);
                match outcome {
                    Outcome::Done(res) | Outcome::Failed(res) => {
                        self.post_result(&mut st, &sqe, res)
                    }
                    Outcome::Pending(kind) => {
                        // Not for such an op; handled all the same.
                        self.publish(&st);
                        drop(st);
                        self.complete(&sqe, Outcome::Pending(kind));
                        st = self.state.lock();
                    }
                }
                stop
            } else {
                self.publish(&st);
                drop(st);
                let outcome = super::ops::issue(self, &sqe);
                let stop = self.stops(&outcome);
                self.complete(&sqe, outcome);
                st = self.state.lock();
                stop
            };
            if stop {
                break;
            }
        }
        self.publish(&st);
        drop(st);
        super::EVENTS.fetch_add(done as u64, Relaxed);
        done
    }

    /// Whether submission stops after an SQE with this outcome (a prep
    /// failure, unless IORING_SETUP_SUBMIT_ALL).
    fn stops(&self, outcome: &Outcome) -> bool {
        matches!(outcome, Outcome::Failed(_)) && self.setup_flags & IORING_SETUP_SUBMIT_ALL == 0
    }

    /// Posts the CQE of an SQE that completed with `res` (none for a
    /// success under IOSQE_CQE_SKIP_SUCCESS).
    fn post_result(&self, st: &mut State, sqe: &Sqe, res: i32) {
        if res < 0 || sqe.flags & sqe_flags::CQE_SKIP_SUCCESS == 0 {
            let c = Cqe {
                user_data: sqe.user_data,
                res,
                flags: 0,
            };
            self.post(st, c, false);
        }
    }

    /// Records what became of an SQE: a CQE now, or a pending request.
    pub(super) fn complete(self: &Arc<Self>, sqe: &Sqe, outcome: Outcome) {
        let skip_ok = sqe.flags & sqe_flags::CQE_SKIP_SUCCESS != 0;
        match outcome {
            Outcome::Done(res) | Outcome::Failed(res) => {
                if res < 0 || !skip_ok {
                    self.post_result(&mut self.state.lock(), sqe, res);
                }
            }
            Outcome::Pending(kind) => {
                self.state.lock().pending.push(Pending {
                    user_data: sqe.user_data,
                    skip_success: skip_ok,
                    kind,
                });
                super::register_active(self);
            }
        }
    }

    /// Cancels pending requests matching `pred` with -ECANCELED; returns
    /// how many.
    pub(super) fn cancel(&self, mut pred: impl FnMut(&Pending) -> bool) -> usize {
        let mut st = self.state.lock();
        let (hit, keep): (Vec<Pending>, Vec<Pending>) = core::mem::take(&mut st.pending)
            .into_iter()
            .partition(|p| pred(p));
        st.pending = keep;
        for p in &hit {
            let c = p.cqe(-(Errno::ECANCELED.0 as i32));
            let is_timeout = matches!(p.kind, PendingKind::Timeout { .. });
            self.post(&mut st, c, is_timeout);
        }
        hit.len()
    }

    /// Whether boundaries have anything to do for this ring.
    pub(super) fn needs_boundaries(&self) -> bool {
        self.is_sqpoll() || !self.state.lock().pending.is_empty()
    }

    /// poll(2) on the ring fd: readable when CQEs are waiting, writable
    /// when the SQ ring has room.
    pub fn poll_events(&self) -> u16 {
        use crate::fs::file::{POLLIN, POLLOUT};
        let st = self.state.lock();
        let mut ev = 0;
        if self.cq_ready(&st) > 0 || !st.overflow.is_empty() {
            ev |= POLLIN;
        }
        let tail = self.rings.load(ro::SQ_TAIL);
        if tail.wrapping_sub(st.sq_head) < self.sq_entries {
            ev |= POLLOUT;
        }
        ev
    }

    /// The frames to map for an mmap of the ring fd at `off` (one of the
    /// IORING_OFF_* values) and `len` bytes.
    pub fn mmap_frames(&self, off: u64, len: u64) -> KResult<Vec<u64>> {
        use super::uapi::{IORING_OFF_CQ_RING, IORING_OFF_SQES, IORING_OFF_SQ_RING};
        // Linux looks at the region bits only (IORING_OFF_MMAP_MASK) and
        // maps the region from its start.
        let region = match off & 0xf800_0000 {
            o if o == IORING_OFF_SQ_RING as u64 || o == IORING_OFF_CQ_RING as u64 => &self.rings,
            o if o == IORING_OFF_SQES as u64 => &self.sqes,
            _ => return Err(Errno::EINVAL),
        };
        if off > u32::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        if len > region.len() as u64 {
            return Err(Errno::EINVAL);
        }
        let pages = len.div_ceil(crate::mm::PAGE) as usize;
        Ok(region.frames()[..pages].to_vec())
    }
}
