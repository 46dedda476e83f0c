//! User address spaces: one PML4 per process whose upper half is shared
//! with the kernel, with the lower half private; plus the physical-frame
//! helpers the page-fault and fork paths need.
//!
//! Frames are owned by the kernel's frame pools; this module only maps
//! them. The frame helpers ([`zero_frame`], [`copy_frame`], [`write_frame`])
//! must only be given frames the caller owns (from the frame allocator):
//! that is the contract that keeps them from corrupting the kernel.

use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::{MapToError, TranslateResult};
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as F, PhysFrame, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::paging::{phys_to_virt, MapError, PAGE_SIZE, PHYS_OFFSET};
use crate::probe::USER_TOP;

/// Rights of a user page. `cow` marks a read-only page that is private and
/// must be copied on the first write (kept in a software-available bit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageFlags {
    /// Writes allowed.
    pub writable: bool,
    /// Instruction fetches allowed.
    pub executable: bool,
    /// Copy-on-write (only meaningful when not writable).
    pub cow: bool,
    /// A file's own page in a private mapping, not yet copied (read-only;
    /// kept in a software-available bit). Fork leaves it out of the child,
    /// whose first touch maps the file's page again, as Linux's fork does
    /// not copy the page-cache pages of a private file mapping.
    pub file: bool,
}

impl PageFlags {
    fn to_x86(self) -> F {
        let mut f = F::PRESENT | F::USER_ACCESSIBLE;
        if self.writable {
            f |= F::WRITABLE;
        }
        if !self.executable && crate::paging::nx_enabled() {
            f |= F::NO_EXECUTE;
        }
        if self.cow {
            f |= F::BIT_9;
        }
        if self.file {
            f |= F::BIT_10;
        }
        f
    }

    fn from_x86(f: F) -> PageFlags {
        PageFlags {
            writable: f.contains(F::WRITABLE),
            executable: !f.contains(F::NO_EXECUTE),
            cow: f.contains(F::BIT_9),
            file: f.contains(F::BIT_10),
        }
    }
}

/// A process's page tables.
pub struct AddressSpace {
    pml4: u64,
    /// The lower-half table frames made under the PML4, while they fit:
    /// `destroy` frees these without walking 512-entry tables to find
    /// them (most processes need far fewer; tables are only freed there).
    made: TableList,
}

/// How many table frames [`TableList`] remembers.
const LISTED: usize = 48;

/// The table frames an address space made, or `None` once more were made
/// than fit (then `destroy` walks the tables).
struct TableList {
    frames: [u64; LISTED],
    len: Option<usize>,
}

impl TableList {
    fn note(&mut self, pa: u64) {
        self.len = match self.len {
            Some(n) if n < LISTED => {
                self.frames[n] = pa;
                Some(n + 1)
            }
            _ => None,
        };
    }
}

fn table(pa: u64) -> &'static mut PageTable {
    // SAFETY: pa is a page-table frame of this address space, reached via
    // the direct map; the owning AddressSpace is borrowed mutably or the
    // tables are only read.
    unsafe { &mut *(phys_to_virt(pa) as *mut PageTable) }
}

struct FrameSource<'a>(&'a mut dyn FnMut() -> Option<u64>);

// SAFETY: the closure hands out unused frames from the kernel's pools.
unsafe impl x86_64::structures::paging::FrameAllocator<Size4KiB> for FrameSource<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        (self.0)().map(|pa| PhysFrame::containing_address(PhysAddr::new(pa)))
    }
}

fn check_user(va: u64) -> Result<(), MapError> {
    if va >= USER_TOP || !va.is_multiple_of(PAGE_SIZE) {
        Err(MapError::BadAddress)
    } else {
        Ok(())
    }
}

impl AddressSpace {
    /// A new, empty user half sharing the kernel's upper half.
    pub fn new(frames: &mut dyn FnMut() -> Option<u64>) -> Option<AddressSpace> {
        let pa = frames()?;
        let t = table(pa);
        t.zero();
        let k = table(crate::paging::kernel_pml4());
        for i in 256..512 {
            t[i] = k[i].clone();
        }
        Some(AddressSpace {
            pml4: pa,
            made: TableList {
                frames: [0; LISTED],
                len: Some(0),
            },
        })
    }

