//! A thread's CPU time, to the nanosecond: what CLOCK_THREAD_CPUTIME_ID,
//! CLOCK_PROCESS_CPUTIME_ID and getrusage report (Linux reports its
//! scheduler's `sum_exec_runtime` there too, not timer ticks).
//!
//! Only the CPU that runs the thread writes it: [`CpuTime::on`] when a
//! switch makes the thread current, [`CpuTime::off`] when one takes it
//! off. Anyone reads it ([`CpuTime::read`]: a thread of the same process
//! on another CPU, /proc), through a sequence count, so a read never
//! counts a stint twice or misses one that was just added.

use core::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct CpuTime {
    /// Odd while `off` updates the two fields below.
    seq: AtomicU64,
    /// ns of CPU time of the stints that have ended.
    total: AtomicU64,
    /// When the current stint began (0: not on a CPU).
    since: AtomicU64,
}

impl CpuTime {
    /// The thread starts running at `now`.
    #[inline]
    pub fn on(&self, now: u64) {
        self.since.store(now.max(1), Ordering::Release);
    }

    /// The thread stops running at `now`.
    #[inline]
    pub fn off(&self, now: u64) {
        let since = self.since.load(Ordering::Relaxed);
        if since == 0 {
            return;
        }
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s + 1, Ordering::Relaxed);
        core::sync::atomic::fence(Ordering::Release);
        self.total.store(
            self.total.load(Ordering::Relaxed) + now.saturating_sub(since),
            Ordering::Relaxed,
        );
        self.since.store(0, Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
    }

    /// CPU time as of `now`, the running stint included.
    pub fn read(&self, now: u64) -> u64 {
        loop {
            let s = self.seq.load(Ordering::Acquire);
            if s % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            let total = self.total.load(Ordering::Relaxed);
            let since = self.since.load(Ordering::Relaxed);
            core::sync::atomic::fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s {
                let running = if since == 0 {
                    0
                } else {
                    now.saturating_sub(since)
                };
                return total + running;
            }
        }
    }
}

/// The CPU time of thread `p` (CLOCK_THREAD_CPUTIME_ID).
pub fn thread_ns(p: &super::Process) -> u64 {
    p.cpu_time.read(hal::time::now_ns())
}

/// The CPU time of `p`'s process: its threads' and its exited threads'
/// (CLOCK_PROCESS_CPUTIME_ID).
pub fn process_ns(p: &super::Process) -> u64 {
    let now = hal::time::now_ns();
    let live: u64 = p
        .group
        .threads
        .lock()
        .iter()
        .map(|t| t.cpu_time.read(now))
        .sum();
    live + p.group.exited_cpu_ns.load(Ordering::Relaxed)
}
