//! The page the workers share with the parent (MAP_SHARED, mapped before
//! fork): per worker a progress counter, its counters and a ring of its
//! last calls, so the parent can report a worker that hangs or dies with
//! the calls that led there.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub const RING: usize = 32;
pub const CANARY: u64 = 0x5253_4546_555a_5a00;
pub const MAX_WORKERS: usize = 16;
/// The return slot of a call still in the kernel.
const NO_RETURN: u64 = i64::MIN as u64;

/// One logged call: seq, nr, six args, return (or -errno).
#[repr(C)]
pub struct Entry(pub [AtomicU64; 9]);

#[repr(C)]
pub struct Slot {
    /// CANARY ^ index, set before the fork and checked at the end: the
    /// workers never write it, so anything else there means a write that
    /// reached this page from elsewhere (a kernel copy to the wrong page).
    pub canary: AtomicU64,
    pub pid: AtomicU64,
    pub progress: AtomicU64,
    pub seed: AtomicU64,
    /// ok, failed, EFAULT, ENOSYS, EINTR, churn forks, signals sent.
    pub stats: [AtomicU64; 7],
    pub ring: [Entry; RING],
}

#[repr(C)]
pub struct Shared {
    pub slots: [Slot; MAX_WORKERS],
}

impl Shared {
    /// Maps the zeroed shared area (all-zero atomics are valid).
    pub fn map() -> &'static Shared {
        let len = std::mem::size_of::<Shared>();
        // SAFETY: a fresh anonymous mapping, checked for failure; zeroed
        // memory is a valid `Shared` (only atomics); it is never unmapped,
        // so 'static holds.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert!(p != libc::MAP_FAILED, "mmap shared");
            let s = &*(p as *const Shared);
            for (i, slot) in s.slots.iter().enumerate() {
                slot.canary.store(CANARY ^ i as u64, Relaxed);
            }
            s
        }
    }
}

impl Shared {
    /// The slots whose canary was overwritten.
    pub fn trampled(&self) -> Vec<usize> {
        (0..MAX_WORKERS)
            .filter(|&i| self.slots[i].canary.load(Relaxed) != CANARY ^ i as u64)
            .collect()
    }
}

impl Slot {
    pub fn log(&self, seq: u64, nr: i64, args: &[u64; 6]) {
        let e = &self.ring[seq as usize % RING].0;
        e[0].store(seq, Relaxed);
        e[1].store(nr as u64, Relaxed);
        for (i, a) in args.iter().enumerate() {
            e[2 + i].store(*a, Relaxed);
        }
        e[8].store(NO_RETURN, Relaxed);
    }

    pub fn ret(&self, seq: u64, r: i64) {
        self.ring[seq as usize % RING].0[8].store(r as u64, Relaxed);
        self.progress.store(seq + 1, Relaxed);
    }

    /// The last `n` calls, oldest first, formatted.
    pub fn last_calls(&self, n: usize) -> Vec<String> {
        let done = self.progress.load(Relaxed);
        let mut v = Vec::new();
        // The call in flight is at seq `done` (its return unset).
        let end = done + 1;
        let start = end.saturating_sub(n.min(RING) as u64);
        for seq in start..end {
            let e = &self.ring[seq as usize % RING].0;
            if e[0].load(Relaxed) != seq || (seq == 0 && e[1].load(Relaxed) == 0 && done == 0) {
                continue;
            }
            let args: Vec<u64> = (2..8).map(|i| e[i].load(Relaxed)).collect();
            let r = e[8].load(Relaxed);
            let ret = if r == NO_RETURN {
                "(no return)".to_string()
            } else {
                format!("= {}", r as i64)
            };
            v.push(format!(
                "#{seq} {}",
                crate::format_call(e[1].load(Relaxed) as i64, &args, &ret)
            ));
        }
        v
    }
}
