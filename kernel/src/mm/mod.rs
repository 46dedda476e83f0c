//! A process's memory: its page tables (`hal::addrspace`) and its VMAs
//! (`mm::vma`), demand paging, copy-on-write, and fork.
//!
//! Page faults are resolved lazily on the faulting process's torus: frames
//! come from that torus's pool (DESIGN.md). Anonymous private pages are
//! zero-filled on first touch; private file pages are copied from the file;
//! shared anonymous mappings are populated at mmap time so fork can share
//! their frames.

pub mod advise;
pub mod refcount;
pub mod remap;
pub mod shared;
pub mod syscalls;

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;
use hal::addrspace::{AddressSpace, PageFlags};
use mm::vma::{OnFork, Prot, Vma, VmaMap};

use crate::proc::Process;

/// Page size.
pub const PAGE: u64 = 4096;
/// Top of the user stack (just below the canonical hole).
pub const STACK_TOP: u64 = 0x7fff_ffff_f000;
/// mmap placement searches downwards from here.
pub const MMAP_TOP: u64 = 0x7f00_0000_0000;
/// Lowest address mmap hands out.
pub const MMAP_BOTTOM: u64 = 0x1_0000;

/// What backs a file mapping: the tmpfs inode, and the file offset where
/// its bytes stop for this mapping (an ELF segment's file part ends there
/// and the rest of the page is zeros, its .bss; `u64::MAX` for mmap).
/// A file of an ext4 mount is named by `ext` instead (its lock key, see
/// `OpenFile::lock_key`; `ino` unused): its pages come from the mount's
/// page cache through the open file the address space holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backing {
    pub ino: vfs::Ino,
    pub file_end: u64,
    pub ext: Option<crate::fs::locks::LockKey>,
}

/// A process's address space.
pub struct Mm {
    space: AddressSpace,
    pub vmas: VmaMap<Backing>,
    pub brk_start: u64,
    pub brk: u64,
    /// The torus whose frame pool backs this memory.
    pub torus: usize,
    /// Inodes this address space holds open (tmpfs `retain`) because file
    /// mappings page in from them: an unlinked binary keeps its bytes
    /// until the last process mapping it goes.
    held: Vec<vfs::Ino>,
    /// Open ext4 files its mappings page in from: held so the inode,
    /// its cached pages and the mount stay while mapped.
    held_ext: Vec<Arc<crate::fs::file::OpenFile>>,
    _live: crate::objects::Live,
}

/// Whether `pages` frames may be taken now, at once, for memory the
/// kernel fills eagerly (MAP_SHARED anonymous memory, MAP_POPULATE,
/// mremap growing shared anonymous memory): ENOMEM, before any is taken,
/// when more are asked than are free. Taking every free frame and giving
/// them back on failure starved every other process's page faults for as
/// long as it took, and the OOM killer then killed a bystander (fuzz
/// seed 0x2, docs/fuzzing.md). Linux allocates such memory on touch and
/// refuses one request larger than RAM + swap up front (overcommit
/// heuristic); this is the same refusal, measured against what is free
/// because the pages are wanted now; clean pages of ext4's page cache
/// are given back first to make up the difference.
pub fn can_populate(pages: u64) -> KResult<()> {
    let free = crate::frames::free_above_floor() as u64;
    if pages > free {
        let short = usize::try_from(pages - free).unwrap_or(usize::MAX);
        crate::fs::ext4_pages::reclaim(short);
        if pages > crate::frames::free_above_floor() as u64 {
            return Err(Errno::ENOMEM);
        }
    }
    Ok(())
}

/// Pages a read fault in a private file mapping maps at once (64 KiB).
const FAULT_AROUND: u64 = 16;

fn table_frame(torus: usize) -> impl FnMut() -> Option<u64> {
    move || crate::frames::alloc_on(torus)
}

