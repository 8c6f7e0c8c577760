//! How repeated measurements are summarised and compared, one method everywhere:
//!
//! - a [`Spread`] keeps the runs it summarises, their minimum, median and maximum, their number,
//!   and the distribution-free confidence interval of the median (order statistics: the narrowest
//!   interval between two runs that holds the true median with at least 95% probability; with
//!   fewer than six runs no such interval exists and the whole range is used). The interval always
//!   lies between two measured times, so it never implies a negative time;
//! - two times differ ([`compare`]) only by a rank test on their fastest runs, a precedence test:
//!   the faster one's r fastest runs must all beat the other's fastest run, by more than a
//!   threshold (5% in verdicts, 10% in `diff`, 25% in `fleet`), where r is the fewest runs for
//!   which that could happen by chance at most 2.5% of the time were both drawn from one
//!   distribution (5% for either direction). Otherwise there is no measurable difference, and the
//!   largest difference the fastest runs allow is said. A difference is stated as the ratio of
//!   the two fastest runs.
//!
//! Why the fastest runs: interference on a shared machine — another tenant, a sibling
//! hyperthread, a busy hypervisor — only adds time, and it does not weigh on every column alike
//! even when they are measured in interleaved rounds: a column that needs every core is held back
//! whenever any core is busy, while a one-thread column moves to a free core. It can hold back
//! more than half of a column's runs for seconds, moving the median anywhere between the machine's
//! speed and the weather's. The fast runs are where the machine shows what it can do; a slower
//! machine, a CPU hog or slower code moves them too. Reports from before the runs were kept are
//! compared by their medians' intervals (apart, and the medians beyond the threshold).

use serde::{Deserialize, Serialize};

/// The confidence every interval is built for.
pub const CONFIDENCE: f64 = 0.95;

/// The smallest difference a verdict calls a difference (5%): below it, two times are "no
/// measurable difference" even when their intervals are apart.
pub const VERDICT_THRESHOLD: f64 = 0.05;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// How many measurements (0 in reports from before it was recorded).
    #[serde(default)]
    pub n: usize,
    /// The confidence interval of the median (see the module); absent in older reports, where
    /// the whole range stands for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_high: Option<f64>,
    /// The values summarised, in the order they were measured (absent in older reports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f64>,
}

impl Spread {
    /// `None` for no values; NaNs are ignored.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let k = median_interval_rank(n);
        Some(Self {
            min: sorted[0],
            median,
            max: sorted[n - 1],
            n,
            ci_low: Some(sorted[k - 1]),
            ci_high: Some(sorted[n - k]),
            values,
        })
    }

    /// The confidence interval of the median (the whole range in older reports).
    pub fn interval(&self) -> (f64, f64) {
        (
            self.ci_low.unwrap_or(self.min),
            self.ci_high.unwrap_or(self.max),
        )
    }

    /// The interval's half-width as a share of the median: how precisely the median is known.
    pub fn relative_half_width(&self) -> f64 {
        let (low, high) = self.interval();
        if self.median == 0.0 {
            0.0
        } else {
            (high - low) / 2.0 / self.median.abs()
        }
    }

    /// This spread with every value multiplied by `factor` (> 0): a unit change.
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            min: self.min * factor,
            median: self.median * factor,
            max: self.max * factor,
            n: self.n,
            ci_low: self.ci_low.map(|v| v * factor),
            ci_high: self.ci_high.map(|v| v * factor),
            values: self.values.iter().map(|v| v * factor).collect(),
        }
    }

    /// The values in increasing order, when this spread kept them and every one is a positive,
    /// finite time (a saved report can hold anything).
    fn sorted_times(&self) -> Option<Vec<f64>> {
        let usable = !self.values.is_empty()
            && self.values.len() == self.n
            && self.values.iter().copied().all(is_time);
        usable.then(|| {
            let mut sorted = self.values.clone();
            sorted.sort_by(f64::total_cmp);
            sorted
        })
    }
}

/// The rank k (1-based) of the order statistics (x₍ₖ₎, x₍ₙ₋ₖ₊₁₎) that bound the median with at
/// least [`CONFIDENCE`]: the largest k whose coverage 1 − 2·P(Bin(n, ½) < k) is still enough; 1
/// (the whole range) when none is.
pub fn median_interval_rank(n: usize) -> usize {
    if n > 1000 {
        // The normal approximation of the binomial, exact enough at this size.
        let k = (n as f64 / 2.0 - 1.96 * (n as f64).sqrt() / 2.0).floor();
        return (k as usize).max(1);
    }
    let mut k = 1;
    let mut term = 0.5f64.powi(n as i32); // P(Bin(n, ½) = k − 1)
    let mut below = term; // P(Bin(n, ½) < k)
    while 2 * k < n {
        term *= (n - k + 1) as f64 / k as f64;
        let next_below = below + term;
        if 1.0 - 2.0 * next_below < CONFIDENCE {
            break;
        }
        below = next_below;
        k += 1;
    }
    k
}