    fn mapper(&self) -> OffsetPageTable<'static> {
        // SAFETY: the direct map covers all page-table frames.
        unsafe { OffsetPageTable::new(table(self.pml4), VirtAddr::new(PHYS_OFFSET)) }
    }

    fn is_active(&self) -> bool {
        Cr3::read().0.start_address().as_u64() == self.pml4
    }

    /// Maps frame `pa` at user address `va`.
    pub fn map(
        &mut self,
        va: u64,
        pa: u64,
        flags: PageFlags,
        frames: &mut dyn FnMut() -> Option<u64>,
    ) -> Result<(), MapError> {
        check_user(va)?;
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
        let frame = PhysFrame::containing_address(PhysAddr::new(pa));
        let parent = F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE;
        let mut mapper = self.mapper();
        let made = &mut self.made;
        let mut noted = || {
            let pa = frames()?;
            made.note(pa);
            Some(pa)
        };
        // SAFETY: a user page maps a frame the caller owns; kernel memory
        // is never reachable through it.
        let r = unsafe {
            mapper.map_to_with_table_flags(
                page,
                frame,
                flags.to_x86(),
                parent,
                &mut FrameSource(&mut noted),
            )
        };
        match r {
            Ok(f) => {
                // A fresh mapping needs no flush: the TLB caches no
                // not-present translations on x86.
                f.ignore();
                Ok(())
            }
            Err(MapToError::PageAlreadyMapped(_)) | Err(MapToError::ParentEntryHugePage) => {
                Err(MapError::AlreadyMapped)
            }
            Err(MapToError::FrameAllocationFailed) => Err(MapError::NoMemory),
        }
    }

    /// Removes the mapping at `va`, returning the frame it mapped.
    pub fn unmap(&mut self, va: u64) -> Option<u64> {
        check_user(va).ok()?;
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
        let (frame, flush) = self.mapper().unmap(page).ok()?;
        if self.is_active() {
            flush.flush();
        } else {
            flush.ignore();
        }
        crate::tlb::shootdown(self.pml4);
        Some(frame.start_address().as_u64())
    }

    /// The frame and rights mapped at page `va`.
    pub fn query(&self, va: u64) -> Option<(u64, PageFlags)> {
        if va >= USER_TOP {
            return None;
        }
        match self
            .mapper()
            .translate(VirtAddr::new(va & !(PAGE_SIZE - 1)))
        {
            TranslateResult::Mapped { frame, flags, .. } => {
                Some((frame.start_address().as_u64(), PageFlags::from_x86(flags)))
            }
            _ => None,
        }
    }

    /// Changes the rights of the page at `va`; false if nothing is mapped.
    pub fn protect(&mut self, va: u64, flags: PageFlags) -> bool {
        if check_user(va).is_err() {
            return false;
        }
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
        // SAFETY: changes rights of a user page only.
        match unsafe { self.mapper().update_flags(page, flags.to_x86()) } {
            Ok(f) => {
                if self.is_active() {
                    f.flush();
                } else {
                    f.ignore();
                }
                crate::tlb::shootdown(self.pml4);
                true
            }
            Err(_) => false,
        }
    }

    /// Unmaps every page in [`start`, `end`), calling `f` with each frame
    /// that was mapped. One TLB flush at the end instead of one per page.
    pub fn unmap_range(&mut self, start: u64, end: u64, f: &mut dyn FnMut(u64)) {
        let mut n = 0usize;
        walk_leaves(self.pml4, start, end, &mut |_, e| {
            f(e.addr().as_u64());
            e.set_unused();
            n += 1;
        });
        if n > 0 {
            self.flush_range(start, end, n);
        }
    }

    /// Gives every mapped user page in [`start`, `end`) the rights
    /// `f(frame, old rights)` returns, with one flush (and one shootdown)
    /// for the whole range rather than one per page.
    pub fn protect_range(
        &mut self,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u64, PageFlags) -> PageFlags,
    ) {
        let mut changed = 0usize;
        walk_leaves(self.pml4, start, end, &mut |_, e| {
            let old = PageFlags::from_x86(e.flags());
            let new = f(e.addr().as_u64(), old);
            if new != old {
                e.set_flags(new.to_x86());
                changed += 1;
            }
        });
        if changed > 0 {
            self.flush_range(start, end, changed);
        }
    }

    /// Copies the mappings of [`start`, `end`) into `child` for fork: a
    /// shared range keeps its rights in both; in a private range every
    /// writable page becomes read-only copy-on-write in both. `on_page`
    /// runs once per page mapped into the child (to count the reference).
    /// On error the child keeps what was mapped so far (the caller tears
    /// it down) and the parent stays consistent (read-only COW pages are
    /// still correct for the parent: its next write copies or reclaims).
    pub fn fork_range(
        &mut self,
        child: &mut AddressSpace,
        start: u64,
        end: u64,
        shared: bool,
        frames: &mut dyn FnMut() -> Option<u64>,
        on_page: &mut dyn FnMut(u64),
    ) -> Result<(), MapError> {
        let mut result = Ok(());
        let mut protected = 0usize;
        let mut cache: Option<(u64, u64)> = None;
        walk_leaves(self.pml4, start, end, &mut |va, e| {
            if result.is_err() {
                return;
            }
            let mut flags = e.flags();
            if !shared && flags.contains(F::BIT_10) {
                // A file's page: the child maps it from the file when it
                // first touches it.
                return;
            }
            if !shared && flags.contains(F::WRITABLE) {
                flags.remove(F::WRITABLE);
                flags.insert(F::BIT_9);
                e.set_flags(flags);
                protected += 1;
            }
            let pa = e.addr();
            match child.leaf_table(va, frames, &mut cache) {
                Ok(l1) => {
                    let slot = &mut table(l1)[((va >> 12) & 511) as usize];
                    if slot.is_unused() {
                        slot.set_addr(pa, flags);
                        on_page(pa.as_u64());
                    } else {
                        result = Err(MapError::AlreadyMapped);
                    }
                }
                Err(err) => result = Err(err),
            }
        });
        if protected > 0 {
            self.flush_range(start, end, protected);
        }
        result
    }

    /// Moves the page-table entries of [`from`, `from + len`) to
    /// [`to`, `to + len`) (mremap): the frames, their rights and
    /// copy-on-write marks go with them, nothing is copied and no
    /// reference count changes. The ranges must not overlap and the
    /// destination must be empty. The page tables the destination needs
    /// are made first, so on `NoMemory` nothing has moved.
    pub fn move_range(
        &mut self,
        from: u64,
        to: u64,
        len: u64,
        frames: &mut dyn FnMut() -> Option<u64>,
    ) -> Result<(), MapError> {
        let end = from.checked_add(len).ok_or(MapError::BadAddress)?;
        check_user(to)?;
        if to.checked_add(len).is_none_or(|e| e > USER_TOP) {
            return Err(MapError::BadAddress);
        }
        let mut result = Ok(());
        let mut cache = None;
        walk_leaves(self.pml4, from, end, &mut |va, _| {
            if result.is_ok() {
                result = self
                    .leaf_table(va - from + to, frames, &mut cache)
                    .map(|_| ());
            }
        });
        result?;
        let mut moved = 0usize;
        let mut cache = None;
        let mut none = || None;
        walk_leaves(self.pml4, from, end, &mut |va, e| {
            let dst = va - from + to;
            // Made above; a lookup now allocates nothing.
            if let Ok(l1) = self.leaf_table(dst, &mut none, &mut cache) {
                let slot = &mut table(l1)[((dst >> 12) & 511) as usize];
                if slot.is_unused() {
                    slot.set_addr(e.addr(), e.flags());
                    e.set_unused();
                    moved += 1;
                }
            }
        });
        if moved > 0 {
            self.flush_range(from, end, moved);
        }
        Ok(())
    }

    /// The level-1 table covering `va`, created (zeroed) if missing.
    /// `cache` remembers the last one: fork visits pages in order.
    fn leaf_table(
        &mut self,
        va: u64,
        frames: &mut dyn FnMut() -> Option<u64>,
        cache: &mut Option<(u64, u64)>,
    ) -> Result<u64, MapError> {
        check_user(va)?;
        let region = va >> 21;
        if let Some((r, l1)) = *cache {
            if r == region {
                return Ok(l1);
            }
        }
        let parent = F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE;
        let mut t = self.pml4;
        for shift in [39u64, 30, 21] {
            let e = &mut table(t)[((va >> shift) & 511) as usize];
            if e.is_unused() {
                let pa = frames().ok_or(MapError::NoMemory)?;
                self.made.note(pa);
                table(pa).zero();
                e.set_addr(PhysAddr::new(pa), parent);
            } else if e.flags().contains(F::HUGE_PAGE) {
                return Err(MapError::AlreadyMapped);
            }
            t = e.addr().as_u64();
        }
        *cache = Some((region, t));
        Ok(t)
    }

    /// Drops stale translations of [`start`, `end`) after `pages` entries
    /// changed: here page by page for a few, a full reload beyond that;
    /// on the other CPUs that have these tables loaded, a full flush.
    fn flush_range(&self, start: u64, end: u64, pages: usize) {
        if self.is_active() {
            // Page by page only over a short range: the changed pages are
            // not known, so a long sparse range is cheaper flushed whole.
            if pages > 32 || end.saturating_sub(start) / PAGE_SIZE > 32 {
                x86_64::instructions::tlb::flush_all();
            } else {
                let mut va = start;
                while va < end && va < USER_TOP {
                    x86_64::instructions::tlb::flush(VirtAddr::new(va));
                    va += PAGE_SIZE;
                }
            }
        }
        crate::tlb::shootdown(self.pml4);
    }

    /// Frees the lower-half page-table frames and the PML4 (the caller
    /// has already unmapped and freed the leaf frames), leaving an empty
    /// handle that a second call ignores. If this CPU still has the tables
    /// loaded, it moves to the kernel's first.
    pub fn destroy(&mut self, free: &mut dyn FnMut(u64)) {
        if self.pml4 == 0 {
            return;
        }
        if self.is_active() {
            activate_kernel();
        }
        if let Some(n) = self.made.len {
            for &pa in &self.made.frames[..n] {
                free(pa);
            }
            free(core::mem::take(&mut self.pml4));
            return;
        }
        let l4 = table(self.pml4);
        for e4 in l4.iter().take(256).filter(|e| !e.is_unused()) {
            let l3 = e4.addr().as_u64();
            for e3 in table(l3)
                .iter()
                .filter(|e| !e.is_unused() && !e.flags().contains(F::HUGE_PAGE))
            {
                let l2 = e3.addr().as_u64();
                for e2 in table(l2)
                    .iter()
                    .filter(|e| !e.is_unused() && !e.flags().contains(F::HUGE_PAGE))
                {
                    free(e2.addr().as_u64());
                }
                free(l2);
            }
            free(l3);
        }
        free(core::mem::take(&mut self.pml4));
    }
}

