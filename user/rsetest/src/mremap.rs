//! mremap(2): growing in place, shrinking, moving (MREMAP_MAYMOVE) with
//! the pages' contents, MREMAP_FIXED over an existing mapping,
//! MREMAP_DONTUNMAP, private and shared file mappings, shared anonymous
//! memory that stays shared with a forked process after a move, and
//! Linux's errors. (glibc's realloc and python3 grow big blocks this way.)

use crate::util::{check, errname, spawn, wait_ok};
use crate::vm_util::*;

const MAYMOVE: i32 = libc::MREMAP_MAYMOVE;
const FIXED: i32 = libc::MREMAP_FIXED;
const DONTUNMAP: i32 = 4;

fn show(r: Result<usize, i32>) -> String {
    match r {
        Ok(a) => format!("{a:#x}"),
        Err(e) => errname(e),
    }
}

pub fn run(_: &[String]) -> Result<(), String> {
    // Room for 8 pages, the last 4 given back: growth in place fits.
    let p = anon(8 * PG)?;
    munmap(p + 4 * PG, 4 * PG);
    fill(p, 4, 10);
    let r = mremap(p, 4 * PG, 8 * PG, 0, 0);
    check(
        r == Ok(p),
        format_args!("grow 4 -> 8 pages in place ({})", show(r)),
    )?;
    check(
        holds(p, 4, 10) && zeros(p + 4 * PG, 4),
        "old pages kept, new ones zero",
    )?;
    poke(p + 7 * PG, 1);
    let r = mremap(p, 8 * PG, 2 * PG, 0, 0);
    check(r == Ok(p), format_args!("shrink to 2 pages ({})", show(r)))?;
    check(
        is_free(p + 2 * PG, 6 * PG) && holds(p, 2, 10),
        "the tail is unmapped, the head kept",
    )?;
    // A neighbour in the way: no growth without MREMAP_MAYMOVE.
    let guard = mmap(
        p + 2 * PG,
        PG,
        libc::PROT_READ,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
        -1,
        0,
    )
    .map_err(errname)?;
    let r = mremap(p, 2 * PG, 4 * PG, 0, 0);
    check(
        r == Err(libc::ENOMEM),
        format_args!(
            "growth into a neighbour without MAYMOVE: ENOMEM ({})",
            show(r)
        ),
    )?;
    let q = mremap(p, 2 * PG, 64 * PG, MAYMOVE, 0).map_err(errname)?;
    check(q != p, "MREMAP_MAYMOVE moves it elsewhere")?;
    check(
        holds(q, 2, 10) && zeros(q + 2 * PG, 62),
        "moved pages keep their bytes; the new ones are zero",
    )?;
    check(is_free(p, 2 * PG), "the old range is unmapped")?;
    fill(q, 64, 30);
    munmap(guard, PG);

    // MREMAP_FIXED onto an existing mapping replaces it.
    let target = anon(4 * PG)?;
    fill(target, 4, 99);
    let r = mremap(q, 4 * PG, 4 * PG, MAYMOVE | FIXED, target);
    check(
        r == Ok(target),
        format_args!("MREMAP_FIXED onto a mapping ({})", show(r)),
    )?;
    check(holds(target, 4, 30), "the target now holds the moved pages")?;
    check(
        holds(q + 4 * PG, 60, 34),
        "the rest of the source stays where it was",
    )?;
    let r = mremap(q + 4 * PG, 4 * PG, 4 * PG, MAYMOVE | FIXED, q + 6 * PG);
    check(
        r == Err(libc::EINVAL),
        format_args!("overlapping source and target: EINVAL ({})", show(r)),
    )?;
    let r = mremap(q + 4 * PG, PG, PG, FIXED, target);
    check(
        r == Err(libc::EINVAL),
        format_args!("MREMAP_FIXED without MAYMOVE: EINVAL ({})", show(r)),
    )?;

    // MREMAP_DONTUNMAP: the pages move, the old range stays, empty.
    let d = mremap(q + 8 * PG, 4 * PG, 4 * PG, MAYMOVE | DONTUNMAP, 0);
    check(d.is_ok(), format_args!("MREMAP_DONTUNMAP ({})", show(d)))?;
    let d = d.unwrap_or(0);
    check(
        holds(d, 4, 38) && zeros(q + 8 * PG, 4),
        "the pages moved; the old range is still mapped and reads zeros",
    )?;
    let r = mremap(q + 12 * PG, 4 * PG, 8 * PG, MAYMOVE | DONTUNMAP, 0);
    check(
        r == Err(libc::EINVAL),
        format_args!("MREMAP_DONTUNMAP with a new size: EINVAL ({})", show(r)),
    )?;
    munmap(d, 4 * PG);

    // Errors.
    let h = anon(3 * PG)?;
    munmap(h + PG, PG);
    let checks: [(&str, Result<usize, i32>, i32); 5] = [
        (
            "an unaligned address",
            mremap(q + 1, PG, 2 * PG, MAYMOVE, 0),
            libc::EINVAL,
        ),
        ("new size 0", mremap(q, PG, 0, MAYMOVE, 0), libc::EINVAL),
        ("unknown flags", mremap(q, PG, PG, 0x100, 0), libc::EINVAL),
        (
            "growing an unmapped range",
            mremap(h + PG, PG, 2 * PG, MAYMOVE, 0),
            libc::EFAULT,
        ),
        (
            "growing a range across two mappings",
            mremap(target + 2 * PG, 4 * PG, 8 * PG, MAYMOVE, 0),
            libc::EFAULT,
        ),
    ];
    for (what, got, want) in checks {
        check(
            got == Err(want),
            format_args!("{what}: {} ({})", errname(want), show(got)),
        )?;
    }
    munmap(q, 64 * PG);
    munmap(target, 4 * PG);
    munmap(h, 3 * PG);

    files()?;
    shared_anon()
}

