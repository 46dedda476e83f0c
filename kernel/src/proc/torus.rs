//! The tori: one per CPU, each with its own run queue, running task, idle
//! context and dead list. Nothing here is shared between tori except
//! through the run queue's lock (taken by a waker or a balancing
//! neighbour for an instant), so scheduling never takes a global lock.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use super::Process;

/// Most tori (one per CPU).
pub const MAX_TORI: usize = hal::gdt::MAX_CPUS;

/// One torus: the scheduling state of one CPU. Aligned to a power of two
/// (and a cache line) so finding this CPU's is a shift, not a multiply.
#[repr(align(512))]
pub struct Torus {
    /// Runnable processes waiting for this CPU.
    pub runq: Mutex<runq::RunQueue<Arc<Process>>>,
    /// The process on this CPU (None in its idle loop).
    pub current: hal::current::CpuCurrent<Process>,
    /// Saved kernel RSP of the idle context (this CPU's boot stack).
    pub idle_rsp: AtomicU64,
    /// Where an exiting process's final RSP goes (it is never resumed).
    pub zombie_slot: AtomicU64,
    /// Exited processes whose kernel stack this CPU may still be on:
    /// released at its next switch.
    pub dead: Mutex<Vec<Arc<Process>>>,
    /// In the idle loop with nothing to run: a waker must send an IPI.
    pub idle: AtomicBool,
    /// This CPU takes part in scheduling (it came online).
    pub online: AtomicBool,
    /// Timer interrupts taken on this CPU, and those that found it idle
    /// or running a process in user or kernel mode (/proc/stat).
    pub ticks: AtomicU64,
    pub idle_ticks: AtomicU64,
    pub user_ticks: AtomicU64,
    pub system_ticks: AtomicU64,
}

impl Torus {
    const fn new() -> Torus {
        Torus {
            runq: Mutex::new(runq::RunQueue::new()),
            current: hal::current::CpuCurrent::new(),
            idle_rsp: AtomicU64::new(0),
            zombie_slot: AtomicU64::new(0),
            dead: Mutex::new(Vec::new()),
            idle: AtomicBool::new(false),
            online: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            idle_ticks: AtomicU64::new(0),
            user_ticks: AtomicU64::new(0),
            system_ticks: AtomicU64::new(0),
        }
    }

    /// Runnable processes waiting here.
    pub fn queued(&self) -> usize {
        hal::cpu::without_interrupts(|| self.runq.lock().queued())
    }
}

const _: () = assert!(MAX_TORI.is_power_of_two());

static TORI: [Torus; MAX_TORI] = [const { Torus::new() }; MAX_TORI];
/// One past the highest torus index that came online.
static COUNT: AtomicUsize = AtomicUsize::new(1);

/// The torus of the calling CPU.
#[inline]
pub fn this() -> &'static Torus {
    // MAX_TORI is a power of two and cpu_id() < MAX_TORI: the mask costs
    // one AND and spares the bounds check on every syscall.
    &TORI[hal::percpu::cpu_id() & (MAX_TORI - 1)]
}

/// The calling CPU's torus index.
#[inline]
pub fn this_id() -> usize {
    hal::percpu::cpu_id()
}

/// Torus `i` (any index below [`MAX_TORI`]).
pub fn get(i: usize) -> &'static Torus {
    &TORI[i % MAX_TORI]
}

/// Number of torus slots in use (some may be offline).
pub fn count() -> usize {
    COUNT.load(Ordering::Acquire)
}

/// Marks torus `i` online (its CPU runs the scheduler from now on).
pub fn set_online(i: usize) {
    TORI[i].online.store(true, Ordering::Release);
    COUNT.fetch_max(i + 1, Ordering::AcqRel);
}

/// Whether torus `i` schedules processes.
pub fn is_online(i: usize) -> bool {
    i < MAX_TORI && TORI[i].online.load(Ordering::Acquire)
}

/// Asks CPU `i` to look at its run queue and work word now (it may be
/// halted in its idle loop, or running a process that must be preempted
/// or notice a signal).
pub fn kick(i: usize) {
    if i == this_id() {
        return;
    }
    if let Some(apic) = hal::smp::apic_id(i) {
        hal::apic::send_fixed(apic, crate::trap::KICK_VECTOR);
    }
}
