//! The adaptive braid interval: short while state changes fast, long when
//! quiet, always within `[min, max]` (docs/braid.md §9).

/// Adaptive interval controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interval {
    min: u64,
    max: u64,
    cur: u64,
    quiet: u32,
    last_load: u64,
    adaptive: bool,
}

impl Interval {
    /// Start at `max` (a new torus is quiet until it hears otherwise).
    pub fn new(min: u64, max: u64, adaptive: bool) -> Self {
        let min = min.max(1);
        let max = max.max(min);
        Interval {
            min,
            max,
            cur: if adaptive { max } else { min },
            quiet: 0,
            last_load: 0,
            adaptive,
        }
    }

    /// The current interval.
    pub fn current(&self) -> u64 {
        self.cur
    }

    /// Upper bound: what timeouts are based on.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Update after a tick given how many log entries were appended since
    /// the previous tick and the current total load.
    pub fn update(&mut self, appended: u64, load: u64) -> u64 {
        if !self.adaptive {
            return self.cur;
        }
        let delta = load.abs_diff(self.last_load);
        self.last_load = load;
        if appended > 2 || delta * 8 > load.max(1) {
            self.cur = (self.cur / 2).max(self.min);
            self.quiet = 0;
        } else {
            self.quiet += 1;
            if self.quiet >= 4 {
                self.cur = (self.cur + self.cur / 4).min(self.max);
            }
        }
        self.cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_under_churn_and_relaxes_when_quiet() {
        let mut i = Interval::new(100, 1600, true);
        assert_eq!(i.current(), 1600);
        for _ in 0..5 {
            i.update(10, 1000);
        }
        assert_eq!(i.current(), 100);
        for _ in 0..40 {
            i.update(0, 1000);
        }
        assert_eq!(i.current(), 1600);
        let mut fixed = Interval::new(100, 1600, false);
        fixed.update(10, 5);
        assert_eq!(fixed.current(), 100);
    }
}
