//! The kernel heap: `talc` over one contiguous region of the direct map.

use talc::{ErrOnOom, Span, Talc, Talck};

#[global_allocator]
static ALLOCATOR: Talck<spin::Mutex<()>, ErrOnOom> = Talc::new(ErrOnOom).lock();

static SIZE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Heap size for a machine with `free` bytes of RAM: a quarter of it,
/// between 16 MiB and 1 GiB. It holds kernel objects; file data and user
/// memory live in frames.
pub fn size_for_ram(free: u64) -> u64 {
    (free / 4).clamp(16 << 20, 1 << 30) & !0xfff
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
    SIZE.store(len, core::sync::atomic::Ordering::Relaxed);
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
