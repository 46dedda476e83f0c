//! tmpfs: the in-memory file system that holds the root unpacked from the
//! initramfs (see tmpfs(5)). Inodes live in a table keyed by inode number;
//! numbers are never reused, so a stale number held by the kernel fails
//! with `ENOENT` instead of reaching another file.
//!
//! The file system has no clock and no notion of the calling process: the
//! kernel calls [`Tmpfs::set_time`] and [`Tmpfs::set_owner`] before an
//! operation, and those values stamp new inodes and changed timestamps.

mod attr;
mod data;
mod exchange;
mod fsck;
mod inode;
mod names;
mod open;
mod pages;
mod readdir;
mod rename;
mod walk;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use abi::{Errno, KResult};
use inode::{Body, Inode};

use crate::{FileType, Timespec};

pub use open::Opened;
pub use pages::{HeapPages, PageId, PageStore, PAGE_SIZE};
pub use readdir::DirEntry;
pub use walk::Walked;

/// An inode number, as `st_ino` reports it.
pub type Ino = u64;

/// The root directory's inode number (Linux tmpfs also starts at 1).
pub const ROOT_INO: Ino = 1;

/// The kernel's clock and the caller's fsuid/fsgid, as functions a
/// [`Tmpfs`] calls when it stamps a time or creates an inode.
#[derive(Clone, Copy)]
pub struct Sources {
    pub clock: fn() -> Timespec,
    pub owner: fn() -> (u32, u32),
}

/// Limits and identity of one tmpfs instance (the `size=`, `nr_inodes=`
/// mount options of tmpfs(5)).
#[derive(Clone, Copy, Debug)]
pub struct TmpfsConfig {
    /// Reported as `st_dev` (see [`crate::devnum::makedev`]).
    pub dev: u64,
    /// File data and long symlink targets may use at most this many bytes,
    /// counted in whole pages (rounded up, as Linux does); beyond it writes
    /// fail with `ENOSPC`.
    pub max_bytes: u64,
    /// At most this many inodes may exist, each hard link beyond an inode's
    /// first name counting as one more (Linux charges links the same way);
    /// beyond it creation fails with `ENOSPC`. This is what bounds the
    /// heap tmpfs uses: see [`MAX_HEAP_PER_INODE`].
    pub max_inodes: u64,
    /// Largest file size; writes and truncates beyond it fail with `EFBIG`.
    pub max_file_size: u64,
    /// Permission bits of the root directory.
    pub root_mode: u32,
}

impl Default for TmpfsConfig {
    fn default() -> Self {
        TmpfsConfig {
            dev: 0,
            max_bytes: u64::MAX,
            max_inodes: u64::MAX,
            // Linux's MAX_LFS_FILESIZE on 64-bit.
            max_file_size: i64::MAX as u64,
            root_mode: 0o755,
        }
    }
}

/// An upper bound on the kernel heap one inode slot costs (its inode, a
/// directory entry with a `NAME_MAX` name in both directory indexes, and
/// their share of map nodes), so `max_inodes * MAX_HEAP_PER_INODE` bounds
/// the heap tmpfs metadata can take. Checked by `tests/tmpfs_heap.rs`.
pub const MAX_HEAP_PER_INODE: u64 = 1536;

/// An upper bound on the heap the page index of a file costs per data page
/// (its share of a map node), so the index stays within
/// `max_bytes / PAGE_SIZE * MAX_HEAP_PER_PAGE`. Checked by
/// `tests/tmpfs_heap.rs`.
pub const MAX_HEAP_PER_PAGE: u64 = 64;

/// Space accounting, what statfs(2) reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of file data and long symlink targets held, in whole pages.
    pub bytes_used: u64,
    /// The configured capacity.
    pub bytes_max: u64,
    /// Inodes in existence, including unlinked ones still open, plus extra
    /// hard links.
    pub inodes_used: u64,
    /// The configured inode limit.
    pub inodes_max: u64,
}

