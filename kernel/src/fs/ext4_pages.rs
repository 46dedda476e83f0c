//! The page cache of an ext4 mount: whole 4 KiB pages of its files in
//! frames, filled by read(2), by mmap's faults and by write(2), so a
//! re-read touches no disk, an overwrite costs no crate call until it is
//! written back, and MAP_SHARED mappings (SQLite's WAL index, the `-shm`
//! file) are the same memory in every process and reach the disk.
//!
//! A cached page is the file's truth for its range: read(2) and mmap
//! take their bytes from the frame. A page read(2) filled holds the
//! file's bytes up to its end and zeros past it. A page is in one of
//! three states:
//!
//! - *plain*: equal to the crate's copy; may be dropped at any time;
//! - *dirty*: write(2) changed it and the crate has not got it yet;
//! - *mapped*: handed to a mapping since the last close of its inode:
//!   stores through the mapping may be in it and nowhere else (the MMU's
//!   dirty bits are not read).
//!
//! **Write-back caching.** A write inside the file's size, or one of at
//! most `MAX_EXTEND` (64 KiB) that extends it, goes into the cached
//! pages only and marks them dirty (a page not cached yet is made from
//! the data, or from the crate's bytes and zeros past the crate's end
//! when the write covers part of it). The crate's size and blocks do not
//! change until the write-back: the cache keeps the larger size
//! (`Pages::sizes`), which stat, read(2), mmap's faults (SIGBUS past it)
//! and O_APPEND use, and truncate hands the new size to the crate; stat
//! shows the time of the last cached write as mtime and ctime. A larger
//! extending write (the crate takes it from the caller's buffer; the
//! cache would copy it twice), or one that finds no frame, or leaves the
//! file system less free space than the dirty pages plus 1 MiB (a dirty
//! page over a hole or past the end needs a block at write-back: ENOSPC
//! must come from write(2), not from a later fsync), or a read-only
//! mount or a cap of 0, goes through the crate as before, and into the
//! cached pages it covers. Dirty pages are written back to the crate in file-offset
//! order, up to `MAX_RUN` pages of one inode in one crate call, adjacent
//! ones as one run (up to the cached size: the crate's grows with them),
//! and the inode then gets back the mtime of its last cached write:
//!
//! - fsync/fdatasync: that file's pages, then the journal commit and
//!   the disk flush (`Ext4Mount::fsync`); msync through fsync; sync,
//!   syncfs, umount and reboot(2): every page of the mount;
//! - past the dirty limit (1/16 of the cap, at most 16 MiB): the writer
//!   writes every dirty page of the mount back, as Linux's
//!   balance_dirty_pages makes it (no commit);
//! - every 5 s (`writeback_due`, from `trap::deferred_work` on one
//!   CPU): every mount's dirty pages and a journal commit
//!   (`Ext4Mount::periodic`), Linux's flusher and jbd2's commit
//!   interval together: what was written reaches the disk within about
//!   5 s without an fsync;
//! - utimensat writes the inode's pages back first (their write-back
//!   must not set an mtime after it).
//!
//! Not on the last close (Linux neither). A write-back nobody waits for
//! (the limit, the periodic one) keeps its error for the next
//! fsync/sync of the mount. A failed crate write leaves the pages it
//! carried clean (dropped from the cache unless mapped), as a failed
//! write-back loses its data on Linux, and the error goes to the caller.
//! Truncate drops dirty pages wholly past the new end; an inode freed
//! (below) drops its dirty pages unwritten.
//!
//! Mapped pages are compared with the crate's copy at each write-back
//! and written where they differ (up to the file's size, never extending
//! it). At the last close of the inode (mappings hold their file open,
//! so that is after the last munmap or exit) they stop being mapped:
//! those that differ from the crate's copy become dirty, the others
//! plain.
//!
//! Pages stay cached past the last close, bounded: at most `cap` pages
//! (`pagecache.kb=N` on the command line, else an eighth of the free
//! frames at mount). A CLOCK hand evicts plain pages nothing maps
//! (reference count 1) when a new page needs room; dirty and mapped ones
//! are never evicted, and the cache may exceed `cap` by them. When the
//! frame pools run dry, [`reclaim`] drops plain pages of every mount
//! before the allocation fails (`frames::alloc_on`), so the OOM killer
//! only runs once the cache has nothing left to give; it never writes
//! back (it runs inside frame allocation, under any lock), so dirty
//! pages wait for their write-back, which the dirty limit keeps near.
//!
//! A page must never outlive its inode: the inode number is reused.
//! Freeing an inode (last unlink or rename over it with no open file, or
//! the last close of an unlinked one) forgets its pages first, and create
//! forgets any left under the new number.
//!
//! Lock order: this cache's lock, then the crate's (`Ext4Mount::fs`).
//! read/write/truncate and write-back take the cache lock around their
//! crate calls, so a write-back never interleaves with a write of the
//! same bytes, and a fill never caches bytes a concurrent write is
//! changing. [`reclaim`] only try-locks.

