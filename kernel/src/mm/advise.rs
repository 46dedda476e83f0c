//! madvise(2): what the advice changes here, and Linux 6.1's errors.
//!
//! Advice that only tunes Linux's readahead, reclaim, THP or KSM is
//! accepted and does nothing (there is no swap, no readahead and no huge
//! user page here): the program behaves the same either way. What changes
//! what a program sees is done: MADV_DONTNEED/MADV_FREE drop private pages
//! (the next touch gives zeros, or the file's bytes again for a private
//! file mapping), MADV_DONTFORK/MADV_WIPEONFORK change what fork gives
//! the child, MADV_POPULATE_* fault the pages in.

use abi::{Errno, KResult};
use alloc::vec::Vec;
use mm::vma::OnFork;

use super::PAGE;
use crate::proc::sched::current;

const MADV_NORMAL: u64 = 0;
const MADV_RANDOM: u64 = 1;
const MADV_SEQUENTIAL: u64 = 2;
const MADV_WILLNEED: u64 = 3;
const MADV_DONTNEED: u64 = 4;
const MADV_FREE: u64 = 8;
const MADV_REMOVE: u64 = 9;
const MADV_DONTFORK: u64 = 10;
const MADV_DOFORK: u64 = 11;
const MADV_MERGEABLE: u64 = 12;
const MADV_UNMERGEABLE: u64 = 13;
const MADV_HUGEPAGE: u64 = 14;
const MADV_NOHUGEPAGE: u64 = 15;
const MADV_DONTDUMP: u64 = 16;
const MADV_DODUMP: u64 = 17;
const MADV_WIPEONFORK: u64 = 18;
const MADV_KEEPONFORK: u64 = 19;
const MADV_COLD: u64 = 20;
const MADV_PAGEOUT: u64 = 21;
const MADV_POPULATE_READ: u64 = 22;
const MADV_POPULATE_WRITE: u64 = 23;
const MADV_DONTNEED_LOCKED: u64 = 24;
const MADV_COLLAPSE: u64 = 25;

/// madvise(2).
pub fn madvise(start: u64, len: u64, advice: u64) -> KResult<u64> {
    match advice {
        MADV_NORMAL | MADV_RANDOM | MADV_SEQUENTIAL | MADV_WILLNEED | MADV_DONTNEED | MADV_FREE
        | MADV_REMOVE | MADV_DONTFORK | MADV_DOFORK | MADV_MERGEABLE | MADV_UNMERGEABLE
        | MADV_HUGEPAGE | MADV_NOHUGEPAGE | MADV_DONTDUMP | MADV_DODUMP | MADV_WIPEONFORK
        | MADV_KEEPONFORK | MADV_COLD | MADV_PAGEOUT | MADV_POPULATE_READ | MADV_POPULATE_WRITE
        | MADV_DONTNEED_LOCKED | MADV_COLLAPSE => {}
        // MADV_HWPOISON and MADV_SOFT_OFFLINE too: there is no memory
        // failure handling (Linux without CONFIG_MEMORY_FAILURE).
        _ => return Err(Errno::EINVAL),
    }
    if !start.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let len = len
        .checked_add(PAGE - 1)
        .map(|l| l & !(PAGE - 1))
        .ok_or(Errno::EINVAL)?;
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    if end == start {
        return Ok(0);
    }
    let mm = current().mm();
    let mut m = mm.lock();
    // The mapped pieces of the range, and whether it has holes (ENOMEM,
    // after the advice is applied to what is mapped, as Linux).
    let pieces: Vec<(u64, u64, bool, bool)> = m
        .vmas
        .overlapping(start, end)
        .map(|v| {
            (
                v.start.max(start),
                v.end.min(end),
                v.shared,
                v.backing.is_none(),
            )
        })
        .collect();
    let mapped: u64 = pieces.iter().map(|p| p.1 - p.0).sum();
    let holes = mapped != end - start;
    match advice {
        MADV_DONTNEED | MADV_DONTNEED_LOCKED | MADV_FREE => {
            if advice == MADV_FREE && pieces.iter().any(|&(_, _, shared, anon)| shared || !anon) {
                // Only for private anonymous memory, as Linux.
                return Err(Errno::EINVAL);
            }
            for &(s, e, shared, anon) in &pieces {
                // Shared anonymous memory has no object behind its frames
                // here: dropping them would lose the data Linux keeps in
                // shmem, so its pages stay (the refault would give the
                // same bytes on Linux). Everything else refaults from
                // zeros or from the file.
                if !(shared && anon) {
                    m.unmap_pages(s, e);
                }
            }
        }
        MADV_REMOVE => {
            if pieces.iter().any(|p| !p.2) {
                return Err(Errno::EINVAL);
            }
            // Punching holes through a shared mapping is not done yet.
            return Err(Errno::EOPNOTSUPP);
        }
        MADV_WIPEONFORK => {
            if pieces.iter().any(|&(_, _, shared, anon)| shared || !anon) {
                return Err(Errno::EINVAL);
            }
            m.vmas.update(start, end, |v| {
                if v.fork == OnFork::Copy {
                    v.fork = OnFork::Wipe;
                }
            })?;
        }
        MADV_KEEPONFORK => {
            m.vmas.update(start, end, |v| {
                if v.fork == OnFork::Wipe {
                    v.fork = OnFork::Copy;
                }
            })?;
        }
        MADV_DONTFORK => {
            m.vmas.update(start, end, |v| v.fork = OnFork::Skip)?;
        }
        MADV_DOFORK => {
            m.vmas.update(start, end, |v| {
                if v.fork == OnFork::Skip {
                    v.fork = OnFork::Copy;
                }
            })?;
        }
        MADV_POPULATE_READ | MADV_POPULATE_WRITE => {
            let write = advice == MADV_POPULATE_WRITE;
            for &(s, e, _, _) in &pieces {
                let mut va = s;
                while va < e {
                    m.handle_fault(va, write, false).map_err(|err| match err {
                        // No right to read or write there: EINVAL; past
                        // a file's end (SIGBUS): EFAULT.
                        Errno::EFAULT => Errno::EINVAL,
                        Errno::EIO => Errno::EFAULT,
                        other => other,
                    })?;
                    va += PAGE;
                }
            }
        }
        _ => {} // hints only (see the module comment)
    }
    if holes {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}
