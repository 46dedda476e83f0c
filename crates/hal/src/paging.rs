//! Page tables: the kernel's own tables (image with per-section rights, a
//! direct map of all RAM at [`PHYS_OFFSET`]), MMIO mappings, and the early
//! frame allocator that builds them before the kernel's frame pools exist.

use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::{MapToError, Translate};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as F, PhysFrame,
    Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::boot::BootInfo;

/// Where all physical memory is mapped in every address space.
pub const PHYS_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Base of the kernel image's virtual addresses.
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
/// Frame and page size.
pub const PAGE_SIZE: u64 = 4096;
const TWO_MIB: u64 = 2 * 1024 * 1024;
const MAX_RANGES: usize = 64;

extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __data_end: u8;
    static __kernel_phys_end: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// The virtual address of physical address `pa` in the direct map.
#[inline]
pub fn phys_to_virt(pa: u64) -> u64 {
    pa + PHYS_OFFSET
}

/// A read-only view of physical memory through the direct map.
pub fn phys_slice(pa: u64, len: usize) -> &'static [u8] {
    // SAFETY: the direct map covers all RAM for the kernel's lifetime; the
    // callers (boot info, initramfs) pass ranges of RAM the loader filled
    // and that the frame allocator never hands out.
    unsafe { core::slice::from_raw_parts(phys_to_virt(pa) as *const u8, len) }
}

/// A physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysRange {
    /// First byte (page-aligned).
    pub start: u64,
    /// One past the last byte (page-aligned).
    pub end: u64,
}

/// Free physical memory left after the kernel image, the initramfs, the
/// page tables and the heap were carved out: the kernel's frame pools own
/// it from here on.
#[derive(Clone, Debug)]
pub struct FreeMemory {
    ranges: [PhysRange; MAX_RANGES],
    count: usize,
}

impl FreeMemory {
    /// The free ranges, lowest first.
    pub fn ranges(&self) -> &[PhysRange] {
        &self.ranges[..self.count]
    }

    fn alloc_frame(&mut self) -> Option<u64> {
        let r = self.ranges[..self.count]
            .iter_mut()
            .find(|r| r.end > r.start)?;
        let pa = r.start;
        r.start += PAGE_SIZE;
        Some(pa)
    }

    /// Takes `len` contiguous bytes from the largest range (its top end).
    fn take_contiguous(&mut self, len: u64) -> Option<u64> {
        let r = self.ranges[..self.count]
            .iter_mut()
            .max_by_key(|r| r.end - r.start)?;
        if r.end - r.start < len {
            return None;
        }
        r.end -= len;
        Some(r.end)
    }

    fn from_boot(info: &BootInfo) -> Self {
        let mut fm = FreeMemory {
            ranges: [PhysRange::default(); MAX_RANGES],
            count: 0,
        };
        let kernel_end = sym(
            // SAFETY: linker-script symbol; only its address is used.
            unsafe { &__kernel_phys_end },
        );
        let mut reserved = [(0u64, kernel_end.div_ceil(PAGE_SIZE) * PAGE_SIZE), (0, 0)];
        if let Some((s, l)) = info.initrd {
            reserved[1] = (
                s & !(PAGE_SIZE - 1),
                (s + l).div_ceil(PAGE_SIZE) * PAGE_SIZE,
            );
        }
        for r in info.memory_map().iter().filter(|r| r.usable) {
            let mut pieces = [(
                (r.start.div_ceil(PAGE_SIZE)) * PAGE_SIZE,
                (r.start + r.len) & !(PAGE_SIZE - 1),
            )];
            for &(rs, re) in &reserved {
                let (s, e) = pieces[0];
                if re <= s || rs >= e {
                    continue;
                }
                // A reserved span splits a region in at most two; keep the
                // lower part now and push the upper part separately.
                if rs > s {
                    fm.push(s, rs);
                }
                pieces[0] = (re.max(s), e);
            }
            let (s, e) = pieces[0];
            fm.push(s, e);
        }
        fm.ranges[..fm.count].sort_unstable_by_key(|r| r.start);
        fm
    }

