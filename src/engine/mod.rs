//! The engine both benchmarks run on: a worker process per column (`conversation`, the
//! `protocol` envelope), the training loop (`session`) over the model (`model`) on any device
//! (`device/`, `fused/` for the CPU kernels), the data (`data` for iris, `synthetic` for any size
//! from a seed), the columns a run can have (`columns`, PyTorch's in `pytorch`), and what a worker
//! measures (`measured`). `train-compare` (`crate::train`) and `scale` (`crate::scale`) each add
//! their own job: its messages, its worker side, its planning, report and words.
//!
//! This file holds the vocabulary every job shares: the sync policy, the framework of a column,
//! and the limits every worker checks.

pub mod columns;
pub mod conversation;
pub mod data;
pub mod device;
pub mod fused;
pub mod measured;
pub mod model;
pub mod protocol;
pub mod pytorch;
pub mod runs;
pub mod session;
pub mod synthetic;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use device::DeviceSpec;

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
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
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

    /// As JSON and metric labels name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Candle => "candle",
            Self::Pytorch => "pytorch",
        }
    }

    /// A column as metric labels, ASCII and one fact each (the label "pytorch cpu×2" is
    /// awkward in a query): `device` ("cpu", "cuda:0"), `threads` (CPU columns), `framework`.
    pub fn metric_labels(self, device: DeviceSpec) -> Vec<(&'static str, String)> {
        let mut labels = match device {
            DeviceSpec::Cpu { threads } => {
                vec![
                    ("device", "cpu".to_string()),
                    ("threads", threads.to_string()),
                ]
            }
            DeviceSpec::Cuda { .. } => vec![("device", device.to_string())],
        };
        labels.push(("framework", self.name().to_string()));
        labels
    }
}

/// How often the loss is read back to the host during training.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
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
