//! Creating and removing names: open(2) with `O_CREAT`, mkdir(2),
//! mknod(2), symlink(2), link(2), unlink(2) and rmdir(2).

use abi::{Errno, KResult};

use super::inode::{try_boxed, Body, Dir, FileData, NewName, Target, SHORT_SYMLINK_LEN};
use super::{Ino, Tmpfs};
use crate::path::{check_name, is_dot_or_dotdot, PATH_MAX};
use crate::{lx, FileType};

impl Tmpfs {
    /// Creates an empty regular file `name` in `dir` with permission bits
    /// `mode & 0o7777` (the kernel applies the umask first). `EEXIST` if the
    /// name exists, `ENOENT` if `dir` was removed.
    pub fn create(&mut self, dir: Ino, name: &[u8], mode: u32) -> KResult<Ino> {
        let body = Body::File(FileData::new());
        self.add_entry(dir, name, lx::S_IFREG | (mode & 0o7777), body)
            .map_err(AddError::errno)
    }

    /// Creates directory `name` in `dir` (mkdir(2)).
    pub fn mkdir(&mut self, dir: Ino, name: &[u8], mode: u32) -> KResult<Ino> {
        let ino = self
            .add_entry(
                dir,
                name,
                lx::S_IFDIR | (mode & 0o7777),
                Body::Dir(Dir::new(dir)),
            )
            .map_err(AddError::errno)?;
        // "." counts as a link, and the child's ".." links the parent.
        self.inode_mut(ino)?.nlink = 2;
        self.inode_mut(dir)?.nlink += 1;
        Ok(ino)
    }

    /// Creates a node of the type in `mode` (mknod(2)): a device with
    /// number `rdev`, a FIFO, a socket, or (type 0 or `S_IFREG`) a regular
    /// file. Directories are refused with `EPERM`, other types with
    /// `EINVAL`, as Linux's `may_mknod` does.
    pub fn mknod(&mut self, dir: Ino, name: &[u8], mode: u32, rdev: u32) -> KResult<Ino> {
        let perm = mode & 0o7777;
        let kind = match mode & lx::S_IFMT {
            0 => FileType::Regular,
            lx::S_IFDIR => return Err(Errno::EPERM),
            t => FileType::from_mode(t).ok_or(Errno::EINVAL)?,
        };
        match kind {
            FileType::Regular => self.create(dir, name, perm),
            FileType::Directory | FileType::Symlink => Err(Errno::EINVAL),
            _ => {
                let ino = self
                    .add_entry(dir, name, kind.mode_bits() | perm, Body::Special)
                    .map_err(AddError::errno)?;
                if kind.is_device() {
                    self.inode_mut(ino)?.rdev = rdev;
                }
                Ok(ino)
            }
        }
    }