/// Calls `f` on every present leaf entry of user pages in [`start`,
/// `end`) under the PML4 at `pml4`, skipping absent tables.
impl AddressSpace {
    /// Calls `f(va, frame, rights)` for every mapped user page in
    /// [`start`, `end`), skipping absent tables (a process's migration
    /// copies and compares its pages).
    pub fn for_each_present(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, u64, PageFlags)) {
        walk_leaves(self.pml4, start, end, &mut |va, e| {
            f(va, e.addr().as_u64(), PageFlags::from_x86(e.flags()));
        });
    }

    /// (user pages mapped, last-level page tables holding them): the OOM
    /// killer's "rss + page tables" (shared pages count in every mapper,
    /// as Linux's rss does).
    pub fn resident(&self) -> (u64, u64) {
        let (mut pages, mut tables, mut last) = (0u64, 0u64, u64::MAX);
        walk_leaves(self.pml4, 0, USER_TOP, &mut |va, _| {
            pages += 1;
            if va >> 21 != last {
                last = va >> 21;
                tables += 1;
            }
        });
        (pages, tables)
    }
}

fn walk_leaves(
    pml4: u64,
    start: u64,
    end: u64,
    f: &mut dyn FnMut(u64, &mut x86_64::structures::paging::page_table::PageTableEntry),
) {
    let end = end.min(USER_TOP);
    let next = |va: u64, shift: u64| ((va >> shift) + 1) << shift;
    let mut va = start & !(PAGE_SIZE - 1);
    'outer: while va < end {
        let mut t = pml4;
        for shift in [39u64, 30, 21] {
            let e = &table(t)[((va >> shift) & 511) as usize];
            if e.is_unused() || e.flags().contains(F::HUGE_PAGE) {
                va = next(va, shift);
                continue 'outer;
            }
            t = e.addr().as_u64();
        }
        let l1 = table(t);
        let stop = next(va, 21).min(end);
        while va < stop {
            let e = &mut l1[((va >> 12) & 511) as usize];
            if e.flags().contains(F::PRESENT) {
                f(va, e);
            }
            va += PAGE_SIZE;
        }
    }
}

