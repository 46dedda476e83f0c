//! Turning archive entries into tmpfs inodes.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use abi::{Errno, KResult};

use super::header::{Header, HEADER_LEN};
use crate::devnum::makedev;
use crate::path::is_dot_or_dotdot;
use crate::tmpfs::{Ino, Tmpfs};
use crate::{FileType, Timespec};

/// What an unpack created, for the boot log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries processed, trailers excluded.
    pub entries: usize,
    /// Regular files created (hard links excluded).
    pub files: usize,
    /// Directories named by entries (created or updated).
    pub dirs: usize,
    /// Symbolic links.
    pub symlinks: usize,
    /// Device nodes, FIFOs and sockets.
    pub nodes: usize,
    /// Extra names given to an earlier file (archive hard links).
    pub hard_links: usize,
    /// Bytes of file data written.
    pub bytes: u64,
}

const TRAILER: &[u8] = b"TRAILER!!!";

/// Unpacks newc archive `archive` into `fs` under directory `root`. Entry
/// names are relative to `root` (a leading `/` or `./` is ignored); missing
/// parents are created with mode 0755; an existing name is replaced (a
/// regular file is rewritten in place, as Linux does). Hard links are
/// recognised by equal (dev, ino) among entries with nlink ≥ 2; the data may
/// sit in any of them. Archives may be concatenated, with NUL padding
/// between them. Ownership, permissions and mtime come from the archive.
///
/// `EINVAL` for malformed input; file system errors (`ENOSPC`, `ENOTDIR`
/// for a path through a non-directory, …) are passed on. What was unpacked
/// before an error stays.
pub fn unpack(fs: &mut Tmpfs, root: Ino, archive: &[u8]) -> KResult<UnpackStats> {
    let mut u = Unpacker {
        fs,
        root,
        links: BTreeMap::new(),
        dir_times: Vec::new(),
        stats: UnpackStats::default(),
    };
    let mut pos = 0;
    loop {
        while pos < archive.len() && archive[pos] == 0 {
            pos += 1;
        }
        if pos == archive.len() {
            break;
        }
        let h = Header::parse(&archive[pos..])?;
        let name_start = pos + HEADER_LEN;
        let name_end = name_start
            .checked_add(h.namesize as usize)
            .ok_or(Errno::EINVAL)?;
        let data_start = align4(name_end);
        let data_end = data_start
            .checked_add(h.filesize as usize)
            .ok_or(Errno::EINVAL)?;
        if data_end > archive.len() {
            return Err(Errno::EINVAL);
        }
        let name = match archive[name_start..name_end].split_last() {
            Some((0, n)) if !n.contains(&0) => n,
            _ => return Err(Errno::EINVAL),
        };
        pos = align4(data_end).min(archive.len());
        if name == TRAILER {
            // Link groups do not span archives (Linux frees its table here).
            u.links.clear();
            continue;
        }
        u.entry(&h, name, &archive[data_start..data_end])?;
    }
    // Directory times last: creating their entries changed them.
    for (ino, t) in core::mem::take(&mut u.dir_times) {
        u.fs.utimes(ino, Some(t), Some(t))?;
    }
    Ok(u.stats)
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

struct Unpacker<'a> {
    fs: &'a mut Tmpfs,
    root: Ino,
    /// (devmajor, devminor, ino) of multiply-linked files seen so far.
    links: BTreeMap<(u32, u32, u32), Ino>,
    dir_times: Vec<(Ino, Timespec)>,
    stats: UnpackStats,
}

