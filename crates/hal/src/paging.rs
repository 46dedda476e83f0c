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

/// Builds the kernel's page tables, switches to them, and starts the heap.
/// Returns the physical memory still free for the kernel's frame pools.
pub fn init(info: &BootInfo) -> FreeMemory {
    let mut free = FreeMemory::from_boot(info);
    let pml4 = free.alloc_frame().expect("no memory for the kernel PML4");
    table_at(pml4).zero();
    let mut m = mapper(pml4);
    let mut fa = EarlyAlloc(&mut free);

    // Direct map of all RAM (2 MiB pages, no execute).
    let max = info.ram_end();
    let dflags = F::PRESENT | F::WRITABLE | F::NO_EXECUTE | F::GLOBAL;
    let mut pa = 0;
    while pa < max.div_ceil(TWO_MIB) * TWO_MIB {
        let page = Page::<Size2MiB>::containing_address(VirtAddr::new(phys_to_virt(pa)));
        let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(pa));
        // SAFETY: the direct map aliases RAM only; nothing else lives there.
        unsafe { m.map_to(page, frame, dflags, &mut fa) }
            .expect("direct map")
            .ignore();
        pa += TWO_MIB;
    }

    // The kernel image, by section: text RX, rodata R, data+bss RW.
    // SAFETY: linker-script symbols; only their addresses are used.
    let (text, text_end, ro_end, data_end) = unsafe {
        (
            sym(&__text_start),
            sym(&__text_end),
            sym(&__rodata_end),
            sym(&__data_end),
        )
    };
    let mut va = text;
    while va < data_end {
        let flags = if va < text_end {
            F::PRESENT | F::GLOBAL
        } else if va < ro_end {
            F::PRESENT | F::GLOBAL | F::NO_EXECUTE
        } else {
            F::PRESENT | F::GLOBAL | F::WRITABLE | F::NO_EXECUTE
        };
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(va));
        let frame = PhysFrame::containing_address(PhysAddr::new(va - KERNEL_VMA));
        // SAFETY: maps the image onto the frames the loader put it in.
        unsafe { m.map_to(page, frame, flags, &mut fa) }
            .expect("kernel image map")
            .ignore();
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

    let heap_len = crate::heap::size_for_ram(free.ranges().iter().map(|r| r.end - r.start).sum());
    let heap_pa = free
        .take_contiguous(heap_len)
        .expect("no contiguous memory for the kernel heap");
    crate::heap::init(phys_to_virt(heap_pa), heap_len as usize);
    free
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

/// Turns on SMEP where the CPU has it (CPUID.7.0:EBX bit 7): the kernel
/// then faults instead of executing a user page (docs/architecture.md,
/// threat model); every CPU calls it for itself. SMAP is not used: it
/// would add STAC/CLAC to every user copy, and user copies already go
/// through recoverable accessors only.
pub(crate) fn enable_smep() {
    if crate::cpu::cpuid(7, 0).1 & (1 << 7) == 0 {
        return;
    }
    use x86_64::registers::control::{Cr4, Cr4Flags};
    // SAFETY: SMEP only forbids supervisor execution of user pages, which
    // the kernel never does; nothing else changes.
    unsafe { Cr4::update(|f| f.insert(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION)) };
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