/// The page-table root of an [`AddressSpace`] (or the kernel's), to load
/// without borrowing the address space: a context switch must not lock
/// the memory of the process it switches to (another CPU may hold that
/// lock while it waits for this one to flush its TLB). Whoever keeps one
/// keeps its address space alive as long as it may be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Root(u64);

impl Root {
    /// The kernel's own page tables.
    pub fn kernel() -> Root {
        Root(crate::paging::kernel_pml4())
    }
}

impl AddressSpace {
    /// This address space's root, for [`activate_root`].
    pub fn root_handle(&self) -> Root {
        Root(self.pml4)
    }
}

/// Loads the page tables at `root` into CR3, unless they are loaded
/// already.
pub fn activate_root(root: Root) {
    let root = root.0;
    if Cr3::read().0.start_address().as_u64() == root {
        return;
    }
    // Announce the root before loading it: a CPU that changes its entries
    // from now on asks this one to flush (crate::tlb).
    crate::tlb::publish_loaded(root);
    // SAFETY: every address space (and the kernel's own tables) maps the
    // same upper half, so the running code and stack stay mapped; the
    // caller keeps `root` alive while it is loaded.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(root)),
            Cr3Flags::empty(),
        )
    };
}

/// Switches to the kernel's own page tables (idle CPUs, exiting
/// processes, before destroying an address space).
pub fn activate_kernel() {
    activate_root(Root::kernel());
}

