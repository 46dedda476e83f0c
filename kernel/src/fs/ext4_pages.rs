//! The page cache of an ext4 mount: whole 4 KiB pages of its files in
//! frames, filled by read(2) and by mmap's faults, so a re-read touches
//! no disk and MAP_SHARED mappings (SQLite's WAL index, the `-shm` file)
//! are the same memory in every process and reach the disk.
//!
//! A cached page is the file's truth for its range: write(2) updates the
//! frame as well as the crate, read(2) takes its bytes from the frame (so
//! it sees stores through a mapping). A page read(2) filled holds the
//! file's bytes up to its end and zeros past it.
//!
//! Pages handed to a mapping are "mapped": stores through the mapping
//! may be in them and nowhere else (there are no dirty bits). They are
//! written back to the crate on fsync/fdatasync/msync/sync/syncfs/umount
//! and when the last open file of the inode goes (mappings hold their
//! file open, so that is after the last munmap or exit), compared with
//! the crate's copy and written where they differ (up to the file's size,
//! never extending it); only that last write-back makes them plain again.
//! Every other page equals the crate's copy (writes go to both), so it
//! needs no write-back and may be dropped at any time.
//!
//! Pages stay cached past the last close, bounded: at most `cap` pages
//! (`pagecache.kb=N` on the command line, else an eighth of the free
//! frames at mount). A CLOCK hand evicts plain pages nothing maps
//! (reference count 1) when a new page needs room; mapped ones are never
//! evicted, and the cache may exceed `cap` by them. When the frame pools
//! run dry, [`reclaim`] drops plain pages of every mount before the
//! allocation fails (`frames::alloc_on`), so the OOM killer only runs
//! once the cache has nothing left to give.
//!
//! A page must never outlive its inode: the inode number is reused.
//! Freeing an inode (last unlink or rename over it with no open file, or
//! the last close of an unlinked one) forgets its pages first, and create
//! forgets any left under the new number.
//!
//! Lock order: this cache's lock, then the crate's (`Ext4Mount::fs`).
//! read/write/truncate take the cache lock around the crate call so a
//! write-back never interleaves with a write of the same bytes, and a
//! fill never caches bytes a concurrent write is changing. [`reclaim`]
//! only try-locks (it runs inside frame allocation, under any lock).

use abi::{Errno, KResult};
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use super::ext4::Ext4Mount;
use crate::mm::refcount;

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
/// Every mount's pages, for [`reclaim`].
static CACHES: Mutex<Vec<Weak<Mutex<Pages>>>> = Mutex::new(Vec::new());

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
}

impl Entry {
    fn evictable(&self) -> bool {
        !self.mapped && refcount::count(self.pa) == 1
    }
}

struct Pages {
    /// By (inode, page index); each holds one frame reference.
    map: BTreeMap<(u32, u64), Entry>,
    /// Where the CLOCK hand stands.
    hand: (u32, u64),
    cap: usize,
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

