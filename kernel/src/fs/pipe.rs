//! Pipes: a bounded buffer (vfs::pipe) with blocking, POSIX atomicity for
//! writes up to PIPE_BUF, EOF when the writers are gone and EPIPE/SIGPIPE
//! when the readers are.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use spin::Mutex;
use vfs::pipe::{PipeBuffer, PIPE_BUF};

use crate::proc::sched::WaitQueue;

/// One pipe, shared by its ends.
pub struct Pipe {
    buf: Mutex<PipeBuffer>,
    /// Readers and writers both wait here; each re-checks its condition.
    wq: WaitQueue,
    /// Bumped at every change of state (edge-triggered epoll).
    gen: core::sync::atomic::AtomicU64,
    /// Epoll instances watching either end.
    watchers: Arc<super::epoll::Watchers>,
    _live: crate::objects::Live,
}

impl Pipe {
    /// A new pipe with no ends open.
    pub fn new() -> Arc<Pipe> {
        Arc::new(Pipe {
            buf: Mutex::new(PipeBuffer::new()),
            wq: WaitQueue::new(),
            gen: core::sync::atomic::AtomicU64::new(0),
            watchers: super::epoll::Watchers::new(),
            _live: crate::objects::Live::new(crate::objects::Obj::Pipe),
        })
    }

    pub(super) fn add_reader(&self) {
        self.buf.lock().add_reader();
    }

    pub(super) fn add_writer(&self) {
        self.buf.lock().add_writer();
    }

    pub(super) fn drop_reader(&self) {
        self.buf.lock().drop_reader();
        self.notify();
    }

    pub(super) fn drop_writer(&self) {
        self.buf.lock().drop_writer();
        self.notify();
    }

    /// Blocks until there is something to read: how many bytes are
    /// buffered, 0 at EOF. A reader sizes its kernel buffer with this
    /// rather than with the length it asked for.
    pub fn wait_readable(&self, nonblock: bool) -> KResult<usize> {
        self.when_readable(nonblock, |b| b.len())
    }

    /// Reads what is there (≥ 1 byte), 0 at EOF; blocks while empty.
    pub fn read(&self, out: &mut [u8], nonblock: bool) -> KResult<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let n = self.when_readable(nonblock, |b| b.read(out))?;
        self.notify();
        Ok(n)
    }

    /// Blocks until the buffer holds bytes, then returns `take` of it (in
    /// the same critical section); 0 at EOF, EAGAIN instead of blocking
    /// with `nonblock`.
    fn when_readable(
        &self,
        nonblock: bool,
        mut take: impl FnMut(&mut PipeBuffer) -> usize,
    ) -> KResult<usize> {
        self.wq.wait_until_woken(|| {
            let mut b = self.buf.lock();
            if !b.is_empty() {
                Some(Ok(take(&mut b)))
            } else if b.writers() == 0 {
                Some(Ok(0))
            } else if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            }
        })?
    }

    /// Writes all of `data` (blocking), atomically if ≤ PIPE_BUF.
    pub fn write(&self, data: &[u8], nonblock: bool) -> KResult<usize> {
        let atomic = data.len() <= PIPE_BUF;
        let mut done = 0;
        while done < data.len() || data.is_empty() {
            let r = self.wq.wait_until_woken(|| {
                let mut b = self.buf.lock();
                if b.readers() == 0 {
                    return Some(Err(Errno::EPIPE));
                }
                let rest = &data[done..];
                let fits = if atomic {
                    b.space() >= rest.len()
                } else {
                    b.space() > 0
                };
                if fits {
                    Some(Ok(b.write(rest)))
                } else if nonblock {
                    Some(if done > 0 { Ok(0) } else { Err(Errno::EAGAIN) })
                } else {
                    None
                }
            });
            match r {
                Ok(Ok(0)) if nonblock => break,
                Ok(Ok(n)) => {
                    done += n;
                    self.notify();
                    if data.is_empty() {
                        break;
                    }
                }
                Ok(Err(Errno::EPIPE)) | Err(Errno::EPIPE) => {
                    crate::proc::signal::send(
                        &crate::proc::sched::current(),
                        crate::proc::signal::SIGPIPE,
                    );
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::EPIPE)
                    };
                }
                Ok(Err(e)) | Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            }
        }
        Ok(done)
    }

    /// poll(2) events for a reader or a writer.
    pub fn poll(&self, reader: bool) -> u16 {
        self.buf.lock().poll(reader)
    }

    /// Changes whenever the pipe's poll events may have.
    pub fn poll_gen(&self) -> u64 {
        self.gen.load(core::sync::atomic::Ordering::Acquire)
    }

    /// Wakes the pipe's waiters and poll/select sleepers.
    fn notify(&self) {
        self.gen.fetch_add(1, core::sync::atomic::Ordering::Release);
        self.wq.wake_all();
        self.watchers.wake();
        super::POLL_WQ.wake_all();
    }

    /// The epoll instances watching it (they sleep on their own queues).
    pub fn watchers(&self) -> Arc<super::epoll::Watchers> {
        self.watchers.clone()
    }
}
