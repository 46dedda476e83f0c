//! The cheapest real syscall: getppid(2) in a loop (raw, so no libc
//! caching can skip the kernel).

use crate::{clock, Outcome, Size};

pub fn run(size: Size) -> Outcome {
    let n = size.n(500_000);
    let mut sum = 0i64;
    let ns = clock::per_op(n, |_| {
        // SAFETY: getppid takes no arguments and cannot fail.
        sum = sum.wrapping_add(unsafe { libc::syscall(libc::SYS_getppid) });
    });
    std::hint::black_box(sum);
    Outcome::NsPerOp(ns)
}
