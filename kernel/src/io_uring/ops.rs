//! The opcodes: NOP, READ, WRITE, READV, WRITEV, FSYNC, OPENAT, CLOSE,
//! POLL_ADD, POLL_REMOVE, TIMEOUT, TIMEOUT_REMOVE, ASYNC_CANCEL.
//!
//! Each runs in the submitter's context (its descriptors, memory and
//! paths) and follows Linux 6.1's split between *prep* errors (bad fields
//! of the SQE: [`Outcome::Failed`], which also ends the submission batch)
//! and *issue* errors (EBADF, EFAULT, …: [`Outcome::Done`] with -errno).
//! Every error reaches the application as -errno in cqe.res; no user
//! input can make the kernel fail.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::pending::PendingKind;
use super::ring::{Outcome, Ring};
use super::uapi::{op, sqe_flags as sf, Sqe};
use super::uapi::{
    IORING_FSYNC_DATASYNC, IORING_TIMEOUT_ABS, IORING_TIMEOUT_CLOCK_MASK,
    IORING_TIMEOUT_ETIME_SUCCESS,
};
use crate::fs::file::{OpenFile, O_DSYNC, O_NONBLOCK, O_SYNC_ONLY, POLLERR, POLLHUP};
use crate::proc::sched::current;
use crate::uaccess;

/// SQE flags we honour: FIXED_FILE, ASYNC (everything that can block is
/// asynchronous anyway), CQE_SKIP_SUCCESS. Links, drain and buffer
/// selection are not implemented: -EINVAL.
const FLAGS_OK: u8 = sf::FIXED_FILE | sf::ASYNC | sf::CQE_SKIP_SUCCESS;
const _: () =
    assert!(FLAGS_OK & (sf::IO_LINK | sf::IO_HARDLINK | sf::IO_DRAIN | sf::BUFFER_SELECT) == 0);
/// RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT.
const RWF_OK: u32 = 1 | 2 | 4 | 8;
const RWF_NOWAIT: u32 = 8;
/// RWF_DSYNC, RWF_SYNC: this write is durable at its completion, as
/// through an O_DSYNC / O_SYNC descriptor.
const RWF_DSYNC: u32 = 2;
const RWF_SYNC: u32 = 4;
/// Most bytes one read moves (as read(2) here).
const READ_CHUNK: usize = 1 << 20;
/// Most bytes one write gathers (as writev(2) here).
const WRITE_MAX: usize = 16 << 20;
/// Most iovecs (UIO_MAXIOV).
const IOV_MAX: u32 = 1024;

fn neg(e: Errno) -> i32 {
    -(e.0 as i32)
}

fn done(r: KResult<u64>) -> Outcome {
    Outcome::Done(match r {
        Ok(v) => v as i32,
        Err(e) => neg(e),
    })
}

fn fail(e: Errno) -> Outcome {
    Outcome::Failed(neg(e))
}

/// Whether an opcode may be issued with the ring's state lock held: it
/// touches neither the ring (no lock, no CQE, no pending request) nor
/// anything that could (files, user memory). Only NOP.
pub fn runs_under_state_lock(opcode: u8) -> bool {
    opcode == op::NOP
}

/// Runs one SQE.
pub fn issue(ring: &Arc<Ring>, sqe: &Sqe) -> Outcome {
    if sqe.flags & !FLAGS_OK != 0 || sqe.personality != 0 {
        return fail(Errno::EINVAL);
    }
    match sqe.opcode {
        op::NOP => nop(sqe),
        op::READ => rw(ring, sqe, false, false),
        op::WRITE => rw(ring, sqe, true, false),
        op::READV => rw(ring, sqe, false, true),
        op::WRITEV => rw(ring, sqe, true, true),
        op::FSYNC => fsync(ring, sqe),
        op::OPENAT => openat(sqe),
        op::CLOSE => close(ring, sqe),
        op::POLL_ADD => poll_add(ring, sqe),
        op::POLL_REMOVE => poll_remove(ring, sqe),
        op::TIMEOUT => timeout(ring, sqe),
        op::TIMEOUT_REMOVE => timeout_remove(ring, sqe),
        op::ASYNC_CANCEL => async_cancel(ring, sqe),
        _ => fail(Errno::EINVAL),
    }
}

