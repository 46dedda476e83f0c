//! The kernel heap: `talc` over contiguous regions (spans) of the direct
//! map, behind a lock that keeps interrupts off while it is held.
//!
//! It starts as one span carved out at boot (`heap.mb=N`, or
//! [`size_for_ram`]) and grows on demand: when talc finds no room it calls
//! [`Grow`], which takes a run of contiguous frames from the kernel's frame
//! pools (registered with [`set_grow_source`]), max(1/8 of the heap, 2 MiB)
//! at a time, and claims it as one more span, up to the limit [`size`]
//! (half of RAM, or `heap.maxmb=N`). A grown span in which nothing is
//! allocated any more goes back to the pools ([`shrink`], called
//! periodically), as long as the heap keeps a growth step free. Past the
//! limit, or with no contiguous run left, the allocation fails: fallible
//! paths (`try_reserve`, `Box::try_new`-style callers, stacks) see
//! ENOMEM/EAGAIN, infallible ones the alloc error handler.
//!
//! Growing runs with the heap lock held (interrupts off) and takes a frame
//! pool lock inside it; so the frame pools' locks keep interrupts off too
//! ([`IrqMutex`]), or an interrupt allocating on a CPU that holds a pool
//! lock could spin on it forever, and no pool-lock holder allocates from
//! the heap.
//!
//! Why interrupts off: the timer interrupt takes its torus's run-queue
//! lock, and a CPU holding a run-queue lock may allocate (a queue grows).
//! With the heap lock held with interrupts on, CPU A could hold the heap
//! lock, take the timer interrupt and spin on a run-queue lock that CPU B
//! holds while B spins on the heap lock: all CPUs stopped (seen as a rare
//! hang of `rsetest children`). No interrupt can come while the heap lock
//! is held now, and its holder only computes, so waiting for it with
//! interrupts off is always short.

use core::alloc::Layout;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use spin::Once;
use talc::{OomHandler, Span, Talc, Talck};

use crate::paging::PAGE_SIZE;

/// A spin lock that disables interrupts while held and restores them at
/// unlock. `HOLD`: the heap's own lock, which fault injection may make
/// slow ([`set_hold_ns`]).
pub struct IrqSpinLock<const HOLD: bool = false> {
    locked: AtomicBool,
    /// Whether interrupts were on when the holder took the lock.
    restore: AtomicBool,
}

/// A mutex whose holder runs with interrupts off (the frame pools: the
/// heap takes them while it grows, with its own lock held).
pub type IrqMutex<T> = lock_api::Mutex<IrqSpinLock, T>;

