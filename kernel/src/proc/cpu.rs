//! What belongs to a CPU rather than to a torus: the process it runs, its
//! idle context, the stacks it may still stand on, its time accounting,
//! and which tori it hosts. A CPU hosts one torus normally (torus i on
//! CPU i); with more tori than CPUs (`tori=N`) it hosts several and serves
//! them in turn, each with its own run queue and its own place in the
//! braid, so losing one of them is the same event as losing a CPU.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use super::Process;

/// Most CPUs.
pub const MAX_CPUS: usize = hal::gdt::MAX_CPUS;

/// One CPU. Aligned to a power of two (and a cache line) so finding this
/// CPU's is a shift, not a multiply.
#[repr(align(512))]
pub struct Cpu {
    /// The process on this CPU (None in its idle loop).
    pub current: hal::current::CpuCurrent<Process>,
    /// The torus whose run queue holds the running process (the one this
    /// CPU serves now).
    pub serving: AtomicUsize,
    /// The tori this CPU hosts, as a bit mask.
    pub hosted: AtomicU64,
    /// When the torus it serves began its turn (ns; CPUs hosting several
    /// tori give each a turn of a slice in round robin).
    pub turn_at: AtomicU64,
    /// Saved kernel RSP of the idle context (this CPU's boot stack).
    pub idle_rsp: AtomicU64,
    /// Where an exiting process's final RSP goes (it is never resumed).
    pub zombie_slot: AtomicU64,
    /// Exited processes whose kernel stack this CPU may still be on:
    /// released at its next switch.
    pub dead: Mutex<Vec<Arc<Process>>>,
    /// In the idle loop with nothing to run: a waker must send an IPI.
    pub idle: AtomicBool,
    /// Timer interrupts taken on this CPU, and those that found it idle
    /// or running a process in user or kernel mode (/proc/stat).
    pub ticks: AtomicU64,
    pub idle_ticks: AtomicU64,
    pub user_ticks: AtomicU64,
    pub system_ticks: AtomicU64,
}

impl Cpu {
    const fn new() -> Cpu {
        Cpu {
            current: hal::current::CpuCurrent::new(),
            serving: AtomicUsize::new(0),
            hosted: AtomicU64::new(0),
            turn_at: AtomicU64::new(0),
            idle_rsp: AtomicU64::new(0),
            zombie_slot: AtomicU64::new(0),
            dead: Mutex::new(Vec::new()),
            idle: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            idle_ticks: AtomicU64::new(0),
            user_ticks: AtomicU64::new(0),
            system_ticks: AtomicU64::new(0),
        }
    }

    /// The tori it hosts, in index order.
    pub fn hosted(&self) -> impl Iterator<Item = usize> {
        let mut m = self.hosted.load(Ordering::Acquire);
        core::iter::from_fn(move || {
            (m != 0).then(|| {
                let t = m.trailing_zeros() as usize;
                m &= m - 1;
                t
            })
        })
    }
}

const _: () = assert!(MAX_CPUS.is_power_of_two());

static CPUS: [Cpu; MAX_CPUS] = [const { Cpu::new() }; MAX_CPUS];

/// The calling CPU.
#[inline]
pub fn this() -> &'static Cpu {
    // MAX_CPUS is a power of two and cpu_id() < MAX_CPUS: the mask costs
    // one AND and spares the bounds check on every syscall.
    &CPUS[hal::percpu::cpu_id() & (MAX_CPUS - 1)]
}

/// The calling CPU's index.
#[inline]
pub fn id() -> usize {
    hal::percpu::cpu_id()
}

/// CPU `i` (any index below [`MAX_CPUS`]).
pub fn get(i: usize) -> &'static Cpu {
    &CPUS[i % MAX_CPUS]
}

/// Whether CPU `i` came online.
pub fn is_online(i: usize) -> bool {
    i == 0 || hal::smp::apic_id(i).is_some()
}

/// The online CPUs as a mask (what affinity masks are made of).
pub fn online_mask() -> u64 {
    (0..MAX_CPUS)
        .filter(|&i| is_online(i))
        .fold(0, |m, i| m | 1 << i)
}

/// Asks CPU `i` to look at its run queues and work word now (it may be
/// halted in its idle loop, or running a process that must be preempted
/// or notice a signal).
pub fn kick(i: usize) {
    if i == id() {
        return;
    }
    if let Some(apic) = hal::smp::apic_id(i) {
        hal::apic::send_fixed(apic, crate::trap::KICK_VECTOR);
    }
}
