//! Unknown system call numbers return -ENOSYS and the process goes on.

use crate::util::{check, show, sys};

pub fn run(_: &[String]) -> Result<(), String> {
    // 1000 and beyond are past the table (Linux ends near 470), 423 is in
    // the unassigned gap before 424, a huge or negative number must not
    // index anything, and 0x40000000 is the x32 bit. (Not 335/336: Linux
    // 6.11+ uses them for uprobes and answers SIGILL outside a trampoline.)
    for nr in [
        1000,
        423,
        600,
        4096,
        100_000,
        0x7fff_ffff,
        0x4000_0000 + 1000,
        -1,
    ] {
        let r = sys(nr, [1, 2, 3, 4, 5, 6]);
        check(
            r == Err(libc::ENOSYS),
            format_args!("syscall({nr}) -> ENOSYS ({})", show(r)),
        )?;
    }
    // Again, many times (the kernel logs an unknown number once; calling
    // it must keep working).
    let mut all = true;
    for _ in 0..10_000 {
        all &= sys(1000, [0; 6]) == Err(libc::ENOSYS);
    }
    check(all, "syscall(1000) x 10000 -> ENOSYS every time")?;
    // The process continues normally.
    let pid = sys(libc::SYS_getpid, [0; 6]);
    // SAFETY: getpid has no preconditions.
    let libc_pid = unsafe { libc::getpid() };
    check(
        pid == Ok(libc_pid as libc::c_long) && libc_pid > 0,
        format_args!("getpid still works afterwards ({})", show(pid)),
    )?;
    let v: Vec<u64> = (0..100_000).collect();
    check(
        v.iter().sum::<u64>() == 4_999_950_000,
        "memory allocation still works afterwards",
    )?;
    Ok(())
}
