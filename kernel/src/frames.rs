//! Physical frames for the whole kernel: one pool set per torus, each
//! behind its own lock, so two tori never contend on allocation.
//!
//! Each pool keeps a floor of frames that only the kernel heap's growth
//! may take (`alloc_on` and `alloc_contiguous_on` stop above it): the
//! heap grows when an allocation finds no room, and many of its
//! allocations cannot fail, so with every frame in user pages such an
//! allocation panicked the kernel. With the floor, user memory runs out
//! first: the page fault that finds nothing left above it reclaims the
//! page cache, then the OOM killer frees a process's memory, while the
//! heap can still grow into the floor.
//!
//! The locks keep interrupts off while held ([`hal::heap::IrqMutex`]): the
//! kernel heap grows from these pools with its own lock held, and an
//! allocation may come from an interrupt; a pool lock held with
//! interrupts on could be wanted by an interrupt on the same CPU that
//! allocates and grows the heap (a deadlock). No holder allocates from
//! the heap (`TorusFrames` never grows after `init`).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use hal::heap::IrqMutex as Mutex;
use mm::frames::{partition, TorusFrames};
use spin::Once;

static TORI: Once<Vec<Mutex<TorusFrames>>> = Once::new();

/// Frames each torus's pool keeps for the heap's growth (see above).
static FLOOR: AtomicUsize = AtomicUsize::new(0);

/// The floor of all pools together: 1/64 of memory, at least 1 MiB (a
/// growth step of a small heap is 2 MiB, but its allocations are small:
/// the heap halves a step that finds no run that long) and at most
/// 16 MiB.
fn floor_total(frames: usize) -> usize {
    (frames / 64).clamp(256, 4096)
}

/// Splits the boot's free memory into `tori` per-torus pools.
pub fn init(free: &hal::paging::FreeMemory, tori: usize) {
    let ranges: Vec<(u64, u64)> = free.ranges().iter().map(|r| (r.start, r.end)).collect();
    TORI.call_once(|| {
        partition(&ranges, tori)
            .into_iter()
            .map(Mutex::new)
            .collect()
    });
    let pools = self::tori();
    let all: usize = pools.iter().map(|t| t.lock().total()).sum();
    FLOOR.store(floor_total(all) / pools.len().max(1), Ordering::Relaxed);
    hal::heap::set_grow_source(grow_heap, heap_gave_back);
}

/// Frames for the kernel heap's growth: a contiguous run of `n` from any
/// torus (starting at the current CPU's), without reclaiming the page
/// cache (that frees heap memory, and the heap lock is held here).
fn grow_heap(n: usize) -> Option<u64> {
    let count = tori().len();
    if count == 0 {
        return None;
    }
    let start = hal::percpu::cpu_id() % count;
    (0..count).find_map(|i| tori()[(start + i) % count].lock().alloc_contiguous(n))
}

/// A frame of a heap span given back (hal::heap::shrink), with the heap
/// lock held: a pool's free does not allocate (nor may this log).
fn heap_gave_back(pa: u64) -> bool {
    free(pa).is_ok()
}

/// Frames each pool keeps for the heap's growth.
pub fn floor() -> usize {
    FLOOR.load(Ordering::Relaxed)
}

fn tori() -> &'static [Mutex<TorusFrames>] {
    TORI.get().map(Vec::as_slice).unwrap_or(&[])
}

/// Number of tori the memory is split into.
pub fn torus_count() -> usize {
    tori().len()
}

/// Takes a frame from `torus`'s pool, or from its successors on the ring
/// when that pool is down to its floor (memory pressure beats locality).
/// When every pool is, ext4's page cache gives back clean pages first.
pub fn alloc_on(torus: usize) -> Option<u64> {
    let n = tori().len();
    let keep = floor();
    let take = || (0..n).find_map(|i| tori()[(torus + i) % n].lock().alloc_keeping(keep));
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

/// Free frames that allocations other than the heap's growth may take:
/// what each pool holds above its floor.
pub fn free_above_floor() -> usize {
    let keep = floor();
    (0..torus_count())
        .map(|t| stats(t).0.saturating_sub(keep))
        .sum()
}

/// Free frames of every torus, for log lines ("t0 63000 t1 64000 ...").
pub fn per_torus_free() -> alloc::string::String {
    let mut s = alloc::string::String::new();
    for t in 0..torus_count() {
        let _ = core::fmt::write(&mut s, format_args!("t{t} {} ", stats(t).0));
    }
    s
}

/// Takes `n` physically contiguous frames (device rings and buffers,
/// io_uring rings) from `torus`'s pool, or from its successors', above
/// their floors.
pub fn alloc_contiguous_on(torus: usize, n: usize) -> Option<u64> {
    let count = tori().len();
    let keep = floor();
    (0..count).find_map(|i| {
        tori()[(torus + i) % count]
            .lock()
            .alloc_contiguous_keeping(n, keep)
    })
}

/// Returns `n` contiguous frames taken with [`alloc_contiguous_on`].
pub fn free_contiguous(pa: u64, n: usize) {
    for i in 0..n as u64 {
        let _ = free(pa + i * mm::frames::FRAME_SIZE);
    }
}