    fn push(&mut self, start: u64, end: u64) {
        if end > start && self.count < MAX_RANGES {
            self.ranges[self.count] = PhysRange { start, end };
            self.count += 1;
        }
    }
}

struct EarlyAlloc<'a>(&'a mut FreeMemory);

// SAFETY: frames come from usable RAM minus everything reserved, and each is
// handed out once (the range start moves past it).
unsafe impl FrameAllocator<Size4KiB> for EarlyAlloc<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        self.0
            .alloc_frame()
            .map(|pa| PhysFrame::containing_address(PhysAddr::new(pa)))
    }
}

/// The kernel's PML4 (set once at boot, read on every switch to the
/// kernel's tables: an atomic, not a lock).
static KERNEL_PML4: AtomicU64 = AtomicU64::new(0);
/// Serialises changes to the kernel's page tables after boot.
static KERNEL_MAP: Mutex<()> = Mutex::new(());

fn table_at(pa: u64) -> &'static mut PageTable {
    // SAFETY: pa is a page-table frame we allocated and reach through the
    // direct map; callers serialise changes to the kernel's tables with
    // KERNEL_MAP or run before other CPUs exist.
    unsafe { &mut *(phys_to_virt(pa) as *mut PageTable) }
}

fn mapper(pml4_pa: u64) -> OffsetPageTable<'static> {
    // SAFETY: the direct map at PHYS_OFFSET covers every page-table frame.
    unsafe { OffsetPageTable::new(table_at(pml4_pa), VirtAddr::new(PHYS_OFFSET)) }
}

/// Where the heap lies in the direct map (set once by `init`): its part of
/// the direct map has 4 KiB pages, so guard pages can be taken out of it.
static HEAP_VA: AtomicU64 = AtomicU64::new(0);
static HEAP_END: AtomicU64 = AtomicU64::new(0);

