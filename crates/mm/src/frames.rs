//! Physical frame pools, one set per torus.
//!
//! Each torus owns a share of physical memory (DESIGN.md, "toroidal
//! coordinates"), so allocation and page faults never take a lock shared by
//! all tori. A [`FramePool`] is a bitmap over one contiguous physical range;
//! a [`TorusFrames`] is the list of pools a torus owns; [`partition`] splits
//! the free memory the boot code found into equal shares.

use alloc::vec::Vec;

/// Size of a frame in bytes.
pub const FRAME_SIZE: u64 = 4096;

/// Why a frame could not be returned to a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The address is not inside any pool of this owner.
    Foreign,
    /// The frame is already free.
    DoubleFree,
    /// The address is not frame-aligned.
    Unaligned,
}

/// A bitmap allocator over one contiguous physical range.
#[derive(Clone, Debug)]
pub struct FramePool {
    start: u64,
    frames: usize,
    /// Bit set = frame in use.
    used: Vec<u64>,
    free: usize,
    /// Every word below this one is full: the search for a free frame
    /// starts here, so allocation is O(1) amortised and always hands out
    /// the lowest free frame (see [`FramePool::alloc`]).
    hint: usize,
}

impl FramePool {
    /// A pool of all frames in `[start, end)` (rounded inwards to frames).
    pub fn new(start: u64, end: u64) -> Self {
        let start = start.div_ceil(FRAME_SIZE) * FRAME_SIZE;
        let end = end / FRAME_SIZE * FRAME_SIZE;
        let frames = if end > start {
            ((end - start) / FRAME_SIZE) as usize
        } else {
            0
        };
        let words = frames.div_ceil(64);
        let mut used = alloc::vec![0u64; words];
        // Bits past the end of the range are permanently "used".
        if frames % 64 != 0 {
            used[words - 1] = !0u64 << (frames % 64);
        }
        FramePool {
            start,
            frames,
            used,
            free: frames,
            hint: 0,
        }
    }

    /// Whether `pa` lies in this pool's range.
    pub fn contains(&self, pa: u64) -> bool {
        pa >= self.start && pa < self.start + self.frames as u64 * FRAME_SIZE
    }

    /// Takes the lowest free frame and returns its physical address.
    ///
    /// Lowest first, not next-fit: a next-fit cursor walks through all of
    /// memory, so every fault gets a frame nobody touched for a long time
    /// (cold in the caches; and under a hypervisor that reclaims idle guest
    /// memory, a host fault or a swap-in: page faults cost 3-20x more after
    /// a benchmark run had moved the cursor through RAM). Lowest first
    /// keeps the memory in use compact, as a buddy allocator does.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        let n = self.used.len();
        let w = (self.hint..n).find(|&w| self.used[w] != u64::MAX)?;
        let bit = (!self.used[w]).trailing_zeros() as usize;
        self.used[w] |= 1 << bit;
        self.free -= 1;
        self.hint = w;
        Some(self.start + ((w * 64 + bit) as u64) * FRAME_SIZE)
    }

    /// Takes `pa` if it is free (a frame the caller remembers as recently
    /// freed); false if it is in use again or not in this pool.
    pub fn take(&mut self, pa: u64) -> bool {
        if !pa.is_multiple_of(FRAME_SIZE) || !self.contains(pa) {
            return false;
        }
        let idx = ((pa - self.start) / FRAME_SIZE) as usize;
        let (w, bit) = (idx / 64, idx % 64);
        if self.used[w] & (1 << bit) != 0 {
            return false;
        }
        self.used[w] |= 1 << bit;
        self.free -= 1;
        true
    }

    /// Takes `n` physically contiguous free frames (device DMA rings and
    /// buffers, io_uring rings) and returns the first one's address. A
    /// linear scan from the first word with a free frame, full words
    /// skipped: it serves set-ups, not page faults.
    pub fn alloc_contiguous(&mut self, n: usize) -> Option<u64> {
        if n == 0 || self.free < n {
            return None;
        }
        let is_used = |used: &[u64], i: usize| used[i / 64] & (1 << (i % 64)) != 0;
        let mut run = 0;
        // Below the hint every word is full; full words further on are
        // skipped whole (io_uring rings come from here, at every setup).
        let mut i = self.hint * 64;
        while i < self.frames {
            if i.is_multiple_of(64) && self.used[i / 64] == u64::MAX {
                run = 0;
                i += 64;
                continue;
            }
            if is_used(&self.used, i) {
                run = 0;
            } else {
                run += 1;
                if run == n {
                    let first = i + 1 - n;
                    for j in first..=i {
                        self.used[j / 64] |= 1 << (j % 64);
                    }
                    self.free -= n;
                    return Some(self.start + first as u64 * FRAME_SIZE);
                }
            }
            i += 1;
        }
        None
    }

    /// Returns a frame to the pool.
    pub fn free(&mut self, pa: u64) -> Result<(), FreeError> {
        if !pa.is_multiple_of(FRAME_SIZE) {
            return Err(FreeError::Unaligned);
        }
        if !self.contains(pa) {
            return Err(FreeError::Foreign);
        }
        let idx = ((pa - self.start) / FRAME_SIZE) as usize;
        let (w, bit) = (idx / 64, idx % 64);
        if self.used[w] & (1 << bit) == 0 {
            return Err(FreeError::DoubleFree);
        }
        self.used[w] &= !(1 << bit);
        self.free += 1;
        self.hint = self.hint.min(w);
        Ok(())
    }

    /// Free frames.
    pub fn free_count(&self) -> usize {
        self.free
    }

    /// All frames.
    pub fn total(&self) -> usize {
        self.frames
    }
}

