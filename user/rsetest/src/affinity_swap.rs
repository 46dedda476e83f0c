//! Affinity changes that hand a process to another CPU while it is still
//! switching out: two processes each moving themselves to the other's CPU
//! in a loop (each CPU then picks the other's process while that one's
//! context is still in flight), and a sleeper whose CPU mask is changed
//! before each wake-up. A kernel that lets two CPUs wait for each other's
//! contexts hangs here at once.

use crate::say;
use std::time::{Duration, Instant};

use crate::util::{check, spawn, wait_ok};

fn this_cpu() -> usize {
    // SAFETY: plain call.
    unsafe { libc::sched_getcpu() }.max(0) as usize
}

const RUN_FOR: Duration = Duration::from_secs(3);

pub fn run(_: &[String]) -> Result<(), String> {
    let cpus = crate::util::cpus();
    let (a, b) = (0, 1.min(cpus - 1));
    // Two swappers: each moves itself to whichever of CPUs a, b it is not
    // on, as fast as it can.
    let swappers: Vec<_> = (0..2)
        .map(|_| {
            spawn(move || {
                let t0 = Instant::now();
                let mut moves = 0u64;
                while t0.elapsed() < RUN_FOR {
                    let to = if this_cpu() == a { b } else { a };
                    crate::util::pin(0, to)?;
                    moves += 1;
                }
                check(moves > 0, "no move at all")
            })
        })
        .collect::<Result<_, _>>()?;
    // A sleeper woken onto another CPU each time: the parent changes its
    // mask while it blocks in read, then writes the byte that wakes it.
    let (r, w) = crate::util::pipe()?;
    let (r2, w2) = crate::util::pipe()?;
    let sleeper = spawn(move || loop {
        match crate::util::read_byte(r) {
            Some(b'q') | None => return Ok(()),
            Some(_) => crate::util::write_all(w2, b"k"),
        }
    })?;
    let t0 = Instant::now();
    let mut rounds = 0u64;
    while t0.elapsed() < RUN_FOR {
        let _ = crate::util::pin(sleeper, if rounds.is_multiple_of(2) { a } else { b });
        crate::util::write_all(w, b"x");
        if crate::util::read_byte(r2) != Some(b'k') {
            return Err("the sleeper did not answer".into());
        }
        rounds += 1;
    }
    crate::util::write_all(w, b"q");
    for p in swappers {
        wait_ok(p, "swapper")?;
    }
    wait_ok(sleeper, "sleeper")?;
    say!("ok: two self-swapping processes and {rounds} cross-CPU wake-ups, no hang");
    Ok(())
}
