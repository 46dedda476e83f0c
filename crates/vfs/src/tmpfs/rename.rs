//! rename(2): moving a name, possibly replacing what the new name held.

use abi::{Errno, KResult};

use super::inode::NewName;
use super::{Ino, Tmpfs, ROOT_INO};
use crate::path::is_dot_or_dotdot;
use crate::FileType;

impl Tmpfs {
    /// Renames `olddir/oldname` to `newdir/newname` with Linux's rules:
    /// an existing `newname` is replaced atomically if compatible (a file by
    /// a non-directory, an empty directory by a directory); otherwise
    /// `EISDIR` (file over directory), `ENOTDIR` (directory over file) or
    /// `ENOTEMPTY`. Moving a directory into its own subtree is `EINVAL`;
    /// `.` or `..` as either name is `EBUSY`. If both names already refer
    /// to the same inode nothing happens, as POSIX specifies.
    pub fn rename(
        &mut self,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
    ) -> KResult<()> {
        self.expect_dir(olddir)?;
        self.expect_dir(newdir)?;
        if is_dot_or_dotdot(oldname) || is_dot_or_dotdot(newname) {
            return Err(Errno::EBUSY);
        }
        let ino = self.lookup_in(olddir, oldname)?;
        let old_is_dir = self.inode(ino)?.file_type() == FileType::Directory;
        if old_is_dir && self.is_ancestor_or_self(ino, newdir) {
            return Err(Errno::EINVAL);
        }
        let victim = match self.lookup_in(newdir, newname) {
            Ok(v) => Some(v),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        if victim.is_none() {
            self.check_new_name(newdir, newname)?;
        }
        if let Some(v) = victim {
            // Replacing an ancestor of the source: it cannot be empty.
            if self.inode(v)?.file_type() == FileType::Directory
                && self.is_ancestor_or_self(v, olddir)
            {
                return Err(Errno::ENOTEMPTY);
            }
            if v == ino {
                return Ok(());
            }
            match (old_is_dir, self.expect_dir(v)) {
                (true, Err(_)) => return Err(Errno::ENOTDIR),
                (false, Ok(_)) => return Err(Errno::EISDIR),
                (true, Ok(d)) if !d.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }

        // All checks passed and the name's memory is taken: from here on
        // nothing can fail halfway.
        let entry = NewName::new(newname)?;
        let now = self.now();
        if let Some(v) = victim {
            self.remove_entry(newdir, newname)?;
            self.note_link(v, false)?;
            let vi = self.inode_mut(v)?;
            vi.ctime = now;
            if old_is_dir {
                vi.nlink = 0;
                self.inode_mut(newdir)?.nlink -= 1;
            } else {
                vi.nlink -= 1;
            }
            self.maybe_free(v);
        }
        self.remove_entry(olddir, oldname)?;
        self.insert_entry(newdir, entry, ino)?;
        let node = self.inode_mut(ino)?;
        node.ctime = now;
        if old_is_dir && olddir != newdir {
            if let Some(d) = node.dir_mut() {
                d.parent = newdir;
            }
            self.inode_mut(olddir)?.nlink -= 1;
            self.inode_mut(newdir)?.nlink += 1;
        }
        Ok(())
    }

    /// Whether directory `anc` is `ino` or one of its ancestors.
    pub(crate) fn is_ancestor_or_self(&self, anc: Ino, mut ino: Ino) -> bool {
        // Bounded so a corrupted parent chain cannot hang the kernel.
        for _ in 0..=self.inodes.len() {
            if ino == anc {
                return true;
            }
            if ino == ROOT_INO {
                return false;
            }
            match self.expect_dir(ino) {
                Ok(d) => ino = d.parent,
                Err(_) => return false,
            }
        }
        false
    }
}