/// How many recently freed frames a torus remembers (2 MiB).
pub const HOT_FRAMES: usize = 512;

/// The frames one torus owns: its pools, in ascending address order, and
/// the frames freed last, handed out again first.
#[derive(Clone, Debug, Default)]
pub struct TorusFrames {
    pools: Vec<FramePool>,
    /// Recently freed frames, newest last: a frame freed a moment ago is
    /// still in the CPU's caches (Linux keeps per-CPU page lists for the
    /// same reason). Only a hint: the bitmaps stay the truth, so an entry
    /// taken meanwhile by another path (a contiguous run) is skipped.
    hot: Vec<u64>,
}

impl TorusFrames {
    /// Adds a range to this torus's memory.
    pub fn add_range(&mut self, start: u64, end: u64) {
        let p = FramePool::new(start, end);
        if p.total() > 0 {
            self.pools.push(p);
            if self.hot.capacity() == 0 {
                self.hot.reserve_exact(HOT_FRAMES);
            }
        }
    }

    /// Takes a frame: the most recently freed one still free, or else the
    /// lowest free one.
    pub fn alloc(&mut self) -> Option<u64> {
        while let Some(pa) = self.hot.pop() {
            if let Some(p) = self.pools.iter_mut().find(|p| p.contains(pa)) {
                if p.take(pa) {
                    return Some(pa);
                }
            }
        }
        self.pools.iter_mut().find(|p| p.free_count() > 0)?.alloc()
    }

    /// [`TorusFrames::alloc`], unless no more than `keep` frames are
    /// free: those are kept for a user that must not find the pool empty
    /// (the kernel heap's growth).
    pub fn alloc_keeping(&mut self, keep: usize) -> Option<u64> {
        if self.free_count() <= keep {
            return None;
        }
        self.alloc()
    }

    /// [`TorusFrames::alloc_contiguous`], leaving at least `keep` frames
    /// free (see [`TorusFrames::alloc_keeping`]).
    pub fn alloc_contiguous_keeping(&mut self, n: usize, keep: usize) -> Option<u64> {
        if self.free_count() < keep.saturating_add(n) {
            return None;
        }
        self.alloc_contiguous(n)
    }

    /// Takes `n` physically contiguous frames from one pool.
    pub fn alloc_contiguous(&mut self, n: usize) -> Option<u64> {
        self.pools
            .iter_mut()
            .filter(|p| p.free_count() >= n)
            .find_map(|p| p.alloc_contiguous(n))
    }

