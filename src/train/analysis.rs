//! Figures computed from the measurements, once every column has run: the marginal cost of one
//! sync on each device, and each device's speed relative to `cpu×1`.

use super::results::{DeviceResult, TrainCompareReport};
use super::{DeviceSpec, Framework, SyncPolicy};

/// Fills in every derived figure of the report.
pub fn add_derived_figures(report: &mut TrainCompareReport) {
    for device in &mut report.devices {
        marginal_sync_costs(device);
    }
    speed_vs_cpu1(&mut report.devices);
}

/// The marginal cost of one sync per policy, against the policy that never syncs during
/// training: (T(k) − T(never)) / (syncs(k) − syncs(never)), from the fastest run of each.
pub fn marginal_sync_costs(device: &mut DeviceResult) {
    let baseline = device
        .policy(SyncPolicy::NEVER)
        .and_then(|p| Some((p.total_s?, p.syncs, p.per_epoch_us?.median)));
    let Some((t0, s0, epoch0)) = baseline else {
        return;
    };
    for policy in &mut device.policies {
        let Some(total) = policy.total_s else {
            continue;
        };
        if policy.policy == SyncPolicy::NEVER || policy.syncs <= s0 {
            continue;
        }
        let extra_syncs = (policy.syncs - s0) as f64;
        // The fastest runs are the least disturbed: a shared machine only ever adds time.
        let difference = total.min - t0.min;
        let noise = (total.max - total.min) / 2.0 + (t0.max - t0.min) / 2.0;
        // A negative difference beyond the spread is drift, not a sync that saves time.
        if difference <= noise {
            policy.sync_cost_below_us = Some(noise.max(difference.abs()) * 1e6 / extra_syncs);
        } else {
            let cost = difference * 1e6 / extra_syncs;
            policy.sync_cost_us = Some(cost);
            policy.sync_share_of_epoch = Some(cost / epoch0);
        }
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
