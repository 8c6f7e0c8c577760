//! How many timed runs a figure gets, the same rule in every job: at least `min`, then more until
//! the confidence interval of the median is narrow enough (`target`, relative half-width) or
//! `max` runs — or the run's time budget — are spent. Columns take their runs in rounds (one run
//! of every column per round), so that a drift of the machine weighs on every column alike.

use serde::{Deserialize, Serialize};

use crate::stats::Spread;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Runs {
    pub min: u32,
    pub max: u32,
    /// Relative half-width of the median's confidence interval that is precise enough (0.03 =
    /// ±3%); 0 for exactly `min` = `max` runs.
    pub target: f64,
}

impl Runs {
    /// Fewest runs: with six, the whole range is a 96.9% confidence interval of the median.
    pub const MIN: u32 = 6;
    /// Most runs of the default work (twice the fewest: outliers can then be trimmed).
    pub const MAX: u32 = 12;
    /// Precise enough: the median known within ±3%.
    pub const TARGET: f64 = 0.03;
    /// However little work allows, a noisy figure may take this many runs: from nine on, the
    /// median's interval leaves out the slowest and the fastest run, so one disturbed run no
    /// longer decides what can be claimed.
    pub const TRIMMED: u32 = 9;
    /// Nine runs are the floor only while they take at most this many times the work allowed
    /// (a point whose epoch alone takes longer than the work gets [`Self::MIN`]).
    pub const TRIMMED_WORK: f64 = 3.0;
    /// A figure that decides a claim may take this many times its work again.
    pub const DECIDING_WORK: f64 = 1.0;

    /// The default: between [`Self::MIN`] and `max` runs, until ±[`Self::TARGET`].
    pub fn adaptive(max: u32) -> Self {
        Self {
            min: Self::MIN,
            max: max.max(Self::MIN),
            target: Self::TARGET,
        }
    }

    /// Exactly `count` runs, whatever their spread (the user asked for it).
    pub fn exactly(count: u32) -> Self {
        Self {
            min: count,
            max: count,
            target: 0.0,
        }
    }

    /// Whether a figure measured `samples` needs another run.
    pub fn wants_more(&self, samples: &[f64]) -> bool {
        let n = samples.len() as u32;
        if n < self.min {
            return true;
        }
        n < self.max
            && Spread::of(samples.iter().copied())
                .is_some_and(|s| s.relative_half_width() > self.target)
    }

    /// The most runs a figure may take when `work` seconds are allowed but each run takes
    /// `per_run`: what fits, at most `max`; but at least [`Self::TRIMMED`] where nine runs take at
    /// most [`Self::TRIMMED_WORK`] times the work, and at least `min` however long a run is.
    pub fn within(&self, work: f64, per_run: f64) -> Self {
        let fit = if per_run > 0.0 {
            (work / per_run).floor()
        } else {
            f64::from(self.max)
        };
        let trimmed_fits = f64::from(Self::TRIMMED) * per_run <= Self::TRIMMED_WORK * work;
        let floor = if trimmed_fits {
            Self::TRIMMED.max(self.min)
        } else {
            self.min
        }
        .min(self.max);
        Self {
            max: (fit.min(f64::from(self.max)) as u32).max(floor),
            ..*self
        }
    }

    /// The most runs a figure can take, the deciding ones ([`Self::deciding`]) included.
    pub fn ceiling(&self) -> u32 {
        if self.target == 0.0 {
            self.max
        } else {
            2 * self.max
        }
    }

    /// Runs beyond [`Self::within`]'s for a figure a claim hangs on (`stats::undecided`): what
    /// fits in [`Self::DECIDING_WORK`] times the work again, at most `max`.
    pub fn deciding(&self, work: f64, per_run: f64) -> u32 {
        if self.target == 0.0 || per_run <= 0.0 {
            return 0;
        }
        let fit = (Self::DECIDING_WORK * work / per_run).floor();
        fit.min(f64::from(self.max)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_go_on_until_the_median_is_known_or_the_most_are_spent() {
        let runs = Runs::adaptive(12);
        let steady = [10.0, 10.1, 9.9, 10.0, 10.05, 9.95];
        assert!(runs.wants_more(&steady[..5]), "fewer than the minimum");
        assert!(!runs.wants_more(&steady), "±1% is precise enough");
        let noisy = [10.0, 14.0, 9.0, 12.0, 10.0, 16.0];
        assert!(runs.wants_more(&noisy));
        let many: Vec<f64> = noisy.iter().cycle().take(12).copied().collect();
        assert!(!runs.wants_more(&many), "twelve runs is the most");
        assert!(!Runs::exactly(3).wants_more(&noisy[..3]));
    }

    #[test]
    fn the_most_runs_fit_the_work_allowed() {
        let runs = Runs::adaptive(12);
        assert_eq!(runs.within(60_000.0, 5_000.0).max, 12);
        // Little work allowed: still nine runs if the figure is noisy.
        assert_eq!(runs.within(6_000.0, 1_000.0).max, Runs::TRIMMED);
        assert_eq!(runs.within(3_000.0, 1_000.0).max, Runs::TRIMMED);
        // Nine runs would take over three times the work: six, the fewest.
        assert_eq!(runs.within(100.0, 1_000.0).max, Runs::MIN);
        assert_eq!(Runs::exactly(3).within(100.0, 1_000.0).max, 3);
    }

    #[test]
    fn a_figure_a_claim_hangs_on_may_take_its_work_again() {
        let runs = Runs::adaptive(15);
        assert_eq!(runs.deciding(0.6, 0.01), 15);
        assert_eq!(runs.deciding(0.6, 0.04), 15);
        assert_eq!(runs.deciding(0.5, 0.125), 4);
        assert_eq!(runs.deciding(0.6, 1.0), 0);
        assert_eq!(Runs::exactly(6).deciding(0.6, 0.04), 0);
        assert_eq!((runs.ceiling(), Runs::exactly(6).ceiling()), (30, 6));
    }
}
