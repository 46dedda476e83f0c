//! A consistency check of the whole inode table, for tests and for a kernel
//! debug command: every invariant the operations rely on, checked from
//! scratch rather than trusted.

use alloc::collections::BTreeMap;

use super::{Ino, Tmpfs, ROOT_INO};
use crate::FileType;

impl Tmpfs {
    /// Verifies the file system's invariants; `Err` names the first broken
    /// one. Linear in the size of the file system.
    pub fn fsck(&self) -> Result<(), &'static str> {
        let mut names: BTreeMap<Ino, u32> = BTreeMap::new();
        let mut subdirs: BTreeMap<Ino, u32> = BTreeMap::new();
        let mut pages = 0u64;
        let mut extra_links = 0u64;
        for (&ino, i) in &self.inodes {
            pages += i.pages_held();
            if FileType::from_mode(i.mode).is_none() {
                return Err("invalid S_IFMT");
            }
            if let super::inode::Body::File(f) = &i.body {
                let end = f.size.div_ceil(super::PAGE_SIZE as u64);
                if f.pages.last_key_value().is_some_and(|(&k, _)| k >= end) {
                    return Err("file holds pages past its size");
                }
            }
            if i.dir().is_none() {
                extra_links += u64::from(i.nlink.saturating_sub(1));
            }
            if (i.file_type() == FileType::Directory) != i.dir().is_some() {
                return Err("mode type disagrees with contents");
            }
            let Some(d) = i.dir() else { continue };
            if !d.indexes_agree() {
                return Err("directory indexes disagree");
            }
            for (name, child) in d.entries() {
                if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                    return Err("invalid entry name");
                }
                let c = self
                    .inodes
                    .get(&child)
                    .ok_or("entry names a missing inode")?;
                *names.entry(child).or_default() += 1;
                if let Some(cd) = c.dir() {
                    if cd.parent != ino {
                        return Err("directory's parent pointer is wrong");
                    }
                    *subdirs.entry(ino).or_default() += 1;
                }
            }
        }
        if pages != self.pages_used() {
            return Err("page accounting is off");
        }
        if extra_links != self.extra_links() {
            return Err("hard link accounting is off");
        }
        for (&ino, i) in &self.inodes {
            let n = names.get(&ino).copied().unwrap_or(0);
            let live = ino == ROOT_INO || n > 0;
            if i.dir().is_some() {
                if n > 1 || (ino == ROOT_INO && n != 0) {
                    return Err("directory has several names");
                }
                let want = if live {
                    2 + subdirs.get(&ino).copied().unwrap_or(0)
                } else {
                    0
                };
                if i.nlink != want {
                    return Err("directory nlink is wrong");
                }
                if !live && !self.expect_dir(ino).is_ok_and(|d| d.is_empty()) {
                    return Err("removed directory has entries");
                }
            } else if i.nlink != n {
                return Err("file nlink differs from its names");
            }
            if i.nlink == 0 && i.open == 0 && ino != ROOT_INO {
                return Err("unreferenced inode not freed");
            }
        }
        // Every live directory reaches the root: no cycles, no lost subtrees.
        for &ino in self.inodes.keys() {
            if names.contains_key(&ino)
                && self.expect_dir(ino).is_ok()
                && self.path_of(ino).is_err()
            {
                return Err("directory unreachable from the root");
            }
        }
        Ok(())
    }
}
