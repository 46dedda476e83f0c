//! Reference counts of user frames, so copy-on-write pages shared after
//! fork are freed only when the last mapping goes. One atomic per frame
//! of RAM, indexed by frame number: no lock on the fault path.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Once;

static REFS: Once<Vec<AtomicU32>> = Once::new();

/// Sizes the table for physical memory up to `max_pa`.
pub fn init(max_pa: u64) {
    REFS.call_once(|| {
        (0..max_pa.div_ceil(4096))
            .map(|_| AtomicU32::new(0))
            .collect()
    });
}

fn slot(pa: u64) -> &'static AtomicU32 {
    &REFS.get().expect("refcount table initialised")[(pa / 4096) as usize]
}

/// A fresh user frame (contents undefined), one reference.
pub fn alloc(torus: usize) -> Option<u64> {
    let pa = crate::frames::alloc_on(torus)?;
    slot(pa).store(1, Ordering::Relaxed);
    Some(pa)
}

/// Gives `pa`, a frame just taken from the frame pool some other way (a
/// contiguous run), its first reference, as [`alloc`] does.
pub fn adopt(pa: u64) {
    slot(pa).store(1, Ordering::Relaxed);
}

/// One more mapping of `pa`.
pub fn share(pa: u64) {
    slot(pa).fetch_add(1, Ordering::Relaxed);
}

/// References to `pa`.
pub fn count(pa: u64) -> u32 {
    slot(pa).load(Ordering::Relaxed)
}

/// Drops one reference; frees the frame at zero.
pub fn put(pa: u64) {
    if slot(pa).fetch_sub(1, Ordering::AcqRel) == 1 {
        let _ = crate::frames::free(pa);
    }
}
