//! Block devices: the disks found at boot (virtio-blk, `virtio_blk`),
//! byte-addressed for the file layer (`/dev/vda` reads and writes any
//! offset and length; the sector arithmetic and read-modify-write of
//! partial sectors live here), and flushed on fsync.
//!
//! This layer caches nothing for the raw device (ext4's page cache is
//! above it, in `fs::ext4_pages`; ext4's small blocks, its writes kept
//! until it flushes, in a `BufferCache`): a read goes to the device, a
//! write goes to the device before it returns (write-through), and fsync
//! asks the device to flush its own write cache (VIRTIO_BLK_F_FLUSH),
//! which is what makes the data durable. A transfer becomes requests of
//! at most 64 KiB, all submitted together (as many as the queue takes)
//! and made straight from the caller's buffer when the device can reach
//! it. A disk is shared by every torus: its lock covers submitting and
//! completing, not the I/O, so tasks' requests overlap; the caller
//! sleeps until they complete, woken through the disks' interrupt
//! (`irq`), or polls where it may not sleep ([`Wait`]).

mod buffer_cache;
mod ioctl;
mod irq;
mod stats;
mod virtio_blk;

use abi::{Errno, KResult};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use hal::virtio_blk::{Op, Request};

pub use buffer_cache::{held as buffers_held, BufferCache};
pub use ioctl::ioctl;
pub use irq::{boundary, on_interrupt, on_shared_interrupt, BLK_VECTOR};
pub use virtio_blk::{Wait, SECTOR};

/// Linux's major number for virtio-blk disks (dynamic on Linux; 254 is
/// what it gets on a typical x86 system), and minors per disk.
pub const VIRTBLK_MAJOR: u32 = 254;
const MINORS_PER_DISK: u32 = 16;

/// A disk: its name in /dev and its device.
pub struct Disk {
    pub name: String,
    /// Device number (major, minor).
    pub rdev: u32,
    sectors: u64,
    readonly: bool,
    dev: virtio_blk::VirtioBlk,
    /// Held across a read-modify-write of partial sectors.
    rmw: Mutex<()>,
}

static DISKS: Mutex<Vec<Arc<Disk>>> = Mutex::new(Vec::new());

/// Takes every virtio-blk device `drivers::virtio` found and makes it a
/// disk (vda, vdb, …). Runs once at boot, before the file layer makes
/// their /dev nodes ([`disks`]).
pub fn init(cmd: &str) {
    virtio_blk::init(cmd);
    use virtio_drivers::transport::DeviceType;
    while let Some(found) = crate::drivers::virtio::take(DeviceType::Block) {
        let dev = match virtio_blk::VirtioBlk::new(found.transport, found.gsi) {
            Ok(d) => d,
            Err(e) => {
                crate::klog!("block: {}: virtio-blk set-up failed: {e}", found.place);
                continue;
            }
        };
        let mut disks = DISKS.lock();
        let i = disks.len() as u32;
        if i >= 26 {
            break;
        }
        let name = alloc::format!("vd{}", (b'a' + i as u8) as char);
        let (sectors, readonly) = (dev.sectors(), dev.readonly());
        crate::klog!(
            "block: {name} {} ({} sectors, {} MiB{}, flush {}, {} requests in flight, {})",
            found.place,
            sectors,
            (sectors * SECTOR as u64) >> 20,
            if readonly { ", read-only" } else { "" },
            if dev.has_flush() { "yes" } else { "no" },
            dev.depth(),
            match (dev.has_irq(), found.gsi) {
                (true, Some(gsi)) => alloc::format!("interrupt on GSI {gsi}"),
                _ => String::from("polled"),
            }
        );
        disks.push(Arc::new(Disk {
            name,
            rdev: vfs::devnum::makedev(VIRTBLK_MAJOR, i * MINORS_PER_DISK),
            sectors,
            readonly,
            dev,
            rmw: Mutex::new(()),
        }));
    }
}

/// The disks, in the order they were found.
pub fn disks() -> Vec<Arc<Disk>> {
    DISKS.lock().clone()
}

/// The disk with device number `rdev` (ENXIO when there is none).
pub fn by_rdev(rdev: u32) -> KResult<Arc<Disk>> {
    DISKS
        .lock()
        .iter()
        .find(|d| d.rdev == rdev)
        .cloned()
        .ok_or(Errno::ENXIO)
}

