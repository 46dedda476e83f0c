//! eventfd(2): a 64-bit counter as a file. A write adds (blocking while
//! the sum would pass 2^64 - 2); a read takes the whole count, or 1 with
//! EFD_SEMAPHORE (blocking while it is 0).

use abi::{Errno, KResult};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use super::file::{POLLIN, POLLOUT};
use crate::proc::sched::WaitQueue;

pub const EFD_SEMAPHORE: u32 = 1;
/// The largest count (2^64 - 2).
const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    wq: WaitQueue,
    gen: AtomicU64,
    /// Epoll instances watching it.
    watchers: Arc<super::epoll::Watchers>,
}

impl EventFd {
    pub fn new(init: u64, semaphore: bool) -> Arc<EventFd> {
        Arc::new(EventFd {
            count: Mutex::new(init),
            semaphore,
            wq: WaitQueue::new(),
            gen: AtomicU64::new(0),
            watchers: super::epoll::Watchers::new(),
        })
    }

    fn notify(&self) {
        self.gen.fetch_add(1, Ordering::Release);
        self.wq.wake_all();
        self.watchers.wake();
        super::POLL_WQ.wake_all();
    }

    /// The epoll instances watching it (they sleep on their own queues).
    pub fn watchers(&self) -> Arc<super::epoll::Watchers> {
        self.watchers.clone()
    }

    /// read(2): 8 bytes (EINVAL for a smaller buffer).
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = self.wq.wait_until(|| {
            let mut c = self.count.lock();
            if *c == 0 {
                return nonblock.then_some(Err(Errno::EAGAIN));
            }
            let v = if self.semaphore { 1 } else { *c };
            *c -= v;
            Some(Ok(v))
        })??;
        buf[..8].copy_from_slice(&v.to_le_bytes());
        self.notify();
        Ok(8)
    }

    /// write(2): adds an 8-byte value (EINVAL for u64::MAX or fewer bytes).
    pub fn write(&self, data: &[u8], nonblock: bool) -> KResult<usize> {
        let v = u64::from_le_bytes(
            data.get(..8)
                .ok_or(Errno::EINVAL)?
                .try_into()
                .map_err(|_| Errno::EINVAL)?,
        );
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        self.wq.wait_until(|| {
            let mut c = self.count.lock();
            if MAX - *c < v {
                return nonblock.then_some(Err(Errno::EAGAIN));
            }
            *c += v;
            Some(Ok(()))
        })??;
        self.notify();
        Ok(8)
    }

    /// Readable while the count is not 0, writable while 1 more fits.
    pub fn poll(&self) -> u16 {
        let c = *self.count.lock();
        let mut ev = 0;
        if c > 0 {
            ev |= POLLIN;
        }
        if c < MAX {
            ev |= POLLOUT;
        }
        ev
    }

    pub fn poll_gen(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }
}
