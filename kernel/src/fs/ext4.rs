//! An ext4 file system on a disk, through the `rsext4` crate (no_std,
//! journalled, inode-addressed): this file adapts it to the kernel — the
//! disk as its block device, errors as errno values, path walks inside
//! the file system, `struct stat` and directory listings.
//!
//! A mounted file system is one [`Ext4Mount`]: the crate's state behind a
//! lock (every operation holds it, and the disk requests it makes are
//! polled, not slept on: see `block`). Files are named by inode number.

use abi::{Errno, KResult};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;
/// A position in a directory (getdents resumes there).
pub use rsext4::DirectoryCursor as DirCursor;
/// A directory entry as getdents takes it: inode, d_type, name, and the
/// cursor after it.
pub type DirEntry = (u64, u8, Vec<u8>, DirCursor);
use rsext4::{
    BlockIo, DeviceCapabilities, DeviceGeometry, DirectoryCursor, DirectoryEntryType, Ext4,
    Ext4Error, Ext4ErrorKind, Ext4Result, Ext4Timestamp, FileName, FilePermissions, InodeInfo,
    InodeMetadataUpdate, InodeNumber, MountOptions, MountServices, MountedServices,
    MutationContext, NoopObserver, RenameOptions, SectorId, UnlinkOutcome,
};
use spin::Mutex;
use vfs::{FileType, Stat, Timespec};

use crate::block::{BufferCache, Disk, Wait, SECTOR};

/// `f_type` of an ext2/3/4 file system (EXT4_SUPER_MAGIC).
pub const EXT4_SUPER_MAGIC: u64 = 0xef53;
/// Symlinks followed in one walk (Linux's limit).
const MAX_SYMLINKS: u32 = 40;
/// Entries of one directory listed at once: bounds the heap a listing
/// takes (larger directories: ENOMEM, not an exhausted heap).
const MAX_DIR_ENTRIES: usize = 1 << 16;
/// Deepest directory `dir_path` names (a path of PATH_MAX bytes has no
/// more components).
const MAX_DEPTH: usize = 2048;

/// The disk as rsext4's block device (512-byte sectors), its small
/// blocks kept and its writes sent together (`block::BufferCache`: the
/// crate flushes before it counts on anything being on the disk). Its
/// requests poll the device: they are made under the file system's spin
/// lock.
struct DiskIo(BufferCache);

fn io_err(_: Errno) -> Ext4Error {
    Ext4Error::new(Ext4ErrorKind::Io)
}

impl BlockIo for DiskIo {
    fn write(&mut self, buffer: &[u8], sector: SectorId, _count: u32) -> Ext4Result<()> {
        self.0
            .write(sector.raw(), buffer, Wait::Poll)
            .map_err(io_err)
    }

    fn read(&mut self, buffer: &mut [u8], sector: SectorId, _count: u32) -> Ext4Result<()> {
        self.0
            .read(sector.raw(), buffer, Wait::Poll)
            .map_err(io_err)
    }

    fn geometry(&self) -> DeviceGeometry {
        DeviceGeometry::new(SECTOR as u32, self.0.disk().size() / SECTOR as u64)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        DeviceCapabilities {
            read_only: self.0.disk().readonly(),
            flush: true,
            ..DeviceCapabilities::default()
        }
    }

    fn flush(&mut self) -> Ext4Result<()> {
        self.0.flush(Wait::Poll).map_err(io_err)
    }
}

/// Timestamps for the file system: the kernel's clock (seconds since
/// boot until there is an RTC, as tmpfs).
struct Clock;

impl rsext4::Clock for Clock {
    fn now(&self) -> Ext4Result<Ext4Timestamp> {
        let t = super::now();
        Ok(Ext4Timestamp::new(t.sec, t.nsec))
    }
}

type Fs = Ext4<DiskIo, MountedServices<(), NoopObserver, ()>>;

