//! Training the iris MLP on every device and measuring what it costs.
//!
//! In the parent process: `plan` turns settings into columns (device × framework, each with the
//! command of its worker), `runner` starts one worker per column and gathers what it measures into
//! a [`TrainCompareReport`] (`results`), `analysis` adds the figures computed from measurements,
//! `verdict` says what they mean, `show` and `plot` draw them. In the worker process: `worker`
//! answers the parent's request over `protocol`, and `session` trains and times on one device.
//! `device/` holds what each device kind is, one file per kind.

pub mod analysis;
pub mod conversation;
pub mod data;
pub mod device;
pub mod fused;
pub mod model;
pub mod plan;
pub mod plot;
pub mod point;
pub mod protocol;
pub mod pytorch;
pub mod results;
pub mod runner;
pub mod sample;
pub mod session;
pub mod show;
pub mod synthetic;
pub mod verdict;
pub mod worker;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use device::DeviceSpec;
pub use results::TrainCompareReport;

/// What hwbench accepts: checked on the command line, in `--init-weights`, and again by every
/// worker, whoever sent the request.
pub mod limits {
    pub const EPOCHS: u64 = 100_000_000;
    pub const HIDDEN: usize = 4096;
    pub const REPEATS: u32 = 1000;
    pub const THREADS: usize = 4096;
    /// Sync policies in one run.
    pub const POLICIES: usize = 64;
}

/// What trains a column: candle (hwbench's own workers) or the reference PyTorch loop
/// (`--with-pytorch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    #[default]
    Candle,
    Pytorch,
}

impl Framework {
    /// The column label for `device`: "cpu×1" for candle, "pytorch cpu×1" for PyTorch.
    pub fn label(self, device: DeviceSpec) -> String {
        match self {
            Self::Candle => device.to_string(),
            Self::Pytorch => format!("pytorch {device}"),
        }
    }
}

/// How often the loss is read back to the host during training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SyncPolicy {
    /// Read the loss every this many epochs; 0 = never during training (read once at the end).
    pub every: u64,
}

impl SyncPolicy {
    /// Keep the loss on the device; read it once, at the end.
    pub const NEVER: Self = Self { every: 0 };
    /// Read the loss after every epoch, as the course's `loss.item()` does.
    pub const EVERY_EPOCH: Self = Self { every: 1 };

    /// Whether the loss of `epoch` (1-based) is read back during training.
    pub fn reads_at(self, epoch: u64) -> bool {
        self.every != 0 && epoch.is_multiple_of(self.every)
    }

    /// Readbacks in a run of `epochs`: those during training plus the one at the end.
    pub fn syncs(self, epochs: u64) -> u64 {
        match self.every {
            0 => 1,
            k => epochs / k + 1,
        }
    }

    pub fn label(self) -> String {
        match self.every {
            0 => "sync never".to_string(),
            1 => "sync every epoch".to_string(),
            k => format!("sync every {k}"),
        }
    }
}

impl FromStr for SyncPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim()
            .parse::<u64>()
            .map(|every| Self { every })
            .map_err(|_| {
                format!(
                    "'{text}' is not a sync interval: use whole numbers ≥ 0, e.g. --sync-every 1,100,0 (0 = never)"
                )
            })
    }
}

/// The training problem, identical on every device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub hidden: usize,
    pub lr: f64,
    pub epochs: u64,
    /// `random_state` of scikit-learn's `train_test_split(test_size=0.2)`.
    pub split_seed: u32,
    pub init: model::InitWeights,
}
