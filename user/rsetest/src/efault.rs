//! Bad user pointers in system calls give EFAULT and nothing else: no
//! crash of the process, no write into the kernel, no partial damage.
//! Raw syscalls are used so that libc cannot dereference the pointers
//! itself.

use crate::util::{check, errname, pipe, show, sys};
use libc::c_long;

/// The bad pointers: not mapped (1 and a freed mapping), the kernel half
/// (where RSE OS and Linux map themselves), the first non-canonical
/// address (a #GP rather than a #PF if the kernel touches it), and the
/// top of the address space.
fn bad_pointers() -> Result<Vec<(String, c_long)>, String> {
    let freed = crate::util::mmap_anon(2 * 4096).map_err(|e| format!("mmap: {}", errname(e)))?;
    // SAFETY: unmapping our own fresh mapping.
    if unsafe { libc::munmap(freed.cast(), 2 * 4096) } != 0 {
        return Err("munmap failed".into());
    }
    Ok(vec![
        ("1".into(), 1),
        (format!("freed mmap {freed:p}"), freed as c_long),
        (
            "0xffff800000000000".into(),
            0xffff_8000_0000_0000u64 as c_long,
        ),
        (
            "0xffffffff80100000 (kernel image)".into(),
            0xffff_ffff_8010_0000u64 as c_long,
        ),
        ("0x800000000000 (non-canonical)".into(), 0x8000_0000_0000),
        (
            "0xfffffffffffff000".into(),
            0xffff_ffff_ffff_f000u64 as c_long,
        ),
    ])
}

fn efault(what: &str, r: Result<c_long, i32>) -> Result<(), String> {
    check(
        r == Err(libc::EFAULT),
        format_args!("{what} -> EFAULT ({})", show(r)),
    )
}

pub fn run(_: &[String]) -> Result<(), String> {
    let (rfd, wfd) = pipe()?;
    let (rfd, wfd) = (rfd as c_long, wfd as c_long);
    let good_path = c"/".as_ptr() as c_long;
    let mut stat_buf = [0u8; 256];
    let good_stat = stat_buf.as_mut_ptr() as c_long;
    let at_fdcwd = libc::AT_FDCWD as c_long;

    for (name, p) in bad_pointers()? {
        // The pipe holds data, so read has something to copy out.
        let w = sys(
            libc::SYS_write,
            [wfd, c"abcdefgh".as_ptr() as c_long, 8, 0, 0, 0],
        );
        check(
            w == Ok(8),
            format_args!("write 8 bytes to a pipe ({})", show(w)),
        )?;
        efault(
            &format!("read(pipe, {name}, 8)"),
            sys(libc::SYS_read, [rfd, p, 8, 0, 0, 0]),
        )?;
        // Drain what may be left, then check the pipe still works.
        let mut buf = [0u8; 64];
        let _ = sys(
            libc::SYS_read,
            [rfd, buf.as_mut_ptr() as c_long, 64, 0, 0, 0],
        );
        efault(
            &format!("write(pipe, {name}, 8)"),
            sys(libc::SYS_write, [wfd, p, 8, 0, 0, 0]),
        )?;
        efault(
            &format!("open({name}, O_RDONLY)"),
            sys(libc::SYS_open, [p, libc::O_RDONLY as c_long, 0, 0, 0, 0]),
        )?;
        efault(
            &format!("openat(AT_FDCWD, {name}, O_RDONLY)"),
            sys(
                libc::SYS_openat,
                [at_fdcwd, p, libc::O_RDONLY as c_long, 0, 0, 0],
            ),
        )?;
        efault(
            &format!("stat({name}, buf)"),
            sys(libc::SYS_stat, [p, good_stat, 0, 0, 0, 0]),
        )?;
        efault(
            &format!("stat(\"/\", {name})"),
            sys(libc::SYS_stat, [good_path, p, 0, 0, 0, 0]),
        )?;
        efault(
            &format!("newfstatat(AT_FDCWD, \"/\", {name}, 0)"),
            sys(libc::SYS_newfstatat, [at_fdcwd, good_path, p, 0, 0, 0]),
        )?;
        efault(
            &format!("fstat(pipe, {name})"),
            sys(libc::SYS_fstat, [rfd, p, 0, 0, 0, 0]),
        )?;
        efault(
            &format!("pipe2({name}, 0)"),
            sys(libc::SYS_pipe2, [p, 0, 0, 0, 0, 0]),
        )?;
        efault(
            &format!("uname({name})"),
            sys(libc::SYS_uname, [p, 0, 0, 0, 0, 0]),
        )?;
        efault(
            &format!("clock_gettime(CLOCK_MONOTONIC, {name})"),
            sys(
                libc::SYS_clock_gettime,
                [libc::CLOCK_MONOTONIC as c_long, p, 0, 0, 0, 0],
            ),
        )?;
        efault(
            &format!("writev(pipe, {name}, 1)"),
            sys(libc::SYS_writev, [wfd, p, 1, 0, 0, 0]),
        )?;
        for (call, nr, args) in [
            ("sched_setparam(0, P)", libc::SYS_sched_setparam, [0, p, 0]),
            ("sched_getparam(0, P)", libc::SYS_sched_getparam, [0, p, 0]),
            (
                "sched_setscheduler(0, SCHED_OTHER, P)",
                libc::SYS_sched_setscheduler,
                [0, 0, p],
            ),
            (
                "sched_setaffinity(0, 8, P)",
                libc::SYS_sched_setaffinity,
                [0, 8, p],
            ),
            (
                "sched_getaffinity(0, 8, P)",
                libc::SYS_sched_getaffinity,
                [0, 8, p],
            ),
            (
                "sched_rr_get_interval(0, P)",
                libc::SYS_sched_rr_get_interval,
                [0, p, 0],
            ),
        ] {
            efault(
                &call.replace('P', &name),
                sys(nr, [args[0], args[1], args[2], 0, 0, 0]),
            )?;
        }
    }

    // A read into a read-only page (our own code) must not write it.
    let w = sys(
        libc::SYS_write,
        [wfd, c"abcdefgh".as_ptr() as c_long, 8, 0, 0, 0],
    );
    check(
        w == Ok(8),
        format_args!("write 8 bytes to a pipe ({})", show(w)),
    )?;
    let code = run as *const u8;
    // SAFETY: reading our own code.
    let before = unsafe { code.read_volatile() };
    efault(
        "read(pipe, <read-only text page>, 8)",
        sys(libc::SYS_read, [rfd, code as c_long, 8, 0, 0, 0]),
    )?;
    // SAFETY: as above.
    let after = unsafe { code.read_volatile() };
    check(before == after, "the read-only page is unchanged")?;

    // The process and its descriptors still work.
    let mut buf = [0u8; 64];
    let _ = sys(
        libc::SYS_read,
        [rfd, buf.as_mut_ptr() as c_long, 64, 0, 0, 0],
    );
    let w = sys(libc::SYS_write, [wfd, c"ok".as_ptr() as c_long, 2, 0, 0, 0]);
    let r = sys(
        libc::SYS_read,
        [rfd, buf.as_mut_ptr() as c_long, 64, 0, 0, 0],
    );
    check(
        w == Ok(2) && r == Ok(2) && &buf[..2] == b"ok",
        "the pipe still carries data afterwards",
    )?;
    let st = sys(libc::SYS_stat, [good_path, good_stat, 0, 0, 0, 0]);
    check(
        st == Ok(0),
        format_args!("stat(\"/\") with good pointers works ({})", show(st)),
    )?;
    Ok(())
}