/// rsext4's error kinds as errno values. A damaged file system is
/// EUCLEAN (Linux's EFSCORRUPTED), as ext4 reports it.
pub fn errno(e: Ext4Error) -> Errno {
    use Ext4ErrorKind as K;
    match e.kind() {
        K::Io | K::Timeout => Errno::EIO,
        K::Corrupted | K::ChecksumMismatch | K::BadSuperblock => Errno::EUCLEAN,
        K::InvalidMagic | K::UnsupportedFeature | K::InvalidInput => Errno::EINVAL,
        K::UnsupportedCapability | K::Unsupported => Errno::EOPNOTSUPP,
        K::ReadOnly | K::JournalAborted => Errno::EROFS,
        K::NoSpace => Errno::ENOSPC,
        K::NoMemory => Errno::ENOMEM,
        K::QuotaExceeded => Errno::EDQUOT,
        K::TooManyLinks => Errno::EMLINK,
        K::PermissionDenied => Errno::EPERM,
        K::NotFound => Errno::ENOENT,
        K::AlreadyExists => Errno::EEXIST,
        K::NotDirectory => Errno::ENOTDIR,
        K::IsDirectory => Errno::EISDIR,
        K::NotEmpty => Errno::ENOTEMPTY,
        K::Busy => Errno::EBUSY,
        K::BadFileDescriptor => Errno::EBADF,
        K::Overflow => Errno::EOVERFLOW,
        K::FileTooLarge => Errno::EFBIG,
    }
}

fn ino(n: u32) -> KResult<InodeNumber> {
    InodeNumber::new(n).map_err(|_| Errno::ENOENT)
}

fn name(n: &[u8]) -> KResult<FileName<'_>> {
    FileName::new(n).map_err(|_| Errno::ENAMETOOLONG)
}

/// Where a walk inside the file system ended.
pub enum Walk {
    /// An inode of this file system.
    Ino(u32),
    /// The path leaves it (`..` above its root, or an absolute symlink):
    /// resolve this absolute path from the global root instead.
    Leave(Vec<u8>),
}

/// A mounted ext4 file system.
pub struct Ext4Mount {
    /// Boxed: the crate's file system is kilobytes, and a mount moved it
    /// through frames of a 32 KiB kernel stack the crate's own mount
    /// path already fills most of (a kernel stack overflow at mount).
    fs: Mutex<Box<Fs>>,
    /// Open files per inode, and the unlinked inodes whose last close
    /// frees them (an unlinked open file lives until then, as on Linux;
    /// the crate keeps them on the orphan list meanwhile).
    opens: Mutex<Opens>,
    root: u32,
    /// `st_dev` of its files: the disk's device number.
    pub dev: u32,
    pub readonly: bool,
    /// Its files' pages: read(2)'s and mmap's (`ext4_pages`).
    pub pages: super::ext4_pages::PageCache,
    /// Inodes whose size or block mapping may have changed since the
    /// last journal commit (Linux's I_DIRTY_DATASYNC): their fdatasync
    /// commits. Changed and cleared only under `fs`'s lock, so a commit
    /// never clears a mark set after it.
    remapped: Mutex<BTreeSet<u32>>,
}

/// The crate's mount, its result moved to the heap at once, in a frame
/// of its own that the caller's does not hold.
#[inline(never)]
fn mount_boxed(
    io: DiskIo,
    services: MountServices<Clock, (), NoopObserver>,
    options: MountOptions,
) -> KResult<Box<Fs>> {
    Ext4::mount(io, services, options)
        .map(Box::new)
        .map_err(errno)
}

impl Ext4Mount {
    /// Mounts the file system on `disk` (replaying its journal if it needs
    /// it). EINVAL when it is not ext2/3/4 or uses a feature the crate
    /// does not support, EUCLEAN when it is damaged.
    pub fn mount(disk: Arc<Disk>, readonly: bool) -> KResult<Ext4Mount> {
        let dev = disk.rdev;
        let readonly = readonly || disk.readonly();
        let options = MountOptions {
            readonly,
            replay_journal: true,
            block_validity: true,
        };
        let services = MountServices::new(Clock, (), NoopObserver);
        let fs = mount_boxed(DiskIo(BufferCache::new(disk)), services, options)?;
        let root = fs.root_inode().raw();
        Ok(Ext4Mount {
            fs: Mutex::new(fs),
            opens: Mutex::new(Opens::default()),
            root,
            dev,
            readonly,
            pages: Default::default(),
            remapped: Mutex::new(BTreeSet::new()),
        })
    }

