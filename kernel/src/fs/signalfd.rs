//! signalfd(2): a file that reads the signals of its mask pending for the
//! reading thread (its own or its process's shared set) as 128-byte
//! `struct signalfd_siginfo` records, taking them as sigwaitinfo does.
//! The program blocks the mask with sigprocmask, or the signals are
//! delivered before a read sees them. Blocked readers and
//! poll/select/epoll sleep on the pollers' queue; a process that has read
//! or polled a signalfd once is marked, and from then on every signal
//! made pending for it wakes that queue (`proc::signal::send`): as
//! Linux's per-process signalfd queue, signals to other processes wake
//! nobody.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use super::file::POLLIN;
use super::{POLL_DEADLINES, POLL_WQ};
use crate::proc::signal::{self, SigInfo, UNBLOCKABLE};
use crate::proc::sigwait;

/// sizeof(struct signalfd_siginfo).
pub const RECORD: usize = 128;

pub struct SignalFd {
    mask: AtomicU64,
}

impl SignalFd {
    pub fn new(mask: u64) -> Arc<SignalFd> {
        Arc::new(SignalFd {
            mask: AtomicU64::new(mask & !UNBLOCKABLE),
        })
    }

    /// signalfd(fd, mask, …) on an existing signalfd replaces its mask
    /// (SIGKILL and SIGSTOP are silently left out, as on Linux).
    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask & !UNBLOCKABLE, Ordering::Release);
        POLL_WQ.wake_all();
    }

    fn mask(&self) -> u64 {
        self.mask.load(Ordering::Acquire)
    }

    /// read(2): as many records as fit in `buf` (at least one: EINVAL for
    /// a buffer under 128 bytes), blocking until a signal of the mask is
    /// pending (EAGAIN if non-blocking).
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> KResult<usize> {
        if buf.len() < RECORD {
            return Err(Errno::EINVAL);
        }
        signal::note_signalfd_use();
        loop {
            let since = POLL_WQ.wakes();
            let mut n = 0;
            while n + RECORD <= buf.len() {
                let Some((sig, info)) = sigwait::take_current(self.mask()) else {
                    break;
                };
                buf[n..n + RECORD].copy_from_slice(&record(sig, info));
                n += RECORD;
            }
            if n > 0 {
                return Ok(n);
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            POLL_WQ.wait_for_wake_until(since, None, &POLL_DEADLINES)?;
        }
    }

    /// Readable while a signal of the mask is pending for the polling
    /// thread (as Linux, readiness depends on who asks).
    pub fn poll(&self) -> u16 {
        signal::note_signalfd_use();
        if sigwait::pending_current() & self.mask() != 0 {
            POLLIN
        } else {
            0
        }
    }
}

/// si_code values whose siginfo carries more than pid and uid.
const SI_QUEUE: i32 = -1;
const SI_TIMER: i32 = -2;
const SI_MESGQ: i32 = -3;
const SIGCHLD: u32 = 17;

/// A `struct signalfd_siginfo` (uapi linux/signalfd.h): the fields of
/// `info` placed as Linux's signalfd_copyinfo places them for each
/// siginfo layout.
pub fn record(sig: u32, info: SigInfo) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &sig.to_le_bytes()); // ssi_signo
    put(8, &info.code.to_le_bytes()); // ssi_code
    if info.code == SI_TIMER {
        put(24, &info.pid.to_le_bytes()); // ssi_tid (timer id)
        put(32, &info.uid.to_le_bytes()); // ssi_overrun
        put(44, &(info.value as u32).to_le_bytes()); // ssi_int
        put(48, &info.value.to_le_bytes()); // ssi_ptr
        return b;
    }
    put(12, &info.pid.to_le_bytes()); // ssi_pid
    put(16, &info.uid.to_le_bytes()); // ssi_uid
    if sig == SIGCHLD && info.code > 0 {
        put(40, &(info.value as u32).to_le_bytes()); // ssi_status
    } else if matches!(info.code, SI_QUEUE | SI_MESGQ) || sig >= signal::SIGRTMIN {
        put(44, &(info.value as u32).to_le_bytes()); // ssi_int
        put(48, &info.value.to_le_bytes()); // ssi_ptr
    }
    b
}
