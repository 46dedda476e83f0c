//! Raw mmap/mremap/madvise wrappers for the memory tests: results as
//! `Result<address, errno>`, pages filled and checked by pattern.

use crate::util::{errno, sys};

pub const PG: usize = 4096;

/// mmap(2): the address or the errno.
pub fn mmap(
    addr: usize,
    len: usize,
    prot: i32,
    flags: i32,
    fd: i32,
    off: i64,
) -> Result<usize, i32> {
    // SAFETY: the tests map only ranges they own or mean to replace.
    let p = unsafe { libc::mmap(addr as *mut libc::c_void, len, prot, flags, fd, off) };
    if p == libc::MAP_FAILED {
        Err(errno())
    } else {
        Ok(p as usize)
    }
}

/// Anonymous private read-write memory.
pub fn anon(len: usize) -> Result<usize, String> {
    mmap(
        0,
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    )
    .map_err(|e| format!("mmap: {}", crate::util::errname(e)))
}

/// Whether `[addr, addr + len)` is free: MAP_FIXED_NOREPLACE succeeds
/// there (and is undone).
pub fn is_free(addr: usize, len: usize) -> bool {
    let r = mmap(
        addr,
        len,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
        -1,
        0,
    );
    match r {
        Ok(p) => {
            munmap(p, len);
            p == addr
        }
        Err(_) => false,
    }
}

/// mremap(2) through the raw syscall (new_addr only with MREMAP_FIXED or
/// MREMAP_DONTUNMAP).
pub fn mremap(addr: usize, old: usize, new: usize, flags: i32, to: usize) -> Result<usize, i32> {
    sys(
        libc::SYS_mremap,
        [
            addr as libc::c_long,
            old as libc::c_long,
            new as libc::c_long,
            flags as libc::c_long,
            to as libc::c_long,
            0,
        ],
    )
    .map(|v| v as usize)
}

/// madvise(2): Ok or the errno.
pub fn madvise(addr: usize, len: usize, advice: i32) -> Result<(), i32> {
    sys(
        libc::SYS_madvise,
        [
            addr as libc::c_long,
            len as libc::c_long,
            advice as libc::c_long,
            0,
            0,
            0,
        ],
    )
    .map(|_| ())
}

pub fn munmap(addr: usize, len: usize) {
    // SAFETY: unmapping a range this test mapped.
    unsafe { libc::munmap(addr as *mut libc::c_void, len) };
}

/// Writes `tag + page index` over every byte of `pages` pages at `addr`.
pub fn fill(addr: usize, pages: usize, tag: u8) {
    for i in 0..pages {
        // SAFETY: the caller maps these pages writable.
        unsafe { std::ptr::write_bytes((addr + i * PG) as *mut u8, tag.wrapping_add(i as u8), PG) };
    }
}

/// Whether every byte of page `i` (of `pages` from `addr`) is
/// `tag + i`, for all pages.
pub fn holds(addr: usize, pages: usize, tag: u8) -> bool {
    (0..pages).all(|i| {
        // SAFETY: the caller maps these pages readable.
        let s = unsafe { std::slice::from_raw_parts((addr + i * PG) as *const u8, PG) };
        s.iter().all(|&b| b == tag.wrapping_add(i as u8))
    })
}

/// Whether `pages` pages at `addr` read as zeros.
pub fn zeros(addr: usize, pages: usize) -> bool {
    // SAFETY: the caller maps these pages readable.
    let s = unsafe { std::slice::from_raw_parts(addr as *const u8, pages * PG) };
    s.iter().all(|&b| b == 0)
}

/// Reads one byte at `addr`.
pub fn peek(addr: usize) -> u8 {
    // SAFETY: the caller maps it readable.
    unsafe { std::ptr::read_volatile(addr as *const u8) }
}

/// Writes one byte at `addr`.
pub fn poke(addr: usize, v: u8) {
    // SAFETY: the caller maps it writable.
    unsafe { std::ptr::write_volatile(addr as *mut u8, v) }
}

/// A file of `pages` pages whose page i is all `tag + i`, open O_RDWR.
pub fn pattern_file(path: &str, pages: usize, tag: u8) -> Result<i32, String> {
    let p = std::ffi::CString::new(path).unwrap();
    // SAFETY: a valid path string.
    let fd = unsafe {
        libc::open(
            p.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(format!("open {path}: {}", crate::util::errname(errno())));
    }
    for i in 0..pages {
        let buf = vec![tag.wrapping_add(i as u8); PG];
        // SAFETY: writing our buffer to our descriptor.
        if unsafe { libc::pwrite(fd, buf.as_ptr().cast(), PG, (i * PG) as i64) } != PG as isize {
            return Err(format!("write {path}"));
        }
    }
    Ok(fd)
}
