//! File contents: read(2)/pread(2), write(2)/pwrite(2), truncate(2) and
//! readlink(2).

use alloc::vec::Vec;

use abi::{Errno, KResult};

use super::inode::{Body, FileData, Target};
use super::pages::PAGE_SIZE;
use super::{Ino, Tmpfs};

impl Tmpfs {
    /// Reads up to `buf.len()` bytes at `offset`; 0 at or past end of file.
    /// Holes read as zeros. `EISDIR` for directories, `EINVAL` for other
    /// non-regular files (the kernel gives devices and FIFOs behaviour).
    /// Stamps the access time (strictatime: no relatime heuristics).
    pub fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let n = self.read_noatime(ino, offset, buf)?;
        if n > 0 {
            let now = self.now();
            self.inode_mut(ino)?.atime = now;
        }
        Ok(n)
    }

    /// [`Tmpfs::read`] without touching the access time (`O_NOATIME`, and
    /// page-ins for file mappings and exec, which need only `&self`).
    pub fn read_noatime(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> KResult<usize> {
        let f = file_of(&self.inode(ino)?.body)?;
        if offset >= f.size || buf.is_empty() {
            return Ok(0);
        }
        let n = usize::try_from(f.size - offset).map_or(buf.len(), |avail| avail.min(buf.len()));
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let (index, in_page) = page_of(pos);
            let len = (PAGE_SIZE - in_page).min(n - done);
            let out = &mut buf[done..done + len];
            match f.pages.get(&index) {
                Some(&page) => self.space.read(page, in_page, out),
                // A hole.
                None => out.fill(0),
            }
            done += len;
        }
        Ok(n)
    }

    /// Writes `data` at `offset`; a gap past the end becomes a hole. Returns
    /// how much was written: less than asked when the file would pass
    /// `max_file_size`, or when the file system ran out of capacity
    /// (`ENOSPC`) or memory (`ENOMEM`) part way; that error when not one
    /// byte was written. `EFBIG` if `offset` is at or past the size limit.
    /// The kernel resolves `O_APPEND` to `offset = size`.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> KResult<usize> {
        let max_size = self.config.max_file_size;
        let now = self.now();
        let node = self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        let f = file_of_mut(&mut node.body)?;
        if data.is_empty() {
            return Ok(0);
        }
        if offset >= max_size {
            return Err(Errno::EFBIG);
        }
        let n = usize::try_from((data.len() as u64).min(max_size - offset)).unwrap_or(data.len());
        let mut done = 0;
        let mut failure = None;
        while done < n {
            let pos = offset + done as u64;
            let (index, in_page) = page_of(pos);
            let len = (PAGE_SIZE - in_page).min(n - done);
            let page = match f.pages.get(&index) {
                Some(&p) => p,
                None => match self.space.take() {
                    Ok(p) => {
                        f.pages.insert(index, p);
                        p
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                },
            };
            self.space
                .store()
                .write(page, in_page, &data[done..done + len]);
            done += len;
        }
        if done == 0 {
            return Err(failure.unwrap_or(Errno::ENOSPC));
        }
        f.size = f.size.max(offset + done as u64);
        node.mtime = now;
        node.ctime = now;
        Ok(done)
    }

    /// The page holding bytes `[index * PAGE_SIZE, (index + 1) * PAGE_SIZE)`
    /// of regular file `ino`, for a shared mapping of it (`MAP_SHARED`:
    /// the mapping is the file's own page, so writes through it are the
    /// file's data and reads see every write). A hole gets a zero page
    /// now, charged like a write. `EIO` for a page wholly past the end of
    /// the file (the kernel's SIGBUS), `ENOSPC`/`ENOMEM` when no page can
    /// be had.
    pub fn page_for_mapping(&mut self, ino: Ino, index: u64) -> KResult<super::pages::PageId> {
        let node = self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        let f = file_of_mut(&mut node.body)?;
        if index.saturating_mul(PAGE_SIZE as u64) >= f.size {
            return Err(Errno::EIO);
        }
        if let Some(&p) = f.pages.get(&index) {
            return Ok(p);
        }
        let p = self.space.take()?;
        f.pages.insert(index, p);
        Ok(p)
    }

    /// The size of regular file `ino`, after calling `f(index, page)` for
    /// each page with index in `indices` that holds file bytes only: not a
    /// hole and wholly before the end of the file. A private file mapping
    /// maps such a page itself, read-only, until a write copies it (Linux
    /// maps its page-cache page the same way); a page the end of the file
    /// cuts, whose tail must read as zeros there, is copied instead.
    pub fn whole_pages(
        &self,
        ino: Ino,
        indices: core::ops::Range<u64>,
        f: &mut dyn FnMut(u64, super::pages::PageId),
    ) -> KResult<u64> {
        let file = file_of(&self.inode(ino)?.body)?;
        let full = file.size / PAGE_SIZE as u64;
        let end = indices.end.min(full);
        if indices.start < end {
            for (&index, &page) in file.pages.range(indices.start..end) {
                f(index, page);
            }
        }
        Ok(file.size)
    }

    /// Sets the size of regular file `ino` to `len` (truncate(2)): shrinking
    /// gives back the pages past the end, growing adds a hole that takes no
    /// memory. `EFBIG` above `max_file_size`, `EISDIR` for directories,
    /// `EINVAL` for other types. Timestamps change only if the size does.
    pub fn truncate(&mut self, ino: Ino, len: u64) -> KResult<()> {
        let max_size = self.config.max_file_size;
        let now = self.now();
        let node = self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        let f = file_of_mut(&mut node.body)?;
        if len > max_size {
            return Err(Errno::EFBIG);
        }
        if len == f.size {
            return Ok(());
        }
        if len < f.size {
            let keep = len.div_ceil(PAGE_SIZE as u64);
            while let Some(e) = f.pages.last_entry() {
                if *e.key() < keep {
                    break;
                }
                let page = e.remove();
                self.space.give_back(page);
            }
            // Bytes past the new end in its last page must read as zeros
            // if the file grows again.
            let (index, in_page) = page_of(len);
            if in_page != 0 {
                if let Some(&page) = f.pages.get(&index) {
                    self.space.store().zero(page, in_page, PAGE_SIZE - in_page);
                }
            }
        }
        f.size = len;
        node.mtime = now;
        node.ctime = now;
        Ok(())
    }

    /// The target of symlink `ino` (readlink(2)); `EINVAL` if it is not one.
    pub fn readlink(&self, ino: Ino) -> KResult<Vec<u8>> {
        match &self.inode(ino)?.body {
            Body::Symlink(t) => {
                let mut out = Vec::new();
                self.append_target(t, &mut out)?;
                Ok(out)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Appends symlink target `t` to `out` (`ENOMEM` if the heap is full).
    pub(crate) fn append_target(&self, t: &Target, out: &mut Vec<u8>) -> KResult<()> {
        out.try_reserve(t.len()).map_err(|_| Errno::ENOMEM)?;
        match t {
            Target::Short(b) => out.extend_from_slice(b),
            Target::Long { page, len } => {
                let at = out.len();
                out.resize(at + len, 0);
                self.space.read(*page, 0, &mut out[at..]);
            }
        }
        Ok(())
    }
}

/// The page index of byte `pos` and its offset in that page.
fn page_of(pos: u64) -> (u64, usize) {
    (pos / PAGE_SIZE as u64, (pos % PAGE_SIZE as u64) as usize)
}

fn file_of(body: &Body) -> KResult<&FileData> {
    match body {
        Body::File(f) => Ok(f),
        Body::Dir(_) => Err(Errno::EISDIR),
        _ => Err(Errno::EINVAL),
    }
}

fn file_of_mut(body: &mut Body) -> KResult<&mut FileData> {
    match body {
        Body::File(f) => Ok(f),
        Body::Dir(_) => Err(Errno::EISDIR),
        _ => Err(Errno::EINVAL),
    }
}