impl Mm {
    /// An empty address space.
    pub fn new(torus: usize) -> KResult<Mm> {
        let space = AddressSpace::new(&mut table_frame(torus)).ok_or(Errno::ENOMEM)?;
        Ok(Mm {
            space,
            vmas: VmaMap::new(),
            brk_start: 0,
            brk: 0,
            torus,
            held: Vec::new(),
            held_ext: Vec::new(),
            _live: crate::objects::Live::new(crate::objects::Obj::AddressSpace),
        })
    }

    /// The page-table root (see [`shared::SharedMm`]).
    pub fn root(&self) -> hal::addrspace::Root {
        self.space.root_handle()
    }

    fn page_flags(prot: Prot) -> PageFlags {
        PageFlags {
            writable: prot.contains(Prot::WRITE),
            executable: prot.contains(Prot::EXEC),
            cow: false,
            file: false,
        }
    }

    /// Maps a freshly allocated frame at `va` (page-aligned) with `prot`.
    pub fn map_new(&mut self, va: u64, prot: Prot, fill: impl FnOnce(u64)) -> KResult<u64> {
        let pa = refcount::alloc(self.torus).ok_or(Errno::ENOMEM)?;
        fill(pa);
        if let Err(e) = self
            .space
            .map(va, pa, Self::page_flags(prot), &mut table_frame(self.torus))
        {
            refcount::put(pa);
            return Err(match e {
                hal::paging::MapError::NoMemory => Errno::ENOMEM,
                _ => Errno::EFAULT,
            });
        }
        Ok(pa)
    }