    /// Returns a frame (it must belong to this torus).
    pub fn free(&mut self, pa: u64) -> Result<(), FreeError> {
        match self.pools.iter_mut().find(|p| p.contains(pa)) {
            Some(p) => {
                p.free(pa)?;
                // Never grows here (the room is reserved in `add_range`):
                // freeing a frame must not allocate from the kernel heap.
                let room = self.hot.capacity();
                if self.hot.len() == room {
                    // Forget the oldest half at once: O(1) amortised.
                    self.hot.drain(..room / 2);
                }
                if self.hot.len() < room {
                    self.hot.push(pa);
                }
                Ok(())
            }
            None if !pa.is_multiple_of(FRAME_SIZE) => Err(FreeError::Unaligned),
            None => Err(FreeError::Foreign),
        }
    }

    /// Whether `pa` belongs to this torus.
    pub fn owns(&self, pa: u64) -> bool {
        self.pools.iter().any(|p| p.contains(pa))
    }

    /// Free frames.
    pub fn free_count(&self) -> usize {
        self.pools.iter().map(FramePool::free_count).sum()
    }

    /// All frames.
    pub fn total(&self) -> usize {
        self.pools.iter().map(FramePool::total).sum()
    }
}

/// Splits free physical ranges `[start, end)` into `tori` shares of (nearly)
/// equal frame counts, cutting ranges where a share ends.
pub fn partition(ranges: &[(u64, u64)], tori: usize) -> Vec<TorusFrames> {
    let tori = tori.max(1);
    let frames = |s: u64, e: u64| (e / FRAME_SIZE).saturating_sub(s.div_ceil(FRAME_SIZE));
    let total: u64 = ranges.iter().map(|&(s, e)| frames(s, e)).sum();
    let share = total.div_ceil(tori as u64).max(1);
    let mut out: Vec<TorusFrames> = (0..tori).map(|_| TorusFrames::default()).collect();
    let mut t = 0;
    let mut room = share;
    for &(s, e) in ranges {
        let mut s = s.div_ceil(FRAME_SIZE) * FRAME_SIZE;
        let e = e / FRAME_SIZE * FRAME_SIZE;
        while s < e {
            let take = room.min((e - s) / FRAME_SIZE);
            out[t].add_range(s, s + take * FRAME_SIZE);
            s += take * FRAME_SIZE;
            room -= take;
            if room == 0 && t + 1 < tori {
                t += 1;
                room = share;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use proptest::prelude::*;

    #[test]
    fn a_kept_floor_is_left_to_plain_alloc() {
        let base = 0x10_0000;
        let mut t = TorusFrames::default();
        t.add_range(base, base + 10 * FRAME_SIZE);
        for _ in 0..7 {
            assert!(t.alloc_keeping(3).is_some());
        }
        assert_eq!(t.alloc_keeping(3), None);
        assert_eq!(t.alloc_contiguous_keeping(1, 3), None);
        assert_eq!(t.free_count(), 3);
        assert!(t.alloc_contiguous(2).is_some());
        assert!(t.alloc().is_some());
        assert_eq!(t.alloc(), None);
        let mut u = TorusFrames::default();
        u.add_range(base, base + 10 * FRAME_SIZE);
        assert!(u.alloc_contiguous_keeping(7, 3).is_some());
        assert_eq!(u.alloc_contiguous_keeping(1, 3), None);
    }

    #[test]
    fn contiguous_runs_start_past_full_words_and_span_words() {
        let base = 0x10_0000;
        let mut p = FramePool::new(base, base + 256 * FRAME_SIZE);
        for _ in 0..70 {
            p.alloc().unwrap(); // frames 0..70: word 0 full, the hint past it
        }
        assert_eq!(p.alloc_contiguous(3), Some(base + 70 * FRAME_SIZE));
        p.free(base + 10 * FRAME_SIZE).unwrap(); // back below the hint
        assert_eq!(p.alloc_contiguous(1), Some(base + 10 * FRAME_SIZE));
        // 73..256 free: a run across word edges, then nothing that long.
        assert_eq!(p.alloc_contiguous(150), Some(base + 73 * FRAME_SIZE));
        assert_eq!(p.alloc_contiguous(34), None);
        assert_eq!(p.alloc_contiguous(33), Some(base + 223 * FRAME_SIZE));
    }

    #[test]
    fn contiguous_runs_skip_used_frames_and_free_singly() {
        let mut p = FramePool::new(0x10_0000, 0x10_0000 + 10 * FRAME_SIZE);
        let a = p.alloc().unwrap(); // frame 0
        let b = p.alloc().unwrap(); // frame 1
        p.free(a).unwrap(); // frame 0 free, 1 used: a run of 3 starts at 2
        let run = p.alloc_contiguous(3).unwrap();
        assert_eq!(run, 0x10_0000 + 2 * FRAME_SIZE);
        assert_eq!(p.free_count(), 10 - 1 - 3);
        // 0 and 5..10 are free: 5 in a row fit, 6 do not.
        assert_eq!(p.alloc_contiguous(6), None);
        assert_eq!(p.alloc_contiguous(5), Some(0x10_0000 + 5 * FRAME_SIZE));
        for i in 0..3 {
            p.free(run + i * FRAME_SIZE).unwrap();
        }
        p.free(b).unwrap();
        assert_eq!(p.alloc_contiguous(0), None);
        assert_eq!(p.alloc_contiguous(5), Some(0x10_0000));
    }

    #[test]
    fn alloc_until_exhausted_then_none() {
        let mut p = FramePool::new(0x10_0000, 0x10_0000 + 100 * FRAME_SIZE);
        let got: BTreeSet<u64> = (0..100).map(|_| p.alloc().unwrap()).collect();
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(|&a| p.contains(a) && a % FRAME_SIZE == 0));
        assert_eq!(p.alloc(), None);
        assert_eq!(p.free_count(), 0);
    }

    #[test]
    fn free_errors() {
        let mut p = FramePool::new(0, 64 * FRAME_SIZE);
        let a = p.alloc().unwrap();
        assert_eq!(p.free(a + 1), Err(FreeError::Unaligned));
        assert_eq!(p.free(64 * FRAME_SIZE), Err(FreeError::Foreign));
        assert_eq!(p.free(a), Ok(()));
        assert_eq!(p.free(a), Err(FreeError::DoubleFree));
    }

    #[test]
    fn unaligned_range_rounds_inwards() {
        let p = FramePool::new(100, 3 * FRAME_SIZE + 5);
        assert_eq!(p.total(), 2);
        assert!(!p.contains(0));
        let empty = FramePool::new(5 * FRAME_SIZE, 5 * FRAME_SIZE);
        assert_eq!(empty.total(), 0);
    }

    #[test]
    fn partition_is_even_and_disjoint() {
        let parts = partition(&[(0x10_0000, 0x50_0000), (0x100_0000, 0x180_0000)], 3);
        let totals: alloc::vec::Vec<usize> = parts.iter().map(TorusFrames::total).collect();
        let sum: usize = totals.iter().sum();
        assert_eq!(sum, (0x40_0000 + 0x80_0000) / FRAME_SIZE as usize);
        assert!(
            totals.iter().max().unwrap() - totals.iter().min().unwrap() <= 2,
            "{totals:?}"
        );
    }

    #[test]
    fn pool_hands_out_the_lowest_free_frame() {
        let base = 0x40_0000;
        let mut p = FramePool::new(base, base + 200 * FRAME_SIZE);
        let all: alloc::vec::Vec<u64> = (0..150).map(|_| p.alloc().unwrap()).collect();
        p.free(all[130]).unwrap();
        p.free(all[3]).unwrap();
        p.free(all[70]).unwrap();
        // Not where the last search stopped (150): the lowest hole first.
        assert_eq!(p.alloc(), Some(all[3]));
        assert_eq!(p.alloc(), Some(all[70]));
        assert_eq!(p.alloc(), Some(all[130]));
        assert_eq!(p.alloc(), Some(base + 150 * FRAME_SIZE));
    }

    #[test]
    fn torus_reuses_the_frame_freed_last() {
        let base = 0x80_0000;
        let mut t = TorusFrames::default();
        t.add_range(base, base + 4096 * FRAME_SIZE);
        let a: alloc::vec::Vec<u64> = (0..100).map(|_| t.alloc().unwrap()).collect();
        t.free(a[10]).unwrap();
        t.free(a[90]).unwrap();
        assert_eq!(t.alloc(), Some(a[90]), "newest first");
        assert_eq!(t.alloc(), Some(a[10]));
        // A remembered frame taken meanwhile by a contiguous run is skipped.
        t.free(a[99]).unwrap();
        t.free(a[98]).unwrap();
        let run = t.alloc_contiguous(2).unwrap();
        assert_eq!(run, a[98]);
        assert_eq!(t.alloc(), Some(base + 100 * FRAME_SIZE));
        // Remembered or not, a second free of one frame is refused.
        t.free(a[5]).unwrap();
        assert_eq!(t.free(a[5]), Err(FreeError::DoubleFree));
        // The list forgets its oldest half when full, and never grows.
        let cap = t.hot.capacity();
        for &f in &a[20..90] {
            t.free(f).unwrap();
        }
        assert!(t.hot.len() <= HOT_FRAMES && t.hot.capacity() == cap);
    }

    proptest! {
        #[test]
        fn pool_never_hands_out_a_frame_twice(ops in proptest::collection::vec(any::<(bool, u8)>(), 1..400)) {
            let mut p = FramePool::new(0x20_0000, 0x20_0000 + 150 * FRAME_SIZE);
            let mut held: alloc::vec::Vec<u64> = alloc::vec::Vec::new();
            let mut set = BTreeSet::new();
            for (alloc_op, k) in ops {
                if alloc_op || held.is_empty() {
                    match p.alloc() {
                        Some(a) => { prop_assert!(set.insert(a)); held.push(a); }
                        None => prop_assert_eq!(held.len(), 150),
                    }
                } else {
                    let a = held.swap_remove(k as usize % held.len());
                    set.remove(&a);
                    prop_assert_eq!(p.free(a), Ok(()));
                }
                prop_assert_eq!(p.free_count(), 150 - held.len());
            }
        }

        #[test]
        fn torus_never_hands_out_a_frame_twice(ops in proptest::collection::vec(any::<(u8, u8)>(), 1..600)) {
            let base = 0x20_0000;
            let mut t = TorusFrames::default();
            t.add_range(base, base + 40 * FRAME_SIZE);
            t.add_range(base + 100 * FRAME_SIZE, base + 150 * FRAME_SIZE);
            let mut held: alloc::vec::Vec<u64> = alloc::vec::Vec::new();
            let mut set = BTreeSet::new();
            for (op, k) in ops {
                match op % 4 {
                    0 | 1 => match t.alloc() {
                        Some(a) => { prop_assert!(set.insert(a)); held.push(a); }
                        None => prop_assert_eq!(held.len(), 90),
                    },
                    2 if !held.is_empty() => {
                        let a = held.swap_remove(k as usize % held.len());
                        set.remove(&a);
                        prop_assert_eq!(t.free(a), Ok(()));
                        prop_assert_eq!(t.free(a), Err(FreeError::DoubleFree));
                    }
                    _ => {
                        let n = 1 + k as usize % 4;
                        if let Some(a) = t.alloc_contiguous(n) {
                            for i in 0..n as u64 {
                                let f = a + i * FRAME_SIZE;
                                prop_assert!(set.insert(f));
                                held.push(f);
                            }
                        }
                    }
                }
                prop_assert_eq!(t.free_count(), 90 - held.len());
            }
        }

        #[test]
        fn partition_covers_every_frame_once(
            raw in proptest::collection::vec((0u64..1 << 20, 0u64..1 << 16), 0..8),
            tori in 1usize..9,
        ) {
            // Build disjoint ascending ranges from (gap, len) pairs, in frames.
            let mut ranges = alloc::vec::Vec::new();
            let mut cur = 0u64;
            for (gap, len) in raw {
                let s = cur + gap * FRAME_SIZE;
                let e = s + len * FRAME_SIZE;
                ranges.push((s, e));
                cur = e;
            }
            let expected: u64 = ranges.iter().map(|&(s, e)| (e - s) / FRAME_SIZE).sum();
            let parts = partition(&ranges, tori);
            prop_assert_eq!(parts.len(), tori);
            let got: u64 = parts.iter().map(|p| p.total() as u64).sum();
            prop_assert_eq!(got, expected);
            for &(s, e) in &ranges {
                let mut a = s;
                while a < e {
                    prop_assert_eq!(parts.iter().filter(|p| p.owns(a)).count(), 1);
                    a += FRAME_SIZE * 997;
                }
            }
        }
    }
}
