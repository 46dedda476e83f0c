//! Memory shared with user space: whole frames that the kernel reaches
//! through the direct map and the application through an mmap of the
//! ring fd. The region owns one reference on each frame (the frame
//! refcounts of `mm::refcount`); every user mapping holds another, so
//! the frames are freed when the ring and all its mappings are gone.
//!
//! Everything the application can see is only accessed atomically: the
//! heads, tails and flags with acquire/release, the SQ index array, SQEs
//! and CQEs word by word with relaxed loads and stores (ordered by those
//! acquire/release words), all through whole-frame views of atomic words
//! (`hal::addrspace::frame_words_{u32,u64}`).

use abi::{Errno, KResult};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::mm::{refcount, PAGE};

const PAGE_USIZE: usize = PAGE as usize;

/// A region of zeroed frames.
pub struct SharedMem {
    frames: Vec<u64>,
    /// The frames are physically contiguous, so the direct map shows the
    /// region as one run of words ([`SharedMem::words64_from`]).
    contiguous: bool,
}

impl SharedMem {
    /// At least `bytes` bytes of zeroed frames from `torus`'s pool: one
    /// contiguous run if the pool has one, else frames one by one.
    pub fn new(bytes: usize, torus: usize) -> KResult<SharedMem> {
        let n = bytes.div_ceil(PAGE_USIZE);
        let mut mem = SharedMem {
            frames: Vec::new(),
            contiguous: false,
        };
        mem.frames.try_reserve(n).map_err(|_| Errno::ENOMEM)?;
        if let Some(pa) = crate::frames::alloc_contiguous_on(torus, n) {
            for i in 0..n as u64 {
                let f = pa + i * PAGE;
                refcount::adopt(f);
                hal::addrspace::zero_frame(f);
                mem.frames.push(f);
            }
            mem.contiguous = true;
            return Ok(mem);
        }
        for _ in 0..n {
            // On failure `mem` is dropped and gives back what it took.
            let pa = refcount::alloc(torus).ok_or(Errno::ENOMEM)?;
            hal::addrspace::zero_frame(pa);
            mem.frames.push(pa);
        }
        Ok(mem)
    }

    /// Size in bytes (whole frames).
    pub fn len(&self) -> usize {
        self.frames.len() * PAGE_USIZE
    }

    /// The frames, in order (for mapping them into user space).
    pub fn frames(&self) -> &[u64] {
        &self.frames
    }

    /// The 4-aligned u32 at `off` (None outside the region).
    #[inline]
    fn word(&self, off: usize) -> Option<&AtomicU32> {
        if !off.is_multiple_of(4) {
            return None;
        }
        self.words32(off / PAGE_USIZE)
            .map(|f| &f[(off % PAGE_USIZE) / 4])
    }

    /// Acquire-loads the u32 at `off` (0 outside the region).
    #[inline]
    pub fn load(&self, off: usize) -> u32 {
        self.word(off).map_or(0, |w| w.load(Ordering::Acquire))
    }

    /// Release-stores the u32 at `off` (ignored outside the region).
    #[inline]
    pub fn store(&self, off: usize, v: u32) {
        if let Some(w) = self.word(off) {
            w.store(v, Ordering::Release);
        }
    }

    /// The u32 words from byte `off` (4-aligned) to the end of the region
    /// if it is contiguous, else to the end of `off`'s frame (None outside
    /// the region).
    #[inline]
    pub fn words32_from(&self, off: usize) -> Option<&[AtomicU32]> {
        if !off.is_multiple_of(4) || off >= self.len() {
            return None;
        }
        if self.contiguous {
            let all = hal::addrspace::frames_words_u32(self.frames[0], self.frames.len());
            return all.get(off / 4..);
        }
        self.words32(off / PAGE_USIZE)
            .map(|f| &f[(off % PAGE_USIZE) / 4..])
    }

    /// As [`SharedMem::words32_from`], u64 words from an 8-aligned `off`.
    #[inline]
    pub fn words64_from(&self, off: usize) -> Option<&[AtomicU64]> {
        if !off.is_multiple_of(8) || off >= self.len() {
            return None;
        }
        if self.contiguous {
            let all = hal::addrspace::frames_words_u64(self.frames[0], self.frames.len());
            return all.get(off / 8..);
        }
        self.words64(off / PAGE_USIZE)
            .map(|f| &f[(off % PAGE_USIZE) / 8..])
    }

    /// Frame `i` as atomic u32 words (None past the end). The view lives
    /// no longer than `self`, which holds the frame.
    #[inline]
    pub fn words32(&self, i: usize) -> Option<&[AtomicU32; 1024]> {
        self.frames
            .get(i)
            .map(|&pa| hal::addrspace::frame_words_u32(pa))
    }

    /// Frame `i` as atomic u64 words (as [`SharedMem::words32`]).
    #[inline]
    pub fn words64(&self, i: usize) -> Option<&[AtomicU64; 512]> {
        self.frames
            .get(i)
            .map(|&pa| hal::addrspace::frame_words_u64(pa))
    }
}

impl Drop for SharedMem {
    fn drop(&mut self) {
        for &pa in &self.frames {
            refcount::put(pa);
        }
    }
}
