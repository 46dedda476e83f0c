//! Advisory file locks as Linux keeps them on an inode.
//!
//! Two independent lists per inode:
//! - [`RangeLocks`]: byte-range record locks. POSIX locks (`fcntl`
//!   F_SETLK…, owned by a process's descriptor table) and OFD locks
//!   (F_OFD_SETLK…, owned by an open file description) live in the same
//!   list and conflict with each other; an owner's own locks never
//!   conflict with each other: a new lock replaces, splits or merges with
//!   them (POSIX "lock conversion").
//! - [`FlockLocks`]: whole-file `flock(2)` locks, owned by open file
//!   descriptions. They never interact with record locks (as on Linux).
//!
//! Owners are plain numbers the kernel hands out; ranges are inclusive
//! `[start, end]` byte offsets, `end == OFFSET_MAX` meaning "to the end
//! of the file, wherever it is" (Linux's `l_len == 0`).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// The largest file offset (`OFFSET_MAX`, i.e. `i64::MAX`).
pub const OFFSET_MAX: u64 = i64::MAX as u64;

/// Shared (read) or exclusive (write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    /// `F_RDLCK` / `LOCK_SH`.
    Read,
    /// `F_WRLCK` / `LOCK_EX`.
    Write,
}

impl LockType {
    /// Whether a lock of this type and one of `other`'s, held by two
    /// different owners over a common byte, conflict.
    pub fn conflicts(self, other: LockType) -> bool {
        self == LockType::Write || other == LockType::Write
    }
}

/// One record lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeLock {
    /// Who holds it (descriptor table or open file description).
    pub owner: u64,
    /// Reported by F_GETLK: the locker's tgid, or -1 for an OFD lock.
    pub pid: i32,
    pub ty: LockType,
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive); [`OFFSET_MAX`] for "to end of file".
    pub end: u64,
}

/// What an owner holds from one start offset on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    ty: LockType,
    end: u64,
    pid: i32,
}

/// The record locks of one inode, by owner and start. Invariant: one
/// owner's locks never overlap each other, and two of its locks of the
/// same type never touch (they would have been merged). Every operation
/// looks only at the locks near its range (logarithmic in their number),
/// so a process holding tens of thousands of locks costs no more per call.
#[derive(Clone, Debug, Default)]
pub struct RangeLocks {
    owners: BTreeMap<u64, BTreeMap<u64, Held>>,
    count: usize,
}

/// A request would need more lock records than the caller allows
/// (ENOLCK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyLocks;

/// `m`'s locks that overlap or touch `[start, end]`, as (start, held),
/// in address order. Within one owner, ends are ordered like starts
/// (no overlaps), so the walk back from `end` stops at the first lock
/// that ends before the range.
fn near(m: &BTreeMap<u64, Held>, start: u64, end: u64, touching: bool) -> Vec<(u64, Held)> {
    let (lo, hi) = if touching {
        (start.saturating_sub(1), end.saturating_add(1))
    } else {
        (start, end)
    };
    let mut v: Vec<(u64, Held)> = m
        .range(..=hi)
        .rev()
        .take_while(|(_, h)| h.end >= lo)
        .map(|(&s, &h)| (s, h))
        .collect();
    v.reverse();
    v
}

impl RangeLocks {
    /// No locks.
    pub const fn new() -> RangeLocks {
        RangeLocks {
            owners: BTreeMap::new(),
            count: 0,
        }
    }

    /// Number of records (what the kernel's bound counts).
    pub fn len(&self) -> usize {
        self.count
    }