/// Private and shared file mappings grown by moving.
fn files() -> Result<(), String> {
    let fd = pattern_file("/tmp/rsetest-mremap", 4, 50)?;
    let m = mmap(
        0,
        2 * PG,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE,
        fd,
        0,
    )
    .map_err(errname)?;
    poke(m, 7); // a private copy of page 0
    let guard = guard_after(m + 2 * PG);
    let n = mremap(m, 2 * PG, 4 * PG, MAYMOVE, 0).map_err(errname)?;
    check(
        peek(n) == 7 && holds(n + PG, 3, 51),
        "a private file mapping moved and grown: its private page, then the file's pages",
    )?;
    munmap(n, 4 * PG);
    unguard(guard);
    let s = mmap(
        0,
        2 * PG,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED,
        fd,
        0,
    )
    .map_err(errname)?;
    let dst = anon(3 * PG)?;
    let t = mremap(s, 2 * PG, 3 * PG, MAYMOVE | FIXED, dst).map_err(errname)?;
    poke(t + 2 * PG + 5, b'Z');
    poke(t + 3, b'Y');
    let mut b = [0u8; 2];
    // SAFETY: reading into a local buffer.
    unsafe {
        libc::pread(fd, b.as_mut_ptr().cast(), 1, 2 * PG as i64 + 5);
        libc::pread(fd, b[1..].as_mut_ptr().cast(), 1, 3);
    }
    check(
        b == *b"ZY",
        "writes through a moved MAP_SHARED file mapping reach the file",
    )?;
    munmap(t, 3 * PG);
    crate::util::close(fd);
    Ok(())
}

/// Shared anonymous memory moved by one process stays the memory its
/// forked sibling sees.
fn shared_anon() -> Result<(), String> {
    let s = mmap(
        0,
        2 * PG,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_ANONYMOUS,
        -1,
        0,
    )
    .map_err(errname)?;
    fill(s, 2, 70);
    let child = spawn(move || {
        let guard = guard_after(s + 2 * PG);
        let t = mremap(s, 2 * PG, 4 * PG, MAYMOVE, 0).map_err(errname)?;
        check(
            holds(t, 2, 70),
            "the child's moved shared mapping keeps its bytes",
        )?;
        poke(t + PG + 1, 0xEE);
        unguard(guard);
        Ok(())
    })?;
    wait_ok(child, "child moving shared memory")?;
    check(
        peek(s + PG + 1) == 0xEE,
        "the parent sees the child's write through the moved mapping",
    )
}

/// Makes sure the page at `at` is mapped, so a mapping ending there
/// cannot grow in place: a new PROT_NONE page if it is free (returned, to
/// unmap later), else whatever is there already (never replaced).
fn guard_after(at: usize) -> Option<usize> {
    mmap(
        at,
        PG,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
        -1,
        0,
    )
    .ok()
}

fn unguard(g: Option<usize>) {
    if let Some(g) = g {
        munmap(g, PG);
    }
}
