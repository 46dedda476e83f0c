//! Fault injection for tests: delays at named points in the kernel, to
//! make a narrow race wide enough for a test to hit it every time (as
//! Linux's fault-injection knobs do for its error paths).
//!
//! Set on the kernel command line, off (0) by default:
//! `inject.reparent_us=N` spins N µs in an exiting process's hand-over
//! of its children to init, between the two steps whose order keeps init
//! from sleeping through an orphan's exit (proc::exit).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::cmdline;

/// A place where a delay can be injected.
#[derive(Clone, Copy)]
pub enum Point {
    Reparent,
}

static DELAY_US: [AtomicU64; 1] = [AtomicU64::new(0)];

/// Reads the delays from the command line.
pub fn init(cmd: &str) {
    if let Some(us) = cmdline::get(cmd, "inject.reparent_us").and_then(|v| v.parse().ok()) {
        DELAY_US[Point::Reparent as usize].store(us, Ordering::Relaxed);
    }
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
