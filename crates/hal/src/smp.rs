//! Bringing up the application processors (APs) and handing them to the
//! kernel.
//!
//! The CPUs come from the ACPI MADT ([`crate::boot::BootInfo::apic_ids`]).
//! The bootstrap CPU (BSP, CPU index 0) copies a real-mode trampoline to
//! the physical page [`TRAMPOLINE`] (below 1 MiB, which the frame
//! allocator never hands out: `paging::FreeMemory::from_boot` reserves
//! everything below the kernel's end), gives every AP a stack, and starts
//! them all at once with INIT, then SIPI, SIPI through its local APIC.
//!
//! Each AP: real mode → protected mode → long mode on the boot page tables
//! (which identity-map the trampoline) → `hal_ap_long_entry` in the higher
//! half → the kernel's page tables → its stack, looked up by its own APIC
//! id (CPUID.1:EBX[31:24]), so an AP that starts late can never run on
//! another AP's stack → [`hal_ap_main`]: its own GDT and TSS (IST stacks),
//! the shared IDT, GS (per-CPU area, CPU index), SMEP, and its local APIC
//! enabled with the timer and LINT pins masked. It then signals online and
//! calls the kernel's AP entry (given to [`start_aps`]) with its CPU index
//! and interrupts off; that entry never returns.
//!
//! The BSP waits a bounded time (100 ms per AP) and gives up on an AP that
//! has not come online by then: such an AP, if it starts later, finds its
//! slot abandoned and parks at once without touching any shared state.

use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::gdt::MAX_CPUS;

/// Physical address of the trampoline page (SIPI vector 0x08).
pub const TRAMPOLINE: u64 = 0x8000;
/// The AP's boot stack becomes its idle context's stack.
const AP_STACK_SIZE: usize = 32 * 1024;
/// xAPIC ids are 8 bits; the trampoline indexes its tables with them.
const APIC_IDS: usize = 256;
/// How long the BSP waits for each AP to come online.
pub const AP_TIMEOUT_MS: u64 = 100;

core::arch::global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .global ap_trampoline_start
ap_trampoline_start:
    .code16
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (ap_tramp_gdtr - ap_trampoline_start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(0x8000 + ap_tramp32 - ap_trampoline_start)

    .code32
ap_tramp32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    /* CR4: PAE | PGE | OSFXSR | OSXMMEXCPT, as entry.S sets for the BSP. */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 7) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    /* The boot page tables: identity map (this page) + kernel image. */
    movl $boot_pml4, %eax
    movl %eax, %cr3
    /* EFER: SCE | LME, and NXE when the CPU has NX. */
    movl $0x80000001, %eax
    cpuid
    movl $((1 << 0) | (1 << 8)), %esi
    testl $(1 << 20), %edx
    jz 5f
    orl $(1 << 11), %esi
5:
    movl $0xc0000080, %ecx
    rdmsr
    orl %esi, %eax
    wrmsr
    /* CR0: PE | MP | WP | PG; EM and TS clear so SSE works. */
    movl %cr0, %eax
    andl $~((1 << 2) | (1 << 3)), %eax
    orl $((1 << 0) | (1 << 1) | (1 << 16) | (1 << 31)), %eax
    movl %eax, %cr0
    ljmpl $0x18, $(0x8000 + ap_tramp64 - ap_trampoline_start)

    .code64
ap_tramp64:
    movabsq $hal_ap_long_entry, %rax
    jmpq *%rax

    .p2align 3
ap_tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
    .quad 0x00af9a000000ffff    /* 0x18: 64-bit code */
ap_tramp_gdtr:
    .word 31
    .long 0x8000 + ap_tramp_gdt - ap_trampoline_start
    .global ap_trampoline_end
ap_trampoline_end:

    .section .text.hal_ap_long_entry, "ax"
    .global hal_ap_long_entry
hal_ap_long_entry:
    movabsq $HAL_AP_CR3, %rax
    movq (%rax), %rax
    movq %rax, %cr3
    movl $1, %eax
    cpuid
    shrl $24, %ebx
    movl %ebx, %edi
    movabsq $HAL_AP_STACKS, %rax
    movq (%rax, %rdi, 8), %rsp
    testq %rsp, %rsp
    jz 6f
    xorl %ebp, %ebp
    movabsq $hal_ap_main, %rax
    callq *%rax