use abi::{Errno, KResult};
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use super::ext4::Ext4Mount;
use crate::mm::refcount;
use vfs::Timespec;

const PAGE: u64 = 4096;
/// Most pages one crate read fills at once (bounds the heap buffer; a
/// read(2) is cut at 1 MiB anyway).
const MAX_RUN: u64 = 256;
static ZEROS: [u8; PAGE as usize] = [0; PAGE as usize];
/// `pagecache.kb` unset.
const DEFAULT_CAP: u64 = u64::MAX;

static CAP_KB: AtomicU64 = AtomicU64::new(DEFAULT_CAP);
/// Pages cached by all mounts (/proc/meminfo's Cached).
static CACHED: AtomicUsize = AtomicUsize::new(0);
/// Dirty pages of all mounts (/proc/meminfo's Dirty).
static DIRTY: AtomicUsize = AtomicUsize::new(0);
/// Every mount's pages, for [`reclaim`].
static CACHES: Mutex<Vec<Weak<Mutex<Pages>>>> = Mutex::new(Vec::new());
/// How often dirty pages are written back and the journal committed
/// (Linux's dirty_writeback_centisecs and ext4's commit interval: 5 s).
const WRITEBACK_PERIOD_NS: u64 = 5_000_000_000;
/// When the next periodic write-back is due (ns since boot).
static NEXT_WRITEBACK: AtomicU64 = AtomicU64::new(WRITEBACK_PERIOD_NS);
/// How soon a periodic write-back that found a mount busy tries again.
const WRITEBACK_RETRY_NS: u64 = 20_000_000;
/// Largest write that extends a file and is still cached.
const MAX_EXTEND: u64 = 64 << 10;
/// Most dirty pages one mount keeps (16 MiB), whatever its cap.
const MAX_DIRTY: usize = 4096;
/// Bytes the file system must keep free beyond its dirty pages for a
/// write to be cached: a dirty page over a hole needs a block at
/// write-back, which must not fail with ENOSPC where write(2) did not.
const SPACE_MARGIN: u64 = 1 << 20;

/// Reads `pagecache.kb=N` (0: read(2) caches nothing).
pub fn init(cmd: &str) {
    if let Some(kb) = crate::cmdline::get(cmd, "pagecache.kb").and_then(|v| v.parse().ok()) {
        CAP_KB.store(kb, Ordering::Relaxed);
    }
}

struct Entry {
    pa: u64,
    /// Used since the hand last passed (CLOCK's second chance).
    referenced: bool,
    /// Handed to a mapping since the last close of its inode: may hold
    /// stores the crate lacks, never evicted.
    mapped: bool,
    /// Written by write(2) and not yet by the crate: the crate's copy is
    /// stale, never evicted.
    dirty: bool,
}

impl Entry {
    fn evictable(&self) -> bool {
        !self.mapped && !self.dirty && refcount::count(self.pa) == 1
    }
}

struct Pages {
    /// By (inode, page index); each holds one frame reference.
    map: BTreeMap<(u32, u64), Entry>,
    /// Where the CLOCK hand stands.
    hand: (u32, u64),
    cap: usize,
    /// Dirty pages now, and how many the writer may leave before it
    /// writes them back itself (0: write(2) writes through).
    dirty: usize,
    dirty_limit: usize,
    /// When the last cached write of each inode with dirty pages came:
    /// its mtime and ctime until the crate has them.
    times: BTreeMap<u32, Timespec>,
    /// The size of each inode a cached write extended, while the crate
    /// has a smaller one (the file's size is the larger).
    sizes: BTreeMap<u32, u64>,
    /// A write-back nobody waited for (the dirty limit, the periodic
    /// one) failed: the next fsync/sync/syncfs reports it, as Linux's
    /// errseq does.
    error: Option<Errno>,
}