    /// No record at all.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every record, owner by owner, each owner's in address order.
    pub fn iter(&self) -> impl Iterator<Item = RangeLock> + '_ {
        self.owners.iter().flat_map(|(&owner, m)| {
            m.iter().map(move |(&start, h)| RangeLock {
                owner,
                pid: h.pid,
                ty: h.ty,
                start,
                end: h.end,
            })
        })
    }

    /// The lock of another owner that a lock of type `ty` over
    /// `[start, end]` by `owner` would conflict with, the lowest first
    /// (F_GETLK's answer).
    pub fn conflict(&self, owner: u64, ty: LockType, start: u64, end: u64) -> Option<RangeLock> {
        self.owners
            .iter()
            .filter(|(&o, _)| o != owner)
            .flat_map(|(&o, m)| {
                near(m, start, end, false)
                    .into_iter()
                    .find(|(_, h)| h.ty.conflicts(ty))
                    .map(|(s, h)| RangeLock {
                        owner: o,
                        pid: h.pid,
                        ty: h.ty,
                        start: s,
                        end: h.end,
                    })
            })
            .min_by_key(|l| l.start)
    }

    /// Sets `owner`'s lock over `[start, end]` to `ty` (`None`: unlocks
    /// it), as F_SETLK does once no conflict stands in the way: the
    /// owner's locks inside the range are replaced, the ones across its
    /// edges split, and same-type neighbours merged. The change may add
    /// at most `budget` records; beyond that nothing changes and the
    /// answer is [`TooManyLocks`]. Returns the change in the number of
    /// records.
    pub fn set(
        &mut self,
        owner: u64,
        pid: i32,
        ty: Option<LockType>,
        start: u64,
        end: u64,
        budget: usize,
    ) -> Result<isize, TooManyLocks> {
        let empty = BTreeMap::new();
        let m = self.owners.get(&owner).unwrap_or(&empty);
        let old = near(m, start, end, true);
        let mut new: Vec<(u64, Held)> = Vec::with_capacity(3);
        let mut merged = ty.map(|ty| (start, Held { ty, end, pid }));
        for &(s, h) in &old {
            if let Some((ms, mh)) = &mut merged {
                if h.ty == mh.ty {
                    // Touching or overlapping, same type: absorbed.
                    *ms = (*ms).min(s);
                    mh.end = mh.end.max(h.end);
                    continue;
                }
            }
            if h.end < start || s > end {
                new.push((s, h)); // only touching, another type: stays
                continue;
            }
            if s < start {
                new.push((
                    s,
                    Held {
                        end: start - 1,
                        ..h
                    },
                ));
            }
            if h.end > end {
                new.push((end + 1, h));
            }
        }
        new.extend(merged);
        let delta = new.len() as isize - old.len() as isize;
        if delta > 0 && delta as usize > budget {
            return Err(TooManyLocks);
        }
        if old.is_empty() && new.is_empty() {
            return Ok(0);
        }
        let m = self.owners.entry(owner).or_default();
        for (s, _) in &old {
            m.remove(s);
        }
        for (s, h) in new {
            m.insert(s, h);
        }
        if m.is_empty() {
            self.owners.remove(&owner);
        }
        self.count = self.count.saturating_add_signed(delta);
        Ok(delta)
    }

    /// Drops every lock of `owner` (its last descriptor for the file
    /// closed, or the open file description went); returns how many.
    pub fn remove_owner(&mut self, owner: u64) -> usize {
        let n = self.owners.remove(&owner).map_or(0, |m| m.len());
        self.count -= n;
        n
    }
}

/// The `flock(2)` locks of one inode: holders by open file description.
#[derive(Clone, Debug, Default)]
pub struct FlockLocks {
    holders: Vec<(u64, LockType)>,
}

impl FlockLocks {
    /// No holder.
    pub const fn new() -> FlockLocks {
        FlockLocks {
            holders: Vec::new(),
        }
    }

    /// Number of holders.
    pub fn len(&self) -> usize {
        self.holders.len()
    }

    /// No holder.
    pub fn is_empty(&self) -> bool {
        self.holders.is_empty()
    }

    /// What `owner` holds.
    pub fn held(&self, owner: u64) -> Option<LockType> {
        self.holders.iter().find(|h| h.0 == owner).map(|h| h.1)
    }

    /// The holder a lock of type `ty` by `owner` would conflict with.
    pub fn conflict(&self, owner: u64, ty: LockType) -> Option<u64> {
        self.holders
            .iter()
            .find(|h| h.0 != owner && h.1.conflicts(ty))
            .map(|h| h.0)
    }

    /// Gives `owner` a lock of type `ty` (check [`FlockLocks::conflict`]
    /// first); returns the change in the number of holders.
    pub fn set(&mut self, owner: u64, ty: LockType) -> isize {
        match self.holders.iter_mut().find(|h| h.0 == owner) {
            Some(h) => {
                h.1 = ty;
                0
            }
            None => {
                self.holders.push((owner, ty));
                1
            }
        }
    }

    /// Drops `owner`'s lock; returns how many holders went (0 or 1).
    pub fn remove(&mut self, owner: u64) -> usize {
        let before = self.holders.len();
        self.holders.retain(|h| h.0 != owner);
        before - self.holders.len()
    }
}

