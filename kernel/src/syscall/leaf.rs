//! Leaf syscalls: the ones answered from the running process's own fields,
//! on hal's light path (no frame, no FPU save, interrupts off until the
//! return). What makes them safe there:
//! - nothing here can block, fault, switch tasks or enable interrupts;
//! - no SSE instruction is generated in this code, checked on the kernel
//!   binary by `cargo xtask test` (kernel_isa: the code reachable from
//!   [`answer`] uses no XMM register), because the user's XMM registers
//!   are still live;
//! - what a return to user mode must check is still checked: pending work
//!   on this CPU (signals, preemption, deferred work) and io_uring rings
//!   waiting for a syscall boundary send the call to the full handler, and
//!   anything raised meanwhile arrives as an interrupt, taken in user mode
//!   right after sysret (IF comes back with RFLAGS), whose return runs the
//!   full checks.
//!
//! Anything not answered here (a thread asking for its parent, which needs
//! the leader's record) goes to the full handler with the same registers.

use hal::syscall::LeafResult;
use linux_raw_sys::general as nr;

/// The numbers [`answer`] handles.
pub const NUMBERS: &[u32] = &[nr::__NR_getpid, nr::__NR_gettid, nr::__NR_getppid];

/// hal's leaf handler.
pub extern "C" fn answer(n: u64) -> LeafResult {
    if crate::proc::work::pending() != 0 || crate::io_uring::boundary_pending() {
        return LeafResult::full(n);
    }
    let value = crate::proc::sched::with_current_leaf(|p| match n as u32 {
        nr::__NR_getpid => Some(p.tgid),
        nr::__NR_gettid => Some(p.pid),
        nr::__NR_getppid if p.is_leader() => Some(p.own_ppid()),
        _ => None,
    });
    match value {
        Some(v) => LeafResult::done(v as u64),
        None => LeafResult::full(n),
    }
}
