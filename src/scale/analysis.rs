//! Figures computed from what the workers measured: throughput and share of peak per point,
//! where each device starts to beat another beyond noise, where the fixed per-epoch cost stops
//! dominating, and whether every device computed the same first loss (a column that did not is
//! marked `wrong_results`).

use super::results::{Crossover, LadderPoint, PointStatus, ScaleColumn, ScaleReport};
use crate::engine::Framework;
use crate::engine::device::DeviceSpec;
use crate::engine::fused::{self, Kernels};
use crate::engine::measured::DeviceStatus;
use crate::engine::synthetic::Size;
use crate::stats::{Comparison, Spread, VERDICT_THRESHOLD, compare};

/// Two first losses disagree when they differ by more than this share (float32 rounding over a
/// thousand-term sum stays near 10⁻⁶; TF32 or a wrong kernel is 10⁻³ or more).
pub const LOSS_AGREEMENT: f64 = 1e-3;

/// Adds throughput, share of peak and the crossovers, and marks the columns whose first losses
/// disagree with the reference column's as computing wrong results.
pub fn add_derived_figures(report: &mut ScaleReport) {
    let wrong: Vec<(usize, String)> = report
        .devices
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let (size, loss, expected, reference) = loss_disagreement(report, c)?;
            Some((
                i,
                format!("its first loss at {size} is {loss}, {reference}'s {expected}"),
            ))
        })
        .collect();
    for (i, reason) in wrong {
        let column = &mut report.devices[i];
        column.status = DeviceStatus::WrongResults;
        column.reason = Some(reason);
    }
    for column in &mut report.devices {
        let peak = column.peak_gflops;
        for point in &mut column.points {
            let flop = flop_of(&report.ladder, point.size);
            point.gflops = point
                .median_s()
                .zip(flop)
                .filter(|(s, _)| *s > 0.0)
                .map(|(s, flop)| flop / s / 1e9);
            point.peak_share = point.gflops.zip(peak).map(|(g, p)| g / p);
        }
    }
    report.crossovers = crossovers(report);
}

/// The FLOP per epoch of `size`'s point on the ladder.
pub fn flop_of(ladder: &[LadderPoint], size: Size) -> Option<f64> {
    ladder
        .iter()
        .find(|p| p.size == size)
        .map(|p| p.flop_per_epoch)
}

/// Crossovers for every pair of measured columns of the same framework.
pub fn crossovers(report: &ScaleReport) -> Vec<Crossover> {
    let columns: Vec<&ScaleColumn> = report
        .devices
        .iter()
        .filter(|c| c.status != DeviceStatus::NotRun)
        .collect();
    let mut found = Vec::new();
    for (i, a) in columns.iter().enumerate() {
        for b in &columns[i + 1..] {
            if a.framework == b.framework
                && let Some(crossover) = crossover(a, b, &report.ladder)
            {
                found.push(crossover);
            }
        }
    }
    found
}

/// Whether columns `a` and `b` run the very same epoch at their point `index`: both hwbench's
/// fused epoch on the CPU (candle's CPU columns), at a size too small for it to hand work to other
/// threads (`fused::shares_epoch`). Their thread counts then make no difference: whatever their
/// workers measured apart, neither beats the other there.
pub fn same_epoch(a: &ScaleColumn, b: &ScaleColumn, index: usize) -> bool {
    let fused_cpu = |c: &ScaleColumn| {
        c.framework == Framework::Candle
            && matches!(c.device, DeviceSpec::Cpu { .. })
            && c.points
                .get(index)
                .is_some_and(|p| p.kernels.as_deref() == Some(Kernels::Fused.name()))
    };
    let Some(size) = a.points.get(index).map(|p| p.size) else {
        return false;
    };
    fused_cpu(a)
        && fused_cpu(b)
        && !fused::shares_epoch(size.rows, size.inputs, size.hidden, size.classes)
}

/// Which of `a` and `b` is faster at the largest point both measured, and from which point on it
/// wins beyond noise (`stats::compare`: measurably faster, there and at every larger common
/// point; never where both run the same one-thread epoch, [`same_epoch`]). `None` when they share
/// no measured point or tie at the largest.
pub fn crossover(a: &ScaleColumn, b: &ScaleColumn, ladder: &[LadderPoint]) -> Option<Crossover> {
    // Both columns list the ladder's points in its order.
    let common: Vec<_> = a
        .points
        .iter()
        .zip(&b.points)
        .enumerate()
        .filter_map(|(i, (pa, pb))| {
            Some((
                pa.size,
                pa.epoch_s.as_ref()?,
                pb.epoch_s.as_ref()?,
                same_epoch(a, b, i),
            ))
        })
        .collect();
    let &(largest, sa, sb, _) = common.last()?;
    // Faster by the statistic the test judges by: the fastest run.
    let (faster, slower, a_is_faster) = if sa.min < sb.min {
        (a, b, true)
    } else if sb.min < sa.min {
        (b, a, false)
    } else {
        return None;
    };
    // Beyond noise: the faster one's time is measurably below the other's (the report's one
    // method, `stats::compare`, at the verdict's threshold).
    let beats = |(_, sa, sb, same): &(Size, &Spread, &Spread, bool)| {
        let (fast, slow) = if a_is_faster { (sa, sb) } else { (sb, sa) };
        !same
            && matches!(
                compare(fast, slow, VERDICT_THRESHOLD),
                Comparison::Faster { .. }
            )
    };
    let from = common
        .iter()
        .rposition(|point| !beats(point))
        .map_or(Some(0), |last_loss| {
            (last_loss + 1 < common.len()).then_some(last_loss + 1)
        })
        .map(|i| common[i].0);
    let (fast_s, slow_s) = if a_is_faster {
        (sa.min, sb.min)
    } else {
        (sb.min, sa.min)
    };
    Some(Crossover {
        faster: faster.label.clone(),
        slower: slower.label.clone(),
        from,
        flop_per_epoch: from.and_then(|size| flop_of(ladder, size)),
        speedup_at_largest: slow_s / fast_s,
        largest,
    })
}

