//! Checked access to the current process's user memory. Every syscall
//! touches user memory only through these functions: a bad pointer becomes
//! EFAULT, never a kernel fault. Callers must not hold the process's
//! memory lock while calling them (a copy may fault in a page), nor any
//! spinlock, except for the `_nofault` copies, which never fault a page
//! in (they fail instead).

use abi::{Errno, KResult};
use alloc::vec::Vec;

/// Most bytes a single syscall copies in one piece into a kernel buffer.
pub const MAX_COPY: usize = 64 << 20;

/// Copies `out.len()` bytes from user address `va`.
pub fn copy_in(va: u64, out: &mut [u8]) -> KResult<()> {
    hal::probe::copy_from_user(out, va).map_err(|_| Errno::EFAULT)
}

/// Copies `data` to user address `va`.
pub fn copy_out(va: u64, data: &[u8]) -> KResult<()> {
    hal::probe::copy_to_user(va, data).map_err(|_| Errno::EFAULT)
}

/// [`copy_in`] under a spinlock: a page not mapped for the access fails
/// the copy (false) instead of being faulted in; the caller then takes a
/// path that copies without the lock.
pub fn copy_in_nofault(va: u64, out: &mut [u8]) -> bool {
    hal::probe::copy_from_user_nofault(out, va).is_ok()
}

/// [`copy_out`] under a spinlock (see [`copy_in_nofault`]).
pub fn copy_out_nofault(va: u64, data: &[u8]) -> bool {
    hal::probe::copy_to_user_nofault(va, data).is_ok()
}

/// Checks that `[va, va + len)` is writable user memory without changing
/// it (each page: an atomic write of nothing, `hal::probe`; reading a
/// byte and writing it back could undo a CLONE_VM sharer's concurrent
/// write). Stream reads (pipes, the tty) call this before consuming data,
/// so a bad buffer gets EFAULT and the data stays for the next reader, as
/// on Linux.
pub fn check_writable(va: u64, len: usize) -> KResult<()> {
    if len == 0 {
        return Ok(());
    }
    let end = va.checked_add(len as u64).ok_or(Errno::EFAULT)?;
    let mut page = va & !0xfff;
    while page < end {
        hal::probe::touch_user_writable(page.max(va)).map_err(|_| Errno::EFAULT)?;
        page += 4096;
    }
    Ok(())
}

/// Atomically sets the user word at `va` to `f(old)`, retrying while
/// another CPU changes it; returns the old value (EFAULT, or EINVAL if
/// unaligned as futex words must not be).
pub fn update_u32(va: u64, mut f: impl FnMut(u32) -> u32) -> KResult<u32> {
    if !va.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let mut old = read_u32(va)?;
    loop {
        let found = hal::probe::cmpxchg_user_u32(va, old, f(old)).map_err(|_| Errno::EFAULT)?;
        if found == old {
            return Ok(old);
        }
        old = found;
    }
}

/// Appends `len` bytes from user address `va` to `v` (no zeroing of
/// the new part first): EFAULT, or ENOMEM when the heap has no room.
pub fn append_in(v: &mut Vec<u8>, va: u64, len: usize) -> KResult<()> {
    hal::probe::append_from_user(v, va, len).map_err(|e| match e {
        Some(_) => Errno::EFAULT,
        None => Errno::ENOMEM,
    })
}

/// A zeroed kernel buffer of `len` bytes for a user's transfer, or
/// ENOMEM when the heap cannot give it (it grows from the frame pools up
/// to its limit; past that, a user-sized buffer must fail the call, not
/// reach the alloc error handler's panic).
pub fn kernel_buf(len: usize) -> KResult<Vec<u8>> {
    let mut v = kernel_vec(len)?;
    v.resize(len, 0);
    Ok(v)
}

/// An empty kernel buffer with room for `len` bytes, on the same terms
/// as [`kernel_buf`]: for what a user makes the kernel build or hold.
pub fn kernel_vec(len: usize) -> KResult<Vec<u8>> {
    if !hal::heap::has_room(len) {
        return Err(Errno::ENOMEM);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    Ok(v)
}

/// Reads `len` bytes into a new buffer.
pub fn read_vec(va: u64, len: usize) -> KResult<Vec<u8>> {
    if len > MAX_COPY {
        return Err(Errno::EINVAL);
    }
    let mut v = Vec::new();
    append_in(&mut v, va, len)?;
    Ok(v)
}

/// Reads a little-endian u64.
pub fn read_u64(va: u64) -> KResult<u64> {
    let mut b = [0u8; 8];
    copy_in(va, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Reads a little-endian u32.
pub fn read_u32(va: u64) -> KResult<u32> {
    let mut b = [0u8; 4];
    copy_in(va, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Writes a little-endian u64.
pub fn write_u64(va: u64, v: u64) -> KResult<()> {
    copy_out(va, &v.to_le_bytes())
}

/// Writes a little-endian u32.
pub fn write_u32(va: u64, v: u32) -> KResult<()> {
    copy_out(va, &v.to_le_bytes())
}

/// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
///
/// In small chunks, each within one page: a string ending just before an
/// unmapped page is still readable, and a short path (the common case)
/// costs one copy of [`CSTR_CHUNK`] bytes, not of the rest of its page
/// (that was a 4 KiB copy and a 4 KiB zeroed buffer on every open).
pub fn read_cstr(va: u64, max: usize) -> KResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut addr = va;
    let mut buf = [0u8; CSTR_CHUNK];
    loop {
        let chunk = ((4096 - (addr % 4096)) as usize).min(CSTR_CHUNK);
        copy_in(addr, &mut buf[..chunk])?;
        let nul = buf[..chunk].iter().position(|&b| b == 0);
        out.extend_from_slice(&buf[..nul.unwrap_or(chunk)]);
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        if nul.is_some() {
            return Ok(out);
        }
        addr += chunk as u64;
    }
}

/// Bytes [`read_cstr`] copies at a time: most paths fit in one chunk.
const CSTR_CHUNK: usize = 128;

/// Reads a NULL-terminated array of pointers (argv, envp), at most `max`.
pub fn read_ptr_array(va: u64, max: usize) -> KResult<Vec<u64>> {
    let mut out = Vec::new();
    if va == 0 {
        return Ok(out);
    }
    loop {
        let p = read_u64(va + 8 * out.len() as u64)?;
        if p == 0 {
            return Ok(out);
        }
        if out.len() >= max {
            return Err(Errno::E2BIG);
        }
        out.push(p);
    }
}