    /// The root directory's inode.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// Writes everything back and releases the file system (umount).
    /// A failed write-back does not keep the rest from going home: its
    /// error is reported after.
    pub fn unmount(&self) -> KResult<()> {
        let wb = self.pages.writeback(self, None);
        let done = self.fs.lock().unmount().map_err(errno);
        wb.and(done)
    }

    /// Commits the journal and writes cached metadata to the disk, then
    /// flushes it (sync, syncfs).
    pub fn sync(&self) -> KResult<()> {
        if self.readonly {
            return Ok(());
        }
        // Dirty and mapped pages first, so the commit carries them; one
        // that failed to go keeps the commit from nothing else.
        let wb = self.pages.writeback(self, None);
        wb.and(self.commit(&mut self.fs.lock()))
    }

    /// fsync/fdatasync of inode `n`: its dirty and mapped pages go to
    /// the crate, then the journal is committed and the disk flushed.
    ///
    /// fdatasync (`datasync`) of a regular file whose size and block
    /// mapping the last commit already holds (its writes since were
    /// overwrites in place: SQLite's database and journal header) only
    /// writes the data and flushes the disk, as Linux's ext4_sync_file
    /// does: the times its writes changed wait for the next commit, and
    /// a commit costs a second flush and the journal's blocks.
    pub fn fsync(&self, n: u32, datasync: bool) -> KResult<()> {
        if self.readonly {
            return Ok(());
        }
        let wb = self.pages.writeback(self, Some(n));
        let mut fs = self.fs.lock();
        let regular = |fs: &mut Fs| {
            let mode = ino(n)
                .and_then(|i| fs.inode(i).map_err(errno))
                .map(|i| i.mode);
            mode.is_ok_and(|m| FileType::from_mode(u32::from(m)) == Some(FileType::Regular))
        };
        if datasync && !self.remapped.lock().contains(&n) && regular(&mut fs) {
            return wb.and(fs.sync_data().map_err(errno));
        }
        wb.and(self.commit(&mut fs))
    }

    /// Commits the journal and flushes the disk, under `fs`'s lock:
    /// afterwards no size or mapping change is pending.
    fn commit(&self, fs: &mut Fs) -> KResult<()> {
        fs.sync().map_err(errno)?;
        self.remapped.lock().clear();
        Ok(())
    }

    /// The periodic write-back (every 5 s, `trap::deferred_work`): dirty
    /// pages to the crate and a commit, so what was written reaches the
    /// disk without an fsync, as Linux's flusher and jbd2's commit
    /// timer do. Errors wait for the next fsync/sync. False when the
    /// page cache or the file system was busy (never waited for from the
    /// deferred work): the caller tries again soon.
    pub fn periodic(&self) -> bool {
        if self.readonly {
            return true;
        }
        if !self.pages.writeback_background(self) {
            return false;
        }
        let Some(mut fs) = self.fs.try_lock() else {
            return false;
        };
        // A commit with nothing new to commit costs no disk request.
        let _ = self.commit(&mut fs);
        true
    }

    /// Bytes free for new blocks.
    pub(super) fn free_bytes(&self) -> u64 {
        let s = self.fs.lock().statfs();
        s.free_blocks.saturating_mul(s.block_size)
    }

    /// Applies `update` to inode `n`'s attributes.
    fn update_metadata(&self, n: u32, update: InodeMetadataUpdate) -> KResult<()> {
        self.fs
            .lock()
            .update_inode_metadata(ino(n)?, update)
            .map(|_| ())
            .map_err(errno)
    }