/// The file an SQE names: a registered file (IOSQE_FIXED_FILE) or a
/// descriptor of the submitter.
fn file_of(ring: &Ring, sqe: &Sqe) -> KResult<Arc<OpenFile>> {
    if sqe.flags & sf::FIXED_FILE != 0 {
        let st = ring.state.lock();
        return st
            .files
            .as_ref()
            .and_then(|t| t.get(sqe.fd as u32 as usize))
            .and_then(|f| f.clone())
            .ok_or(Errno::EBADF);
    }
    current().files().lock().get(sqe.fd)
}

fn nop(sqe: &Sqe) -> Outcome {
    if sqe.op_flags != 0 {
        return fail(Errno::EINVAL);
    }
    Outcome::Done(0)
}

/// The (base, len) pieces of a READ/WRITE (one) or READV/WRITEV (iovecs).
fn pieces(sqe: &Sqe, vectored: bool) -> KResult<Vec<(u64, usize)>> {
    if !vectored {
        return Ok(alloc::vec![(sqe.addr, sqe.len as usize)]);
    }
    if sqe.len > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = uaccess::read_vec(sqe.addr, sqe.len as usize * 16)?;
    let mut v = Vec::new();
    let mut total = 0usize;
    for c in raw.chunks(16) {
        let base = super::uapi::u64_at(c, 0);
        let len = super::uapi::u64_at(c, 8);
        if len > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        total = total.saturating_add(len as usize);
        v.push((base, len as usize));
    }
    if total > isize::MAX as usize {
        return Err(Errno::EINVAL);
    }
    Ok(v)
}

fn rw(ring: &Arc<Ring>, sqe: &Sqe, write: bool, vectored: bool) -> Outcome {
    let f = match file_of(ring, sqe) {
        Ok(f) => f,
        Err(e) => return Outcome::Done(neg(e)),
    };
    if (write && !f.writable()) || (!write && !f.readable()) {
        return Outcome::Done(neg(Errno::EBADF));
    }
    if sqe.op_flags & !RWF_OK != 0 {
        return Outcome::Done(neg(Errno::EOPNOTSUPP));
    }
    let off = sqe.off as i64;
    if off < -1 {
        return Outcome::Done(neg(Errno::EINVAL));
    }
    let iov = match pieces(sqe, vectored) {
        Ok(v) => v,
        Err(e) => return Outcome::Done(neg(e)),
    };
    let stream = f.is_stream();
    // Streams are tried without blocking; a blocking file that is not
    // ready waits as a pending request (Linux's FAST_POLL).
    let may_wait = stream && f.flags() & O_NONBLOCK == 0 && sqe.op_flags & RWF_NOWAIT == 0;
    let r = if write {
        write_pieces(&f, &iov, stream, off).and_then(|n| {
            let mut call = 0;
            if sqe.op_flags & (RWF_DSYNC | RWF_SYNC) != 0 {
                call |= O_DSYNC;
            }
            if sqe.op_flags & RWF_SYNC != 0 {
                call |= O_SYNC_ONLY;
            }
            f.sync_for_call(call).map(|()| n)
        })
    } else {
        read_pieces(&f, &iov, stream, off)
    };
    match r {
        Err(Errno::EAGAIN) if may_wait => Outcome::Pending(PendingKind::Retry {
            sqe: *sqe,
            file: f,
            write,
            submitter: Arc::downgrade(&current()),
        }),
        r => done(r),
    }
}

