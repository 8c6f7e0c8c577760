//! What a scale run's numbers mean, in plain words: where each device pays off, how close each
//! gets to its peak, where the fixed per-epoch cost stops deciding, how candle compares with
//! PyTorch, and whether every device computed the same thing.

use super::analysis::{self, best_share, fixed_cost, loss_disagreement};
use super::ladder::flop_per_epoch;
use super::results::ScaleReport;
use crate::engine::Framework;
use crate::engine::synthetic::Size;
use crate::readable;

pub fn conclusions(report: &ScaleReport) -> Vec<String> {
    let mut lines = Vec::new();
    let course = flop_per_epoch(Size::COURSE);
    let first = report.ladder.first().map(|p| p.size);
    for c in &report.crossovers {
        let at_largest = format!(
            "{} at {}, fastest runs",
            readable::factor(c.speedup_at_largest),
            c.largest
        );
        lines.push(match (c.from, c.flop_per_epoch) {
            (Some(from), _) if Some(from) == first => format!(
                "{} is faster than {} beyond noise at every size, from {from} on ({at_largest}).",
                c.faster, c.slower
            ),
            (Some(from), Some(flop)) => format!(
                "{} beats {} from {from} on ({} per epoch; {at_largest}); the course's model ({}) is {}× smaller than that.",
                c.faster,
                c.slower,
                readable::flop(flop),
                readable::flop(course),
                readable::round_ratio(flop / course)
            ),
            _ => format!(
                "{} is ahead of {} at {} only within the noise: neither pays off on this ladder.",
                c.faster, c.slower, c.largest
            ),
        });
    }
    let shares: Vec<String> = report
        .devices
        .iter()
        .filter_map(|column| {
            let (share, gflops, size) = best_share(column)?;
            Some(format!(
                "{} {} ({} at {size})",
                column.label,
                readable::percent(share),
                readable::gflops(gflops)
            ))
        })
        .collect();
    if !shares.is_empty() {
        lines.push(format!(
            "Best share of the theoretical FP32 peak: {}.",
            shares.join("; ")
        ));
    }
    if report
        .devices
        .iter()
        .any(|c| best_share(c).is_some_and(|(share, _, _)| share > 1.0))
    {
        lines.push(
            "A share above 100% cannot be real: the device ran faster than the clock its peak was reckoned from (see each column's peak basis), so that clock is wrong or the timing is a measurement error."
                .to_string(),
        );
    }
    for column in report
        .devices
        .iter()
        .filter(|c| c.framework == Framework::Candle)
    {
        let Some((fixed, from)) = fixed_cost(column) else {
            continue;
        };
        let fixed = readable::micros(fixed * 1e6);
        lines.push(match from {
            Some(size) => format!(
                "{}: an epoch costs at least {fixed} whatever its size; from {size} ({}) on, the arithmetic decides.",
                column.label,
                readable::flop(flop_per_epoch(size))
            ),
            None => format!(
                "{}: the fixed cost of about {fixed} per epoch decides at every size measured.",
                column.label
            ),
        });
    }
    for column in &report.devices {
        if let Some((torch, ratios)) = analysis::against_pytorch(report, column)
            && let (Some(low), Some(high)) = (
                ratios.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
                ratios.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
            )
        {
            lines.push(format!(
                "{} reaches {} to {} of {}'s throughput (lowest at {}, highest at {}).",
                column.label,
                readable::factor(low.1),
                readable::factor(high.1),
                torch.label,
                low.0,
                high.0
            ));
        }
        if let Some((size, loss, expected, reference)) = loss_disagreement(report, column) {
            lines.push(format!(
                "{}'s first loss at {size} is {loss}, {reference}'s {expected}: its arithmetic differs beyond float32 rounding (TF32, or a wrong kernel), so its timings are not comparable.",
                column.label
            ));
        }
    }
    if lines.is_empty() {
        lines.push("No point was measured on two devices: nothing to compare.".to_string());
    }
    lines
}