6:
    cli
    hlt
    jmp 6b
"#,
    options(att_syntax)
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

/// The kernel's PML4, loaded by each AP in `hal_ap_long_entry`.
#[no_mangle]
static HAL_AP_CR3: AtomicU64 = AtomicU64::new(0);
/// Stack top of the AP with each APIC id (0: not to be started).
#[no_mangle]
static HAL_AP_STACKS: [AtomicU64; APIC_IDS] = [const { AtomicU64::new(0) }; APIC_IDS];
/// CPU index of the AP with each APIC id.
static AP_CPU: [AtomicU32; APIC_IDS] = [const { AtomicU32::new(0) }; APIC_IDS];

const IDLE: u8 = 0;
const WAITING: u8 = 1;
const STARTED: u8 = 2;
const ONLINE: u8 = 3;
const ABANDONED: u8 = 4;

/// Bring-up state of each CPU index.
static STATE: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(IDLE) }; MAX_CPUS];
/// APIC id of each CPU index.
static APIC_ID: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
static ONLINE_COUNT: AtomicUsize = AtomicUsize::new(1);
/// The kernel's AP entry, set once by [`start_aps`] before any AP starts.
static AP_ENTRY: spin::Once<fn(usize) -> !> = spin::Once::new();

/// What [`start_aps`] did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// APIC ids of the CPUs online, by CPU index (index 0 is the BSP).
    pub online: alloc::vec::Vec<u32>,
    /// APIC ids of the APs that did not come online in time.
    pub failed: alloc::vec::Vec<u32>,
    /// CPUs listed but not started (APIC id ≥ 256, or beyond [`MAX_CPUS`]).
    pub skipped: usize,
    /// Microseconds the bring-up took.
    pub took_us: u64,
}

fn trampoline_bytes() -> &'static [u8] {
    // SAFETY: the two symbols bracket the trampoline in .rodata (the
    // global_asm above), which is mapped read-only for the kernel's life.
    unsafe {
        let start = core::ptr::addr_of!(ap_trampoline_start);
        let end = core::ptr::addr_of!(ap_trampoline_end);
        core::slice::from_raw_parts(start, end as usize - start as usize)
    }
}

fn spin_until(deadline_ns: u64, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if crate::time::now_ns() >= deadline_ns {
            return false;
        }
        core::hint::spin_loop();
    }
}

/// Whether this CPU wants the MP spec's 10 ms between INIT and SIPI:
/// only pre-family-6 hardware (what Linux's `init_udelay` decides).
fn needs_init_delay() -> bool {
    let (eax, _, ecx, _) = crate::cpu::cpuid(1, 0);
    let family = (eax >> 8) & 0xf;
    let hypervisor = ecx & (1 << 31) != 0;
    !(hypervisor || family >= 6)
}

fn delay_us(us: u64) {
    spin_until(crate::time::now_ns() + us * 1000, || false);
}

