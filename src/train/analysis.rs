//! Figures computed from the measurements, once every column has run: the correctness gate (every
//! column's losses against `cpu×1`'s), the marginal cost of one sync on each device, each device's
//! speed relative to `cpu×1`, and whether it learnt.

use super::results::{DeviceResult, Disagreement, LossRise, TrainCompareReport};
use crate::engine::device::DeviceSpec;
use crate::engine::measured::DeviceStatus;
use crate::engine::{Framework, SyncPolicy};
use crate::readable::{micros, range_micros};
use crate::stats::{Spread, VERDICT_THRESHOLD};

/// Fills in every derived figure of the report.
pub fn add_derived_figures(report: &mut TrainCompareReport) {
    check_against_cpu1(&mut report.devices);
    for device in &mut report.devices {
        course_totals(device, report.config.epochs);
        marginal_sync_costs(device);
        device.did_not_learn = loss_rise(device);
    }
    speed_vs_cpu1(&mut report.devices);
}

/// The course's whole run per policy: the timed runs' own total when they trained every epoch, else
/// their per-epoch cost (syncs included) times the course's epochs.
pub fn course_totals(device: &mut DeviceResult, epochs: u64) {
    for policy in &mut device.policies {
        let measured = policy.runs.iter().all(|r| r.epochs == epochs);
        (policy.course_total_s, policy.course_total_derived) = if measured {
            (policy.total_s.as_ref().map(|s| s.median), false)
        } else {
            (
                policy
                    .per_epoch_us
                    .as_ref()
                    .map(|s| s.median * epochs as f64 / 1e6),
                true,
            )
        };
    }
}

/// The correctness gate's tolerance. The same data, initial weights and updates give the same
/// losses up to float32 rounding, which grows only as far as reductions are summed in another
/// order: measured here (tests/all/reference.rs), hwbench's fused CPU kernels and candle's composed
/// operations (the path a GPU takes) differ by at most 7.4e-7 relative over 20000 epochs, and
/// PyTorch by at most 2.4e-7 absolute at the reference run's 299 recorded epochs. A GPU sums in
/// yet other orders (tiled GEMMs, tree reductions), so the gate allows over 1000× the CPU
/// difference; a wrong gradient, kernel or update moves the loss by percents within a few
/// hundred epochs (a 1% error is what the tests plant).
pub const GATE_RELATIVE: f32 = 1e-3;
/// Below this absolute difference, losses agree whatever their size.
pub const GATE_ABSOLUTE: f32 = 1e-5;

/// Marks every column whose loss curve leaves cpu×1's (candle) as `wrong_results`.
pub fn check_against_cpu1(devices: &mut [DeviceResult]) {
    let reference = devices
        .iter()
        .find(|d| {
            d.device == DeviceSpec::Cpu { threads: 1 }
                && d.framework == Framework::Candle
                && !d.loss_curve.is_empty()
        })
        .map(|d| (d.label.clone(), d.loss_curve.clone()));
    let Some((label, reference)) = reference else {
        return;
    };
    for device in devices.iter_mut().filter(|d| d.label != label) {
        if let Some(disagreement) = first_disagreement(&reference, &device.loss_curve) {
            device.status = DeviceStatus::WrongResults;
            device.reason = Some(format!(
                "its loss at epoch {} is {}, {label}'s is {}: further apart than float32 rounding explains",
                disagreement.epoch, disagreement.loss, disagreement.reference_loss
            ));
            device.wrong_results = Some(disagreement);
        }
    }
}

/// The first epoch both curves hold at which `curve` is not `reference` within the gate.
pub fn first_disagreement(reference: &[(u64, f32)], curve: &[(u64, f32)]) -> Option<Disagreement> {
    let mut theirs = reference.iter().peekable();
    for &(epoch, loss) in curve {
        while theirs.next_if(|(e, _)| *e < epoch).is_some() {}
        let Some(&&(e, reference_loss)) = theirs.peek() else {
            break;
        };
        if e != epoch || !loss.is_finite() || !reference_loss.is_finite() {
            continue;
        }
        let allowed = GATE_ABSOLUTE.max(GATE_RELATIVE * reference_loss.abs());
        if (loss - reference_loss).abs() > allowed {
            return Some(Disagreement {
                epoch,
                loss,
                reference_loss,
            });
        }
    }
    None
}

