//! `--plot PATH.svg`: every device's loss curve, loss against epoch on a log scale.

use plotters::prelude::*;

use super::TrainCompareReport;

/// Draws the curves as an SVG document.
pub fn svg(report: &TrainCompareReport) -> anyhow::Result<String> {
    let curves: Vec<(&str, &[(u64, f32)])> = report
        .devices
        .iter()
        .filter(|d| !d.loss_curve.is_empty())
        .map(|d| (d.label.as_str(), d.loss_curve.as_slice()))
        .collect();
    let finite = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|(_, v)| v))
        .filter(|v| v.is_finite() && **v > 0.0);
    let (lo, hi) = finite.fold((f32::INFINITY, 0.0f32), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo * 0.9, hi * 1.1)
    } else {
        (0.01, 10.0)
    };
    let epochs = curves
        .iter()
        .filter_map(|(_, c)| c.last().map(|(epoch, _)| *epoch))
        .max()
        .unwrap_or(1)
        .max(2);

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("iris MLP training loss, {} epochs", report.config.epochs),
                ("sans-serif", 22),
            )
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(1u64..epochs, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("training loss (log scale)")
            .draw()?;
        for (i, (label, curve)) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    // The worker's samples (about 2000 per curve): finer than any screen.
                    curve
                        .iter()
                        .copied()
                        .filter(|(_, v)| v.is_finite() && *v > 0.0),
                    color.stroke_width(2),
                ))?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(text)
}
