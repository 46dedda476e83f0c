//! clock_gettime(CLOCK_MONOTONIC) through glibc, as programs call it: a
//! kernel with a vDSO answers in user mode, one without traps.

use crate::{clock, Outcome, Size};

pub fn run(size: Size) -> Outcome {
    let n = size.n(500_000);
    let mut sum = 0i64;
    let ns = clock::per_op(n, |_| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        sum = sum.wrapping_add(ts.tv_nsec);
    });
    std::hint::black_box(sum);
    Outcome::NsPerOp(ns)
}
