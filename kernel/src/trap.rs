//! The kernel's trap handler: exceptions, the timer and device interrupts.

use core::sync::atomic::{AtomicU64, Ordering};
use hal::idt::{vector, TrapFrame};

/// Vector of the local APIC timer.
pub const TIMER_VECTOR: u8 = 0x20;
/// Vector of COM1's receive interrupt (ISA IRQ 4).
pub const COM1_VECTOR: u8 = 0x24;
/// Timer interrupts per second.
pub const TIMER_HZ: u64 = 1000;

static TICKS: AtomicU64 = AtomicU64::new(0);
static CAUGHT: AtomicU64 = AtomicU64::new(0);

/// Timer interrupts since the timer started.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Kernel-mode faults recovered by a probe so far.
pub fn caught_faults() -> u64 {
    CAUGHT.load(Ordering::Relaxed)
}

/// Installs the handler and loads the IDT on this CPU.
pub fn init() {
    hal::idt::set_handler(handle);
    hal::idt::init();
}

fn handle(frame: &mut TrapFrame) {
    match frame.vector {
        v if v == TIMER_VECTOR as u64 => {
            TICKS.fetch_add(1, Ordering::Relaxed);
            hal::apic::eoi();
        }
        v if v == COM1_VECTOR as u64 => {
            crate::console::on_interrupt();
            hal::apic::eoi();
        }
        v if v == hal::apic::SPURIOUS_VECTOR as u64 => {}
        v if v < vector::FIRST_EXTERNAL => exception(frame),
        _ => hal::apic::eoi(),
    }
}

fn exception(frame: &mut TrapFrame) {
    if !frame.from_user() && hal::probe::fixup(frame) {
        CAUGHT.fetch_add(1, Ordering::Relaxed);
        crate::klog!(
            "trap: caught {} in a probe: rip={:#x} cr2={:#x} error={:#x}",
            hal::idt::vector_name(frame.vector),
            frame.rip,
            hal::cpu::cr2(),
            frame.error_code
        );
        return;
    }
    hal::idt::report_and_exit(frame, "unexpected");
}
