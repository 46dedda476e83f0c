//! Inode attributes: stat(2), chmod(2), chown(2), utimensat(2).

use abi::KResult;

use super::inode::Body;
use super::{Ino, Tmpfs};
use crate::{lx, FileType, Stat, Timespec};

/// `st_blksize` we advertise: one page, as Linux tmpfs does.
const BLKSIZE: i64 = 4096;
/// Linux tmpfs reports a directory's size as 20 bytes per entry
/// (`BOGO_DIRENT_SIZE`), counting `.` and `..`; `ls -l` shows the same.
const BOGO_DIRENT_SIZE: i64 = 20;

impl Tmpfs {
    /// The attributes of `ino`.
    pub fn stat(&self, ino: Ino) -> KResult<Stat> {
        let i = self.inode(ino)?;
        let size = match &i.body {
            Body::File(f) => f.size as i64,
            Body::Dir(d) => (d.len() as i64 + 2) * BOGO_DIRENT_SIZE,
            Body::Symlink(t) => t.len() as i64,
            Body::Special => 0,
        };
        Ok(Stat {
            dev: self.config.dev,
            ino,
            nlink: u64::from(i.nlink),
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
            rdev: u64::from(i.rdev),
            size,
            blksize: BLKSIZE,
            // The pages held, counted in 512s (a long symlink's page too,
            // as on Linux).
            blocks: i.pages_held() as i64 * (BLKSIZE / 512),
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
        })
    }

    /// Sets the permission bits (`mode & 0o7777`); the type is kept.
    pub fn chmod(&mut self, ino: Ino, mode: u32) -> KResult<()> {
        let now = self.now();
        let i = self.inode_mut(ino)?;
        i.mode = (i.mode & lx::S_IFMT) | (mode & 0o7777);
        i.ctime = now;
        Ok(())
    }

    /// Changes owner and/or group (`None` leaves one unchanged, what -1
    /// means to chown(2)). As on Linux, a regular file loses set-user-ID,
    /// and set-group-ID if group-executable, whoever changes it.
    pub fn chown(&mut self, ino: Ino, uid: Option<u32>, gid: Option<u32>) -> KResult<()> {
        let now = self.now();
        let i = self.inode_mut(ino)?;
        if let Some(u) = uid {
            i.uid = u;
        }
        if let Some(g) = gid {
            i.gid = g;
        }
        if (uid.is_some() || gid.is_some()) && i.file_type() == FileType::Regular {
            i.mode &= !lx::S_ISUID;
            if i.mode & 0o010 != 0 {
                i.mode &= !lx::S_ISGID;
            }
        }
        i.ctime = now;
        Ok(())
    }

    /// Sets access and/or modification time (`None` = `UTIME_OMIT`; the
    /// kernel resolves `UTIME_NOW`). The change time becomes now.
    pub fn utimes(
        &mut self,
        ino: Ino,
        atime: Option<Timespec>,
        mtime: Option<Timespec>,
    ) -> KResult<()> {
        let now = self.now();
        let i = self.inode_mut(ino)?;
        if let Some(a) = atime {
            i.atime = a;
        }
        if let Some(m) = mtime {
            i.mtime = m;
        }
        i.ctime = now;
        Ok(())
    }
}