/// Builds the kernel's page tables, switches to them, and starts the heap.
/// Returns the physical memory still free for the kernel's frame pools.
pub fn init(info: &BootInfo) -> FreeMemory {
    let mut free = FreeMemory::from_boot(info);
    // The heap first: the direct map below treats its range differently.
    let ram: u64 = free.ranges().iter().map(|r| r.end - r.start).sum();
    let heap_len = crate::heap::size_for_ram(ram);
    let heap_len = crate::heap::size_from_cmdline(info.cmdline()).unwrap_or(heap_len);
    let heap_limit = crate::heap::limit_for_ram(ram, info.cmdline(), heap_len);
    let heap_pa = free
        .take_contiguous(heap_len)
        .expect("no contiguous memory for the kernel heap");
    let pml4 = free.alloc_frame().expect("no memory for the kernel PML4");
    table_at(pml4).zero();
    let mut m = mapper(pml4);
    let mut fa = EarlyAlloc(&mut free);

    // SAFETY: linker-script symbols; only their addresses are used.
    let (text, text_end, ro_end, data_end, image_end_pa) = unsafe {
        (
            sym(&__text_start),
            sym(&__text_end),
            sym(&__rodata_end),
            sym(&__data_end),
            sym(&__kernel_phys_end),
        )
    };

    // Direct map of all RAM, no execute. 2 MiB pages, except 4 KiB pages
    // where rights differ inside a 2 MiB block: the kernel image's alias
    // (its text and rodata read-only here too, so the image cannot be
    // patched through the direct map) and the heap (whose stack guard
    // pages come and go, see crate::guard).
    let max = info.ram_end();
    let dflags = F::PRESENT | F::WRITABLE | F::NO_EXECUTE | F::GLOBAL;
    let ro_pa = (text - KERNEL_VMA)..(ro_end - KERNEL_VMA);
    let small = |pa: u64| {
        let end = pa + TWO_MIB;
        (pa < image_end_pa) || (pa < heap_pa + heap_len && end > heap_pa)
    };
    let mut pa = 0;
    while pa < max.div_ceil(TWO_MIB) * TWO_MIB {
        if small(pa) {
            // The first page through the mapper, which makes the page
            // table; its 511 other entries written directly (a walk from
            // the PML4 per page took ~7 ms of a 256 MiB heap's boot under
            // TCG).
            let flags_of = |p: u64| {
                if ro_pa.contains(&p) {
                    dflags - F::WRITABLE
                } else {
                    dflags
                }
            };
            let va = phys_to_virt(pa);
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
            let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(pa));
            // SAFETY: as for the 2 MiB pages below.
            unsafe { m.map_to(page, frame, flags_of(pa), &mut fa) }
                .expect("direct map")
                .ignore();
            let pt = table_under(pml4, va, 12).expect("direct map page table");
            for (e, p) in pt
                .iter()
                .zip((pa..pa + TWO_MIB).step_by(PAGE_SIZE as usize))
                .skip(1)
            {
                e.store(p | flags_of(p).bits(), Ordering::Relaxed);
            }
        } else {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(phys_to_virt(pa)));
            let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(pa));
            // SAFETY: the direct map aliases RAM only; nothing else lives there.
            unsafe { m.map_to(page, frame, dflags, &mut fa) }
                .expect("direct map")
                .ignore();
        }
        pa += TWO_MIB;
    }

    // The kernel image, by section: text RX, rodata R, data+bss RW, the
    // guard pages under the static stacks not at all.
    let mut va = text;
    while va < data_end {
        let flags = if va < text_end {
            F::PRESENT | F::GLOBAL
        } else if va < ro_end {
            F::PRESENT | F::GLOBAL | F::NO_EXECUTE
        } else {
            F::PRESENT | F::GLOBAL | F::WRITABLE | F::NO_EXECUTE
        };
        if !crate::guard::is_static_guard(va) {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
            let frame = PhysFrame::containing_address(PhysAddr::new(va - KERNEL_VMA));
            // SAFETY: maps the image onto the frames the loader put it in.
            unsafe { m.map_to(page, frame, flags, &mut fa) }
                .expect("kernel image map")
                .ignore();
        }
        va += PAGE_SIZE;
    }

    // SAFETY: the new tables map the running code, its stack (in .bss),
    // the direct map and nothing the kernel still needs from the boot
    // identity map (boot info was copied out before this point).
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(pml4)),
            Cr3Flags::empty(),
        );
    }
    KERNEL_PML4.store(pml4, Ordering::Release);
    NX.store(
        crate::cpu::rdmsr(0xc000_0080) & (1 << 11) != 0,
        core::sync::atomic::Ordering::Relaxed,
    );
    enable_smep();

    HEAP_VA.store(phys_to_virt(heap_pa), Ordering::Relaxed);
    HEAP_END.store(phys_to_virt(heap_pa + heap_len), Ordering::Relaxed);
    crate::heap::init(
        phys_to_virt(heap_pa),
        heap_len as usize,
        heap_limit as usize,
    );
    free
}

/// The 4 KiB page-table entry of `va` in the kernel's tables, if `va` is
/// mapped (or was, for a guard page) by a 4 KiB page.
fn kernel_pte(va: u64) -> Option<&'static AtomicU64> {
    kernel_entry(va, 12)
}

/// The entry of `va` in the kernel's tables at the level whose entries
/// map `1 << leaf_shift` bytes (12: a page table, 21: a page directory),
/// if every level above points to a table (no huge page on the way).
fn kernel_entry(va: u64, leaf_shift: u32) -> Option<&'static AtomicU64> {
    let idx = ((va >> leaf_shift) & 511) as usize;
    Some(&table_under(kernel_pml4(), va, leaf_shift)?[idx])
}

/// The table under the PML4 at `root` whose entries map `1 << leaf_shift`
/// bytes around `va` (12: a page table, 21: a page directory), if every
/// level above points to a table (no huge page on the way).
fn table_under(root: u64, va: u64, leaf_shift: u32) -> Option<&'static [AtomicU64; 512]> {
    let mut table = root;
    let mut shift = 39u32;
    while shift > leaf_shift {
        let idx = ((va >> shift) & 511) as usize;
        // SAFETY: page-table frames are reached through the direct map;
        // entries are read atomically (other CPUs may flip guard bits).
        let e = unsafe {
            (*(phys_to_virt(table) as *const [AtomicU64; 512]))[idx].load(Ordering::Relaxed)
        };
        if e & F::PRESENT.bits() == 0 || e & F::HUGE_PAGE.bits() != 0 {
            return None;
        }
        table = e & 0x000f_ffff_ffff_f000;
        shift -= 9;
    }
    // SAFETY: as above; the table lives as long as the kernel.
    Some(unsafe { &*(phys_to_virt(table) as *const [AtomicU64; 512]) })
}

