//! Write-behind for a file system's disk: small writes are kept (copied)
//! and sent to the device later, many in flight at once, instead of one
//! round trip to the device each.
//!
//! This is what a disk with a volatile write cache does, and a journalled
//! file system is written for exactly that: nothing it writes is durable
//! before it asks for a flush, and it asks for one between its journal
//! blocks and their commit record and before it reports fsync done. So
//! the rules that keep it right are the device's:
//!
//! - a flush sends everything kept first, waits for it, then flushes;
//! - a read of sectors a kept write covers sends the kept writes first
//!   (a read sees every write made before it);
//! - a write of exactly the sectors of a kept one replaces it (it was
//!   never sent: the later bytes win, as on a disk); one that overlaps a
//!   kept write otherwise sends the kept ones first, so two requests for
//!   the same sector are never in flight together (the device could
//!   complete them in either order);
//! - at most [`MAX_KEPT`] bytes are kept: past that, they are sent.
//!
//! Large writes (a request's worth or more) go to the device at once:
//! they already make several requests in flight, from the caller's own
//! buffer. A failed send reports the error to the call that caused it
//! (a read, a write, a flush) and drops the kept writes, as a failed
//! device write loses its data; the file system then sees EIO.

use abi::KResult;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Disk, Wait, SECTOR};

/// Bytes kept at most before they are sent.
const MAX_KEPT: usize = 8 << 20;
/// Writes this large or larger are not kept.
const KEEP_BELOW: usize = super::CHUNK;

/// A disk and the writes kept for it.
pub struct WriteBehind {
    disk: Arc<Disk>,
    /// Kept writes by first sector; no two overlap.
    kept: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
}

impl WriteBehind {
    pub fn new(disk: Arc<Disk>) -> Self {
        WriteBehind {
            disk,
            kept: BTreeMap::new(),
            bytes: 0,
        }
    }

    pub fn disk(&self) -> &Arc<Disk> {
        &self.disk
    }

    /// The kept write whose sectors meet `[first, first + n)`, if any
    /// (kept writes are disjoint: only the last one starting before the
    /// end can).
    fn meets(&self, first: u64, n: u64) -> Option<(u64, u64)> {
        let (&s, b) = self.kept.range(..first + n).next_back()?;
        let len = (b.len() / SECTOR) as u64;
        (s + len > first).then_some((s, len))
    }

    /// Writes `data` (whole sectors) at sector `first`.
    pub fn write(&mut self, first: u64, data: &[u8], how: Wait) -> KResult<()> {
        let n = (data.len() / SECTOR) as u64;
        if data.len() >= KEEP_BELOW || !data.len().is_multiple_of(SECTOR) || n == 0 {
            if self.meets(first, n.max(1)).is_some() {
                self.send(how)?;
            }
            return self.write_now(first, data, how);
        }
        match self.meets(first, n) {
            Some((s, len)) if s == first && len == n => {
                if let Some(b) = self.kept.get_mut(&s) {
                    b.copy_from_slice(data);
                }
                return Ok(());
            }
            Some(_) => self.send(how)?,
            None => {}
        }
        let mut copy = Vec::new();
        if copy.try_reserve_exact(data.len()).is_err() {
            // No memory to keep it: write it now.
            return self.write_now(first, data, how);
        }
        copy.extend_from_slice(data);
        self.kept.insert(first, copy);
        self.bytes += data.len();
        if self.bytes > MAX_KEPT {
            self.send(how)?;
        }
        Ok(())
    }

    fn write_now(&self, first: u64, data: &[u8], how: Wait) -> KResult<()> {
        let done = self.disk.write_at(first * SECTOR as u64, data, how)?;
        if done != data.len() {
            return Err(abi::Errno::EIO);
        }
        Ok(())
    }

    /// Reads `buf` (whole sectors) from sector `first`, after sending the
    /// kept writes if one covers any of it.
    pub fn read(&mut self, first: u64, buf: &mut [u8], how: Wait) -> KResult<()> {
        let n = (buf.len().div_ceil(SECTOR) as u64).max(1);
        if self.meets(first, n).is_some() {
            self.send(how)?;
        }
        let done = self.disk.read_at(first * SECTOR as u64, buf, how)?;
        if done != buf.len() {
            return Err(abi::Errno::EIO);
        }
        Ok(())
    }

    /// Sends the kept writes, then flushes the device's cache.
    pub fn flush(&mut self, how: Wait) -> KResult<()> {
        self.send(how)?;
        self.disk.flush(how)
    }

    /// Sends every kept write (in sector order, as many in flight as the
    /// device takes) and waits for them.
    pub fn send(&mut self, how: Wait) -> KResult<()> {
        if self.kept.is_empty() {
            return Ok(());
        }
        let kept = core::mem::take(&mut self.kept);
        self.bytes = 0;
        self.disk
            .write_batch(kept.iter().map(|(&s, b)| (s, &b[..])), how)
    }
}

impl Drop for WriteBehind {
    /// A file system dropped without a flush (a failed mount) still
    /// sends what it wrote, as a disk would.
    fn drop(&mut self) {
        let _ = self.send(Wait::Poll);
    }
}
