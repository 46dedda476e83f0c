//! Virtual memory: anonymous mmap + touch every page + munmap, and the
//! cost of one demand-paging fault.

use crate::{clock, sys, Outcome, Size};

const PAGE: usize = 4096;

fn map(len: usize) -> *mut u8 {
    // SAFETY: a fresh anonymous private mapping; no existing memory moves.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        sys::die("mmap");
    }
    p.cast()
}

fn touch(p: *mut u8, len: usize) {
    for off in (0..len).step_by(PAGE) {
        // SAFETY: p..p+len is our read-write mapping.
        unsafe { p.add(off).write_volatile(1) };
    }
}

fn unmap(p: *mut u8, len: usize) {
    // SAFETY: unmaps exactly the mapping `map` returned.
    if unsafe { libc::munmap(p.cast(), len) } != 0 {
        sys::die("munmap");
    }
}

fn cycle(len: usize, n: u64) -> Outcome {
    Outcome::NsPerOp(clock::per_op(n, |_| {
        let p = map(len);
        touch(p, len);
        unmap(p, len);
    }))
}

pub fn mmap_4k(size: Size) -> Outcome {
    cycle(PAGE, size.n(20_000))
}

pub fn mmap_1m(size: Size) -> Outcome {
    cycle(1 << 20, size.n(300))
}

/// One write fault on a fresh anonymous page: map 64 MiB once, touch each
/// page once, divide.
pub fn page_fault(size: Size) -> Outcome {
    let len = if size.n(100) == 100 {
        64 << 20
    } else {
        4 << 20
    };
    let p = map(len);
    let t = clock::now_ns();
    touch(p, len);
    let ns = (clock::now_ns() - t) as f64 / (len / PAGE) as f64;
    unmap(p, len);
    Outcome::NsPerOp(ns)
}