/// Gives the direct map of the run of frames `[pa, pa + len)` 4 KiB pages
/// where it has 2 MiB ones, so that guard pages can be taken out of it
/// once the heap claims it (`heap::grow`). The page tables this takes are
/// the run's own first frames; returns how many bytes of the run they
/// use (the heap claims the rest).
///
/// Called with the heap lock held, which serialises growths: the entries
/// changed map RAM the frame pools just handed over, which nothing else
/// remaps (`map_mmio` maps above RAM), so `KERNEL_MAP` is not taken (its
/// holders may allocate). The new entries map every address to the same
/// frame with the same rights as the 2 MiB page did, so a stale 2 MiB
/// translation in another CPU's TLB is harmless; guard pages made later
/// in the run are flushed everywhere as any other (`guard::sync_cpu`).
pub(crate) fn split_direct(pa: u64, len: u64) -> u64 {
    const PAT_2M: u64 = 1 << 12;
    const PAT_4K: u64 = 1 << 7;
    let mut table = pa;
    let mut chunk = pa & !(TWO_MIB - 1);
    while chunk < pa + len {
        let va = phys_to_virt(chunk);
        let pde = kernel_pde(va).expect("the direct map has no 1 GiB pages");
        let e = pde.load(Ordering::Relaxed);
        if e & F::PRESENT.bits() != 0 && e & F::HUGE_PAGE.bits() != 0 {
            let t = table;
            table += PAGE_SIZE;
            let mut flags = e & (0xfff | F::NO_EXECUTE.bits()) & !(F::HUGE_PAGE.bits() | PAT_2M);
            if e & PAT_2M != 0 {
                flags |= PAT_4K;
            }
            // SAFETY: `t` is a frame of the run the heap was just given,
            // mapped read-write in the direct map and used by nothing else;
            // it becomes a page table of the kernel's tables for good.
            let entries = unsafe { &*(phys_to_virt(t) as *const [AtomicU64; 512]) };
            for (i, slot) in entries.iter().enumerate() {
                slot.store((chunk + i as u64 * PAGE_SIZE) | flags, Ordering::Relaxed);
            }
            pde.store(t | (F::PRESENT | F::WRITABLE).bits(), Ordering::SeqCst);
            x86_64::instructions::tlb::flush(VirtAddr::new(va));
        }
        chunk += TWO_MIB;
    }
    table - pa
}

/// The page-directory entry of `va` in the kernel's tables, if its
/// page-directory-pointer entry points to a page directory.
fn kernel_pde(va: u64) -> Option<&'static AtomicU64> {
    kernel_entry(va, 21)
}

/// Takes the heap page at `va` out of the direct map or puts it back (the
/// guard pages of heap-allocated stacks). Flushes this CPU's entry;
/// other CPUs are handled by `guard::sync_cpu`.
pub(crate) fn set_direct_present(va: u64, present: bool) {
    let in_heap = crate::heap::contains_page(va);
    let Some(pte) = kernel_pte(va).filter(|_| in_heap) else {
        panic!("guard page {va:#x} is not a 4 KiB heap page");
    };
    if present {
        pte.fetch_or(F::PRESENT.bits(), Ordering::SeqCst);
    } else {
        pte.fetch_and(!F::PRESENT.bits(), Ordering::SeqCst);
    }
    x86_64::instructions::tlb::flush(VirtAddr::new(va));
}

/// Whether `va` is a heap page currently out of the direct map (a guard).
pub(crate) fn is_direct_guard(va: u64) -> bool {
    crate::heap::contains_page(va)
        && kernel_pte(va).is_some_and(|e| e.load(Ordering::Relaxed) & F::PRESENT.bits() == 0)
}

