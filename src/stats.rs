//! How repeated measurements are summarised and compared, one method everywhere:
//!
//! - a [`Spread`] keeps the minimum, median and maximum of the runs, their number, and the
//!   distribution-free confidence interval of the median (order statistics: the narrowest
//!   interval between two runs that holds the true median with at least 95% probability; with
//!   fewer than six runs no such interval exists and the whole range is used). The interval always
//!   lies between two measured times, so it never implies a negative time;
//! - two figures differ ([`compare`]) only when their intervals do not overlap *and* the ratio of
//!   their medians is beyond a threshold (5% in verdicts, 10% in `diff`); otherwise there is no
//!   measurable difference, and the largest difference the intervals allow is said;
//! - between two runs made at different times or on different machines (`diff`, `fleet`), a
//!   difference must also show in the fastest runs ([`beyond_interference`]): interference on a
//!   shared machine — another tenant, a sibling hyperthread, a busy hypervisor — only adds time,
//!   and can last most of a run, moving a report's median far beyond its interval; unless it holds
//!   back every run, the fastest run still shows what the machine can do. A change of the machine
//!   or of the code moves the fastest run too. Within one run the columns are measured in
//!   interleaved rounds, so interference weighs on every column alike and [`compare`] alone
//!   decides.

use serde::{Deserialize, Serialize};

/// The confidence every interval is built for.
pub const CONFIDENCE: f64 = 0.95;

/// The smallest difference a verdict calls a difference (5%): below it, two times are "no
/// measurable difference" even when their intervals are apart.
pub const VERDICT_THRESHOLD: f64 = 0.05;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
}

impl Spread {
    /// `None` for no values; NaNs are ignored.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
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