    fn insert(&mut self, k: (u32, u64), pa: u64, mapped: bool) {
        let e = Entry {
            pa,
            referenced: true,
            mapped,
        };
        match self.map.insert(k, e) {
            Some(old) => refcount::put(old.pa),
            None => {
                CACHED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn remove(&mut self, k: (u32, u64)) {
        if let Some(e) = self.map.remove(&k) {
            CACHED.fetch_sub(1, Ordering::Relaxed);
            refcount::put(e.pa);
        }
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
            refcount::put(e.pa);
        }
    }
}

/// KiB of file pages all ext4 mounts cache.
pub fn cached_kb() -> usize {
    CACHED.load(Ordering::Relaxed) * 4
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
        let size = m.size(n)?;
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
        p.insert((n, index), pa, true);
        Ok(pa)
    }

    /// read(2): from the cached pages, filling the missing ones from the
    /// crate (whole pages, up to the end of the file).
    pub fn read(&self, m: &Ext4Mount, n: u32, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let torus = crate::proc::torus::this_id();
        let mut p = self.pages.lock();
        let size = m.readable_size(n)?;
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
                p.insert((n, k), pa, false);
            }
            i = j + 1;
        }
        Ok(len as usize)
    }

    /// write(2): to the crate, and into the cached pages it covers.
    pub fn write(&self, m: &Ext4Mount, n: u32, off: u64, data: &[u8]) -> KResult<usize> {
        let mut p = self.pages.lock();
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

    /// truncate: plain pages wholly past the new end leave the cache;
    /// the rest of what is past it becomes zeros (a mapping still sees
    /// its frame; an extension later reads zeros there).
    pub fn truncate(&self, m: &Ext4Mount, n: u32, size: u64) -> KResult<()> {
        let mut p = self.pages.lock();
        m.truncate_raw(n, size)?;
        for k in p.keys(n, size / PAGE) {
            let Some(e) = p.map.get(&k) else { continue };
            let start = (size.saturating_sub(k.1 * PAGE)).min(PAGE) as usize;
            if start == 0 && e.evictable() {
                p.remove(k);
            } else {
                hal::addrspace::write_frame(e.pa, start, &ZEROS[start..]);
            }
        }
        Ok(())
    }

    /// Writes the mapped pages of inode `n` (all inodes: `None`) back to
    /// the crate, up to each file's size.
    pub fn writeback(&self, m: &Ext4Mount, n: Option<u32>) -> KResult<()> {
        let p = self.pages.lock();
        Self::writeback_locked(&p, m, n)
    }

    fn writeback_locked(p: &Pages, m: &Ext4Mount, n: Option<u32>) -> KResult<()> {
        if m.readonly {
            return Ok(());
        }
        let range = match n {
            Some(n) => (n, 0)..=(n, u64::MAX),
            None => (0, 0)..=(u32::MAX, u64::MAX),
        };
        let mut size_of: Option<(u32, u64)> = None;
        let mut buf = alloc::vec![0u8; PAGE as usize];
        let mut disk = alloc::vec![0u8; PAGE as usize];
        // Plain pages equal the crate's copy: only mapped ones may differ.
        for (&(ino, i), e) in p.map.range(range).filter(|(_, e)| e.mapped) {
            let size = match size_of {
                Some((k, s)) if k == ino => s,
                _ => {
                    let s = m.size(ino)?;
                    size_of = Some((ino, s));
                    s
                }
            };
            let off = i * PAGE;
            if off >= size {
                continue;
            }
            let len = (size - off).min(PAGE) as usize;
            hal::addrspace::read_frame(e.pa, 0, &mut buf[..len]);
            // Only what differs from the crate's copy is written: a page
            // nobody stored to (read-only and private mappings) costs a
            // read from the crate's cache, not a journalled write and a
            // new mtime.
            let got = m.read_raw(ino, off, &mut disk[..len])?;
            if got != len || disk[..len] != buf[..len] {
                m.write_raw(ino, off, &buf[..len])?;
            }
        }
        Ok(())
    }

    /// The last open file of inode `n` closed: its mapped pages go back
    /// to the crate and become plain (nothing maps them any more: a
    /// mapping holds its file open), evictable again. Returns the first
    /// write-back error (the pages then stay mapped, kept for the next
    /// write-back).
    pub fn last_close(&self, m: &Ext4Mount, n: u32) -> KResult<()> {
        let mut p = self.pages.lock();
        Self::writeback_locked(&p, m, Some(n))?;
        for (_, e) in p.map.range_mut((n, 0)..=(n, u64::MAX)) {
            if refcount::count(e.pa) == 1 {
                e.mapped = false;
            }
        }
        while p.map.len() > p.cap && p.evict_one() {}
        Ok(())
    }

    /// Inode `n` is freed (or its number was just given to a new one):
    /// none of its pages may be served again.
    pub fn forget(&self, n: u32) {
        let mut p = self.pages.lock();
        for k in p.keys(n, 0) {
            p.remove(k);
        }
    }
}