/// Starts every AP in `apic_ids` (the MADT's list; the BSP's own id is
/// skipped) and waits, bounded, until each is online; each then runs
/// `entry(cpu_index)`. Call once on the BSP, after the local APIC is mapped
/// and the clock calibrated, with interrupts disabled, when `entry` can
/// run (the kernel's shared state is initialised).
pub fn start_aps(apic_ids: &[u32], entry: fn(usize) -> !) -> Report {
    let t0 = crate::time::now_ns();
    AP_ENTRY.call_once(|| entry);
    let bsp = crate::apic::id();
    APIC_ID[0].store(bsp, Ordering::Relaxed);
    STATE[0].store(ONLINE, Ordering::Relaxed);
    let mut report = Report::default();
    report.online.push(bsp);

    let code = trampoline_bytes();
    assert!(code.len() <= 4096, "AP trampoline larger than a page");
    // SAFETY: the trampoline page is RAM below 1 MiB, reachable through
    // the direct map and never handed out by the frame allocator (module
    // doc); no AP runs yet, so nothing executes it while it is written.
    unsafe {
        core::ptr::copy_nonoverlapping(
            code.as_ptr(),
            crate::paging::phys_to_virt(TRAMPOLINE) as *mut u8,
            code.len(),
        );
    }
    HAL_AP_CR3.store(crate::paging::kernel_pml4(), Ordering::Relaxed);

    let mut aps = [(0usize, 0u32); MAX_CPUS];
    let mut n = 0;
    for &id in apic_ids.iter().filter(|&&id| id != bsp) {
        if id as usize >= APIC_IDS || n + 1 >= MAX_CPUS {
            report.skipped += 1;
            continue;
        }
        let cpu = n + 1;
        // With a guard page under it; never freed (an AP's idle context).
        let base = crate::guard::alloc_stack(AP_STACK_SIZE).expect("no heap for an AP stack");
        crate::guard::note_ap_stack(cpu, base);
        let top = base + crate::paging::PAGE_SIZE + AP_STACK_SIZE as u64;
        AP_CPU[id as usize].store(cpu as u32, Ordering::Relaxed);
        APIC_ID[cpu].store(id, Ordering::Relaxed);
        STATE[cpu].store(WAITING, Ordering::Relaxed);
        HAL_AP_STACKS[id as usize].store(top, Ordering::Relaxed);
        aps[n] = (cpu, id);
        n += 1;
    }
    let aps = &aps[..n];
    if aps.is_empty() {
        report.took_us = (crate::time::now_ns() - t0) / 1000;
        return report;
    }
    // The trampoline page and the tables above are visible before any AP
    // can start (the IPI is a device write after these stores).
    fence(Ordering::SeqCst);

    // INIT, 10 ms, SIPI, 200 µs, SIPI again to those not started yet (an
    // AP that already left wait-for-SIPI ignores it), as the MP spec says.
    // Like Linux, skip the 10 ms on CPUs that do not need it (family 6 and
    // later, or any virtual CPU): it was most of the boot's time.
    for &(_, id) in aps {
        crate::apic::send_init(id);
    }
    if needs_init_delay() {
        delay_us(10_000);
    }
    let page = (TRAMPOLINE >> 12) as u8;
    for &(_, id) in aps {
        crate::apic::send_startup(id, page);
    }
    delay_us(200);
    for &(cpu, id) in aps {
        if STATE[cpu].load(Ordering::Acquire) == WAITING {
            crate::apic::send_startup(id, page);
        }
    }

    let deadline = crate::time::now_ns() + AP_TIMEOUT_MS * 1_000_000 * aps.len() as u64;
    spin_until(deadline, || {
        aps.iter()
            .all(|&(cpu, _)| STATE[cpu].load(Ordering::Acquire) == ONLINE)
    });
    for &(cpu, id) in aps {
        // Abandon the late ones: if one starts now, its CAS in hal_ap_main
        // fails and it parks without touching anything shared.
        let late = STATE[cpu]
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            || STATE[cpu]
                .compare_exchange(STARTED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if late {
            report.failed.push(id);
        } else {
            report.online.push(id);
        }
    }
    ONLINE_COUNT.store(report.online.len(), Ordering::Release);
    report.took_us = (crate::time::now_ns() - t0) / 1000;
    report
}

/// CPUs online (the BSP included).
pub fn online_count() -> usize {
    ONLINE_COUNT.load(Ordering::Acquire)
}

/// The APIC id of CPU index `cpu` if it is online.
pub fn apic_id(cpu: usize) -> Option<u32> {
    let online = STATE.get(cpu)?.load(Ordering::Acquire) == ONLINE;
    online.then(|| APIC_ID[cpu].load(Ordering::Relaxed))
}

/// The Rust entry of an AP, on its own stack with the kernel's page
/// tables and interrupts disabled.
#[no_mangle]
extern "C" fn hal_ap_main(apic_id: u32) -> ! {
    let cpu = AP_CPU
        .get(apic_id as usize)
        .map_or(0, |c| c.load(Ordering::Acquire)) as usize;
    let claimed = (1..MAX_CPUS).contains(&cpu)
        && STATE[cpu]
            .compare_exchange(WAITING, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
    if !claimed {
        crate::cpu::halt_forever();
    }
    crate::gdt::init(cpu);
    crate::idt::init();
    crate::percpu::init(cpu);
    crate::fpu::init_cpu(false);
    crate::paging::enable_smep();
    crate::apic::init_parked();
    let online = STATE[cpu]
        .compare_exchange(STARTED, ONLINE, Ordering::AcqRel, Ordering::Acquire)
        .is_ok();
    match AP_ENTRY.get() {
        // Not online: the BSP abandoned this AP (too late); it parks.
        Some(entry) if online => entry(cpu),
        _ => crate::cpu::halt_forever(),
    }
}
