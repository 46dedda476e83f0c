//! madvise(2): MADV_DONTNEED zeroes private anonymous pages and re-reads
//! private file pages, but keeps shared memory's bytes; MADV_FREE;
//! hints accepted; MADV_DONTFORK / MADV_DOFORK / MADV_WIPEONFORK /
//! MADV_KEEPONFORK change what a forked child gets; MADV_POPULATE_*;
//! Linux's errors (EINVAL, ENOMEM for holes, after advising the rest).

use crate::util::{check, errname, spawn, wait_ok};
use crate::vm_util::*;

fn show(r: Result<(), i32>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => errname(e),
    }
}

pub fn run(_: &[String]) -> Result<(), String> {
    // Private anonymous: DONTNEED gives zero pages back.
    let a = anon(4 * PG)?;
    fill(a, 4, 10);
    let r = madvise(a + PG, 2 * PG, libc::MADV_DONTNEED);
    check(r.is_ok(), format_args!("MADV_DONTNEED ({})", show(r)))?;
    check(
        zeros(a + PG, 2) && peek(a) == 10 && peek(a + 3 * PG) == 13,
        "the advised pages read zeros, the others keep their bytes",
    )?;
    poke(a + PG, 5);
    check(peek(a + PG) == 5, "a zeroed page is writable again")?;
    // MADV_FREE: the bytes or zeros, never anything else.
    fill(a, 4, 20);
    let r = madvise(a, 4 * PG, libc::MADV_FREE);
    check(r.is_ok(), format_args!("MADV_FREE ({})", show(r)))?;
    check(
        (0..4).all(|i| {
            let b = peek(a + i * PG);
            b == 0 || b == 20 + i as u8
        }),
        "after MADV_FREE each page holds its bytes or zeros",
    )?;
    // Hints are accepted.
    for (name, adv) in [
        ("MADV_NORMAL", libc::MADV_NORMAL),
        ("MADV_RANDOM", libc::MADV_RANDOM),
        ("MADV_SEQUENTIAL", libc::MADV_SEQUENTIAL),
        ("MADV_WILLNEED", libc::MADV_WILLNEED),
        ("MADV_HUGEPAGE", libc::MADV_HUGEPAGE),
        ("MADV_NOHUGEPAGE", libc::MADV_NOHUGEPAGE),
        ("MADV_DONTDUMP", libc::MADV_DONTDUMP),
        ("MADV_DODUMP", libc::MADV_DODUMP),
        ("MADV_COLD", 20),
    ] {
        let r = madvise(a, 4 * PG, adv);
        check(r.is_ok(), format_args!("{name} accepted ({})", show(r)))?;
    }
    // Errors.
    let r = madvise(a, PG, 999);
    check(
        r == Err(libc::EINVAL),
        format_args!("unknown advice: EINVAL ({})", show(r)),
    )?;
    let r = madvise(a + 1, PG, libc::MADV_DONTNEED);
    check(
        r == Err(libc::EINVAL),
        format_args!("unaligned start: EINVAL ({})", show(r)),
    )?;
    check(
        madvise(a + 1000 * PG, 0, libc::MADV_DONTNEED).is_ok(),
        "length 0: nothing to do, success",
    )?;
    fill(a, 4, 30);
    munmap(a + 2 * PG, PG);
    let r = madvise(a, 4 * PG, libc::MADV_DONTNEED);
    check(
        r == Err(libc::ENOMEM),
        format_args!("a range with a hole: ENOMEM ({})", show(r)),
    )?;
    check(
        zeros(a, 2) && zeros(a + 3 * PG, 1),
        "the mapped parts were advised all the same",
    )?;
    let hole = a + 2 * PG;
    let r = madvise(hole, PG, libc::MADV_NORMAL);
    check(
        r == Err(libc::ENOMEM),
        format_args!("an unmapped range: ENOMEM ({})", show(r)),
    )?;
    munmap(a, 4 * PG);

    shared_and_files()?;
    fork_advice()?;
    populate()
}

