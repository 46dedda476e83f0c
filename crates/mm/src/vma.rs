//! Per-process address-space bookkeeping: which user ranges are mapped,
//! with what protection and backing. No hardware here — the kernel applies
//! the results to page tables (unmapping the ranges these calls return,
//! resolving page faults against [`VmaMap::find`]).
//!
//! A [`VmaMap`] keeps page-aligned, non-overlapping [`Vma`]s in a `BTreeMap`
//! keyed by start address, and implements the range semantics of
//! `mmap(MAP_FIXED)`, `munmap`, `mprotect` and `brk`, including the splits
//! at the edges of a range and the errno values Linux returns. Adjacent
//! private anonymous VMAs with identical attributes are merged, as Linux
//! does, so the map stays small under brk/mmap churn.
//!
//! `B` is whatever the kernel uses to name a mapped object (a file or a
//! shared-memory handle); it is cloned when a VMA is split or the map is
//! cloned for fork.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use core::ops::BitOr;

use abi::{Errno, KResult};

/// Page size of user mappings.
pub const PAGE_SIZE: u64 = 4096;

/// First address above user space (Linux `TASK_SIZE` with 4-level paging);
/// the same bound the ELF loader checks segments against.
pub const USER_TOP: u64 = abi::elf::USER_TOP;

fn aligned(x: u64) -> bool {
    x.is_multiple_of(PAGE_SIZE)
}

fn page_up(x: u64) -> Option<u64> {
    Some(x.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// Access rights of a mapping; the bit values are Linux's `PROT_*`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Prot(u8);

impl Prot {
    /// `PROT_NONE`.
    pub const NONE: Prot = Prot(0);
    /// `PROT_READ`.
    pub const READ: Prot = Prot(1);
    /// `PROT_WRITE`.
    pub const WRITE: Prot = Prot(2);
    /// `PROT_EXEC`.
    pub const EXEC: Prot = Prot(4);
    /// Read and write: heap, stack, data.
    pub const RW: Prot = Prot(3);

    /// From a syscall's `prot` argument. `EINVAL` on unknown bits —
    /// including `PROT_GROWSDOWN`/`PROT_GROWSUP`, which we do not support.
    pub fn from_linux(bits: u64) -> KResult<Prot> {
        if bits & !7 != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(Prot(bits as u8))
    }

    /// The `PROT_*` bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether every right in `other` is also in `self`.
    pub fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Prot {
    type Output = Prot;
    fn bitor(self, rhs: Prot) -> Prot {
        Prot(self.0 | rhs.0)
    }
}

impl fmt::Debug for Prot {
    /// `rwx`-style, as in /proc/pid/maps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |p: Prot, ch| if self.contains(p) { ch } else { '-' };
        write!(
            f,
            "{}{}{}",
            c(Prot::READ, 'r'),
            c(Prot::WRITE, 'w'),
            c(Prot::EXEC, 'x')
        )
    }
}

/// What a VMA is for (shown in /proc/pid/maps, and decides merging).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmaKind {
    /// Anonymous `mmap`.
    Anon,
    /// The initial process stack.
    Stack,
    /// The `brk` heap.
    Heap,
    /// A file mapping (ELF segments included).
    File,
}

/// What fork does with a VMA (madvise MADV_DONTFORK / MADV_WIPEONFORK).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnFork {
    /// The child gets it (copy-on-write, or shared).
    Copy,
    /// The child does not get it (MADV_DONTFORK).
    Skip,
    /// The child gets the range, zero-filled (MADV_WIPEONFORK).
    Wipe,
}

/// Most VMAs one address space may hold (Linux's default
/// vm.max_map_count): each is kernel memory a user chose to make the
/// kernel hold. A mapping or a split that would pass it is ENOMEM.
pub const MAX_MAP_COUNT: usize = 65_530;

/// One mapped range `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma<B> {
    /// Page-aligned first address.
    pub start: u64,
    /// Page-aligned end, exclusive; `> start`.
    pub end: u64,
    /// Access rights.
    pub prot: Prot,
    /// `MAP_SHARED`: writes reach the backing object and other mappers.
    pub shared: bool,
    /// What fork gives the child.
    pub fork: OnFork,
    /// Purpose.
    pub kind: VmaKind,
    /// Backing object and the (page-aligned) offset in it of `start`.
    pub backing: Option<(B, u64)>,
}

