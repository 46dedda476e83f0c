//! Physical frames for the whole kernel: one pool set per torus, each
//! behind its own lock, so two tori never contend on allocation.
//!
//! The locks keep interrupts off while held ([`hal::heap::IrqMutex`]): the
//! kernel heap grows from these pools with its own lock held, and an
//! allocation may come from an interrupt; a pool lock held with
//! interrupts on could be wanted by an interrupt on the same CPU that
//! allocates and grows the heap (a deadlock). No holder allocates from
//! the heap (`TorusFrames` never grows after `init`).

use alloc::vec::Vec;
use hal::heap::IrqMutex as Mutex;
use mm::frames::{partition, TorusFrames};
use spin::Once;

static TORI: Once<Vec<Mutex<TorusFrames>>> = Once::new();

/// Splits the boot's free memory into `tori` per-torus pools.
pub fn init(free: &hal::paging::FreeMemory, tori: usize) {
    let ranges: Vec<(u64, u64)> = free.ranges().iter().map(|r| (r.start, r.end)).collect();
    TORI.call_once(|| {
        partition(&ranges, tori)
            .into_iter()
            .map(Mutex::new)
            .collect()
    });
    hal::heap::set_grow_source(grow_heap);
}

/// Frames for the kernel heap's growth: a contiguous run of `n` from any
/// torus (starting at the current CPU's), without reclaiming the page
/// cache (that frees heap memory, and the heap lock is held here).
fn grow_heap(n: usize) -> Option<u64> {
    let count = tori().len();
    if count == 0 {
        return None;
    }
    alloc_contiguous_on(hal::percpu::cpu_id() % count, n)
}

fn tori() -> &'static [Mutex<TorusFrames>] {
    TORI.get().map(Vec::as_slice).unwrap_or(&[])
}

/// Number of tori the memory is split into.
pub fn torus_count() -> usize {
    tori().len()
}

/// Takes a frame from `torus`'s pool, or from its successors on the ring
/// when that pool is empty (memory pressure beats locality). When every
/// pool is empty, ext4's page cache gives back clean pages first.
pub fn alloc_on(torus: usize) -> Option<u64> {
    let n = tori().len();
    let take = || (0..n).find_map(|i| tori()[(torus + i) % n].lock().alloc());
    take().or_else(|| {
        if crate::fs::ext4_pages::reclaim(RECLAIM) == 0 {
            return None;
        }
        take()
    })
}

/// Page cache pages one dry allocation reclaims: more than it needs, so
/// the next ones (a fault takes up to four frames) find some free.
const RECLAIM: usize = 64;

/// Returns a frame to whichever torus owns it.
pub fn free(pa: u64) -> Result<(), mm::frames::FreeError> {
    tori()
        .iter()
        .find_map(|t| {
            let mut g = t.lock();
            g.owns(pa).then(|| g.free(pa))
        })
        .unwrap_or(Err(mm::frames::FreeError::Foreign))
}

/// (free, total) frames of `torus`.
pub fn stats(torus: usize) -> (usize, usize) {
    tori()
        .get(torus)
        .map(|t| {
            let g = t.lock();
            (g.free_count(), g.total())
        })
        .unwrap_or((0, 0))
}

/// Free frames of all tori together.
pub fn free_total() -> usize {
    (0..torus_count()).map(|t| stats(t).0).sum()
}

/// Free frames of every torus, for log lines ("t0 63000 t1 64000 ...").
pub fn per_torus_free() -> alloc::string::String {
    let mut s = alloc::string::String::new();
    for t in 0..torus_count() {
        let _ = core::fmt::write(&mut s, format_args!("t{t} {} ", stats(t).0));
    }
    s
}

/// Takes `n` physically contiguous frames (device rings and buffers) from
/// `torus`'s pool, or from its successors'.
pub fn alloc_contiguous_on(torus: usize, n: usize) -> Option<u64> {
    let count = tori().len();
    (0..count).find_map(|i| tori()[(torus + i) % count].lock().alloc_contiguous(n))
}

/// Returns `n` contiguous frames taken with [`alloc_contiguous_on`].
pub fn free_contiguous(pa: u64, n: usize) {
    for i in 0..n as u64 {
        let _ = free(pa + i * mm::frames::FRAME_SIZE);
    }
}
