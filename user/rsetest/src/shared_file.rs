//! MAP_SHARED file mappings are the file: a write through one is seen by
//! read(2), by another process's mapping and after munmap; a write(2) is
//! seen through the mapping. (SQLite's WAL index lives in such a mapping.)

use std::ffi::CString;

use crate::say;
use crate::util::{check, errname, errno, spawn, wait_ok};

fn map(fd: i32, len: usize, prot: i32) -> Result<*mut u8, String> {
    // SAFETY: a fresh shared mapping of our own descriptor.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap(MAP_SHARED): {}", errname(errno())));
    }
    Ok(p.cast())
}

pub fn run(_: &[String]) -> Result<(), String> {
    let path = CString::new("/tmp/rsetest-shared-file").unwrap();
    // SAFETY: plain calls on our own file.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
            0o600,
        )
    };
    check(fd >= 0, "open")?;
    // SAFETY: our descriptor.
    check(
        unsafe { libc::ftruncate(fd, 3 * 4096) } == 0,
        "ftruncate to 3 pages",
    )?;
    let p = map(fd, 3 * 4096, libc::PROT_READ | libc::PROT_WRITE)?;
    // SAFETY: p maps 3 pages of the file.
    unsafe {
        *p.add(10) = b'M';
        *p.add(4096 + 5) = b'N';
    }
    let mut b = [0u8; 1];
    // SAFETY: reading one byte into b.
    unsafe { libc::pread(fd, b.as_mut_ptr().cast(), 1, 10) };
    check(b[0] == b'M', "read(2) sees a write through the mapping")?;
    // SAFETY: writing one byte from a local.
    unsafe { libc::pwrite(fd, b"W".as_ptr().cast(), 1, 2 * 4096 + 7) };
    // SAFETY: in the mapping.
    check(
        unsafe { *p.add(2 * 4096 + 7) } == b'W',
        "the mapping sees write(2)",
    )?;
    let addr = p as usize;
    let child = spawn(move || {
        let q = map(fd, 3 * 4096, libc::PROT_READ | libc::PROT_WRITE)?;
        // SAFETY: q maps the same file; p (inherited) too.
        unsafe {
            check(
                *q.add(4096 + 5) == b'N',
                "another mapping in a child sees the parent's write",
            )?;
            *q.add(20) = b'C';
            *(addr as *mut u8).add(21) = b'D';
        }
        Ok(())
    })?;
    wait_ok(
        child,
        "child writing through its own and the inherited mapping",
    )?;
    // SAFETY: in the mapping.
    check(
        unsafe { *p.add(20) == b'C' && *p.add(21) == b'D' },
        "the parent sees both of the child's writes",
    )?;
    // SAFETY: unmapping our mapping; reading the file after.
    unsafe { libc::munmap(p.cast(), 3 * 4096) };
    let mut all = [0u8; 32];
    // SAFETY: reading into a local.
    unsafe { libc::pread(fd, all.as_mut_ptr().cast(), 32, 0) };
    check(
        all[10] == b'M' && all[20] == b'C' && all[21] == b'D',
        "the file keeps the writes after munmap",
    )?;
    // A read-only descriptor cannot be mapped shared and writable.
    // SAFETY: plain calls.
    let ro = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    let r = map(ro, 4096, libc::PROT_READ | libc::PROT_WRITE);
    check(
        r.is_err() && errno() == libc::EACCES,
        "MAP_SHARED|PROT_WRITE of a read-only descriptor: EACCES",
    )?;
    // SAFETY: our descriptors and file.
    unsafe {
        libc::close(ro);
        libc::close(fd);
        libc::unlink(path.as_ptr());
    }
    say!("ok: shared file mappings are coherent with the file");
    Ok(())
}
