//! The buffer behind a pipe or FIFO (pipe(7)): a bounded byte queue plus the
//! counts of open read and write ends, which decide end-of-file and
//! `EPIPE`. Blocking is the kernel's business: the `try_*` calls return
//! `EAGAIN` where a blocking caller would sleep, and the kernel retries
//! after the other end makes progress.

use alloc::collections::VecDeque;

/// Buffer capacity an empty pipe keeps (bytes).
const KEEP_WHEN_EMPTY: usize = 4096;

use abi::{Errno, KResult};

use crate::lx;

/// Default capacity, as on Linux (16 pages).
pub const PIPE_CAPACITY: usize = 65536;
/// Writes of at most this many bytes are atomic (`PIPE_BUF`, pipe(7)).
pub const PIPE_BUF: usize = lx::PIPE_BUF as usize;

/// A pipe's data and its open ends.
#[derive(Debug)]
pub struct PipeBuffer {
    data: VecDeque<u8>,
    capacity: usize,
    readers: u32,
    writers: u32,
}

impl Default for PipeBuffer {
    fn default() -> Self {
        PipeBuffer::new()
    }
}

impl PipeBuffer {
    /// An empty pipe of [`PIPE_CAPACITY`] with no ends open yet. Memory is
    /// allocated as data arrives, so idle pipes cost little.
    pub fn new() -> PipeBuffer {
        PipeBuffer::with_capacity(PIPE_CAPACITY)
    }

    /// An empty pipe holding at most `capacity` bytes (at least
    /// [`PIPE_BUF`], so atomic writes can always eventually proceed).
    pub fn with_capacity(capacity: usize) -> PipeBuffer {
        PipeBuffer {
            data: VecDeque::new(),
            capacity: capacity.max(PIPE_BUF),
            readers: 0,
            writers: 0,
        }
    }

    /// Bytes buffered (what `FIONREAD` reports).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes that can be written now.
    pub fn space(&self) -> usize {
        self.capacity - self.data.len()
    }

    /// The capacity (`F_GETPIPE_SZ`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity (`F_SETPIPE_SZ`); `EBUSY` if more is buffered
    /// than would fit, as on Linux.
    pub fn set_capacity(&mut self, capacity: usize) -> KResult<()> {
        let capacity = capacity.max(PIPE_BUF);
        if capacity < self.data.len() {
            return Err(Errno::EBUSY);
        }
        self.capacity = capacity;
        Ok(())
    }

    /// Copies in as much of `src` as fits; returns how much.
    pub fn write(&mut self, src: &[u8]) -> usize {
        let n = src.len().min(self.space());
        // Growth is bounded by the capacity, but the kernel heap may still be
        // short: take what we can get rather than panic.
        if self.data.try_reserve(n).is_err() {
            return 0;
        }
        self.data.extend(&src[..n]);
        n
    }

    /// Moves up to `dst.len()` bytes out; returns how many.
    pub fn read(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.data.len());
        let (a, b) = self.data.as_slices();
        let from_a = n.min(a.len());
        dst[..from_a].copy_from_slice(&a[..from_a]);
        dst[from_a..n].copy_from_slice(&b[..n - from_a]);
        self.data.drain(..n);
        if self.data.is_empty() && self.data.capacity() > KEEP_WHEN_EMPTY {
            // An emptied pipe returns a large buffer; a small one stays, so
            // a byte passed back and forth costs no allocation.
            self.data = VecDeque::new();
        }
        n
    }

    /// Whether a write of `n` bytes may proceed now under the `PIPE_BUF`
    /// rule: writes of at most `PIPE_BUF` go in whole or not at all; larger
    /// ones may go in part as soon as any space exists.
    pub fn can_write_atomically(&self, n: usize) -> bool {
        if n <= PIPE_BUF {
            self.space() >= n
        } else {
            self.space() > 0
        }
    }

    /// read(2) on the pipe: `Ok(n > 0)` with data, `Ok(0)` at end of file
    /// (empty, no writers) or for an empty `dst`, `EAGAIN` when empty while
    /// a writer remains (a blocking reader sleeps and retries).
    pub fn try_read(&mut self, dst: &mut [u8]) -> KResult<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        if self.data.is_empty() {
            return if self.writers == 0 {
                Ok(0)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        Ok(self.read(dst))
    }

    /// write(2) on the pipe, honouring `PIPE_BUF` atomicity: `EPIPE` with no
    /// reader (the kernel also raises `SIGPIPE`), `EAGAIN` when nothing may
    /// be written now, else the count written. A blocking writer of more
    /// than `PIPE_BUF` bytes loops on the remainder.
    pub fn try_write(&mut self, src: &[u8]) -> KResult<usize> {
        if self.readers == 0 {
            return Err(Errno::EPIPE);
        }
        if src.is_empty() {
            return Ok(0);
        }
        if !self.can_write_atomically(src.len()) {
            return Err(Errno::EAGAIN);
        }
        match self.write(src) {
            0 => Err(Errno::EAGAIN),
            n => Ok(n),
        }
    }

    /// The poll(2) events ready now, from `POLLIN`, `POLLOUT`, `POLLHUP`
    /// (no writer left) and `POLLERR` (no reader left). Which ones apply to
    /// a descriptor depends on its end; the kernel masks with `for_reader`.
    pub fn poll(&self, for_reader: bool) -> u16 {
        let mut ev = 0;
        if for_reader {
            if !self.data.is_empty() {
                ev |= lx::POLLIN | lx::POLLRDNORM;
            }
            if self.writers == 0 {
                ev |= lx::POLLHUP;
            }
        } else {
            // Linux reports writable once a PIPE_BUF-sized write would fit.
            if self.space() >= PIPE_BUF {
                ev |= lx::POLLOUT | lx::POLLWRNORM;
            }
            if self.readers == 0 {
                ev |= lx::POLLERR;
            }
        }
        ev as u16
    }

    /// Open read ends.
    pub fn readers(&self) -> u32 {
        self.readers
    }

    /// Open write ends.
    pub fn writers(&self) -> u32 {
        self.writers
    }

    /// A read end was opened (pipe(2), open of a FIFO, dup, fork).
    pub fn add_reader(&mut self) {
        self.readers += 1;
    }

    /// A read end was closed; returns how many remain.
    pub fn drop_reader(&mut self) -> u32 {
        self.readers = self.readers.saturating_sub(1);
        self.readers
    }

    /// A write end was opened.
    pub fn add_writer(&mut self) {
        self.writers += 1;
    }

    /// A write end was closed; returns how many remain.
    pub fn drop_writer(&mut self) -> u32 {
        self.writers = self.writers.saturating_sub(1);
        self.writers
    }
}