/// The leaf entry mapping `va` in the current address space and the size
/// of the page it maps, or None if unmapped: self tests read the rights
/// the CPU will apply (present, writable, user, no-execute bits).
pub fn leaf_entry(va: u64) -> Option<(u64, u64)> {
    let (root, _) = Cr3::read();
    let mut table = root.start_address().as_u64();
    for (shift, size) in [(39u32, 0u64), (30, 1 << 30), (21, TWO_MIB), (12, PAGE_SIZE)] {
        let idx = ((va >> shift) & 511) as usize;
        // SAFETY: page-table frames are reached through the direct map.
        let e = unsafe {
            (*(phys_to_virt(table) as *const [AtomicU64; 512]))[idx].load(Ordering::Relaxed)
        };
        if e & F::PRESENT.bits() == 0 {
            return None;
        }
        if shift == 12 || (size != 0 && e & F::HUGE_PAGE.bits() != 0) {
            return Some((e, size));
        }
        table = e & 0x000f_ffff_ffff_f000;
    }
    None
}

/// The kernel image's sections: (text start, text end, rodata end, data
/// and bss end), virtual addresses.
pub fn image_sections() -> (u64, u64, u64, u64) {
    // SAFETY: linker-script symbols; only their addresses are used.
    unsafe {
        (
            sym(&__text_start),
            sym(&__text_end),
            sym(&__rodata_end),
            sym(&__data_end),
        )
    }
}

/// The heap's boot span in the direct map (it may have grown more spans
/// since: `heap::contains`).
pub fn heap_range() -> (u64, u64) {
    (
        HEAP_VA.load(Ordering::Relaxed),
        HEAP_END.load(Ordering::Relaxed),
    )
}

/// EFER.NXE, read once at init: every user mapping asks, and an MSR read
/// costs a VM exit under KVM.
static NX: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether EFER.NXE is on (the no-execute bit may be used).
#[inline]
pub fn nx_enabled() -> bool {
    NX.load(core::sync::atomic::Ordering::Relaxed)
}

/// Whether SMEP is on (CR4 bit 20).
pub fn smep_enabled() -> bool {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    Cr4::read().contains(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION)
}

/// Whether SMAP is on (CR4 bit 21).
pub fn smap_enabled() -> bool {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    Cr4::read().contains(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION)
}

/// Whether the CPU has SMEP and SMAP (CPUID.7.0:EBX bits 7 and 20).
pub fn cpu_has_smep_smap() -> (bool, bool) {
    let ebx = crate::cpu::cpuid(7, 0).1;
    (ebx & (1 << 7) != 0, ebx & (1 << 20) != 0)
}

/// Turns on SMEP and SMAP where the CPU has them: the kernel then faults
/// instead of executing a user page (SMEP) or touching user memory
/// anywhere but in the uaccess routines of [`crate::probe`], which open
/// the window with `stac` and close it with `clac` (SMAP). Every CPU
/// calls it for itself (docs/architecture.md, protection).
pub(crate) fn enable_smep() {
    let (smep, smap) = cpu_has_smep_smap();
    use x86_64::registers::control::{Cr4, Cr4Flags};
    if smep {
        // SAFETY: SMEP only forbids supervisor execution of user pages,
        // which the kernel never does; nothing else changes.
        unsafe { Cr4::update(|f| f.insert(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION)) };
    }
    if smap {
        // The probes test this flag before stac/clac (they would #UD on
        // a CPU without SMAP); set before CR4.SMAP, and every CPU of a
        // machine has the same features.
        crate::probe::SMAP_ON.store(1, Ordering::SeqCst);
        // SAFETY: from here the kernel may touch user pages only with
        // RFLAGS.AC set, which only the probes do (and the trap entry
        // clears it again for handlers).
        unsafe { Cr4::update(|f| f.insert(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION)) };
    }
}

/// Physical address of the kernel's top-level page table (shared by every
/// address space's upper half).
pub fn kernel_pml4() -> u64 {
    KERNEL_PML4.load(Ordering::Acquire)
}

/// Whether `va` is mapped in the current address space.
pub fn is_mapped(va: u64) -> bool {
    translate(va).is_some()
}