// SAFETY: `lock` returns only once this CPU has set `locked` from false
// to true (acquire), `unlock` clears it (release) after the holder is
// done, so at most one holder at a time; interrupts are off from before
// the lock is taken to after it is released, so no interrupt handler on
// the holder's CPU can try to take it again.
unsafe impl<const HOLD: bool> lock_api::RawMutex for IrqSpinLock<HOLD> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: IrqSpinLock<HOLD> = IrqSpinLock {
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
        if HOLD {
            hold();
        }
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
static ALLOCATOR: Talck<IrqSpinLock<true>, Grow> = Talc::new(Grow).lock();

/// The most spans the heap can have (the boot one included): steps of an
/// eighth of the heap reach 1 GiB from 4 MiB in about 50.
const MAX_SPANS: usize = 128;
/// The heap's spans in the direct map, `[start, end)`: written only with
/// the heap lock held, before [`SPANS`] counts them; read without it.
static SPAN_START: [AtomicU64; MAX_SPANS] = [const { AtomicU64::new(0) }; MAX_SPANS];
static SPAN_END: [AtomicU64; MAX_SPANS] = [const { AtomicU64::new(0) }; MAX_SPANS];
static SPANS: AtomicUsize = AtomicUsize::new(0);
/// Bytes claimed into the heap (all spans).
static CLAIMED: AtomicUsize = AtomicUsize::new(0);
/// The most the heap may claim (boot span included).
static LIMIT: AtomicUsize = AtomicUsize::new(0);
/// Successful and failed growths.
static GROWN: AtomicU64 = AtomicU64::new(0);
static GROW_FAILED: AtomicU64 = AtomicU64::new(0);
/// Frames taken from the frame pools by growth (spans and the page
/// tables that split their direct map), less those [`shrink`] gave back.
static GROW_FRAMES: AtomicU64 = AtomicU64::new(0);
/// Spans given back, and their bytes.
static SHRUNK: AtomicU64 = AtomicU64::new(0);
static SHRUNK_BYTES: AtomicU64 = AtomicU64::new(0);
/// Frames given back that the pools refused (never, unless a bug).
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Where growth takes its frames: `n` physically contiguous frames from
/// the kernel's pools, or None. Called with the heap lock held and
/// interrupts off: it must not allocate from the heap, and every lock it
/// takes must be one that no holder keeps across a heap allocation or
/// with interrupts on.
pub type GrowSource = fn(usize) -> Option<u64>;
/// Where [`shrink`] returns a frame (false: the pools refused it, a bug
/// counted in [`shrink_counts`]); the same rules as [`GrowSource`].
pub type GiveBack = fn(u64) -> bool;
static SOURCE: Once<(GrowSource, GiveBack)> = Once::new();

/// Lets the heap grow from the kernel's frame pools and give frames back
/// to them (once, after they exist).
pub fn set_grow_source(src: GrowSource, give_back: GiveBack) {
    SOURCE.call_once(|| (src, give_back));
}

/// The smallest step growth takes (when the heap is small).
const MIN_STEP: usize = 2 << 20;

/// talc's out-of-memory handler: claims another span from the frame
/// pools, or fails (the allocation then fails).
pub struct Grow;

impl OomHandler for Grow {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let r = grow(talc, layout);
        if r.is_ok() {
            GROWN.fetch_add(1, Ordering::Relaxed);
        } else {
            GROW_FAILED.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

fn grow(talc: &mut Talc<Grow>, layout: Layout) -> Result<(), ()> {
    // What this allocation needs in a fresh span: the block, its
    // alignment slack and talc's tags, plus the page tables that split a
    // run's direct map (at most two more frames than 2 MiB blocks).
    let need = (layout.size() + layout.align() + 64).next_multiple_of(PAGE_SIZE as usize);
    let tables = |len: usize| (len.div_ceil(2 << 20) + 2) * PAGE_SIZE as usize;
    let need = need + tables(need);
    let step = (CLAIMED.load(Ordering::Relaxed) / 8).max(MIN_STEP);
    claim_run(talc, need, step).map(|_| ())
}

/// Claims one more span of `step` bytes (less if no run that long is
/// free, but never under `need`) within the limit; returns it.
fn claim_run(talc: &mut Talc<Grow>, need: usize, step: usize) -> Result<(u64, u64), ()> {
    let (src, _) = SOURCE.get().ok_or(())?;
    let count = SPANS.load(Ordering::Relaxed);
    if count == 0 {
        return Err(());
    }
    // A slot that [`shrink`] emptied, else a new one.
    let n = (1..count)
        .find(|&i| SPAN_START[i].load(Ordering::Relaxed) == SPAN_END[i].load(Ordering::Relaxed))
        .unwrap_or(count);
    if n >= MAX_SPANS {
        return Err(());
    }
    let room = LIMIT
        .load(Ordering::Relaxed)
        .saturating_sub(CLAIMED.load(Ordering::Relaxed));
    let mut step = step.max(need).min(room) & !(PAGE_SIZE as usize - 1);
    while step >= need {
        let frames = step / PAGE_SIZE as usize;
        if let Some(pa) = src(frames) {
            GROW_FRAMES.fetch_add(frames as u64, Ordering::Relaxed);
            // The run's direct map gets 4 KiB pages (a kernel stack's guard
            // page may land anywhere in it); the page tables for that are
            // the run's first frames.
            let used = crate::paging::split_direct(pa, step as u64);
            let start = crate::paging::phys_to_virt(pa + used);
            let len = step - used as usize;
            // SAFETY: the frames of [pa + used, pa + step) were just handed
            // to the heap alone by the frame pools (they leave the pools for
            // good) and are mapped read-write in the direct map; they overlap
            // no other span (every span is frames no one else owns).
            let span = unsafe { talc.claim(Span::from_base_size(start as *mut u8, len)) }?;
            // What talc made of it (page-aligned, so all of it): the
            // span [`shrink`] hands back to talc's `truncate`.
            let (base, acme) = span.get_base_acme().ok_or(())?;
            let (start, end) = (base as u64, acme as u64);
            CLAIMED.fetch_add((end - start) as usize, Ordering::Relaxed);
            SPAN_START[n].store(start, Ordering::Relaxed);
            SPAN_END[n].store(end, Ordering::Release);
            if n == count {
                SPANS.store(n + 1, Ordering::Release);
            }
            return Ok((start, end));
        }
        // No contiguous run that long: try half, down to what is needed.
        let half = (step / 2) & !(PAGE_SIZE as usize - 1);
        step = if half < need && step > need {
            need
        } else {
            half
        };
    }
    Err(())
}

/// Grows the heap by one span of about `bytes` now, as a full heap
/// would (self tests check the new span's direct map); returns it as
/// `[start, end)` in the direct map.
pub fn grow_now(bytes: usize) -> Option<(u64, u64)> {
    let mut talc = ALLOCATOR.lock();
    let r = claim_run(&mut talc, PAGE_SIZE as usize * 4, bytes).ok();
    if r.is_some() {
        GROWN.fetch_add(1, Ordering::Relaxed);
    } else {
        GROW_FAILED.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// Heap size for a machine with `free` bytes of RAM: a quarter of it,
/// between 16 MiB and 1 GiB. It holds kernel objects; file data and user
/// memory live in frames.
pub fn size_for_ram(free: u64) -> u64 {
    (free / 4).clamp(16 << 20, 1 << 30) & !0xfff
}

fn mb_from_cmdline(cmdline: &str, key: &str) -> Option<u64> {
    cmdline
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix(key))?
        .parse::<u64>()
        .ok()
}

/// `heap.mb=N` on the kernel command line: a heap of N MiB (at least 4)
/// at boot instead of [`size_for_ram`]'s, for tests that exhaust the
/// kernel heap (it still grows, up to [`limit_for_ram`]).
pub fn size_from_cmdline(cmdline: &str) -> Option<u64> {
    Some(mb_from_cmdline(cmdline, "heap.mb=")?.clamp(4, 1 << 10) << 20)
}

/// The most the heap may grow to on a machine with `free` bytes of RAM:
/// half of it, or `heap.maxmb=N` MiB; never less than the boot heap.
pub fn limit_for_ram(free: u64, cmdline: &str, boot: u64) -> u64 {
    mb_from_cmdline(cmdline, "heap.maxmb=")
        .map(|mb| mb.saturating_mul(1 << 20))
        .unwrap_or(free / 2)
        .max(boot)
        & !0xfff
}

/// Gives the heap its boot memory and its growth limit.
pub(crate) fn init(va: u64, len: usize, limit: usize) {
    // SAFETY: [va, va + len) is RAM in the direct map that paging::init
    // carved out of the free ranges for the heap alone.
    unsafe {
        ALLOCATOR
            .lock()
            .claim(Span::from_base_size(va as *mut u8, len))
            .expect("heap claim");
    }
    SPAN_START[0].store(va, Ordering::Relaxed);
    SPAN_END[0].store(va + len as u64, Ordering::Relaxed);
    SPANS.store(1, Ordering::Release);
    CLAIMED.store(len, Ordering::Relaxed);
    LIMIT.store(limit.max(len), Ordering::Relaxed);
}

/// Whether `[va, va + len)` lies inside one span of the heap: physically
/// contiguous memory of the direct map, so a device can be handed the
/// bytes in place (see `virtio_blk`).
pub fn contains(va: u64, len: usize) -> bool {
    let Some(end) = va.checked_add(len as u64) else {
        return false;
    };
    let n = SPANS.load(Ordering::Acquire);
    (0..n).any(|i| {
        va >= SPAN_START[i].load(Ordering::Relaxed) && end <= SPAN_END[i].load(Ordering::Relaxed)
    })
}

/// Whether the page at `va` is heap memory (guard pages may only be made
/// there: its direct map has 4 KiB pages).
pub(crate) fn contains_page(va: u64) -> bool {
    contains(va & !(PAGE_SIZE - 1), PAGE_SIZE as usize)
}

/// The most the heap may hold in bytes: the growth limit. What sizes
/// itself from the heap (socket buffers, tmpfs inodes) uses this.
pub fn size() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Bytes the heap has claimed so far (the boot span and what it grew).
pub fn claimed() -> usize {
    CLAIMED.load(Ordering::Relaxed)
}

/// The heap's spans (1 at boot, one more per growth, one less per span
/// given back).
pub fn spans() -> usize {
    let n = SPANS.load(Ordering::Acquire);
    (0..n)
        .filter(|&i| SPAN_START[i].load(Ordering::Relaxed) != SPAN_END[i].load(Ordering::Relaxed))
        .count()
}

/// Gives the grown spans in which nothing is allocated back to the frame
/// pools, keeping a growth step (an eighth of the heap, at least 2 MiB)
/// free so that the next burst does not grow again at once. Their direct
/// map's page tables stay (the direct map keeps its 4 KiB pages there).
/// Returns the bytes given back.
pub fn shrink() -> usize {
    let Some((_, give_back)) = SOURCE.get() else {
        return 0;
    };
    let mut talc = ALLOCATOR.lock();
    let mut freed = 0;
    let count = SPANS.load(Ordering::Relaxed);
    for i in (1..count).rev() {
        let (start, end) = (
            SPAN_START[i].load(Ordering::Relaxed),
            SPAN_END[i].load(Ordering::Relaxed),
        );
        let len = (end - start) as usize;
        if len == 0 {
            continue;
        }
        let claimed = CLAIMED.load(Ordering::Relaxed);
        let free = claimed.saturating_sub(talc.get_counters().allocated_bytes);
        let keep = (claimed / 8).max(MIN_STEP);
        if free < len.saturating_add(keep) {
            continue;
        }
        let span = Span::new(start as *mut u8, end as *mut u8);
        // SAFETY: `span` is what talc's claim returned for this slot (the
        // heap lock is held, so nothing allocates in it meanwhile), and
        // truncating it to nothing is allowed only when nothing in it is
        // allocated, which get_allocated_span has just said.
        unsafe {
            if talc.get_allocated_span(span).is_sized() {
                continue;
            }
            talc.truncate(span, Span::empty());
        }
        // Not heap any more (`contains`) before its frames go anywhere;
        // an empty slot, which the next growth may take.
        SPAN_END[i].store(0, Ordering::Release);
        SPAN_START[i].store(0, Ordering::Relaxed);
        CLAIMED.fetch_sub(len, Ordering::Relaxed);
        let pa = start - crate::paging::phys_to_virt(0);
        let frames = len / PAGE_SIZE as usize;
        for f in 0..frames as u64 {
            if !give_back(pa + f * PAGE_SIZE) {
                REFUSED.fetch_add(1, Ordering::Relaxed);
            }
        }
        GROW_FRAMES.fetch_sub(frames as u64, Ordering::Relaxed);
        SHRUNK.fetch_add(1, Ordering::Relaxed);
        SHRUNK_BYTES.fetch_add(len as u64, Ordering::Relaxed);
        freed += len;
    }
    freed
}

/// Spans [`shrink`] gave back, their bytes, and frames the pools
/// refused.
pub fn shrink_counts() -> (u64, u64, u64) {
    (
        SHRUNK.load(Ordering::Relaxed),
        SHRUNK_BYTES.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
    )
}

/// Times the heap grew, and times it could not (limit reached, no run
/// of frames left).
pub fn grow_counts() -> (u64, u64) {
    (
        GROWN.load(Ordering::Relaxed),
        GROW_FAILED.load(Ordering::Relaxed),
    )
}

/// Frames growth took from the frame pools (kept by the heap for good:
/// a leak check counts them as the heap's, not as lost).
pub fn grow_frames() -> u64 {
    GROW_FRAMES.load(Ordering::Relaxed)
}

/// Heap kept for infallible allocations: large fallible ones (kernel
/// stacks, user-sized buffers) fail once the heap in use comes this close
/// to the limit, so that the small allocations that cannot fail (a
/// process's records, queue nodes) still find room: a sixteenth of the
/// limit, between 512 KiB and 16 MiB.
pub fn reserve() -> usize {
    (size() / 16).clamp(512 << 10, 16 << 20)
}

/// Whether a fallible allocation of `bytes` may go ahead: the heap in use
/// plus `bytes` stays [`reserve`] below the limit. Callers fail with
/// EAGAIN/ENOMEM otherwise, as when the allocation itself fails.
pub fn has_room(bytes: usize) -> bool {
    used().saturating_add(bytes).saturating_add(reserve()) <= size()
}

/// Bytes of the heap allocated now (what /proc/meminfo reports as the
/// kernel's Slab: tests use it to check that what users make the kernel
/// hold stays bounded).
pub fn used() -> usize {
    ALLOCATOR.lock().get_counters().allocated_bytes
}