/// Shared memory keeps its bytes through DONTNEED; a private file page
/// goes back to the file's bytes.
fn shared_and_files() -> Result<(), String> {
    let s = mmap(
        0,
        2 * PG,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_ANONYMOUS,
        -1,
        0,
    )
    .map_err(errname)?;
    fill(s, 2, 40);
    madvise(s, 2 * PG, libc::MADV_DONTNEED).map_err(errname)?;
    check(
        holds(s, 2, 40),
        "shared anonymous memory keeps its bytes through MADV_DONTNEED",
    )?;
    let r = madvise(s, 2 * PG, libc::MADV_FREE);
    check(
        r == Err(libc::EINVAL),
        format_args!("MADV_FREE on shared memory: EINVAL ({})", show(r)),
    )?;
    let r = madvise(s, 2 * PG, libc::MADV_WIPEONFORK);
    check(
        r == Err(libc::EINVAL),
        format_args!("MADV_WIPEONFORK on shared memory: EINVAL ({})", show(r)),
    )?;
    munmap(s, 2 * PG);

    let fd = pattern_file("/tmp/rsetest-madvise", 2, 60)?;
    let p = mmap(
        0,
        2 * PG,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE,
        fd,
        0,
    )
    .map_err(errname)?;
    poke(p + 3, 1);
    madvise(p, 2 * PG, libc::MADV_DONTNEED).map_err(errname)?;
    check(
        holds(p, 2, 60),
        "a private file page reads the file's bytes again after MADV_DONTNEED",
    )?;
    munmap(p, 2 * PG);
    let m = mmap(
        0,
        2 * PG,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED,
        fd,
        0,
    )
    .map_err(errname)?;
    poke(m + PG + 9, 0xAB);
    madvise(m, 2 * PG, libc::MADV_DONTNEED).map_err(errname)?;
    check(
        peek(m + PG + 9) == 0xAB,
        "a shared file mapping keeps its writes through MADV_DONTNEED",
    )?;
    munmap(m, 2 * PG);
    crate::util::close(fd);
    Ok(())
}

/// What fork gives the child of advised ranges.
fn fork_advice() -> Result<(), String> {
    let a = anon(3 * PG)?;
    fill(a, 3, 80);
    madvise(a + PG, PG, libc::MADV_DONTFORK).map_err(errname)?;
    let child = spawn(move || {
        check(
            is_free(a + PG, PG) && holds(a, 1, 80) && peek(a + 2 * PG) == 82,
            "MADV_DONTFORK: the child lacks that page, has the others",
        )
    })?;
    wait_ok(child, "child after MADV_DONTFORK")?;
    madvise(a + PG, PG, libc::MADV_DOFORK).map_err(errname)?;
    madvise(a, PG, libc::MADV_WIPEONFORK).map_err(errname)?;
    let child = spawn(move || {
        check(
            zeros(a, 1) && peek(a + PG) == 81,
            "MADV_WIPEONFORK: the child's page is zero; MADV_DOFORK: it has the other",
        )
    })?;
    wait_ok(child, "child after MADV_WIPEONFORK")?;
    check(holds(a, 3, 80), "the parent keeps its bytes")?;
    madvise(a, PG, libc::MADV_KEEPONFORK).map_err(errname)?;
    let child = spawn(move || check(holds(a, 3, 80), "MADV_KEEPONFORK: the child has it all"))?;
    wait_ok(child, "child after MADV_KEEPONFORK")?;
    munmap(a, 3 * PG);
    Ok(())
}

/// MADV_POPULATE_READ/WRITE fault pages in, or refuse what the mapping
/// does not allow.
fn populate() -> Result<(), String> {
    let a = anon(4 * PG)?;
    let r = madvise(a, 4 * PG, 23);
    check(
        r.is_ok() && zeros(a, 4),
        format_args!("MADV_POPULATE_WRITE ({})", show(r)),
    )?;
    let ro = mmap(
        0,
        PG,
        libc::PROT_READ,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    )
    .map_err(errname)?;
    let r = madvise(ro, PG, 22);
    check(
        r.is_ok(),
        format_args!("MADV_POPULATE_READ on read-only memory ({})", show(r)),
    )?;
    let r = madvise(ro, PG, 23);
    check(
        r == Err(libc::EINVAL),
        format_args!(
            "MADV_POPULATE_WRITE on read-only memory: EINVAL ({})",
            show(r)
        ),
    )?;
    munmap(a, 4 * PG);
    munmap(ro, PG);
    Ok(())
}
