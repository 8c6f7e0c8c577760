//! From what the user asked for ([`ScaleSettings`]) to what will run ([`ScalePlan`]): the ladder,
//! the timing of each point, and the columns — planned by `engine::columns`, exactly as for
//! `train-compare`.

use super::protocol::PointTiming;
use crate::engine::columns::{self, Columns, DeviceSettings};
use crate::engine::device::cuda::MATMUL_PRECISION;
use crate::engine::fused::KernelChoice;
use crate::engine::runs::Runs;
use crate::engine::synthetic::Size;
use crate::info::cpu::CpuReport;
use crate::info::machine::Machine;

use super::ladder;
use super::results::LadderPoint;

/// What a scale run should do, as plain values.
#[derive(Clone, Debug)]
pub struct ScaleSettings {
    pub devices: DeviceSettings,
    /// The sizes to climb (any order; climbed in order of work).
    pub sizes: Vec<Size>,
    pub max_epoch_s: f64,
    pub timing: PointTiming,
    pub seed: u32,
    pub lr: f64,
    pub kernels: KernelChoice,
}

impl ScaleSettings {
    /// An epoch may take this long before a device stops climbing.
    pub const MAX_EPOCH_S: f64 = 1.0;
    pub const SEED: u32 = 0;
    pub const LR: f64 = 0.01;

    /// What `hwbench scale` does with no options: the default ladder, each point timed in 6 to 15
    /// runs sharing out 0.6 s (at least one epoch each; 9 at least if noisy), until its median is
    /// known within ±3%.
    pub fn standard() -> Self {
        Self {
            devices: DeviceSettings::default(),
            sizes: ladder::DEFAULT.to_vec(),
            max_epoch_s: Self::MAX_EPOCH_S,
            timing: PointTiming {
                runs: Runs::adaptive(15),
                work_s: 0.6,
                warmup_s: 0.1,
            },
            seed: Self::SEED,
            lr: Self::LR,
            kernels: KernelChoice::Auto,
        }
    }

    /// `--quick` and `hwbench report`: six points, shorter runs, epochs up to 0.25 s.
    pub fn quick() -> Self {
        Self {
            sizes: ladder::quick(),
            max_epoch_s: 0.25,
            timing: PointTiming {
                runs: Runs::adaptive(15),
                work_s: 0.2,
                warmup_s: 0.05,
            },
            ..Self::standard()
        }
    }
}

/// Everything a scale run needs, validated.
pub struct ScalePlan {
    pub ladder: Vec<LadderPoint>,
    pub settings: ScaleSettings,
    pub columns: Columns,
    /// The CPU as `info` sees it, with its FP32 peak (for each CPU column's share of it).
    pub cpu: CpuReport,
}

/// Validates the settings and decides every column on `machine`, before anything trains.
pub fn plan(settings: &ScaleSettings, machine: &Machine) -> anyhow::Result<ScalePlan> {
    let sizes = ladder::sorted(&settings.sizes).map_err(crate::error::UsageError)?;
    let columns = columns::columns(&settings.devices, machine)?;
    Ok(plan_with(settings, sizes, columns, machine))
}

/// [`plan`] on columns already decided: `hwbench report` passes the ones its train-compare run
/// planned on the same machine, so that PyTorch is probed once.
pub fn plan_on(
    settings: &ScaleSettings,
    columns: Columns,
    machine: &Machine,
) -> anyhow::Result<ScalePlan> {
    let sizes = ladder::sorted(&settings.sizes).map_err(crate::error::UsageError)?;
    Ok(plan_with(settings, sizes, columns, machine))
}

fn plan_with(
    settings: &ScaleSettings,
    sizes: Vec<Size>,
    columns: Columns,
    machine: &Machine,
) -> ScalePlan {
    ScalePlan {
        ladder: ladder::points(&sizes),
        settings: settings.clone(),
        columns,
        cpu: machine.cpu.clone(),
    }
}

/// The FLOP formula, as the report states it.
pub const FLOP_FORMULA: &str = "4·R·I·H + 6·R·H·C + 4·R·H + 8·R·C + 2·P per epoch (R rows, I inputs, H hidden, C classes, P parameters): forward, backward without the input's gradient, SGD update";

/// How CUDA multiplies float32 matrices, as the report states it.
pub fn cuda_matmul() -> String {
    MATMUL_PRECISION.to_string()
}
