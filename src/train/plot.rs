//! `--plot PATH.svg`: every device's loss curve, loss against epoch on a log scale. Curves that
//! coincide (every correct device traces the same one) stay visible: each has its own colour, dash
//! pattern and marker shape; the legend says what an epoch cost on each device, and the caption
//! which machine and hwbench drew it.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::TrainCompareReport;
use super::results::DeviceResult;
use crate::readable;
use crate::render::chart;

/// Markers per curve, spread along it.
const MARKERS: usize = 10;

/// Draws the curves as an SVG document.
pub fn svg(report: &TrainCompareReport) -> anyhow::Result<String> {
    let curves: Vec<&DeviceResult> = report
        .devices
        .iter()
        .filter(|d| d.loss_curve.iter().any(|&(_, v)| usable(v)))
        .collect();
    let (lo, hi) = curves
        .iter()
        .flat_map(|d| d.loss_curve.iter().map(|&(_, v)| v))
        .filter(|&v| usable(v))
        .fold((f32::INFINITY, 0.0f32), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo * 0.8, hi * 1.25)
    } else {
        (0.01, 10.0)
    };
    let epochs = curves
        .iter()
        .filter_map(|d| d.loss_curve.last().map(|(epoch, _)| *epoch))
        .max()
        .unwrap_or(1)
        .max(2);

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let (main, footer) = root.split_vertically(530);
        footnote(&footer, report)?;
        let mut chart = ChartBuilder::on(&main)
            .caption(caption(report, epochs), ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(
                1u64..epochs,
                (lo..hi).log_scale().with_key_points(loss_ticks(lo, hi)),
            )?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("training loss (log scale)")
            .y_label_formatter(&|v| format!("{v}"))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;
        for (i, device) in curves.iter().enumerate() {
            let color = chart::color(i);
            let style = color.stroke_width(2);
            let points: Vec<(u64, f32)> = device
                .loss_curve
                .iter()
                .copied()
                .filter(|&(_, v)| usable(v))
                .collect();
            let series = match chart::dashes(i) {
                None => chart.draw_series(LineSeries::new(points.iter().copied(), style))?,
                Some((dash, gap)) => chart.draw_series(DashedLineSeries::new(
                    points.iter().copied(),
                    dash,
                    gap,
                    style,
                ))?,
            };
            series.label(legend(device)).legend(move |(x, y)| {
                EmptyElement::at((x + 10, y))
                    + PathElement::new(vec![(-10, 0), (10, 0)], style)
                    + marker(i, color)
            });
            // Markers staggered by curve, so that coinciding curves show every shape.
            let step = (points.len() / MARKERS).max(1);
            let offset = step * i / curves.len().max(1);
            chart.draw_series(
                points
                    .iter()
                    .skip(offset)
                    .step_by(step)
                    .map(|&point| EmptyElement::at(point) + marker(i, color)),
            )?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(text)
}

/// What the curves show: the course's whole run, or one timed run of part of it.
fn caption(report: &TrainCompareReport, epochs: u64) -> String {
    if epochs < report.config.epochs {
        format!(
            "iris MLP training loss: one timed run of {epochs} epochs (the course trains {})",
            report.config.epochs
        )
    } else {
        format!("iris MLP training loss, {epochs} epochs")
    }
}

/// The legend's line for a device: its label and what an epoch cost there.
fn legend(device: &DeviceResult) -> String {
    let timed = device
        .policies
        .iter()
        .find_map(|p| Some((p.policy, p.per_epoch_us.as_ref()?)));
    match timed {
        Some((policy, spread)) => format!(
            "{}: {} per epoch ({})",
            device.label,
            readable::micros(spread.median),
            policy.label()
        ),
        None => device.label.clone(),
    }
}

/// The `i`-th curve's marker shape.
fn marker<DB: DrawingBackend>(i: usize, color: RGBColor) -> DynElement<'static, DB, (i32, i32)> {
    let filled = color.filled();
    let outline = color.stroke_width(2);
    match i % 4 {
        0 => Circle::new((0, 0), 4, filled).into_dyn(),
        1 => TriangleMarker::new((0, 0), 5, outline).into_dyn(),
        2 => Cross::new((0, 0), 4, outline).into_dyn(),
        _ => Rectangle::new([(-4, -4), (4, 4)], outline).into_dyn(),
    }
}

/// The machine and version under the chart, so that the picture alone says where it came from.
fn footnote(
    area: &DrawingArea<SVGBackend, Shift>,
    report: &TrainCompareReport,
) -> anyhow::Result<()> {
    let machine = report
        .devices
        .iter()
        .filter_map(|d| d.facts.as_ref()?.name.clone())
        .collect::<Vec<_>>();
    let mut machine: Vec<String> = machine;
    machine.dedup();
    let text = format!(
        "hwbench {} · {} · lr {}, hidden {}, {} training rows",
        report.hwbench_version,
        if machine.is_empty() {
            "devices unknown".to_string()
        } else {
            machine.join(", ")
        },
        report.config.lr,
        report.config.hidden,
        report.config.train_rows
    );
    area.draw(&Text::new(
        text,
        (16, 4),
        ("sans-serif", 13).into_font().color(&chart::GREY),
    ))?;
    Ok(())
}

/// Loss ticks between `lo` and `hi`: 1, 2 and 5 times the powers of ten in range, or more steps
/// when that gives fewer than four (a curve within one decade).
fn loss_ticks(lo: f32, hi: f32) -> Vec<f32> {
    let in_range = |steps: &[f32]| -> Vec<f32> {
        let first = lo.log10().floor() as i32;
        let last = hi.log10().ceil() as i32;
        (first..=last)
            // In f64, then the nearest f32: 0.05, not 0.049999997.
            .flat_map(|exponent| {
                steps
                    .iter()
                    .map(move |&s| (f64::from(s) * 10f64.powi(exponent)) as f32)
            })
            .filter(|&v| v >= lo && v <= hi)
            .collect()
    };
    let ticks = in_range(&[1.0, 2.0, 5.0]);
    if ticks.len() >= 4 {
        ticks
    } else {
        in_range(&[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0])
    }
}

/// A loss a log scale can place.
fn usable(v: f32) -> bool {
    v.is_finite() && v > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_ticks_reach_below_the_lowest_decade_mark() {
        // The default run: from about 1.2 down to 0.06.
        let ticks = loss_ticks(0.05, 1.5);
        assert_eq!(ticks, [0.05, 0.1, 0.2, 0.5, 1.0]);
        // A curve within one decade gets finer steps.
        assert_eq!(loss_ticks(0.3, 1.4), [0.3, 0.4, 0.5, 0.6, 0.8, 1.0]);
    }
}
