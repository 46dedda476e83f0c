//! Directories relative paths start from: the cwd (chdir(2), getcwd(2))
//! or a directory file descriptor. Either is a tmpfs directory or a
//! directory of a mounted ext4 file system.
//!
//! An ext4 cwd holds its inode as an open file does (rmdir leaves it an
//! orphan until the cwd moves) and its mount (umount is EBUSY while a
//! process works there), as on Linux.

use abi::KResult;
use alloc::sync::Arc;
use alloc::vec::Vec;
use vfs::Ino;

use super::mount::Mount;

/// A start directory, for the length of one system call.
#[derive(Clone)]
pub enum Dir {
    Tmpfs(Ino),
    Ext(Arc<Mount>, u32),
}

impl Dir {
    /// Its absolute path; ENOENT once it was removed.
    pub fn path(&self) -> KResult<Vec<u8>> {
        match self {
            Dir::Tmpfs(i) => super::with(|fs| fs.path_of(*i)),
            Dir::Ext(m, i) => m.path_of(*i),
        }
    }
}

/// A process's current directory.
#[derive(Clone)]
pub enum Cwd {
    Tmpfs(Ino),
    Ext(Arc<ExtDir>),
}

impl Cwd {
    pub fn new(d: Dir) -> Cwd {
        match d {
            Dir::Tmpfs(i) => Cwd::Tmpfs(i),
            Dir::Ext(mount, ino) => {
                mount.fs.opened(ino);
                Cwd::Ext(Arc::new(ExtDir { mount, ino }))
            }
        }
    }

    pub fn dir(&self) -> Dir {
        match self {
            Cwd::Tmpfs(i) => Dir::Tmpfs(*i),
            Cwd::Ext(e) => Dir::Ext(e.mount.clone(), e.ino),
        }
    }
}

/// An ext4 directory held as a cwd (shared by the processes a fork
/// copied it to).
pub struct ExtDir {
    mount: Arc<Mount>,
    ino: u32,
}

impl Drop for ExtDir {
    fn drop(&mut self) {
        self.mount.fs.closed(self.ino);
    }
}
