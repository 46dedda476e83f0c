//! open(2)/openat(2) name resolution: which inode a call opens, whether it
//! creates one, and the flag rules that decide errors. File descriptions,
//! access checks and the umask stay with the kernel.

use alloc::vec::Vec;

use abi::{Errno, KResult};

use super::{Ino, Tmpfs};
use crate::path::{check_path, MAX_SYMLINKS};
use crate::{lx, FileType};

/// What an open resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The inode opened.
    pub ino: Ino,
    /// Whether `O_CREAT` made it.
    pub created: bool,
}

/// The flags `O_PATH` keeps; Linux ignores the rest (open(2), "O_PATH").
const O_PATH_FLAGS: u32 = lx::O_DIRECTORY | lx::O_NOFOLLOW | lx::O_PATH | lx::O_CLOEXEC;

impl Tmpfs {
    /// Resolves `path` for open(2) with `flags` (`O_*`), creating a regular
    /// file with permission bits `mode` (umask already applied) under
    /// `O_CREAT`, and truncating a regular file under `O_TRUNC`.
    ///
    /// Follows Linux: `O_CREAT|O_EXCL` fails with `EEXIST` on any existing
    /// name, symlinks included; `O_CREAT` through a dangling symlink creates
    /// its target; `O_CREAT` on a directory or on a path ending in `/` is
    /// `EISDIR`, as is opening a directory for writing or with `O_TRUNC`;
    /// `O_DIRECTORY` on a non-directory is `ENOTDIR`; `O_NOFOLLOW` on a
    /// symlink is `ELOOP` unless `O_PATH`. `O_CREAT|O_DIRECTORY` is `EINVAL`;
    /// `O_TMPFILE` is `EOPNOTSUPP`.
    pub fn open(&mut self, cwd: Ino, path: &[u8], flags: u32, mode: u32) -> KResult<Opened> {
        let flags = if flags & lx::O_PATH != 0 {
            flags & O_PATH_FLAGS
        } else {
            flags
        };
        if flags & lx::O_TMPFILE == lx::O_TMPFILE {
            return Err(Errno::EOPNOTSUPP);
        }
        // Meaningless together; Linux 6.4 and later refuse the pair, which
        // also means a created file is never followed by a failure here.
        if flags & lx::O_CREAT != 0 && flags & lx::O_DIRECTORY != 0 {
            return Err(Errno::EINVAL);
        }
        let nofollow = flags & lx::O_NOFOLLOW != 0;
        let (ino, created) = if flags & lx::O_CREAT != 0 {
            self.open_create(cwd, path, flags, mode)?
        } else {
            (self.lookup(cwd, path, !nofollow)?, false)
        };
        let kind = self.file_type(ino)?;
        if kind == FileType::Symlink && flags & lx::O_PATH == 0 {
            return Err(Errno::ELOOP);
        }
        if flags & lx::O_DIRECTORY != 0 && kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let writes = matches!(flags & lx::O_ACCMODE, lx::O_WRONLY | lx::O_RDWR);
        if kind == FileType::Directory && (writes || flags & (lx::O_CREAT | lx::O_TRUNC) != 0) {
            return Err(Errno::EISDIR);
        }
        if flags & lx::O_TRUNC != 0 && kind == FileType::Regular && !created {
            self.truncate(ino, 0)?;
        }
        Ok(Opened { ino, created })
    }

    /// The `O_CREAT` walk: the last component may be created, or may be a
    /// symlink whose (possibly missing) target is opened or created.
    fn open_create(
        &mut self,
        cwd: Ino,
        path: &[u8],
        flags: u32,
        mode: u32,
    ) -> KResult<(Ino, bool)> {
        let mut start = cwd;
        let mut path: Vec<u8> = path.to_vec();
        let mut links = 0;
        loop {
            check_path(&path)?;
            if path.ends_with(b"/") {
                return Err(Errno::EISDIR);
            }
            let (dir, name) = self.lookup_parent(start, &path)?;
            let ino = match self.lookup_in(dir, &name) {
                Err(Errno::ENOENT) => return Ok((self.create(dir, &name, mode)?, true)),
                Err(e) => return Err(e),
                Ok(ino) => ino,
            };
            if flags & lx::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let target = match self.readlink(ino) {
                Ok(t) if flags & lx::O_NOFOLLOW == 0 => t,
                _ => return Ok((ino, false)),
            };
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            path = target;
            start = dir;
        }
    }
}
