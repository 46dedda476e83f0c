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

/// One reading of the PIT count with the TSC and the APIC timer taken
/// around it: of [`READ_TRIES`] readings, the one whose two TSC reads are
/// closest, so that a vCPU descheduled in the middle of a reading (under
/// TCG on a loaded host) does not misplace it. The TSC is the midpoint.
fn bracketed_read() -> (u16, u64, u32) {
    let mut best = (0u16, 0u64, 0u32, u64::MAX);
    for _ in 0..READ_TRIES {
        let a = crate::cpu::rdtsc();
        let apic = crate::apic::timer_current();
        let pit = pit_count();
        let b = crate::cpu::rdtsc();
        let span = b.wrapping_sub(a);
        if span < best.3 {
            best = (pit, a + span / 2, apic, span);
        }
    }
    (best.0, best.1, best.2)
}

/// Readings per end of a calibration round.
const READ_TRIES: usize = 5;

/// Starts PIT channel 0 counting down from 0xffff (mode 0). Returns false
/// if it does not count (absent).
fn pit_start() -> bool {
    let mut cmd = Port::<u8>::new(0x43);
    let mut ch0 = Port::<u8>::new(0x40);
    // SAFETY: programs PIT channel 0, mode 0, lo/hi count 0xffff; nothing
    // else uses the PIT (its IRQ is masked).
    unsafe {
        cmd.write(0b0011_0000);
        ch0.write(0xff);
        ch0.write(0xff);
    }
    let first = pit_count();
    (0..1_000_000).any(|_| pit_count() != first)
}

/// Rounds of calibration; the median is kept.
const ROUNDS: usize = 7;

/// Calibrates the TSC and the local APIC timer together over `ms`
/// milliseconds of PIT time (the APIC must be mapped), in [`ROUNDS`]
/// rounds. Returns the TSC frequency in Hz.
///
/// Under TCG on a loaded host the vCPU can be descheduled at any point of
/// a round, including between a PIT read and the TSC read meant to go
/// with it: a round then measures too much or too little TSC time. Each
/// end of a round is a bracketed reading ([`bracketed_read`]) and a round
/// counts the PIT ticks it actually saw pass; a vCPU away for longer than
/// the PIT's 55 ms period spoils its round, which the median of the
/// rounds outvotes. (Keeping the shortest of rounds ended by polling the
/// PIT, one busy host's three cluster guests calibrated 2595, 3429 and
/// 4112 MHz for one host TSC: their clocks ran at different rates, and a
/// process moving between them saw CLOCK_MONOTONIC go back by up to 2.4
/// s. With one round, 18, 22 and 103 GHz.)
pub fn calibrate(ms: u64, entry_tsc: u64) -> u64 {
    let want = (PIT_HZ * ms / 1000) as u16;
    let mut rounds = [(0u64, 0u64); ROUNDS];
    let mut n = 0;
    if pit_start() {
        for _ in 0..ROUNDS {
            crate::apic::timer_calibration_start();
            let (p0, t0, a0) = bracketed_read();
            let (mut p1, mut t1, mut a1) = (p0, t0, a0);
            let mut spins = 0u32;
            while p0.wrapping_sub(p1) < want && spins < 10_000_000 {
                (p1, t1, a1) = bracketed_read();
                spins += 1;
            }
            let ticks = u64::from(p0.wrapping_sub(p1));
            if ticks == 0 || t1 <= t0 {
                continue;
            }
            // Per millisecond of PIT time: TSC ticks, APIC timer ticks.
            rounds[n] = (
                (t1 - t0) * PIT_HZ / ticks,
                u64::from(a0.wrapping_sub(a1)) * PIT_HZ / ticks / 1000,
            );
            n += 1;
        }
    }
    // Without a PIT we cannot measure; assume 1 GHz / 1 MHz-per-ms so the
    // clocks still advance monotonically, and say so in the boot log.
    let (hz, apic_per_ms) = if n == 0 {
        (1_000_000_000, 62_500)
    } else {
        let got = &mut rounds[..n];
        got.sort_unstable_by_key(|r| r.0);
        got[n / 2]
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
