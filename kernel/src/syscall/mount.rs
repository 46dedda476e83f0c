//! mount(2) and umount2(2): ext2/3/4 file systems on disks, mounted on
//! tmpfs directories (`fs::mount`). Everything else a mount can do
//! (bind, move, remount, new tmpfs or proc instances) is not there yet.

use abi::{Errno, KResult};
use vfs::FileType;

use super::fs::{read_path, resolve, Node, AT_FDCWD};
use crate::fs::{self as kfs, mount};
use crate::uaccess;

const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
/// Propagation changes (MS_SHARED, MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE).
const MS_PROPAGATION: u64 = (1 << 20) | (1 << 18) | (1 << 19) | (1 << 17);
/// umount2 flags Linux knows: MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW.
const UMOUNT_FLAGS: u64 = 1 | 2 | 4 | 8;
const UMOUNT_NOFOLLOW: u64 = 8;

/// mount(2): `fstype` ext2, ext3 or ext4 from a block special file onto a
/// tmpfs directory (MS_RDONLY honoured; the other per-mount flags such as
/// nosuid or noatime are accepted and not enforced; `data` options
/// ignored). ENODEV for other types, ENOTBLK when the source is not a
/// disk, ENOSYS for remount, bind, move and propagation changes.
pub fn mount(source: u64, target: u64, fstype: u64, flags: u64) -> KResult<u64> {
    // CAP_SYS_ADMIN.
    if !crate::proc::sched::current().cred().privileged() {
        return Err(Errno::EPERM);
    }
    if flags & (MS_REMOUNT | MS_BIND | MS_MOVE | MS_PROPAGATION) != 0 {
        return Err(Errno::ENOSYS);
    }
    let fstype = uaccess::read_cstr(fstype, 64)?;
    if !matches!(&fstype[..], b"ext4" | b"ext3" | b"ext2") {
        return Err(Errno::ENODEV);
    }
    let src = read_path(source)?;
    let disk = match resolve(AT_FDCWD, &src, true)? {
        Node::Ino(i) => {
            let st = kfs::with(|fs| fs.stat(i))?;
            if FileType::from_mode(st.mode) != Some(FileType::BlockDevice) {
                return Err(Errno::ENOTBLK);
            }
            crate::block::by_rdev(st.rdev as u32)?
        }
        _ => return Err(Errno::ENOTBLK),
    };
    let tgt = read_path(target)?;
    let at = match resolve(AT_FDCWD, &tgt, true)? {
        Node::Ino(i) => i,
        // On a directory of another disk, or in /proc: mounts nest only
        // in the tmpfs.
        Node::Ext(..) => return Err(Errno::ENOSYS),
        _ => return Err(Errno::EINVAL),
    };
    if at == vfs::ROOT_INO {
        // Root on disk (root=/dev/vda) is not there yet.
        return Err(Errno::EBUSY);
    }
    if kfs::with(|fs| fs.file_type(at))? != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let path = kfs::with(|fs| fs.path_of(at))?;
    mount::mount(disk, src, at, path, flags)?;
    Ok(0)
}

/// umount2(2): the mount whose root `target` names (EINVAL for anything
/// else, EBUSY while a file of it is open). MNT_FORCE and MNT_DETACH are
/// treated as a plain unmount (which fails while busy).
pub fn umount2(target: u64, flags: u64) -> KResult<u64> {
    if !crate::proc::sched::current().cred().privileged() {
        return Err(Errno::EPERM);
    }
    if flags & !UMOUNT_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(target)?;
    match resolve(AT_FDCWD, &p, flags & UMOUNT_NOFOLLOW == 0)? {
        // The root on a disk stays (Linux: EBUSY).
        Node::Ext(m, i) if m.at == vfs::ROOT_INO && i == m.fs.root() => Err(Errno::EBUSY),
        Node::Ext(m, i) if i == m.fs.root() => {
            let at = m.at;
            drop(m);
            mount::umount(at)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