/// Fills an owned frame with zeros.
pub fn zero_frame(pa: u64) {
    // SAFETY: the caller owns the frame (see module doc).
    unsafe { core::ptr::write_bytes(phys_to_virt(pa) as *mut u8, 0, PAGE_SIZE as usize) }
}

/// Copies one owned frame onto another.
pub fn copy_frame(dst: u64, src: u64) {
    // SAFETY: the caller owns dst and src is a mapped RAM frame; distinct.
    unsafe {
        core::ptr::copy_nonoverlapping(
            phys_to_virt(src) as *const u8,
            phys_to_virt(dst) as *mut u8,
            PAGE_SIZE as usize,
        )
    }
}

/// Writes `data` into an owned frame at `offset`.
pub fn write_frame(pa: u64, offset: usize, data: &[u8]) {
    assert!(
        offset + data.len() <= PAGE_SIZE as usize,
        "write past the frame"
    );
    // SAFETY: the caller owns the frame; the range stays inside it.
    unsafe {
        core::ptr::copy_nonoverlapping(
            data.as_ptr(),
            (phys_to_virt(pa) as *mut u8).add(offset),
            data.len(),
        )
    }
}

/// Reads from a RAM frame.
pub fn read_frame(pa: u64, offset: usize, out: &mut [u8]) {
    assert!(
        offset + out.len() <= PAGE_SIZE as usize,
        "read past the frame"
    );
    out.copy_from_slice(crate::paging::phys_slice(pa + offset as u64, out.len()));
}

