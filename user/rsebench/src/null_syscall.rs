//! The cheapest real syscall: getppid(2) in a loop, issued with the
//! `syscall` instruction itself (no libc wrapper, whose argument shuffling
//! would be counted as kernel cost, and no caching that could skip the
//! kernel).

use crate::{clock, Outcome, Size};

pub fn run(size: Size) -> Outcome {
    let n = size.n(500_000);
    let mut sum = 0i64;
    let ns = clock::per_op(n, |_| {
        sum = sum.wrapping_add(getppid());
    });
    std::hint::black_box(sum);
    Outcome::NsPerOp(ns)
}

#[inline(always)]
fn getppid() -> i64 {
    let ret: i64;
    // SAFETY: getppid takes no arguments and touches no memory; the kernel
    // clobbers rcx and r11 (syscall/sysret) and returns in rax.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_getppid => ret,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret
}
