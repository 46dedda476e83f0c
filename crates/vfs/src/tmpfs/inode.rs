//! The in-memory inode and what it holds per file type.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use abi::{Errno, KResult};

use super::pages::PageId;
use super::Ino;
use crate::{FileType, Timespec};

/// Cookie of the first real directory entry: 0 and 1 are `.` and `..`.
pub(crate) const FIRST_ENTRY_COOKIE: u64 = 2;

/// One inode. `nlink` counts directory entries naming it (plus `.` and the
/// children's `..` for directories); `open` counts the kernel's references,
/// so an unlinked file lives until both reach zero (unlink(2), "If the name
/// was the last link to a file but any processes still have the file open").
pub(crate) struct Inode {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub open: u32,
    pub rdev: u32,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub body: Body,
}

/// Type-specific contents. Devices, FIFOs and sockets carry nothing here:
/// the kernel gives them behaviour keyed by `rdev` or inode number.
pub(crate) enum Body {
    File(FileData),
    Dir(Dir),
    Symlink(Target),
    Special,
}

/// A regular file's bytes: its pages by page index. A missing index is a
/// hole that reads as zeros, so extending with truncate(2) or writing far
/// past the end costs only the pages written. Bytes of the last page past
/// `size` are zero, so growing the file again shows zeros there.
pub(crate) struct FileData {
    pub pages: BTreeMap<u64, PageId>,
    pub size: u64,
}

impl FileData {
    pub fn new() -> FileData {
        FileData {
            pages: BTreeMap::new(),
            size: 0,
        }
    }
}

/// Targets shorter than this live in the inode; longer ones take a page.
/// Linux's `SHORT_SYMLINK_LEN`: short targets are charged no space there
/// either, and the inode limit bounds how many there are.
pub(crate) const SHORT_SYMLINK_LEN: usize = 128;

/// A symlink's target.
pub(crate) enum Target {
    Short(Box<[u8]>),
    /// A page holding the target's `len` bytes (below `PATH_MAX`, so one
    /// page always suffices).
    Long {
        page: PageId,
        len: usize,
    },
}

impl Target {
    pub fn len(&self) -> usize {
        match self {
            Target::Short(t) => t.len(),
            Target::Long { len, .. } => *len,
        }
    }
}

/// A name ready to enter a directory: its copies for both indexes, taken
/// before an operation changes anything, so that running out of heap
/// (`ENOMEM`) cannot leave a rename half done. The inode limit bounds how
/// many names exist, so the map nodes stay within a known share.
pub(crate) struct NewName(Box<[u8]>, Box<[u8]>);

impl NewName {
    pub fn new(name: &[u8]) -> KResult<NewName> {
        Ok(NewName(try_boxed(name)?, try_boxed(name)?))
    }
}

/// A copy of `bytes` on the heap, or `ENOMEM`: the kernel must see an
/// allocation failure as an error, not a panic.
pub(crate) fn try_boxed(bytes: &[u8]) -> KResult<Box<[u8]>> {
    let mut v = Vec::new();
    v.try_reserve_exact(bytes.len())
        .map_err(|_| Errno::ENOMEM)?;
    v.extend_from_slice(bytes);
    Ok(v.into_boxed_slice())
}

/// A directory. Entries are kept by insertion sequence as well as by name so
/// that a readdir cookie (the sequence number) stays valid while entries are
/// added and removed between getdents64 calls, as POSIX requires of
/// telldir/seekdir.
pub(crate) struct Dir {
    /// The directory holding this one (itself for the root). Directories
    /// have exactly one name, so this is what `..` and getcwd follow.
    pub parent: Ino,
    by_name: BTreeMap<Box<[u8]>, (u64, Ino)>,
    by_seq: BTreeMap<u64, Box<[u8]>>,
    next_seq: u64,
}

impl Inode {
    pub fn file_type(&self) -> FileType {
        // Every constructor stores a valid S_IFMT, so this cannot fail.
        FileType::from_mode(self.mode).unwrap_or(FileType::Regular)
    }

    pub fn dir(&self) -> Option<&Dir> {
        match &self.body {
            Body::Dir(d) => Some(d),
            _ => None,
        }
    }

    pub fn dir_mut(&mut self) -> Option<&mut Dir> {
        match &mut self.body {
            Body::Dir(d) => Some(d),
            _ => None,
        }
    }

    /// Pages this inode holds against the file system's capacity.
    pub fn pages_held(&self) -> u64 {
        match &self.body {
            Body::File(f) => f.pages.len() as u64,
            Body::Symlink(Target::Long { .. }) => 1,
            _ => 0,
        }
    }

    /// Takes every page this inode holds, for freeing.
    pub fn take_pages(&mut self, mut f: impl FnMut(PageId)) {
        match &mut self.body {
            Body::File(d) => {
                while let Some((_, p)) = d.pages.pop_first() {
                    f(p);
                }
            }
            Body::Symlink(Target::Long { page, .. }) => {
                f(*page);
                self.body = Body::Special;
            }
            _ => {}
        }
    }
}

impl Dir {
    pub fn new(parent: Ino) -> Dir {
        Dir {
            parent,
            by_name: BTreeMap::new(),
            by_seq: BTreeMap::new(),
            next_seq: FIRST_ENTRY_COOKIE,
        }
    }

    pub fn get(&self, name: &[u8]) -> Option<Ino> {
        self.by_name.get(name).map(|&(_, ino)| ino)
    }

    /// Adds `name`; the caller has checked it is absent.
    pub fn insert(&mut self, name: NewName, ino: Ino) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_name.insert(name.0, (seq, ino));
        self.by_seq.insert(seq, name.1);
    }

    pub fn remove(&mut self, name: &[u8]) -> Option<Ino> {
        let (seq, ino) = self.by_name.remove(name)?;
        self.by_seq.remove(&seq);
        Some(ino)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The first entry whose cookie is `cookie` or later.
    pub fn entry_from(&self, cookie: u64) -> Option<(u64, &[u8], Ino)> {
        let (&seq, name) = self.by_seq.range(cookie..).next()?;
        let ino = self.get(name)?;
        Some((seq, name, ino))
    }

    /// The name under which `ino` appears (first one, for files).
    pub fn name_of(&self, ino: Ino) -> Option<&[u8]> {
        self.by_name
            .iter()
            .find(|(_, &(_, i))| i == ino)
            .map(|(n, _)| &**n)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&[u8], Ino)> {
        self.by_name.iter().map(|(n, &(_, i))| (&**n, i))
    }

    /// Whether both indexes agree, for the consistency checker.
    pub fn indexes_agree(&self) -> bool {
        self.by_name.len() == self.by_seq.len()
            && self
                .by_seq
                .iter()
                .all(|(s, n)| self.by_name.get(n).is_some_and(|&(s2, _)| s2 == *s))
            && self
                .by_seq
                .keys()
                .all(|&s| s >= FIRST_ENTRY_COOKIE && s < self.next_seq)
    }
}
