//! brk(2), mmap(2), munmap(2), mprotect(2).

use abi::{Errno, KResult};
use mm::vma::{OnFork, Prot, Vma, VmaKind};

use super::{Backing, MMAP_BOTTOM, MMAP_TOP, PAGE};
use crate::proc::sched::current;

const MAP_SHARED: u64 = 1;
const MAP_PRIVATE: u64 = 2;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MAP_POPULATE: u64 = 0x8000;
/// Most a process may map (a memory hog hits ENOMEM here or runs out of
/// frames and is killed; the kernel is never at risk).
pub const ADDRESS_SPACE_LIMIT: u64 = 1 << 40;

/// What the current process may map: RLIMIT_AS, within the kernel's own
/// bound.
pub fn address_space_limit() -> u64 {
    use crate::proc::limits;
    ADDRESS_SPACE_LIMIT.min(limits::soft(limits::RLIMIT_AS))
}

fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

/// brk(2): returns the new break, or the old one when it cannot move.
pub fn brk(addr: u64) -> KResult<u64> {
    let mm = current().mm();
    let mut m = mm.lock();
    if addr == 0 || addr < m.brk_start {
        return Ok(m.brk);
    }
    // Linux answers every break it cannot set (brk(-1) included) with
    // the current one, never an error.
    let Some(new_end) = page_up(addr) else {
        return Ok(m.brk);
    };
    let old_end = page_up(m.brk).unwrap_or(m.brk);
    let heap_start = m.brk_start;
    if new_end > old_end
        && (m.mapped() + (new_end - old_end) > address_space_limit()
            || new_end.saturating_sub(heap_start)
                > crate::proc::limits::soft(crate::proc::limits::RLIMIT_DATA))
    {
        return Ok(m.brk);
    }
    match m.vmas.set_brk(old_end, new_end, heap_start) {
        Ok(removed) => {
            for v in removed {
                m.unmap_pages(v.start, v.end);
            }
            m.brk = addr;
            Ok(addr)
        }
        Err(_) => Ok(m.brk),
    }
}

/// mmap(2): anonymous and file mappings, private or shared. MAP_SHARED
/// anonymous memory (or /dev/zero) is populated at once so fork shares
/// it; a MAP_SHARED file mapping maps the file's own tmpfs pages as they
/// are touched (`Mm::handle_fault`), so it is coherent with read/write
/// and with every other mapping of the file.
pub fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: i64, off: u64) -> KResult<u64> {
    let prot = Prot::from_linux(prot)?;
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    if len == 0 || !off.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let kind = flags & 3;
    if kind != MAP_SHARED && kind != MAP_PRIVATE && kind != 3 {
        return Err(Errno::EINVAL);
    }
    let shared = kind == MAP_SHARED;
    let file = if flags & MAP_ANONYMOUS != 0 {
        None
    } else {
        Some(current().files().lock().get(fd as i32)?)
    };
    // /dev/zero maps as anonymous memory (shared with MAP_SHARED), as on
    // Linux, where programs use it for that.
    let file = file.filter(|f| !matches!(f.kind, crate::fs::file::Kind::Zero));
    let mut ext_file = None;
    let backing: Option<(Backing, u64)> = if let Some(f) = file {
        if let Some(frames) = crate::io_uring::mmap_frames(&f, off, len)? {
            // The rings are shared with the kernel; a private copy of them
            // would be useless (Linux maps them shared in any case).
            if kind == MAP_PRIVATE {
                return Err(Errno::EINVAL);
            }
            return map_frames(addr, len, prot, flags, &frames);
        }
        // A tmpfs file, or an ext4 file (through its mount's page cache).
        let ext = match &f.kind {
            crate::fs::file::Kind::Ext(m, n) => {
                if m.fs.file_type(*n)? != vfs::FileType::Regular {
                    return Err(Errno::ENODEV);
                }
                f.lock_key()
            }
            _ => None,
        };
        let ino = match ext {
            Some(_) => 0,
            None => f.ino().ok_or(Errno::ENODEV)?,
        };
        // A shared writable mapping writes the file: it needs a
        // descriptor open for writing, as on Linux.
        if !f.readable() || (shared && prot.contains(Prot::WRITE) && !f.writable()) {
            return Err(Errno::EACCES);
        }
        if ext.is_some() {
            ext_file = Some(f.clone());
        }
        Some((
            Backing {
                ino,
                file_end: u64::MAX,
                ext,
            },
            off,
        ))
    } else {
        None
    };
    let populate = shared && backing.is_none() || flags & MAP_POPULATE != 0;
    if populate {
        // Only the file's pages populate (the rest is SIGBUS territory).
        let pages = match &backing {
            Some((file, off)) => {
                let size = crate::fs::with(|fs| fs.stat(file.ino)).map_or(0, |st| st.size);
                (size.max(0) as u64)
                    .saturating_sub(*off)
                    .min(len)
                    .div_ceil(PAGE)
            }
            None => len / PAGE,
        };
        super::can_populate(pages)?;
    }
    let mm = current().mm();
    let mut m = mm.lock();
    let start = place(&m, addr, len, flags)?;
    // What MAP_FIXED replaces does not count twice.
    let replaced = m.vmas.mapped_in(start, start.saturating_add(len));
    if (m.mapped() - replaced).saturating_add(len) > address_space_limit() {
        return Err(Errno::ENOMEM);
    }
    match (&backing, &ext_file) {
        (Some(_), Some(f)) => m.hold_ext(f),
        (Some((file, _)), None) => m.hold_file(file.ino)?,
        _ => {}
    }
    let kind = if backing.is_some() {
        VmaKind::File
    } else {
        VmaKind::Anon
    };
    m.insert_vma(Vma {
        start,
        end: start + len,
        prot,
        shared,
        fork: OnFork::Copy,
        kind,
        backing,
    })?;
    if populate {
        let mut va = start;
        while va < start + len {
            if let Err(e) = m.handle_fault(va, false, false).or_else(|e| match e {
                Errno::EIO => Err(e),
                _ => m.handle_fault(va, true, false),
            }) {
                if e == Errno::EIO {
                    break; // past the end of the file: nothing to populate
                }
                let removed = m.vmas.unmap(start, len).unwrap_or_default();
                for v in removed {
                    m.unmap_pages(v.start, v.end);
                }
                return Err(if e == Errno::ENOMEM {
                    Errno::ENOMEM
                } else {
                    Errno::EACCES
                });
            }
            va += PAGE;
        }
    }
    Ok(start)
}