/// The text of `/proc/diskstats`: a line per disk, Linux's format.
pub fn proc_diskstats() -> String {
    disks()
        .iter()
        .map(|d| {
            let (major, minor) = (vfs::devnum::major(d.rdev), vfs::devnum::minor(d.rdev));
            d.dev.stats().line(major, minor, &d.name)
        })
        .collect()
}

/// Flushes every disk's write cache (sync(2)).
pub fn sync_all() {
    for d in disks() {
        let _ = d.flush(Wait::Sleep);
    }
}

/// Sectors per device request at most: a large transfer becomes several
/// requests in flight together.
const CHUNK_SECTORS: usize = 128;
const CHUNK: usize = CHUNK_SECTORS * SECTOR;

impl Disk {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.sectors * SECTOR as u64
    }

    /// Whether the device refuses writes.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// Reads at byte offset `off`; short at the end of the disk, 0 past it.
    pub fn read_at(&self, off: u64, buf: &mut [u8], how: Wait) -> KResult<usize> {
        let len = (buf.len() as u64).min(self.size().saturating_sub(off)) as usize;
        if len == 0 {
            return Ok(0);
        }
        let buf = &mut buf[..len];
        let (h, m) = split(off, len);
        let (head, rest) = buf.split_at_mut(h);
        let (mid, tail) = rest.split_at_mut(m);
        let first = off / SECTOR as u64;
        // Partial sectors at either end go through a sector of their own;
        // whole ones straight into `buf` when the device can reach it.
        let mut hb = edge(head.len())?;
        let mut tb = edge(tail.len())?;
        let direct = in_heap(mid);
        let mut bounce = if direct {
            Vec::new()
        } else {
            bounces(mid.len())?
        };
        {
            let mut reqs = Vec::new();
            let mut sector = first;
            if let Some(b) = hb.as_deref_mut() {
                reqs.push(Request {
                    sector,
                    op: Op::Read(b),
                });
                sector += 1;
            }
            let chunks: Vec<&mut [u8]> = if direct {
                mid.chunks_mut(CHUNK).collect()
            } else {
                bounce.iter_mut().map(|b| &mut b[..]).collect()
            };
            for c in chunks {
                let n = (c.len() / SECTOR) as u64;
                reqs.push(Request {
                    sector,
                    op: Op::Read(c),
                });
                sector += n;
            }
            if let Some(b) = tb.as_deref_mut() {
                reqs.push(Request {
                    sector,
                    op: Op::Read(b),
                });
            }
            self.dev.run(&mut reqs, how)?;
        }
        let skip = (off % SECTOR as u64) as usize;
        if let Some(b) = &hb {
            head.copy_from_slice(&b[skip..skip + head.len()]);
        }
        if !direct {
            for (c, b) in mid.chunks_mut(CHUNK).zip(&bounce) {
                c.copy_from_slice(b);
            }
        }
        if let Some(b) = &tb {
            tail.copy_from_slice(&b[..tail.len()]);
        }
        Ok(len)
    }

    /// Writes at byte offset `off` (through to the device before it
    /// returns); short at the end of the disk, ENOSPC past it, EROFS on a
    /// read-only disk.
    pub fn write_at(&self, off: u64, data: &[u8], how: Wait) -> KResult<usize> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        if !data.is_empty() && off >= self.size() {
            return Err(Errno::ENOSPC);
        }
        let len = (data.len() as u64).min(self.size() - off) as usize;
        if len == 0 {
            return Ok(0);
        }
        let data = &data[..len];
        let (h, m) = split(off, len);
        let (head, rest) = data.split_at(h);
        let (mid, tail) = rest.split_at(m);
        let first = off / SECTOR as u64;
        let mut hb = edge(head.len())?;
        let mut tb = edge(tail.len())?;
        let tail_sector = first + (h != 0) as u64 + (m / SECTOR) as u64;
        // A sector only partly written keeps the rest of its bytes: read,
        // patch, write, with the disk's other partial writes kept out
        // (and polling, as the lock is a spin lock).
        let partial = hb.is_some() || tb.is_some();
        let _rmw = partial.then(|| self.rmw.lock());
        let how = if partial { Wait::Poll } else { how };
        if partial {
            let mut reqs = Vec::new();
            if let Some(b) = hb.as_deref_mut() {
                reqs.push(Request {
                    sector: first,
                    op: Op::Read(b),
                });
            }
            if let Some(b) = tb.as_deref_mut() {
                reqs.push(Request {
                    sector: tail_sector,
                    op: Op::Read(b),
                });
            }
            self.dev.run(&mut reqs, how)?;
            let skip = (off % SECTOR as u64) as usize;
            if let Some(b) = hb.as_deref_mut() {
                b[skip..skip + head.len()].copy_from_slice(head);
            }
            if let Some(b) = tb.as_deref_mut() {
                b[..tail.len()].copy_from_slice(tail);
            }
        }
        let copies = if in_heap(mid) {
            Vec::new()
        } else {
            mid.chunks(CHUNK).map(copy).collect::<KResult<Vec<_>>>()?
        };
        let mut reqs = Vec::new();
        let mut sector = first;
        if let Some(b) = hb.as_deref() {
            reqs.push(Request {
                sector,
                op: Op::Write(b),
            });
            sector += 1;
        }
        let chunks: Vec<&[u8]> = if copies.is_empty() {
            mid.chunks(CHUNK).collect()
        } else {
            copies.iter().map(|c| &c[..]).collect()
        };
        for c in chunks {
            let n = (c.len() / SECTOR) as u64;
            reqs.push(Request {
                sector,
                op: Op::Write(c),
            });
            sector += n;
        }
        if let Some(b) = tb.as_deref() {
            reqs.push(Request {
                sector,
                op: Op::Write(b),
            });
        }
        self.dev.run(&mut reqs, how)?;
        Ok(len)
    }

    /// Writes whole-sector heap buffers at their sectors, as many
    /// requests in flight as the device takes (`BufferCache` sending what
    /// it kept); no two may cover the same sector.
    pub fn write_batch<'a>(
        &self,
        writes: impl Iterator<Item = (u64, &'a [u8])>,
        how: Wait,
    ) -> KResult<()> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        let mut reqs = Vec::new();
        for (first, data) in writes {
            if !data.len().is_multiple_of(SECTOR)
                || !in_heap(data)
                || first + (data.len() / SECTOR) as u64 > self.sectors
            {
                return Err(Errno::EINVAL);
            }
            let mut sector = first;
            for c in data.chunks(CHUNK) {
                reqs.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                reqs.push(Request {
                    sector,
                    op: Op::Write(c),
                });
                sector += (c.len() / SECTOR) as u64;
            }
        }
        self.dev.run(&mut reqs, how)
    }

    /// Asks the device to write its cache to stable storage, once the
    /// requests in flight have completed.
    pub fn flush(&self, how: Wait) -> KResult<()> {
        self.dev.flush(how)
    }
}

