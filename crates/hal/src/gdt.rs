//! Per-CPU GDT and TSS, with the IST stacks every IDT entry uses.
//!
//! Selector layout is fixed by `syscall`/`sysret` and matches Linux's user
//! selectors: kernel code 0x08, kernel data 0x10, an unused slot 0x18, a
//! not-present slot for 32-bit user code 0x23, user data 0x2b and user
//! 64-bit code 0x33, so that STAR points sysret at 0x23 + 8 / + 16 and a
//! program that reads `%cs` or builds a signal frame by hand sees the
//! numbers it would see on Linux.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{
    Descriptor, DescriptorFlags, GlobalDescriptorTable, SegmentSelector,
};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PrivilegeLevel, VirtAddr};

/// Most CPUs the kernel brings up.
pub const MAX_CPUS: usize = 16;
const IST_COUNT: usize = 5;
const IST_SIZE: usize = 16 * 1024;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DS: u16 = 0x10;
/// User data selector (RPL 3).
pub const USER_DS: u16 = 0x28 | 3;
/// User 64-bit code selector (RPL 3).
pub const USER_CS: u16 = 0x30 | 3;
/// The per-CPU segment whose limit is the CPU number (RPL 3).
pub const CPUNODE_SEL: u16 = 0x48 | 3;
/// The selector base STAR[63:48] needs for sysret to land on USER_DS/USER_CS.
pub const SYSRET_BASE: u16 = 0x20 | 3;

/// One IST stack with the guard page under it (left out of the kernel
/// image mapping by `paging::init`: see [`crate::guard`]).
#[repr(C, align(4096))]
struct GuardedIst {
    guard: [u8; 4096],
    stack: [u8; IST_SIZE],
}

#[repr(C, align(4096))]
struct IstStacks([GuardedIst; IST_COUNT]);

struct CpuTables {
    gdt: GlobalDescriptorTable<10>,
    tss_sel: SegmentSelector,
}

static mut IST_STACKS: [IstStacks; MAX_CPUS] = [const {
    IstStacks(
        [const {
            GuardedIst {
                guard: [0; 4096],
                stack: [0; IST_SIZE],
            }
        }; IST_COUNT],
    )
}; MAX_CPUS];
static mut TSS: [TaskStateSegment; MAX_CPUS] = [const { TaskStateSegment::new() }; MAX_CPUS];
static TABLES: [Once<CpuTables>; MAX_CPUS] = [const { Once::new() }; MAX_CPUS];

/// If `va` is the guard page of an IST stack: (CPU, IST index from 0).
pub(crate) fn ist_guard_at(va: u64) -> Option<(usize, usize)> {
    let base = core::ptr::addr_of!(IST_STACKS) as u64;
    let one = core::mem::size_of::<GuardedIst>() as u64;
    let off = va.checked_sub(base)?;
    if off >= one * (IST_COUNT * MAX_CPUS) as u64 || off % one >= 4096 {
        return None;
    }
    let n = (off / one) as usize;
    Some((n / IST_COUNT, n % IST_COUNT))
}

/// The guard pages of `cpu`'s IST stacks (self tests check they are
/// unmapped).
pub fn ist_guard_pages(cpu: usize) -> [u64; IST_COUNT] {
    let base = core::ptr::addr_of!(IST_STACKS) as u64;
    let one = core::mem::size_of::<GuardedIst>() as u64;
    core::array::from_fn(|i| base + one * (cpu * IST_COUNT + i) as u64)
}

/// Builds and loads this CPU's GDT and TSS (IST stacks included).
pub fn init(cpu: usize) {
    assert!(cpu < MAX_CPUS, "cpu index out of range");
    // SAFETY: each CPU initialises only its own slot, once, before enabling
    // interrupts; nothing else holds a reference to these statics yet.
    let tss: *const TaskStateSegment = unsafe {
        let stacks = &*core::ptr::addr_of!(IST_STACKS[cpu]);
        let tss = &mut *core::ptr::addr_of_mut!(TSS[cpu]);
        for (i, stack) in stacks.0.iter().enumerate() {
            tss.interrupt_stack_table[i] =
                VirtAddr::from_ptr(stack.stack.as_ptr()) + IST_SIZE as u64;
        }
        tss as *const TaskStateSegment
    };
    let tables = TABLES[cpu].call_once(|| {
        let mut gdt = GlobalDescriptorTable::<10>::empty();
        gdt.append(Descriptor::kernel_code_segment());
        gdt.append(Descriptor::kernel_data_segment());
        // 0x18: unused (Linux's kernel data lives there; nothing of ours).
        gdt.append(Descriptor::UserSegment(0));
        // The slot sysret's layout reserves for 32-bit user code stays not
        // present: RSE OS runs no compat-mode code, and rt_sigreturn lets a
        // program pick its CS (as Linux does), so a usable 32-bit segment
        // here would let it run code no syscall path expects.
        gdt.append(Descriptor::UserSegment(0));
        gdt.append(Descriptor::user_data_segment());
        gdt.append(Descriptor::user_code_segment());
        // SAFETY: the TSS is a static that lives forever; it is only
        // written through raw pointers (set_kernel_stack), never through a
        // Rust reference, so sharing it with the CPU is sound.
        let tss_sel = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss) });
        // 0x4b: the CPU's number in a segment limit, which the vDSO's
        // getcpu reads with `lsl` (Linux's GDT_ENTRY_CPUNODE).
        let cpunode = gdt.append(Descriptor::UserSegment(
            (cpu as u64 & 0xfff)
                | DescriptorFlags::ACCESSED.bits()
                | DescriptorFlags::USER_SEGMENT.bits()
                | DescriptorFlags::DPL_RING_3.bits()
                | DescriptorFlags::PRESENT.bits(),
        ));
        debug_assert_eq!(cpunode.0, CPUNODE_SEL);
        CpuTables { gdt, tss_sel }
    });
    tables.gdt.load();
    // SAFETY: the selectors index descriptors in the GDT just loaded.
    unsafe {
        CS::set_reg(SegmentSelector::new(1, PrivilegeLevel::Ring0));
        SS::set_reg(SegmentSelector::new(2, PrivilegeLevel::Ring0));
        DS::set_reg(SegmentSelector::new(2, PrivilegeLevel::Ring0));
        ES::set_reg(SegmentSelector::new(2, PrivilegeLevel::Ring0));
        load_tss(tables.tss_sel);
    }
}

/// Sets the stack the CPU switches to on a ring 3 → ring 0 transition
/// through an interrupt gate without IST (none today; kept coherent with
/// the per-CPU kernel stack for safety).
pub fn set_kernel_stack(cpu: usize, top: u64) {
    // SAFETY: only the owning CPU writes its TSS, with interrupts disabled
    // by the caller's context switch; the CPU reads it only on a privilege
    // change.
    unsafe {
        (*core::ptr::addr_of_mut!(TSS[cpu])).privilege_stack_table[0] = VirtAddr::new(top);
    }
}
