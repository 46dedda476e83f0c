//! The block-device ioctls programs use to size and describe a disk
//! (mke2fs, blockdev, dd's callers): Linux's numbers and argument types.

use abi::{Errno, KResult};
use linux_raw_sys::ioctl as io;

use super::{Disk, SECTOR};
use crate::uaccess;

/// ioctl(2) on an open disk; ENOTTY for requests a disk does not know.
pub fn ioctl(d: &Disk, cmd: u64, arg: u64) -> KResult<u64> {
    let Ok(cmd) = u32::try_from(cmd) else {
        return Err(Errno::ENOTTY);
    };
    match cmd {
        // u64 bytes.
        io::BLKGETSIZE64 => uaccess::write_u64(arg, d.size())?,
        // unsigned long 512-byte sectors.
        io::BLKGETSIZE => uaccess::write_u64(arg, d.size() / 512)?,
        // int logical and physical sector sizes.
        io::BLKSSZGET | io::BLKPBSZGET => uaccess::write_u32(arg, SECTOR as u32)?,
        // int soft block size (Linux's default for a whole disk).
        io::BLKBSZGET => uaccess::write_u32(arg, 4096)?,
        io::BLKROGET => uaccess::write_u32(arg, d.readonly() as u32)?,
        // No buffer cache to drop: writes are already on the device; what
        // remains is the device's own cache.
        io::BLKFLSBUF => d.flush(super::Wait::Sleep)?,
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}