impl<B> Vma<B> {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Never true for a VMA in a map (kept for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Whether `addr` is inside.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Backing object and offset of the page holding `addr`, for a fault.
    pub fn backing_at(&self, addr: u64) -> Option<(&B, u64)> {
        let (b, off) = self.backing.as_ref()?;
        Some((b, off + ((addr & !(PAGE_SIZE - 1)) - self.start)))
    }

    /// Anonymous private memory with nothing behind it can merge with an
    /// identical neighbour; shared or backed VMAs name distinct objects.
    fn can_merge(&self, next: &Vma<B>) -> bool {
        self.end == next.start
            && self.prot == next.prot
            && self.kind == next.kind
            && self.kind != VmaKind::File
            && self.fork == next.fork
            && !self.shared
            && !next.shared
            && self.backing.is_none()
            && next.backing.is_none()
    }
}

/// A process's address space: sorted, disjoint, page-aligned VMAs.
#[derive(Clone, Debug)]
pub struct VmaMap<B> {
    map: BTreeMap<u64, Vma<B>>,
    /// Sum of all VMA lengths, kept incrementally for RLIMIT_AS checks.
    total: u64,
}

impl<B: Clone> Default for VmaMap<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Clone> VmaMap<B> {
    /// An empty address space.
    pub fn new() -> Self {
        VmaMap {
            map: BTreeMap::new(),
            total: 0,
        }
    }

    /// Number of VMAs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No VMA at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// VMAs in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Vma<B>> {
        self.map.values()
    }

    /// Bytes mapped in total (for RLIMIT_AS).
    pub fn total_mapped(&self) -> u64 {
        self.total
    }