/// Where a mapping of `len` bytes goes: `addr` with MAP_FIXED(_NOREPLACE),
/// else a free range (near `addr` if possible).
fn place(m: &super::Mm, addr: u64, len: u64, flags: u64) -> KResult<u64> {
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        if !addr.is_multiple_of(PAGE) || addr < MMAP_BOTTOM {
            return Err(Errno::EINVAL);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && !m.vmas.is_free(addr, addr + len) {
            return Err(Errno::EEXIST);
        }
        return Ok(addr);
    }
    m.vmas
        .find_free(len, addr & !(PAGE - 1), MMAP_BOTTOM, MMAP_TOP)
        .ok_or(Errno::ENOMEM)
}

/// A shared mapping of existing kernel frames (an io_uring ring fd): a
/// shared VMA without backing, every page present from the start, so
/// faults, fork and munmap treat it as shared anonymous memory; each
/// mapped page holds a reference on its frame.
fn map_frames(addr: u64, len: u64, prot: Prot, flags: u64, frames: &[u64]) -> KResult<u64> {
    let mm = current().mm();
    let mut m = mm.lock();
    if m.mapped().saturating_add(len) > address_space_limit() {
        return Err(Errno::ENOMEM);
    }
    let start = place(&m, addr, len, flags)?;
    m.insert_vma(Vma {
        start,
        end: start + len,
        prot,
        shared: true,
        fork: OnFork::Copy,
        kind: VmaKind::Anon,
        backing: None,
    })?;
    for (i, &pa) in frames.iter().enumerate() {
        if let Err(e) = m.map_shared_frame(start + i as u64 * PAGE, pa, prot) {
            for v in m.vmas.unmap(start, len).unwrap_or_default() {
                m.unmap_pages(v.start, v.end);
            }
            return Err(e);
        }
    }
    Ok(start)
}

/// munmap(2).
pub fn munmap(addr: u64, len: u64) -> KResult<u64> {
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    let mm = current().mm();
    let mut m = mm.lock();
    for v in m.vmas.unmap(addr, len)? {
        m.unmap_pages(v.start, v.end);
    }
    Ok(0)
}

/// msync(2): the cached pages of the ext4 files mapped in the range are
/// written back and committed (MS_ASYNC too: nothing runs later to do
/// it). tmpfs and anonymous memory have nowhere to go. ENOMEM when part of
/// the range is not mapped, as on Linux.
pub fn msync(addr: u64, len: u64, flags: u64) -> KResult<u64> {
    const MS_ASYNC: u64 = 1;
    const MS_INVALIDATE: u64 = 2;
    const MS_SYNC: u64 = 4;
    if !addr.is_multiple_of(PAGE)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == (MS_ASYNC | MS_SYNC)
    {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
    let mm = current().mm();
    let m = mm.lock();
    let mut at = addr;
    for v in m.vmas.overlapping(addr, end) {
        if v.start > at {
            return Err(Errno::ENOMEM);
        }
        at = v.end;
    }
    if at < end {
        return Err(Errno::ENOMEM);
    }
    m.sync_ext(addr, end)?;
    Ok(0)
}

/// mprotect(2).
pub fn mprotect(addr: u64, len: u64, prot: u64) -> KResult<u64> {
    let prot = Prot::from_linux(prot)?;
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let mm = current().mm();
    let mut m = mm.lock();
    m.vmas.protect(addr, len, prot)?;
    // Per VMA: whether its pages may become copy-on-write depends on
    // whether it is shared.
    let pieces: alloc::vec::Vec<(u64, u64, bool)> = m
        .vmas
        .overlapping(addr, addr + len)
        .map(|v| (v.start.max(addr), v.end.min(addr + len), v.shared))
        .collect();
    for (s, e, shared) in pieces {
        m.reprotect(s, e, prot, shared);
    }
    Ok(0)
}
