//! Report-shaped data from chosen timings, for the tests of everything that reads a
//! [`TrainCompareReport`] (verdict, table, bug report, diff, fleet) without training anything.

use super::results::{DeviceResult, PolicyResult, RunConfig, SCHEMA_VERSION, TrainCompareReport};
use crate::engine::device::DeviceSpec;
use crate::engine::measured::RunResult;
use crate::engine::{Framework, SyncPolicy};

/// Epochs of every sample run.
pub const EPOCHS: u64 = 1000;

/// A device whose timed runs took these totals (seconds) per sync interval, [`EPOCHS`] each, the
/// i-th of every policy in round i, ending at loss 0.5 and accuracy 0.9.
pub fn device(device: DeviceSpec, framework: Framework, totals: &[(u64, &[f64])]) -> DeviceResult {
    let mut result = DeviceResult::new(device, framework);
    result.policies = totals
        .iter()
        .map(|&(every, seconds)| {
            let policy = SyncPolicy { every };
            let runs = seconds
                .iter()
                .enumerate()
                .map(|(i, &total_s)| RunResult {
                    policy,
                    repeat: i as u32 + 1,
                    epochs: EPOCHS,
                    total_s,
                    syncs: policy.syncs(EPOCHS),
                    // Half of every run waits inside the readbacks: enough for any sync cost the
                    // tests plant to be a sync's.
                    readback_s: total_s / 2.0,
                    diverged_at: None,
                    final_loss: Some(0.5),
                })
                .collect();
            PolicyResult::from_runs(policy, runs)
        })
        .collect();
    result.final_loss = Some(0.5);
    result.test_accuracy = Some(0.9);
    result
}

/// A complete report of these devices, with its derived figures (its verdict left empty:
/// `verdict::conclusions` writes it).
pub fn report(devices: Vec<DeviceResult>) -> TrainCompareReport {
    let mut policies: Vec<SyncPolicy> = Vec::new();
    for policy in devices
        .iter()
        .flat_map(|d| d.policies.iter().map(|p| p.policy))
    {
        if !policies.contains(&policy) {
            policies.push(policy);
        }
    }
    let mut report = TrainCompareReport {
        schema_version: SCHEMA_VERSION,
        kind: "train-compare".to_string(),
        redacted: true,
        hwbench_version: "test".to_string(),
        config: RunConfig {
            hidden: 10,
            lr: 0.01,
            epochs: EPOCHS,
            repeats: 3,
            runs: None,
            warmup_epochs: 10,
            split_seed: 42,
            train_rows: 120,
            test_rows: 30,
            init: "test".to_string(),
            policies,
        },
        complete: true,
        devices,
        verdict: Vec::new(),
        notes: Vec::new(),
    };
    super::analysis::add_derived_figures(&mut report);
    report
}