    /// Sets inode `n`'s mtime (the time of a cached write, once written
    /// back), under the page cache's lock.
    pub(super) fn set_mtime(&self, n: u32, t: Timespec) -> KResult<()> {
        let update = InodeMetadataUpdate {
            mtime: Some(Ext4Timestamp::new(t.sec, t.nsec)),
            ..InodeMetadataUpdate::default()
        };
        self.update_metadata(n, update)
    }

    fn info(&self, n: u32) -> KResult<InodeInfo> {
        self.fs.lock().inode(ino(n)?).map_err(errno)
    }

    /// stat(2) of inode `n`. A cached write the crate does not have yet
    /// shows in mtime and ctime, and in the size when it extended the
    /// file (`st_blocks` is the crate's until the write-back).
    pub fn stat(&self, n: u32) -> KResult<Stat> {
        let (time, size) = self.pages.pending(n);
        let pending = time.map_or(0, |t| t.sec);
        let i = self.info(n)?;
        let ts = |s: u32| Timespec {
            sec: i64::from(s).max(pending),
            nsec: 0,
        };
        Ok(Stat {
            dev: u64::from(self.dev),
            ino: u64::from(n),
            nlink: u64::from(i.links),
            mode: u32::from(i.mode),
            uid: i.uid,
            gid: i.gid,
            rdev: 0,
            size: size.map_or(i.size, |s| s.max(i.size)) as i64,
            blksize: 4096,
            blocks: i.blocks as i64,
            atime: Timespec {
                sec: i64::from(i.atime),
                nsec: 0,
            },
            mtime: ts(i.mtime),
            ctime: ts(i.ctime),
        })
    }

    /// The file type of inode `n`.
    pub fn file_type(&self, n: u32) -> KResult<FileType> {
        FileType::from_mode(u32::from(self.info(n)?.mode)).ok_or(Errno::EUCLEAN)
    }

    /// Reads file data at `off`; 0 at or past the end (cached pages
    /// included: what a mapping stored is there); EISDIR for a directory.
    pub fn read(&self, n: u32, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.pages.read(self, n, off, buf)
    }

    /// The size of inode `n`.
    pub(super) fn size(&self, n: u32) -> KResult<u64> {
        Ok(self.info(n)?.size)
    }

    /// The size of inode `n` for read(2): EISDIR for a directory (one
    /// inode lookup for both).
    pub(super) fn readable_size(&self, n: u32) -> KResult<u64> {
        let i = self.info(n)?;
        if i.file_type() == DirectoryEntryType::Directory {
            return Err(Errno::EISDIR);
        }
        Ok(i.size)
    }

    /// Reads what the crate has, under the page cache's lock.
    pub(super) fn read_raw(&self, n: u32, off: u64, buf: &mut [u8]) -> KResult<usize> {
        self.fs.lock().read_inode(ino(n)?, off, buf).map_err(errno)
    }

    /// A symlink's target.
    pub fn readlink(&self, n: u32) -> KResult<Vec<u8>> {
        let i = self.info(n)?;
        if i.file_type() != DirectoryEntryType::Symlink {
            return Err(Errno::EINVAL);
        }
        let len = usize::try_from(i.size).map_err(|_| Errno::EUCLEAN)?;
        if len > 4096 {
            return Err(Errno::EUCLEAN);
        }
        let mut v = alloc::vec![0u8; len];
        // Not through the page cache: a symlink is never written or
        // mapped, and walks would fill the cache with them.
        let got = self.read_raw(n, 0, &mut v)?;
        v.truncate(got);
        Ok(v)
    }

    /// Up to `max` entries of directory `n` from `cursor`: (inode, d_type,
    /// name, the cursor after it); none at the end. The crate's cursor is
    /// a position that stays valid while entries come and go (a byte
    /// offset in a linear directory, the name hash in an indexed one), so
    /// getdents resumes from it and an entry removed meanwhile shifts
    /// nothing (`rm -r` of a large directory left files when it resumed
    /// by index).
    pub fn read_dir(&self, n: u32, cursor: DirCursor, max: usize) -> KResult<Vec<DirEntry>> {
        if cursor == DirCursor::End {
            return Ok(Vec::new());
        }
        let batch = self
            .fs
            .lock()
            .read_directory(ino(n)?, cursor, max)
            .map_err(errno)?;
        Ok(batch
            .into_iter()
            .map(|e| {
                (
                    u64::from(e.inode.raw()),
                    d_type(e.file_type),
                    e.name,
                    e.next_cursor,
                )
            })
            .collect())
    }

