//! A file system's buffer cache: the small blocks it reads and writes
//! (metadata, journal, small file writes), kept in memory. Reads of a
//! kept block do not go to the device; writes are kept (write-behind)
//! and sent later, many in flight at once, instead of one round trip
//! to the device each.
//!
//! Keeping writes is what a disk with a volatile write cache does, and a
//! journalled file system is written for exactly that: nothing it writes
//! is durable before it asks for a flush, and it asks for one between
//! its journal blocks and their commit record and before it reports
//! fsync done. So the rules that keep it right are the device's:
//!
//! - a flush sends every kept write first, waits for them, then flushes
//!   the device, unless nothing went to it since the last flush (a sync
//!   with nothing to commit: sqlite3's fdatasync of its directory);
//! - a read sees every write made before it: from the kept block, or
//!   from the device with the kept writes it meets copied over;
//! - a write of exactly a kept block's sectors replaces its bytes; one
//!   that meets a kept block otherwise sends the kept writes first and
//!   drops the blocks it meets, so two requests for the same sector are
//!   never in flight together (the device could complete them in either
//!   order) and no stale copy stays;
//! - at most [`MAX_DIRTY`] bytes of writes are kept: past that, they are
//!   sent.
//!
//! Blocks once sent stay as clean copies, with blocks read, up to a cap
//! (1/32 of the heap's growth limit, at most [`MAX_CLEAN`]); past it,
//! clean ones go in CLOCK order. A clean copy is the device's content
//! because only this cache writes the file system's sectors: a raw
//! write to /dev/vdX under a mounted file system is not seen here
//! (Linux's block device shares its page cache with the file system's
//! buffers, so there it is).
//!
//! Large transfers (a request's worth or more) go to the device at once
//! and are not kept: they already make several requests in flight, from
//! the caller's own buffer, and would push metadata out. A failed send
//! reports the error to the call that caused it (a read, a write, a
//! flush) and drops the kept writes, as a failed device write loses its
//! data; the file system then sees EIO.

use abi::{Errno, KResult};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{Disk, Wait, SECTOR};

/// Bytes of kept writes at most before they are sent.
const MAX_DIRTY: usize = 8 << 20;
/// Bytes of clean blocks at most, per disk.
const MAX_CLEAN: usize = 8 << 20;
/// Transfers this large or larger are not kept.
const KEEP_BELOW: usize = super::CHUNK;

/// Bytes held by every buffer cache (/proc/meminfo's Buffers).
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Bytes all buffer caches hold.
pub fn held() -> usize {
    HELD.load(Ordering::Relaxed)
}

struct Block {
    data: Vec<u8>,
    /// Written and not yet sent.
    dirty: bool,
    /// Used since the CLOCK hand last passed.
    referenced: bool,
}

impl Block {
    fn sectors(&self) -> u64 {
        (self.data.len() / SECTOR) as u64
    }
}

/// A disk and the blocks kept for it.
pub struct BufferCache {
    disk: Arc<Disk>,
    /// Kept blocks by first sector; no two overlap.
    blocks: BTreeMap<u64, Block>,
    dirty: usize,
    clean: usize,
    clean_cap: usize,
    /// Where CLOCK looks next.
    hand: u64,
    /// Writes went to the device since its cache was last flushed.
    unflushed: bool,
}

impl BufferCache {
    pub fn new(disk: Arc<Disk>) -> Self {
        BufferCache {
            disk,
            blocks: BTreeMap::new(),
            dirty: 0,
            clean: 0,
            clean_cap: (hal::heap::size() / 32).min(MAX_CLEAN),
            hand: 0,
            unflushed: false,
        }
    }

    pub fn disk(&self) -> &Arc<Disk> {
        &self.disk
    }

    /// First sectors of the kept blocks that meet `[first, first + n)`,
    /// in order (blocks are disjoint, so their ends are in order too).
    fn meeting(&self, first: u64, n: u64) -> Vec<u64> {
        let mut found: Vec<u64> = self
            .blocks
            .range(..first + n)
            .rev()
            .take_while(|(&s, b)| s + b.sectors() > first)
            .map(|(&s, _)| s)
            .collect();
        found.reverse();
        found
    }

    fn any_dirty(&self, starts: &[u64]) -> bool {
        starts
            .iter()
            .any(|s| self.blocks.get(s).is_some_and(|b| b.dirty))
    }