    /// Whether the interval holds zero (for differences: no measurable difference).
    pub fn holds_zero(&self) -> bool {
        let (low, high) = self.interval();
        low <= 0.0 && high >= 0.0
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
        }
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

/// How a time compares with another, by [`compare`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Comparison {
    /// Measurably faster (less time): `ratio` = the other's median / this one's, above 1.
    Faster { ratio: f64 },
    /// Measurably slower: `ratio` = this median / the other's, above 1.
    Slower { ratio: f64 },
    /// No measurable difference: the two differ by at most `within` (0.04 = ±4%), the largest
    /// difference their intervals allow or the threshold, whichever is larger.
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

/// Time `a` against time `b`: different only when their confidence intervals do not overlap and
/// their medians differ by more than `threshold` (0.05 = 5%).
pub fn compare(a: &Spread, b: &Spread, threshold: f64) -> Comparison {
    let ((a_low, a_high), (b_low, b_high)) = (a.interval(), b.interval());
    let apart = a_high < b_low || b_high < a_low;
    let usable = |v: f64| v.is_finite() && v > 0.0;
    if !(usable(a.median) && usable(b.median)) {
        return Comparison::Same { within: f64::NAN };
    }
    let ratio = a.median / b.median;
    if apart && ratio > 1.0 + threshold {
        return Comparison::Slower { ratio };
    }
    if apart && 1.0 / ratio > 1.0 + threshold {
        return Comparison::Faster { ratio: 1.0 / ratio };
    }
    let widest = if usable(a_low) && usable(b_low) {
        (a_high / b_low).max(b_high / a_low) - 1.0
    } else {
        f64::INFINITY
    };
    Comparison::Same {
        within: widest.max(threshold),
    }
}

/// What [`compare`] said of two runs' times, kept only where their fastest runs (`fastest_a`,
/// `fastest_b`) differ beyond `threshold` the same way; otherwise the medians moved with
/// interference and not with the machine: no measurable difference, within the medians' ratio.
pub fn beyond_interference(
    comparison: Comparison,
    fastest_a: f64,
    fastest_b: f64,
    threshold: f64,
) -> Comparison {
    let fastest = fastest_a / fastest_b;
    let moved = match comparison {
        Comparison::Slower { .. } => fastest > 1.0 + threshold,
        Comparison::Faster { .. } => fastest * (1.0 + threshold) < 1.0,
        Comparison::Same { .. } => true,
    };
    match comparison {
        Comparison::Slower { ratio } | Comparison::Faster { ratio } if !moved => Comparison::Same {
            within: ratio - 1.0,
        },
        _ => comparison,
    }
}

/// Whether more runs could change what [`compare`] says of `a` and `b`: no measurable difference
/// yet, but their medians differ by more than `threshold` or their intervals allow a difference
/// of more than three times it.
pub fn undecided(a: &Spread, b: &Spread, threshold: f64) -> bool {
    let Comparison::Same { within } = compare(a, b, threshold) else {
        return false;
    };
    let ratio = a.median / b.median;
    ratio.is_finite()
        && ratio > 0.0
        && (ratio.max(1.0 / ratio) > 1.0 + threshold || within > 3.0 * threshold)
}

/// The median of paired differences `a[i] − b[i]` (runs of the same round), with its interval.
pub fn paired_difference(a: &[f64], b: &[f64]) -> Option<Spread> {
    Spread::of(a.iter().zip(b).map(|(x, y)| x - y))
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
    fn a_difference_needs_separate_intervals_and_the_threshold() {
        let around = |m: f64| Spread::of([0.98 * m, 0.99 * m, m, m, 1.01 * m, 1.02 * m]).unwrap();
        // 30% slower, intervals apart: slower.
        let c = compare(&around(13.0), &around(10.0), 0.05);
        assert!(matches!(c, Comparison::Slower { ratio } if (ratio - 1.3).abs() < 1e-12));
        assert_eq!(compare(&around(10.0), &around(13.0), 0.05).word(), "faster");
        // 3% apart: the intervals are separate, but below the 5% threshold; the intervals allow
        // up to 10.3 · 1.02 / 9.8 − 1 = 7.2%.
        let Comparison::Same { within } = compare(&around(10.3), &around(10.0), 0.05) else {
            panic!("a 3% difference called a difference");
        };
        assert!(
            (within - (10.3 * 1.02 / 9.8 - 1.0)).abs() < 1e-9,
            "{within}"
        );
        // Identical runs: within the threshold itself.
        assert_eq!(compare(&around(10.0), &around(10.0), 0.05).word(), "same");
        // 30% apart in the medians, but one spread is so wide that the intervals overlap: the
        // largest difference they allow is said instead.
        let wide = Spread::of([5.0, 9.0, 13.0, 13.0, 20.0, 30.0]).unwrap();
        let Comparison::Same { within } = compare(&wide, &around(10.0), 0.05) else {
            panic!("overlapping intervals compared as different");
        };
        assert!((within - (30.0 / 9.8 - 1.0)).abs() < 1e-9, "{within}");
    }

    #[test]
    fn undecided_means_medians_apart_but_intervals_overlapping() {
        let around = |m: f64| Spread::of([0.98 * m, 0.99 * m, m, m, 1.01 * m, 1.02 * m]).unwrap();
        let wide = Spread::of([5.0, 9.0, 13.0, 13.0, 20.0, 30.0]).unwrap();
        // 30% apart in the medians, intervals overlapping: more runs could decide it.
        assert!(undecided(&wide, &around(10.0), 0.05));
        assert!(undecided(&around(10.0), &wide, 0.05));
        // Decided: apart (30%), or as good as equal (3%, below the threshold).
        assert!(!undecided(&around(13.0), &around(10.0), 0.05));
        assert!(!undecided(&around(10.3), &around(10.0), 0.05));
        // The same medians, but one interval allows 2× (more than three times the threshold).
        let wide_at_ten = Spread::of([5.0, 8.0, 10.0, 10.0, 12.0, 20.0]).unwrap();
        assert!(undecided(&wide_at_ten, &around(10.0), 0.05));
        let fairly_wide = Spread::of([9.0, 9.5, 10.0, 10.0, 10.5, 11.0]).unwrap();
        assert!(!undecided(&fairly_wide, &around(10.0), 0.05));
    }

    #[test]
    fn between_runs_a_difference_must_move_the_fastest_run_too() {
        let around = |m: f64| Spread::of([0.98 * m, 0.99 * m, m, m, 1.01 * m, 1.02 * m]).unwrap();
        // A whole run 12% slower, its fastest run too: a change.
        let (a, slow) = (around(10.0), around(11.2));
        let c = beyond_interference(compare(&slow, &a, 0.10), slow.min, a.min, 0.10);
        assert!(matches!(c, Comparison::Slower { ratio } if (ratio - 1.12).abs() < 1e-9));
        // The same median, but one run as fast as A's fastest: interference held the rest back.
        let busier = Spread::of([9.8, 11.0, 11.1, 11.2, 11.2, 11.3, 11.4, 11.5, 11.6]).unwrap();
        assert_eq!(compare(&busier, &a, 0.10).word(), "slower");
        let Comparison::Same { within } =
            beyond_interference(compare(&busier, &a, 0.10), busier.min, a.min, 0.10)
        else {
            panic!("interference called a change");
        };
        assert!((within - 0.12).abs() < 1e-9, "{within}");
        // Faster the same way: the fastest run must be faster beyond the threshold too.
        let c = beyond_interference(compare(&a, &slow, 0.10), a.min, slow.min, 0.10);
        assert_eq!(c.word(), "faster");
        let c = beyond_interference(compare(&a, &busier, 0.10), a.min, busier.min, 0.10);
        assert_eq!(c.word(), "same");
        // No difference stays none, whatever the fastest runs say.
        let same = compare(&a, &a, 0.10);
        assert_eq!(beyond_interference(same, 1.0, 10.0, 0.10), same);
    }

    #[test]
    fn paired_differences_keep_their_sign() {
        let d = paired_difference(&[10.0, 11.0, 12.0, 10.5, 11.5, 10.2], &[9.0; 6]).unwrap();
        assert!(!d.holds_zero());
        assert!((d.median - 1.75).abs() < 1e-12);
        let d = paired_difference(&[9.1, 8.9, 9.0, 9.2, 8.8, 9.0], &[9.0; 6]).unwrap();
        assert!(d.holds_zero());
    }
}