    /// The entries of directory `n` (inode, d_type, name), `.` and `..`
    /// included as the disk has them.
    pub fn list(&self, n: u32) -> KResult<Vec<(u64, u8, Vec<u8>)>> {
        let mut fs = self.fs.lock();
        let dir = ino(n)?;
        let mut out = Vec::new();
        let mut cursor = DirectoryCursor::Start;
        loop {
            let batch = fs.read_directory(dir, cursor, 128).map_err(errno)?;
            let Some(last) = batch.last() else {
                break;
            };
            cursor = last.next_cursor;
            for e in batch {
                if out.len() >= MAX_DIR_ENTRIES {
                    return Err(Errno::ENOMEM);
                }
                out.push((u64::from(e.inode.raw()), d_type(e.file_type), e.name));
            }
            if matches!(cursor, DirectoryCursor::End) {
                break;
            }
        }
        Ok(out)
    }

    /// The path of directory `n` from this file system's root ("" for
    /// the root, else "/a/b"): up by `..`, each name found among its
    /// parent's entries. ENOENT when it was removed (getcwd(2)'s answer
    /// for a removed cwd).
    pub fn dir_path(&self, mut n: u32) -> KResult<Vec<u8>> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        while n != self.root {
            if self.info(n)?.links == 0 {
                return Err(Errno::ENOENT);
            }
            // A damaged directory tree may loop.
            if names.len() > MAX_DEPTH {
                return Err(Errno::EUCLEAN);
            }
            let parent = self
                .fs
                .lock()
                .lookup_child(ino(n)?, name(b"..")?)
                .map_err(errno)?
                .ok_or(Errno::ENOENT)?
                .number
                .raw();
            let (_, _, found) = self
                .list(parent)?
                .into_iter()
                .find(|(i, _, nm)| *i == u64::from(n) && nm != b"." && nm != b"..")
                .ok_or(Errno::ENOENT)?;
            names.push(found);
            n = parent;
        }
        let mut p = Vec::new();
        for c in names.iter().rev() {
            p.push(b'/');
            p.extend_from_slice(c);
        }
        Ok(p)
    }

    /// statfs(2) figures.
    pub fn statfs(&self) -> vfs::layout::StatfsInfo {
        let s = self.fs.lock().statfs();
        vfs::layout::StatfsInfo {
            magic: EXT4_SUPER_MAGIC,
            bsize: s.block_size,
            blocks: s.total_blocks,
            bfree: s.free_blocks,
            bavail: s.free_blocks,
            files: u64::from(s.total_inodes),
            ffree: u64::from(s.free_inodes),
            fsid: u64::from(self.dev),
            flags: if self.readonly { 1 } else { 0 },
        }
    }

    /// Resolves `path` (relative to directory `start`; an absolute path
    /// starts at this file system's root) the way path_resolution(7)
    /// does: symlinks before the last component always followed, the last
    /// one if `follow` or the path ends in a slash. `above` is the
    /// absolute path of the directory this file system is mounted on, for
    /// walks that leave it.
    pub fn walk(&self, start: u32, path: &[u8], follow: bool, above: &[u8]) -> KResult<Walk> {
        let mut cur = if path.first() == Some(&b'/') {
            self.root
        } else {
            start
        };
        let mut rest: Vec<u8> = path.to_vec();
        let mut pos = 0;
        let mut links = 0;
        loop {
            while pos < rest.len() && rest[pos] == b'/' {
                pos += 1;
            }
            if pos == rest.len() {
                return Ok(Walk::Ino(cur));
            }
            let end = rest[pos..]
                .iter()
                .position(|&c| c == b'/')
                .map_or(rest.len(), |i| pos + i);
            let comp = &rest[pos..end];
            let is_last = rest[end..].iter().all(|&c| c == b'/');
            let trailing_slash = is_last && end < rest.len();
            if self.file_type(cur)? != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            if cur == self.root && above == b"/" {
                // The root of / (root on disk): `..` stays there, and the
                // tmpfs directories shown through it are left for.
                if comp == b".." {
                    pos = end;
                    continue;
                }
                if super::rootdisk::shown(comp) {
                    let mut p = b"/".to_vec();
                    p.extend_from_slice(comp);
                    p.extend_from_slice(&rest[end..]);
                    return Ok(Walk::Leave(p));
                }
            }
            if comp == b".." && cur == self.root {
                // Above the root: the parent of the directory this is
                // mounted on (by name: going through the mount point
                // again would enter the mount).
                let (parent, _) = vfs::path::split_last(above);
                let mut p = if parent.is_empty() {
                    b"/".to_vec()
                } else {
                    parent.to_vec()
                };
                p.extend_from_slice(&rest[end..]);
                return Ok(Walk::Leave(p));
            }
            if comp.len() > 255 {
                return Err(Errno::ENAMETOOLONG);
            }
            let child = if comp == b"." {
                cur
            } else {
                let found = self
                    .fs
                    .lock()
                    .lookup_child(ino(cur)?, name(comp)?)
                    .map_err(errno)?;
                found.ok_or(Errno::ENOENT)?.number.raw()
            };
            let ft = self.file_type(child)?;
            if ft == FileType::Symlink && (!is_last || follow || trailing_slash) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = self.readlink(child)?;
                if target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                let mut spliced = target;
                spliced.extend_from_slice(&rest[end..]);
                if spliced[0] == b'/' {
                    // Absolute targets name the global tree.
                    return Ok(Walk::Leave(spliced));
                }
                rest = spliced;
                pos = 0;
                continue;
            }
            if is_last {
                if trailing_slash && ft != FileType::Directory {
                    return Err(Errno::ENOTDIR);
                }
                return Ok(Walk::Ino(child));
            }
            cur = child;
            pos = end;
        }
    }
}