/// A run has not learnt when its loss ends this many times above where it started…
const ENDED_ABOVE: f32 = 10.0;
/// …or rose this many times above it on the way (a loss that explodes and partly comes back).
const ROSE_BY: f32 = 1000.0;

/// Whether the last run's loss went up instead of down (a divergence that stays finite: a NaN is
/// `diverged_at` instead).
pub fn loss_rise(device: &DeviceResult) -> Option<LossRise> {
    let &(_, first_loss) = device.loss_curve.first()?;
    let &(_, final_loss) = device.loss_curve.last()?;
    let (peak_epoch, peak_loss) = device.loss_peak?;
    let rose = final_loss > first_loss * ENDED_ABOVE || peak_loss > first_loss * ROSE_BY;
    rose.then_some(LossRise {
        first_loss,
        peak_epoch,
        peak_loss,
        final_loss,
    })
}

/// The marginal cost of one sync per policy, against the policy that never syncs during
/// training: per round, (T(k) − T(never)) / (syncs(k) − syncs(never)) of the two runs of that
/// round (paired: they ran back to back), and the median over rounds with its confidence
/// interval. A cost is exported only when the whole interval is beyond the verdicts' threshold
/// (5% of an epoch: a cost that may be below it is, as every other difference, too little to
/// measure), and it agrees with the time measured inside the readback calls: a sync cannot cost
/// more than the time spent in it.
pub fn marginal_sync_costs(device: &mut DeviceResult) {
    let Some(never) = device.policy(SyncPolicy::NEVER) else {
        return;
    };
    let Some(epoch0) = never.per_epoch_us.as_ref().map(|s| s.median) else {
        return;
    };
    let baseline: Vec<(u32, f64, u64)> = never
        .runs
        .iter()
        .map(|r| (r.repeat, r.total_s, r.syncs))
        .collect();
    for policy in &mut device.policies {
        if policy.policy == SyncPolicy::NEVER {
            continue;
        }
        // Per round: the extra time per extra sync, in µs.
        let per_sync: Vec<f64> = policy
            .runs
            .iter()
            .filter_map(|run| {
                let &(_, total0, syncs0) = baseline.iter().find(|(r, ..)| *r == run.repeat)?;
                let extra = run.syncs.checked_sub(syncs0).filter(|&e| e > 0)?;
                Some((run.total_s - total0) * 1e6 / extra as f64)
            })
            .collect();
        let Some(cost) = Spread::of(per_sync) else {
            continue;
        };
        let (low, high) = cost.interval();
        policy.sync_cost_interval_us = Some((low, high));
        let threshold = VERDICT_THRESHOLD * epoch0;
        if low < threshold && high > -threshold {
            policy.sync_cost_below_us = Some(low.abs().max(high.abs()));
            continue;
        }
        if high < 0.0 {
            policy.sync_cost_note = Some(format!(
                "the runs that sync were faster, by {} per sync: a drift of the machine, not a cost",
                micros(-cost.median)
            ));
            continue;
        }
        if let Some(inside) = &policy.readback_us
            && low > inside.interval().1
        {
            policy.sync_cost_note = Some(format!(
                "the paired runs differ by {} per sync ({}), more than the {} measured inside the readback: something else changed between the runs",
                micros(cost.median),
                range_micros(low, high),
                micros(inside.median)
            ));
            continue;
        }
        policy.sync_cost_us = Some(cost.median);
        policy.sync_share_of_epoch = Some(cost.median / epoch0);
    }
}

/// Each device's headline per-epoch cost against candle's `cpu×1`.
pub fn speed_vs_cpu1(devices: &mut [DeviceResult]) {
    let cpu1 = devices
        .iter()
        .find(|d| d.device == DeviceSpec::Cpu { threads: 1 } && d.framework == Framework::Candle)
        .and_then(DeviceResult::headline_per_epoch_us);
    for device in devices {
        device.speed_vs_cpu1 = match (cpu1, device.headline_per_epoch_us()) {
            (Some(base), Some(this)) if this > 0.0 => Some(base / this),
            _ => None,
        };
    }
}
