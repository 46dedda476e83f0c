//! `clockmove MACHINE`: CLOCK_MONOTONIC stays monotonic across moves to
//! another machine of an RSE OS cluster and back, whichever machine
//! booted first: read through the vDSO (libc) and through the system
//! call, before the move, away (also after a sleep served at home), and
//! home again. Each step may only move forward, by less than 5 s.

use crate::migrate::ask;
use crate::util::check;

fn vdso_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

fn syscall_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the raw call with a valid timespec.
    unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

fn step(what: &str, before: (i128, i128), after: (i128, i128)) -> Result<(), String> {
    for (name, b, a) in [("vDSO", before.0, after.0), ("syscall", before.1, after.1)] {
        let d = a - b;
        check(
            (0..5_000_000_000).contains(&d),
            format!("{what}: {name} CLOCK_MONOTONIC moved {} ms", d / 1_000_000),
        )?;
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let m = args.first().ok_or("usage: clockmove MACHINE")?;
    let pid = std::process::id();
    let now = || (vdso_ns(), syscall_ns());
    let t0 = now();
    ask(&format!("move {pid} {m}"))?;
    let t1 = now();
    step("the move there", t0, t1)?;
    let agree = (t1.0 - t1.1).abs();
    check(
        agree < 50_000_000,
        format!(
            "away, the vDSO and the system call agree ({} µs apart)",
            agree / 1000
        ),
    )?;
    // Long enough away for a clock that runs 10 % fast there to get
    // ahead of its home's by more than the way home takes.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let t2 = now();
    step("a 1 s sleep away", t1, t2)?;
    check(
        t2.0 - t1.0 >= 900_000_000,
        "the sleep away took at least 900 ms on the process's clock",
    )?;
    ask(&format!("move {pid} home"))?;
    let t3 = now();
    step("the move home", t2, t3)?;
    Ok(())
}
