//! Fault injection for tests: delays at named points in the kernel, to
//! make a narrow race wide enough for a test to hit it every time (as
//! Linux's fault-injection knobs do for its error paths).
//!
//! Set on the kernel command line, off (0) by default:
//! `inject.reparent_us=N` spins N µs in an exiting process's hand-over
//! of its children to init, between the two steps whose order keeps init
//! from sleeping through an orphan's exit (proc::exit).
//! `inject.heap_hold_us=N` keeps the heap lock N µs longer at every
//! allocation, and `inject.runq_grow=1` makes every enqueue allocate
//! under its run-queue lock (the queue's spare room is given back first):
//! together they make the timer meet a held heap lock while another CPU
//! allocates under a run-queue lock, all the time, not once in a while
//! (the deadlock `hal::heap`'s lock rule prevents).
//! `inject.create_us=N` spins N µs in open(O_CREAT) on a mounted file
//! system between finding the name missing and creating it, where
//! another process can create it first (syscall::fs::open_in_mount).
//! `inject.requeue_us=N` spins N µs in a CPU's switch between queueing
//! the process it ran and picking the next, where a signal sent to that
//! process finds it neither running nor waiting (proc::sched::switch_away).
//! `inject.mm_release_us=N` spins N µs in an exiting process's release of
//! its address space, after the process stops holding it and before its
//! reference goes (mm::release_on_exit), so two CLONE_VM sharers exiting
//! together both hold theirs there: where the old exit, having failed
//! `Arc::try_unwrap`, took the other for the last user, and neither freed
//! the space.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::cmdline;

/// A place where a delay can be injected.
#[derive(Clone, Copy)]
pub enum Point {
    Reparent,
    Create,
    Requeue,
    MmRelease,
}

static DELAY_US: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];
static RUNQ_GROW: AtomicBool = AtomicBool::new(false);

/// Reads the delays from the command line.
pub fn init(cmd: &str) {
    for (key, p) in [
        ("inject.reparent_us", Point::Reparent),
        ("inject.create_us", Point::Create),
        ("inject.requeue_us", Point::Requeue),
        ("inject.mm_release_us", Point::MmRelease),
    ] {
        if let Some(us) = cmdline::get(cmd, key).and_then(|v| v.parse().ok()) {
            DELAY_US[p as usize].store(us, Ordering::Relaxed);
        }
    }
    if let Some(us) = cmdline::get(cmd, "inject.heap_hold_us").and_then(|v| v.parse::<u64>().ok()) {
        hal::heap::set_hold_ns(us.saturating_mul(1000));
    }
    RUNQ_GROW.store(
        cmdline::get(cmd, "inject.runq_grow") == Some("1"),
        Ordering::Relaxed,
    );
}

/// Whether every enqueue should allocate (`inject.runq_grow=1`).
pub fn runq_grow() -> bool {
    RUNQ_GROW.load(Ordering::Relaxed)
}

/// Spins for the delay configured at `p` (nothing when none is).
pub fn delay(p: Point) {
    let us = DELAY_US[p as usize].load(Ordering::Relaxed);
    if us == 0 {
        return;
    }
    let end = hal::time::now_ns() + us * 1000;
    while hal::time::now_ns() < end {
        core::hint::spin_loop();
    }
}