/// The rank r of the precedence test: the fewest of `n`'s fastest runs that must all come before
/// the other's (`m` runs) fastest for the chance of it, were both drawn from one distribution, to
/// be at most half of 1 − [`CONFIDENCE`] (one direction of a two-sided test). That chance is
/// C(n, r) / C(n + m, r): every one of the r fastest runs of all n + m is one of the n. `None` when
/// even all n are not enough (too few runs).
pub fn precedence_rank(n: usize, m: usize) -> Option<usize> {
    let alpha = (1.0 - CONFIDENCE) / 2.0;
    let mut chance = 1.0;
    for r in 1..=n {
        chance *= (n - r + 1) as f64 / (n + m - r + 1) as f64;
        if chance <= alpha {
            return Some(r);
        }
    }
    None
}

/// How a time compares with another, by [`compare`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Comparison {
    /// Measurably faster (less time): `ratio` = the other's fastest run / this one's, above 1.
    Faster { ratio: f64 },
    /// Measurably slower: `ratio` = this fastest run / the other's, above 1.
    Slower { ratio: f64 },
    /// No measurable difference: the two differ by at most `within` (0.04 = ±4%), the largest
    /// difference their fastest runs allow or the threshold, whichever is larger; infinite when
    /// too few runs were taken for the test to tell anything apart.
    Same { within: f64 },
}

impl Comparison {
    /// "slower", "faster" or "same": what a claim says, for tests and stability checks.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Faster { .. } => "faster",
            Self::Slower { .. } => "slower",
            Self::Same { .. } => "same",
        }
    }
}

/// Time `a` against time `b`, by the module's one method: different only when the faster one's r
/// fastest runs ([`precedence_rank`]) all beat the other's fastest by more than `threshold` (0.05
/// = 5%). Spreads from older reports, which did not keep their runs, are compared by their
/// medians' intervals instead.
pub fn compare(a: &Spread, b: &Spread, threshold: f64) -> Comparison {
    if !(is_time(a.median) && is_time(b.median)) {
        return Comparison::Same { within: f64::NAN };
    }
    match (a.sorted_times(), b.sorted_times()) {
        (Some(a), Some(b)) => compare_fastest(&a, &b, threshold),
        _ => compare_intervals(a, b, threshold),
    }
}

/// The precedence test on two sets of runs, each sorted from the fastest.
fn compare_fastest(a: &[f64], b: &[f64], threshold: f64) -> Comparison {
    // How far the r-th fastest run of `x` reaches past the fastest of `y` (all of `x` when too
    // few runs make no rank enough).
    let reach = |x: &[f64], y: &[f64]| match precedence_rank(x.len(), y.len()) {
        Some(r) => (x[r - 1] / y[0], true),
        None => (x[x.len() - 1] / y[0], false),
    };
    let ((a_reach, a_ranked), (b_reach, b_ranked)) = (reach(a, b), reach(b, a));
    if a_ranked && a_reach * (1.0 + threshold) < 1.0 {
        return Comparison::Faster { ratio: b[0] / a[0] };
    }
    if b_ranked && b_reach * (1.0 + threshold) < 1.0 {
        return Comparison::Slower { ratio: a[0] / b[0] };
    }
    // Too few runs for one direction: nothing can be told apart.
    let within = if a_ranked && b_ranked {
        (a_reach.max(b_reach) - 1.0).max(threshold)
    } else {
        f64::INFINITY
    };
    Comparison::Same { within }
}

/// Older reports: different only when the medians' intervals do not overlap and the medians
/// differ by more than `threshold`.
fn compare_intervals(a: &Spread, b: &Spread, threshold: f64) -> Comparison {
    let ((a_low, a_high), (b_low, b_high)) = (a.interval(), b.interval());
    let apart = a_high < b_low || b_high < a_low;
    let ratio = a.median / b.median;
    if apart && ratio > 1.0 + threshold {
        return Comparison::Slower { ratio };
    }
    if apart && 1.0 / ratio > 1.0 + threshold {
        return Comparison::Faster { ratio: 1.0 / ratio };
    }
    let widest = if is_time(a_low) && is_time(b_low) {
        (a_high / b_low).max(b_high / a_low) - 1.0
    } else {
        f64::INFINITY
    };
    Comparison::Same {
        within: widest.max(threshold),
    }
}

