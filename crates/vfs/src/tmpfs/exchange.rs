//! renameat2(2) flags: `RENAME_NOREPLACE` and `RENAME_EXCHANGE`.

use abi::{Errno, KResult};

use super::inode::NewName;
use super::{Ino, Tmpfs};
use crate::path::is_dot_or_dotdot;
use crate::{lx, FileType};

impl Tmpfs {
    /// renameat2(2): [`Tmpfs::rename`] with `flags`. `RENAME_NOREPLACE`
    /// fails with `EEXIST` if `newname` exists; `RENAME_EXCHANGE` swaps two
    /// existing names atomically (`ENOENT` if either is missing). Both
    /// together, `RENAME_WHITEOUT` or unknown bits are `EINVAL`.
    pub fn rename2(
        &mut self,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
        flags: u32,
    ) -> KResult<()> {
        const KNOWN: u32 = lx::RENAME_NOREPLACE | lx::RENAME_EXCHANGE;
        if flags & !KNOWN != 0 || flags == KNOWN {
            return Err(Errno::EINVAL);
        }
        if flags & lx::RENAME_EXCHANGE != 0 {
            return self.exchange(olddir, oldname, newdir, newname);
        }
        if flags & lx::RENAME_NOREPLACE != 0 {
            self.lookup_in(olddir, oldname)?;
            match self.lookup_in(newdir, newname) {
                Ok(_) => return Err(Errno::EEXIST),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        self.rename(olddir, oldname, newdir, newname)
    }

    fn exchange(
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
        let a = self.lookup_in(olddir, oldname)?;
        let b = self.lookup_in(newdir, newname)?;
        if a == b {
            return Ok(());
        }
        let a_dir = self.file_type(a)? == FileType::Directory;
        let b_dir = self.file_type(b)? == FileType::Directory;
        // Each directory lands where the other was: neither may end up
        // inside itself.
        if (a_dir && self.is_ancestor_or_self(a, newdir))
            || (b_dir && self.is_ancestor_or_self(b, olddir))
        {
            return Err(Errno::EINVAL);
        }
        // Names copied first: running out of heap changes nothing.
        let (old_entry, new_entry) = (NewName::new(oldname)?, NewName::new(newname)?);
        let now = self.now();
        self.remove_entry(olddir, oldname)?;
        self.remove_entry(newdir, newname)?;
        self.insert_entry(olddir, old_entry, b)?;
        self.insert_entry(newdir, new_entry, a)?;
        for (ino, is_dir, from, to) in [(a, a_dir, olddir, newdir), (b, b_dir, newdir, olddir)] {
            let node = self.inode_mut(ino)?;
            node.ctime = now;
            if is_dir && from != to {
                if let Some(d) = node.dir_mut() {
                    d.parent = to;
                }
                self.inode_mut(from)?.nlink -= 1;
                self.inode_mut(to)?.nlink += 1;
            }
        }
        Ok(())
    }
}
