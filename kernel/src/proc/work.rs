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
//! One word per CPU: the work belongs to whatever that CPU runs next. A
//! poster targeting a process on another CPU sets that CPU's word and
//! sends it an IPI ([`raise_on`]).

use core::sync::atomic::{AtomicU32, Ordering};

use super::cpu;

/// The scheduler wants the CPU back (slice used up).
pub const RESCHED: u32 = 1 << 0;
/// Interrupt work to finish (`trap::deferred_work`).
pub const DEFERRED: u32 = 1 << 1;
/// A signal may be deliverable to the current process.
pub const SIGNALS: u32 = 1 << 2;

/// The word lives in hal's per-CPU area (one GS-relative load away).
#[inline]
fn mine() -> &'static AtomicU32 {
    hal::percpu::work()
}

/// Asks for `bits` to be done before this CPU's next return to user mode.
#[inline]
pub fn raise(bits: u32) {
    mine().fetch_or(bits, Ordering::Relaxed);
}

/// Asks CPU `cpu` for `bits`, and interrupts it so that it sees them now.
pub fn raise_on(cpu: usize, bits: u32) {
    if let Some(w) = hal::percpu::work_of(cpu) {
        w.fetch_or(bits, Ordering::Release);
        cpu::kick(cpu);
    }
}

/// The bits set now on this CPU.
#[inline]
pub fn pending() -> u32 {
    mine().load(Ordering::Relaxed)
}

/// Clears `bits` on this CPU; whether any of them was set.
#[inline]
pub fn take(bits: u32) -> bool {
    mine().fetch_and(!bits, Ordering::Relaxed) & bits != 0
}