/// An in-memory file system. See the module documentation.
pub struct Tmpfs {
    inodes: BTreeMap<Ino, Inode>,
    next_ino: Ino,
    config: TmpfsConfig,
    space: Space,
    /// Names beyond each non-directory's first: they take inode slots.
    extra_links: u64,
    now: Timespec,
    owner: (u32, u32),
    /// Where the time and the owner come from when set (the kernel): read
    /// only by the operations that stamp or create, not on every call.
    sources: Option<Sources>,
}

/// The page store and what is charged against `max_bytes`. Apart from the
/// inode table so that an operation can hold an inode and take pages.
pub(crate) struct Space {
    store: Box<dyn PageStore>,
    pages_used: u64,
    max_pages: u64,
}

impl Space {
    /// A zeroed page charged against the capacity: `ENOSPC` past the
    /// limit, `ENOMEM` when the store has no memory left.
    pub fn take(&mut self) -> KResult<PageId> {
        if self.pages_used >= self.max_pages {
            return Err(Errno::ENOSPC);
        }
        let p = self.store.alloc().ok_or(Errno::ENOMEM)?;
        self.pages_used += 1;
        Ok(p)
    }

    pub fn give_back(&mut self, page: PageId) {
        self.store.free(page);
        self.pages_used -= 1;
    }

    pub fn store(&mut self) -> &mut dyn PageStore {
        &mut *self.store
    }

    pub fn read(&self, page: PageId, offset: usize, out: &mut [u8]) {
        self.store.read(page, offset, out);
    }
}

impl Tmpfs {
    /// An empty file system whose root is owned by root and stamped `now`,
    /// with its pages on the heap.
    pub fn new(config: TmpfsConfig, now: Timespec) -> Tmpfs {
        Tmpfs::with_store(config, now, Box::new(HeapPages::default()))
    }

    /// [`Tmpfs::new`] keeping file data in pages from `store`.
    pub fn with_store(config: TmpfsConfig, now: Timespec, store: Box<dyn PageStore>) -> Tmpfs {
        let mut fs = Tmpfs {
            inodes: BTreeMap::new(),
            next_ino: ROOT_INO,
            config,
            space: Space {
                store,
                pages_used: 0,
                max_pages: config.max_bytes.div_ceil(PAGE_SIZE as u64),
            },
            extra_links: 0,
            now,
            owner: (0, 0),
            sources: None,
        };
        let mode = crate::lx::S_IFDIR | (config.root_mode & 0o7777);
        let body = Body::Dir(inode::Dir::new(ROOT_INO));
        // The root is not counted against max_inodes: a file system with no
        // root is useless whatever the limit says.
        let root = fs.make_inode(mode, body);
        fs.inodes.insert(ROOT_INO, root);
        fs.next_ino = ROOT_INO + 1;
        if let Some(r) = fs.inodes.get_mut(&ROOT_INO) {
            r.nlink = 2;
        }
        fs
    }

    /// The configuration this instance was created with.
    pub fn config(&self) -> &TmpfsConfig {
        &self.config
    }

    /// Changes the capacity limits (remount with new `size=`). Existing data
    /// above a lowered limit stays; only growth is refused.
    pub fn set_limits(&mut self, max_bytes: u64, max_inodes: u64) {
        self.config.max_bytes = max_bytes;
        self.config.max_inodes = max_inodes;
        self.space.max_pages = max_bytes.div_ceil(PAGE_SIZE as u64);
    }

    /// Takes the time and the creator's ids from `sources` from now on,
    /// each read when an operation needs it ([`Tmpfs::set_time`] and
    /// [`Tmpfs::set_owner`] no longer apply): a lookup or an open then
    /// reads no clock and no credentials.
    pub fn set_sources(&mut self, sources: Sources) {
        self.sources = Some(sources);
    }

    /// Sets the time stamped on inodes by the following operations.
    pub fn set_time(&mut self, now: Timespec) {
        self.now = now;
    }

    /// Sets the owner (the caller's fsuid/fsgid) of inodes created by the
    /// following operations.
    pub fn set_owner(&mut self, uid: u32, gid: u32) {
        self.owner = (uid, gid);
    }