    /// Drops the blocks starting at `starts`.
    fn drop_blocks(&mut self, starts: &[u64]) {
        for s in starts {
            if let Some(b) = self.blocks.remove(s) {
                self.forget(&b);
            }
        }
    }

    fn forget(&mut self, b: &Block) {
        if b.dirty {
            self.dirty -= b.data.len();
        } else {
            self.clean -= b.data.len();
        }
        HELD.fetch_sub(b.data.len(), Ordering::Relaxed);
    }

    fn insert(&mut self, first: u64, data: &[u8], dirty: bool) -> bool {
        let mut copy = Vec::new();
        if copy.try_reserve_exact(data.len()).is_err() {
            return false;
        }
        copy.extend_from_slice(data);
        if dirty {
            self.dirty += data.len();
        } else {
            self.clean += data.len();
        }
        HELD.fetch_add(data.len(), Ordering::Relaxed);
        self.blocks.insert(
            first,
            Block {
                data: copy,
                dirty,
                referenced: true,
            },
        );
        true
    }

    /// Writes `data` (whole sectors) at sector `first`.
    pub fn write(&mut self, first: u64, data: &[u8], how: Wait) -> KResult<()> {
        let n = (data.len() / SECTOR) as u64;
        let small = data.len() < KEEP_BELOW && data.len().is_multiple_of(SECTOR) && n > 0;
        let met = self.meeting(first, n.max(1));
        if small {
            if let [s] = met[..] {
                if let Some(b) = self
                    .blocks
                    .get_mut(&s)
                    .filter(|b| s == first && b.sectors() == n)
                {
                    b.data.copy_from_slice(data);
                    b.referenced = true;
                    if !b.dirty {
                        b.dirty = true;
                        self.clean -= data.len();
                        self.dirty += data.len();
                        return self.bound(how);
                    }
                    return Ok(());
                }
            }
        }
        if self.any_dirty(&met) {
            self.send(how)?;
        }
        self.drop_blocks(&met);
        if !small || !self.insert(first, data, true) {
            // Large, odd, or no memory to keep it: write it now.
            return self.write_now(first, data, how);
        }
        self.bound(how)
    }

    /// Sends the kept writes if there are too many.
    fn bound(&mut self, how: Wait) -> KResult<()> {
        if self.dirty > MAX_DIRTY {
            self.send(how)?;
        }
        Ok(())
    }