/// The 4-byte word at `offset` in an owned frame, as an atomic. For frames
/// shared with user space (io_uring rings), where the other side updates
/// the word concurrently: the kernel only touches such words atomically.
fn frame_word(pa: u64, offset: usize) -> &'static core::sync::atomic::AtomicU32 {
    assert!(
        offset.is_multiple_of(4) && offset + 4 <= PAGE_SIZE as usize,
        "word outside the frame"
    );
    // SAFETY: the caller owns the frame (module doc), so the direct-map
    // address is valid RAM for as long as the frame is held; the word is
    // 4-aligned and inside the frame; AtomicU32 has u32's layout and every
    // bit pattern is valid, so concurrent user writes cannot make it invalid.
    unsafe {
        core::sync::atomic::AtomicU32::from_ptr((phys_to_virt(pa) as *mut u32).add(offset / 4))
    }
}

/// Loads the u32 at `offset` in an owned frame with Acquire ordering
/// (reads a value user space published with a release store).
pub fn frame_load_u32(pa: u64, offset: usize) -> u32 {
    frame_word(pa, offset).load(core::sync::atomic::Ordering::Acquire)
}

/// Stores the u32 at `offset` in an owned frame with Release ordering
/// (publishes earlier writes to the frame to user space).
pub fn frame_store_u32(pa: u64, offset: usize, v: u32) {
    frame_word(pa, offset).store(v, core::sync::atomic::Ordering::Release)
}

/// An owned frame as 1024 atomic u32 words. For frames shared with user
/// space (io_uring rings), read and written word by word in bulk: the
/// view costs nothing per access, unlike [`frame_load_u32`]. Same contract
/// as the other frame helpers: `pa` must be a frame the caller owns, and
/// the view must not be used after the frame is given back.
#[inline]
pub fn frame_words_u32(pa: u64) -> &'static [core::sync::atomic::AtomicU32; 1024] {
    assert!(pa.is_multiple_of(PAGE_SIZE), "not a frame");
    // SAFETY: the caller owns the frame (module doc), so the direct-map
    // address is valid RAM for as long as the frame is held; the frame is
    // 4096 bytes, page-aligned (so 4-aligned); [AtomicU32; 1024] has the
    // layout of [u32; 1024], every bit pattern is valid, and every access
    // through the view is atomic, so concurrent user writes are harmless.
    unsafe { &*(phys_to_virt(pa) as *const [core::sync::atomic::AtomicU32; 1024]) }
}

/// An owned frame as 512 atomic u64 words (as [`frame_words_u32`]).
#[inline]
pub fn frame_words_u64(pa: u64) -> &'static [core::sync::atomic::AtomicU64; 512] {
    assert!(pa.is_multiple_of(PAGE_SIZE), "not a frame");
    // SAFETY: as frame_words_u32: owned, valid, page-aligned (so 8-aligned)
    // RAM of 4096 bytes; [AtomicU64; 512] has the layout of [u64; 512],
    // every bit pattern is valid and every access is atomic.
    unsafe { &*(phys_to_virt(pa) as *const [core::sync::atomic::AtomicU64; 512]) }
}

/// `n` physically contiguous owned frames from `pa` as one run of atomic
/// u32 words (the direct map keeps them contiguous): shared rings walked
/// without a stop at every frame edge. Same contract as
/// [`frame_words_u32`], for all `n` frames.
#[inline]
pub fn frames_words_u32(pa: u64, n: usize) -> &'static [core::sync::atomic::AtomicU32] {
    assert!(pa.is_multiple_of(PAGE_SIZE), "not a frame");
    // SAFETY: as frame_words_u32, for the n frames the caller owns, which
    // are contiguous in physical memory and so in the direct map: n * 4096
    // bytes of valid, page-aligned RAM, accessed only atomically.
    unsafe {
        core::slice::from_raw_parts(
            phys_to_virt(pa) as *const core::sync::atomic::AtomicU32,
            n * (PAGE_SIZE as usize / 4),
        )
    }
}

/// As [`frames_words_u32`], as atomic u64 words.
#[inline]
pub fn frames_words_u64(pa: u64, n: usize) -> &'static [core::sync::atomic::AtomicU64] {
    assert!(pa.is_multiple_of(PAGE_SIZE), "not a frame");
    // SAFETY: as frames_words_u32 (page-aligned, so 8-aligned).
    unsafe {
        core::slice::from_raw_parts(
            phys_to_virt(pa) as *const core::sync::atomic::AtomicU64,
            n * (PAGE_SIZE as usize / 8),
        )
    }
}
