//! The vDSO (kernel/vdso/vdso.S, linked by build.rs): clock_gettime,
//! gettimeofday, time and getcpu run in user mode, reading the TSC and
//! the clock's parameters from a data page (vvar). Both are built once at
//! boot into frames that every process maps read-only (read+exec for the
//! code) at execve, with the vvar page just below the image, where the
//! code looks for it. The mappings are private: a write (after mprotect)
//! copies the page, as for any page shared since fork.

use abi::{Errno, KResult};
use alloc::vec::Vec;
use spin::Once;

use mm::vma::{OnFork, Prot, Vma, VmaKind};

use crate::mm::{Mm, PAGE};

/// The linked vDSO: one PT_LOAD whose addresses are its file offsets.
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// vvar offsets (vdso.S): TSC at boot, ns multiplier, realtime offset.
const VVAR_TSC_AT_BOOT: usize = 0;
const VVAR_NS_MULT: usize = 8;
const VVAR_REALTIME: usize = 16;

/// The frames: vvar first, then the image's pages.
static FRAMES: Once<Vec<u64>> = Once::new();

/// Builds the vvar page and copies the image into frames (after the
/// clock is calibrated). Without them processes simply get no vDSO.
pub fn init() {
    FRAMES.call_once(|| {
        let pages = 1 + IMAGE.len().div_ceil(PAGE as usize);
        let mut frames = Vec::with_capacity(pages);
        for _ in 0..pages {
            match crate::mm::refcount::alloc(0) {
                Some(pa) => {
                    hal::addrspace::zero_frame(pa);
                    frames.push(pa);
                }
                None => return Vec::new(),
            }
        }
        write_vvar(frames[0], 0);
        for (i, chunk) in IMAGE.chunks(PAGE as usize).enumerate() {
            hal::addrspace::write_frame(frames[1 + i], 0, chunk);
        }
        frames
    });
}

/// Publishes a new CLOCK_REALTIME offset (clock_settime) to every
/// process's vvar page (one frame, mapped read-only into each).
pub fn set_realtime_offset(offset: u64) {
    if let Some(frames) = FRAMES.get().filter(|f| !f.is_empty()) {
        hal::addrspace::write_frame(frames[0], VVAR_REALTIME, &offset.to_le_bytes());
    }
}

/// A private vvar page whose monotonic clocks read `shift_ns` later than
/// this machine's (its realtime stays this machine's): a process moved
/// here from another machine keeps its home's monotonic time. The caller
/// owns one reference to the frame (`refcount::put` when done).
pub fn shifted_vvar(shift_ns: i64) -> Option<u64> {
    FRAMES.get().filter(|f| !f.is_empty())?;
    let pa = crate::mm::refcount::alloc(0)?;
    hal::addrspace::zero_frame(pa);
    write_vvar(pa, shift_ns);
    Some(pa)
}

/// Writes a vvar page: this machine's clock parameters with monotonic
/// time `shift_ns` later (0: the machine's own page; a [`shifted_vvar`]
/// page is rewritten for another shift while nothing reads it, its one
/// process being in the kernel).
pub fn write_vvar(pa: u64, shift_ns: i64) {
    let (tsc_at_boot, ns_mult) = hal::time::clock_params();
    // ns = ((tsc - base) * mult) >> 32: `shift_ns` more ns is this many
    // ticks less of `base`.
    let ticks = (i128::from(shift_ns) << 32) / i128::from(ns_mult.max(1));
    let base = (i128::from(tsc_at_boot) - ticks) as u64;
    let realtime = crate::clock::offset().wrapping_sub(shift_ns as u64);
    hal::addrspace::write_frame(pa, VVAR_TSC_AT_BOOT, &base.to_le_bytes());
    hal::addrspace::write_frame(pa, VVAR_NS_MULT, &ns_mult.to_le_bytes());
    hal::addrspace::write_frame(pa, VVAR_REALTIME, &realtime.to_le_bytes());
}

/// Maps the vvar page and the vDSO into a new address space; the
/// vDSO's address (AT_SYSINFO_EHDR), or None if there is none.
pub fn map(m: &mut Mm) -> KResult<Option<u64>> {
    let Some(frames) = FRAMES.get().filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let len = frames.len() as u64 * PAGE;
    let start = m
        .vmas
        .find_free(len, 0, crate::mm::MMAP_BOTTOM, crate::mm::MMAP_TOP)
        .ok_or(Errno::ENOMEM)?;
    for (range, prot) in [
        (start..start + PAGE, Prot::READ),
        (start + PAGE..start + len, Prot::READ | Prot::EXEC),
    ] {
        m.insert_vma(Vma {
            start: range.start,
            end: range.end,
            prot,
            shared: false,
            fork: OnFork::Copy,
            kind: VmaKind::Anon,
            backing: None,
        })?;
    }
    for (i, &pa) in frames.iter().enumerate() {
        let prot = if i == 0 {
            Prot::READ
        } else {
            Prot::READ | Prot::EXEC
        };
        m.map_shared_frame(start + i as u64 * PAGE, pa, prot)?;
    }
    Ok(Some(start + PAGE))
}

/// Which of the vDSO's frames (vvar first) `pa` is, if it is one: a
/// migrated process's copy maps the destination machine's own frames
/// there rather than a copy of this machine's clock parameters.
pub fn frame_index(pa: u64) -> Option<usize> {
    FRAMES.get()?.iter().position(|&f| f == pa)
}

/// The vDSO's frame `i` (vvar first).
pub fn frame(i: usize) -> Option<u64> {
    FRAMES.get()?.get(i).copied()
}
