//! How numbers read: durations, sizes, spreads and ratios, formatted the same way in every table,
//! verdict and outlier line. A value that is not a number (NaN, infinity) reads as `n/a`.

use crate::render::document::NA;
use crate::stats::Spread;

/// A duration given in microseconds, with a unit that keeps two or three significant digits:
/// "45 ns", "0.1 µs", "3.2 µs", "31 µs", "2.50 ms", "1.20 s", "2 min 5 s", "3 h 12 min".
pub fn micros(us: f64) -> String {
    if !us.is_finite() {
        return NA.to_string();
    }
    let (sign, us) = if us < 0.0 { ("-", -us) } else { ("", us) };
    let text = if us == 0.0 {
        "0 µs".to_string()
    } else if us < 0.05 {
        format!("{:.0} ns", us * 1e3)
    } else if us < 10.0 {
        format!("{us:.1} µs")
    } else if us < 1e3 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        return format!("{sign}{}", long_seconds(us / 1e6));
    };
    format!("{sign}{text}")
}

/// A duration in milliseconds, always in ms with two decimals ("0.78 ms"): device set-up and first
/// epochs, which readers compare down the row.
pub fn millis(ms: f64) -> String {
    if !ms.is_finite() {
        return NA.to_string();
    }
    if ms.abs() >= 60_000.0 {
        return long_seconds(ms / 1e3);
    }
    format!("{ms:.2} ms")
}

/// A duration in seconds with two decimals ("0.61 s"), in minutes and hours once that long.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() {
        return NA.to_string();
    }
    if s.abs() >= 60.0 {
        return long_seconds(s);
    }
    format!("{s:.2} s")
}

/// "1.20 s", "2 min 5 s", "3 h 12 min".
fn long_seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.2} s")
    } else if s < 3600.0 {
        let whole = s.round() as u64;
        format!("{} min {} s", whole / 60, whole % 60)
    } else {
        let minutes = (s / 60.0).round() as u64;
        format!("{} h {} min", minutes / 60, minutes % 60)
    }
}

/// The median of a spread of microseconds, the confidence interval of the median and how many runs
/// it rests on: "31 µs (30.2–31.9 µs, 9 runs)". The interval lies between two measured times, so
/// it never reaches below zero.
pub fn spread_micros(spread: &Spread) -> String {
    let (low, high) = spread.interval();
    let runs = match spread.n {
        0 => String::new(),
        1 => ", 1 run".to_string(),
        n => format!(", {n} runs"),
    };
    format!(
        "{} ({}{runs})",
        micros(spread.median),
        range_micros(low, high)
    )
}

/// Two durations in microseconds as a range in one unit, three significant digits:
/// "14.8–15.3 µs", "2.19–2.55 ms", "0.151–0.158 s".
pub fn range_micros(low: f64, high: f64) -> String {
    if !(low.is_finite() && high.is_finite()) {
        return NA.to_string();
    }
    let top = low.abs().max(high.abs());
    let (divisor, unit) = if top < 1e3 {
        (1.0, "µs")
    } else if top < 1e6 {
        (1e3, "ms")
    } else {
        (1e6, "s")
    };
    let digits = |v: f64| {
        let v = v.abs() / divisor;
        if v == 0.0 {
            0
        } else {
            (2 - v.log10().floor() as i32).clamp(0, 6) as usize
        }
    };
    let places = if top == 0.0 { 0 } else { digits(top) };
    format!(
        "{:.places$}–{:.places$} {unit}",
        low / divisor,
        high / divisor
    )
}

/// A share as a whole percentage: 0.053 → "5%".
pub fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.0}%", share * 100.0)
    } else {
        NA.to_string()
    }
}

/// A factor with two decimals: "1.02×".
pub fn factor(ratio: f64) -> String {
    if !ratio.is_finite() {
        NA.to_string()
    } else if ratio.abs() >= 1e6 {
        // A crafted report can hold 1e308 s: three significant digits, not three hundred.
        format!("{ratio:.2e}×")
    } else {
        format!("{ratio:.2}×")
    }
}

