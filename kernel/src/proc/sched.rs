//! The scheduler of one torus (one CPU for now): a run queue of runnable
//! processes, round-robin with a time slice, wake-ups and wait queues.
//!
//! There is no scheduler thread: a process gives up the CPU by calling
//! [`schedule`] (blocking, exiting, yielding, or at the end of its time
//! slice on the way back to user mode). The per-torus EEVDF event queue of
//! DESIGN.md replaces this FIFO in the "tori on CPUs" milestone.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use super::{Process, RunState};

/// Timer ticks in one time slice.
const SLICE_TICKS: u64 = 10;

static RUNQ: Mutex<VecDeque<Arc<Process>>> = Mutex::new(VecDeque::new());
static CURRENT: hal::current::CpuCurrent<Process> = hal::current::CpuCurrent::new();
/// Saved kernel RSP of the idle context (the boot stack).
static IDLE_RSP: AtomicU64 = AtomicU64::new(0);
static SLICE_START: AtomicU64 = AtomicU64::new(0);
/// Where an exiting process's final RSP goes (it is never resumed).
static ZOMBIE_SLOT: AtomicU64 = AtomicU64::new(0);
/// Exited processes whose kernel stack we may still be running on: freed
/// at the next switch.
static DEAD: Mutex<Vec<Arc<Process>>> = Mutex::new(Vec::new());

/// The running process (None in the idle loop or during boot).
pub fn try_current() -> Option<Arc<Process>> {
    CURRENT.get()
}

/// Runs `f` on the running process without taking a reference (hot
/// syscalls that read a field). `f` must not block or switch tasks.
pub fn with_current<R>(f: impl FnOnce(&Process) -> R) -> R {
    CURRENT.with(|p| f(p.expect("a process is running")))
}

/// The running process; only called from syscall and fault context.
pub fn current() -> Arc<Process> {
    try_current().expect("a process is running")
}

/// Makes `p` runnable (no-op if it already is or has exited).
pub fn wake(p: &Arc<Process>) {
    hal::cpu::without_interrupts(|| {
        let mut st = p.run.lock();
        if *st == RunState::Sleeping {
            *st = RunState::Runnable;
            drop(st);
            RUNQ.lock().push_back(p.clone());
        }
    });
}

/// Adds a new process to the run queue.
pub fn enqueue_new(p: Arc<Process>) {
    hal::cpu::without_interrupts(|| {
        *p.run.lock() = RunState::Runnable;
        RUNQ.lock().push_back(p);
    });
}

/// Called by the timer interrupt.
pub fn on_tick(ticks: u64) {
    if ticks.wrapping_sub(SLICE_START.load(Ordering::Relaxed)) >= SLICE_TICKS {
        super::work::raise(super::work::RESCHED);
    }
}

/// On the way back to user mode: switch if the slice is used up.
pub fn preempt_point() {
    if super::work::pending() & super::work::RESCHED != 0 {
        schedule();
    }
}

/// Gives the CPU to the next runnable process. The caller's run state
/// decides what happens to it: Running → requeued; Sleeping → stays off
/// the queue until woken; Zombie → never runs again.
pub fn schedule() {
    hal::cpu::without_interrupts(|| {
        super::work::take(super::work::RESCHED);
        SLICE_START.store(crate::trap::ticks(), Ordering::Relaxed);
        // Reap the stacks of processes that exited earlier and that
        // nobody else references any more (we are not running on them).
        let mut dead = DEAD.lock();
        if !dead.is_empty() {
            dead.retain(|p| Arc::strong_count(p) > 1);
        }
        drop(dead);
        let mut prev = CURRENT.replace(None);
        if let Some(p) = &prev {
            let mut st = p.run.lock();
            if *st == RunState::Running {
                *st = RunState::Runnable;
                drop(st);
                RUNQ.lock().push_back(p.clone());
            }
        }
        let next = RUNQ.lock().pop_front();
        if let (Some(p), Some(n)) = (&prev, &next) {
            if Arc::ptr_eq(p, n) {
                *n.run.lock() = RunState::Running;
                CURRENT.replace(next);
                return;
            }
        }
        if prev.is_none() && next.is_none() {
            return;
        }
        if let Some(p) = &prev {
            p.save_user_tls();
        }
        // An exiting process never resumes: park its Arc in DEAD (so its
        // stack lives until we are off it) and save its RSP nowhere useful.
        let exiting = prev.as_ref().is_some_and(|p| p.is_zombie());
        if exiting {
            DEAD.lock().extend(prev.take());
        }
        let target = match next {
            Some(n) => {
                *n.run.lock() = RunState::Running;
                n.install_on_cpu();
                // Signals posted while it was off the CPU wait for it.
                if n.sig.lock().pending != 0 {
                    super::work::raise(super::work::SIGNALS);
                }
                let t = n.ctx.load(Ordering::Relaxed);
                CURRENT.replace(Some(n));
                t
            }
            None => IDLE_RSP.load(Ordering::Relaxed),
        };
        let save: &AtomicU64 = match &prev {
            Some(p) => &p.ctx,
            None if exiting => &ZOMBIE_SLOT,
            None => &IDLE_RSP,
        };
        hal::context::switch(save, target);
    });
}

/// The idle loop: runs on the boot stack whenever nothing is runnable.
pub fn idle_loop() -> ! {
    loop {
        crate::trap::deferred_work();
        let has_work = hal::cpu::without_interrupts(|| !RUNQ.lock().is_empty());
        if has_work {
            schedule();
        } else {
            hal::cpu::wait_for_interrupt();
        }
    }
}

/// Number of runnable processes waiting (for /proc and the load figure).
pub fn runnable() -> usize {
    hal::cpu::without_interrupts(|| RUNQ.lock().len())
}

/// Processes waiting for something; woken all at once (they re-check).
#[derive(Default)]
pub struct WaitQueue {
    /// Kept (with its capacity) across waits: blocking must not allocate.
    waiters: Mutex<VecDeque<Arc<Process>>>,
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> WaitQueue {
        WaitQueue {
            waiters: Mutex::new(VecDeque::new()),
        }
    }

    /// Wakes every waiter.
    pub fn wake_all(&self) {
        // One at a time, so the queue keeps its buffer and the lock is not
        // held while waking (wake takes the run queue's lock).
        while let Some(w) = hal::cpu::without_interrupts(|| self.waiters.lock().pop_front()) {
            wake(&w);
        }
    }

    /// Blocks the current process until `ready()` returns Some, or a signal
    /// arrives (EINTR). `ready` runs with interrupts disabled, so a wake-up
    /// between the check and the sleep cannot be lost.
    pub fn wait_until<T>(&self, mut ready: impl FnMut() -> Option<T>) -> abi::KResult<T> {
        let me = current();
        loop {
            let got = hal::cpu::without_interrupts(|| {
                if let Some(v) = ready() {
                    return Some(v);
                }
                *me.run.lock() = RunState::Sleeping;
                self.waiters.lock().push_back(me.clone());
                None
            });
            if let Some(v) = got {
                return Ok(v);
            }
            if me.has_deliverable_signal() {
                hal::cpu::without_interrupts(|| {
                    *me.run.lock() = RunState::Running;
                    // We may still be registered; a later wake is harmless.
                });
                return Err(abi::Errno::EINTR);
            }
            schedule();
            if me.has_deliverable_signal() {
                if let Some(v) = hal::cpu::without_interrupts(&mut ready) {
                    return Ok(v);
                }
                return Err(abi::Errno::EINTR);
            }
        }
    }
}
