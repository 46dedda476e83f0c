//! The local APIC (timer, EOI) and the I/O APIC (device interrupt routing).

use core::sync::atomic::{AtomicU64, Ordering};

const LAPIC_DEFAULT: u64 = 0xfee0_0000;
const IOAPIC_DEFAULT: u64 = 0xfec0_0000;
const IA32_APIC_BASE: u32 = 0x1b;

const REG_ID: u64 = 0x20;
const REG_EOI: u64 = 0xb0;
const REG_SVR: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
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