    /// Space and inode usage for statfs(2).
    pub fn usage(&self) -> Usage {
        Usage {
            bytes_used: self.space.pages_used * PAGE_SIZE as u64,
            bytes_max: self.config.max_bytes,
            inodes_used: self.inodes_used(),
            inodes_max: self.config.max_inodes,
        }
    }

    /// Whether `ino` exists (linked, or unlinked but still open).
    pub fn exists(&self, ino: Ino) -> bool {
        self.inodes.contains_key(&ino)
    }

    /// The type of `ino`.
    pub fn file_type(&self, ino: Ino) -> KResult<FileType> {
        Ok(self.inode(ino)?.file_type())
    }

    /// Records that the kernel holds `ino` open (a file description, a cwd,
    /// a mapping), so it survives losing its last name.
    pub fn retain(&mut self, ino: Ino) -> KResult<()> {
        let i = self.inode_mut(ino)?;
        i.open = i.open.checked_add(1).ok_or(Errno::ENFILE)?;
        Ok(())
    }

    /// Drops a reference taken by [`Tmpfs::retain`]; frees the inode if it
    /// was the last one and no name remains.
    pub fn release(&mut self, ino: Ino) -> KResult<()> {
        let i = self.inode_mut(ino)?;
        i.open = i.open.checked_sub(1).ok_or(Errno::EINVAL)?;
        self.maybe_free(ino);
        Ok(())
    }

    /// How many kernel references `ino` has.
    pub fn open_count(&self, ino: Ino) -> KResult<u32> {
        Ok(self.inode(ino)?.open)
    }

    pub(crate) fn inode(&self, ino: Ino) -> KResult<&Inode> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    pub(crate) fn inode_mut(&mut self, ino: Ino) -> KResult<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn make_inode(&self, mode: u32, body: Body) -> Inode {
        let (uid, gid) = match &self.sources {
            Some(s) => (s.owner)(),
            None => self.owner,
        };
        let now = self.now();
        Inode {
            mode,
            uid,
            gid,
            nlink: 0,
            open: 0,
            rdev: 0,
            atime: now,
            mtime: now,
            ctime: now,
            body,
        }
    }

    /// Inode slots taken: inodes plus extra hard links.
    fn inodes_used(&self) -> u64 {
        self.inodes.len() as u64 + self.extra_links
    }

    /// `ENOSPC` unless one more inode slot is free.
    pub(crate) fn check_inode_slot(&self) -> KResult<()> {
        if self.inodes_used() >= self.config.max_inodes {
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    /// Records that `ino` gained a name (`+1`) or lost one (`-1`), before
    /// its `nlink` changes: names past a file's first take inode slots.
    pub(crate) fn note_link(&mut self, ino: Ino, gained: bool) -> KResult<()> {
        let i = self.inode(ino)?;
        if i.dir().is_some() {
            return Ok(());
        }
        if gained && i.nlink >= 1 {
            self.extra_links += 1;
        } else if !gained && i.nlink > 1 {
            self.extra_links -= 1;
        }
        Ok(())
    }

    /// Adds an unnamed inode; the caller links it somewhere, and checked
    /// [`Tmpfs::check_inode_slot`] (before taking pages for `body`).
    pub(crate) fn alloc_inode(&mut self, mode: u32, body: Body) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        let inode = self.make_inode(mode, body);
        self.inodes.insert(ino, inode);
        ino
    }

    /// Frees `ino` once nothing names or holds it.
    pub(crate) fn maybe_free(&mut self, ino: Ino) {
        if ino == ROOT_INO {
            return;
        }
        if let Some(i) = self.inodes.get(&ino) {
            if i.nlink == 0 && i.open == 0 {
                if let Some(mut i) = self.inodes.remove(&ino) {
                    i.take_pages(|p| self.space.give_back(p));
                }
            }
        }
    }

    /// Pages held, for the consistency check.
    pub(crate) fn pages_used(&self) -> u64 {
        self.space.pages_used
    }

    /// Extra hard links counted, for the consistency check.
    pub(crate) fn extra_links(&self) -> u64 {
        self.extra_links
    }

    pub(crate) fn now(&self) -> Timespec {
        match &self.sources {
            Some(s) => (s.clock)(),
            None => self.now,
        }
    }
}
