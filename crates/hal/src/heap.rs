//! The kernel heap: `talc` over one contiguous region of the direct map,
//! behind a lock that keeps interrupts off while it is held.
//!
//! Why interrupts off: the timer interrupt takes its torus's run-queue
//! lock, and a CPU holding a run-queue lock may allocate (a queue grows).
//! With the heap lock held with interrupts on, CPU A could hold the heap
//! lock, take the timer interrupt and spin on a run-queue lock that CPU B
//! holds while B spins on the heap lock: all CPUs stopped (seen as a rare
//! hang of `rsetest children`). No interrupt can come while the heap lock
//! is held now, and its holder only computes, so waiting for it with
//! interrupts off is always short.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use talc::{ErrOnOom, Span, Talc, Talck};

/// A spin lock that disables interrupts while held and restores them at
/// unlock, for the allocator.
pub struct IrqSpinLock {
    locked: AtomicBool,
    /// Whether interrupts were on when the holder took the lock.
    restore: AtomicBool,
}

// SAFETY: `lock` returns only once this CPU has set `locked` from false
// to true (acquire), `unlock` clears it (release) after the holder is
// done, so at most one holder at a time; interrupts are off from before
// the lock is taken to after it is released, so no interrupt handler on
// the holder's CPU can try to take it again.
unsafe impl lock_api::RawMutex for IrqSpinLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: IrqSpinLock = IrqSpinLock {
        locked: AtomicBool::new(false),
        restore: AtomicBool::new(false),
    };
    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        let was_on = crate::cpu::interrupts_enabled();
        crate::cpu::disable_interrupts();
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        self.restore.store(was_on, Ordering::Relaxed);
        hold();
    }

    fn try_lock(&self) -> bool {
        let was_on = crate::cpu::interrupts_enabled();
        crate::cpu::disable_interrupts();
        let got = self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if got {
            self.restore.store(was_on, Ordering::Relaxed);
        } else if was_on {
            crate::cpu::enable_interrupts();
        }
        got
    }

    unsafe fn unlock(&self) {
        let was_on = self.restore.load(Ordering::Relaxed);
        self.locked.store(false, Ordering::Release);
        if was_on {
            crate::cpu::enable_interrupts();
        }
    }
}

/// Fault injection: how long every holder keeps the lock (0: off).
static HOLD_NS: AtomicU64 = AtomicU64::new(0);

/// Makes every holder of the heap lock keep it `ns` more nanoseconds, so
/// that an interrupt or another CPU meets it held (a test of the rule
/// above: with interrupts on while held, the timer would come in and
/// deadlock against a run-queue holder that allocates).
pub fn set_hold_ns(ns: u64) {
    HOLD_NS.store(ns, Ordering::Relaxed);
}

fn hold() {
    let ns = HOLD_NS.load(Ordering::Relaxed);
    if ns != 0 {
        let end = crate::time::now_ns() + ns;
        while crate::time::now_ns() < end {
            core::hint::spin_loop();
        }
    }
}

#[global_allocator]
static ALLOCATOR: Talck<IrqSpinLock, ErrOnOom> = Talc::new(ErrOnOom).lock();

static SIZE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
/// First byte of the heap (0 before [`init`]).
static BASE: AtomicU64 = AtomicU64::new(0);

/// Heap size for a machine with `free` bytes of RAM: a quarter of it,
/// between 16 MiB and 1 GiB. It holds kernel objects; file data and user
/// memory live in frames.
pub fn size_for_ram(free: u64) -> u64 {
    (free / 4).clamp(16 << 20, 1 << 30) & !0xfff
}

/// `heap.mb=N` on the kernel command line: a heap of N MiB (at least 4)
/// instead of [`size_for_ram`]'s, for tests that exhaust the kernel heap.
pub fn size_from_cmdline(cmdline: &str) -> Option<u64> {
    let mb = cmdline
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("heap.mb="))?
        .parse::<u64>()
        .ok()?;
    Some(mb.clamp(4, 1 << 10) << 20)
}

/// Gives the heap its memory.
pub(crate) fn init(va: u64, len: usize) {
    // SAFETY: [va, va + len) is RAM in the direct map that paging::init
    // carved out of the free ranges for the heap alone.
    unsafe {
        ALLOCATOR
            .lock()
            .claim(Span::from_base_size(va as *mut u8, len))
            .expect("heap claim");
    }
    BASE.store(va, core::sync::atomic::Ordering::Relaxed);
    SIZE.store(len, core::sync::atomic::Ordering::Relaxed);
}

/// Whether `[va, va + len)` lies inside the heap: one physically
/// contiguous range of the direct map, so a device can be handed the
/// bytes in place (see `virtio_blk`).
pub fn contains(va: u64, len: usize) -> bool {
    let base = BASE.load(core::sync::atomic::Ordering::Relaxed);
    let size = size() as u64;
    base != 0 && va >= base && va.checked_add(len as u64).is_some_and(|e| e <= base + size)
}

/// Heap size in bytes.
pub fn size() -> usize {
    SIZE.load(core::sync::atomic::Ordering::Relaxed)
}

/// Bytes of the heap allocated now (what /proc/meminfo reports as the
/// kernel's Slab: tests use it to check that what users make the kernel
/// hold stays bounded).
pub fn used() -> usize {
    ALLOCATOR.lock().get_counters().allocated_bytes
}
