//! Batched syscalls through io_uring: 256 NOPs per io_uring_enter, the
//! rings mapped with the Linux layout (raw syscalls, no liburing, so the
//! same code runs on both kernels).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::{clock, sys, Outcome, Size};

use uring_abi::{
    Cqe, Params, Sqe, ENTER_GETEVENTS, FEAT_SINGLE_MMAP, OFF_CQ_RING, OFF_SQES, OFF_SQ_RING,
    OP_NOP, SYS_ENTER, SYS_SETUP,
};

use uring_abi::map_ring;

const ENTRIES: u32 = 256;

/// A ring's u32 field at `off` bytes into a mapping.
fn field(base: *mut u8, off: u32) -> &'static AtomicU32 {
    // SAFETY: the kernel told us (in Params) that a 4-byte-aligned u32 of
    // the shared ring lives at this offset; the mapping is never unmapped
    // while the benchmark runs (it is leaked at the end, with the fd).
    unsafe { &*base.add(off as usize).cast::<AtomicU32>() }
}

pub fn nop_batch(size: Size) -> Outcome {
    let mut p = Params::default();
    // SAFETY: p is a valid, writable io_uring_params.
    let fd = unsafe { libc::syscall(SYS_SETUP, ENTRIES, &mut p as *mut Params) };
    if fd < 0 {
        return Outcome::Unsupported(format!("io_uring_setup errno {}", sys::errno()));
    }
    let fd = fd as i32;
    let sq_len = p.sq_off.array as usize + p.sq_entries as usize * 4;
    let cq_len = p.cq_off.cqes as usize + p.cq_entries as usize * std::mem::size_of::<Cqe>();
    let single = p.features & FEAT_SINGLE_MMAP != 0;
    let sq_map_len = if single { sq_len.max(cq_len) } else { sq_len };
    let sq = match map_ring(fd, sq_map_len, OFF_SQ_RING) {
        Ok(m) => m,
        Err(e) => return Outcome::Unsupported(format!("mmap SQ ring errno {e}")),
    };
    let cq = if single {
        sq
    } else {
        match map_ring(fd, cq_len, OFF_CQ_RING) {
            Ok(m) => m,
            Err(e) => return Outcome::Unsupported(format!("mmap CQ ring errno {e}")),
        }
    };
    let sqe_len = p.sq_entries as usize * std::mem::size_of::<Sqe>();
    let sqes = match map_ring(fd, sqe_len, OFF_SQES) {
        Ok(m) => m,
        Err(e) => return Outcome::Unsupported(format!("mmap SQEs errno {e}")),
    };
    let sqes = sqes.cast::<Sqe>();
    let cqes = cq.wrapping_add(p.cq_off.cqes as usize).cast::<Cqe>();
    let array = sq.wrapping_add(p.sq_off.array as usize).cast::<u32>();
    let (sq_tail, sq_mask) = (field(sq, p.sq_off.tail), field(sq, p.sq_off.ring_mask));
    let (cq_head, cq_tail) = (field(cq, p.cq_off.head), field(cq, p.cq_off.tail));
    let cq_mask = field(cq, p.cq_off.ring_mask).load(Ordering::Relaxed);
    let mask = sq_mask.load(Ordering::Relaxed);
    let batch = ENTRIES;
    // Every slot holds a NOP and the index array names slot i at position
    // i from the start (each round submits the whole ring, so positions
    // and slots stay equal): a round only stamps each SQE's user_data, as
    // an application reusing its SQEs would. What is timed is the ring.
    for idx in 0..p.sq_entries as usize {
        // SAFETY: idx < sq_entries, inside the SQE and array mappings; the
        // kernel reads nothing before the tail moves.
        unsafe {
            sqes.add(idx).write(Sqe {
                opcode: OP_NOP,
                fd: -1,
                ..Sqe::default()
            });
            array.add(idx).write(idx as u32);
        }
    }
    let mut failed = None;
    let ns_per_batch = clock::per_op(size.n(2_000), |round| {
        let tail = sq_tail.load(Ordering::Relaxed);
        for i in 0..batch {
            let idx = (tail.wrapping_add(i) & mask) as usize;
            // SAFETY: as above; only the user_data field is written.
            unsafe {
                std::ptr::addr_of_mut!((*sqes.add(idx)).user_data).write(round << 16 | i as u64);
            }
        }
        sq_tail.store(tail.wrapping_add(batch), Ordering::Release);
        // SAFETY: plain syscall on our ring fd, no pointers.
        let r = unsafe {
            libc::syscall(
                SYS_ENTER,
                fd,
                batch,
                batch,
                ENTER_GETEVENTS,
                std::ptr::null::<u8>(),
                0usize,
            )
        };
        if r != batch as i64 {
            failed.get_or_insert(format!("io_uring_enter gave {r} errno {}", sys::errno()));
        }
        let head = cq_head.load(Ordering::Relaxed);
        let ctail = cq_tail.load(Ordering::Acquire);
        if ctail.wrapping_sub(head) != batch {
            failed.get_or_insert(format!(
                "{} completions, not {batch}",
                ctail.wrapping_sub(head)
            ));
        }
        let mut h = head;
        while h != ctail {
            // SAFETY: entries between head and tail are completed CQEs.
            let c = unsafe { cqes.add((h & cq_mask) as usize).read() };
            if c.res != 0 || c.user_data >> 16 != round {
                failed.get_or_insert(format!("bad cqe res {} data {:#x}", c.res, c.user_data));
            }
            h = h.wrapping_add(1);
        }
        cq_head.store(ctail, Ordering::Release);
    });
    sys::close(fd);
    match failed {
        Some(why) => Outcome::Unsupported(why),
        None => Outcome::NsPerOp(ns_per_batch / batch as f64),
    }
}
