//! Linux nice weights and the fixed-point scaling between real and virtual
//! time. Kept bit-compatible with Linux so `nice` means the same CPU share
//! here as it does there.

/// Weight of a nice-0 task; virtual time runs at real speed for it.
pub const NICE_0_WEIGHT: u32 = 1024;

/// Weight of a SCHED_IDLE task (Linux `WEIGHT_IDLEPRIO`): below nice 19.
pub const IDLE_WEIGHT: u32 = 3;

/// Linux's `sched_prio_to_weight` (kernel/sched/core.c), index 0 = nice -20.
/// Each step is ~1.25x, so one nice level is ~10% CPU between two tasks.
const PRIO_TO_WEIGHT: [u32; 40] = [
    /* -20 */ 88761, 71755, 56483, 46273, 36291, //
    /* -15 */ 29154, 23254, 18705, 14949, 11916, //
    /* -10 */ 9548, 7620, 6100, 4904, 3906, //
    /*  -5 */ 3121, 2501, 1991, 1586, 1277, //
    /*   0 */ 1024, 820, 655, 526, 423, //
    /*   5 */ 335, 272, 215, 172, 137, //
    /*  10 */ 110, 87, 70, 56, 45, //
    /*  15 */ 36, 29, 23, 18, 15, //
];

/// Linux's `sched_prio_to_weight` (kernel/sched/core.c), nice -20..=19;
/// out-of-range nice values are clamped (a user-chosen value must never
/// index out of bounds).
#[inline]
pub fn weight_of_nice(nice: i32) -> u32 {
    let idx = nice.clamp(-20, 19) + 20;
    // `idx` is in 0..=39 after the clamp; `get` keeps this panic-free anyway.
    PRIO_TO_WEIGHT
        .get(usize::try_from(idx).unwrap_or(0))
        .copied()
        .unwrap_or(NICE_0_WEIGHT)
}

/// Real nanoseconds -> virtual nanoseconds for a task of `weight`
/// (`delta * 1024 / weight`, Linux `calc_delta_fair`), exact and
/// saturated so no input can overflow; a zero weight is treated as 1.
/// `delta * 1024` fits u64 for any delta below 2^54 ns (208 days), so the
/// hot path is one u64 multiply and divide; only larger deltas take u128.
/// Nice 0, the usual weight, needs neither (Linux short-cuts it too).
#[inline]
pub(crate) fn to_virtual(delta_ns: u64, weight: u32) -> u64 {
    if weight == NICE_0_WEIGHT {
        return delta_ns;
    }
    let w = u64::from(weight.max(1));
    match delta_ns.checked_mul(u64::from(NICE_0_WEIGHT)) {
        Some(x) => x / w,
        None => {
            let v = u128::from(delta_ns) * u128::from(NICE_0_WEIGHT) / u128::from(w);
            u64::try_from(v).unwrap_or(u64::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_linux_table() {
        assert_eq!(weight_of_nice(-20), 88761);
        assert_eq!(weight_of_nice(-1), 1277);
        assert_eq!(weight_of_nice(0), 1024);
        assert_eq!(weight_of_nice(5), 335);
        assert_eq!(weight_of_nice(19), 15);
    }

    #[test]
    fn clamps_out_of_range_nice() {
        assert_eq!(weight_of_nice(i32::MIN), 88761);
        assert_eq!(weight_of_nice(-21), 88761);
        assert_eq!(weight_of_nice(20), 15);
        assert_eq!(weight_of_nice(i32::MAX), 15);
    }

    #[test]
    fn strictly_decreasing_by_about_a_quarter() {
        for n in -20..19 {
            let (a, b) = (weight_of_nice(n), weight_of_nice(n + 1));
            assert!(a > b);
            // Linux's table is built so that adjacent levels differ by ~1.25x.
            let r = f64::from(a) / f64::from(b);
            assert!((1.2..1.3).contains(&r), "nice {n}: ratio {r}");
        }
    }

    #[test]
    fn virtual_time_scaling() {
        assert_eq!(to_virtual(1000, NICE_0_WEIGHT), 1000);
        assert_eq!(to_virtual(1000, 2048), 500);
        assert_eq!(to_virtual(u64::MAX, IDLE_WEIGHT), u64::MAX);
        assert_eq!(to_virtual(u64::MAX, 0), u64::MAX);
        // Both sides of the u64 fast path agree with the u128 formula.
        for d in [(1u64 << 54) - 1, 1 << 54, (1 << 60) + 12345, u64::MAX / 3] {
            for w in [IDLE_WEIGHT, 15, NICE_0_WEIGHT, 88761] {
                let exact = u128::from(d) * 1024 / u128::from(w);
                let want = u64::try_from(exact).unwrap_or(u64::MAX);
                assert_eq!(to_virtual(d, w), want, "{d} {w}");
            }
        }
    }
}
