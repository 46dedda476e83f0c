//! The disks' interrupt: one vector for every virtio-blk line, taken on
//! the boot CPU. As the NIC's (see `net`), the lines are level-triggered
//! and stay asserted until the device is acknowledged, which needs the
//! disk's lock: the handler masks them and asks for deferred work, whose
//! [`boundary`] acknowledges the devices, takes their completions, wakes
//! the tasks sleeping on [`WQ`] and unmasks.
//!
//! The lines stay masked while nobody sleeps: a poller does not want the
//! interrupt, and under TCG each one costs the vCPU that takes it (and
//! the host core it shares with QEMU's I/O threads) about as much as the
//! request. A sleeper unmasks them ([`sleeping`]); the line being
//! level-triggered, a completion that came before is delivered then.
//!
//! On `pc` a disk may share its INTx line with the NIC: then the line
//! stays the NIC's vector, whose handler also flags the disks.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::proc::sched::WaitQueue;

/// Vector of the disks' interrupt.
pub const BLK_VECTOR: u8 = 0x41;
/// Lines this vector serves (u32::MAX: unused); a disk beyond them polls.
static GSIS: [AtomicU32; 4] = [const { AtomicU32::new(u32::MAX) }; 4];
/// A disk's line is the NIC's: the NIC's vector brings its interrupts.
static SHARED: AtomicU32 = AtomicU32::new(u32::MAX);
/// The handler masked the lines; the next boundary looks at the disks.
static PENDING: AtomicBool = AtomicBool::new(false);
/// Tasks asleep (or about to be) on [`WQ`]: the lines are unmasked while
/// there are any.
static SLEEPERS: AtomicUsize = AtomicUsize::new(0);

/// Tasks waiting for a request of theirs to complete, on any disk (they
/// look again when woken).
pub static WQ: WaitQueue = WaitQueue::new();

/// Routes `gsi` (a disk's line) to [`BLK_VECTOR`] on this CPU: whether
/// its completions will interrupt.
pub fn attach(gsi: Option<u32>) -> bool {
    let Some(gsi) = gsi else {
        return false;
    };
    if crate::net::gsi() == Some(gsi) {
        SHARED.store(gsi, Ordering::Relaxed);
        return true;
    }
    if GSIS.iter().any(|g| g.load(Ordering::Relaxed) == gsi) {
        return true;
    }
    let Some(slot) = GSIS.iter().find(|g| g.load(Ordering::Relaxed) == u32::MAX) else {
        return false;
    };
    if !hal::apic::route_gsi(gsi, BLK_VECTOR, hal::apic::id(), true) {
        return false;
    }
    hal::apic::mask_gsi(gsi, true);
    slot.store(gsi, Ordering::Relaxed);
    true
}

/// Runs `sleep` (a wait on [`WQ`]) with the lines unmasked.
pub fn sleeping<R>(sleep: impl FnOnce() -> R) -> R {
    // Counted before unmasking: a boundary that reads the count after
    // this leaves the lines unmasked too.
    if SLEEPERS.fetch_add(1, Ordering::SeqCst) == 0 {
        mask_all(false);
    }
    let r = sleep();
    // The lines are left as they are: the next interrupt masks them, and
    // its boundary leaves them so once nobody sleeps.
    SLEEPERS.fetch_sub(1, Ordering::SeqCst);
    r
}

fn mask_all(masked: bool) {
    for g in &GSIS {
        let gsi = g.load(Ordering::Relaxed);
        if gsi != u32::MAX {
            hal::apic::mask_gsi(gsi, masked);
        }
    }
}

/// [`BLK_VECTOR`] (interrupt context): mask the lines, leave the rest to
/// [`boundary`].
pub fn on_interrupt() {
    mask_all(true);
    PENDING.store(true, Ordering::Release);
}

/// The NIC's vector (interrupt context): a disk sharing its line may have
/// raised it. The NIC's handler masks and unmasks the line itself.
pub fn on_shared_interrupt() {
    if SHARED.load(Ordering::Relaxed) != u32::MAX {
        PENDING.store(true, Ordering::Release);
    }
}

/// Deferred work (no lock held): after an interrupt, acknowledge every
/// disk, take its completions, wake the sleepers, unmask the lines if
/// anyone still sleeps.
pub fn boundary() {
    if !PENDING.swap(false, Ordering::AcqRel) {
        return;
    }
    let mut any = false;
    for d in super::disks() {
        any |= d.dev.interrupted();
    }
    if any {
        WQ.wake_all();
    }
    if SLEEPERS.load(Ordering::SeqCst) > 0 {
        mask_all(false);
    }
}
