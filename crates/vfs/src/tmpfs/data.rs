//! File contents: read(2)/pread(2), write(2)/pwrite(2), truncate(2) and
//! readlink(2).

use abi::{Errno, KResult};

use super::inode::{Body, FileData};
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
        // Bytes past the stored data lie in a hole and read as zeros.
        let stored = f
            .data
            .get(offset as usize..)
            .map_or(&[][..], |s| &s[..s.len().min(n)]);
        buf[..stored.len()].copy_from_slice(stored);
        buf[stored.len()..n].fill(0);
        Ok(n)
    }

    /// Writes `data` at `offset`, zero-filling any gap past the end. Returns
    /// how much was written: less than asked when the file would pass
    /// `max_file_size` or the file system its capacity. Fails with `EFBIG`
    /// if `offset` is at or past the size limit and `ENOSPC` if not one byte
    /// fits. The kernel resolves `O_APPEND` to `offset = size`.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> KResult<usize> {
        let max_size = self.config.max_file_size;
        let free = self.bytes_free();
        let now = self.now();
        let node = self.inode_mut(ino)?;
        let f = file_of_mut(&mut node.body)?;
        if data.is_empty() {
            return Ok(0);
        }
        if offset >= max_size {
            return Err(Errno::EFBIG);
        }
        let mut n = (data.len() as u64).min(max_size - offset);
        let stored = f.data.len() as u64;
        // Growth past the stored bytes (including a zero-filled gap) is
        // what costs capacity.
        let allowed_end = stored.saturating_add(free);
        if offset + n > allowed_end {
            n = allowed_end.saturating_sub(offset);
        }
        if n == 0 {
            return Err(Errno::ENOSPC);
        }
        let end = usize::try_from(offset + n).map_err(|_| Errno::EFBIG)?;
        let start = offset as usize;
        let growth = end.saturating_sub(f.data.len());
        // try_reserve: an allocation failure in the kernel must be an error
        // the writer sees, not a panic.
        f.data.try_reserve(growth).map_err(|_| Errno::ENOSPC)?;
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[start..end].copy_from_slice(&data[..end - start]);
        f.size = f.size.max(end as u64);
        node.mtime = now;
        node.ctime = now;
        self.charge_unchecked(growth as u64);
        Ok(end - start)
    }

    /// Sets the size of regular file `ino` to `len` (truncate(2)): shrinking
    /// discards data, growing adds a hole that takes no memory. `EFBIG`
    /// above `max_file_size`, `EISDIR` for directories, `EINVAL` for other
    /// types. Timestamps change only if the size does.
    pub fn truncate(&mut self, ino: Ino, len: u64) -> KResult<()> {
        let max_size = self.config.max_file_size;
        let now = self.now();
        let node = self.inode_mut(ino)?;
        let f = file_of_mut(&mut node.body)?;
        if len > max_size {
            return Err(Errno::EFBIG);
        }
        if len == f.size {
            return Ok(());
        }
        let mut freed = 0;
        if len < f.data.len() as u64 {
            freed = f.data.len() as u64 - len;
            f.data.truncate(len as usize);
            // Give memory back when most of it is no longer used.
            if f.data.capacity() > 2 * f.data.len() {
                f.data.shrink_to_fit();
            }
        }
        f.size = len;
        node.mtime = now;
        node.ctime = now;
        self.uncharge(freed);
        Ok(())
    }

    /// The target of symlink `ino` (readlink(2)); `EINVAL` if it is not one.
    pub fn readlink(&self, ino: Ino) -> KResult<&[u8]> {
        match &self.inode(ino)?.body {
            Body::Symlink(t) => Ok(t),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Bytes charged by a write that already checked the capacity.
    fn charge_unchecked(&mut self, bytes: u64) {
        self.bytes_used += bytes;
    }
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
