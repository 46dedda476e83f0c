//! DMA memory and address translation for the `virtio-drivers` crate.
//!
//! [`DmaHal`] implements `virtio_drivers::Hal`: virtqueues and packet
//! buffers are whole frames from the kernel's frame pools (the kernel
//! registers its allocator with [`set_frame_source`]), reached through the
//! direct map; device registers are mapped uncached with
//! [`crate::paging::map_mmio`]. There is no IOMMU: a device sees physical
//! addresses, so sharing a buffer is a page-table walk.

use core::ptr::NonNull;
use spin::Once;
use virtio_drivers::{BufferDirection, PhysAddr};

use crate::paging::{phys_to_virt, translate};

/// Where DMA frames come from: `alloc(n)` gives `n` physically contiguous
/// frames (or None), `free(pa, n)` gives them back.
#[derive(Clone, Copy)]
pub struct FrameSource {
    /// Allocates `n` contiguous frames; returns the first one's address.
    pub alloc: fn(usize) -> Option<u64>,
    /// Frees `n` contiguous frames starting at the address.
    pub free: fn(u64, usize),
}

static SOURCE: Once<FrameSource> = Once::new();

/// Registers the kernel's frame allocator (once, before any device).
pub fn set_frame_source(src: FrameSource) {
    SOURCE.call_once(|| src);
}

fn source() -> &'static FrameSource {
    SOURCE.get().expect("hal::dma used before set_frame_source")
}

/// Allocates `pages` zeroed contiguous frames for a device, returning
/// (physical, virtual) addresses; None when memory is short.
pub fn alloc_frames(pages: usize) -> Option<(u64, NonNull<u8>)> {
    let pa = (source().alloc)(pages)?;
    let va = phys_to_virt(pa);
    // SAFETY: the frames were just handed to us by the allocator, so no one
    // else uses them, and the direct map covers them for the kernel's
    // lifetime.
    unsafe { core::ptr::write_bytes(va as *mut u8, 0, pages * 4096) };
    Some((pa, NonNull::new(va as *mut u8)?))
}

/// The virtio-drivers HAL of RSE OS.
pub struct DmaHal;

// SAFETY: dma_alloc returns zeroed, page-aligned, physically contiguous
// frames no one else uses until dma_dealloc; mmio_phys_to_virt maps the
// device range uncached before returning it; share returns the physical
// address of a buffer that the callers (the kernel's net device) keep
// alive and physically contiguous (carved from DMA frames) while shared.
unsafe impl virtio_drivers::Hal for DmaHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        // virtio-drivers has no way to report the failure: device set-up
        // happens at boot, where running out of memory is fatal anyway.
        let (pa, va) = alloc_frames(pages).expect("out of frames for a virtqueue");
        (pa, va)
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        (source().free)(paddr, pages);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let va = map_device(paddr, size as u64);
        NonNull::new(va as *mut u8).expect("direct map is never null")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let va = buffer.as_ptr() as *mut u8 as u64;
        let len = buffer.len() as u64;
        let pa = translate(va).expect("shared buffer not mapped");
        // The device reads the buffer as one physical range.
        debug_assert!(len == 0 || translate(va + len - 1) == Some(pa + len - 1));
        pa
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {
        // No bounce buffers, no IOMMU: nothing to undo.
    }
}

/// Maps `len` bytes of device registers at `pa` (uncached) and returns
/// their virtual address; page tables come from the registered source.
pub fn map_device(pa: u64, len: u64) -> u64 {
    let src = source();
    crate::paging::map_mmio(pa, len.max(1), &mut || (src.alloc)(1))
}

/// A buffer of whole DMA frames, owned: zeroed at allocation, freed on drop.
pub struct DmaBuffer {
    pa: u64,
    va: NonNull<u8>,
    pages: usize,
}

// SAFETY: the buffer owns its frames exclusively; moving it between CPUs
// moves that ownership.
unsafe impl Send for DmaBuffer {}

impl DmaBuffer {
    /// `pages` contiguous zeroed frames, or None when memory is short.
    pub fn new(pages: usize) -> Option<DmaBuffer> {
        let (pa, va) = alloc_frames(pages)?;
        Some(DmaBuffer { pa, va, pages })
    }

    /// Physical address of the first byte.
    pub fn phys(&self) -> u64 {
        self.pa
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `va` maps `pages` frames this buffer owns; the borrow of
        // self keeps them alive and unaliased by &mut for its duration.
        unsafe { core::slice::from_raw_parts(self.va.as_ptr(), self.pages * 4096) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as as_slice, with the exclusive borrow of self.
        unsafe { core::slice::from_raw_parts_mut(self.va.as_ptr(), self.pages * 4096) }
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        (source().free)(self.pa, self.pages);
    }
}