#[derive(Default)]
struct Opens {
    count: BTreeMap<u32, u32>,
    orphans: Vec<u32>,
}

/// The creator of new inodes: the caller's fsuid, fsgid and umask.
fn ctx() -> MutationContext {
    let me = crate::proc::sched::current();
    let umask = me.fs.lock().umask as u16;
    let c = me.cred();
    MutationContext::new(c.fsuid, c.fsgid, 0, umask)
}

fn perms(mode: u32) -> KResult<FilePermissions> {
    FilePermissions::new((mode & 0o7777) as u16).map_err(|_| Errno::EINVAL)
}

impl Ext4Mount {
    fn writable(&self) -> KResult<()> {
        if self.readonly {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// That directory `dir` may take new names: not removed (an rmdir'ed
    /// cwd lives on with no links until the cwd moves; Linux's ENOENT).
    fn may_add(&self, dir: u32) -> KResult<()> {
        self.writable()?;
        if self.info(dir)?.links == 0 {
            return Err(Errno::ENOENT);
        }
        Ok(())
    }

    /// An open file of inode `n` was made (it lives while one is open).
    pub fn opened(&self, n: u32) {
        *self.opens.lock().count.entry(n).or_insert(0) += 1;
    }

    /// An open file of inode `n` was closed: the last close of an unlinked
    /// inode frees it.
    pub fn closed(&self, n: u32) {
        let reap = {
            let mut o = self.opens.lock();
            let left = match o.count.get_mut(&n) {
                Some(c) => {
                    *c -= 1;
                    *c
                }
                None => return,
            };
            if left > 0 {
                return;
            }
            o.count.remove(&n);
            // Nothing maps it any more (a mapping holds an open file):
            // its mapped pages go home and stay cached. An error here has
            // no caller to reach (close does not report it, as Linux's
            // doesn't).
            let _ = self.pages.last_close(self, n);
            match o.orphans.iter().position(|&x| x == n) {
                Some(i) => {
                    o.orphans.swap_remove(i);
                    true
                }
                None => false,
            }
        };
        if reap {
            self.pages.forget(n);
            if let Ok(i) = ino(n) {
                let _ = self.fs.lock().reap_unlinked_inode(i);
            }
        }
    }

    /// After an unlink (or a rename over a file): frees the inode now if
    /// no link and no open file is left, else at its last close.
    fn after_unlink(&self, out: UnlinkOutcome) -> KResult<()> {
        if !out.requires_reap() {
            return Ok(());
        }
        let n = out.inode.raw();
        {
            let mut o = self.opens.lock();
            if o.count.contains_key(&n) {
                o.orphans.push(n);
                return Ok(());
            }
        }
        self.pages.forget(n);
        self.fs.lock().reap_unlinked_inode(out.inode).map_err(errno)
    }

    /// Creates a regular file `name` in directory `dir` (mode masked by
    /// the umask); returns its inode.
    pub fn create(&self, dir: u32, name_: &[u8], mode: u32) -> KResult<u32> {
        self.may_add(dir)?;
        let mut fs = self.fs.lock();
        let info = fs
            .create_regular_file(ctx(), ino(dir)?, name(name_)?, perms(mode)?)
            .map_err(errno)?;
        // A new file's fdatasync commits its inode (Linux: its datasync
        // transaction is the one that made it).
        self.remapped.lock().insert(info.number.raw());
        drop(fs);
        // The number may be a freed inode's: nothing of it may show.
        self.pages.forget(info.number.raw());
        Ok(info.number.raw())
    }

    /// mkdir.
    pub fn mkdir(&self, dir: u32, name_: &[u8], mode: u32) -> KResult<()> {
        self.may_add(dir)?;
        self.fs
            .lock()
            .create_directory(ctx(), ino(dir)?, name(name_)?, perms(mode)?)
            .map(|_| ())
            .map_err(errno)
    }

    /// symlink.
    pub fn symlink(&self, dir: u32, name_: &[u8], target: &[u8]) -> KResult<()> {
        self.may_add(dir)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        self.fs
            .lock()
            .create_symlink(ctx(), ino(dir)?, name(name_)?, target)
            .map(|_| ())
            .map_err(errno)
    }

    /// link: a new name for inode `target` (not a directory).
    pub fn link(&self, target: u32, dir: u32, name_: &[u8]) -> KResult<()> {
        self.may_add(dir)?;
        if self.file_type(target)? == FileType::Directory {
            return Err(Errno::EPERM);
        }
        self.fs
            .lock()
            .hard_link(ino(target)?, ino(dir)?, name(name_)?)
            .map(|_| ())
            .map_err(errno)
    }

    /// unlink (`rmdir` for an empty directory when `dir_too`).
    pub fn unlink(&self, dir: u32, name_: &[u8], rmdir: bool) -> KResult<()> {
        self.writable()?;
        let out = {
            let mut fs = self.fs.lock();
            let child = fs
                .lookup_child(ino(dir)?, name(name_)?)
                .map_err(errno)?
                .ok_or(Errno::ENOENT)?;
            let is_dir = child.file_type() == DirectoryEntryType::Directory;
            match (rmdir, is_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) => fs.remove_empty_directory(ino(dir)?, name(name_)?),
                (false, false) => fs.unlink(ino(dir)?, name(name_)?),
            }
            .map_err(errno)?
        };
        self.after_unlink(out)
    }

    /// rename within this file system (replacing the target).
    pub fn rename(&self, odir: u32, oname: &[u8], ndir: u32, nname: &[u8]) -> KResult<()> {
        self.may_add(ndir)?;
        let out = self
            .fs
            .lock()
            .rename(
                ino(odir)?,
                name(oname)?,
                ino(ndir)?,
                name(nname)?,
                RenameOptions::REPLACE,
            )
            .map_err(errno)?;
        match out.replaced {
            Some(r) => self.after_unlink(r),
            None => Ok(()),
        }
    }

    /// Writes file data at `off` (extending the file as needed): an
    /// overwrite or a small extension into its cached pages only, marked
    /// dirty, anything else through the crate (`ext4_pages`).
    pub fn write(&self, n: u32, off: u64, data: &[u8]) -> KResult<usize> {
        self.pages.write(self, n, off, data)
    }

    /// Writes to the crate, under the page cache's lock.
    pub(super) fn write_raw(&self, n: u32, off: u64, data: &[u8]) -> KResult<usize> {
        self.writable()?;
        if data.is_empty() {
            return Ok(0);
        }
        let i = ino(n)?;
        let mut fs = self.fs.lock();
        let r = fs.write_inode_in_place(i, off, data);
        // A failed write may have allocated part of its range.
        if r != Ok(true) {
            self.remapped.lock().insert(n);
        }
        r.map_err(errno)?;
        Ok(data.len())
    }

    /// Writes many non-overlapping `(offset, data)` runs of inode `n` to
    /// the crate in one call, under the page cache's lock: write-back of
    /// scattered pages pays the inode load, the extent-tree walk and the
    /// inode update once, not per page (PATCHES.md 5).
    pub(super) fn write_runs_raw(&self, n: u32, runs: &[(u64, &[u8])]) -> KResult<()> {
        self.writable()?;
        if runs.is_empty() {
            return Ok(());
        }
        let i = ino(n)?;
        let mut fs = self.fs.lock();
        let r = fs.write_inode_runs_in_place(i, runs);
        // A failed write may have allocated part of its range.
        if r != Ok(true) {
            self.remapped.lock().insert(n);
        }
        r.map(|_| ()).map_err(errno)
    }

    /// truncate/ftruncate/O_TRUNC.
    pub fn truncate(&self, n: u32, size: u64) -> KResult<()> {
        self.pages.truncate(self, n, size)
    }

    /// Truncates in the crate, under the page cache's lock.
    pub(super) fn truncate_raw(&self, n: u32, size: u64) -> KResult<()> {
        self.writable()?;
        let mut fs = self.fs.lock();
        self.remapped.lock().insert(n);
        fs.truncate_inode(ino(n)?, size).map_err(errno)
    }

    /// chmod: the permission bits.
    pub fn chmod(&self, n: u32, mode: u32) -> KResult<()> {
        self.writable()?;
        let update = InodeMetadataUpdate {
            permissions: Some(perms(mode)?),
            ..InodeMetadataUpdate::default()
        };
        self.update_metadata(n, update)
    }

    /// chown: owner and group (None: unchanged).
    pub fn chown(&self, n: u32, uid: Option<u32>, gid: Option<u32>) -> KResult<()> {
        self.writable()?;
        let cur = self.info(n)?;
        let update = InodeMetadataUpdate {
            owner: Some((uid.unwrap_or(cur.uid), gid.unwrap_or(cur.gid))),
            ..InodeMetadataUpdate::default()
        };
        self.update_metadata(n, update)
    }

    /// utimensat: access and modification times (None: unchanged).
    pub fn utimes(&self, n: u32, a: Option<Timespec>, m: Option<Timespec>) -> KResult<()> {
        self.writable()?;
        // Cached writes first: their write-back must not set the mtime
        // after this does.
        self.pages.writeback(self, Some(n))?;
        let t = |t: Timespec| Ext4Timestamp::new(t.sec, t.nsec);
        let update = InodeMetadataUpdate {
            atime: a.map(t),
            mtime: m.map(t),
            ..InodeMetadataUpdate::default()
        };
        self.update_metadata(n, update)
    }
}

fn d_type(t: DirectoryEntryType) -> u8 {
    match t {
        DirectoryEntryType::Unknown => 0,
        DirectoryEntryType::Fifo => 1,
        DirectoryEntryType::CharacterDevice => 2,
        DirectoryEntryType::Directory => 4,
        DirectoryEntryType::BlockDevice => 6,
        DirectoryEntryType::RegularFile => 8,
        DirectoryEntryType::Symlink => 10,
        DirectoryEntryType::Socket => 12,
    }
}
