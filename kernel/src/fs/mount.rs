//! The mount table: ext4 file systems on disks, each mounted on a
//! directory of the tmpfs root (mount(2), umount2(2)); /proc/mounts.
//!
//! The tmpfs walk stops at a mount point (`Tmpfs::walk` with the mount
//! points) and hands the rest of the path to the mounted file system,
//! exactly as it does for /proc. Mounts nest only in the tmpfs: a file
//! system cannot be mounted on a directory of another disk.

use abi::{Errno, KResult};
use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::Mutex;
use vfs::Ino;

use super::ext4::Ext4Mount;

/// MS_RDONLY.
pub const MS_RDONLY: u64 = 1;

/// One mounted file system.
pub struct Mount {
    /// The tmpfs directory it covers.
    pub at: Ino,
    /// That directory's absolute path (what /proc/mounts shows).
    pub target: Vec<u8>,
    /// What was mounted ("/dev/vda").
    pub source: Vec<u8>,
    pub fs: Ext4Mount,
}

impl Mount {
    /// The absolute path of its directory `n` (ENOENT once removed).
    pub fn path_of(&self, n: u32) -> KResult<Vec<u8>> {
        let inner = self.fs.dir_path(n)?;
        if inner.is_empty() {
            return Ok(self.target.clone());
        }
        let mut p = self.target.clone();
        if p.last() == Some(&b'/') {
            p.pop();
        }
        p.extend_from_slice(&inner);
        Ok(p)
    }
}

static MOUNTS: Mutex<Vec<Arc<Mount>>> = Mutex::new(Vec::new());

/// The tmpfs directories file systems are mounted on.
pub fn points() -> Vec<Ino> {
    MOUNTS.lock().iter().map(|m| m.at).collect()
}

/// The file system mounted on tmpfs directory `at`.
pub fn on(at: Ino) -> Option<Arc<Mount>> {
    MOUNTS.lock().iter().find(|m| m.at == at).cloned()
}

/// Mounts the ext4 file system on `disk` over tmpfs directory `at`
/// (EBUSY when something is mounted there or the disk already is).
pub fn mount(
    disk: Arc<crate::block::Disk>,
    source: Vec<u8>,
    at: Ino,
    target: Vec<u8>,
    flags: u64,
) -> KResult<()> {
    {
        let table = MOUNTS.lock();
        if table.iter().any(|m| m.at == at || m.fs.dev == disk.rdev) {
            return Err(Errno::EBUSY);
        }
    }
    let name = disk.name.clone();
    let fs = Ext4Mount::mount(disk, flags & MS_RDONLY != 0)?;
    let mut table = MOUNTS.lock();
    if table.iter().any(|m| m.at == at || m.fs.dev == fs.dev) {
        let _ = fs.unmount();
        return Err(Errno::EBUSY);
    }
    crate::klog!(
        "mount: ext4 on {name} at {} ({})",
        String::from_utf8_lossy(&target),
        if fs.readonly { "ro" } else { "rw" }
    );
    table.push(Arc::new(Mount {
        at,
        target,
        source,
        fs,
    }));
    Ok(())
}

/// Unmounts the file system on `at`: EBUSY while a file of it is open
/// (an open file holds its mount), EINVAL when nothing is mounted there.
/// A file system that cannot be written back cleanly (damaged, or its
/// disk failing) is unmounted anyway, as Linux does: the error is logged.
pub fn umount(at: Ino) -> KResult<()> {
    let mut table = MOUNTS.lock();
    let i = table.iter().position(|m| m.at == at).ok_or(Errno::EINVAL)?;
    if Arc::strong_count(&table[i]) > 1 {
        return Err(Errno::EBUSY);
    }
    let m = table.remove(i);
    let target = String::from_utf8_lossy(&m.target);
    match m.fs.unmount() {
        Ok(()) => crate::klog!("umount: {target}"),
        Err(e) => crate::klog!("umount: {target}: not written back cleanly ({e:?})"),
    }
    Ok(())
}

/// Writes back every mounted file system's state and flushes the disks
/// (sync(2)).
pub fn sync_all() {
    let mounts = MOUNTS.lock().clone();
    for m in mounts {
        let _ = m.fs.sync();
    }
    crate::block::sync_all();
}

/// The periodic write-back of every mount (`Ext4Mount::periodic`). Each
/// mount is held only while its turn lasts: umount is EBUSY while it is.
/// A busy mount is tried again shortly (`ext4_pages::writeback_retry`).
pub fn writeback_all(now: u64) {
    let mounts: Vec<Weak<Mount>> = MOUNTS.lock().iter().map(Arc::downgrade).collect();
    let mut busy = false;
    for w in mounts {
        if let Some(m) = w.upgrade() {
            busy |= !m.fs.periodic();
        }
    }
    if busy {
        super::ext4_pages::writeback_retry(now);
    }
}

/// Writes every mounted file system home and leaves it clean, as umount
/// does, for a machine that stops now (reboot(2)): what is open stays
/// open, and nothing must use the file systems after this.
pub fn shutdown_all() {
    let mounts = MOUNTS.lock().clone();
    for m in mounts {
        let target = String::from_utf8_lossy(&m.target);
        match m.fs.unmount() {
            Ok(()) => crate::klog!("shutdown: {target} written back"),
            Err(e) => crate::klog!("shutdown: {target}: not written back cleanly ({e:?})"),
        }
    }
    crate::block::sync_all();
}

/// /proc/mounts (and /proc/PID/mounts): Linux's format, the tmpfs root
/// and /proc first.
pub fn proc_mounts() -> String {
    let mut s = String::from("rootfs / tmpfs rw 0 0\nproc /proc proc rw,nosuid,nodev,noexec 0 0\n");
    for m in MOUNTS.lock().iter() {
        s += &format!(
            "{} {} ext4 {},relatime 0 0\n",
            String::from_utf8_lossy(&m.source),
            escape(&m.target),
            if m.fs.readonly { "ro" } else { "rw" }
        );
    }
    s
}

/// /proc/filesystems: what mount(2) knows (busybox mount without -t
/// tries the ones not marked nodev).
pub fn proc_filesystems() -> String {
    String::from("nodev\ttmpfs\nnodev\tproc\n\text4\n\text3\n\text2\n")
}

/// Spaces, tabs, newlines and backslashes in a mount path as octal
/// escapes, as /proc/mounts writes them.
fn escape(p: &[u8]) -> String {
    let mut s = String::new();
    for &b in p {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => s += &format!("\\{b:03o}"),
            _ => s.push(b as char),
        }
    }
    s
}