    /// The VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma<B>> {
        let (_, v) = self.map.range(..=addr).next_back()?;
        v.contains(addr).then_some(v)
    }

    /// VMAs intersecting `[start, end)`, in order.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma<B>> {
        // The VMA containing `start` begins before it; start the walk there.
        let from = self.find(start).map_or(start, |v| v.start);
        self.map
            .range(from..end.max(from))
            .map(|(_, v)| v)
            .filter(move |v| v.end > start)
    }

    /// Bytes already mapped inside `[start, end)`: what a `MAP_FIXED`
    /// mapping there would replace, for an RLIMIT_AS check before inserting.
    pub fn mapped_in(&self, start: u64, end: u64) -> u64 {
        self.overlapping(start, end)
            .map(|v| v.end.min(end) - v.start.max(start))
            .sum()
    }

    /// Whether every byte of `[start, start+len)` is mapped with at least
    /// `need` rights: the check behind a user copy (else EFAULT).
    pub fn range_allows(&self, start: u64, len: u64, need: Prot) -> bool {
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        let mut at = start;
        while at < end {
            match self.find(at) {
                Some(v) if v.prot.contains(need) => at = v.end,
                _ => return false,
            }
        }
        true
    }

    /// Whether no VMA intersects `[start, end)`.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.map
            .range(..end)
            .next_back()
            .is_none_or(|(_, v)| v.end <= start)
    }

    /// Maps `vma`, replacing whatever overlapped it (`MAP_FIXED`
    /// semantics). Returns the pieces removed, which the kernel must unmap
    /// from the page tables. `EINVAL` for an unaligned or empty range or one
    /// past [`USER_TOP`] or an unaligned backing offset; `EOVERFLOW` if the
    /// backing offset of the end would overflow.
    pub fn insert(&mut self, vma: Vma<B>) -> KResult<Vec<Vma<B>>> {
        if !aligned(vma.start) || !aligned(vma.end) || vma.start >= vma.end || vma.end > USER_TOP {
            return Err(Errno::EINVAL);
        }
        if let Some((_, off)) = &vma.backing {
            if !aligned(*off) {
                return Err(Errno::EINVAL);
            }
            off.checked_add(vma.len()).ok_or(Errno::EOVERFLOW)?;
        }
        self.room_for(vma.start, vma.end, 1)?;
        let (start, end) = (vma.start, vma.end);
        let removed = self.remove_range(start, end);
        self.total += vma.len();
        self.map.insert(start, vma);
        self.merge_at(start);
        self.merge_at(end);
        Ok(removed)
    }

    /// `munmap(start, len)`: removes every mapped byte in the range,
    /// splitting VMAs at its edges. Unmapping holes is not an error.
    /// Returns the removed pieces. `EINVAL` as Linux: unaligned `start`,
    /// zero `len`, or a range past user space.
    pub fn unmap(&mut self, start: u64, len: u64) -> KResult<Vec<Vma<B>>> {
        if !aligned(start) || start > USER_TOP || len > USER_TOP - start || len == 0 {
            return Err(Errno::EINVAL);
        }
        // Cannot overflow or pass USER_TOP: start and USER_TOP are aligned.
        let end = start + page_up(len).ok_or(Errno::EINVAL)?;
        self.room_for(start, end, 0)?;
        Ok(self.remove_range(start, end))
    }

    /// `mprotect(start, len, prot)`: sets the rights of every page in the
    /// range, splitting VMAs at its edges. As Linux: `EINVAL` for an
    /// unaligned `start`, success for `len == 0`, `ENOMEM` if the range
    /// wraps or any part of it is unmapped — checked before anything
    /// changes, so a failed call leaves the map as it was.
    pub fn protect(&mut self, start: u64, len: u64, prot: Prot) -> KResult<()> {
        if !aligned(start) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let end = page_up(len)
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e > start)
            .ok_or(Errno::ENOMEM)?;
        if !self.is_covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        self.room_for(start, end, 0)?;
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        for &k in &keys {
            if let Some(v) = self.map.get_mut(&k) {
                v.prot = prot;
            }
        }
        // Changing rights can make neighbours identical at any boundary.
        for k in keys {
            self.merge_at(k);
        }
        self.merge_at(end);
        Ok(())
    }

    /// A free, page-aligned address for `len` bytes inside
    /// `[lowest, highest)`: `hint` (rounded up to a page) if that range is
    /// free, else the highest fitting gap (top-down, as Linux's mmap
    /// layout). `None` if `len` is 0 or nothing fits.
    pub fn find_free(&self, len: u64, hint: u64, lowest: u64, highest: u64) -> Option<u64> {
        let len = page_up(len).filter(|&l| l > 0)?;
        let lowest = page_up(lowest)?;
        let highest = highest.min(USER_TOP) & !(PAGE_SIZE - 1);
        if hint != 0 {
            if let Some(h) = page_up(hint) {
                if h >= lowest
                    && h.checked_add(len)
                        .is_some_and(|e| e <= highest && self.is_free(h, e))
                {
                    return Some(h);
                }
            }
        }
        // Walk gaps downwards from `highest`; `gap_end` is the top of the
        // current candidate gap.
        let mut gap_end = highest;
        for v in self.map.range(..highest).rev().map(|(_, v)| v) {
            if v.end <= gap_end && gap_end >= lowest && gap_end - v.end.max(lowest) >= len {
                return Some(gap_end - len);
            }
            gap_end = gap_end.min(v.start);
            if gap_end < lowest.saturating_add(len) {
                return None;
            }
        }
        (gap_end >= lowest && gap_end - lowest >= len).then(|| gap_end - len)
    }

    /// Moves the program break from `old_brk` to `new_brk` for a heap that
    /// starts at `heap_start`: the heap VMAs cover
    /// `[heap_start, page_up(brk))`. Growing maps new read-write heap pages
    /// (merged into the existing heap VMA) and fails with `ENOMEM` if they
    /// would overlap any other mapping or leave user space; shrinking
    /// unmaps and returns the removed pieces. `ENOMEM` if `new_brk <
    /// heap_start` (brk(2) then returns the old break); `EINVAL` for an
    /// unaligned `heap_start` or `old_brk < heap_start` (a kernel bug).
    pub fn set_brk(&mut self, old_brk: u64, new_brk: u64, heap_start: u64) -> KResult<Vec<Vma<B>>> {
        if !aligned(heap_start) || old_brk < heap_start {
            return Err(Errno::EINVAL);
        }
        if new_brk < heap_start {
            return Err(Errno::ENOMEM);
        }
        let old_end = page_up(old_brk).ok_or(Errno::EINVAL)?;
        let new_end = page_up(new_brk)
            .filter(|&e| e <= USER_TOP)
            .ok_or(Errno::ENOMEM)?;
        if new_end > old_end {
            if !self.is_free(old_end, new_end) {
                return Err(Errno::ENOMEM);
            }
            self.insert(Vma {
                start: old_end,
                end: new_end,
                prot: Prot::RW,
                shared: false,
                fork: OnFork::Copy,
                kind: VmaKind::Heap,
                backing: None,
            })?;
            Ok(Vec::new())
        } else {
            Ok(self.remove_range(new_end, old_end))
        }
    }

    /// Applies `f` to every mapped piece of `[start, end)` (both
    /// page-aligned), splitting VMAs at the range's edges and merging
    /// what became identical after. Returns whether the range was mapped
    /// without holes (madvise: ENOMEM otherwise, after applying it to the
    /// mapped parts, as Linux). `ENOMEM` before anything changes if the
    /// splits would pass [`MAX_MAP_COUNT`].
    pub fn update(
        &mut self,
        start: u64,
        end: u64,
        mut f: impl FnMut(&mut Vma<B>),
    ) -> KResult<bool> {
        if start >= end {
            return Ok(true);
        }
        self.room_for(start, end, 0)?;
        let covered = self.is_covered(start, end);
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        for &k in &keys {
            if let Some(v) = self.map.get_mut(&k) {
                f(v);
            }
        }
        for k in keys {
            self.merge_at(k);
        }
        self.merge_at(end);
        Ok(covered)
    }

    /// Takes `[start, end)` (page-aligned) out of the map, splitting at
    /// its edges: the pieces, in order (mremap moves them).
    pub fn take(&mut self, start: u64, end: u64) -> Vec<Vma<B>> {
        self.remove_range(start, end)
    }

    /// Grows the VMA that ends at `end` to `new_end`, if
    /// `[end, new_end)` is free and inside user space (mremap in place).
    /// `ENOMEM` otherwise; `EFAULT` if no VMA ends at `end`.
    pub fn grow(&mut self, end: u64, new_end: u64) -> KResult<()> {
        if !aligned(new_end) || new_end <= end || new_end > USER_TOP {
            return Err(Errno::ENOMEM);
        }
        let Some((&k, v)) = self.map.range(..end).next_back() else {
            return Err(Errno::EFAULT);
        };
        if v.end != end {
            return Err(Errno::EFAULT);
        }
        if let Some((_, off)) = &v.backing {
            off.checked_add(new_end - k).ok_or(Errno::ENOMEM)?;
        }
        if !self.is_free(end, new_end) {
            return Err(Errno::ENOMEM);
        }
        if let Some(v) = self.map.get_mut(&k) {
            v.end = new_end;
        }
        self.total += new_end - end;
        self.merge_at(new_end);
        Ok(())
    }

    /// Whether `[start, end)` is mapped without holes.
    fn is_covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for v in self.overlapping(start, end) {
            if v.start > at {
                return false;
            }
            at = v.end;
        }
        at >= end
    }

    /// `ENOMEM` if splitting at `start` and `end` and adding `adding` VMAs
    /// would pass [`MAX_MAP_COUNT`] (merges after are not counted, as
    /// Linux counts before merging).
    fn room_for(&self, start: u64, end: u64, adding: usize) -> KResult<()> {
        let splits = usize::from(self.splits_at(start)) + usize::from(self.splits_at(end));
        if self.map.len() + splits + adding > MAX_MAP_COUNT {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Whether a VMA strictly contains `addr` (a split there adds one).
    fn splits_at(&self, addr: u64) -> bool {
        self.map
            .range(..addr)
            .next_back()
            .is_some_and(|(_, v)| v.end > addr)
    }

    /// Splits the VMA strictly containing `addr` into two at `addr`.
    fn split_at(&mut self, addr: u64) {
        let Some((&k, v)) = self.map.range_mut(..addr).next_back() else {
            return;
        };
        if v.end <= addr {
            return;
        }
        let mut right = v.clone();
        v.end = addr;
        right.start = addr;
        if let Some((_, off)) = &mut right.backing {
            // insert() checked offset + len does not overflow.
            *off += addr - k;
        }
        self.map.insert(addr, right);
    }

    /// Removes everything in `[start, end)` (both page-aligned), returning
    /// the removed pieces in address order.
    fn remove_range(&mut self, start: u64, end: u64) -> Vec<Vma<B>> {
        if start >= end {
            // Splitting at an empty range would leave needless pieces.
            return Vec::new();
        }
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        let mut removed = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(v) = self.map.remove(&k) {
                self.total -= v.len();
                removed.push(v);
            }
        }
        removed
    }

    /// Merges the VMA ending at `addr` with the one starting there, if
    /// they are interchangeable.
    fn merge_at(&mut self, addr: u64) {
        let Some((&lk, left)) = self.map.range(..addr).next_back() else {
            return;
        };
        let Some(right) = self.map.get(&addr) else {
            return;
        };
        if !left.can_merge(right) {
            return;
        }
        let end = right.end;
        self.map.remove(&addr);
        if let Some(left) = self.map.get_mut(&lk) {
            left.end = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec;
    use proptest::prelude::*;

    const P: u64 = PAGE_SIZE;

    fn anon(start: u64, end: u64, prot: Prot) -> Vma<u32> {
        Vma {
            start,
            end,
            prot,
            shared: false,
            fork: OnFork::Copy,
            kind: VmaKind::Anon,
            backing: None,
        }
    }

    fn file(start: u64, end: u64, id: u32, off: u64) -> Vma<u32> {
        Vma {
            start,
            end,
            prot: Prot::READ,
            shared: false,
            fork: OnFork::Copy,
            kind: VmaKind::File,
            backing: Some((id, off)),
        }
    }

    #[test]
    fn the_count_of_vmas_is_bounded() {
        const P: u64 = PAGE_SIZE;
        let pages = 2 * MAX_MAP_COUNT as u64 + 10;
        let mut m = VmaMap::new();
        m.insert(anon(0x10000, 0x10000 + pages * P, Prot::NONE))
            .unwrap();
        let mut err = None;
        for i in (1..pages).step_by(2) {
            if let Err(e) = m.protect(0x10000 + i * P, P, Prot::READ) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(Errno::ENOMEM));
        assert!(m.len() <= MAX_MAP_COUNT && m.len() >= MAX_MAP_COUNT - 2);
        // Every other way to split or add fails too, and leaves the map.
        let n = m.len();
        let top = 0x10000 + pages * P;
        assert_eq!(
            m.unmap(top - 3 * P, P).map(|_| ()),
            Err(Errno::ENOMEM),
            "a hole in the middle of the last VMA"
        );
        assert_eq!(
            m.update(top - 3 * P, top - 2 * P, |v| v.fork = OnFork::Skip),
            Err(Errno::ENOMEM)
        );
        assert_eq!(m.len(), n);
        // New VMAs fill what is left, up to the limit exactly.
        let mut at = top + 4 * P;
        while m.len() < MAX_MAP_COUNT {
            m.insert(anon(at, at + P, Prot::RW)).unwrap();
            at += 2 * P;
        }
        assert_eq!(
            m.insert(anon(at, at + P, Prot::RW)).map(|_| ()),
            Err(Errno::ENOMEM)
        );
        assert_eq!(m.len(), MAX_MAP_COUNT);
        // Removing whole VMAs needs no room, and makes some.
        m.unmap(0x10000, at - 0x10000).unwrap();
        assert!(m.is_empty());
    }

    #[test]
    fn insert_replaces_and_merges() {
        let mut m = VmaMap::new();
        assert!(m
            .insert(anon(0x10000, 0x20000, Prot::RW))
            .unwrap()
            .is_empty());
        assert!(m
            .insert(anon(0x20000, 0x30000, Prot::RW))
            .unwrap()
            .is_empty());
        assert_eq!(m.len(), 1, "identical neighbours merge");
        let removed = m.insert(file(0x18000, 0x1a000, 7, 0x3000)).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!((removed[0].start, removed[0].end), (0x18000, 0x1a000));
        assert_eq!(m.len(), 3);
        assert_eq!(m.total_mapped(), 0x20000);
        assert_eq!(
            m.find(0x19fff).unwrap().backing_at(0x19fff),
            Some((&7, 0x4000))
        );
        assert!(m.find(0x30000).is_none());
        assert_eq!(
            m.insert(anon(0x1001, 0x2000, Prot::RW)).unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(
            m.insert(anon(0x2000, 0x2000, Prot::RW)).unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(
            m.insert(anon(USER_TOP, USER_TOP + P, Prot::RW))
                .unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(
            m.insert(file(0, P, 1, !(P - 1))).unwrap_err(),
            Errno::EOVERFLOW
        );
        assert_eq!(m.insert(file(0, P, 1, 5)).unwrap_err(), Errno::EINVAL);
    }

    #[test]
    fn unmap_splits_and_adjusts_offsets() {
        let mut m = VmaMap::new();
        m.insert(file(0x10000, 0x20000, 1, 0x100000)).unwrap();
        let removed = m.unmap(0x12000, 0x1001).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!((removed[0].start, removed[0].end), (0x12000, 0x14000));
        assert_eq!(removed[0].backing, Some((1, 0x102000)));
        assert_eq!(m.find(0x14000).unwrap().backing, Some((1, 0x104000)));
        assert_eq!(m.total_mapped(), 0xe000);
        assert!(m.unmap(0x50000, P).unwrap().is_empty());
        assert_eq!(m.unmap(0x10001, P).unwrap_err(), Errno::EINVAL);
        assert_eq!(m.unmap(0x10000, 0).unwrap_err(), Errno::EINVAL);
        assert_eq!(m.unmap(0x10000, u64::MAX).unwrap_err(), Errno::EINVAL);
    }

    #[test]
    fn protect_is_all_or_nothing() {
        let mut m = VmaMap::new();
        m.insert(anon(0x10000, 0x20000, Prot::RW)).unwrap();
        m.insert(anon(0x30000, 0x40000, Prot::RW)).unwrap();
        assert_eq!(m.protect(0x18000, 0x20000, Prot::READ), Err(Errno::ENOMEM));
        assert_eq!(m.len(), 2, "failed mprotect changed nothing");
        assert_eq!(m.protect(0x18001, P, Prot::READ), Err(Errno::EINVAL));
        assert_eq!(m.protect(0x18000, 0, Prot::READ), Ok(()));
        assert_eq!(m.protect(0x18000, u64::MAX, Prot::READ), Err(Errno::ENOMEM));
        m.protect(0x12000, 1, Prot::READ).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m.find(0x12000).unwrap().prot, Prot::READ);
        assert_eq!(format!("{:?}", m.find(0x13000).unwrap().prot), "rw-");
        m.protect(0x12000, P, Prot::RW).unwrap();
        assert_eq!(m.len(), 2, "restoring the rights merges back");
        assert!(m.range_allows(0x10000, 0x10000, Prot::WRITE));
        assert!(!m.range_allows(0x10000, 0x10001, Prot::READ));
        assert!(!m.range_allows(u64::MAX, 2, Prot::NONE));
        assert_eq!(Prot::from_linux(8), Err(Errno::EINVAL));
        assert_eq!(Prot::from_linux(5).unwrap(), Prot::READ | Prot::EXEC);
    }

    extern crate std;
    use std::format;

    #[test]
    fn find_free_is_top_down_and_honours_hints() {
        let mut m: VmaMap<u32> = VmaMap::new();
        m.insert(anon(0x7000_0000, 0x7000_4000, Prot::RW)).unwrap();
        assert_eq!(
            m.find_free(0x1000, 0, 0x1000, 0x7000_4000),
            Some(0x6fff_f000)
        );
        assert_eq!(
            m.find_free(0x1000, 0, 0x1000, 0x7000_5000),
            Some(0x7000_4000)
        );
        assert_eq!(
            m.find_free(0x1000, 0x1234, 0x1000, 0x7000_5000),
            Some(0x2000)
        );
        assert_eq!(
            m.find_free(0x1000, 0x7000_1000, 0x1000, 0x7000_5000),
            Some(0x7000_4000)
        );
        assert_eq!(m.find_free(0x4000, 0, 0x7000_0000, 0x7000_6000), None);
        assert_eq!(m.find_free(0, 0, 0, USER_TOP), None);
        assert_eq!(m.find_free(u64::MAX, 0, 0, USER_TOP), None);
    }

    #[test]
    fn brk_grows_and_shrinks() {
        let mut m: VmaMap<u32> = VmaMap::new();
        let h = 0x60_0000;
        assert!(m.set_brk(h, h + 10, h).unwrap().is_empty());
        assert!(m.set_brk(h + 10, h + 0x5000, h).unwrap().is_empty());
        assert_eq!(m.len(), 1);
        assert_eq!(m.find(h + 0x4fff).unwrap().kind, VmaKind::Heap);
        let r = m.set_brk(h + 0x5000, h + 0x1001, h).unwrap();
        assert_eq!((r[0].start, r[0].end), (h + 0x2000, h + 0x5000));
        m.insert(anon(h + 0x8000, h + 0x9000, Prot::RW)).unwrap();
        assert_eq!(m.set_brk(h + 0x1001, h + 0x8001, h), Err(Errno::ENOMEM));
        assert_eq!(m.set_brk(h + 0x1001, h - 1, h), Err(Errno::ENOMEM));
        assert_eq!(m.set_brk(h + 0x1001, u64::MAX, h), Err(Errno::ENOMEM));
        assert!(m.set_brk(h + 0x1001, h, h).unwrap().len() == 1);
        assert!(m.set_brk(h, h + 0x8000, h).is_ok());
        let fork = m.clone();
        assert_eq!(fork.total_mapped(), m.total_mapped());
    }

    // --- Model-based property test -----------------------------------

    const BASE: u64 = 0x1000_0000;
    const PAGES: u64 = 128;
    const HEAP: u64 = BASE + 64 * P;

    #[derive(Clone, Debug)]
    enum Op {
        Insert {
            at: u64,
            n: u64,
            prot: u8,
            shared: bool,
            kind: u8,
            file: Option<(u32, u64)>,
        },
        Unmap {
            at: u64,
            n: u64,
        },
        Protect {
            at: u64,
            n: u64,
            prot: u8,
        },
        Brk {
            pages: u64,
            extra: u64,
        },
        FindFree {
            n: u64,
            hint: u64,
            lo: u64,
            hi: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..PAGES, 1..24u64, 0..8u8, any::<bool>(), 0..3u8, proptest::option::of((0..3u32, 0..8u64)))
                .prop_map(|(at, n, prot, shared, kind, file)| Op::Insert { at, n, prot, shared, kind, file }),
            2 => (0..PAGES, 1..24u64).prop_map(|(at, n)| Op::Unmap { at, n }),
            2 => (0..PAGES, 1..24u64, 0..8u8).prop_map(|(at, n, prot)| Op::Protect { at, n, prot }),
            2 => (0..40u64, 0..P).prop_map(|(pages, extra)| Op::Brk { pages, extra }),
            1 => (1..16u64, 0..PAGES + 8, 0..PAGES, 0..PAGES + 8)
                .prop_map(|(n, hint, lo, hi)| Op::FindFree { n, hint, lo, hi }),
        ]
    }

    /// Per-page truth: (prot, shared, kind, backing at this page).
    type Page = (Prot, bool, VmaKind, Option<(u32, u64)>);

    fn addr(p: u64) -> u64 {
        BASE + p * P
    }

    fn model_free(model: &BTreeMap<u64, Page>, from: u64, to: u64) -> bool {
        model.range(from..to).next().is_none()
    }

    fn check(m: &VmaMap<u32>, model: &BTreeMap<u64, Page>) {
        let mut prev: Option<&Vma<u32>> = None;
        let mut pages = 0;
        for (k, v) in &m.map {
            assert_eq!(*k, v.start);
            assert!(v.start < v.end && aligned(v.start) && aligned(v.end));
            if let Some(p) = prev {
                assert!(p.end <= v.start, "overlap");
                assert!(!p.can_merge(v), "unmerged neighbours");
            }
            for a in (v.start..v.end).step_by(P as usize) {
                let want = (
                    v.prot,
                    v.shared,
                    v.kind,
                    v.backing_at(a).map(|(b, o)| (*b, o)),
                );
                assert_eq!(model.get(&a), Some(&want), "page {a:#x}");
                pages += 1;
            }
            prev = Some(v);
        }
        assert_eq!(pages, model.len());
        assert_eq!(m.total_mapped(), pages as u64 * P);
    }

    fn removed_pages(removed: &[Vma<u32>]) -> Vec<u64> {
        removed
            .iter()
            .flat_map(|v| (v.start..v.end).step_by(P as usize))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn ops_match_page_model(ops in proptest::collection::vec(op(), 1..60)) {
            let mut m: VmaMap<u32> = VmaMap::new();
            let mut model: BTreeMap<u64, Page> = BTreeMap::new();
            let mut brk = HEAP;
            for op in ops {
                match op {
                    Op::Insert { at, n, prot, shared, kind, file } => {
                        let (s, e) = (addr(at), addr(at + n));
                        let kind = match (file, kind) {
                            (Some(_), _) => VmaKind::File,
                            (None, 0) => VmaKind::Anon,
                            (None, 1) => VmaKind::Stack,
                            _ => VmaKind::Heap,
                        };
                        let backing = file.map(|(id, o)| (id, o * P));
                        let prot = Prot(prot);
                        let before: Vec<u64> = model.range(s..e).map(|(&k, _)| k).collect();
                        let removed = m.insert(Vma { start: s, end: e, prot, shared, fork: OnFork::Copy, kind, backing }).unwrap();
                        prop_assert_eq!(removed_pages(&removed), before);
                        for (i, a) in (s..e).step_by(P as usize).enumerate() {
                            let b = backing.map(|(id, o)| (id, o + i as u64 * P));
                            model.insert(a, (prot, shared, kind, b));
                        }
                    }
                    Op::Unmap { at, n } => {
                        let (s, e) = (addr(at), addr(at + n));
                        let before: Vec<u64> = model.range(s..e).map(|(&k, _)| k).collect();
                        let removed = m.unmap(s, n * P - 1).unwrap();
                        prop_assert_eq!(removed_pages(&removed), before);
                        model.retain(|&a, _| a < s || a >= e);
                    }
                    Op::Protect { at, n, prot } => {
                        let (s, e) = (addr(at), addr(at + n));
                        let covered = model.range(s..e).count() as u64 == n;
                        let r = m.protect(s, n * P, Prot(prot));
                        prop_assert_eq!(r.is_ok(), covered);
                        if covered {
                            for (_, pg) in model.range_mut(s..e) {
                                pg.0 = Prot(prot);
                            }
                        }
                    }
                    Op::Brk { pages, extra } => {
                        let new = HEAP + pages * P + extra;
                        let (oe, ne) = (page_up(brk).unwrap(), page_up(new).unwrap());
                        let ok = ne <= oe || model_free(&model, oe, ne);
                        let r = m.set_brk(brk, new, HEAP);
                        prop_assert_eq!(r.is_ok(), ok);
                        if let Ok(removed) = r {
                            if ne > oe {
                                for a in (oe..ne).step_by(P as usize) {
                                    model.insert(a, (Prot::RW, false, VmaKind::Heap, None));
                                }
                            } else {
                                let before: Vec<u64> = model.range(ne..oe).map(|(&k, _)| k).collect();
                                prop_assert_eq!(removed_pages(&removed), before);
                                model.retain(|&a, _| a < ne || a >= oe);
                            }
                            brk = new;
                        }
                    }
                    Op::FindFree { n, hint, lo, hi } => {
                        let (len, lo, hi) = (n * P, addr(lo), addr(hi));
                        let fits = |s: u64| s >= lo && s + len <= hi && model_free(&model, s, s + len);
                        let got = m.find_free(len, addr(hint), lo, hi);
                        let best = (0..PAGES + 8).rev().map(addr).find(|&s| fits(s));
                        if fits(addr(hint)) {
                            prop_assert_eq!(got, Some(addr(hint)));
                        } else {
                            prop_assert_eq!(got, best);
                        }
                    }
                }
                check(&m, &model);
            }
        }
    }

    #[test]
    fn update_take_and_grow() {
        let mut m = VmaMap::new();
        m.insert(anon(0x10000, 0x20000, Prot::RW)).unwrap();
        m.insert(anon(0x30000, 0x40000, Prot::RW)).unwrap();
        assert!(!m
            .update(0x18000, 0x38000, |v| v.fork = OnFork::Skip)
            .unwrap());
        assert_eq!(m.len(), 4, "split at both edges, the hole left alone");
        assert_eq!(m.find(0x18000).unwrap().fork, OnFork::Skip);
        assert_eq!(m.find(0x17000).unwrap().fork, OnFork::Copy);
        assert!(m
            .update(0x18000, 0x20000, |v| v.fork = OnFork::Copy)
            .unwrap());
        assert_eq!(m.len(), 3, "identical again: merged");
        let t = m.take(0x30000, 0x34000);
        assert_eq!((t[0].start, t[0].end), (0x30000, 0x34000));
        assert_eq!(m.total_mapped(), 0x1c000);
        assert_eq!(m.grow(0x20000, 0x24000), Ok(()));
        assert_eq!(m.find(0x23fff).unwrap().start, 0x10000);
        assert_eq!(m.grow(0x24000, 0x40000), Err(Errno::ENOMEM), "not free");
        assert_eq!(m.grow(0x25000, 0x26000), Err(Errno::EFAULT));
        assert_eq!(m.total_mapped(), 0x20000);
        m.insert(file(0x50000, 0x51000, 1, 0x2000)).unwrap();
        m.grow(0x51000, 0x53000).unwrap();
        assert_eq!(
            m.find(0x52000).unwrap().backing_at(0x52000),
            Some((&1, 0x4000))
        );
    }

    #[test]
    fn overlapping_and_mapped_in() {
        let mut m = VmaMap::new();
        m.insert(anon(0x10000, 0x20000, Prot::RW)).unwrap();
        m.insert(file(0x20000, 0x30000, 1, 0)).unwrap();
        assert_eq!(m.overlapping(0x1f000, 0x21000).count(), 2);
        assert_eq!(m.overlapping(0x30000, 0x40000).count(), 0);
        assert_eq!(m.mapped_in(0x18000, 0x40000), 0x18000);
        assert_eq!(
            vec![0x10000, 0x20000],
            m.iter().map(|v| v.start).collect::<Vec<_>>()
        );
    }
}
