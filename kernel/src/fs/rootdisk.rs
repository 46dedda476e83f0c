//! Root on a disk: `root=/dev/vdX` on the kernel command line mounts the
//! ext4 file system on that disk as / before init runs (`ro` mounts it
//! read-only). The tmpfs the initramfs was unpacked into stays under it:
//! its /dev (the device nodes the kernel makes) and /proc (procfs) show
//! through the disk's directories of those names, as devtmpfs and proc
//! mounted over them would on Linux; the rest of / is the disk's.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use vfs::ROOT_INO;

use super::mount::{self, Mount, MS_RDONLY};

/// The first components of absolute paths that stay in the tmpfs.
const SHOWN: [&[u8]; 2] = [b"dev", b"proc"];

/// Whether / is on a disk: every absolute walk asks, and a tmpfs root
/// then costs it no look at the mount table.
static MOUNTED: AtomicBool = AtomicBool::new(false);

/// Mounts the disk `root=` names as / (None: no `root=` given).
pub fn mount_from_cmdline(cmd: &str) -> Option<KResult<()>> {
    let src = crate::cmdline::get(cmd, "root")?;
    let flags = if crate::cmdline::get(cmd, "ro").is_some() {
        MS_RDONLY
    } else {
        0
    };
    Some(mount_root(src, flags))
}

fn mount_root(src: &str, flags: u64) -> KResult<()> {
    let name = src.strip_prefix("/dev/").ok_or(Errno::ENODEV)?;
    let disk = crate::block::disks()
        .into_iter()
        .find(|d| d.name == name)
        .ok_or(Errno::ENODEV)?;
    mount::mount(
        disk,
        src.as_bytes().into(),
        ROOT_INO,
        b"/".as_slice().into(),
        flags,
    )?;
    MOUNTED.store(true, Ordering::Release);
    Ok(())
}

/// The root's file system when / is on a disk.
pub fn root() -> Option<Arc<Mount>> {
    if !MOUNTED.load(Ordering::Acquire) {
        return None;
    }
    mount::on(ROOT_INO)
}

/// Whether `name`, a component of the disk root's root directory, is one
/// of the tmpfs directories shown through it.
pub fn shown(name: &[u8]) -> bool {
    SHOWN.contains(&name)
}

/// The disk root an absolute `path` goes into (None: / is the tmpfs, or
/// the path stays in it).
pub fn covering(path: &[u8]) -> Option<Arc<Mount>> {
    if !MOUNTED.load(Ordering::Acquire) {
        return None;
    }
    let first = path.split(|&b| b == b'/').find(|c| !c.is_empty());
    if first.is_some_and(shown) {
        return None;
    }
    root()
}
