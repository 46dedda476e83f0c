//! Threads: creating and joining one, a futex ping-pong between two
//! threads (pinned to one CPU: pure switch cost; unpinned: cross-CPU
//! wake-ups), and a mutex four threads fight over. The ping-pong uses raw
//! FUTEX_WAIT/FUTEX_WAKE on one word, as glibc's and Rust's locks do.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::{clock, sys, Outcome, Size};

pub fn create_join(size: Size) -> Outcome {
    let ns = clock::per_op(size.n(2_000), |i| {
        let h = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || i.wrapping_mul(3))
            .unwrap_or_else(|e| sys::die(&format!("thread spawn: {e}")));
        std::hint::black_box(h.join().unwrap_or(0));
    });
    Outcome::NsPerOp(ns)
}

fn futex(w: &AtomicU32, op: i32, val: u32) {
    // SAFETY: a futex call on a word this process owns; no timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            op | libc::FUTEX_PRIVATE_FLAG,
            val,
            0usize,
            0usize,
            0u32,
        );
    }
}

/// Round trips between two threads passing a turn through one futex
/// word (0: the main thread's turn, 1: the partner's, 2: stop); ns per
/// switch (half a round trip).
fn ping_pong(round_trips: u64) -> f64 {
    let turn = Arc::new(AtomicU32::new(0));
    let t = turn.clone();
    let partner = std::thread::spawn(move || loop {
        match t.load(Ordering::Acquire) {
            1 => {
                t.store(0, Ordering::Release);
                futex(&t, libc::FUTEX_WAKE, 1);
            }
            2 => return,
            v => futex(&t, libc::FUTEX_WAIT, v),
        }
    });
    let ns = clock::per_op(round_trips, |_| {
        turn.store(1, Ordering::Release);
        futex(&turn, libc::FUTEX_WAKE, 1);
        while turn.load(Ordering::Acquire) == 1 {
            futex(&turn, libc::FUTEX_WAIT, 1);
        }
    });
    turn.store(2, Ordering::Release);
    futex(&turn, libc::FUTEX_WAKE, 1);
    let _ = partner.join();
    ns / 2.0
}

pub fn futex_pinned(size: Size) -> Outcome {
    // Threads inherit the affinity of the thread that creates them.
    if let Err(e) = sys::pin_to_cpu0() {
        return Outcome::Unsupported(format!("sched_setaffinity errno {e}"));
    }
    let ns = ping_pong(size.n(20_000));
    sys::unpin();
    Outcome::NsPerOp(ns)
}

pub fn futex_unpinned(size: Size) -> Outcome {
    Outcome::NsPerOp(ping_pong(size.n(20_000)))
}

/// Four threads each take a std Mutex and add to the counter; ns per
/// lock/unlock over all threads.
pub fn mutex_contended(size: Size) -> Outcome {
    const THREADS: u64 = 4;
    let per = size.n(50_000);
    let m = Arc::new(Mutex::new(0u64));
    let t0 = clock::now_ns();
    let hs: Vec<_> = (0..THREADS)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..per {
                    if let Ok(mut g) = m.lock() {
                        *g += 1;
                    }
                }
            })
        })
        .collect();
    for h in hs {
        let _ = h.join();
    }
    let ns = (clock::now_ns() - t0) as f64 / (THREADS * per) as f64;
    let total = m.lock().map(|g| *g).unwrap_or(0);
    if total != THREADS * per {
        return Outcome::Unsupported(format!("counter {total}, expected {}", THREADS * per));
    }
    Outcome::NsPerOp(ns)
}
