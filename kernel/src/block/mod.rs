//! Block devices: the disks found at boot (virtio-blk, `virtio_blk`),
//! byte-addressed for the file layer (`/dev/vda` reads and writes any
//! offset and length; the sector arithmetic and read-modify-write of
//! partial sectors live here), and flushed on fsync.
//!
//! There is no page cache yet: a read goes to the device, a write goes to
//! the device before it returns (write-through), and fsync asks the device
//! to flush its own write cache (VIRTIO_BLK_F_FLUSH), which is what makes
//! the data durable. A disk is shared by every torus: requests are
//! serialised by the disk's lock and completed by polling (see
//! `virtio_blk`), so no torus owns an interrupt line for it.

mod ioctl;
mod virtio_blk;

use abi::{Errno, KResult};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

pub use ioctl::ioctl;
pub use virtio_blk::SECTOR;

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
    dev: Mutex<virtio_blk::VirtioBlk>,
}

static DISKS: Mutex<Vec<Arc<Disk>>> = Mutex::new(Vec::new());

/// Takes every virtio-blk device `drivers::virtio` found and makes it a
/// disk (vda, vdb, …). Runs once at boot, before the file layer makes
/// their /dev nodes ([`disks`]).
pub fn init() {
    use virtio_drivers::transport::DeviceType;
    while let Some(found) = crate::drivers::virtio::take(DeviceType::Block) {
        let dev = match virtio_blk::VirtioBlk::new(found.transport) {
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
            "block: {name} {} ({} sectors, {} MiB{}, flush {})",
            found.place,
            sectors,
            (sectors * SECTOR as u64) >> 20,
            if readonly { ", read-only" } else { "" },
            if dev.has_flush() { "yes" } else { "no" }
        );
        disks.push(Arc::new(Disk {
            name,
            rdev: vfs::devnum::makedev(VIRTBLK_MAJOR, i * MINORS_PER_DISK),
            sectors,
            readonly,
            dev: Mutex::new(dev),
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

/// Flushes every disk's write cache (sync(2)).
pub fn sync_all() {
    for d in disks() {
        let _ = d.flush();
    }
}

/// Sectors per device request: bounds the bounce buffer (heap) a request
/// needs, whatever length the caller asks for.
const CHUNK_SECTORS: u64 = 128;

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
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let len = (buf.len() as u64).min(self.size().saturating_sub(off)) as usize;
        let mut done = 0;
        while done < len {
            let pos = off + done as u64;
            let (first, skip, n) = self.span(pos, len - done);
            let mut bounce = bounce(first, pos + n as u64)?;
            self.dev.lock().read(first, &mut bounce)?;
            buf[done..done + n].copy_from_slice(&bounce[skip..skip + n]);
            done += n;
        }
        Ok(len)
    }

    /// Writes at byte offset `off` (through to the device before it
    /// returns); short at the end of the disk, ENOSPC past it, EROFS on a
    /// read-only disk.
    pub fn write_at(&self, off: u64, data: &[u8]) -> KResult<usize> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        if !data.is_empty() && off >= self.size() {
            return Err(Errno::ENOSPC);
        }
        let len = (data.len() as u64).min(self.size() - off) as usize;
        let mut done = 0;
        while done < len {
            let pos = off + done as u64;
            let (first, skip, n) = self.span(pos, len - done);
            let mut bounce = bounce(first, pos + n as u64)?;
            let mut dev = self.dev.lock();
            // A sector only partly written keeps the rest of its bytes.
            if skip != 0 || n != bounce.len() {
                dev.read(first, &mut bounce)?;
            }
            bounce[skip..skip + n].copy_from_slice(&data[done..done + n]);
            dev.write(first, &bounce)?;
            done += n;
        }
        Ok(len)
    }

    /// Asks the device to write its cache to stable storage.
    pub fn flush(&self) -> KResult<()> {
        self.dev.lock().flush()
    }

    /// The request covering byte `pos` onwards (at most `len` bytes and
    /// [`CHUNK_SECTORS`]): its first sector, where `pos` falls in it, and
    /// how many bytes of the caller's it carries.
    fn span(&self, pos: u64, len: usize) -> (u64, usize, usize) {
        let first = pos / SECTOR as u64;
        let skip = (pos % SECTOR as u64) as usize;
        let room = (CHUNK_SECTORS * SECTOR as u64) as usize - skip;
        (first, skip, len.min(room))
    }
}

/// A zeroed buffer for sectors `first` up to the one holding byte `end - 1`.
fn bounce(first: u64, end: u64) -> KResult<Vec<u8>> {
    let last = end.div_ceil(SECTOR as u64);
    let bytes = ((last - first) * SECTOR as u64) as usize;
    let mut v = Vec::new();
    v.try_reserve_exact(bytes).map_err(|_| Errno::ENOMEM)?;
    v.resize(bytes, 0);
    Ok(v)
}
