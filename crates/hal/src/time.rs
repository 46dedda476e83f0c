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

/// Most rounds of calibration.
const ROUNDS: usize = 9;

/// Three rounds that agree within this (parts per million) end the
/// calibration: two PIT ticks (the reading's grain, one at each end) in
/// a round of [`ROUND_MS`] are 560 ppm, and a round a descheduled vCPU
/// spoiled is off by far more.
const AGREE_PPM: u64 = 600;

/// Length of a calibration round in PIT time.
pub const ROUND_MS: u64 = 3;

/// Where the TSC frequency came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TscSource {
    /// Given on the command line (Linux's `tsc_early_khz=`).
    Given,
    /// CPUID leaf 0x15 (TSC / core crystal clock ratio and the crystal's
    /// frequency).
    Cpuid15,
    /// The hypervisor's timing leaf, CPUID 0x40000010 (TSC kHz).
    Hypervisor,
    /// Measured against the PIT.
    Pit,
    /// Nothing to measure against: 1 GHz assumed.
    Assumed,
}

/// The TSC frequency the CPU states, if it does: CPUID leaf 0x15 when it
/// gives the ratio and the crystal, else the hypervisor leaf 0x40000010
/// when the hypervisor's leaves reach it. (QEMU's TCG offers neither;
/// KVM passes 0x15 from hosts that have it.)
fn stated_tsc_hz() -> Option<(u64, TscSource)> {
    use crate::cpu::cpuid;
    if cpuid(0, 0).0 >= 0x15 {
        let (den, num, crystal, _) = cpuid(0x15, 0);
        if den != 0 && num != 0 && crystal != 0 {
            let hz = u64::from(crystal) * u64::from(num) / u64::from(den);
            return Some((hz, TscSource::Cpuid15));
        }
    }
    let hypervisor = cpuid(1, 0).2 & (1 << 31) != 0;
    if hypervisor && cpuid(0x4000_0000, 0).0 >= 0x4000_0010 {
        let khz = cpuid(0x4000_0010, 0).0;
        if khz != 0 {
            return Some((u64::from(khz) * 1000, TscSource::Hypervisor));
        }
    }
    None
}

/// Plausible TSC frequencies (a stated value outside is ignored).
const PLAUSIBLE_HZ: core::ops::RangeInclusive<u64> = 100_000_000..=20_000_000_000;

/// Sets the TSC and APIC timer rates: the TSC's from `given_khz` (the
/// command line), else from what the CPU states ([`stated_tsc_hz`]), else
/// measured against the PIT in rounds of `ms` milliseconds
/// ([`pit_calibrate`]);
/// the APIC timer is then measured against the TSC over one millisecond,
/// or with the TSC against the PIT. Returns the TSC frequency in Hz and
/// where it came from.
pub fn calibrate(ms: u64, entry_tsc: u64, given_khz: Option<u64>) -> (u64, TscSource) {
    let known = given_khz
        .map(|k| (k.saturating_mul(1000), TscSource::Given))
        .or_else(stated_tsc_hz)
        .filter(|(hz, _)| PLAUSIBLE_HZ.contains(hz));
    let (hz, apic_per_ms, source) = match known {
        Some((hz, source)) => (hz, apic_against_tsc(hz), source),
        None => match pit_calibrate(ms) {
            Some((hz, apic)) => (hz, apic, TscSource::Pit),
            // Without a PIT we cannot measure; assume 1 GHz / 1 MHz-per-ms
            // so the clocks still advance monotonically, and say so in
            // the boot log.
            None => (1_000_000_000, 62_500, TscSource::Assumed),
        },
    };
    crate::apic::set_ticks_per_ms(apic_per_ms);
    TSC_HZ.store(hz, Ordering::Relaxed);
    TSC_AT_BOOT.store(entry_tsc, Ordering::Relaxed);
    NS_MULT.store(
        ((1_000_000_000u128 << 32) / hz as u128) as u64,
        Ordering::Relaxed,
    );
    (hz, source)
}

/// The APIC timer's ticks per millisecond, counted over one millisecond
/// of a TSC running at `hz`.
fn apic_against_tsc(hz: u64) -> u64 {
    let span = hz / 1000;
    crate::apic::timer_calibration_start();
    let (t0, a0) = (crate::cpu::rdtsc(), crate::apic::timer_current());
    let mut t1 = t0;
    while t1.wrapping_sub(t0) < span {
        t1 = crate::cpu::rdtsc();
    }
    let a1 = crate::apic::timer_current();
    let t1 = crate::cpu::rdtsc().max(t1);
    u64::from(a0.wrapping_sub(a1)) * span / t1.wrapping_sub(t0).max(1)
}

/// Calibrates the TSC and the local APIC timer together in rounds of
/// `ms` milliseconds of PIT time (the APIC must be mapped), until three
/// rounds agree ([`AGREE_PPM`]; their middle one is kept) or [`ROUNDS`]
/// have run (their median is kept): `(TSC Hz, APIC ticks per ms)`, or
/// None without a PIT. A quiet host (or `-icount`) needs three rounds.
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
/// s. With one round, 18, 22 and 103 GHz. Seven rounds of 5 ms always
/// took 35 ms of a 57 ms boot under `-icount`.)
fn pit_calibrate(ms: u64) -> Option<(u64, u64)> {
    let want = (PIT_HZ * ms / 1000) as u16;
    let mut rounds = [(0u64, 0u64); ROUNDS];
    let mut n = 0;
    if !pit_start() {
        return None;
    }
    for _ in 0..ROUNDS {
        crate::apic::timer_calibration_start();
        let (p0, t0, a0) = bracketed_read();
        // Wait with bare PIT reads (each a few port exits), then take the
        // round's end as one bracketed reading: the ticks counted are the
        // ones it saw, however late it comes.
        let mut spins = 0u32;
        while p0.wrapping_sub(pit_count()) < want && spins < 10_000_000 {
            spins += 1;
        }
        let (p1, t1, a1) = bracketed_read();
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
        if let Some(r) = agreeing(&mut rounds[..n]) {
            return Some(r);
        }
    }
    if n == 0 {
        return None;
    }
    // `agreeing` left the rounds sorted.
    Some(rounds[n / 2])
}

/// Sorts `rounds` by TSC rate and returns the middle one of three
/// neighbours within [`AGREE_PPM`] of each other, if there are three.
fn agreeing(rounds: &mut [(u64, u64)]) -> Option<(u64, u64)> {
    rounds.sort_unstable_by_key(|r| r.0);
    rounds
        .windows(3)
        .find(|w| (w[2].0 - w[0].0).saturating_mul(1_000_000) <= w[1].0.saturating_mul(AGREE_PPM))
        .map(|w| w[1])
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
