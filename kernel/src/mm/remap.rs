//! mremap(2), in the order Linux 6.1's `mremap` checks and acts.
//!
//! Moving never copies memory: the page-table entries move to the new
//! address (`Mm::move_pages`), so private pages keep their frames and
//! copy-on-write state and MAP_SHARED pages (tmpfs page-cache frames,
//! shared anonymous frames) keep being the same memory as every other
//! mapping of them. The old range's translations are flushed, on every
//! CPU that uses these tables, before the address-space lock is let go.

use abi::{Errno, KResult};
use mm::vma::{Vma, VmaKind};

use super::syscalls::address_space_limit;
use super::{Backing, Mm, MMAP_BOTTOM, MMAP_TOP, PAGE};
use crate::proc::sched::current;

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;

fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

/// mremap(2).
pub fn mremap(addr: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> KResult<u64> {
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    // DONTUNMAP always moves and never resizes (checked on the lengths
    // as given, before rounding, as Linux does).
    if flags & MREMAP_DONTUNMAP != 0 && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len) {
        return Err(Errno::EINVAL);
    }
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
    if new_len == 0 {
        return Err(Errno::EINVAL);
    }
    let mm = current().mm();
    let mut m = mm.lock();
    if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return remap_to(&mut m, addr, old_len, new_addr, new_len, flags);
    }
    // Shrinking (or the same size) is an unmap of the tail.
    if old_len >= new_len {
        if old_len > new_len {
            let tail = addr.checked_add(new_len).ok_or(Errno::EINVAL)?;
            for v in m.vmas.unmap(tail, old_len - new_len)? {
                m.unmap_pages(v.start, v.end);
            }
        }
        return Ok(addr);
    }
    let vma = resizable(&m, addr, old_len, new_len)?;
    // In place, if the range ends where its VMA does and what follows is
    // free.
    if addr + old_len == vma.end && m.vmas.grow(vma.end, addr + new_len).is_ok() {
        populate_shared(&mut m, &vma, addr + old_len, addr + new_len)?;
        return Ok(addr);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let to = m
        .vmas
        .find_free(new_len, 0, MMAP_BOTTOM, MMAP_TOP)
        .ok_or(Errno::ENOMEM)?;
    move_vma(&mut m, &vma, addr, old_len, to, new_len, false)
}

/// MREMAP_FIXED and/or MREMAP_DONTUNMAP (Linux's `mremap_to`).
fn remap_to(
    m: &mut Mm,
    addr: u64,
    mut old_len: u64,
    new_addr: u64,
    new_len: u64,
    flags: u64,
) -> KResult<u64> {
    if !new_addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if new_len > hal::probe::USER_TOP || new_addr > hal::probe::USER_TOP - new_len {
        return Err(Errno::EINVAL);
    }
    // The old and new ranges must not overlap.
    if addr.saturating_add(old_len) > new_addr && new_addr + new_len > addr {
        return Err(Errno::EINVAL);
    }
    let dontunmap = flags & MREMAP_DONTUNMAP != 0;
    if dontunmap && m.mapped().saturating_add(old_len) > address_space_limit() {
        return Err(Errno::ENOMEM);
    }
    if flags & MREMAP_FIXED != 0 {
        if new_addr < MMAP_BOTTOM {
            return Err(Errno::EPERM);
        }
        for v in m.vmas.unmap(new_addr, new_len)? {
            m.unmap_pages(v.start, v.end);
        }
    }
    if old_len > new_len {
        for v in m.vmas.unmap(addr + new_len, old_len - new_len)? {
            m.unmap_pages(v.start, v.end);
        }
        old_len = new_len;
    }
    let vma = resizable(m, addr, old_len, new_len)?;
    let to = if flags & MREMAP_FIXED != 0 {
        new_addr
    } else {
        m.vmas
            .find_free(new_len, new_addr, MMAP_BOTTOM, MMAP_TOP)
            .ok_or(Errno::ENOMEM)?
    };
    move_vma(m, &vma, addr, old_len, to, new_len, dontunmap)
}

/// The VMA holding `[addr, addr + old_len)` whole, if it may become
/// `new_len` long (Linux's `vma_to_resize`).
fn resizable(m: &Mm, addr: u64, old_len: u64, new_len: u64) -> KResult<Vma<Backing>> {
    let vma = m.vmas.find(addr).ok_or(Errno::EFAULT)?.clone();
    // No remapping across VMA boundaries.
    if old_len > vma.end - addr {
        return Err(Errno::EFAULT);
    }
    // old_len 0 duplicates a shared mapping on Linux; refused for private
    // ones there, and for all here.
    if old_len == 0 {
        return Err(Errno::EINVAL);
    }
    if new_len == old_len {
        return Ok(vma);
    }
    if let Some((_, off)) = &vma.backing {
        let pgoff = off + (addr - vma.start);
        pgoff.checked_add(new_len).ok_or(Errno::EINVAL)?;
    }
    if new_len > old_len && m.mapped().saturating_add(new_len - old_len) > address_space_limit() {
        return Err(Errno::ENOMEM);
    }
    // Shared anonymous memory is populated as it grows.
    if vma.shared && vma.backing.is_none() && new_len > old_len {
        super::can_populate((new_len - old_len) / PAGE)?;
    }
    Ok(vma)
}

/// Moves `[addr, addr + old_len)` of `vma` to `to`, `new_len` long:
/// the pages move, the rest of the new range pages in as the VMA says
/// (zeros, or the file). With `keep_old` (MREMAP_DONTUNMAP) the old range
/// stays mapped, empty.
fn move_vma(
    m: &mut Mm,
    vma: &Vma<Backing>,
    addr: u64,
    old_len: u64,
    to: u64,
    new_len: u64,
    keep_old: bool,
) -> KResult<u64> {
    let mut moved = Vma {
        start: to,
        end: to + new_len,
        prot: vma.prot,
        shared: vma.shared,
        fork: vma.fork,
        // The heap and the stack are places, not contents: moved away they
        // are anonymous memory.
        kind: match vma.kind {
            VmaKind::Heap | VmaKind::Stack => VmaKind::Anon,
            k => k,
        },
        backing: vma.backing.map(|(b, off)| (b, off + (addr - vma.start))),
    };
    if keep_old {
        moved.end = to + old_len;
    }
    // The destination first (whatever was there goes), then the pages.
    m.insert_vma(moved.clone())?;
    if let Err(e) = m.move_pages(addr, to, old_len) {
        for v in m.vmas.take(to, to + new_len) {
            m.unmap_pages(v.start, v.end);
        }
        return Err(e);
    }
    if !keep_old {
        m.vmas.take(addr, addr + old_len);
    }
    populate_shared(m, &moved, to + old_len, to + new_len)?;
    Ok(to)
}

/// New pages of a shared anonymous mapping exist from the start (fork
/// shares frames, not an object), as mmap makes them.
fn populate_shared(m: &mut Mm, vma: &Vma<Backing>, from: u64, to: u64) -> KResult<()> {
    if !(vma.shared && vma.backing.is_none()) {
        return Ok(());
    }
    let mut va = from;
    while va < to {
        if m.frame_at(va).is_none() {
            m.map_new(va, vma.prot, hal::addrspace::zero_frame)?;
        }
        va += PAGE;
    }
    Ok(())
}