fn read_pieces(f: &OpenFile, iov: &[(u64, usize)], stream: bool, off: i64) -> KResult<u64> {
    let total: usize = iov.iter().map(|p| p.1).sum::<usize>().min(READ_CHUNK);
    if stream {
        // Data taken from a stream cannot be put back: check the buffers
        // first, as read(2) does.
        let mut left = total;
        for &(base, len) in iov {
            let n = len.min(left);
            uaccess::check_writable(base, n)?;
            left -= n;
        }
    }
    // Up to 1 MiB a user chose: ENOMEM when the heap cannot give it.
    let mut kbuf = uaccess::kernel_buf(total)?;
    let n = if stream || off == -1 {
        f.read_mode(&mut kbuf, true)?
    } else {
        f.pread(&mut kbuf, off as u64)?
    };
    let mut at = 0;
    for &(base, len) in iov {
        if at >= n {
            break;
        }
        let m = len.min(n - at);
        uaccess::copy_out(base, &kbuf[at..at + m])?;
        at += m;
    }
    Ok(n as u64)
}

fn write_pieces(f: &OpenFile, iov: &[(u64, usize)], stream: bool, off: i64) -> KResult<u64> {
    let mut data = Vec::new();
    for &(base, len) in iov {
        if data.len() + len > WRITE_MAX {
            return Err(Errno::EINVAL);
        }
        data.extend_from_slice(&uaccess::read_vec(base, len)?);
    }
    let n = if stream || off == -1 {
        f.write_mode(&data, true)?
    } else {
        f.pwrite(&data, off as u64)?
    };
    Ok(n as u64)
}

fn fsync(ring: &Arc<Ring>, sqe: &Sqe) -> Outcome {
    if sqe.addr != 0 || sqe.buf_index != 0 || sqe.file_index != 0 {
        return fail(Errno::EINVAL);
    }
    if sqe.op_flags & !IORING_FSYNC_DATASYNC != 0 {
        return fail(Errno::EINVAL);
    }
    // As fsync(2): a disk is flushed, tmpfs has nothing to flush.
    let datasync = sqe.op_flags & IORING_FSYNC_DATASYNC != 0;
    done(
        file_of(ring, sqe)
            .and_then(|f| f.sync(datasync))
            .map(|()| 0),
    )
}

fn openat(sqe: &Sqe) -> Outcome {
    if sqe.buf_index != 0 {
        return fail(Errno::EINVAL);
    }
    if sqe.flags & sf::FIXED_FILE != 0 {
        return fail(Errno::EBADF);
    }
    // Opening straight into the registered-file table is not supported.
    if sqe.file_index != 0 {
        return fail(Errno::EINVAL);
    }
    done(crate::syscall::fs::openat(
        sqe.fd as i64,
        sqe.addr,
        sqe.op_flags as u64,
        sqe.len as u64,
    ))
}

fn close(ring: &Arc<Ring>, sqe: &Sqe) -> Outcome {
    if sqe.off != 0 || sqe.addr != 0 || sqe.len != 0 || sqe.op_flags != 0 || sqe.buf_index != 0 {
        return fail(Errno::EINVAL);
    }
    if sqe.flags & sf::FIXED_FILE != 0 {
        return fail(Errno::EBADF);
    }
    if sqe.file_index != 0 {
        if sqe.fd != 0 {
            return fail(Errno::EINVAL);
        }
        // Close a registered-file slot (file_index is slot + 1).
        let slot = (sqe.file_index - 1) as usize;
        let old = {
            let mut st = ring.state.lock();
            match st.files.as_mut() {
                None => return Outcome::Done(neg(Errno::ENXIO)),
                Some(t) => match t.get_mut(slot) {
                    None => return Outcome::Done(neg(Errno::EINVAL)),
                    Some(s) => s.take(),
                },
            }
        };
        return match old {
            Some(f) => {
                drop(f);
                Outcome::Done(0)
            }
            None => Outcome::Done(neg(Errno::EBADF)),
        };
    }
    // A ring cannot close its own kind through itself (Linux: EBADF).
    match current().files().lock().get(sqe.fd) {
        Ok(f) if f.io_uring().is_some() => return Outcome::Done(neg(Errno::EBADF)),
        _ => {}
    }
    done(crate::syscall::fs::close(sqe.fd as u32 as u64))
}

