//! MAP_SHARED file mappings are the file: a write through one is seen by
//! read(2), by another process's mapping and after munmap; a write(2) is
//! seen through the mapping; msync writes it back and what a mapping
//! stored is in the file after munmap and close, read by a new open.
//! (SQLite's WAL index lives in such a mapping.) The file is in /tmp, or
//! in the directory given as the argument (an ext4 mount, whose mappings
//! come from its page cache).

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

pub fn run(args: &[String]) -> Result<(), String> {
    let dir = args.first().map_or("/tmp", String::as_str);
    let path = CString::new(format!("{dir}/rsetest-shared-file")).unwrap();
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
    // SAFETY: p maps 3 pages; a store, then msync of the range.
    unsafe { *p.add(30) = b'S' };
    check(
        // SAFETY: msync of our mapping.
        unsafe { libc::msync(p.cast(), 3 * 4096, libc::MS_SYNC) } == 0,
        "msync(MS_SYNC) of the mapping",
    )?;
    check(
        // SAFETY: msync of a range nothing maps.
        unsafe { libc::msync(p.add(64 << 20).cast(), 4096, libc::MS_SYNC) } != 0
            && errno() == libc::ENOMEM,
        "msync of an unmapped range: ENOMEM",
    )?;
    check(
        // SAFETY: an unaligned address.
        unsafe { libc::msync(p.add(1).cast(), 4096, libc::MS_SYNC) } != 0
            && errno() == libc::EINVAL,
        "msync of an unaligned address: EINVAL",
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
    // A mapping outliving its descriptor: stores after close(2) reach the
    // file once the mapping goes.
    let q = map(fd, 4096, libc::PROT_READ | libc::PROT_WRITE)?;
    // SAFETY: our descriptors; q maps the first page.
    unsafe {
        libc::close(ro);
        libc::close(fd);
        *q.add(40) = b'Z';
        libc::munmap(q.cast(), 4096);
    }
    let child = spawn(move || Ok(()))?;
    wait_ok(child, "a child between the unmap and the reopen")?;
    // SAFETY: plain calls on our file.
    let fd2 = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    check(fd2 >= 0, "reopen")?;
    // SAFETY: reading into a local.
    let n = unsafe { libc::pread(fd2, all.as_mut_ptr().cast(), 32, 20) };
    check(
        n == 32 && all[10] == b'S' && all[20] == b'Z' && all[0] == b'C',
        "a new open reads what the mappings stored (msync'ed and not)",
    )?;
    // SAFETY: our descriptor and file.
    unsafe {
        libc::close(fd2);
        libc::unlink(path.as_ptr());
    }
    kept_by_a_child(dir)?;
    say!("ok: shared file mappings are coherent with the file");
    Ok(())
}

/// What the child stores through its mapping, never msync'ed.
const KEPT: &[u8] = b"kept-by-mmap";

/// A child maps `DIR/rsetest-shared-kept` (a file only it has open),
/// stores [`KEPT`] through the mapping and exits without msync: the
/// bytes are in the file for a new open (the last close wrote them back).
/// The file stays, for a check after unmounting.
fn kept_by_a_child(dir: &str) -> Result<(), String> {
    let kept = CString::new(format!("{dir}/rsetest-shared-kept")).unwrap();
    let k = kept.clone();
    let child = spawn(move || {
        // SAFETY: plain calls on our own file; q maps its first page.
        unsafe {
            let fd = libc::open(
                k.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
                0o644,
            );
            check(fd >= 0, "open the kept file")?;
            check(libc::ftruncate(fd, 4096) == 0, "ftruncate the kept file")?;
            let q = map(fd, 4096, libc::PROT_READ | libc::PROT_WRITE)?;
            libc::close(fd);
            std::ptr::copy_nonoverlapping(KEPT.as_ptr(), q, KEPT.len());
        }
        Ok(())
    })?;
    wait_ok(
        child,
        "a child storing through its only mapping, then exiting",
    )?;
    let mut got = [0u8; KEPT.len()];
    // SAFETY: plain calls; reading into a local.
    let n = unsafe {
        let fd = libc::open(kept.as_ptr(), libc::O_RDONLY);
        check(fd >= 0, "open the kept file again")?;
        let n = libc::pread(fd, got.as_mut_ptr().cast(), got.len(), 0);
        libc::close(fd);
        n
    };
    check(
        n == KEPT.len() as isize && got == KEPT,
        "after the child's exit the file has its stores",
    )?;
    if dir == "/tmp" {
        // SAFETY: our file.
        unsafe { libc::unlink(kept.as_ptr()) };
    }
    Ok(())
}
