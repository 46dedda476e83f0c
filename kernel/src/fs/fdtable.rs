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

/// Descriptor → open file.
#[derive(Clone, Default)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
}

impl FdTable {
    /// An empty table.
    pub fn new() -> FdTable {
        FdTable { slots: Vec::new() }
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
        Ok(self.slots[fd]
            .replace(Slot { file, cloexec })
            .map(|s| s.file))
    }

    /// Removes `fd` (the file closes when its last reference goes).
    pub fn remove(&mut self, fd: i32) -> KResult<Arc<OpenFile>> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        self.slots
            .get_mut(fd as usize)
            .and_then(|s| s.take())
            .map(|s| s.file)
            .ok_or(Errno::EBADF)
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
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(|x| x.cloexec) {
                *s = None;
            }
        }
    }
}
