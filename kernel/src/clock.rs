//! The wall clock, CLOCK_REALTIME: the monotonic (TSC) clock plus an
//! offset, set from the CMOS RTC at boot and by clock_settime(2) /
//! settimeofday(2). Deadlines are kept in monotonic ns everywhere; an
//! absolute realtime deadline is converted once, when it is given.

use core::sync::atomic::{AtomicU64, Ordering};

/// Realtime ns minus monotonic ns, two's complement: a clock set to
/// before the boot makes it "negative", which wrapping arithmetic (here
/// and in the vDSO's `addq`) handles.
static OFFSET: AtomicU64 = AtomicU64::new(0);

const NS: u64 = 1_000_000_000;

/// Reads the RTC (before the vDSO is built, which publishes the offset).
pub fn init() {
    match hal::rtc::unix_seconds() {
        Some(s) => set_offset(s.wrapping_mul(NS).wrapping_sub(hal::time::now_ns())),
        None => crate::klog!("clock: no CMOS RTC, CLOCK_REALTIME counts from boot"),
    }
}

fn set_offset(off: u64) {
    OFFSET.store(off, Ordering::Release);
    crate::vdso::set_realtime_offset(off);
}

pub fn offset() -> u64 {
    OFFSET.load(Ordering::Acquire)
}

/// CLOCK_REALTIME now, ns since the epoch.
pub fn realtime_ns() -> u64 {
    hal::time::now_ns().wrapping_add(offset())
}

/// Sets CLOCK_REALTIME to `ns` since the epoch.
pub fn set_realtime(ns: u64) {
    set_offset(ns.wrapping_sub(hal::time::now_ns()));
}

/// Clocks that read the wall time: REALTIME, REALTIME_COARSE,
/// REALTIME_ALARM, TAI (TAI = REALTIME here: no leap-second table, as
/// Linux until adjtimex sets one).
pub fn is_realtime(clock: u64) -> bool {
    matches!(clock, 0 | 5 | 8 | 11)
}

/// `clock`'s time now.
pub fn now(clock: u64) -> u64 {
    if is_realtime(clock) {
        realtime_ns()
    } else {
        hal::time::now_ns()
    }
}

/// An absolute time on `clock` as a monotonic deadline (0 if it lies
/// before the boot: already due).
pub fn abs_to_monotonic(clock: u64, abs: u64) -> u64 {
    if is_realtime(clock) {
        let mono = abs.wrapping_sub(offset()) as i64;
        mono.max(0) as u64
    } else {
        abs
    }
}