/// Memory a run used or needs, in the unit that reads best: "36 MiB" below a gibibyte, "2.1 GiB"
/// from there.
pub fn memory(mib: f64) -> String {
    if !mib.is_finite() {
        NA.to_string()
    } else if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

/// A machine's capacity (RAM, swap, a GPU's memory) as gibibytes with one decimal: 24064 →
/// "23.5 GiB".
pub fn gib(mib: u64) -> String {
    format!("{:.1} GiB", mib as f64 / 1024.0)
}

/// A count of floating-point operations with an SI prefix and three significant digits:
/// "48.6 kFLOP", "678 GFLOP", "1.20 TFLOP".
pub fn flop(count: f64) -> String {
    si(count, "FLOP")
}

/// A throughput given in GFLOP/s, with the prefix that reads best: "850 MFLOP/s", "97.1 GFLOP/s",
/// "52.3 TFLOP/s".
pub fn gflops(rate: f64) -> String {
    si(rate * 1e9, "FLOP/s")
}

fn si(value: f64, unit: &str) -> String {
    if !value.is_finite() || value < 0.0 {
        return NA.to_string();
    }
    const PREFIXES: [(f64, &str); 5] =
        [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    let (scale, prefix) = PREFIXES
        .into_iter()
        .find(|(scale, _)| value >= *scale)
        .unwrap_or((1.0, ""));
    let v = value / scale;
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {prefix}{unit}")
}

/// A large ratio rounded to two significant digits, with thousands separated: 270,000.
pub fn round_ratio(ratio: f64) -> String {
    if !ratio.is_finite() || ratio < 1.0 {
        return format!("{ratio:.1}");
    }
    let magnitude = 10f64.powi(ratio.log10().floor() as i32 - 1).max(1.0);
    let rounded = ((ratio / magnitude).round() * magnitude) as u64;
    let digits = rounded.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A `width`-character sketch of the curve on a log scale.
pub fn sparkline(curve: &[(u64, f32)], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let logs: Vec<f64> = curve
        .iter()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| f64::from(v).ln())
        .collect();
    if logs.len() < 2 {
        return NA.to_string();
    }
    let (lo, hi) = logs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let width = width.min(logs.len());
    (0..width)
        .map(|i| {
            let v = logs[i * (logs.len() - 1) / (width - 1).max(1)];
            let level = if hi > lo {
                ((v - lo) / (hi - lo) * 7.0).round() as usize
            } else {
                0
            };
            BARS[level.min(7)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_read_with_two_significant_digits() {
        assert_eq!(round_ratio(273_456.0), "270,000");
        assert_eq!(round_ratio(8.4), "8");
        assert_eq!(round_ratio(63.0), "63");
        assert_eq!(round_ratio(1234.0), "1,200");
    }

    #[test]
    fn memory_reads_in_mib_then_gib() {
        assert_eq!(memory(36.1), "36 MiB");
        assert_eq!(memory(2113.0), "2.1 GiB");
    }

    #[test]
    fn work_and_throughput_read_with_three_digits() {
        assert_eq!(flop(48_646.0), "48.6 kFLOP");
        assert_eq!(flop(6.779e11), "678 GFLOP");
        assert_eq!(flop(12.0), "12.0 FLOP");
        assert_eq!(gflops(97.14), "97.1 GFLOP/s");
        assert_eq!(gflops(52_300.0), "52.3 TFLOP/s");
        assert_eq!(gflops(0.85), "850 MFLOP/s");
        assert_eq!(gflops(f64::NAN), NA);
    }

    #[test]
    fn durations_keep_a_readable_unit_from_nanoseconds_to_hours() {
        assert_eq!(micros(0.0), "0 µs");
        assert_eq!(micros(0.012), "12 ns");
        assert_eq!(micros(0.1), "0.1 µs");
        assert_eq!(micros(3.24), "3.2 µs");
        assert_eq!(micros(31.4), "31 µs");
        assert_eq!(micros(999.4), "999 µs");
        assert_eq!(micros(2500.0), "2.50 ms");
        assert_eq!(micros(1.2e6), "1.20 s");
        assert_eq!(micros(125e6), "2 min 5 s");
        assert_eq!(micros(3.0 * 3600e6 + 12.0 * 60e6), "3 h 12 min");
        assert_eq!(micros(-31.0), "-31 µs");
        assert_eq!(micros(f64::NAN), "n/a");
        assert_eq!(micros(f64::INFINITY), "n/a");
    }

    #[test]
    fn fixed_unit_durations() {
        assert_eq!(millis(0.781), "0.78 ms");
        assert_eq!(millis(0.0), "0.00 ms");
        assert_eq!(millis(90_000.0), "1 min 30 s");
        assert_eq!(millis(f64::NAN), "n/a");
        assert_eq!(seconds(0.614), "0.61 s");
        assert_eq!(seconds(7200.0), "2 h 0 min");
        assert_eq!(seconds(f64::NEG_INFINITY), "n/a");
    }

    #[test]
    fn spreads_sizes_and_ratios() {
        let spread = Spread::of([30.0, 30.2, 31.0, 31.5, 33.1]).unwrap();
        assert_eq!(spread_micros(&spread), "31 µs (30.0–33.1 µs, 5 runs)");
        let old = Spread {
            min: 1450.0,
            median: 1500.0,
            max: 1612.0,
            n: 0,
            ci_low: None,
            ci_high: None,
            values: Vec::new(),
        };
        assert_eq!(spread_micros(&old), "1.50 ms (1.45–1.61 ms)");
        assert_eq!(range_micros(151_000.0, 158_000.0), "151–158 ms");
        assert_eq!(range_micros(0.0, 0.0), "0–0 µs");
        assert_eq!(percent(f64::NAN), "n/a");
        assert_eq!(factor(1.0234), "1.02×");
        assert_eq!(factor(1e308), "1.00e308×");
        assert_eq!(memory(6.4), "6 MiB");
        assert_eq!(memory(2150.0), "2.1 GiB");
        assert_eq!(memory(f64::NAN), "n/a");
        assert_eq!(gib(24_064), "23.5 GiB");
        assert_eq!(gib(0), "0.0 GiB");
    }
}