impl Unpacker<'_> {
    fn entry(&mut self, h: &Header, name: &[u8], data: &[u8]) -> KResult<()> {
        let kind = FileType::from_mode(h.mode).ok_or(Errno::EINVAL)?;
        self.stats.entries += 1;
        let (dir, last) = self.parent_of(name)?;
        let ino = match last {
            None => {
                // The root itself ("." or "/"): only its attributes apply.
                if kind != FileType::Directory {
                    return Err(Errno::EINVAL);
                }
                self.stats.dirs += 1;
                dir
            }
            Some(last) => self.make(h, kind, dir, last, data)?,
        };
        let t = Timespec::from_secs(i64::from(h.mtime));
        self.fs.chown(ino, Some(h.uid), Some(h.gid))?;
        if kind != FileType::Symlink {
            self.fs.chmod(ino, h.mode)?;
        }
        if kind == FileType::Directory {
            self.dir_times.push((ino, t));
        } else {
            self.fs.utimes(ino, Some(t), Some(t))?;
        }
        Ok(())
    }

    /// Creates the inode for one entry named `name` in `dir`.
    fn make(
        &mut self,
        h: &Header,
        kind: FileType,
        dir: Ino,
        name: &[u8],
        data: &[u8],
    ) -> KResult<Ino> {
        let existing = match self.fs.lookup_in(dir, name) {
            Ok(i) => Some(i),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        let existing_kind = existing.map(|i| self.fs.file_type(i)).transpose()?;
        match kind {
            FileType::Directory => {
                self.stats.dirs += 1;
                match (existing, existing_kind) {
                    (Some(i), Some(FileType::Directory)) => Ok(i),
                    (Some(_), _) => {
                        self.fs.unlink(dir, name)?;
                        self.fs.mkdir(dir, name, h.mode)
                    }
                    (None, _) => self.fs.mkdir(dir, name, h.mode),
                }
            }
            FileType::Regular => self.make_file(h, dir, name, data, existing),
            _ => {
                self.remove_existing(dir, name, existing_kind)?;
                if kind == FileType::Symlink {
                    self.stats.symlinks += 1;
                    let target = data.split(|&c| c == 0).next().unwrap_or(&[]);
                    if target.is_empty() {
                        return Err(Errno::EINVAL);
                    }
                    self.fs.symlink(dir, name, target)
                } else {
                    self.stats.nodes += 1;
                    let rdev = makedev(h.rdevmajor, h.rdevminor);
                    self.fs
                        .mknod(dir, name, kind.mode_bits() | (h.mode & 0o7777), rdev)
                }
            }
        }
    }

    fn make_file(
        &mut self,
        h: &Header,
        dir: Ino,
        name: &[u8],
        data: &[u8],
        existing: Option<Ino>,
    ) -> KResult<Ino> {
        let key = (h.devmajor, h.devminor, h.ino);
        let earlier = if h.nlink >= 2 {
            self.links.get(&key).copied()
        } else {
            None
        };
        let existing_kind = existing.map(|i| self.fs.file_type(i)).transpose()?;
        let ino = match earlier {
            Some(target) if existing == Some(target) => target,
            Some(target) if self.fs.exists(target) => {
                self.remove_existing(dir, name, existing_kind)?;
                self.fs.link(dir, name, target)?;
                self.stats.hard_links += 1;
                target
            }
            _ => {
                let ino = match (existing, existing_kind) {
                    (Some(i), Some(FileType::Regular)) => {
                        self.fs.truncate(i, 0)?;
                        i
                    }
                    _ => {
                        self.remove_existing(dir, name, existing_kind)?;
                        self.fs.create(dir, name, h.mode)?
                    }
                };
                self.stats.files += 1;
                if h.nlink >= 2 {
                    self.links.insert(key, ino);
                }
                ino
            }
        };
        if !data.is_empty() {
            self.fs.truncate(ino, 0)?;
            if self.fs.write(ino, 0, data)? != data.len() {
                return Err(Errno::ENOSPC);
            }
            self.stats.bytes += data.len() as u64;
        }
        Ok(ino)
    }

    fn remove_existing(&mut self, dir: Ino, name: &[u8], kind: Option<FileType>) -> KResult<()> {
        match kind {
            None => Ok(()),
            Some(FileType::Directory) => self.fs.rmdir(dir, name),
            Some(_) => self.fs.unlink(dir, name),
        }
    }

    /// Walks (creating directories) to the parent of `path`; returns it and
    /// the last component, or `None` if `path` names the root itself.
    fn parent_of<'p>(&mut self, path: &'p [u8]) -> KResult<(Ino, Option<&'p [u8]>)> {
        crate::path::check_path(path)?;
        let comps: Vec<&[u8]> = path
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        let Some((&last, parents)) = comps.split_last() else {
            return Ok((self.root, None));
        };
        let mut cur = self.root;
        for &c in parents {
            if c == b".." && cur == self.root {
                // Entries stay inside the tree they are unpacked into.
                continue;
            }
            cur = match self.fs.lookup(cur, c, true) {
                Ok(i) => i,
                Err(Errno::ENOENT) if c != b".." => self.fs.mkdir(cur, c, 0o755)?,
                Err(e) => return Err(e),
            };
            if self.fs.file_type(cur)? != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
        }
        if is_dot_or_dotdot(last) {
            return Err(Errno::EINVAL);
        }
        Ok((cur, Some(last)))
    }
}