/// Whether more runs could change what [`compare`] says of `a` and `b`: no measurable difference
/// yet, but their fastest runs are apart by more than `threshold`: too few fast runs to be sure.
pub fn undecided(a: &Spread, b: &Spread, threshold: f64) -> bool {
    if !matches!(compare(a, b, threshold), Comparison::Same { .. }) {
        return false;
    }
    let ratio = a.min / b.min;
    is_time(ratio) && apart_beyond(ratio, threshold)
}

/// Whether a ratio of two times is beyond `threshold` either way (1.2 and 1 / 1.2 both beyond
/// 10%).
pub fn apart_beyond(ratio: f64, threshold: f64) -> bool {
    ratio.max(1.0 / ratio) > 1.0 + threshold
}

/// A positive, finite number: something a time (or a ratio of times) can be.
fn is_time(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.min, odd.median, odd.max, odd.n), (1.0, 2.0, 3.0, 3));
        let even = Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(even.median, 2.5);
        assert!(Spread::of([]).is_none());
        assert!(Spread::of([f64::NAN]).is_none());
    }

    #[test]
    fn the_interval_of_the_median_comes_from_binomial_order_statistics() {
        // Coverage of (x₍ₖ₎, x₍ₙ₋ₖ₊₁₎) is 1 − 2·P(Bin(n, ½) < k), from tables of the sign test.
        let ranks: Vec<usize> = [5, 6, 8, 9, 10, 11, 12, 20]
            .iter()
            .map(|&n| median_interval_rank(n))
            .collect();
        // n = 9: k = 2 covers 96.1%, k = 3 only 82%; n = 12: k = 3 covers 96.1%; n = 20: k = 6
        // covers 95.9%.
        assert_eq!(ranks, [1, 1, 1, 2, 2, 2, 3, 6]);
        let spread = Spread::of((1..=12).map(f64::from)).unwrap();
        assert_eq!(spread.interval(), (3.0, 10.0));
        assert!((spread.relative_half_width() - 3.5 / 6.5).abs() < 1e-12);
        // One wild run among nine leaves the interval alone.
        let spread = Spread::of([10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 10.1, 50.0]).unwrap();
        assert_eq!(spread.interval(), (9.9, 10.2));
        // Large samples use the normal approximation: n = 2000 gives k = 956.
        assert_eq!(median_interval_rank(2000), 956);
    }

    #[test]
    fn older_reports_without_an_interval_use_the_range() {
        let old: Spread = serde_json::from_str(r#"{"min":1.0,"median":2.0,"max":4.0}"#).unwrap();
        assert_eq!((old.interval(), old.n), ((1.0, 4.0), 0));
    }

    #[test]
    fn the_precedence_rank_is_the_fewest_fast_runs_that_chance_explains_at_most_2_5_percent() {
        // C(n, r) / C(n + m, r): 6 and 6 runs, r = 4 gives 15/495 = 3.0%, r = 5 gives 6/792 =
        // 0.76%; 14 and 14: r = 4 gives 4.9%, r = 5 2.0%; 28 and 28: r = 5 gives 2.57%, r = 6
        // 1.2%; 2 against 12: both, 1/91.
        assert_eq!(precedence_rank(6, 6), Some(5));
        assert_eq!(precedence_rank(14, 14), Some(5));
        assert_eq!(precedence_rank(28, 28), Some(6));
        assert_eq!(precedence_rank(2, 12), Some(2));
        // 4 and 4: all four (1/70 = 1.4%); 3 and 3: even all three happen 1 time in 20.
        assert_eq!(precedence_rank(4, 4), Some(4));
        assert_eq!(precedence_rank(3, 3), None);
        // Many runs against few: most of them must come first.
        assert_eq!(precedence_rank(28, 6), Some(15));
    }

    #[test]
    fn a_difference_needs_the_fast_runs_apart_beyond_the_threshold() {
        let around = |m: f64| Spread::of([m, 0.99 * m, 0.98 * m, 1.02 * m, m, 1.01 * m]).unwrap();
        // 30% slower: the ratio of the fastest runs.
        let c = compare(&around(13.0), &around(10.0), 0.05);
        assert!(matches!(c, Comparison::Slower { ratio } if (ratio - 1.3).abs() < 1e-12));
        assert_eq!(compare(&around(10.0), &around(13.0), 0.05).word(), "faster");
        // 3% apart: below the 5% threshold. The fifth fastest of the slower (10.3 · 1.01) reaches
        // 6.2% past the other's fastest (9.8): the most the runs allow.
        let Comparison::Same { within } = compare(&around(10.3), &around(10.0), 0.05) else {
            panic!("a 3% difference called a difference");
        };
        assert!(
            (within - (10.3 * 1.01 / 9.8 - 1.0)).abs() < 1e-9,
            "{within}"
        );
        // Identical runs: within the threshold itself.
        assert_eq!(compare(&around(10.0), &around(10.0), 0.05).word(), "same");
        // Three runs each, wholly apart: three runs cannot tell (1 chance in 20 each way).
        let (fast, slow) = (
            Spread::of([1.0, 1.1, 1.2]).unwrap(),
            Spread::of([2.0; 3]).unwrap(),
        );
        let Comparison::Same { within } = compare(&fast, &slow, 0.05) else {
            panic!("three runs decided a difference");
        };
        assert!(within.is_infinite(), "{within}");
    }

    #[test]
    fn interference_holding_back_most_runs_does_not_hide_what_the_fast_ones_show() {
        // Two threads on a busy host: most runs as slow as one thread's, five at its true speed.
        let two = Spread::of([
            335.0, 228.0, 338.0, 340.0, 240.0, 342.0, 345.0, 245.0, 347.0, 250.0, 350.0, 255.0,
        ])
        .unwrap();
        let one = Spread::of([
            325.0, 327.0, 330.0, 331.0, 333.0, 335.0, 340.0, 345.0, 360.0, 365.0, 370.0, 380.0,
        ])
        .unwrap();
        assert!(
            (two.median / one.median - 1.0).abs() < 0.01,
            "medians level"
        );
        let c = compare(&two, &one, 0.05);
        assert!(matches!(c, Comparison::Faster { ratio } if (ratio - 325.0 / 228.0).abs() < 1e-12));
        // Between runs: a run as slow in its median, but with a run as fast as A's fastest, is
        // interference, not a slower machine; every run slower is.
        let a = Spread::of([10.0, 9.9, 9.8, 10.2, 10.0, 10.1]).unwrap();
        let busier = Spread::of([9.8, 11.0, 11.1, 11.2, 11.2, 11.3, 11.4, 11.5, 11.6]).unwrap();
        assert_eq!(compare(&busier, &a, 0.10).word(), "same");
        let hogged = Spread::of([19.0, 19.5, 20.0, 19.2, 19.8, 20.1]).unwrap();
        assert_eq!(compare(&hogged, &a, 0.10).word(), "slower");
    }

    #[test]
    fn older_reports_without_their_runs_are_compared_by_the_medians_intervals() {
        let old = |json: &str| serde_json::from_str::<Spread>(json).unwrap();
        let a = old(r#"{"min":9.8,"median":10.0,"max":10.2,"n":6,"ci_low":9.8,"ci_high":10.2}"#);
        let b = old(r#"{"min":12.7,"median":13.0,"max":13.3,"n":6,"ci_low":12.7,"ci_high":13.3}"#);
        let c = compare(&b, &a, 0.05);
        assert!(matches!(c, Comparison::Slower { ratio } if (ratio - 1.3).abs() < 1e-12));
        // Overlapping intervals: the largest difference they allow.
        let wide = old(r#"{"min":5.0,"median":13.0,"max":30.0,"n":6,"ci_low":9.0,"ci_high":30.0}"#);
        let Comparison::Same { within } = compare(&wide, &a, 0.05) else {
            panic!("overlapping intervals compared as different");
        };
        assert!((within - (30.0 / 9.8 - 1.0)).abs() < 1e-9, "{within}");
        // Runs that do not match their count (an edited report) count as none.
        let mut edited = Spread::of([20.0; 6]).unwrap();
        edited.n = 7;
        assert_eq!(compare(&edited, &a, 0.05).word(), "slower");
    }

    #[test]
    fn undecided_means_fastest_runs_apart_but_too_few_fast_runs() {
        let around = |m: f64| Spread::of([m, 0.99 * m, 0.98 * m, 1.02 * m, m, 1.01 * m]).unwrap();
        // One fast run among slow ones: its fastest run is 30% ahead, but one run is not enough.
        let one_fast = Spread::of([7.0, 10.0, 10.1, 9.9, 10.0, 10.2]).unwrap();
        assert_eq!(compare(&one_fast, &around(10.0), 0.05).word(), "same");
        assert!(undecided(&one_fast, &around(10.0), 0.05));
        assert!(undecided(&around(10.0), &one_fast, 0.05));
        // Decided: apart (30%), or as good as equal (3%, below the threshold).
        assert!(!undecided(&around(13.0), &around(10.0), 0.05));
        assert!(!undecided(&around(10.3), &around(10.0), 0.05));
    }
}
