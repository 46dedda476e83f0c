//! The batch fast path for NOPs: the SQ entries that ops::issue would
//! complete with 0 at once (opcode NOP, no flag but FIXED_FILE and ASYNC,
//! which NOP ignores, no per-opcode flags, no personality) go straight
//! from the SQE array to the CQ ring under one hold of the state lock,
//! without building an `Sqe` or a `Cqe` and without `Ring::post`.
//!
//! A run of entries (see [`Ring::nop_run`]) is taken whole blocks at a
//! time, speculatively: each block's CQEs are written and its entries'
//! checks folded into a few OR-ed words (the index array read two entries
//! to a word), one test for the whole run at the end, so an entry costs
//! its loads and stores and no branch. The CQE slots written lie between
//! the CQ tail and the application's head, which the application does not
//! own until the tail moves past them: if the run does not check out
//! (some entry is not a plain NOP, or the index array is not consecutive)
//! it is done again one entry at a time, which stops at the first entry
//! the general path must take, and later CQEs overwrite what it left.
//! What is left after the whole blocks goes one entry at a time too.

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicU32, AtomicU64};

use super::ring::{Ring, State};
use super::uapi::{op, ring_off as ro, sqe_flags as sf, sqe_word as sw, CQE_SIZE, SQE_SIZE};
/// Entries checked together (a power of two: the fast loop is unrolled).
const BLOCK: usize = 8;

/// Bits of an SQE's first word that must be 0: the opcode (NOP is 0) and
/// every flag but FIXED_FILE and ASYNC. ioprio and fd are ignored by NOP.
const HEAD_MASK: u64 = 0xff | ((!(sf::FIXED_FILE | sf::ASYNC)) as u64) << 8;
const _: () = assert!(op::NOP == 0);
/// The per-opcode flags (the upper half of the len word): NOP takes none.
const LEN_FLAGS_MASK: u64 = 0xffff_ffff << 32;
/// The personality (bits 16-31 of the buf_index word): none.
const BUF_PERS_MASK: u64 = 0xffff_0000;

type SqeWords = [AtomicU64; 8];
type CqeWords = [AtomicU64; 2];

impl Ring {
    /// Consumes up to `n` SQ entries while they are plain NOPs and there
    /// is room in the CQ ring, writing each CQE straight into its slot.
    /// SQ head and CQ tail move in `st` only; the caller publishes them.
    /// Returns how many were consumed; the entry it stopped at (if any)
    /// is left for the general path. Requires [`Ring::direct_cq_ok`].
    ///
    /// Works a run at a time: index array words, CQE slots and SQEs each
    /// in one stretch of the direct map (the whole region if its frames
    /// are contiguous, else one frame), none crossing its ring's wrap,
    /// and the SQ index array naming consecutive SQEs (as it does when an
    /// application fills SQEs in ring order, liburing's way); another
    /// index just starts a new run.
    pub(super) fn nop_run(&self, st: &mut State, n: u32) -> u32 {
        let n = n.min(self.cq_room(st));
        let (mut sq_head, mut cq_tail) = (st.sq_head, st.cq_tail);
        let mut k = 0;
        while k < n {
            let a_pos = (sq_head & (self.sq_entries - 1)) as usize;
            let a_off = self.sq_array + 4 * a_pos;
            let Some(arr) = self.rings.words32_from(a_off) else {
                break;
            };
            // The same words two at a time, from an even position (else
            // the first entry goes alone and the next run is even).
            let pairs = match self.rings.words64_from(a_off) {
                Some(p) => p,
                None => &[],
            };
            let c_pos = (cq_tail & (self.cq_entries - 1)) as usize;
            let Some(cqes) = self.rings.words64_from(ro::CQES + c_pos * CQE_SIZE) else {
                break;
            };
            let cqes = cqes.as_chunks::<2>().0;
            let first = arr[0].load(Relaxed);
            if first >= self.sq_entries {
                break;
            }
            let Some(sqes) = self.sqes.words64_from(first as usize * SQE_SIZE) else {
                break;
            };
            let sqes = sqes.as_chunks::<8>().0;
            let run = ((n - k) as usize)
                .min(arr.len())
                .min(self.sq_entries as usize - a_pos)
                .min(cqes.len())
                .min(self.cq_entries as usize - c_pos)
                .min(sqes.len())
                .min((self.sq_entries - first) as usize);
            let j = span(&arr[..run], pairs, first, &sqes[..run], &cqes[..run]) as u32;
            sq_head = sq_head.wrapping_add(j);
            cq_tail = cq_tail.wrapping_add(j);
            k += j;
            if j == 0 {
                break;
            }
        }
        st.sq_head = sq_head;
        st.cq_tail = cq_tail;
        st.completions += k as u64;
        k
    }
}

