//! Workloads of `cargo xtask bench cluster` (timed by the harness, or by
//! themselves on one machine's clock).
//!
//! - `cluster_work UNITS [MACHINE]`: a fixed amount of computation with
//!   no system call, moved to MACHINE first if given.
//! - `cluster_ballast MIB MACHINE`: touches MIB MiB of heap, then moves
//!   (the kernel logs how long the copy took and how many pages).
//! - `cluster_calls N [MACHINE]`: N getuid calls (served by the home when
//!   away), timed on the clock of the machine the process is on.

use std::time::Instant;

use crate::say;

/// Asks to move this process to machine `m`.
fn ask_move(m: &str) -> Result<(), String> {
    crate::migrate::ask(&format!("move {} {m}", std::process::id()))
}

pub fn work(args: &[String]) -> Result<(), String> {
    let units: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or("usage: cluster_work UNITS [MACHINE]")?;
    if let Some(m) = args.get(1) {
        ask_move(m)?;
    }
    // Timed on the clock of the machine it runs on (after the move).
    let t0 = Instant::now();
    let mut h = 1u64;
    for u in 0..units {
        for k in 0..1_000_000u64 {
            // black_box: the optimiser may not shorten the work.
            h = std::hint::black_box(
                h.rotate_left(7) ^ (k ^ u).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
        }
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    say!("work {units} done {h:016x} compute_ms {ms:.0}");
    Ok(())
}

pub fn ballast(args: &[String]) -> Result<(), String> {
    let usage = "usage: cluster_ballast MIB MACHINE";
    let mib: usize = args.first().and_then(|a| a.parse().ok()).ok_or(usage)?;
    let m = args.get(1).ok_or(usage)?;
    let mut v = vec![0u8; mib << 20];
    for (i, b) in v.iter_mut().enumerate().step_by(4096) {
        *b = i as u8 | 1;
    }
    ask_move(m)?;
    // Away now: the memory came along.
    let sum: u64 = v.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    say!("ballast {mib} MiB moved, sum {sum}");
    std::hint::black_box(&mut v);
    Ok(())
}

pub fn calls(args: &[String]) -> Result<(), String> {
    let n: u32 = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or("usage: cluster_calls N [MACHINE]")?;
    if let Some(m) = args.get(1) {
        ask_move(m)?;
    }
    let t0 = Instant::now();
    for _ in 0..n {
        // SAFETY: getuid has no arguments and cannot fail.
        std::hint::black_box(unsafe { libc::getuid() });
    }
    let us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n.max(1));
    say!("calls {n} us_per_call {us:.1}");
    Ok(())
}
