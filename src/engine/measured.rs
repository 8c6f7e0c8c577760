//! What a worker measures on any device, for any job: the device's facts, one timed run, a
//! column's status, and the loss curve helpers. `train-compare` and `scale` reports are built from
//! these.

use serde::{Deserialize, Serialize};

use super::SyncPolicy;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Every policy ran.
    Ok,
    /// The device could not be used; `reason` says why.
    NotRun,
    /// The worker failed part-way; the finished policies are kept.
    Failed,
    /// Ctrl-C stopped it; the finished policies are kept.
    Interrupted,
    /// It trained, but its losses are not cpu×1's: its arithmetic is wrong (`reason` and
    /// `wrong_results` say where), so its timings are not comparable.
    WrongResults,
}

impl DeviceStatus {
    /// As people read it: "not run", "wrong results".
    pub fn words(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotRun => "not run",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::WrongResults => "wrong results",
        }
    }
}

/// Facts about the device, known once the first warm-up run is done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceFacts {
    /// CPU model or GPU name, as the worker sees it.
    pub name: Option<String>,
    /// What trains, with its version: "candle 0.11.1", "PyTorch 2.5.1" (absent in older reports).
    #[serde(default)]
    pub framework: Option<String>,
    /// Creating the device (for CUDA: the context), in milliseconds.
    pub open_ms: f64,
    /// Data and parameters onto the device, in milliseconds; `null` where the job does not
    /// measure it (`scale` makes its data per size, and times each size's cold epoch instead).
    pub setup_ms: Option<f64>,
    /// The very first epoch on this device (cold: first allocations, kernel loading), in ms;
    /// `null` where the job does not measure it (see `setup_ms`).
    pub first_epoch_ms: Option<f64>,
    /// Whether the first epoch paid for compiling GPU kernels: the state of the driver's compute
    /// cache before the device was opened ("cold: …", "warm: …"); absent on the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_cache: Option<String>,
    /// Tensor operations candle runs per epoch on this device (forward, backward, update, the
    /// loss buffer; views included), counted: on a GPU each is at most one kernel launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations_per_epoch: Option<u64>,
    /// The vector instructions hwbench's fused CPU kernels use here ("AVX-512", "AVX2",
    /// "baseline"), chosen at run time; absent on other devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction_set: Option<String>,
}

/// One timed training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunResult {
    pub policy: SyncPolicy,
    /// 1-based repeat number.
    pub repeat: u32,
    /// Epochs trained (fewer than asked only when the loss diverged).
    pub epochs: u64,
    /// Wall time from the first epoch to the final readback, synchronised, in seconds.
    pub total_s: f64,
    /// Readbacks of the loss to the host, the final one included.
    pub syncs: u64,
    /// Time spent inside the readback calls, in seconds. On an asynchronous device this includes
    /// waiting for the queued work to finish.
    pub readback_s: f64,
    /// Epoch whose loss was NaN or infinite, if any; training stops there.
    pub diverged_at: Option<u64>,
    pub final_loss: Option<f32>,
}

impl RunResult {
    pub fn per_epoch_us(&self) -> f64 {
        self.total_s * 1e6 / self.epochs.max(1) as f64
    }
}

/// Up to `points` of a whole curve (index 0 = epoch 1) as (epoch, loss) pairs, evenly spaced,
/// finite losses only, always including the last finite epoch.
pub fn sample_curve(curve: &[f32], points: usize) -> Vec<(u64, f32)> {
    let step = curve.len().div_ceil(points.max(1)).max(1);
    let mut sampled: Vec<(u64, f32)> = (0..curve.len())
        .step_by(step)
        .map(|i| (i as u64 + 1, curve[i]))
        .filter(|(_, loss)| loss.is_finite())
        .collect();
    if let Some(last) = curve.iter().rposition(|v| v.is_finite())
        && sampled.last().map(|(e, _)| *e) != Some(last as u64 + 1)
    {
        sampled.push((last as u64 + 1, curve[last]));
    }
    sampled
}

/// The highest finite loss of a whole curve: (epoch, loss).
pub fn curve_peak(curve: &[f32]) -> Option<(u64, f32)> {
    curve
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, &v)| (i as u64 + 1, v))
}

/// What a run of columns comes to, whatever the job: each report works it out for itself
/// (`outcome()`), and the command maps it to an exit code after writing the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Something trained, and every column that trained computed the right results.
    Trained,
    /// No column trained: one line per column, "label status: reason".
    NothingTrained(Vec<String>),
    /// Columns computed wrong results: one line each (the report is the evidence).
    WrongResults(Vec<String>),
}

impl RunOutcome {
    /// From each column's (label, status words, reason, trained anything, computed wrong
    /// results).
    pub fn of<'a>(columns: impl IntoIterator<Item = ColumnOutcome<'a>>) -> Self {
        let columns: Vec<ColumnOutcome> = columns.into_iter().collect();
        let wrong: Vec<String> = columns
            .iter()
            .filter(|c| c.status == DeviceStatus::WrongResults)
            .map(|c| {
                format!(
                    "{} computed wrong results: {}",
                    c.label,
                    c.reason
                        .unwrap_or("its losses are not the reference column's")
                )
            })
            .collect();
        if !wrong.is_empty() {
            return Self::WrongResults(wrong);
        }
        if columns.iter().any(|c| c.trained) {
            return Self::Trained;
        }
        Self::NothingTrained(
            columns
                .iter()
                .map(|c| {
                    format!(
                        "{} {}: {}",
                        c.label,
                        c.status_words,
                        c.reason.unwrap_or("no reason given")
                    )
                })
                .collect(),
        )
    }
}

/// One column as [`RunOutcome::of`] reads it.
pub struct ColumnOutcome<'a> {
    pub label: &'a str,
    pub status: DeviceStatus,
    /// How the status reads in the one-line summary ("not run", "measured no point").
    pub status_words: &'a str,
    pub reason: Option<&'a str>,
    /// The column measured something (or was stopped while it did): the report is worth keeping.
    pub trained: bool,
}
