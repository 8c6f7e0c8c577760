//! What every `--plot` picture shares: colours that read on white and tell apart for colour-blind
//! readers (Okabe and Ito's palette, yellow left out), a dash pattern per line so that curves
//! lying on one another stay visible, and axis numbers written one way.

use plotters::style::RGBColor;

/// Line colours, in the order columns take them.
pub const COLORS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermilion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];

/// Grey for marks that are not data (the course's model, over-budget sizes, peaks' labels).
pub const GREY: RGBColor = RGBColor(90, 90, 90);

/// The colour of the `i`-th line.
pub fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// The dash pattern of the `i`-th line, (dash, gap) in pixels: the first solid, the next ones
/// dashed ever shorter, so that two lines on top of each other both show.
pub fn dashes(i: usize) -> Option<(u32, u32)> {
    match i % 4 {
        0 => None,
        1 => Some((10, 6)),
        2 => Some((4, 4)),
        _ => Some((14, 4)),
    }
}

/// A number on an axis with its unit, to three significant figures without trailing zeros:
/// 100 kFLOP, 1 MFLOP, 12.5 MFLOP, 2.5 ms, 40 µs.
pub fn axis_number(value: f64, units: &[(f64, &str)]) -> String {
    let (scale, unit) = units
        .iter()
        .copied()
        .find(|&(scale, _)| value.abs() >= scale)
        .or_else(|| units.last().copied())
        .unwrap_or((1.0, ""));
    let scaled = value / scale;
    let decimals = if scaled.abs() >= 100.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{scaled:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} {unit}")
}

/// Units of FLOP, largest first.
pub const FLOP_UNITS: &[(f64, &str)] = &[
    (1e15, "PFLOP"),
    (1e12, "TFLOP"),
    (1e9, "GFLOP"),
    (1e6, "MFLOP"),
    (1e3, "kFLOP"),
    (1.0, "FLOP"),
];

/// Units of seconds, largest first.
pub const SECOND_UNITS: &[(f64, &str)] = &[(1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")];

/// Units of FLOP per second, largest first.
pub const FLOPS_UNITS: &[(f64, &str)] = &[
    (1e12, "TFLOP/s"),
    (1e9, "GFLOP/s"),
    (1e6, "MFLOP/s"),
    (1e3, "kFLOP/s"),
    (1.0, "FLOP/s"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_numbers_read_one_way() {
        let flop = |v: f64| axis_number(v, FLOP_UNITS);
        assert_eq!(
            [
                flop(1e5),
                flop(1e6),
                flop(1e7),
                flop(1.25e7),
                flop(48_600.0)
            ],
            [
                "100 kFLOP",
                "1 MFLOP",
                "10 MFLOP",
                "12.5 MFLOP",
                "48.6 kFLOP"
            ]
        );
        let seconds = |v: f64| axis_number(v, SECOND_UNITS);
        assert_eq!(
            [seconds(2.5e-3), seconds(4e-5), seconds(1.0), seconds(0.2)],
            ["2.5 ms", "40 µs", "1 s", "200 ms"]
        );
        assert_ne!(color(0), color(1));
        assert_eq!((dashes(0), dashes(4)), (None, None));
    }
}