/// Translates `va` in the current address space to a physical address.
pub fn translate(va: u64) -> Option<u64> {
    let Ok(v) = VirtAddr::try_new(va) else {
        return None;
    };
    let (frame, _) = Cr3::read();
    mapper(frame.start_address().as_u64())
        .translate_addr(v)
        .map(|p| p.as_u64())
}

/// Maps `len` bytes of device memory at `pa` uncached into the direct-map
/// window and returns the virtual address. Device registers are outside
/// RAM, so they do not collide with the RAM part of the direct map.
pub fn map_mmio(pa: u64, len: u64, frames: &mut dyn FnMut() -> Option<u64>) -> u64 {
    let _serialised = KERNEL_MAP.lock();
    let mut m = mapper(kernel_pml4());
    let mut fa = FnAlloc(frames);
    let flags =
        F::PRESENT | F::WRITABLE | F::NO_EXECUTE | F::NO_CACHE | F::WRITE_THROUGH | F::GLOBAL;
    let start = pa & !(PAGE_SIZE - 1);
    let mut p = start;
    while p < pa + len {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(phys_to_virt(p)));
        let frame = PhysFrame::containing_address(PhysAddr::new(p));
        // SAFETY: maps device registers, which no Rust object aliases.
        match unsafe { m.map_to(page, frame, flags, &mut fa) } {
            Ok(f) => f.flush(),
            Err(MapToError::PageAlreadyMapped(_)) => {}
            Err(e) => panic!("mmio map of {pa:#x}: {e:?}"),
        }
        p += PAGE_SIZE;
    }
    phys_to_virt(pa)
}

struct FnAlloc<'a>(&'a mut dyn FnMut() -> Option<u64>);

// SAFETY: the closure hands out frames its owner (the kernel's frame pool)
// no longer uses.
unsafe impl FrameAllocator<Size4KiB> for FnAlloc<'_> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let pa = (self.0)()?;
        table_at(pa).zero();
        Some(PhysFrame::containing_address(PhysAddr::new(pa)))
    }
}

/// Why a user mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Not a canonical user-space address.
    BadAddress,
    /// Something is mapped there already.
    AlreadyMapped,
    /// No frame for a page table.
    NoMemory,
}

/// Maps the 4 KiB frame `pa` at user address `va` in the current address
/// space (user-accessible, no execute unless asked otherwise later).
pub fn map_user_page(
    va: u64,
    pa: u64,
    writable: bool,
    frames: &mut dyn FnMut() -> Option<u64>,
) -> Result<(), MapError> {
    if va >= crate::probe::USER_TOP || !va.is_multiple_of(PAGE_SIZE) {
        return Err(MapError::BadAddress);
    }
    let (frame, _) = Cr3::read();
    let mut m = mapper(frame.start_address().as_u64());
    let mut flags = F::PRESENT | F::USER_ACCESSIBLE | F::NO_EXECUTE;
    if writable {
        flags |= F::WRITABLE;
    }
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
    let frame = PhysFrame::containing_address(PhysAddr::new(pa));
    // SAFETY: user pages never alias kernel objects; the frame is owned by
    // the caller and becomes reachable only from user mode and user copies.
    match unsafe {
        m.map_to_with_table_flags(
            page,
            frame,
            flags,
            F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE,
            &mut FnAlloc(frames),
        )
    } {
        Ok(f) => {
            f.flush();
            Ok(())
        }
        Err(MapToError::PageAlreadyMapped(_)) | Err(MapToError::ParentEntryHugePage) => {
            Err(MapError::AlreadyMapped)
        }
        Err(MapToError::FrameAllocationFailed) => Err(MapError::NoMemory),
    }
}

/// Unmaps the user page at `va` in the current address space and returns
/// the frame that was mapped there.
pub fn unmap_user_page(va: u64) -> Option<u64> {
    if va >= crate::probe::USER_TOP {
        return None;
    }
    let (frame, _) = Cr3::read();
    let mut m = mapper(frame.start_address().as_u64());
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
    let (frame, flush) = m.unmap(page).ok()?;
    flush.flush();
    Some(frame.start_address().as_u64())
}
