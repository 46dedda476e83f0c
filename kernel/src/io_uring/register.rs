//! io_uring_register(2): registered files, the opcode probe, enabling a
//! ring created with IORING_SETUP_R_DISABLED. Other opcodes (buffers,
//! eventfd, personalities, restrictions, …) return EINVAL.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::ring::Ring;
use super::uapi::{op, reg, u32_at, u64_at, IORING_REGISTER_FILES_SKIP, IO_URING_OP_SUPPORTED};
use crate::fs::fdtable::MAX_FDS;
use crate::fs::file::OpenFile;
use crate::proc::sched::current;
use crate::uaccess;

/// io_uring_register(fd, opcode, arg, nr_args).
pub fn register(fd: u64, opcode: u64, arg: u64, nr: u64) -> KResult<u64> {
    let (_file, ring) = super::ring_of(fd)?;
    match opcode as u32 {
        reg::REGISTER_FILES => register_files(&ring, arg, nr),
        reg::UNREGISTER_FILES => {
            if arg != 0 || nr != 0 {
                return Err(Errno::EINVAL);
            }
            let old = ring.state.lock().files.take().ok_or(Errno::ENXIO)?;
            drop(old);
            Ok(0)
        }
        reg::REGISTER_FILES_UPDATE => files_update(&ring, arg, nr),
        reg::REGISTER_PROBE => probe(arg, nr),
        reg::REGISTER_ENABLE_RINGS => {
            let was = ring
                .enabled
                .swap(true, core::sync::atomic::Ordering::AcqRel);
            if was {
                return Err(super::EBADFD);
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// The file for one registered-file entry (-1: an empty slot). Rings
/// cannot be registered (Linux: EBADF; it would make a reference cycle).
fn entry(fd: i32) -> KResult<Option<Arc<OpenFile>>> {
    if fd == -1 {
        return Ok(None);
    }
    let f = current().files().lock().get(fd)?;
    if f.io_uring().is_some() {
        return Err(Errno::EBADF);
    }
    Ok(Some(f))
}

fn read_fds(arg: u64, nr: usize) -> KResult<Vec<i32>> {
    let raw = uaccess::read_vec(arg, nr * 4)?;
    Ok(raw.chunks(4).map(|c| u32_at(c, 0) as i32).collect())
}

fn register_files(ring: &Ring, arg: u64, nr: u64) -> KResult<u64> {
    if ring.state.lock().files.is_some() {
        return Err(Errno::EBUSY);
    }
    if nr == 0 {
        return Err(Errno::EINVAL);
    }
    if nr > MAX_FDS as u64 {
        return Err(Errno::EMFILE);
    }
    let table = read_fds(arg, nr as usize)?
        .into_iter()
        .map(entry)
        .collect::<KResult<Vec<_>>>()?;
    let mut st = ring.state.lock();
    if st.files.is_some() {
        return Err(Errno::EBUSY);
    }
    st.files = Some(table);
    Ok(0)
}

/// struct io_uring_files_update { u32 offset; u32 resv; u64 fds; }.
fn files_update(ring: &Ring, arg: u64, nr: u64) -> KResult<u64> {
    let mut b = [0u8; 16];
    uaccess::copy_in(arg, &mut b)?;
    let (offset, resv, fds) = (u32_at(&b, 0) as usize, u32_at(&b, 4), u64_at(&b, 8));
    if resv != 0 || nr == 0 {
        return Err(Errno::EINVAL);
    }
    if ring.state.lock().files.is_none() {
        return Err(Errno::ENXIO);
    }
    let new = read_fds(fds, (nr as usize).min(MAX_FDS))?;
    let mut done = 0u64;
    for (i, fd) in new.into_iter().enumerate() {
        if fd == IORING_REGISTER_FILES_SKIP {
            done += 1;
            continue;
        }
        let f = entry(fd)?;
        let old = {
            let mut st = ring.state.lock();
            let t = st.files.as_mut().ok_or(Errno::ENXIO)?;
            let slot = t.get_mut(offset + i).ok_or(Errno::EINVAL)?;
            core::mem::replace(slot, f)
        };
        drop(old);
        done += 1;
    }
    Ok(done)
}

/// IORING_REGISTER_PROBE: struct io_uring_probe (16 bytes) followed by
/// `nr` struct io_uring_probe_op (8 bytes each), all zero on input.
fn probe(arg: u64, nr: u64) -> KResult<u64> {
    let n = (nr as usize).min(op::LAST_6_1 as usize);
    let size = 16 + 8 * n;
    let mut b = uaccess::read_vec(arg, size)?;
    if b.iter().any(|&x| x != 0) {
        return Err(Errno::EINVAL);
    }
    b[0] = op::LAST_6_1 - 1; // last_op
    b[1] = n as u8; // ops_len
    for i in 0..n {
        let o = 16 + 8 * i;
        b[o] = i as u8;
        if op::SUPPORTED.contains(&(i as u8)) {
            b[o + 2..o + 4].copy_from_slice(&(IO_URING_OP_SUPPORTED as u16).to_le_bytes());
        }
    }
    uaccess::copy_out(arg, &b)?;
    Ok(0)
}