impl Pages {
    /// The next page the CLOCK hand evicts, clearing the referenced bits
    /// it passes.
    fn victim(&mut self) -> Option<(u32, u64)> {
        let hand = self.hand;
        for _ in 0..2 {
            for (&k, e) in self.map.range_mut(hand..) {
                if e.evictable() {
                    if !e.referenced {
                        return Some(k);
                    }
                    e.referenced = false;
                }
            }
            for (&k, e) in self.map.range_mut(..hand) {
                if e.evictable() {
                    if !e.referenced {
                        return Some(k);
                    }
                    e.referenced = false;
                }
            }
        }
        None
    }

    /// Drops one plain unmapped page; false when there is none.
    fn evict_one(&mut self) -> bool {
        let Some(k) = self.victim() else {
            return false;
        };
        self.remove(k);
        self.hand = k;
        true
    }

    /// Room for one more page under the cap, evicting if needed.
    fn room(&mut self) -> bool {
        while self.map.len() >= self.cap {
            if !self.evict_one() {
                return false;
            }
        }
        true
    }

    /// A frame for a new page: when the pools are dry, this cache's own
    /// plain pages first (`reclaim` cannot take them: the lock is held).
    fn frame(&mut self, torus: usize) -> Option<u64> {
        loop {
            if let Some(pa) = refcount::alloc(torus) {
                return Some(pa);
            }
            if !self.evict_one() {
                return None;
            }
        }
    }

