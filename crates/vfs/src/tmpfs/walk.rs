//! Path resolution (path_resolution(7)): walking components from the root
//! or a starting directory, `.` and `..`, symlinks, and the reverse walk
//! getcwd(2) needs.

use alloc::vec::Vec;

use abi::{Errno, KResult};

use super::inode::Body;
use super::{Ino, Tmpfs, ROOT_INO};
use crate::access::Caller;
use crate::path::{check_name, check_path, split_last, MAX_SYMLINKS};
use crate::FileType;

/// Where a [`Tmpfs::walk`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Walked {
    /// An inode of this file system.
    Ino(Ino),
    /// Mount point `at` was entered; what remains of the path (empty or
    /// starting with `/`), relative to the mounted file system's root.
    Mount { at: Ino, rest: Vec<u8> },
}

impl Tmpfs {
    /// Resolves `path` relative to directory `cwd` (ignored for absolute
    /// paths). Symlinks before the last component are always followed; the
    /// last one is followed if `follow_last_symlink` (`O_NOFOLLOW`,
    /// `AT_SYMLINK_NOFOLLOW` and lstat(2) clear it) or if the path ends in
    /// a slash, which also demands a directory (`ENOTDIR`).
    ///
    /// Errors: `ENOENT` (missing component, empty path or symlink target),
    /// `ENOTDIR`, `ELOOP` after [`MAX_SYMLINKS`] links, `ENAMETOOLONG`.
    /// Permissions are not checked (see [`crate::access`]).
    pub fn lookup(&self, cwd: Ino, path: &[u8], follow_last_symlink: bool) -> KResult<Ino> {
        match self.walk(cwd, path, follow_last_symlink, &[])? {
            Walked::Ino(ino) => Ok(ino),
            // No mount point was given, so none was crossed.
            Walked::Mount { .. } => Err(Errno::ENOENT),
        }
    }

    /// [`Tmpfs::lookup`] that stops where the walk enters one of the
    /// directories `mounts` (a file system mounted there, e.g. /proc): the
    /// rest of the path, symlinks already spliced in, is for that file
    /// system. This is how `/dev/fd/3` (a symlink to `/proc/self/fd`)
    /// reaches /proc.
    pub fn walk(
        &self,
        cwd: Ino,
        path: &[u8],
        follow_last_symlink: bool,
        mounts: &[Ino],
    ) -> KResult<Walked> {
        self.walk_as(None, cwd, path, follow_last_symlink, mounts)
    }

    /// [`Tmpfs::walk`] for `who`: every directory a component is looked up
    /// in must grant it search permission (`EACCES`), as Linux's
    /// `may_lookup` demands; `None` is the kernel itself (no checks).
    pub fn walk_as(
        &self,
        who: Option<&Caller>,
        cwd: Ino,
        path: &[u8],
        follow_last_symlink: bool,
        mounts: &[Ino],
    ) -> KResult<Walked> {
        check_path(path)?;
        let mut cur = if path[0] == b'/' { ROOT_INO } else { cwd };
        self.expect_dir(cur)?;
        // The remaining path; a symlink's target is spliced in front of
        // what follows it, which keeps the walk iterative (kernel stacks are
        // small) and the trailing-slash rule intact.
        let mut rest: Vec<u8> = Vec::new();
        rest.try_reserve(path.len()).map_err(|_| Errno::ENOMEM)?;
        rest.extend_from_slice(path);
        let mut pos = 0;
        let mut links = 0;
        loop {
            while pos < rest.len() && rest[pos] == b'/' {
                pos += 1;
            }
            if pos == rest.len() {
                return Ok(Walked::Ino(cur));
            }
            let end = rest[pos..]
                .iter()
                .position(|&c| c == b'/')
                .map_or(rest.len(), |i| pos + i);
            let name = &rest[pos..end];
            check_name(name)?;
            let is_last = rest[end..].iter().all(|&c| c == b'/');
            let trailing_slash = is_last && end < rest.len();
            self.may_search(who, cur)?;
            let child = self.lookup_in(cur, name)?;
            let node = self.inode(child)?;
            if let Body::Symlink(target) = &node.body {
                if !is_last || follow_last_symlink || trailing_slash {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    let mut spliced = Vec::new();
                    spliced
                        .try_reserve(target.len() + rest.len() - end)
                        .map_err(|_| Errno::ENOMEM)?;
                    self.append_target(target, &mut spliced)?;
                    match spliced.first() {
                        None => return Err(Errno::ENOENT),
                        Some(b'/') => cur = ROOT_INO,
                        Some(_) => {}
                    }
                    spliced.extend_from_slice(&rest[end..]);
                    rest = spliced;
                    pos = 0;
                    continue;
                }
            }
            if mounts.contains(&child) {
                return Ok(Walked::Mount {
                    at: child,
                    rest: rest[end..].to_vec(),
                });
            }
            if is_last {
                if trailing_slash && node.file_type() != FileType::Directory {
                    return Err(Errno::ENOTDIR);
                }
                return Ok(Walked::Ino(child));
            }
            cur = child;
            pos = end;
        }
    }

