//! `ticker ID LINES [MACHINE]`: a job step of an RSE OS cluster test.
//!
//! Prints `tick ID I SUM` (one write(2) each) every 100 ms for I in
//! 0..LINES, SUM a running checksum of the work done so far, then `tick
//! ID done SUM`. With MACHINE, after line 2 it asks to move there
//! (`move PID MACHINE` to /proc/braid). The harness recomputes the sums:
//! if the process's machine dies and it goes on at home from its last
//! system call, every line must still be there once, in order, with the
//! sum the uninterrupted run gives.

use std::time::Duration;

use crate::say;

/// One step of work: plain computation, run wherever the process is.
/// xtask's cluster scenario has the same function (its oracle).
fn step(sum: u64, id: u64, i: u64) -> u64 {
    let mut h = (sum ^ (id << 32 | i)).wrapping_mul(0x0000_0100_0000_01b3);
    for k in 0..50_000u64 {
        h = h.rotate_left(7) ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    h
}

pub fn run(args: &[String]) -> Result<(), String> {
    let usage = "usage: ticker ID LINES [MACHINE]";
    let id: u64 = args.first().and_then(|a| a.parse().ok()).ok_or(usage)?;
    let lines: u64 = args.get(1).and_then(|a| a.parse().ok()).ok_or(usage)?;
    let to = args.get(2);
    let pid = std::process::id();
    let mut sum = id;
    for i in 0..lines {
        sum = step(sum, id, i);
        say!("tick {id} {i} {sum:016x}");
        if let (2, Some(m)) = (i, to) {
            crate::migrate::ask(&format!("move {pid} {m}"))?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    say!("tick {id} done {sum:016x}");
    Ok(())
}
