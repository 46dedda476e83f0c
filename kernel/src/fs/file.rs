//! Open files: what a descriptor points at, with its offset and status
//! flags, and the read/write/poll behaviour of each kind.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::Mutex;
use vfs::{FileType, Ino};

use super::pipe::Pipe;

pub const O_ACCMODE: u32 = 3;
pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
/// Writes durable at their return, as after fdatasync; O_SYNC is this
/// and [`O_SYNC_ONLY`], as after fsync.
pub const O_DSYNC: u32 = linux_raw_sys::general::O_DSYNC;
pub const O_SYNC_ONLY: u32 = linux_raw_sys::general::__O_SYNC;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_PATH: u32 = 0o10000000;

pub const POLLIN: u16 = 1;
pub const POLLPRI: u16 = 2;
pub const POLLOUT: u16 = 4;
pub const POLLERR: u16 = 8;
pub const POLLHUP: u16 = 0x10;
pub const POLLNVAL: u16 = 0x20;

/// What a write to a /proc control file changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// /proc/braid (`fail`, `revive`, `stall`).
    Braid,
    /// /proc/PID/oom_score_adj of that process.
    OomScoreAdj(u32),
}

/// What an open file refers to.
pub enum Kind {
    /// A tmpfs regular file, directory or symlink (O_PATH).
    Inode(Ino),
    /// The read end of a pipe.
    PipeRead(Arc<Pipe>),
    /// The write end of a pipe.
    PipeWrite(Arc<Pipe>),
    /// The serial console (/dev/console, /dev/tty).
    Tty,
    /// /dev/null.
    Null,
    /// /dev/zero.
    Zero,
    /// /dev/random, /dev/urandom.
    Random,
    /// A disk (/dev/vda): bytes at the file offset, through to the device.
    Block(Arc<crate::block::Disk>),
    /// A file, directory or symlink (O_PATH) of a mounted ext4 file
    /// system: its mount (held: umount is EBUSY while it is open) and
    /// inode number.
    Ext(Arc<super::mount::Mount>, u32),
    /// A /proc file: its content, generated at open.
    Proc(Vec<u8>),
    /// A /proc file that also takes commands (/proc/braid): its content,
    /// generated at open; a write is one command.
    ProcControl(Vec<u8>, Control),
    /// A /proc directory: its entries (ino, d_type, name), generated at open.
    ProcDir(Vec<(u64, u8, Vec<u8>)>),
    /// An io_uring instance (io_uring_setup's fd; mmap it for the rings).
    IoUring(Arc<crate::io_uring::Ring>),
    /// A socket of any family (net::socket).
    Socket(Arc<dyn crate::net::socket::Socket>),
    /// An eventfd counter.
    EventFd(Arc<super::eventfd::EventFd>),
    /// An epoll instance.
    Epoll(Arc<super::epoll::Epoll>),
    /// A timerfd.
    TimerFd(Arc<super::timerfd::TimerFd>),
    /// A signalfd.
    SignalFd(Arc<super::signalfd::SignalFd>),
}

/// An open file description (shared by dup'ed descriptors and across fork).
pub struct OpenFile {
    pub kind: Kind,
    flags: AtomicU32,
    pub pos: Mutex<u64>,
    /// An ext4 directory's position in the crate's terms, valid while
    /// `pos` (the count of entries returned) is the first value.
    pub dir_cursor: Mutex<Option<(u64, super::ext4::DirCursor)>>,
    /// Owner of its OFD and flock locks (`fs::locks`), handed out the
    /// first time it locks anything (0: never did, nothing to release).
    lock_owner: AtomicU64,
    /// Counted in /proc/kobjects (open files, and sockets among them).
    _live: crate::objects::Live,
    _live_socket: Option<crate::objects::Live>,
}

