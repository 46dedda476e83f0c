//! Time: the TSC as the monotonic clock, calibrated against the PIT.

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
/// ns = (ticks * MULT) >> 32, precomputed so reading the clock needs no division.
static NS_MULT: AtomicU64 = AtomicU64::new(0);

/// Reads PIT channel 0's current count (latched).
fn pit_count() -> u16 {
    let mut cmd = Port::<u8>::new(0x43);
    let mut ch0 = Port::<u8>::new(0x40);
    // SAFETY: latch command and two reads of channel 0 on the PIT ports.
    unsafe {
        cmd.write(0x00);
        let lo = ch0.read() as u16;
        let hi = ch0.read() as u16;
        lo | (hi << 8)
    }
}

/// Busy-waits `pit_ticks` PIT ticks (< 60000) using channel 0 in mode 0,
/// calling `sample` at the start and the end. Returns false if the PIT does
/// not count (absent).
pub fn pit_wait(pit_ticks: u16, mut sample: impl FnMut()) -> bool {
    let mut cmd = Port::<u8>::new(0x43);
    let mut ch0 = Port::<u8>::new(0x40);
    // SAFETY: programs PIT channel 0, mode 0, lo/hi count 0xffff; nothing
    // else uses the PIT (its IRQ is masked).
    unsafe {
        cmd.write(0b0011_0000);
        ch0.write(0xff);
        ch0.write(0xff);
    }
    let start = pit_count();
    sample();
    let mut spins = 0u64;
    loop {
        let now = pit_count();
        if start.wrapping_sub(now) >= pit_ticks {
            break;
        }
        spins += 1;
        if spins > 50_000_000 {
            return false;
        }
    }
    sample();
    true
}

/// Rounds of calibration; the shortest is kept.
const ROUNDS: usize = 8;

/// Calibrates the TSC and the local APIC timer together over `ms`
/// milliseconds of PIT time (the APIC must be mapped), in [`ROUNDS`]
/// rounds. Returns the TSC frequency in Hz.
///
/// Under TCG on a loaded host the vCPU can be descheduled in the middle
/// of a round (for longer than the PIT's 55 ms period, too): that round's
/// TSC delta then spans more than `ms`, never less, so the shortest round
/// is the truest. With one round, guests of one busy host calibrated
/// 18, 22 and 103 GHz for the same host TSC, and their clocks ran 5 to 40
/// times slow (and at different rates, which a cluster's timeouts cannot
/// survive).
pub fn calibrate(ms: u64, entry_tsc: u64) -> u64 {
    let mut best: Option<(u64, u32)> = None;
    for _ in 0..ROUNDS {
        let mut tsc = [0u64; 2];
        let mut apic = [0u32; 2];
        let mut i = 0;
        crate::apic::timer_calibration_start();
        let ok = pit_wait((PIT_HZ * ms / 1000) as u16, || {
            tsc[i.min(1)] = crate::cpu::rdtsc();
            apic[i.min(1)] = crate::apic::timer_current();
            i += 1;
        });
        if !ok {
            break;
        }
        if tsc[1] > tsc[0] && best.is_none_or(|(t, _)| tsc[1] - tsc[0] < t) {
            best = Some((tsc[1] - tsc[0], apic[0].wrapping_sub(apic[1])));
        }
    }
    // Without a PIT we cannot measure; assume 1 GHz / 1 MHz-per-ms so the
    // clocks still advance monotonically, and say so in the boot log.
    let (hz, apic_per_ms) = match best {
        Some((t, a)) => (t * 1000 / ms, a as u64 / ms),
        None => (1_000_000_000, 62_500),
    };
    crate::apic::set_ticks_per_ms(apic_per_ms);
    TSC_HZ.store(hz, Ordering::Relaxed);
    TSC_AT_BOOT.store(entry_tsc, Ordering::Relaxed);
    NS_MULT.store(
        ((1_000_000_000u128 << 32) / hz as u128) as u64,
        Ordering::Relaxed,
    );
    hz
}

/// TSC frequency in Hz (0 before calibration).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Converts TSC ticks to nanoseconds.
#[inline]
pub fn ticks_to_ns(ticks: u64) -> u64 {
    ((ticks as u128 * NS_MULT.load(Ordering::Relaxed) as u128) >> 32) as u64
}

/// The clock's parameters, for code outside the kernel that reads the
/// TSC itself (the vDSO): `(tsc_at_boot, ns_mult)`, where
/// ns = ((tsc - tsc_at_boot) * ns_mult) >> 32.
pub fn clock_params() -> (u64, u64) {
    (
        TSC_AT_BOOT.load(Ordering::Relaxed),
        NS_MULT.load(Ordering::Relaxed),
    )
}

/// Nanoseconds since the kernel's first instruction (monotonic).
#[inline]
pub fn now_ns() -> u64 {
    ticks_to_ns(crate::cpu::rdtsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed)))
}