    /// Creates symlink `name` in `dir` pointing at `target` (symlink(2)).
    /// Symlinks have mode 0777; an empty target is `ENOENT`.
    pub fn symlink(&mut self, dir: Ino, name: &[u8], target: &[u8]) -> KResult<Ino> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        self.check_new_name(dir, name)?;
        self.check_inode_slot()?;
        let t = if target.len() < SHORT_SYMLINK_LEN {
            Target::Short(try_boxed(target)?)
        } else {
            let page = self.space.take()?;
            self.space.store().write(page, 0, target);
            Target::Long {
                page,
                len: target.len(),
            }
        };
        // add_entry fails only before the inode exists, handing the body
        // back: then the page is ours to return.
        let body = Body::Symlink(t);
        match self.add_entry(dir, name, lx::S_IFLNK | 0o777, body) {
            Err(AddError::NoInode(e, Body::Symlink(Target::Long { page, .. }))) => {
                self.space.give_back(page);
                Err(e)
            }
            r => r.map_err(AddError::errno),
        }
    }

    /// Adds hard link `name` in `dir` to `ino` (link(2)). Directories cannot
    /// be linked (`EPERM`); an inode whose last name is gone cannot regain
    /// one (`ENOENT`).
    pub fn link(&mut self, dir: Ino, name: &[u8], ino: Ino) -> KResult<()> {
        let target = self.inode(ino)?;
        if target.file_type() == FileType::Directory {
            return Err(Errno::EPERM);
        }
        if target.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        if target.nlink == u32::MAX {
            return Err(Errno::EMLINK);
        }
        self.check_new_name(dir, name)?;
        self.check_inode_slot()?;
        let entry = NewName::new(name)?;
        self.note_link(ino, true)?;
        self.insert_entry(dir, entry, ino)?;
        let now = self.now();
        let t = self.inode_mut(ino)?;
        t.nlink += 1;
        t.ctime = now;
        Ok(())
    }

    /// Removes name `name` from `dir` (unlink(2)); the inode is freed when
    /// no name and no open reference remains. Directories: `EISDIR`, Linux's
    /// choice where POSIX allows `EPERM`.
    pub fn unlink(&mut self, dir: Ino, name: &[u8]) -> KResult<()> {
        let ino = self.lookup_in(dir, name)?;
        if self.inode(ino)?.file_type() == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        self.remove_entry(dir, name)?;
        self.note_link(ino, false)?;
        let now = self.now();
        let t = self.inode_mut(ino)?;
        t.nlink -= 1;
        t.ctime = now;
        self.maybe_free(ino);
        Ok(())
    }

    /// Removes empty directory `name` from `dir` (rmdir(2)): `EINVAL` for
    /// `.`, `ENOTEMPTY` for `..` and for a directory with entries,
    /// `ENOTDIR` for other types.
    pub fn rmdir(&mut self, dir: Ino, name: &[u8]) -> KResult<()> {
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let ino = self.lookup_in(dir, name)?;
        let target = self.expect_dir(ino)?;
        if !target.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.remove_entry(dir, name)?;
        let now = self.now();
        let t = self.inode_mut(ino)?;
        t.nlink = 0;
        t.ctime = now;
        self.inode_mut(dir)?.nlink -= 1;
        self.maybe_free(ino);
        Ok(())
    }

    /// Checks that `name` can be added to `dir`.
    pub(crate) fn check_new_name(&self, dir: Ino, name: &[u8]) -> KResult<()> {
        let d = self.expect_dir(dir)?;
        if name.is_empty() {
            return Err(Errno::ENOENT);
        }
        check_name(name)?;
        if is_dot_or_dotdot(name) {
            return Err(Errno::EEXIST);
        }
        if name.contains(&b'/') || name.contains(&0) {
            return Err(Errno::EINVAL);
        }
        // No new names in a removed directory (its nlink dropped to 0).
        if self.inode(dir)?.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        if d.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        Ok(())
    }

    fn add_entry(&mut self, dir: Ino, name: &[u8], mode: u32, body: Body) -> Result<Ino, AddError> {
        let entry = match self
            .check_new_name(dir, name)
            .and(self.check_inode_slot())
            .and(NewName::new(name))
        {
            Ok(e) => e,
            Err(e) => return Err(AddError::NoInode(e, body)),
        };
        // A set-group-ID directory gives new names its group, and new
        // directories its set-group-ID bit (BSD group semantics).
        let sgid_parent = self
            .inode(dir)
            .ok()
            .filter(|d| d.mode & lx::S_ISGID != 0)
            .map(|d| d.gid);
        let ino = self.alloc_inode(mode, body);
        let i = self.inode_mut(ino).map_err(AddError::Other)?;
        i.nlink = 1;
        if let Some(gid) = sgid_parent {
            i.gid = gid;
            if i.file_type() == FileType::Directory {
                i.mode |= lx::S_ISGID;
            }
        }
        self.insert_entry(dir, entry, ino)
            .map_err(AddError::Other)?;
        Ok(ino)
    }

    /// Adds the entry and stamps the directory as modified.
    pub(crate) fn insert_entry(&mut self, dir: Ino, name: NewName, ino: Ino) -> KResult<()> {
        let now = self.now();
        let d = self.inode_mut(dir)?;
        d.mtime = now;
        d.ctime = now;
        d.dir_mut().ok_or(Errno::ENOTDIR)?.insert(name, ino);
        Ok(())
    }

    pub(crate) fn remove_entry(&mut self, dir: Ino, name: &[u8]) -> KResult<Ino> {
        let now = self.now();
        let d = self.inode_mut(dir)?;
        d.mtime = now;
        d.ctime = now;
        d.dir_mut()
            .ok_or(Errno::ENOTDIR)?
            .remove(name)
            .ok_or(Errno::ENOENT)
    }
}

/// Why [`Tmpfs::add_entry`] failed; before the inode existed the body is
/// handed back, so pages it holds can be returned.
enum AddError {
    NoInode(Errno, Body),
    Other(Errno),
}

impl AddError {
    fn errno(self) -> Errno {
        match self {
            AddError::NoInode(e, _) | AddError::Other(e) => e,
        }
    }
}
