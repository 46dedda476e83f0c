//! timerfd(2): a timer as a file. Expirations are counted from the clock
//! when someone looks (read, poll, epoll): nothing runs at expiry. A
//! reader or poller that waits notes the next expiry in the pollers'
//! deadlines (`POLL_DEADLINES`), so the tick wakes it then. Deadlines
//! are monotonic; an absolute time on a REALTIME clock is converted when
//! it is set.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use spin::Mutex;

use super::file::POLLIN;
use super::{POLL_DEADLINES, POLL_WQ};

pub const TFD_TIMER_ABSTIME: u32 = 1;

#[derive(Clone, Copy, Default)]
struct State {
    /// The next expiry (ns, monotonic), None while disarmed.
    next: Option<u64>,
    /// The period (0: one shot).
    interval: u64,
    /// Expirations counted and not read yet.
    ticks: u64,
}

impl State {
    /// Counts the expirations up to `now`.
    fn advance(&mut self, now: u64) {
        let Some(next) = self.next else { return };
        if now < next {
            return;
        }
        match (now - next).checked_div(self.interval) {
            None => {
                self.ticks += 1;
                self.next = None;
            }
            Some(k) => {
                let n = k + 1;
                self.ticks = self.ticks.saturating_add(n);
                self.next = next.checked_add(n.saturating_mul(self.interval));
            }
        }
    }
}

pub struct TimerFd {
    /// The clock absolute settings are read on.
    clock: u64,
    st: Mutex<State>,
    gen: core::sync::atomic::AtomicU64,
}

impl TimerFd {
    pub fn new(clock: u64) -> Arc<TimerFd> {
        Arc::new(TimerFd {
            clock,
            st: Mutex::new(State::default()),
            gen: core::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Expirations counted now; notes the next expiry for the tick.
    fn look(&self) -> u64 {
        let mut s = self.st.lock();
        let before = s.ticks;
        s.advance(hal::time::now_ns());
        if s.ticks != before {
            self.gen.fetch_add(1, core::sync::atomic::Ordering::Release);
        }
        if let Some(n) = s.next {
            POLL_DEADLINES.note(n);
        }
        s.ticks
    }

    /// read(2): the expirations since the last read (8 bytes), blocking
    /// until there is one (EAGAIN if non-blocking).
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        loop {
            let since = POLL_WQ.wakes();
            if self.look() > 0 {
                let mut s = self.st.lock();
                let n = core::mem::take(&mut s.ticks);
                if n > 0 {
                    buf[..8].copy_from_slice(&n.to_le_bytes());
                    return Ok(8);
                }
                continue;
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let next = self.st.lock().next;
            POLL_WQ.wait_for_wake_until(since, next, &POLL_DEADLINES)?;
        }
    }

    /// Readable once it has expired.
    pub fn poll(&self) -> u16 {
        if self.look() > 0 {
            POLLIN
        } else {
            0
        }
    }

    pub fn poll_gen(&self) -> u64 {
        self.look();
        self.gen.load(core::sync::atomic::Ordering::Acquire)
    }

    /// timerfd_settime: arms (value ns from now, or at `value` with
    /// ABSTIME) or disarms (0); returns the old setting as gettime does.
    pub fn set(&self, flags: u32, value: u64, interval: u64) -> (u64, u64) {
        let now = hal::time::now_ns();
        let old = self.get();
        let mut s = self.st.lock();
        s.ticks = 0;
        s.interval = interval;
        s.next = match value {
            0 => None,
            v if flags & TFD_TIMER_ABSTIME != 0 => {
                Some(crate::clock::abs_to_monotonic(self.clock, v).max(1))
            }
            v => Some(now.saturating_add(v)),
        };
        drop(s);
        self.gen.fetch_add(1, core::sync::atomic::Ordering::Release);
        POLL_WQ.wake_all();
        old
    }

    /// timerfd_gettime: (time to the next expiry, interval), ns.
    pub fn get(&self) -> (u64, u64) {
        let now = hal::time::now_ns();
        let mut s = self.st.lock();
        s.advance(now);
        (
            s.next.map_or(0, |n| n.saturating_sub(now).max(1)),
            s.interval,
        )
    }
}
