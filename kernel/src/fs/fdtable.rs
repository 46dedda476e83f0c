//! A process's file-descriptor table.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::file::OpenFile;

/// RLIMIT_NOFILE's default soft limit (the process's own limit bounds
/// its table: proc/limits.rs).
pub const MAX_FDS: usize = 1024;

#[derive(Clone)]
struct Slot {
    file: Arc<OpenFile>,
    cloexec: bool,
}

/// Descriptor → open file. The table is also the owner of the POSIX
/// record locks its process takes (Linux's `current->files`): closing any
/// descriptor of a file drops them on that file, and so does the table's
/// end (the exit of the last process sharing it).
pub struct FdTable {
    slots: Vec<Option<Slot>>,
    /// Lock owner number (`fs::locks`), distinct for every table.
    owner: u64,
    /// Whether it ever took a POSIX lock: if not, closes skip the lock
    /// table.
    locked: bool,
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable::new()
    }
}

/// fork copies the descriptors, not the locks: the copy is a new owner.
impl Clone for FdTable {
    fn clone(&self) -> Self {
        FdTable {
            slots: self.slots.clone(),
            owner: super::locks::new_owner(),
            locked: false,
        }
    }
}

impl Drop for FdTable {
    fn drop(&mut self) {
        for s in core::mem::take(&mut self.slots).into_iter().flatten() {
            self.closing(&s.file);
        }
    }
}

impl FdTable {
    /// An empty table.
    pub fn new() -> FdTable {
        FdTable {
            slots: Vec::new(),
            owner: super::locks::new_owner(),
            locked: false,
        }
    }

    /// The owner of this table's POSIX locks, for a lock request (which
    /// makes closes look at the lock table from now on).
    pub fn lock_owner(&mut self) -> u64 {
        self.locked = true;
        self.owner
    }

    /// A descriptor of `file` is going: its POSIX locks on the inode go.
    fn closing(&self, file: &OpenFile) {
        if self.locked {
            if let Some(key) = file.lock_key() {
                super::locks::release_posix(self.owner, key);
            }
        }
    }

    /// The open file behind `fd`.
    pub fn get(&self, fd: i32) -> KResult<Arc<OpenFile>> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.slots
            .get(fd as usize)
            .and_then(|s| s.as_ref())
            .map(|s| s.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// The open descriptors, lowest first (/proc/PID/fd).
    pub fn fds(&self) -> Vec<i32> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].is_some())
            .map(|i| i as i32)
            .collect()
    }

    /// Installs `file` at the lowest free descriptor ≥ `min`.
    /// EMFILE at the process's RLIMIT_NOFILE.
    pub fn insert_from(&mut self, min: usize, file: Arc<OpenFile>, cloexec: bool) -> KResult<i32> {
        let fd = (min..crate::proc::limits::nofile())
            .find(|&i| self.slots.get(i).is_none_or(|s| s.is_none()))
            .ok_or(Errno::EMFILE)?;
        if fd >= self.slots.len() {
            self.slots.resize(fd + 1, None);
        }
        self.slots[fd] = Some(Slot { file, cloexec });
        Ok(fd as i32)
    }

    /// Installs `file` at the lowest free descriptor.
    pub fn insert(&mut self, file: Arc<OpenFile>, cloexec: bool) -> KResult<i32> {
        self.insert_from(0, file, cloexec)
    }

    /// Installs `file` at exactly `fd`, closing what was there.
    pub fn insert_at(
        &mut self,
        fd: i32,
        file: Arc<OpenFile>,
        cloexec: bool,
    ) -> KResult<Option<Arc<OpenFile>>> {
        if fd < 0 || fd as usize >= crate::proc::limits::nofile() {
            return Err(Errno::EBADF);
        }
        let fd = fd as usize;
        if fd >= self.slots.len() {
            self.slots.resize(fd + 1, None);
        }
        let old = self.slots[fd]
            .replace(Slot { file, cloexec })
            .map(|s| s.file);
        if let Some(f) = &old {
            self.closing(f);
        }
        Ok(old)
    }

    /// Removes `fd` (the file closes when its last reference goes).
    pub fn remove(&mut self, fd: i32) -> KResult<Arc<OpenFile>> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let f = self
            .slots
            .get_mut(fd as usize)
            .and_then(|s| s.take())
            .map(|s| s.file)
            .ok_or(Errno::EBADF)?;
        self.closing(&f);
        Ok(f)
    }

    /// The close-on-exec flag of `fd`.
    pub fn cloexec(&self, fd: i32) -> KResult<bool> {
        self.slots
            .get(fd as usize)
            .and_then(|s| s.as_ref())
            .map(|s| s.cloexec)
            .ok_or(Errno::EBADF)
    }

    /// Sets the close-on-exec flag of `fd`.
    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> KResult<()> {
        let s = self
            .slots
            .get_mut(fd as usize)
            .and_then(|s| s.as_mut())
            .ok_or(Errno::EBADF)?;
        s.cloexec = on;
        Ok(())
    }

    /// Closes every close-on-exec descriptor (execve).
    pub fn close_on_exec(&mut self) {
        for i in 0..self.slots.len() {
            if self.slots[i].as_ref().is_some_and(|x| x.cloexec) {
                if let Some(s) = self.slots[i].take() {
                    self.closing(&s.file);
                }
            }
        }
    }
}