    fn write_now(&mut self, first: u64, data: &[u8], how: Wait) -> KResult<()> {
        self.unflushed = true;
        let done = self.disk.write_at(first * SECTOR as u64, data, how)?;
        if done != data.len() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Reads `buf` (whole sectors) from sector `first`.
    pub fn read(&mut self, first: u64, buf: &mut [u8], how: Wait) -> KResult<()> {
        let n = (buf.len().div_ceil(SECTOR) as u64).max(1);
        let met = self.meeting(first, n);
        if !buf.len().is_multiple_of(SECTOR) {
            if self.any_dirty(&met) {
                self.send(how)?;
            }
            return self.read_now(first, buf, how);
        }
        if let [s] = met[..] {
            if let Some(b) = self.blocks.get_mut(&s) {
                if s + b.sectors() >= first + n && s <= first {
                    let at = (first - s) as usize * SECTOR;
                    buf.copy_from_slice(&b.data[at..at + buf.len()]);
                    b.referenced = true;
                    return Ok(());
                }
            }
        }
        // The device has every sector but those of kept writes: read,
        // then copy those over.
        self.read_now(first, buf, how)?;
        for s in &met {
            let Some(b) = self.blocks.get(s).filter(|b| b.dirty) else {
                continue;
            };
            let from = (*s).max(first);
            let to = (s + b.sectors()).min(first + n);
            let src = &b.data[(from - s) as usize * SECTOR..(to - s) as usize * SECTOR];
            buf[(from - first) as usize * SECTOR..(to - first) as usize * SECTOR]
                .copy_from_slice(src);
        }
        if met.is_empty() && buf.len() < KEEP_BELOW && self.insert(first, buf, false) {
            self.evict();
        }
        Ok(())
    }

    fn read_now(&self, first: u64, buf: &mut [u8], how: Wait) -> KResult<()> {
        let done = self.disk.read_at(first * SECTOR as u64, buf, how)?;
        if done != buf.len() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Sends the kept writes, then flushes the device's cache.
    pub fn flush(&mut self, how: Wait) -> KResult<()> {
        self.send(how)?;
        if !self.unflushed {
            return Ok(());
        }
        self.disk.flush(how)?;
        self.unflushed = false;
        Ok(())
    }

    /// Sends every kept write (in sector order, as many in flight as the
    /// device takes) and waits for them; they stay as clean blocks.
    pub fn send(&mut self, how: Wait) -> KResult<()> {
        if self.dirty == 0 {
            return Ok(());
        }
        self.unflushed = true;
        let dirty: Vec<(u64, &[u8])> = self
            .blocks
            .iter()
            .filter(|(_, b)| b.dirty)
            .map(|(&s, b)| (s, &b.data[..]))
            .collect();
        // Adjacent blocks go as one request, copied together (up to
        // KEEP_BELOW): under QEMU a request costs tens of µs of the
        // host's I/O threads whatever its size, a copy of a few KiB far
        // less. Without the memory for a copy they go one by one.
        // (first block, past the last, bytes)
        let mut groups: Vec<(usize, usize, usize)> = Vec::new();
        for (i, &(s, d)) in dirty.iter().enumerate() {
            match groups.last_mut() {
                Some((_, to, bytes))
                    if dirty[*to - 1].0 + (dirty[*to - 1].1.len() / SECTOR) as u64 == s
                        && *bytes + d.len() <= KEEP_BELOW =>
                {
                    *to = i + 1;
                    *bytes += d.len();
                }
                _ => groups.push((i, i + 1, d.len())),
            }
        }
        let mut joined: Vec<Vec<u8>> = Vec::new();
        for &(from, to, bytes) in groups.iter().filter(|g| g.1 - g.0 > 1) {
            let mut buf = Vec::new();
            if buf.try_reserve_exact(bytes).is_ok() {
                for b in &dirty[from..to] {
                    buf.extend_from_slice(b.1);
                }
            }
            joined.push(buf);
        }
        let mut writes: Vec<(u64, &[u8])> = Vec::with_capacity(groups.len());
        let mut next_joined = joined.iter();
        for &(from, to, _) in &groups {
            if to - from == 1 {
                writes.push(dirty[from]);
                continue;
            }
            match next_joined.next() {
                Some(buf) if !buf.is_empty() => writes.push((dirty[from].0, buf)),
                _ => writes.extend_from_slice(&dirty[from..to]),
            }
        }
        let sent = self.disk.write_batch(writes.into_iter(), how);
        if sent.is_err() {
            let dirty: Vec<u64> = self
                .blocks
                .iter()
                .filter(|(_, b)| b.dirty)
                .map(|(&s, _)| s)
                .collect();
            self.drop_blocks(&dirty);
            return sent;
        }
        for b in self.blocks.values_mut().filter(|b| b.dirty) {
            b.dirty = false;
        }
        self.clean += self.dirty;
        self.dirty = 0;
        self.evict();
        Ok(())
    }

    /// Drops clean blocks in CLOCK order until they fit the cap.
    fn evict(&mut self) {
        // Two turns of the hand clear every reference bit; more would
        // mean nothing clean is left to drop.
        let mut steps = 2 * self.blocks.len();
        while self.clean > self.clean_cap && steps > 0 {
            steps -= 1;
            let next = self
                .blocks
                .range(self.hand..)
                .next()
                .or_else(|| self.blocks.iter().next())
                .map(|(&s, _)| s);
            let Some(s) = next else {
                return;
            };
            self.hand = s + 1;
            let Some(b) = self.blocks.get_mut(&s) else {
                return;
            };
            if b.dirty {
                continue;
            }
            if b.referenced {
                b.referenced = false;
                continue;
            }
            if let Some(b) = self.blocks.remove(&s) {
                self.forget(&b);
            }
        }
    }
}

impl Drop for BufferCache {
    /// A file system dropped without a flush (a failed mount) still
    /// sends what it wrote, as a disk would.
    fn drop(&mut self) {
        let _ = self.send(Wait::Poll);
        HELD.fetch_sub(self.dirty + self.clean, Ordering::Relaxed);
    }
}