impl OpenFile {
    /// A new open file with status `flags` (O_* bits).
    pub fn new(kind: Kind, flags: u32) -> Arc<OpenFile> {
        match &kind {
            Kind::PipeRead(p) => p.add_reader(),
            Kind::PipeWrite(p) => p.add_writer(),
            Kind::Inode(ino) => {
                let _ = super::with(|fs| fs.retain(*ino));
            }
            Kind::Ext(m, ino) => m.fs.opened(*ino),
            _ => {}
        }
        let socket = matches!(kind, Kind::Socket(_));
        Arc::new(OpenFile {
            kind,
            _live: crate::objects::Live::new(crate::objects::Obj::OpenFile),
            _live_socket: socket
                .then(|| crate::objects::Live::new(crate::objects::Obj::SocketFile)),
            flags: AtomicU32::new(flags & !O_CLOEXEC),
            pos: Mutex::new(0),
            dir_cursor: Mutex::new(None),
            lock_owner: AtomicU64::new(0),
        })
    }

    /// The owner number of this open file description's OFD and flock
    /// locks (allocated on first use).
    pub fn lock_owner(&self) -> u64 {
        let id = self.lock_owner.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        let new = super::locks::new_owner();
        match self
            .lock_owner
            .compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => new,
            Err(other) => other,
        }
    }

    /// Status flags (access mode, O_APPEND, O_NONBLOCK, …).
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// F_SETFL: only O_APPEND and O_NONBLOCK may change.
    pub fn set_flags(&self, f: u32) {
        let keep = self.flags() & !(O_APPEND | O_NONBLOCK);
        self.flags
            .store(keep | (f & (O_APPEND | O_NONBLOCK)), Ordering::Relaxed);
    }

    /// Whether O_NONBLOCK is set.
    pub fn nonblock(&self) -> bool {
        self.flags() & O_NONBLOCK != 0
    }

    /// Readable per the access mode.
    pub fn readable(&self) -> bool {
        self.flags() & O_PATH == 0 && self.flags() & O_ACCMODE != O_WRONLY
    }

    /// Writable per the access mode.
    pub fn writable(&self) -> bool {
        self.flags() & O_PATH == 0 && self.flags() & O_ACCMODE != O_RDONLY
    }

    /// At most how many bytes a read could return now, after blocking as
    /// the read would until there is something: a pipe's buffered bytes
    /// (0 at EOF); `usize::MAX` for other files.
    pub fn readable_now(&self) -> KResult<usize> {
        match &self.kind {
            Kind::PipeRead(p) if self.readable() => p.wait_readable(self.nonblock()),
            _ => Ok(usize::MAX),
        }
    }

    /// Reads at the current offset (advancing it) or from the stream.
    pub fn read(&self, buf: &mut [u8]) -> KResult<usize> {
        self.read_mode(buf, self.nonblock())
    }

    /// [`OpenFile::read`], never blocking if `nonblock` (io_uring tries a
    /// stream this way first, whatever the file's O_NONBLOCK).
    pub fn read_mode(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        match &self.kind {
            Kind::Inode(_) | Kind::Proc(_) | Kind::ProcControl(..) | Kind::Ext(..) => {
                let mut pos = self.pos.lock();
                let n = self.pread(buf, *pos)?;
                *pos += n as u64;
                Ok(n)
            }
            // The request sleeps: no spin lock is held across it (Linux
            // does not serialise a block device's position either).
            Kind::Block(d) => {
                let at = *self.pos.lock();
                let n = d.read_at(at, buf, crate::block::Wait::Sleep)?;
                *self.pos.lock() = at + n as u64;
                Ok(n)
            }
            Kind::PipeRead(p) => p.read(buf, nonblock),
            Kind::PipeWrite(_) => Err(Errno::EBADF),
            Kind::Tty => super::tty::read(buf, nonblock),
            Kind::Null => Ok(0),
            Kind::Zero => {
                buf.fill(0);
                Ok(buf.len())
            }
            Kind::Random => {
                crate::random::fill(buf);
                Ok(buf.len())
            }
            Kind::ProcDir(_) => Err(Errno::EISDIR),
            Kind::IoUring(_) | Kind::Epoll(_) => Err(Errno::EINVAL),
            Kind::Socket(s) => crate::net::socket::read(&**s, buf, nonblock),
            Kind::EventFd(e) => e.read(buf, nonblock),
            Kind::TimerFd(t) => t.read(buf, nonblock),
            Kind::SignalFd(s) => s.read(buf, nonblock),
        }
    }

    /// Reads at `off` without moving the offset.
    pub fn pread(&self, buf: &mut [u8], off: u64) -> KResult<usize> {
        match &self.kind {
            Kind::Inode(ino) => {
                if super::with(|fs| fs.file_type(*ino))? == FileType::Directory {
                    return Err(Errno::EISDIR);
                }
                super::read_inode(*ino, off, buf)
            }
            Kind::Proc(data) | Kind::ProcControl(data, _) => {
                let start = (off as usize).min(data.len());
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            Kind::ProcDir(_) => Err(Errno::EISDIR),
            Kind::Block(d) => d.read_at(off, buf, crate::block::Wait::Sleep),
            Kind::Ext(m, ino) => m.fs.read(*ino, off, buf),
            _ => Err(Errno::ESPIPE),
        }
    }

    /// Writes at the offset (or the end with O_APPEND) or to the stream.
    pub fn write(&self, data: &[u8]) -> KResult<usize> {
        self.write_mode(data, self.nonblock())
    }

    /// [`OpenFile::write`], never blocking if `nonblock`.
    pub fn write_mode(&self, data: &[u8], nonblock: bool) -> KResult<usize> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        match &self.kind {
            Kind::Inode(ino) => {
                let mut pos = self.pos.lock();
                if self.flags() & O_APPEND != 0 {
                    *pos = super::with(|fs| fs.stat(*ino))?.size as u64;
                }
                let len = crate::proc::limits::clip_write(*pos, data.len())?;
                let n = super::with(|fs| fs.write(*ino, *pos, &data[..len]))?;
                *pos += n as u64;
                Ok(n)
            }
            Kind::Block(d) => {
                let at = *self.pos.lock();
                let n = d.write_at(at, data, crate::block::Wait::Sleep)?;
                *self.pos.lock() = at + n as u64;
                self.sync_written()?;
                Ok(n)
            }
            Kind::Ext(m, ino) => {
                let mut pos = self.pos.lock();
                if self.flags() & O_APPEND != 0 {
                    *pos = m.fs.stat(*ino)?.size as u64;
                }
                let len = crate::proc::limits::clip_write(*pos, data.len())?;
                let n = m.fs.write(*ino, *pos, &data[..len])?;
                *pos += n as u64;
                drop(pos);
                self.sync_written()?;
                Ok(n)
            }
            Kind::PipeWrite(p) => p.write(data, nonblock),
            Kind::PipeRead(_) => Err(Errno::EBADF),
            Kind::Tty => super::tty::write(data),
            Kind::Null | Kind::Zero | Kind::Random => Ok(data.len()),
            Kind::ProcControl(_, Control::Braid) => {
                crate::proc::braid::control(data)?;
                Ok(data.len())
            }
            Kind::ProcControl(_, Control::OomScoreAdj(pid)) => {
                crate::fs::procfs::set_oom_score_adj(*pid, data)?;
                Ok(data.len())
            }
            Kind::Proc(_) | Kind::ProcDir(_) => Err(Errno::EACCES),
            Kind::IoUring(_) | Kind::Epoll(_) | Kind::TimerFd(_) | Kind::SignalFd(_) => {
                Err(Errno::EINVAL)
            }
            Kind::Socket(s) => crate::net::socket::write(&**s, data, nonblock),
            Kind::EventFd(e) => e.write(data, nonblock),
        }
    }

    /// Writes at `off` without moving the offset.
    pub fn pwrite(&self, data: &[u8], off: u64) -> KResult<usize> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        match &self.kind {
            Kind::Inode(ino) => {
                let len = crate::proc::limits::clip_write(off, data.len())?;
                super::with(|fs| fs.write(*ino, off, &data[..len]))
            }
            Kind::Block(d) => {
                let n = d.write_at(off, data, crate::block::Wait::Sleep)?;
                self.sync_written().map(|()| n)
            }
            Kind::Ext(m, ino) => {
                let len = crate::proc::limits::clip_write(off, data.len())?;
                let n = m.fs.write(*ino, off, &data[..len])?;
                self.sync_written().map(|()| n)
            }
            _ => Err(Errno::ESPIPE),
        }
    }

    /// After a write to a disk or an ext4 file opened with O_DSYNC or
    /// O_SYNC: what it wrote is made durable before it returns, as by
    /// fdatasync or fsync (Linux's generic_write_sync); a failure is the
    /// write's error.
    fn sync_written(&self) -> KResult<()> {
        match self.write_sync(0) {
            Some(datasync) => self.sync(datasync),
            None => Ok(()),
        }
    }

    /// After a write that asked for durability itself (`call`: O_DSYNC
    /// and O_SYNC_ONLY bits, from io_uring's RWF_DSYNC/RWF_SYNC): the
    /// sync that the call adds to the one the write already made for the
    /// descriptor's own flags ([`OpenFile::sync_written`]), if any.
    pub fn sync_for_call(&self, call: u32) -> KResult<()> {
        let done = self.write_sync(0);
        match self.write_sync(call) {
            // Full when only a data sync was done, or none at all.
            Some(datasync) if done.is_none() || (done == Some(true) && !datasync) => {
                self.sync(datasync)
            }
            _ => Ok(()),
        }
    }

    /// The one rule for a write's durability: the descriptor's O_DSYNC /
    /// O_SYNC with the call's `call` flags; None for no sync, else
    /// Some(datasync). Only disks and ext4 files take one (the others
    /// have nowhere to sync to, and ignore the flags).
    fn write_sync(&self, call: u32) -> Option<bool> {
        let f = self.flags() | call;
        let syncs = matches!(self.kind, Kind::Block(_) | Kind::Ext(..));
        (syncs && f & O_DSYNC != 0).then_some(f & O_SYNC_ONLY == 0)
    }

    /// fsync(2), fdatasync(2) with `datasync`: a disk is flushed
    /// (VIRTIO_BLK_F_FLUSH; its writes are already on the device, nothing
    /// is cached above it); an ext4 file's dirty pages are written back
    /// and the journal committed (not for `datasync` when it only holds
    /// times: [`super::ext4::Ext4Mount::fsync`]); tmpfs and /proc files
    /// have nowhere to go; EINVAL for what cannot be synced (pipes,
    /// sockets, the tty, character devices), as on Linux.
    pub fn sync(&self, datasync: bool) -> KResult<()> {
        match &self.kind {
            Kind::Block(d) => d.flush(crate::block::Wait::Sleep),
            Kind::Inode(_) | Kind::Proc(_) | Kind::ProcControl(..) | Kind::ProcDir(_) => Ok(()),
            Kind::Ext(m, n) => m.fs.fsync(*n, datasync),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Ready events for poll/select/epoll: each kind's one notion of
    /// readiness.
    pub fn poll(&self) -> u16 {
        match &self.kind {
            Kind::PipeRead(p) => p.poll(true),
            Kind::PipeWrite(p) => p.poll(false),
            Kind::Tty => super::tty::poll(),
            Kind::IoUring(r) => r.poll_events(),
            Kind::Socket(s) => s.poll(),
            Kind::EventFd(e) => e.poll(),
            Kind::Epoll(e) => e.poll(),
            Kind::TimerFd(t) => t.poll(),
            Kind::SignalFd(s) => s.poll(),
            _ => POLLIN | POLLOUT,
        }
    }

    /// A number that changes whenever [`OpenFile::poll`] may have changed
    /// (edge-triggered epoll reports a file again only then). Kinds
    /// without their own count use the pollers' queue's, which every
    /// state change of a pipe, tty or socket bumps; files that are always
    /// ready never change.
    pub fn poll_gen(&self) -> u64 {
        match &self.kind {
            Kind::PipeRead(p) | Kind::PipeWrite(p) => p.poll_gen(),
            Kind::Socket(s) => s.poll_gen(),
            Kind::EventFd(e) => e.poll_gen(),
            Kind::TimerFd(t) => t.poll_gen(),
            Kind::Tty | Kind::IoUring(_) | Kind::Epoll(_) | Kind::SignalFd(_) => {
                super::POLL_WQ.wakes()
            }
            _ => 0,
        }
    }

    /// The socket, for a socket descriptor.
    pub fn socket(&self) -> Option<&Arc<dyn crate::net::socket::Socket>> {
        match &self.kind {
            Kind::Socket(s) => Some(s),
            _ => None,
        }
    }

    /// The io_uring instance, for a ring fd.
    pub fn io_uring(&self) -> Option<&Arc<crate::io_uring::Ring>> {
        match &self.kind {
            Kind::IoUring(r) => Some(r),
            _ => None,
        }
    }

    /// A stream (pipe, tty, device): offsets mean nothing.
    pub fn is_stream(&self) -> bool {
        !matches!(
            self.kind,
            Kind::Inode(_)
                | Kind::Proc(_)
                | Kind::ProcControl(..)
                | Kind::ProcDir(_)
                | Kind::Block(_)
                | Kind::Ext(..)
        )
    }

    /// The inode, for files that have one.
    pub fn ino(&self) -> Option<Ino> {
        match self.kind {
            Kind::Inode(i) => Some(i),
            _ => None,
        }
    }

    /// The key of its advisory locks (`fs::locks`): tmpfs and ext4 files.
    pub fn lock_key(&self) -> Option<super::locks::LockKey> {
        match &self.kind {
            Kind::Inode(i) => Some((0, *i)),
            Kind::Ext(m, i) => Some((1 << 32 | u64::from(m.fs.dev), u64::from(*i))),
            _ => None,
        }
    }

    /// The size of the file behind it (st_size), for SEEK_END.
    pub fn size(&self) -> KResult<u64> {
        match &self.kind {
            Kind::Inode(i) => Ok(super::with(|fs| fs.stat(*i))?.size as u64),
            Kind::Ext(m, i) => Ok(m.fs.stat(*i)?.size as u64),
            _ => Err(Errno::EINVAL),
        }
    }

    /// A new open file description for the object behind this one, as
    /// open(2) of `/proc/PID/fd/N` (or `/dev/fd/N`) makes: its own offset
    /// and status `flags`. A pipe opened for reading gives its read end,
    /// for writing its write end (as a FIFO would). `ENXIO` for what Linux
    /// cannot reopen either (anonymous inodes such as io_uring).
    pub fn reopen(&self, flags: u32) -> KResult<Arc<OpenFile>> {
        let kind = match &self.kind {
            Kind::Inode(i) => Kind::Inode(*i),
            Kind::PipeRead(p) | Kind::PipeWrite(p) => match flags & O_ACCMODE {
                O_RDONLY => Kind::PipeRead(p.clone()),
                O_WRONLY => Kind::PipeWrite(p.clone()),
                // Linux opens a FIFO O_RDWR as both ends; one end here.
                _ if matches!(self.kind, Kind::PipeRead(_)) => Kind::PipeRead(p.clone()),
                _ => Kind::PipeWrite(p.clone()),
            },
            Kind::Tty => Kind::Tty,
            Kind::Null => Kind::Null,
            Kind::Zero => Kind::Zero,
            Kind::Random => Kind::Random,
            Kind::Block(d) => Kind::Block(d.clone()),
            Kind::Ext(m, i) => Kind::Ext(m.clone(), *i),
            Kind::Proc(b) => Kind::Proc(b.clone()),
            Kind::ProcControl(b, c) => Kind::ProcControl(b.clone(), *c),
            Kind::ProcDir(e) => Kind::ProcDir(e.clone()),
            Kind::IoUring(_)
            | Kind::Socket(_)
            | Kind::EventFd(_)
            | Kind::Epoll(_)
            | Kind::TimerFd(_)
            | Kind::SignalFd(_) => return Err(Errno::ENXIO),
        };
        Ok(OpenFile::new(kind, flags))
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        match &self.kind {
            Kind::PipeRead(p) => p.drop_reader(),
            Kind::PipeWrite(p) => p.drop_writer(),
            Kind::Inode(ino) => {
                let owner = self.lock_owner.load(Ordering::Acquire);
                if owner != 0 {
                    super::locks::release_ofd(owner, (0, *ino));
                }
                let _ = super::with(|fs| fs.release(*ino));
            }
            Kind::Socket(s) => s.release(),
            Kind::Ext(m, ino) => {
                let owner = self.lock_owner.load(Ordering::Acquire);
                if let (true, Some(key)) = (owner != 0, self.lock_key()) {
                    super::locks::release_ofd(owner, key);
                }
                m.fs.closed(*ino)
            }
            _ => {}
        }
    }
}