    /// Maps an existing frame at `va` with one more reference on it: memory
    /// shared with the kernel (io_uring rings). The frame lives until its
    /// owner and every such mapping have let it go.
    pub fn map_shared_frame(&mut self, va: u64, pa: u64, prot: Prot) -> KResult<()> {
        refcount::share(pa);
        if self
            .space
            .map(va, pa, Self::page_flags(prot), &mut table_frame(self.torus))
            .is_err()
        {
            refcount::put(pa);
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// The frame mapped at page `va`, if any.
    pub fn frame_at(&self, va: u64) -> Option<u64> {
        self.space.query(va).map(|(pa, _)| pa)
    }

    /// Writes `data` at `va` into this (not necessarily active) address
    /// space, allocating pages as needed (execve's initial stack).
    pub fn write_initial(&mut self, va: u64, data: &[u8]) -> KResult<()> {
        let mut done = 0usize;
        while done < data.len() {
            let addr = va + done as u64;
            let page = addr & !(PAGE - 1);
            let prot = self.vmas.find(addr).ok_or(Errno::EFAULT)?.prot;
            let pa = match self.frame_at(page) {
                Some(pa) => pa,
                None => self.map_new(page, prot, hal::addrspace::zero_frame)?,
            };
            let off = (addr - page) as usize;
            let n = (PAGE as usize - off).min(data.len() - done);
            hal::addrspace::write_frame(pa, off, &data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Calls `f(va, frame, rights)` for each present page of `[start, end)`.
    pub fn for_each_present(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, u64, PageFlags)) {
        self.space.for_each_present(start, end, f);
    }

    /// Makes page `va` hold `data` (zeros when None) in private memory
    /// of its own: a frame only this address space maps is written in
    /// place; a shared one (fork's copy-on-write, a file's page, the
    /// vDSO) is replaced by a new frame. A migrated process's pages land
    /// here. EFAULT outside every mapping.
    pub fn put_page(&mut self, va: u64, data: Option<&[u8]>) -> KResult<()> {
        let prot = self.vmas.find(va).ok_or(Errno::EFAULT)?.prot;
        let fill = |pa: u64| match data {
            Some(d) => hal::addrspace::write_frame(pa, 0, &d[..d.len().min(PAGE as usize)]),
            None => hal::addrspace::zero_frame(pa),
        };
        match self.space.query(va) {
            Some((pa, f)) if refcount::count(pa) == 1 && !f.file => {
                fill(pa);
                return Ok(());
            }
            Some(_) => self.unmap_pages(va, va + PAGE),
            None => {}
        }
        self.map_new(va, prot, fill).map(|_| ())
    }

    /// Removes the pages of `[start, end)` from the page tables. Their
    /// frames are released only once `unmap_range` has returned, that is
    /// after its TLB shootdown: until then another CPU sharing these
    /// tables (CLONE_VM) may still reach them through a stale translation,
    /// and a frame reused meanwhile would leak or be corrupted.
    pub fn unmap_pages(&mut self, start: u64, end: u64) {
        let mut freed = Vec::new();
        self.space.unmap_range(start, end, &mut |pa| freed.push(pa));
        for pa in freed {
            refcount::put(pa);
        }
    }

    /// Applies a VMA's rights to its present pages (after mprotect).
    /// `shared` (MAP_SHARED) pages are never copy-on-write: a frame that
    /// several processes map there is the same memory for all of them.
    pub fn reprotect(&mut self, start: u64, end: u64, prot: Prot, shared: bool) {
        let w = prot.contains(Prot::WRITE);
        let executable = prot.contains(Prot::EXEC);
        self.space.protect_range(start, end, &mut |pa, f| {
            // A private page several processes still share (fork) stays
            // read-only until its write fault copies it.
            let cow = !shared && (f.cow || (!f.writable && refcount::count(pa) > 1 && w));
            PageFlags {
                writable: w && !cow,
                executable,
                cow: cow && w,
                // Still the file's page while not writable in place.
                file: f.file && (cow || !w),
            }
        });
    }

    /// Inserts a VMA, unmapping whatever it replaces.
    pub fn insert_vma(&mut self, vma: Vma<Backing>) -> KResult<()> {
        for old in self.vmas.insert(vma)? {
            self.unmap_pages(old.start, old.end);
        }
        Ok(())
    }

    /// Resolves a page fault at `addr`. Err means the access is invalid
    /// (SIGSEGV), past the end of a mapped file (EIO: SIGBUS), or memory
    /// ran out (ENOMEM: the process is killed).
    pub fn handle_fault(&mut self, addr: u64, write: bool, exec: bool) -> KResult<()> {
        let vma = self.vmas.find(addr).ok_or(Errno::EFAULT)?.clone();
        let (r, w, x) = (
            vma.prot.contains(Prot::READ),
            vma.prot.contains(Prot::WRITE),
            vma.prot.contains(Prot::EXEC),
        );
        if (write && !w) || (exec && !x) || (!r && !w && !x) {
            return Err(Errno::EFAULT);
        }
        let page = addr & !(PAGE - 1);
        match self.space.query(page) {
            Some((pa, f)) if write && !f.writable => {
                if !f.cow {
                    return Err(Errno::EFAULT);
                }
                let flags = PageFlags {
                    writable: true,
                    executable: x,
                    cow: false,
                    file: false,
                };
                if refcount::count(pa) == 1 {
                    self.space.protect(page, flags);
                } else {
                    let new = refcount::alloc(self.torus).ok_or(Errno::ENOMEM)?;
                    hal::addrspace::copy_frame(new, pa);
                    self.space.unmap(page);
                    refcount::put(pa);
                    self.space
                        .map(page, new, flags, &mut table_frame(self.torus))
                        .map_err(|e| match e {
                            // The OOM killer retries ENOMEM faults: only a
                            // real shortage may say so.
                            hal::paging::MapError::NoMemory => Errno::ENOMEM,
                            _ => Errno::EFAULT,
                        })?;
                }
                Ok(())
            }
            Some(_) => Ok(()), // already resolved (another fault got here first)
            None => {
                let backing = vma.backing;
                if let Some((Backing { ext: Some(key), .. }, off)) = backing {
                    // An offset near 2^64 is past any file: SIGBUS.
                    let index = off.checked_add(page - vma.start).ok_or(Errno::EIO)? / PAGE;
                    let pa = self.ext_page(key, index)?;
                    if vma.shared {
                        return self.map_shared_frame(page, pa, vma.prot);
                    }
                    // MAP_PRIVATE: a copy, as it is when first touched.
                    self.map_new(page, vma.prot, |new| hal::addrspace::copy_frame(new, pa))?;
                    return Ok(());
                }
                if let (true, Some((file, off))) = (vma.shared, backing) {
                    // MAP_SHARED of a file: the file's own page (tmpfs
                    // frames are the page cache), so writes through the
                    // mapping are the file's data, seen by read(2) and by
                    // every other mapper. Past the end: EIO, the SIGBUS.
                    let index = (off + (page - vma.start)) / PAGE;
                    let pa = crate::fs::with(|fs| fs.page_for_mapping(file.ino, index))?;
                    return self.map_shared_frame(page, pa, vma.prot);
                }
                if let Some((file, off)) = backing {
                    return self.private_file_fault(&vma, page, file, off, write);
                }
                self.map_new(page, vma.prot, hal::addrspace::zero_frame)?;
                Ok(())
            }
        }
    }

    /// A fault on an absent page of a private mapping of a tmpfs file
    /// (an ELF segment or a MAP_PRIVATE mmap). A page that holds file
    /// bytes only is the file's own frame, mapped read-only (copy-on-write
    /// in a writable mapping) until a write copies it, as Linux maps its
    /// page cache: no zeroing, no copy. A read fault also maps the other
    /// such pages of the aligned 64 KiB around it that are absent (Linux's
    /// fault-around, `fault_around_bytes`), so a program starting up takes
    /// one fault per 16 pages of its text rather than one per page. A
    /// write fault, a hole and a page the end of the file or of the ELF
    /// segment's file part cuts get a private copy (zeros past the end).
    fn private_file_fault(
        &mut self,
        vma: &Vma<Backing>,
        page: u64,
        file: Backing,
        off: u64,
        write: bool,
    ) -> KResult<()> {
        // An offset near 2^64 is past any file: SIGBUS.
        let file_off = off.checked_add(page - vma.start).ok_or(Errno::EIO)?;
        let (lo, hi) = if write {
            (page, page + PAGE)
        } else {
            let span = FAULT_AROUND * PAGE;
            let base = page & !(span - 1);
            (base.max(vma.start), (base + span).min(vma.end))
        };
        let first = (file_off - (page - lo)) / PAGE;
        let count = (hi - lo) / PAGE;
        // Pages whose bytes all lie before the ELF segment's file end.
        let whole_end = file.file_end / PAGE;
        let mut found = [0u64; FAULT_AROUND as usize];
        let size = crate::fs::with(|fs| {
            fs.whole_pages(
                file.ino,
                first..(first + count).min(whole_end),
                &mut |i, pa| {
                    // Held from here: a truncate cannot free it before it
                    // is mapped (or the reference dropped).
                    refcount::share(pa);
                    found[(i - first) as usize] = pa;
                },
            )
        })?;
        // A page wholly past the end of an mmap'd file: SIGBUS, as Linux
        // (an ELF segment's file_end zero-fills instead).
        if file.file_end == u64::MAX && file_off >= size {
            for pa in found.into_iter().filter(|&pa| pa != 0) {
                refcount::put(pa);
            }
            return Err(Errno::EIO);
        }
        let me = ((page - lo) / PAGE) as usize;
        let mine = core::mem::take(&mut found[me]);
        let flags = PageFlags {
            writable: false,
            executable: vma.prot.contains(Prot::EXEC),
            cow: vma.prot.contains(Prot::WRITE),
            file: true,
        };
        for (i, pa) in found.into_iter().enumerate().take(count as usize) {
            // A page already there stays; a failure to map a neighbour
            // only means it faults later.
            if pa != 0
                && self
                    .space
                    .map(
                        lo + i as u64 * PAGE,
                        pa,
                        flags,
                        &mut table_frame(self.torus),
                    )
                    .is_err()
            {
                refcount::put(pa);
            }
        }
        if mine != 0 && !write {
            return match self
                .space
                .map(page, mine, flags, &mut table_frame(self.torus))
            {
                Ok(()) => Ok(()),
                Err(e) => {
                    refcount::put(mine);
                    match e {
                        hal::paging::MapError::NoMemory => Err(Errno::ENOMEM),
                        // Another thread's fault mapped it first.
                        hal::paging::MapError::AlreadyMapped => Ok(()),
                        _ => Err(Errno::EFAULT),
                    }
                }
            };
        }
        let r = self.map_new(page, vma.prot, |pa| {
            if mine != 0 {
                hal::addrspace::copy_frame(pa, mine);
                return;
            }
            hal::addrspace::zero_frame(pa);
            let want = file.file_end.saturating_sub(file_off).min(PAGE) as usize;
            let mut buf = [0u8; PAGE as usize];
            let n = crate::fs::read_inode(file.ino, file_off, &mut buf[..want]).unwrap_or(0);
            hal::addrspace::write_frame(pa, 0, &buf[..n]);
        });
        if mine != 0 {
            refcount::put(mine);
        }
        r.map(|_| ())
    }

    /// Moves the pages of `[from, from + len)` to `[to, to + len)`
    /// (mremap): page-table entries move, frames stay where they are.
    pub fn move_pages(&mut self, from: u64, to: u64, len: u64) -> KResult<()> {
        self.space
            .move_range(from, to, len, &mut table_frame(self.torus))
            .map_err(|e| match e {
                hal::paging::MapError::NoMemory => Errno::ENOMEM,
                _ => Errno::EINVAL,
            })
    }

    /// A copy-on-write duplicate for fork: private pages become read-only
    /// COW in both; shared pages are shared. A MADV_DONTFORK range is left
    /// out of the child, a MADV_WIPEONFORK one is there without its pages
    /// (zero-filled on touch).
    pub fn fork(&mut self) -> KResult<Mm> {
        let mut child = Mm::new(self.torus)?;
        child.vmas = self.vmas.clone();
        for v in self.vmas.iter().filter(|v| v.fork == OnFork::Skip) {
            child.vmas.take(v.start, v.end);
        }
        child.brk_start = self.brk_start;
        child.brk = self.brk;
        for &ino in &self.held {
            child.hold_file(ino)?;
        }
        child.held_ext = self.held_ext.clone();
        let ranges: Vec<(u64, u64, bool)> = self
            .vmas
            .iter()
            .filter(|v| v.fork == OnFork::Copy)
            .map(|v| (v.start, v.end, v.shared))
            .collect();
        for (start, end, shared) in ranges {
            let r = self.space.fork_range(
                &mut child.space,
                start,
                end,
                shared,
                &mut table_frame(self.torus),
                &mut refcount::share,
            );
            if r.is_err() {
                child.teardown();
                return Err(Errno::ENOMEM);
            }
        }
        Ok(child)
    }

    /// Unmaps everything (frames are released).
    fn teardown(&mut self) {
        let ranges: Vec<(u64, u64)> = self.vmas.iter().map(|v| (v.start, v.end)).collect();
        for (s, e) in ranges {
            self.unmap_pages(s, e);
        }
        self.vmas = VmaMap::new();
    }

    /// Keeps the ext4 file `f` open while this address space exists (its
    /// mappings page in from it).
    pub fn hold_ext(&mut self, f: &Arc<crate::fs::file::OpenFile>) {
        let key = f.lock_key();
        if !self.held_ext.iter().any(|h| h.lock_key() == key) {
            self.held_ext.push(f.clone());
        }
    }

    /// The cached frame of page `index` of the held ext4 file `key`.
    fn ext_page(&self, key: crate::fs::locks::LockKey, index: u64) -> KResult<u64> {
        let f = self
            .held_ext
            .iter()
            .find(|h| h.lock_key() == Some(key))
            .ok_or(Errno::EFAULT)?;
        match &f.kind {
            crate::fs::file::Kind::Ext(m, n) => m.fs.pages.page(&m.fs, *n, index, self.torus),
            _ => Err(Errno::EFAULT),
        }
    }

    /// Writes back the cached pages of the ext4 files mapped in
    /// `[start, end)` and commits them (msync).
    pub fn sync_ext(&self, start: u64, end: u64) -> KResult<()> {
        let keys: Vec<_> = self
            .vmas
            .overlapping(start, end)
            .filter_map(|v| v.backing.and_then(|(b, _)| b.ext))
            .collect();
        for f in self
            .held_ext
            .iter()
            .filter(|h| keys.contains(&h.lock_key().unwrap_or((0, 0))))
        {
            f.sync(false)?;
        }
        Ok(())
    }

    /// Keeps `ino` open while this address space exists (file mappings).
    pub fn hold_file(&mut self, ino: vfs::Ino) -> KResult<()> {
        if !self.held.contains(&ino) {
            crate::fs::with(|fs| fs.retain(ino))?;
            self.held.push(ino);
        }
        Ok(())
    }

    /// Bytes mapped (for RLIMIT_AS).
    /// (resident user pages, page-table pages), for the OOM killer.
    pub fn resident(&self) -> (u64, u64) {
        self.space.resident()
    }

    pub fn mapped(&self) -> u64 {
        self.vmas.total_mapped()
    }
}

/// An address space goes with its last holder, however it goes (the last
/// of several CLONE_VM sharers exiting, an execve, a failed fork or exec, a
/// page fault's temporary reference): its frames, page tables and the
/// files it maps are released here, once.
impl Drop for Mm {
    fn drop(&mut self) {
        self.teardown();
        for ino in core::mem::take(&mut self.held) {
            let _ = crate::fs::with(|fs| fs.release(ino));
        }
        self.space.destroy(&mut |pa| {
            let _ = crate::frames::free(pa);
        });
    }
}

/// Drops the current process's memory at exit: switch to the kernel's page
/// tables first if this was the last user of the address space.
pub fn release_on_exit(p: &Process) {
    let old = p.mm.lock().take();
    if let Some(old) = old {
        // Off these tables even if another process still shares them: no
        // CPU keeps the root of memory it no longer holds loaded (the last
        // holder frees the tables, possibly while this CPU is still here).
        hal::addrspace::activate_kernel();
        // The window where a sharer exiting on another CPU may hold its
        // reference too: whichever of us drops last must free the space.
        crate::inject::delay(crate::inject::Point::MmRelease);
        drop(old);
    }
}

/// Called by the trap handler for a #PF. Returns false when the fault is
/// not resolvable (the caller raises SIGSEGV or applies a probe fixup).
/// Whether `addr` lies in a mapping of the current process (a fault there
/// is SEGV_ACCERR, elsewhere SEGV_MAPERR).
pub fn is_mapped(addr: u64) -> bool {
    let Some(me) = crate::proc::sched::try_current() else {
        return false;
    };
    let Some(mm) = me.mm.lock().clone() else {
        return false;
    };
    let found = mm.lock().vmas.find(addr).is_some();
    found
}

pub fn page_fault(addr: u64, error_code: u64) -> Result<(), Errno> {
    let Some(me) = crate::proc::sched::try_current() else {
        return Err(Errno::EFAULT);
    };
    if addr >= hal::probe::USER_TOP {
        return Err(Errno::EFAULT);
    }
    let write = error_code & 2 != 0;
    let exec = error_code & 16 != 0;
    let mm = me.mm.lock().clone().ok_or(Errno::EFAULT)?;
    let r = mm.lock().handle_fault(addr, write, exec);
    r
}
