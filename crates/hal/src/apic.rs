//! The local APIC (timer, EOI) and the I/O APIC (device interrupt routing).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
/// The I/O APICs (the MADT's, or the standard one without ACPI): mapped
/// register base (0 = slot unused), first GSI, number of pins.
struct IoApic {
    base: AtomicU64,
    gsi_base: AtomicU32,
    pins: AtomicU32,
}
#[allow(clippy::declare_interior_mutable_const)]
const NO_IOAPIC: IoApic = IoApic {
    base: AtomicU64::new(0),
    gsi_base: AtomicU32::new(0),
    pins: AtomicU32::new(0),
};
static IOAPICS: [IoApic; crate::boot::MAX_IOAPICS] = [NO_IOAPIC; crate::boot::MAX_IOAPICS];
/// IOREGSEL/IOWIN is a pair: no other CPU or handler may come between.
static IOAPIC_LOCK: spin::Mutex<()> = spin::Mutex::new(());
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

fn ioapic_write(base: u64, reg: u32, v: u32) {
    crate::cpu::without_interrupts(|| {
        let _g = IOAPIC_LOCK.lock();
        // SAFETY: IOREGSEL/IOWIN of an I/O APIC mapped uncached in init.
        unsafe {
            core::ptr::write_volatile(base as *mut u32, reg);
            core::ptr::write_volatile((base + 0x10) as *mut u32, v);
        }
    })
}

fn ioapic_read(base: u64, reg: u32) -> u32 {
    crate::cpu::without_interrupts(|| {
        let _g = IOAPIC_LOCK.lock();
        // SAFETY: as ioapic_write.
        unsafe {
            core::ptr::write_volatile(base as *mut u32, reg);
            core::ptr::read_volatile((base + 0x10) as *const u32)
        }
    })
}

/// The I/O APIC serving `gsi` and the pin it arrives on.
fn ioapic_for(gsi: u32) -> Option<(u64, u32)> {
    IOAPICS.iter().find_map(|a| {
        let base = a.base.load(Ordering::Relaxed);
        let first = a.gsi_base.load(Ordering::Relaxed);
        let pins = a.pins.load(Ordering::Relaxed);
        (base != 0 && gsi >= first && gsi < first + pins).then_some((base, gsi - first))
    })
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
    let listed = crate::boot::info().ioapics();
    let standard = [crate::boot::IoApicEntry {
        address: IOAPIC_DEFAULT,
        gsi_base: 0,
    }];
    let list = if listed.is_empty() {
        &standard[..]
    } else {
        listed
    };
    for (slot, e) in IOAPICS.iter().zip(list) {
        let base = crate::paging::map_mmio(e.address, 4096, frames);
        // IOAPICVER bits 16..23: the index of the last redirection entry.
        let pins = ((ioapic_read(base, 1) >> 16) & 0xff) + 1;
        slot.gsi_base.store(e.gsi_base, Ordering::Relaxed);
        slot.pins.store(pins, Ordering::Relaxed);
        slot.base.store(base, Ordering::Release);
    }
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
    // QEMU's ISA IRQs other than the timer arrive on the same-numbered GSI.
    route_gsi(irq as u32, vector, dest, false);
}

const REDIR_LEVEL: u32 = 1 << 15;
const REDIR_MASKED: u32 = 1 << 16;

/// Routes global system interrupt `gsi` to `vector` on the CPU with APIC
/// id `dest`, unmasked; `level` for level-triggered lines (PCI INTx,
/// virtio-mmio), which stay asserted until the device is acknowledged.
/// Returns false when no I/O APIC serves `gsi`.
pub fn route_gsi(gsi: u32, vector: u8, dest: u32, level: bool) -> bool {
    let Some((base, pin)) = ioapic_for(gsi) else {
        return false;
    };
    let low = vector as u32 | if level { REDIR_LEVEL } else { 0 };
    ioapic_write(base, 0x10 + 2 * pin + 1, dest << 24);
    ioapic_write(base, 0x10 + 2 * pin, low);
    true
}

/// Masks or unmasks `gsi` at its I/O APIC. A level-triggered device
/// interrupt is masked by its handler until the device has been
/// acknowledged outside interrupt context, then unmasked.
pub fn mask_gsi(gsi: u32, masked: bool) {
    if let Some((base, pin)) = ioapic_for(gsi) {
        let reg = 0x10 + 2 * pin;
        crate::cpu::without_interrupts(|| {
            let _g = IOAPIC_LOCK.lock();
            // SAFETY: as ioapic_write; read-modify-write of one entry
            // under the lock, so no other update comes between.
            unsafe {
                core::ptr::write_volatile(base as *mut u32, reg);
                let win = (base + 0x10) as *mut u32;
                let low = core::ptr::read_volatile(win);
                let low = if masked {
                    low | REDIR_MASKED
                } else {
                    low & !REDIR_MASKED
                };
                core::ptr::write_volatile(win, low);
            }
        })
    }
}
