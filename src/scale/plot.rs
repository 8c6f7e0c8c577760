//! `--plot PATH.svg`: two views of the ladder, both against FLOP per epoch on log scales: time per
//! epoch (each point with its median's 95% confidence interval) and throughput (with each
//! device's theoretical FP32 peak as a dashed line). The course's model is marked; the axis stops
//! at the largest size measured, and sizes a device could not take within the budget are marked
//! where they fall inside it and listed under the chart.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::ladder::flop_per_epoch;
use super::results::{PointStatus, ScaleColumn, ScaleReport};
use crate::engine::synthetic::Size;
use crate::render::chart::{self, FLOP_UNITS, FLOPS_UNITS, GREY, SECOND_UNITS, axis_number};

/// One column's measured points: FLOP per epoch, and the median with its interval (seconds).
struct Line<'a> {
    column: &'a ScaleColumn,
    points: Vec<(f64, f64, f64, f64)>,
    /// FLOP per epoch of the sizes over budget.
    over_budget: Vec<f64>,
}

/// Draws the chart as an SVG document.
pub fn svg(report: &ScaleReport) -> anyhow::Result<String> {
    let lines: Vec<Line> = report
        .devices
        .iter()
        .map(|column| {
            let mut points = Vec::new();
            let mut over_budget = Vec::new();
            for (point, ladder) in column.points.iter().zip(&report.ladder) {
                let flop = ladder.flop_per_epoch;
                if point.status == PointStatus::OverBudget {
                    over_budget.push(flop);
                }
                if let Some(spread) = &point.epoch_s {
                    let (low, high) = spread.interval();
                    if [flop, spread.median, low, high].iter().all(|&v| usable(v)) {
                        points.push((flop, spread.median, low, high));
                    }
                }
            }
            Line {
                column,
                points,
                over_budget,
            }
        })
        .filter(|line| !line.points.is_empty())
        .collect();
    let course = flop_per_epoch(Size::COURSE);
    let measured = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (x_lo, x_hi) = bounds(measured.chain([course]), 1.6);
    let seconds = lines
        .iter()
        .flat_map(|l| l.points.iter().flat_map(|p| [p.2, p.3]));
    let (s_lo, s_hi) = bounds(seconds, 2.0);
    let peaks = lines
        .iter()
        .filter_map(|l| l.column.peak_gflops.map(|g| g * 1e9));
    let throughput = lines
        .iter()
        .flat_map(|l| l.points.iter().flat_map(|p| [p.0 / p.3, p.0 / p.2]));
    let (t_lo, t_hi) = bounds(throughput.chain(peaks), 2.0);

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (900, 980)).into_drawing_area();
        root.fill(&WHITE)?;
        let (charts, footer) = root.split_vertically(930);
        let (top, bottom) = charts.split_vertically(465);
        let x = (x_lo, x_hi);

        // Time per epoch, with each median's interval.
        let mut time = panel(
            &top,
            "time per training epoch against the work in it",
            ("seconds per epoch (log scale)", SECOND_UNITS),
            x,
            (s_lo, s_hi),
        )?;
        course_marker(&mut time, course, s_lo, s_hi)?;
        for (i, line) in lines.iter().enumerate() {
            draw_points(&mut time, i, line, |&(flop, median, low, high)| {
                (flop, median, low, high)
            })?;
            // Over-budget sizes inside the axis: a cross at the top, in the column's colour.
            let cross = chart::color(i).stroke_width(2);
            time.draw_series(
                line.over_budget
                    .iter()
                    .filter(|&&flop| flop <= x_hi)
                    .map(|&flop| Cross::new((flop, s_hi / 1.4), 6, cross)),
            )?;
        }
        time.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;

        // Throughput, with each device's theoretical FP32 peak.
        let mut speed = panel(
            &bottom,
            "throughput against the work in an epoch",
            ("FLOP per second (log scale)", FLOPS_UNITS),
            x,
            (t_lo, t_hi),
        )?;
        course_marker(&mut speed, course, t_lo, t_hi)?;
        for (i, line) in lines.iter().enumerate() {
            // Throughput is FLOP over time: the slowest run gives the lowest.
            draw_points(&mut speed, i, line, |&(flop, median, low, high)| {
                (flop, flop / median, flop / high, flop / low)
            })?;
        }
        // Each distinct peak once, named for every column that has it (PyTorch's column shares
        // the CPU's), in the first one's colour.
        let mut peaks: Vec<(f64, Vec<&str>, RGBColor)> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some(peak) = line.column.peak_gflops.map(|g| g * 1e9) else {
                continue;
            };
            match peaks
                .iter_mut()
                .find(|(p, _, _)| (p / peak - 1.0).abs() < 1e-9)
            {
                Some((_, labels, _)) => labels.push(&line.column.label),
                None => peaks.push((peak, vec![&line.column.label], chart::color(i))),
            }
        }
        for (peak, labels, color) in &peaks {
            speed.draw_series(DashedLineSeries::new(
                [(x_lo, *peak), (x_hi, *peak)],
                8,
                5,
                color.stroke_width(1),
            ))?;
            speed.draw_series(std::iter::once(Text::new(
                format!(
                    "FP32 peak of {}: {}",
                    labels.join(", "),
                    axis_number(*peak, FLOPS_UNITS)
                ),
                (course * 1.3, peak * 1.35),
                ("sans-serif", 13).into_font().color(color),
            )))?;
        }
        speed
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        footnote(&footer, report, &lines)?;
        root.present()?;
    }
    Ok(text)
}

type LogChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::combinators::LogCoord<f64>,
        plotters::coord::combinators::LogCoord<f64>,
    >,
>;

/// One view: log-log, FLOP per epoch across, `y` (its name and units) up, light grid lines.
fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    (y_desc, y_units): (&str, &'static [(f64, &'static str)]),
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
) -> anyhow::Result<LogChart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("FLOP per epoch (log scale)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| axis_number(*v, FLOP_UNITS))
        .y_label_formatter(&|v| axis_number(*v, y_units))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    Ok(chart)
}

/// The `i`-th column's line (solid or dashed, in the legend), a dot per point and its interval
/// as a bar: `at` maps a point to (x, centre, low, high).
fn draw_points(
    chart: &mut LogChart,
    i: usize,
    line: &Line,
    at: impl Fn(&(f64, f64, f64, f64)) -> (f64, f64, f64, f64),
) -> anyhow::Result<()> {
    let color = chart::color(i);
    let style = color.stroke_width(2);
    let points: Vec<(f64, f64, f64, f64)> = line.points.iter().map(at).collect();
    let centre = points.iter().map(|p| (p.0, p.1));
    draw_line(chart, i, centre.clone(), style)?
        .label(line.column.label.as_str())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    chart.draw_series(points.iter().map(|&(x, centre, low, high)| {
        ErrorBar::new_vertical(x, low, centre, high, color.stroke_width(1), 8)
    }))?;
    chart.draw_series(centre.map(|p| Circle::new(p, 3, color.filled())))?;
    Ok(())
}

/// The `i`-th column's line, solid or dashed.
fn draw_line<'c, 'a, 'b>(
    chart: &'c mut LogChart<'a, 'b>,
    i: usize,
    points: impl Iterator<Item = (f64, f64)> + Clone,
    style: ShapeStyle,
) -> anyhow::Result<&'c mut plotters::chart::SeriesAnno<'a, SVGBackend<'b>>> {
    Ok(match chart::dashes(i) {
        None => chart.draw_series(LineSeries::new(points, style))?,
        Some((dash, gap)) => chart.draw_series(DashedLineSeries::new(points, dash, gap, style))?,
    })
}

/// The course's model: a grey vertical line, named in the legend.
fn course_marker(chart: &mut LogChart, course: f64, lo: f64, hi: f64) -> anyhow::Result<()> {
    let style = GREY.stroke_width(2);
    chart
        .draw_series(LineSeries::new([(course, lo), (course, hi)], style))?
        .label("the course's model (4:10:3:120)")
        .legend(move |(x, y)| PathElement::new(vec![(x + 10, y - 6), (x + 10, y + 6)], style));
    Ok(())
}

/// Under the charts: what the crosses mean, the sizes no device took, and where this came from.
fn footnote(
    area: &DrawingArea<SVGBackend, Shift>,
    report: &ScaleReport,
    lines: &[Line],
) -> anyhow::Result<()> {
    let over: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let first = l.over_budget.first()?;
            Some(format!(
                "{} from {}",
                l.column.label,
                axis_number(*first, FLOP_UNITS)
            ))
        })
        .collect();
    let budget = if over.is_empty() {
        "every size measured".to_string()
    } else {
        format!(
            "× over the {} s budget per epoch: {}",
            report.config.max_epoch_s,
            over.join(", ")
        )
    };
    let style = ("sans-serif", 13).into_font().color(&GREY);
    area.draw(&Text::new(
        format!("{budget}; bars: the median's 95% confidence interval"),
        (16, 4),
        style.clone(),
    ))?;
    area.draw(&Text::new(
        format!(
            "hwbench {} · seed {} · vector instructions and peaks as in the report",
            report.hwbench_version, report.config.seed
        ),
        (16, 24),
        style,
    ))?;
    Ok(())
}

/// A value a log scale can place.
fn usable(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// A range around `values` on a log scale (`room` times either side), or a default one.
fn bounds(values: impl Iterator<Item = f64>, room: f64) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|&v| usable(v))
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() && hi >= lo {
        (lo / room, hi * room)
    } else {
        (1e-6, 1.0)
    }
}