/// How many leading entries of a run are plain NOPs, `arr` naming the
/// consecutive SQEs `sqes` (from `first`), with their CQEs written to
/// `cqes` (all three of one length; `pairs` is `arr` two entries to a
/// word, or empty).
fn span(
    arr: &[AtomicU32],
    pairs: &[AtomicU64],
    first: u32,
    sqes: &[SqeWords],
    cqes: &[CqeWords],
) -> usize {
    let at = blocks(pairs, first, sqes, cqes);
    at + one_by_one(
        &arr[at..],
        first.wrapping_add(at as u32),
        &sqes[at..],
        &cqes[at..],
    )
}

/// Writes the CQEs of the whole blocks of a run as if every entry were a
/// plain NOP, then says how many entries that covers if they all are, 0
/// if not (see the module comment).
fn blocks(pairs: &[AtomicU64], first: u32, sqes: &[SqeWords], cqes: &[CqeWords]) -> usize {
    // The index array words expected, two at a time (below sq_entries:
    // no carry from the low half).
    const STEP: u64 = 2 | 2 << 32;
    let mut expect = first as u64 | (first.wrapping_add(1) as u64) << 32;
    let (mut index, mut head, mut len_flags, mut buf_pers) = (0u64, 0u64, 0u64, 0u64);
    let mut n = 0;
    let blocks = pairs
        .as_chunks::<{ BLOCK / 2 }>()
        .0
        .iter()
        .zip(sqes.as_chunks::<BLOCK>().0)
        .zip(cqes.as_chunks::<BLOCK>().0);
    for ((a, s), c) in blocks {
        for p in a {
            index |= p.load(Relaxed) ^ expect;
            expect = expect.wrapping_add(STEP);
        }
        for (w, c) in s.iter().zip(c) {
            head |= w[sw::HEAD].load(Relaxed);
            len_flags |= w[sw::LEN_FLAGS].load(Relaxed);
            buf_pers |= w[sw::BUF_PERS].load(Relaxed);
            c[0].store(w[sw::USER_DATA].load(Relaxed), Relaxed);
            c[1].store(super::uapi::res_flags(0, 0), Relaxed);
        }
        n += BLOCK;
    }
    let ok = index == 0
        && head & HEAD_MASK == 0
        && len_flags & LEN_FLAGS_MASK == 0
        && buf_pers & BUF_PERS_MASK == 0;
    if ok {
        n
    } else {
        0
    }
}

/// The exact path of [`span`]: stops before the first entry that is not
/// a plain NOP or does not name the next SQE.
fn one_by_one(arr: &[AtomicU32], first: u32, sqes: &[SqeWords], cqes: &[CqeWords]) -> usize {
    let mut j = 0;
    for ((a, c), w) in arr.iter().zip(cqes).zip(sqes) {
        if a.load(Relaxed) != first.wrapping_add(j as u32)
            || w[sw::HEAD].load(Relaxed) & HEAD_MASK != 0
            || w[sw::LEN_FLAGS].load(Relaxed) & LEN_FLAGS_MASK != 0
            || w[sw::BUF_PERS].load(Relaxed) & BUF_PERS_MASK != 0
        {
            break;
        }
        c[0].store(w[sw::USER_DATA].load(Relaxed), Relaxed);
        c[1].store(super::uapi::res_flags(0, 0), Relaxed);
        j += 1;
    }
    j
}
