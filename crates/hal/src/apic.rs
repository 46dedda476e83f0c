//! The local APIC (timer, EOI) and the I/O APIC (device interrupt routing).

use core::sync::atomic::{AtomicU64, Ordering};

const LAPIC_DEFAULT: u64 = 0xfee0_0000;
const IOAPIC_DEFAULT: u64 = 0xfec0_0000;
const IA32_APIC_BASE: u32 = 0x1b;

const REG_ID: u64 = 0x20;
const REG_EOI: u64 = 0xb0;
const REG_SVR: u64 = 0xf0;
const REG_ICR_LOW: u64 = 0x300;
const REG_ICR_HIGH: u64 = 0x310;
const REG_LVT_TIMER: u64 = 0x320;
const REG_LVT_LINT0: u64 = 0x350;
const REG_LVT_LINT1: u64 = 0x360;
const REG_LVT_ERROR: u64 = 0x370;
const LVT_MASKED: u32 = 1 << 16;
const REG_TIMER_INIT: u64 = 0x380;
const REG_TIMER_CUR: u64 = 0x390;
const REG_TIMER_DIV: u64 = 0x3e0;

/// Vector for spurious APIC interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

static LAPIC: AtomicU64 = AtomicU64::new(0);
static IOAPIC: AtomicU64 = AtomicU64::new(0);
/// APIC timer ticks (divide-by-16) per millisecond.
static TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);

fn lapic_read(reg: u64) -> u32 {
    // SAFETY: LAPIC holds the uncached mapping of this CPU's local APIC
    // registers made in init; reg is a valid register offset.
    unsafe { core::ptr::read_volatile((LAPIC.load(Ordering::Relaxed) + reg) as *const u32) }
}

fn lapic_write(reg: u64, v: u32) {
    // SAFETY: as lapic_read.
    unsafe { core::ptr::write_volatile((LAPIC.load(Ordering::Relaxed) + reg) as *mut u32, v) }
}

fn ioapic_write(reg: u32, v: u32) {
    let base = IOAPIC.load(Ordering::Relaxed);
    // SAFETY: IOREGSEL/IOWIN of the I/O APIC mapped uncached in init.
    unsafe {
        core::ptr::write_volatile(base as *mut u32, reg);
        core::ptr::write_volatile((base + 0x10) as *mut u32, v);
    }
}

/// Maps and enables this CPU's local APIC and the I/O APIC. `frames`
/// supplies page-table frames for the mappings.
pub fn init(frames: &mut dyn FnMut() -> Option<u64>) {
    let base = crate::cpu::rdmsr(IA32_APIC_BASE) & 0xffff_f000;
    let base = if base == 0 { LAPIC_DEFAULT } else { base };
    LAPIC.store(
        crate::paging::map_mmio(base, 4096, frames),
        Ordering::Relaxed,
    );
    IOAPIC.store(
        crate::paging::map_mmio(IOAPIC_DEFAULT, 4096, frames),
        Ordering::Relaxed,
    );
    init_local();
}

/// Enables the local APIC of the calling CPU (software enable + spurious vector).
pub fn init_local() {
    lapic_write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
}

/// Enables the local APIC of an application processor that must take no
/// interrupt: timer, LINT0/1 and error entries masked, software-enabled
/// only so that it answers IPIs later.
pub(crate) fn init_parked() {
    lapic_write(REG_LVT_TIMER, LVT_MASKED);
    lapic_write(REG_TIMER_INIT, 0);
    lapic_write(REG_LVT_LINT0, LVT_MASKED);
    lapic_write(REG_LVT_LINT1, LVT_MASKED);
    lapic_write(REG_LVT_ERROR, LVT_MASKED);
    init_local();
}

/// Sends an IPI (`icr_low`: vector, delivery mode, level) to the CPU with
/// xAPIC id `dest`, then waits (bounded) until the APIC has delivered it.
/// Returns false if the delivery-status bit never cleared.
fn send_ipi(dest: u32, icr_low: u32) -> bool {
    // An interrupt handler sending its own IPI between the two ICR writes
    // would send ours to its destination.
    crate::cpu::without_interrupts(|| {
        lapic_write(REG_ICR_HIGH, dest << 24);
        lapic_write(REG_ICR_LOW, icr_low);
        for _ in 0..1_000_000 {
            if lapic_read(REG_ICR_LOW) & (1 << 12) == 0 {
                return true;
            }
            core::hint::spin_loop();
        }
        false
    })
}

/// Sends a fixed interrupt with `vector` to the CPU with xAPIC id `dest`
/// (wake-ups, reschedule requests between CPUs).
pub fn send_fixed(dest: u32, vector: u8) -> bool {
    send_ipi(dest, vector as u32)
}

/// INIT IPI (assert): puts the target CPU into wait-for-SIPI.
pub(crate) fn send_init(dest: u32) -> bool {
    send_ipi(dest, 0x0000_4500)
}

/// Startup IPI: the target starts in real mode at `page << 12`.
pub(crate) fn send_startup(dest: u32, page: u8) -> bool {
    send_ipi(dest, 0x0000_4600 | page as u32)
}

/// This CPU's local APIC id.
pub fn id() -> u32 {
    lapic_read(REG_ID) >> 24
}

/// Signals end of interrupt to the local APIC.
#[inline]
pub fn eoi() {
    lapic_write(REG_EOI, 0);
}

/// Arms the timer as a free-running one-shot counter for calibration.
pub(crate) fn timer_calibration_start() {
    lapic_write(REG_TIMER_DIV, 0x3);
    lapic_write(REG_LVT_TIMER, 1 << 16); // masked, one-shot
    lapic_write(REG_TIMER_INIT, u32::MAX);
}

/// The timer's current count (counts down).
pub(crate) fn timer_current() -> u32 {
    lapic_read(REG_TIMER_CUR)
}

/// Records the calibrated timer rate.
pub(crate) fn set_ticks_per_ms(t: u64) {
    TICKS_PER_MS.store(t.max(1), Ordering::Relaxed);
}

/// Starts the periodic local APIC timer at `hz` interrupts per second on `vector`.
pub fn start_timer(vector: u8, hz: u64) {
    let init = (TICKS_PER_MS.load(Ordering::Relaxed) * 1000 / hz).max(1);
    lapic_write(REG_TIMER_DIV, 0x3);
    lapic_write(REG_LVT_TIMER, vector as u32 | (1 << 17));
    lapic_write(REG_TIMER_INIT, init as u32);
}

/// Routes ISA IRQ `irq` to `vector` on the CPU with APIC id `dest`
/// (edge-triggered, active high, as ISA interrupts are).
pub fn route_irq(irq: u8, vector: u8, dest: u32) {
    ioapic_write(0x10 + 2 * irq as u32 + 1, dest << 24);
    ioapic_write(0x10 + 2 * irq as u32, vector as u32);
}
