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
    let entries = p.sq_entries;
    let mut failed = None;
    let ns_per_batch = clock::per_op(size.n(2_000), |round| {
        let tail = sq_tail.load(Ordering::Relaxed);
        let base = round << 16;
        stamp(sqes, entries, tail & mask, batch, base);
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
        let n = ctail.wrapping_sub(head);
        if n != batch {
            failed.get_or_insert(format!("{n} completions, not {batch}"));
        } else if let Some(bad) = check(cqes, cq_mask + 1, head & cq_mask, n, base) {
            failed.get_or_insert(bad);
        }
        cq_head.store(ctail, Ordering::Release);
    });
    sys::close(fd);
    match failed {
        Some(why) => Outcome::Unsupported(why),
        None => Outcome::NsPerOp(ns_per_batch / batch as f64),
    }
}

/// Stamps the user_data of the `n` SQEs from slot `start` on (wrapping
/// at `entries`) with `base + i`. A function of plain values, the slots
/// in at most two runs: the stamping costs its stores, not reloads of
/// the ring's addresses (what is timed is the kernel's side).
fn stamp(sqes: *mut Sqe, entries: u32, start: u32, n: u32, base: u64) {
    let first = n.min(entries - start);
    stamp_run(sqes, start, first, base);
    stamp_run(sqes, 0, n - first, base + first as u64);
}

#[inline(always)]
fn stamp_run(sqes: *mut Sqe, slot: u32, len: u32, base: u64) {
    // SAFETY: slot + len <= entries (stamp): SQEs inside the mapping,
    // which the kernel reads only after the tail moves.
    let run = unsafe { std::slice::from_raw_parts_mut(sqes.add(slot as usize), len as usize) };
    for (e, data) in run.iter_mut().zip(base..) {
        e.user_data = data;
    }
}

/// Checks the `n` CQEs from slot `start` on (wrapping at `entries`): res
/// 0, flags 0 and user_data `base + i` (so also in submission order),
/// every check folded into one word as [`stamp`] does its stores. Says
/// what is wrong, if anything.
fn check(cqes: *const Cqe, entries: u32, start: u32, n: u32, base: u64) -> Option<String> {
    let first = n.min(entries - start);
    let bad =
        check_run(cqes, start, first, base) | check_run(cqes, 0, n - first, base + first as u64);
    if bad == 0 {
        return None;
    }
    (0..n).find_map(|i| {
        // SAFETY: as check_run.
        let c = unsafe { cqes.add(((start + i) % entries) as usize).read() };
        (c.user_data != base + i as u64 || c.res != 0 || c.flags != 0).then(|| {
            format!(
                "bad cqe {i}: res {} flags {:#x} data {:#x}",
                c.res, c.flags, c.user_data
            )
        })
    })
}

/// Nonzero unless each of the `len` CQEs from `slot` is a success with
/// user_data `base + i`.
#[inline(always)]
fn check_run(cqes: *const Cqe, slot: u32, len: u32, base: u64) -> u64 {
    // A CQE as two words: user_data, then res and flags (0 for a NOP).
    const _: () = assert!(std::mem::size_of::<Cqe>() == 16);
    // SAFETY: slot + len <= entries (check): completed CQEs, between the
    // head and the tail, which the kernel leaves alone; a Cqe has the
    // size and alignment of two u64 and no padding.
    let run = unsafe {
        std::slice::from_raw_parts(cqes.add(slot as usize).cast::<[u64; 2]>(), len as usize)
    };
    let (quads, rest) = run.as_chunks::<4>();
    let mut bad = 0;
    let mut data = base;
    for q in quads {
        for (k, c) in q.iter().enumerate() {
            bad |= (c[0] ^ (data + k as u64)) | c[1];
        }
        data += 4;
    }
    for (c, data) in rest.iter().zip(data..) {
        bad |= (c[0] ^ data) | c[1];
    }
    bad
}
