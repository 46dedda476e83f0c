//! The tori: each an execution domain with its own run queue and its own
//! place in the braid. A torus is served by one CPU, its host (torus i by
//! CPU i; with `tori=N` above the CPU count, the extra ones by CPUs in
//! turn, see `cpu`). Nothing here is shared between tori except through
//! the run queue's lock (taken by a waker or a balancing neighbour for an
//! instant), so scheduling never takes a global lock.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Mutex;

use super::cpu;
use super::ticket::Ticket;

/// Most tori.
pub const MAX_TORI: usize = hal::gdt::MAX_CPUS;

/// One torus.
#[repr(align(64))]
pub struct Torus {
    /// Runnable processes waiting for this torus's CPU.
    pub runq: Mutex<runq::RunQueue<Ticket>>,
    /// This torus takes part in scheduling (it came online, and is in the
    /// ring: a failed torus is taken out by its successor).
    pub online: AtomicBool,
    /// The CPU that serves it.
    host: AtomicUsize,
}

impl Torus {
    const fn new(host: usize) -> Torus {
        Torus {
            runq: Mutex::new(runq::RunQueue::new()),
            online: AtomicBool::new(false),
            host: AtomicUsize::new(host),
        }
    }

    /// Runnable processes waiting here (with entries left by processes
    /// adopted elsewhere, until they are dropped).
    pub fn queued(&self) -> usize {
        hal::cpu::without_interrupts(|| self.runq.lock().queued())
    }

    /// Runnable processes waiting here, stale entries not counted.
    pub fn waiting(&self) -> usize {
        hal::cpu::without_interrupts(|| {
            self.runq
                .lock()
                .iter()
                .filter(|(q, _)| q.is_valid())
                .count()
        })
    }
}

/// Hosts are set when a torus comes online ([`set_online`]).
static TORI: [Torus; MAX_TORI] = [const { Torus::new(0) }; MAX_TORI];
/// One past the highest torus index that came online.
static COUNT: AtomicUsize = AtomicUsize::new(1);

/// The torus the calling CPU serves now (the one its running process is
/// queued on).
#[inline]
pub fn this() -> &'static Torus {
    &TORI[this_id() & (MAX_TORI - 1)]
}

/// Index of the torus the calling CPU serves now.
#[inline]
pub fn this_id() -> usize {
    cpu::this().serving.load(Ordering::Relaxed)
}

/// Torus `i` (any index below [`MAX_TORI`]).
pub fn get(i: usize) -> &'static Torus {
    &TORI[i % MAX_TORI]
}

/// The CPU that serves torus `i`.
#[inline]
pub fn host(i: usize) -> usize {
    get(i).host.load(Ordering::Relaxed)
}

/// Number of torus slots in use (some may be offline).
pub fn count() -> usize {
    COUNT.load(Ordering::Acquire)
}

/// Marks torus `i` online, served by CPU `host` from now on.
pub fn set_online(i: usize, host: usize) {
    TORI[i].host.store(host, Ordering::Relaxed);
    let c = cpu::get(host);
    if c.hosted.fetch_or(1 << i, Ordering::AcqRel) == 0 {
        c.serving.store(i, Ordering::Relaxed);
    }
    TORI[i].online.store(true, Ordering::Release);
    COUNT.fetch_max(i + 1, Ordering::AcqRel);
}

/// Whether torus `i` schedules processes.
pub fn is_online(i: usize) -> bool {
    i < MAX_TORI && TORI[i].online.load(Ordering::Acquire)
}

/// Whether a process with CPU mask `affinity` may run on torus `i`.
#[inline]
pub fn allows(affinity: u64, i: usize) -> bool {
    affinity & (1 << host(i)) != 0
}

/// Asks the CPU of torus `i` to look at its run queues and work word now.
pub fn kick(i: usize) {
    cpu::kick(host(i));
}
