//! Work owed before a return to user mode, as bits in one word, so the
//! common case (a syscall with nothing pending) leaves after one load.
//!
//! Every event that may make such work necessary sets its bit: the timer
//! (`DEFERRED` each tick: sleepers and pollers to wake; `RESCHED` when the
//! slice is used up), the console interrupt (`DEFERRED`), anything that can
//! make a signal deliverable to the current process (`SIGNALS`: a signal
//! posted to any process, a mask change, a switch to another process). The
//! return path clears a bit before doing its work, so an event that comes
//! during the work sets it again and is seen on the next pass.
//!
//! One word for the one CPU that runs processes today; with a torus per
//! CPU (issue 6) it becomes a per-CPU word, and a poster targeting a
//! process on another CPU sets that CPU's word and sends an IPI.

use core::sync::atomic::{AtomicU32, Ordering};

/// The scheduler wants the CPU back (slice used up).
pub const RESCHED: u32 = 1 << 0;
/// Interrupt work to finish (`trap::deferred_work`).
pub const DEFERRED: u32 = 1 << 1;
/// A signal may be deliverable to the current process.
pub const SIGNALS: u32 = 1 << 2;

static WORK: AtomicU32 = AtomicU32::new(SIGNALS);

/// Asks for `bits` to be done before the next return to user mode.
#[inline]
pub fn raise(bits: u32) {
    WORK.fetch_or(bits, Ordering::Relaxed);
}

/// The bits set now.
#[inline]
pub fn pending() -> u32 {
    WORK.load(Ordering::Relaxed)
}

/// Clears `bits`; whether any of them was set.
#[inline]
pub fn take(bits: u32) -> bool {
    WORK.fetch_and(!bits, Ordering::Relaxed) & bits != 0
}