    fn insert(&mut self, k: (u32, u64), pa: u64, mapped: bool, dirty: bool) {
        let e = Entry {
            pa,
            referenced: true,
            mapped,
            dirty,
        };
        if dirty {
            self.count_dirty(1);
        }
        match self.map.insert(k, e) {
            Some(old) => {
                if old.dirty {
                    self.uncount_dirty(1);
                }
                refcount::put(old.pa);
            }
            None => {
                CACHED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn remove(&mut self, k: (u32, u64)) {
        if let Some(e) = self.map.remove(&k) {
            if e.dirty {
                self.uncount_dirty(1);
            }
            CACHED.fetch_sub(1, Ordering::Relaxed);
            refcount::put(e.pa);
        }
    }

    fn count_dirty(&mut self, n: usize) {
        self.dirty += n;
        DIRTY.fetch_add(n, Ordering::Relaxed);
    }

    fn uncount_dirty(&mut self, n: usize) {
        self.dirty -= n;
        DIRTY.fetch_sub(n, Ordering::Relaxed);
    }

    /// Marks page `k` dirty (it is cached).
    fn set_dirty(&mut self, k: (u32, u64)) {
        if let Some(e) = self.map.get_mut(&k) {
            e.referenced = true;
            if !e.dirty {
                e.dirty = true;
                self.count_dirty(1);
            }
        }
    }

    /// Page `k` equals the crate's copy again (or is gone from the file).
    fn clear_dirty(&mut self, k: (u32, u64)) {
        if let Some(e) = self.map.get_mut(&k) {
            if e.dirty {
                e.dirty = false;
                self.uncount_dirty(1);
            }
        }
    }

    /// The size of inode `n`: the crate's, or a cached write's past it.
    fn size(&self, m: &Ext4Mount, n: u32) -> KResult<u64> {
        let s = m.size(n)?;
        Ok(self.sizes.get(&n).map_or(s, |&p| p.max(s)))
    }

    fn has_dirty(&self, n: u32) -> bool {
        self.map.range((n, 0)..=(n, u64::MAX)).any(|(_, e)| e.dirty)
    }

    fn keys(&self, n: u32, from: u64) -> Vec<(u32, u64)> {
        self.map
            .range((n, from)..=(n, u64::MAX))
            .map(|(&k, _)| k)
            .collect()
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        for e in self.map.values() {
            CACHED.fetch_sub(1, Ordering::Relaxed);
            if e.dirty {
                DIRTY.fetch_sub(1, Ordering::Relaxed);
            }
            refcount::put(e.pa);
        }
    }
}

/// KiB of file pages all ext4 mounts cache.
pub fn cached_kb() -> usize {
    CACHED.load(Ordering::Relaxed) * 4
}

/// KiB of dirty file pages (/proc/meminfo's Dirty).
pub fn dirty_kb() -> usize {
    DIRTY.load(Ordering::Relaxed) * 4
}

/// Whether the periodic write-back is due at `now` (ns since boot);
/// true for one caller only per period, who then writes back every
/// mount (`fs::mount::writeback_all`).
/// A periodic write-back found a mount busy: the next one in
/// `WRITEBACK_RETRY_NS`, not a whole period later.
pub fn writeback_retry(now: u64) {
    NEXT_WRITEBACK.fetch_min(now + WRITEBACK_RETRY_NS, Ordering::Relaxed);
}

pub fn writeback_due(now: u64) -> bool {
    let next = NEXT_WRITEBACK.load(Ordering::Relaxed);
    if now < next {
        return false;
    }
    NEXT_WRITEBACK
        .compare_exchange(
            next,
            now + WRITEBACK_PERIOD_NS,
            Ordering::Relaxed,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// Drops up to `want` plain unmapped pages of any mount's cache; returns
/// how many went. Never waits for a lock (it runs inside frame
/// allocation, which may hold any of them).
pub fn reclaim(want: usize) -> usize {
    let Some(list) = CACHES.try_lock() else {
        return 0;
    };
    let mut freed = 0;
    for w in list.iter() {
        let Some(c) = w.upgrade() else { continue };
        if let Some(mut p) = c.try_lock() {
            while freed < want && p.evict_one() {
                freed += 1;
            }
        }
        if freed >= want {
            break;
        }
    }
    freed
}

/// One mount's cached pages.
pub struct PageCache {
    pages: Arc<Mutex<Pages>>,
}

impl Default for PageCache {
    fn default() -> Self {
        let cap = match CAP_KB.load(Ordering::Relaxed) {
            DEFAULT_CAP => crate::frames::free_total() / 8,
            kb => usize::try_from(kb / 4).unwrap_or(usize::MAX),
        };
        let pages = Arc::new(Mutex::new(Pages {
            map: BTreeMap::new(),
            hand: (0, 0),
            cap,
            dirty: 0,
            dirty_limit: (cap / 16).min(MAX_DIRTY),
            times: BTreeMap::new(),
            sizes: BTreeMap::new(),
            error: None,
        }));
        let mut list = CACHES.lock();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&pages));
        PageCache { pages }
    }
}

/// The part of page `index` inside `[off, off + len)`: (offset in the
/// page, offset in the buffer, length).
fn span(index: u64, off: u64, len: u64) -> (usize, usize, usize) {
    let page_start = index * PAGE;
    let from = off.max(page_start);
    let to = (off + len).min(page_start + PAGE);
    (
        (from - page_start) as usize,
        (from - off) as usize,
        (to - from) as usize,
    )
}

/// Page indexes `[off, off + len)` touches (len > 0).
fn pages_of(off: u64, len: u64) -> core::ops::RangeInclusive<u64> {
    off / PAGE..=(off + len - 1) / PAGE
}

impl PageCache {
    /// The frame of page `index` of inode `n` for a mapping, read from
    /// the disk the first time. EIO (SIGBUS) for a page wholly past the
    /// end of the file, as on Linux.
    pub fn page(&self, m: &Ext4Mount, n: u32, index: u64, torus: usize) -> KResult<u64> {
        let mut p = self.pages.lock();
        if let Some(e) = p.map.get_mut(&(n, index)) {
            e.mapped = true;
            e.referenced = true;
            return Ok(e.pa);
        }
        let size = p.size(m, n)?;
        let off = index.checked_mul(PAGE).ok_or(Errno::EIO)?;
        if off >= size {
            return Err(Errno::EIO);
        }
        let mut buf = alloc::vec![0u8; PAGE as usize];
        let want = (size - off).min(PAGE) as usize;
        let got = m.read_raw(n, off, &mut buf[..want])?;
        buf[got..].fill(0);
        // A mapped page may exceed the cap: it cannot be evicted anyway.
        p.room();
        let pa = p.frame(torus).ok_or(Errno::ENOMEM)?;
        hal::addrspace::write_frame(pa, 0, &buf);
        p.insert((n, index), pa, true, false);
        Ok(pa)
    }

    /// read(2): from the cached pages, filling the missing ones from the
    /// crate (whole pages, up to the end of the file).
    pub fn read(&self, m: &Ext4Mount, n: u32, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let torus = crate::proc::torus::this_id();
        let mut p = self.pages.lock();
        let crate_size = m.readable_size(n)?;
        let size = p.sizes.get(&n).map_or(crate_size, |&s| s.max(crate_size));
        if off >= size || buf.is_empty() {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(size - off);
        let buf = &mut buf[..len as usize];
        let last = (off + len - 1) / PAGE;
        let mut i = off / PAGE;
        while i <= last {
            if let Some(e) = p.map.get_mut(&(n, i)) {
                e.referenced = true;
                let (in_page, in_buf, l) = span(i, off, len);
                hal::addrspace::read_frame(e.pa, in_page, &mut buf[in_buf..in_buf + l]);
                i += 1;
                continue;
            }
            // The run of missing pages from `i`: one crate read.
            let mut j = i;
            while j < last && j - i + 1 < MAX_RUN && !p.map.contains_key(&(n, j + 1)) {
                j += 1;
            }
            let run_off = i * PAGE;
            let run_len = ((j + 1) * PAGE).min(size) - run_off;
            let rl = run_len as usize;
            // A run inside the request (page-aligned reads, the usual
            // case) is read straight into the caller's buffer, and the
            // pages copied from there; else through a buffer of its own.
            let direct = run_off >= off && run_off + run_len <= off + len;
            let at = run_off.saturating_sub(off) as usize;
            let mut tmp = Vec::new();
            let got = if direct {
                let got = m.read_raw(n, run_off, &mut buf[at..at + rl])?;
                buf[at + got.min(rl)..at + rl].fill(0);
                got
            } else {
                tmp = alloc::vec![0u8; rl];
                let got = m.read_raw(n, run_off, &mut tmp)?;
                for k in i..=j {
                    let (in_page, in_buf, l) = span(k, off, len);
                    let from = ((k - i) * PAGE) as usize + in_page;
                    buf[in_buf..in_buf + l].copy_from_slice(&tmp[from..from + l]);
                }
                got
            };
            // Short: the crate disagrees with the size; serve, don't keep.
            if got != rl || p.cap == 0 {
                i = j + 1;
                continue;
            }
            let src: &[u8] = if direct { &buf[at..at + rl] } else { &tmp };
            for k in i..=j {
                let from = ((k - i) * PAGE) as usize;
                let page = &src[from..(from + PAGE as usize).min(rl)];
                if !p.room() {
                    break;
                }
                let Some(pa) = p.frame(torus) else { break };
                hal::addrspace::write_frame(pa, 0, page);
                if page.len() < PAGE as usize {
                    hal::addrspace::write_frame(pa, page.len(), &ZEROS[page.len()..]);
                }
                p.insert((n, k), pa, false, false);
            }
            i = j + 1;
        }
        Ok(len as usize)
    }

    /// write(2). An overwrite inside the file's size goes into the cached
    /// pages only and marks them dirty (a page not cached yet is made:
    /// from the data when it covers the page, else read from the crate
    /// first); past the dirty limit the writer then writes every dirty
    /// page of the mount back. Anything else (the file grows, no frame,
    /// too little free space, a read-only mount, a cache of cap 0) goes
    /// to the crate and into the cached pages it covers.
    pub fn write(&self, m: &Ext4Mount, n: u32, off: u64, data: &[u8]) -> KResult<usize> {
        let mut p = self.pages.lock();
        if Self::write_cached(&mut p, m, n, off, data)? {
            if p.dirty > p.dirty_limit {
                // Linux's balance_dirty_pages: the writer writes back. A
                // failure is for the next fsync to report.
                if let Err(e) = Self::writeback_locked(&mut p, m, None) {
                    p.error.get_or_insert(e);
                }
            }
            return Ok(data.len());
        }
        let done = Self::write_through(&mut p, m, n, off, data)?;
        Self::touched(&mut p, n);
        Ok(done)
    }

    /// The crate changed inode `n`'s mtime (a write through it, a
    /// truncate): a later write-back restores that time, not an older
    /// cached write's.
    fn touched(p: &mut Pages, n: u32) {
        if let Some(t) = p.times.get_mut(&n) {
            *t = super::now();
        }
    }

    /// The cached write, all or nothing: false when it must go through
    /// the crate instead (nothing changed then).
    fn write_cached(p: &mut Pages, m: &Ext4Mount, n: u32, off: u64, data: &[u8]) -> KResult<bool> {
        if data.is_empty() || p.dirty_limit == 0 || m.readonly {
            return Ok(false);
        }
        let len = data.len() as u64;
        let crate_size = m.size(n)?;
        let size = p.sizes.get(&n).map_or(crate_size, |&s| s.max(crate_size));
        let Some(end) = off.checked_add(len) else {
            return Ok(false);
        };
        // Large writes that extend the file go through: the crate takes
        // them from the caller's buffer, the cache would copy them twice.
        if end > size && len > MAX_EXTEND {
            return Ok(false);
        }
        // Pages that become dirty must find blocks at write-back even if
        // some lie over holes: keep that much space free, with a margin
        // for the extent blocks, or write through.
        let new_dirty = pages_of(off, len)
            .filter(|&i| !p.map.get(&(n, i)).is_some_and(|e| e.dirty))
            .count();
        if new_dirty > 0 {
            let need = ((p.dirty + new_dirty) as u64 * PAGE).saturating_add(SPACE_MARGIN);
            if m.free_bytes() < need {
                return Ok(false);
            }
        }
        // The frames of the pages not cached yet, filled where the data
        // leaves part of them.
        let torus = crate::proc::torus::this_id();
        let mut fresh: Vec<(u64, u64)> = Vec::new();
        let mut ok = true;
        for i in pages_of(off, len) {
            if p.map.contains_key(&(n, i)) {
                continue;
            }
            let Some(pa) = p.frame(torus) else {
                ok = false;
                break;
            };
            fresh.push((i, pa));
            let (in_page, _, l) = span(i, off, len);
            if in_page == 0 && l == PAGE as usize {
                continue;
            }
            // What the crate has of it; zeros past the crate's end (a
            // page there that holds data is cached: it is dirty).
            let mut buf = alloc::vec![0u8; PAGE as usize];
            let want = crate_size.saturating_sub(i * PAGE).min(PAGE) as usize;
            if want > 0 {
                match m.read_raw(n, i * PAGE, &mut buf[..want]) {
                    Ok(got) if got == want => {}
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            hal::addrspace::write_frame(pa, 0, &buf);
        }
        // Making room may have evicted a page of this write found cached.
        ok = ok
            && pages_of(off, len)
                .all(|i| p.map.contains_key(&(n, i)) || fresh.iter().any(|&(j, _)| j == i));
        if !ok {
            for (_, pa) in fresh {
                refcount::put(pa);
            }
            return Ok(false);
        }
        for (i, pa) in fresh {
            p.insert((n, i), pa, false, false);
        }
        for i in pages_of(off, len) {
            let (in_page, in_buf, l) = span(i, off, len);
            if let Some(e) = p.map.get(&(n, i)) {
                hal::addrspace::write_frame(e.pa, in_page, &data[in_buf..in_buf + l]);
            }
            p.set_dirty((n, i));
        }
        p.times.insert(n, super::now());
        if end > size {
            p.sizes.insert(n, end);
        }
        // New pages count against the cap like read(2)'s: clean ones go.
        while p.map.len() > p.cap && p.evict_one() {}
        Ok(true)
    }

    /// A write to the crate, and into the cached pages it covers (dirty
    /// ones stay dirty: their other bytes may still be the crate's news).
    fn write_through(
        p: &mut Pages,
        m: &Ext4Mount,
        n: u32,
        off: u64,
        data: &[u8],
    ) -> KResult<usize> {
        let done = match m.write_raw(n, off, data) {
            Ok(done) => done,
            Err(e) => {
                // The crate may hold part of it: its plain pages there
                // are no longer known to match.
                if !data.is_empty() {
                    for i in pages_of(off, data.len() as u64) {
                        if p.map.get(&(n, i)).is_some_and(Entry::evictable) {
                            p.remove((n, i));
                        }
                    }
                }
                return Err(e);
            }
        };
        if done == 0 {
            return Ok(0);
        }
        for i in pages_of(off, done as u64) {
            if let Some(e) = p.map.get(&(n, i)) {
                let (in_page, in_buf, len) = span(i, off, done as u64);
                hal::addrspace::write_frame(e.pa, in_page, &data[in_buf..in_buf + len]);
            }
        }
        Ok(done)
    }

    /// truncate: pages wholly past the new end stop being dirty and,
    /// unless mapped, leave the cache; the rest of what is past it
    /// becomes zeros (a mapping still sees its frame; an extension later
    /// reads zeros there).
    pub fn truncate(&self, m: &Ext4Mount, n: u32, size: u64) -> KResult<()> {
        let mut p = self.pages.lock();
        m.truncate_raw(n, size)?;
        // The crate's size is the file's now.
        p.sizes.remove(&n);
        Self::touched(&mut p, n);
        for k in p.keys(n, size / PAGE) {
            let start = (size.saturating_sub(k.1 * PAGE)).min(PAGE) as usize;
            if start == 0 {
                p.clear_dirty(k);
            }
            let Some(e) = p.map.get(&k) else { continue };
            if start == 0 && e.evictable() {
                p.remove(k);
            } else {
                hal::addrspace::write_frame(e.pa, start, &ZEROS[start..]);
            }
        }
        Ok(())
    }

    /// Writes the dirty and mapped pages of inode `n` (all inodes:
    /// `None`) back to the crate, up to each file's size; then reports
    /// an earlier write-back's failure nobody was told of.
    pub fn writeback(&self, m: &Ext4Mount, n: Option<u32>) -> KResult<()> {
        let mut p = self.pages.lock();
        Self::writeback_locked(&mut p, m, n)?;
        match p.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The periodic write-back's part: every dirty page of the mount to
    /// the crate (the caller then commits). A failure is kept for the
    /// next fsync/sync. False, doing nothing, when the cache is busy (a
    /// writer writing back, an fsync): the periodic work runs in a CPU's
    /// deferred work and must not spin there for as long as that lasts
    /// (a sampled random-write benchmark had one CPU spinning here half
    /// the time); it tries again shortly.
    pub fn writeback_background(&self, m: &Ext4Mount) -> bool {
        let Some(mut p) = self.pages.try_lock() else {
            return false;
        };
        if let Err(e) = Self::writeback_locked(&mut p, m, None) {
            p.error.get_or_insert(e);
        }
        true
    }

    /// In file-offset order: dirty pages are written as they are, mapped
    /// ones where they differ from the crate's copy; up to `MAX_RUN`
    /// pages of one inode go in one crate call, adjacent ones as one run
    /// (random pages would otherwise cost a crate write each: an inode
    /// load, extent-tree walks and a journalled inode update per page).
    /// An inode whose pages are then all clean gets back the mtime of its
    /// last cached write.
    fn writeback_locked(p: &mut Pages, m: &Ext4Mount, n: Option<u32>) -> KResult<()> {
        if m.readonly {
            return Ok(());
        }
        let range = match n {
            Some(n) => (n, 0)..=(n, u64::MAX),
            None => (0, 0)..=(u32::MAX, u64::MAX),
        };
        let todo: Vec<((u32, u64), bool, u64)> = p
            .map
            .range(range)
            .filter(|(_, e)| e.dirty || e.mapped)
            .map(|(&k, e)| (k, e.dirty, e.pa))
            .collect();
        let mut size_of: Option<(u32, u64)> = None;
        let mut page = alloc::vec![0u8; PAGE as usize];
        let mut disk = alloc::vec![0u8; PAGE as usize];
        let mut run = Run::default();
        let mut inodes: Vec<u32> = Vec::new();
        for ((ino, i), dirty, pa) in todo {
            if inodes.last() != Some(&ino) {
                inodes.push(ino);
            }
            let size = match size_of {
                Some((k, s)) if k == ino => s,
                _ => {
                    let s = p.size(m, ino)?;
                    size_of = Some((ino, s));
                    s
                }
            };
            let off = i * PAGE;
            if off >= size {
                // Past the end: nothing of it is the file's.
                p.clear_dirty((ino, i));
                continue;
            }
            let len = (size - off).min(PAGE) as usize;
            hal::addrspace::read_frame(pa, 0, &mut page[..len]);
            if !dirty {
                // Only what differs from the crate's copy is written: a
                // page nobody stored to (read-only and private mappings)
                // costs a read from the crate's cache, not a journalled
                // write and a new mtime.
                let got = m.read_raw(ino, off, &mut disk[..len])?;
                if got == len && disk[..len] == page[..len] {
                    continue;
                }
            }
            if run.ino != ino || run.keys.len() >= MAX_RUN as usize {
                Self::send(p, m, &mut run)?;
                run.ino = ino;
            }
            let adjacent = run.keys.last() == Some(&(ino, i.wrapping_sub(1)))
                && run.buf.len() % PAGE as usize == 0;
            if !adjacent {
                run.starts.push((i * PAGE, run.buf.len()));
            }
            run.buf.extend_from_slice(&page[..len]);
            run.keys.push((ino, i));
        }
        Self::send(p, m, &mut run)?;
        for ino in inodes {
            if p.has_dirty(ino) {
                continue;
            }
            // A cached extension whose last bytes were not dirty (a
            // truncate up follows it, a failed write-back) still sets
            // the size.
            if let Some(s) = p.sizes.remove(&ino) {
                if m.size(ino)? < s {
                    m.truncate_raw(ino, s)?;
                }
            }
            if let Some(t) = p.times.remove(&ino) {
                m.set_mtime(ino, t)?;
            }
        }
        Ok(())
    }

    /// Writes `run` to the crate and empties it: its pages are clean
    /// after, or, when the write failed, no longer dirty either (the
    /// error goes to the caller, as a failed write-back loses the data
    /// on Linux) and gone from the cache unless something maps them.
    fn send(p: &mut Pages, m: &Ext4Mount, run: &mut Run) -> KResult<()> {
        if run.keys.is_empty() {
            return Ok(());
        }
        let mut runs: Vec<(u64, &[u8])> = Vec::with_capacity(run.starts.len());
        for (j, &(off, from)) in run.starts.iter().enumerate() {
            let to = run.starts.get(j + 1).map_or(run.buf.len(), |s| s.1);
            runs.push((off, &run.buf[from..to]));
        }
        let r = m.write_runs_raw(run.ino, &runs);
        for &k in &run.keys {
            p.clear_dirty(k);
            if r.is_err() && p.map.get(&k).is_some_and(Entry::evictable) {
                p.remove(k);
            }
        }
        run.keys.clear();
        run.starts.clear();
        run.buf.clear();
        r
    }

    /// The last open file of inode `n` closed: nothing maps its pages
    /// any more (a mapping holds its file open), so the mapped ones
    /// become plain, evictable again, or dirty where they differ from
    /// the crate's copy (nothing is written now: as on Linux, close does
    /// not write back). Returns the first error (the pages then stay
    /// mapped, kept for the next write-back).
    pub fn last_close(&self, m: &Ext4Mount, n: u32) -> KResult<()> {
        let mut p = self.pages.lock();
        let mapped: Vec<((u32, u64), bool, u64)> = p
            .map
            .range((n, 0)..=(n, u64::MAX))
            .filter(|(_, e)| e.mapped && refcount::count(e.pa) == 1)
            .map(|(&k, e)| (k, e.dirty, e.pa))
            .collect();
        if !mapped.is_empty() {
            let size = p.size(m, n)?;
            let mut page = alloc::vec![0u8; PAGE as usize];
            let mut disk = alloc::vec![0u8; PAGE as usize];
            for (k, dirty, pa) in mapped {
                let off = k.1 * PAGE;
                if !dirty && off < size {
                    let len = (size - off).min(PAGE) as usize;
                    hal::addrspace::read_frame(pa, 0, &mut page[..len]);
                    let got = m.read_raw(n, off, &mut disk[..len])?;
                    if got != len || disk[..len] != page[..len] {
                        p.set_dirty(k);
                    }
                }
                if let Some(e) = p.map.get_mut(&k) {
                    e.mapped = false;
                }
            }
        }
        if p.dirty > p.dirty_limit {
            if let Err(e) = Self::writeback_locked(&mut p, m, None) {
                p.error.get_or_insert(e);
            }
        }
        while p.map.len() > p.cap && p.evict_one() {}
        Ok(())
    }

    /// The time of inode `n`'s last cached write and the size cached
    /// writes extended it to, while the crate does not have them yet
    /// (stat's mtime, ctime and size).
    pub fn pending(&self, n: u32) -> (Option<Timespec>, Option<u64>) {
        let p = self.pages.lock();
        (p.times.get(&n).copied(), p.sizes.get(&n).copied())
    }

    /// Inode `n` is freed (or its number was just given to a new one):
    /// none of its pages may be served again, nor its dirty ones written.
    pub fn forget(&self, n: u32) {
        let mut p = self.pages.lock();
        for k in p.keys(n, 0) {
            p.remove(k);
        }
        p.times.remove(&n);
        p.sizes.remove(&n);
    }
}

/// Pages of one inode on their way to the crate, in file order.
#[derive(Default)]
struct Run {
    ino: u32,
    keys: Vec<(u32, u64)>,
    /// Where each run of adjacent pages starts: its file offset and its
    /// first byte in `buf`.
    starts: Vec<(u64, usize)>,
    buf: Vec<u8>,
}