/// How `len` bytes from byte `off` divide: bytes in a partial first
/// sector, then in whole sectors (the rest is a partial last sector).
fn split(off: u64, len: usize) -> (usize, usize) {
    let skip = (off % SECTOR as u64) as usize;
    let head = if skip == 0 {
        0
    } else {
        (SECTOR - skip).min(len)
    };
    let whole = (len - head) / SECTOR * SECTOR;
    (head, whole)
}

/// Whether the device can be lent `b` in place (see `virtio_blk`).
fn in_heap(b: &[u8]) -> bool {
    b.is_empty() || hal::heap::contains(b.as_ptr() as u64, b.len())
}

/// A sector's buffer for a partial sector of `len` bytes (none for 0).
fn edge(len: usize) -> KResult<Option<Vec<u8>>> {
    if len == 0 {
        return Ok(None);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(SECTOR).map_err(|_| Errno::ENOMEM)?;
    v.resize(SECTOR, 0);
    Ok(Some(v))
}

/// Heap buffers for `len` bytes of whole sectors, a request's each.
fn bounces(len: usize) -> KResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK);
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
        v.resize(n, 0);
        out.push(v);
        left -= n;
    }
    Ok(out)
}

/// A heap copy of `b` (for data the device cannot be lent in place).
fn copy(b: &[u8]) -> KResult<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(b.len()).map_err(|_| Errno::ENOMEM)?;
    v.extend_from_slice(b);
    Ok(v)
}
