//! `--plot PATH.svg`: time per epoch against FLOP per epoch, both on log scales, one line per
//! column, the course's model marked.

use plotters::prelude::*;

use super::ladder::flop_per_epoch;
use super::results::ScaleReport;
use crate::engine::synthetic::Size;

/// Draws the chart as an SVG document.
pub fn svg(report: &ScaleReport) -> anyhow::Result<String> {
    let lines: Vec<(&str, Vec<(f64, f64)>)> = report
        .devices
        .iter()
        .map(|c| {
            let points = c
                .points
                .iter()
                .zip(&report.ladder)
                .filter_map(|(p, l)| Some((l.flop_per_epoch, p.median_s()?)))
                .filter(|&(flop, s)| usable(flop) && usable(s))
                .collect::<Vec<_>>();
            (c.label.as_str(), points)
        })
        .filter(|(_, points)| !points.is_empty())
        .collect();
    let course = flop_per_epoch(Size::COURSE);
    let flops = report
        .ladder
        .iter()
        .map(|p| p.flop_per_epoch)
        .chain([course]);
    let (x_lo, x_hi) = bounds(flops);
    let (y_lo, y_hi) = bounds(lines.iter().flat_map(|(_, p)| p.iter().map(|(_, s)| *s)));

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "time per training epoch against the work in it",
                ("sans-serif", 22),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("FLOP per epoch (log scale)")
            .y_desc("seconds per epoch (log scale)")
            .x_label_formatter(&|x| crate::readable::flop(*x))
            .y_label_formatter(&|y| axis_seconds(*y))
            .draw()?;
        let marker = RGBColor(60, 60, 60);
        chart
            .draw_series(LineSeries::new(
                [(course, y_lo), (course, y_hi)],
                marker.stroke_width(3),
            ))?
            .label("the course's model (4:10:3:120)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], marker.stroke_width(3))
            });
        chart.draw_series(std::iter::once(Text::new(
            " the course's model",
            (course, (y_lo * y_hi).sqrt()),
            ("sans-serif", 14).into_font().color(&marker),
        )))?;
        for (i, (label, points)) in lines.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(
                points
                    .iter()
                    .map(|&point| Circle::new(point, 3, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(text)
}

/// Seconds as an axis reads them: "10 µs", "2.5 ms", "1 s".
fn axis_seconds(s: f64) -> String {
    let (value, unit) = if s >= 1.0 {
        (s, "s")
    } else if s >= 1e-3 {
        (s * 1e3, "ms")
    } else {
        (s * 1e6, "µs")
    };
    let text = format!("{value:.1}");
    format!("{} {unit}", text.trim_end_matches(".0"))
}

/// A value a log scale can place.
fn usable(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// A range around `values` on a log scale (half a decade of room each side), or a default one.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|&v| usable(v))
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() && hi >= lo {
        (lo / 3.0, hi * 3.0)
    } else {
        (1e-6, 1.0)
    }
}
