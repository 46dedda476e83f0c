//! The page cache of an ext4 mount: the frames that mmap maps for its
//! files, so MAP_SHARED mappings (SQLite's WAL index, the `-shm` file)
//! are the same memory in every process and reach the disk.
//!
//! Only pages something mapped are cached; read/write of a file with no
//! cached page go straight to the crate. Once a page is cached it is the
//! file's truth for its range: write(2) updates the frame as well as the
//! crate, read(2) takes those bytes from the frame (so it sees stores
//! through a mapping), and the frame is written back to the crate on
//! fsync/fdatasync/msync/sync/syncfs/umount and when the last open file
//! of the inode goes (mappings hold their file open, so that is after the
//! last munmap or exit). Without dirty bits every cached page is
//! compared with the crate's copy and written back where it differs (up
//! to the file's size, never extending it).
//!
//! Lock order: this cache's lock, then the crate's (`Ext4Mount::fs`).
//! read/write of a file take the cache lock around the crate call so a
//! write-back never interleaves with a write of the same bytes.

use abi::{Errno, KResult};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use spin::Mutex;

use super::ext4::Ext4Mount;
use crate::mm::refcount;

const PAGE: u64 = 4096;

/// Cached frames by (inode, page index); each holds one reference.
#[derive(Default)]
pub struct PageCache {
    pages: Mutex<BTreeMap<(u32, u64), u64>>,
}

/// The cached pages of inode `n` that overlap `[off, off + len)`, as
/// (page index, frame).
fn overlapping(p: &BTreeMap<(u32, u64), u64>, n: u32, off: u64, len: u64) -> Vec<(u64, u64)> {
    if len == 0 {
        return Vec::new();
    }
    let first = off / PAGE;
    let last = (off + len - 1) / PAGE;
    p.range((n, first)..=(n, last))
        .map(|(&(_, i), &pa)| (i, pa))
        .collect()
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

impl PageCache {
    /// The frame of page `index` of inode `n` for a mapping, read from
    /// the disk the first time. EIO (SIGBUS) for a page wholly past the
    /// end of the file, as on Linux.
    pub fn page(&self, m: &Ext4Mount, n: u32, index: u64, torus: usize) -> KResult<u64> {
        let mut p = self.pages.lock();
        if let Some(&pa) = p.get(&(n, index)) {
            return Ok(pa);
        }
        let size = m.stat(n)?.size.max(0) as u64;
        let off = index.checked_mul(PAGE).ok_or(Errno::EIO)?;
        if off >= size {
            return Err(Errno::EIO);
        }
        let mut buf = alloc::vec![0u8; PAGE as usize];
        let want = (size - off).min(PAGE) as usize;
        let got = m.read_raw(n, off, &mut buf[..want])?;
        buf[got..].fill(0);
        let pa = refcount::alloc(torus).ok_or(Errno::ENOMEM)?;
        hal::addrspace::write_frame(pa, 0, &buf);
        p.insert((n, index), pa);
        Ok(pa)
    }

    /// read(2): the crate's bytes, with those of cached pages on top.
    pub fn read(&self, m: &Ext4Mount, n: u32, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let p = self.pages.lock();
        let got = m.read_raw(n, off, buf)?;
        for (i, pa) in overlapping(&p, n, off, got as u64) {
            let (in_page, in_buf, len) = span(i, off, got as u64);
            hal::addrspace::read_frame(pa, in_page, &mut buf[in_buf..in_buf + len]);
        }
        Ok(got)
    }

    /// write(2): to the crate, and into the cached pages it covers.
    pub fn write(&self, m: &Ext4Mount, n: u32, off: u64, data: &[u8]) -> KResult<usize> {
        let p = self.pages.lock();
        let done = m.write_raw(n, off, data)?;
        for (i, pa) in overlapping(&p, n, off, done as u64) {
            let (in_page, in_buf, len) = span(i, off, done as u64);
            hal::addrspace::write_frame(pa, in_page, &data[in_buf..in_buf + len]);
        }
        Ok(done)
    }

    /// truncate: cached bytes past the new end become zeros (a mapping
    /// still sees its frame; an extension later reads zeros there).
    pub fn truncate(&self, m: &Ext4Mount, n: u32, size: u64) -> KResult<()> {
        let p = self.pages.lock();
        m.truncate_raw(n, size)?;
        for (&(_, i), &pa) in p.range((n, size / PAGE)..=(n, u64::MAX)) {
            let start = (size.saturating_sub(i * PAGE)).min(PAGE) as usize;
            let zeros = [0u8; PAGE as usize];
            hal::addrspace::write_frame(pa, start, &zeros[start..]);
        }
        Ok(())
    }

    /// Writes the cached pages of inode `n` (all inodes: `None`) back to
    /// the crate, up to each file's size.
    pub fn writeback(&self, m: &Ext4Mount, n: Option<u32>) -> KResult<()> {
        let p = self.pages.lock();
        Self::writeback_locked(&p, m, n)
    }

    fn writeback_locked(
        p: &BTreeMap<(u32, u64), u64>,
        m: &Ext4Mount,
        n: Option<u32>,
    ) -> KResult<()> {
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
        for (&(ino, i), &pa) in p.range(range) {
            let size = match size_of {
                Some((k, s)) if k == ino => s,
                _ => {
                    let s = m.stat(ino)?.size.max(0) as u64;
                    size_of = Some((ino, s));
                    s
                }
            };
            let off = i * PAGE;
            if off >= size {
                continue;
            }
            let len = (size - off).min(PAGE) as usize;
            hal::addrspace::read_frame(pa, 0, &mut buf[..len]);
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

    /// The last open file of inode `n` closed: its pages go back to the
    /// crate and leave the cache (nothing maps them any more: a mapping
    /// holds its file open). Returns the first write-back error.
    pub fn evict(&self, m: &Ext4Mount, n: u32) -> KResult<()> {
        let mut p = self.pages.lock();
        let r = Self::writeback_locked(&p, m, Some(n));
        let keys: Vec<(u32, u64)> = p.range((n, 0)..=(n, u64::MAX)).map(|(&k, _)| k).collect();
        for k in keys {
            if let Some(pa) = p.remove(&k) {
                refcount::put(pa);
            }
        }
        r
    }
}
