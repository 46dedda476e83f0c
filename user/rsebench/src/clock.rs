//! Guest clocks. Under `-icount shift=0` one guest nanosecond is one
//! instruction, so these figures become instruction counts.

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Monotonic nanoseconds, for intervals.
pub fn now_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// Nanoseconds since boot. On RSE OS the clock starts at the kernel's
/// first instruction; on Linux at timekeeping_init, early in start_kernel
/// (the real-mode setup and decompression before it are not counted).
pub fn boottime_ns() -> u64 {
    read(libc::CLOCK_BOOTTIME)
}

/// Runs `f` `n` times and returns nanoseconds per iteration, after a
/// warm-up of a tenth as many (page faults, caches).
pub fn per_op(n: u64, mut f: impl FnMut(u64)) -> f64 {
    for i in 0..(n / 10).max(1) {
        f(i);
    }
    let t = now_ns();
    for i in 0..n {
        f(i);
    }
    (now_ns() - t) as f64 / n as f64
}