/// The fixed cost of an epoch on a column (its smallest measured point's median time), and the
/// first point whose epoch takes measurably longer than twice that (`stats::compare` against the
/// smallest point's runs doubled, the report's one test): from there on the arithmetic, not the
/// fixed cost, decides. `None` for the point when no measured point gets there.
pub fn fixed_cost(column: &ScaleColumn) -> Option<(f64, Option<Size>)> {
    let mut measured = column
        .points
        .iter()
        .filter_map(|p| Some((p.size, p.epoch_s.as_ref()?)));
    let (_, fixed) = measured.next()?;
    let twice = fixed.scaled(2.0);
    let from = measured
        .find(|(_, time)| {
            matches!(
                compare(time, &twice, VERDICT_THRESHOLD),
                Comparison::Slower { .. }
            )
        })
        .map(|(size, _)| size);
    Some((fixed.median, from))
}

/// The best share of peak a column reached, with its point.
pub fn best_share(column: &ScaleColumn) -> Option<(f64, f64, Size)> {
    column
        .points
        .iter()
        .filter_map(|p| Some((p.peak_share?, p.gflops?, p.size)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// candle's throughput over PyTorch's on the same device, per point both measured.
pub fn against_pytorch<'a>(
    report: &'a ScaleReport,
    candle: &'a ScaleColumn,
) -> Option<(&'a ScaleColumn, Vec<(Size, f64)>)> {
    if candle.framework != Framework::Candle {
        return None;
    }
    let torch = report
        .devices
        .iter()
        .find(|c| c.framework == Framework::Pytorch && c.device == candle.device)?;
    let ratios = candle
        .points
        .iter()
        .zip(&torch.points)
        .filter_map(|(c, t)| Some((c.size, c.gflops? / t.gflops?)))
        .collect();
    Some((torch, ratios))
}

/// The first point where a column's first loss differs from the first measured column's beyond
/// [`LOSS_AGREEMENT`]: (size, this loss, the reference loss, the reference's label).
pub fn loss_disagreement<'a>(
    report: &'a ScaleReport,
    column: &ScaleColumn,
) -> Option<(Size, f32, f32, &'a str)> {
    let reference = report
        .devices
        .iter()
        .find(|c| c.points.iter().any(|p| p.status == PointStatus::Measured))?;
    if reference.label == column.label {
        return None;
    }
    column
        .points
        .iter()
        .zip(&reference.points)
        .find_map(|(p, r)| {
            let (loss, expected) = (p.first_loss?, r.first_loss?);
            let gap = (f64::from(loss) - f64::from(expected)).abs();
            (gap > LOSS_AGREEMENT * f64::from(expected).abs().max(1e-6)).then_some((
                p.size,
                loss,
                expected,
                reference.label.as_str(),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::device::DeviceSpec;
    use crate::scale::ladder;
    use crate::scale::results::PointResult;

    /// A column whose points took six runs each, spread evenly over median · (1 ± spread).
    fn column(label: &str, times: &[(f64, f64)]) -> ScaleColumn {
        ScaleColumn {
            label: label.to_string(),
            points: ladder::DEFAULT
                .iter()
                .zip(times)
                .map(|(&size, &(median, spread))| PointResult {
                    epoch_s: Spread::of(
                        [-1.0, -1.0 / 3.0, 0.0, 0.0, 1.0 / 3.0, 1.0]
                            .map(|k| median * (1.0 + k * spread)),
                    ),
                    ..PointResult::not_measured(size, PointStatus::Measured, None)
                })
                .collect(),
            ..ScaleColumn::new(DeviceSpec::Cpu { threads: 1 }, Framework::Candle)
        }
    }

    fn ladder() -> Vec<LadderPoint> {
        ladder::points(&ladder::DEFAULT)
    }

    #[test]
    fn a_gpu_beats_the_cpu_from_the_first_point_it_stays_ahead_beyond_noise() {
        // A GPU with a 100 µs fixed cost against a CPU that starts at 20 µs and grows 8× a step.
        let cpu: Vec<(f64, f64)> = (0..6).map(|k| (20e-6 * 8f64.powi(k), 0.02)).collect();
        let gpu = [
            (100e-6, 0.02),
            (100e-6, 0.02),  // ahead beyond noise already…
            (1250e-6, 0.05), // …but not here: faster in the median, inside the CPU's spread
            (2000e-6, 0.02),
            (3000e-6, 0.02),
            (9000e-6, 0.02),
        ];
        let (cpu, gpu) = (column("cpu×2", &cpu), column("cuda:0", &gpu));
        let found = crossover(&cpu, &gpu, &ladder()).unwrap();
        assert_eq!(
            (found.faster.as_str(), found.slower.as_str()),
            ("cuda:0", "cpu×2")
        );
        assert_eq!(found.from, Some(ladder::DEFAULT[3]));
        assert!((found.speedup_at_largest - 20e-6 * 32768.0 / 9000e-6).abs() < 1e-9);
    }

    #[test]
    fn a_device_ahead_only_within_noise_at_the_top_has_no_crossover_point() {
        let a = column("cpu×1", &[(1.0, 0.05), (2.0, 0.05)]);
        let b = column("cpu×2", &[(1.2, 0.05), (1.95, 0.05)]);
        let found = crossover(&a, &b, &ladder()).unwrap();
        assert_eq!(found.faster, "cpu×2");
        assert_eq!(found.from, None);
        // Exactly equal medians: no faster device at all.
        assert!(crossover(&a, &a, &ladder()).is_none());
    }

    #[test]
    fn cpu_columns_running_the_same_one_thread_epoch_never_beat_each_other() {
        // cpu×2's worker measurably faster at every point: at the first three the fused epoch is
        // too small to share (the same one-thread epoch in both), so its win starts at the fourth.
        let fused = |mut column: ScaleColumn, threads| {
            column.device = DeviceSpec::Cpu { threads };
            for point in &mut column.points {
                point.kernels = Some("fused".to_string());
            }
            column
        };
        let one = fused(column("cpu×1", &[(1.0, 0.01); 6]), 1);
        let two = fused(column("cpu×2", &[(0.8, 0.01); 6]), 2);
        assert!(same_epoch(&one, &two, 2) && !same_epoch(&one, &two, 3));
        let found = crossover(&one, &two, &ladder()).unwrap();
        assert_eq!(found.faster, "cpu×2");
        assert_eq!(found.from, Some(ladder::DEFAULT[3]));
        // candle's stock operations share their own way: no such rule.
        let mut stock = two.clone();
        stock
            .points
            .iter_mut()
            .for_each(|p| p.kernels = Some("stock".to_string()));
        assert_eq!(
            crossover(&one, &stock, &ladder()).unwrap().from,
            Some(Size::COURSE)
        );
    }

    #[test]
    fn a_crossover_holds_when_interference_held_back_most_runs_of_the_faster_device() {
        // cpu×2 measured on a busy host: at the second point seven of its twelve runs were as
        // slow as cpu×1's (the medians level), five at its own speed.
        let mut one = column("cpu×1", &[(1.0, 0.01), (3.3, 0.02), (8.0, 0.01)]);
        one.points[1].epoch_s = Spread::of([
            3.25, 3.27, 3.30, 3.31, 3.33, 3.35, 3.40, 3.45, 3.60, 3.65, 3.70, 3.80,
        ]);
        let mut two = column("cpu×2", &[(1.0, 0.01), (2.4, 0.02), (4.3, 0.01)]);
        let busy = [
            3.35, 2.28, 3.38, 3.40, 2.40, 3.42, 3.45, 2.45, 3.47, 2.50, 3.50, 2.55,
        ];
        two.points[1].epoch_s = Spread::of(busy);
        let (two_median, one_median) = (
            two.points[1].median_s().unwrap(),
            one.points[1].median_s().unwrap(),
        );
        assert!(
            (two_median / one_median - 1.0).abs() < 0.01,
            "{two_median} vs {one_median}"
        );
        let found = crossover(&one, &two, &ladder()).unwrap();
        assert_eq!(found.faster, "cpu×2");
        assert_eq!(found.from, Some(ladder::DEFAULT[1]));
    }

    #[test]
    fn a_device_faster_everywhere_wins_from_the_first_point() {
        let a = column("cpu×1", &[(2.0, 0.01), (4.0, 0.01), (8.0, 0.01)]);
        let b = column("cpu×4", &[(1.0, 0.01), (1.5, 0.01), (2.0, 0.01)]);
        let found = crossover(&a, &b, &ladder()).unwrap();
        assert_eq!(found.from, Some(Size::COURSE));
        assert_eq!(found.speedup_at_largest, 4.0);
    }

    #[test]
    fn the_fixed_cost_dominates_until_an_epoch_takes_twice_as_long() {
        let gpu = column(
            "cuda:0",
            &[(100e-6, 0.0), (120e-6, 0.0), (150e-6, 0.0), (250e-6, 0.0)],
        );
        assert_eq!(fixed_cost(&gpu), Some((100e-6, Some(ladder::DEFAULT[3]))));
        let flat = column("cuda:0", &[(100e-6, 0.0), (120e-6, 0.0)]);
        assert_eq!(fixed_cost(&flat), Some((100e-6, None)));
    }
}