fn poll_add(ring: &Arc<Ring>, sqe: &Sqe) -> Outcome {
    if sqe.addr != 0 || sqe.off != 0 || sqe.buf_index != 0 {
        return fail(Errno::EINVAL);
    }
    // IORING_POLL_ADD_MULTI (multishot) and the update flags are not
    // implemented.
    if sqe.len != 0 {
        return fail(Errno::EINVAL);
    }
    let f = match file_of(ring, sqe) {
        Ok(f) => f,
        Err(e) => return Outcome::Done(neg(e)),
    };
    // A pending poll holds its file: polling a ring from a ring could make
    // a reference cycle, so it is refused.
    if f.io_uring().is_some() {
        return Outcome::Done(neg(Errno::EINVAL));
    }
    let events = (sqe.op_flags & 0xffff) as u16;
    let ready = f.poll() & (events | POLLERR | POLLHUP);
    if ready != 0 {
        return Outcome::Done(ready as i32);
    }
    Outcome::Pending(PendingKind::Poll { file: f, events })
}

fn poll_remove(ring: &Arc<Ring>, sqe: &Sqe) -> Outcome {
    if sqe.buf_index != 0 || sqe.file_index != 0 || sqe.len != 0 {
        return fail(Errno::EINVAL);
    }
    let target = sqe.addr;
    let n = ring.cancel(|p| p.user_data == target && matches!(p.kind, PendingKind::Poll { .. }));
    Outcome::Done(if n > 0 { 0 } else { neg(Errno::ENOENT) })
}

fn timeout(ring: &Arc<Ring>, sqe: &Sqe) -> Outcome {
    if sqe.buf_index != 0 || sqe.len != 1 || sqe.file_index != 0 {
        return fail(Errno::EINVAL);
    }
    let flags = sqe.op_flags;
    if flags & !(IORING_TIMEOUT_ABS | IORING_TIMEOUT_CLOCK_MASK | IORING_TIMEOUT_ETIME_SUCCESS) != 0
        || flags & IORING_TIMEOUT_CLOCK_MASK == IORING_TIMEOUT_CLOCK_MASK
    {
        return fail(Errno::EINVAL);
    }
    let mut ts = [0u8; 16];
    if uaccess::copy_in(sqe.addr, &mut ts).is_err() {
        return fail(Errno::EFAULT);
    }
    let sec = super::uapi::u64_at(&ts, 0) as i64;
    let nsec = super::uapi::u64_at(&ts, 8) as i64;
    if sec < 0 || nsec < 0 {
        return fail(Errno::EINVAL);
    }
    // Every clock here is the monotonic clock (docs/syscalls.md).
    let ns = (sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64);
    let deadline = if flags & IORING_TIMEOUT_ABS != 0 {
        ns
    } else {
        hal::time::now_ns().saturating_add(ns)
    };
    let count = sqe.off as u32 as u64;
    let target = (count > 0).then(|| ring.state.lock().completions + count);
    Outcome::Pending(PendingKind::Timeout {
        deadline: Some(deadline),
        target,
    })
}

fn timeout_remove(ring: &Arc<Ring>, sqe: &Sqe) -> Outcome {
    if sqe.buf_index != 0 || sqe.len != 0 || sqe.file_index != 0 {
        return fail(Errno::EINVAL);
    }
    // IORING_TIMEOUT_UPDATE (re-arming) is not implemented.
    if sqe.op_flags != 0 {
        return fail(Errno::EINVAL);
    }
    let target = sqe.addr;
    let n = ring.cancel(|p| p.user_data == target && matches!(p.kind, PendingKind::Timeout { .. }));
    Outcome::Done(if n > 0 { 0 } else { neg(Errno::ENOENT) })
}

fn async_cancel(ring: &Arc<Ring>, sqe: &Sqe) -> Outcome {
    if sqe.off != 0 || sqe.len != 0 || sqe.file_index != 0 {
        return fail(Errno::EINVAL);
    }
    // Only cancel-by-user_data (no IORING_ASYNC_CANCEL_* flags).
    if sqe.op_flags != 0 {
        return fail(Errno::EINVAL);
    }
    let target = sqe.addr;
    let mut left = 1;
    let n = ring.cancel(|p| {
        if left > 0 && p.user_data == target {
            left -= 1;
            true
        } else {
            false
        }
    });
    Outcome::Done(if n > 0 { 0 } else { neg(Errno::ENOENT) })
}