/// Simple deadlock detection for blocking POSIX locks, as Linux's
/// `posix_locks_deadlock`: `waits` says which owner each sleeping owner
/// waits for. `me` about to wait for `blocker` closes a cycle if
/// following the chain from `blocker` leads back to `me` (within
/// `max_depth` steps, as Linux bounds the walk).
pub fn would_deadlock(waits: &BTreeMap<u64, u64>, me: u64, blocker: u64, max_depth: usize) -> bool {
    let mut at = blocker;
    for _ in 0..max_depth {
        if at == me {
            return true;
        }
        match waits.get(&at) {
            Some(&next) => at = next,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;
    use LockType::{Read, Write};

    fn spans(l: &RangeLocks, owner: u64) -> Vec<(LockType, u64, u64)> {
        l.iter()
            .filter(|x| x.owner == owner)
            .map(|x| (x.ty, x.start, x.end))
            .collect()
    }

    #[test]
    fn split_merge_and_convert() {
        let mut l = RangeLocks::new();
        assert_eq!(l.set(1, 10, Some(Write), 0, 99, 10), Ok(1));
        // Unlocking the middle splits it.
        assert_eq!(l.set(1, 10, None, 40, 59, 10), Ok(1));
        assert_eq!(spans(&l, 1), vec![(Write, 0, 39), (Write, 60, 99)]);
        // Relocking it merges the three back into one.
        assert_eq!(l.set(1, 10, Some(Write), 40, 59, 10), Ok(-1));
        assert_eq!(spans(&l, 1), vec![(Write, 0, 99)]);
        // A read lock in the middle converts that part.
        l.set(1, 10, Some(Read), 10, 19, 10).unwrap();
        assert_eq!(
            spans(&l, 1),
            vec![(Write, 0, 9), (Read, 10, 19), (Write, 20, 99)]
        );
        // Adjacent same-type locks merge.
        l.set(1, 10, Some(Read), 20, 29, 10).unwrap();
        assert_eq!(
            spans(&l, 1),
            vec![(Write, 0, 9), (Read, 10, 29), (Write, 30, 99)]
        );
        // To EOF, over everything.
        l.set(1, 10, Some(Read), 5, OFFSET_MAX, 10).unwrap();
        assert_eq!(spans(&l, 1), vec![(Write, 0, 4), (Read, 5, OFFSET_MAX)]);
        assert_eq!(l.set(1, 10, None, 0, OFFSET_MAX, 10), Ok(-2));
        assert!(l.is_empty());
    }

    #[test]
    fn conflicts_between_owners() {
        let mut l = RangeLocks::new();
        l.set(1, 10, Some(Read), 0, 9, 10).unwrap();
        l.set(2, 20, Some(Read), 5, 14, 10).unwrap();
        assert_eq!(l.conflict(3, Read, 0, 100), None, "readers share");
        assert_eq!(l.conflict(3, Write, 12, 12).map(|c| c.owner), Some(2));
        assert_eq!(l.conflict(1, Write, 0, 4), None, "own locks never conflict");
        assert_eq!(l.conflict(1, Write, 0, 5).map(|c| c.pid), Some(20));
        assert_eq!(l.conflict(3, Write, 15, OFFSET_MAX), None);
        assert_eq!(l.remove_owner(2), 1);
        assert_eq!(l.conflict(1, Write, 0, 100), None);
    }

    #[test]
    fn budget_bounds_new_records() {
        let mut l = RangeLocks::new();
        l.set(1, 1, Some(Write), 0, 99, 1).unwrap();
        assert_eq!(l.set(1, 1, None, 10, 19, 0), Err(TooManyLocks));
        assert_eq!(spans(&l, 1), vec![(Write, 0, 99)], "unchanged");
        assert_eq!(l.set(1, 1, None, 0, 19, 0), Ok(0), "a trim needs nothing");
    }

    #[test]
    fn flock_holders() {
        let mut f = FlockLocks::new();
        assert_eq!(f.set(1, Read), 1);
        assert_eq!(f.set(2, Read), 1);
        assert_eq!(f.conflict(3, Read), None);
        assert!(f.conflict(3, Write).is_some());
        assert_eq!(f.conflict(1, Write), Some(2));
        assert_eq!(f.remove(2), 1);
        assert_eq!(f.conflict(1, Write), None);
        assert_eq!(f.set(1, Write), 0);
        assert_eq!(f.held(1), Some(Write));
    }

    #[test]
    fn deadlock_chain() {
        let mut w = BTreeMap::new();
        w.insert(2u64, 3u64);
        w.insert(3, 1);
        assert!(would_deadlock(&w, 1, 2, 10));
        assert!(!would_deadlock(&w, 4, 2, 10));
        assert!(!would_deadlock(&w, 1, 2, 1), "bounded walk");
    }

    proptest! {
        /// Against a per-byte model over 64 bytes and 3 owners.
        #[test]
        fn matches_byte_model(ops in proptest::collection::vec(
            (0u64..3, 0u8..3, 0u64..64, 0u64..64), 1..80)) {
            let mut l = RangeLocks::new();
            // model[owner][byte]
            let mut model = [[None::<LockType>; 64]; 3];
            for (owner, t, a, b) in ops {
                let (s, e) = (a.min(b), a.max(b));
                let ty = match t { 0 => Some(Read), 1 => Some(Write), _ => None };
                let want_conflict = ty.is_some_and(|ty| (0..3).filter(|&o| o != owner).any(|o| {
                    (s..=e).any(|x| model[o as usize][x as usize].is_some_and(|h| h.conflicts(ty)))
                }));
                let got = ty.and_then(|ty| l.conflict(owner, ty, s, e));
                prop_assert_eq!(got.is_some(), want_conflict);
                if want_conflict {
                    continue;
                }
                l.set(owner, owner as i32, ty, s, e, usize::MAX).unwrap();
                for x in s..=e {
                    model[owner as usize][x as usize] = ty;
                }
                for o in 0..3u64 {
                    let mut bytes = [None; 64];
                    let mut prev: Option<RangeLock> = None;
                    for r in l.iter().filter(|r| r.owner == o) {
                        if let Some(p) = prev {
                            prop_assert!(p.end < r.start, "overlap");
                            prop_assert!(!(p.ty == r.ty && p.end + 1 == r.start), "unmerged");
                        }
                        for x in r.start..=r.end.min(63) {
                            bytes[x as usize] = Some(r.ty);
                        }
                        prev = Some(r);
                    }
                    prop_assert_eq!(bytes, model[o as usize]);
                }
            }
        }
    }
}