    /// Resolves all but the last component of `path` (following symlinks)
    /// and returns that directory with the last component, for the calls
    /// that create or remove a name. Trailing slashes are dropped: the
    /// caller checks `path.ends_with(b"/")` where it matters (e.g. creating
    /// a regular file through `name/` fails with `EISDIR`). A path of only
    /// slashes yields the root and `.`. The name may be `.` or `..`, which
    /// each operation rejects in its own way.
    pub fn lookup_parent(&self, cwd: Ino, path: &[u8]) -> KResult<(Ino, Vec<u8>)> {
        self.lookup_parent_as(None, cwd, path)
    }

    /// [`Tmpfs::lookup_parent`] with `who`'s search permission checked on
    /// the way ([`Tmpfs::walk_as`]).
    pub fn lookup_parent_as(
        &self,
        who: Option<&Caller>,
        cwd: Ino,
        path: &[u8],
    ) -> KResult<(Ino, Vec<u8>)> {
        check_path(path)?;
        let (dir_path, name) = split_last(path);
        check_name(name)?;
        let dir = if dir_path.is_empty() {
            cwd
        } else {
            match self.walk_as(who, cwd, dir_path, true, &[])? {
                Walked::Ino(ino) => ino,
                Walked::Mount { .. } => return Err(Errno::ENOENT),
            }
        };
        self.expect_dir(dir)?;
        Ok((dir, name.to_vec()))
    }

    /// `EACCES` unless `who` may search directory `dir`.
    fn may_search(&self, who: Option<&Caller>, dir: Ino) -> KResult<()> {
        let Some(who) = who else {
            return Ok(());
        };
        let i = self.inode(dir)?;
        if who.may(i.mode, i.uid, i.gid, crate::access::MAY_EXEC) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// One component inside directory `dir`. `..` of the root is the root.
    /// A removed directory still resolves `.` and `..` but nothing else.
    pub fn lookup_in(&self, dir: Ino, name: &[u8]) -> KResult<Ino> {
        let d = self.expect_dir(dir)?;
        check_name(name)?;
        match name {
            b"." => Ok(dir),
            b".." => {
                // The parent of a removed directory may itself be gone.
                self.inode(d.parent)?;
                Ok(d.parent)
            }
            _ => d.get(name).ok_or(Errno::ENOENT),
        }
    }

    /// The absolute path of directory `ino`, as getcwd(2) returns it.
    /// `ENOENT` if it was removed (getcwd's error for an unlinked cwd),
    /// `ENOTDIR` for other file types, which may have many names or none.
    pub fn path_of(&self, ino: Ino) -> KResult<Vec<u8>> {
        let node = self.inode(ino)?;
        if node.file_type() != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let mut names: Vec<&[u8]> = Vec::new();
        let mut cur = ino;
        while cur != ROOT_INO {
            let d = self.expect_dir(cur)?;
            if self.inode(cur)?.nlink == 0 || names.len() > self.inodes.len() {
                return Err(Errno::ENOENT);
            }
            let parent = self.expect_dir(d.parent)?;
            names.push(parent.name_of(cur).ok_or(Errno::ENOENT)?);
            cur = d.parent;
        }
        let mut out = Vec::new();
        for n in names.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(n);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        Ok(out)
    }

    /// The directory contents of `ino`, or `ENOTDIR`.
    pub(crate) fn expect_dir(&self, ino: Ino) -> KResult<&super::inode::Dir> {
        self.inode(ino)?.dir().ok_or(Errno::ENOTDIR)
    }
}
