//! Directory listing for getdents64(2), with cookies that survive changes
//! to the directory between calls.

use abi::{Errno, KResult};

use super::inode::FIRST_ENTRY_COOKIE;
use super::{Ino, Tmpfs};
use crate::FileType;

/// One directory entry as getdents64 reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Inode number (`d_ino`).
    pub ino: Ino,
    /// Name, without NUL.
    pub name: &'a [u8],
    /// Type (`d_type`).
    pub kind: FileType,
}

impl Tmpfs {
    /// The entry at or after position `cookie` in directory `ino`, and the
    /// cookie of the entry after it (the `d_off` to report, and the file
    /// offset to keep). Cookie 0 is the start: `.` then `..`, then the
    /// entries in creation order. Entries added while listing may or may not
    /// appear; removed ones never reappear; none is listed twice.
    ///
    /// `ENOTDIR` if `ino` is not a directory, `ENOENT` once it was removed
    /// (as Linux does for a deleted directory still open).
    pub fn readdir(&self, ino: Ino, cookie: u64) -> KResult<Option<(DirEntry<'_>, u64)>> {
        let d = self.expect_dir(ino)?;
        if self.inode(ino)?.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        let dot = |name: &'static [u8], target: Ino| DirEntry {
            ino: target,
            name,
            kind: FileType::Directory,
        };
        Ok(Some(match cookie {
            0 => (dot(b".", ino), 1),
            1 => (dot(b"..", d.parent), FIRST_ENTRY_COOKIE),
            _ => match d.entry_from(cookie) {
                None => return Ok(None),
                Some((seq, name, child)) => {
                    let kind = self.inode(child)?.file_type();
                    (
                        DirEntry {
                            ino: child,
                            name,
                            kind,
                        },
                        seq + 1,
                    )
                }
            },
        }))
    }
}
