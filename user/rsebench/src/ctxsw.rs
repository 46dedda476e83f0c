//! Context switch cost by pipe ping-pong: two processes pass one byte back
//! and forth; every hop is a block and a wake-up, so a round trip is two
//! switches. Pinned: both on CPU 0 (pure switch cost); unpinned: wherever
//! the scheduler puts them (cross-CPU wake-ups on an SMP guest).

use crate::{clock, sys, Outcome, Size};

fn ping_pong(round_trips: u64) -> f64 {
    let (to_child_r, to_child_w) = sys::pipe();
    let (to_parent_r, to_parent_w) = sys::pipe();
    let child = sys::fork(|| {
        // Only the parent may hold the write end, or EOF never comes.
        sys::close(to_child_w);
        sys::close(to_parent_r);
        let mut b = [0u8; 1];
        while sys::read_exact(to_child_r, &mut b) {
            sys::write_all(to_parent_w, &b);
        }
        0
    });
    sys::close(to_child_r);
    sys::close(to_parent_w);
    let mut b = [7u8; 1];
    let ns = clock::per_op(round_trips, |_| {
        sys::write_all(to_child_w, &b);
        if !sys::read_exact(to_parent_r, &mut b) {
            sys::die("ping-pong partner gone");
        }
    });
    sys::close(to_child_w);
    sys::wait(child);
    sys::close(to_parent_r);
    ns / 2.0
}

pub fn pinned(size: Size) -> Outcome {
    if let Err(e) = sys::pin_to_cpu0() {
        return Outcome::Unsupported(format!("sched_setaffinity errno {e}"));
    }
    let ns = ping_pong(size.n(20_000));
    sys::unpin();
    Outcome::NsPerOp(ns)
}

pub fn unpinned(size: Size) -> Outcome {
    Outcome::NsPerOp(ping_pong(size.n(20_000)))
}
