//! `hwbench train-compare`: the iris MLP exercise, trained with candle on every device.
//!
//! The parent process plans the experiment (`compare`), runs each device in a worker process
//! (`worker`: this executable for the CPU, the `hwbench-cuda` companion for GPUs), and gathers what
//! the workers measure (`session`) into a [`CompareReport`] that `show` draws and `plot` charts.

pub mod companion;
pub mod compare;
mod cuda;
pub mod data;
pub mod fused;
pub mod model;
pub mod plot;
pub mod pytorch;
pub mod session;
pub mod show;
pub mod stats;
pub mod verdict;
pub mod worker;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use compare::CompareReport;

/// Where one column of the comparison trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DeviceSpec {
    /// The CPU, with candle limited to this many threads.
    Cpu { threads: usize },
    /// A CUDA GPU by CUDA ordinal.
    Cuda { ordinal: usize },
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu { threads } => write!(f, "cpu×{threads}"),
            Self::Cuda { ordinal } => write!(f, "cuda:{ordinal}"),
        }
    }
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
