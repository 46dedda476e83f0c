//! How long a suspicion waits before it becomes a failure: the
//! adaptive part of a SWIM-style detector (suspect after a fixed silence,
//! declare failed only if the suspect does not refute within a wait).
//!
//! The wait follows the lateness the detector saw lately: the silences of
//! its predecessor that ended (it spoke again or refuted), and the gaps
//! between the detector's own steps (a host that does not run the
//! detector's CPU does not run the others either: Lifeguard's local
//! health). A member known to be late gets more time, a punctual one that
//! stops is declared at the floor, and what was seen is forgotten by
//! halves (as a phi-accrual detector, the deadline follows the history of
//! arrivals, with a bound).

/// The longest lateness seen lately, and the suspicion wait it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lateness {
    floor: u64,
    ceiling: u64,
    half_life: u64,
    ns: u64,
    at: u64,
}

impl Lateness {
    /// Waits between `floor` and `ceiling`; what was seen halves every
    /// `half_life` (all in the same unit as the times given later).
    pub const fn new(floor: u64, ceiling: u64, half_life: u64) -> Self {
        Lateness {
            floor,
            ceiling,
            half_life,
            ns: 0,
            at: 0,
        }
    }

    /// The lateness remembered at time `now`.
    pub fn current(&self, now: u64) -> u64 {
        let halvings = now.saturating_sub(self.at) / self.half_life.max(1);
        self.ns
            .checked_shr(u32::try_from(halvings).unwrap_or(u32::MAX))
            .unwrap_or(0)
    }

    /// Something was late by `late` at time `now`.
    pub fn note(&mut self, now: u64, late: u64) {
        if late > self.current(now) {
            self.ns = late;
            self.at = now;
        }
    }

    /// How long a suspicion raised at `now` waits for its refutation:
    /// twice the lateness remembered, within `[floor, ceiling]`.
    pub fn wait(&self, now: u64) -> u64 {
        self.current(now)
            .saturating_mul(2)
            .clamp(self.floor, self.ceiling.max(self.floor))
    }
}

#[cfg(test)]
mod tests {
    use super::Lateness;

    const MS: u64 = 1_000_000;

    fn fresh() -> Lateness {
        Lateness::new(80 * MS, 500 * MS, 1000 * MS)
    }

    #[test]
    fn punctual_waits_the_floor() {
        let mut l = fresh();
        for t in 1..100 {
            l.note(t * MS, MS);
        }
        assert_eq!(l.wait(100 * MS), 80 * MS);
    }

    #[test]
    fn late_gets_twice_its_lateness_up_to_the_ceiling() {
        let mut l = fresh();
        l.note(10 * MS, 70 * MS);
        assert_eq!(l.wait(10 * MS), 140 * MS);
        l.note(20 * MS, 400 * MS);
        assert_eq!(l.wait(20 * MS), 500 * MS);
        // A shorter lateness does not hide a longer one seen lately.
        l.note(30 * MS, 100 * MS);
        assert_eq!(l.current(30 * MS), 400 * MS);
    }

    #[test]
    fn forgotten_by_halves() {
        let mut l = fresh();
        l.note(0, 400 * MS);
        assert_eq!(l.current(999 * MS), 400 * MS);
        assert_eq!(l.current(1000 * MS), 200 * MS);
        assert_eq!(l.wait(2000 * MS), 200 * MS);
        assert_eq!(l.wait(3000 * MS), 100 * MS);
        assert_eq!(l.wait(4000 * MS), 80 * MS);
        assert_eq!(l.current(u64::MAX), 0);
        // Once forgotten enough, a smaller lateness is remembered again.
        l.note(3000 * MS, 60 * MS);
        assert_eq!(l.current(3000 * MS), 60 * MS);
    }
}
