//! MAP_FIXED over existing mappings (replaces them, splitting what it
//! covers part of) and MAP_FIXED_NOREPLACE (EEXIST over any mapping, the
//! exact address when free). glibc's ld.so maps libraries this way.

use crate::util::{check, errname};
use crate::vm_util::*;

pub fn run(_: &[String]) -> Result<(), String> {
    let a = anon(6 * PG)?;
    fill(a, 6, 10);
    let r = mmap(
        a + 2 * PG,
        2 * PG,
        libc::PROT_READ,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
        -1,
        0,
    );
    check(
        r == Ok(a + 2 * PG),
        "MAP_FIXED over the middle of a mapping: at the address asked",
    )?;
    check(
        zeros(a + 2 * PG, 2),
        "the replaced pages are the new (zero) mapping",
    )?;
    check(
        holds(a, 2, 10) && peek(a + 4 * PG) == 14 && peek(a + 5 * PG) == 15,
        "the pages around keep their bytes",
    )?;
    let fd = pattern_file("/tmp/rsetest-map-fixed", 2, 50)?;
    let r = mmap(
        a + 4 * PG,
        2 * PG,
        libc::PROT_READ,
        libc::MAP_PRIVATE | libc::MAP_FIXED,
        fd,
        0,
    );
    check(
        r == Ok(a + 4 * PG) && holds(a + 4 * PG, 2, 50),
        "MAP_FIXED of a file over anonymous pages shows the file",
    )?;
    crate::util::close(fd);
    for (what, at, len) in [
        ("exactly over a mapping", a, 2 * PG),
        ("over its last page and beyond", a + 5 * PG, 4 * PG),
        ("over the middle", a + PG, PG),
    ] {
        let r = mmap(
            at,
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        );
        check(
            r == Err(libc::EEXIST),
            format_args!(
                "MAP_FIXED_NOREPLACE {what}: EEXIST ({})",
                r.map_or_else(errname, |p| format!("{p:#x}"))
            ),
        )?;
    }
    check(
        holds(a, 2, 10),
        "a refused MAP_FIXED_NOREPLACE changes nothing",
    )?;
    munmap(a + 2 * PG, 2 * PG);
    let r = mmap(
        a + 2 * PG,
        2 * PG,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
        -1,
        0,
    );
    check(
        r == Ok(a + 2 * PG),
        "MAP_FIXED_NOREPLACE into a free hole: at exactly that address",
    )?;
    let r = mmap(
        a + 1,
        PG,
        libc::PROT_READ,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
        -1,
        0,
    );
    check(
        r == Err(libc::EINVAL),
        "MAP_FIXED at an unaligned address: EINVAL",
    )?;
    munmap(a, 6 * PG);
    Ok(())
}
