//! From what the user asked for ([`ScaleSettings`]) to what will run ([`ScalePlan`]): the ladder,
//! the timing of each point, and the columns — planned by `train::plan::columns`, exactly as for
//! `train-compare`.

use crate::info::cpu::CpuReport;
use crate::info::{Root, peaks};
use crate::train::device::cuda::MATMUL_PRECISION;
use crate::train::plan::{self, Columns, DeviceSettings};
use crate::train::protocol::{KernelChoice, PointTiming};
use crate::train::synthetic::Size;

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

    /// What `hwbench scale` does with no options: the default ladder, each point timed over at
    /// least 0.2 s and 3 epochs, 3 times.
    pub fn standard() -> Self {
        Self {
            devices: DeviceSettings::default(),
            sizes: ladder::DEFAULT.to_vec(),
            max_epoch_s: Self::MAX_EPOCH_S,
            timing: PointTiming {
                repeats: 3,
                min_epochs: 3,
                min_run_s: 0.2,
                warmup_s: 0.1,
            },
            seed: 0,
            lr: 0.01,
            kernels: KernelChoice::Auto,
        }
    }

    /// `--quick` and `hwbench report`: six points, shorter runs, epochs up to 0.25 s.
    pub fn quick() -> Self {
        Self {
            sizes: ladder::quick(),
            max_epoch_s: 0.25,
            timing: PointTiming {
                repeats: 3,
                min_epochs: 3,
                min_run_s: 0.05,
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

pub fn plan(settings: &ScaleSettings) -> anyhow::Result<ScalePlan> {
    plan_on(settings, || plan::columns(&settings.devices))
}

/// [`plan`], with the columns `columns` gives once the sizes are valid: `hwbench report` passes
/// the ones its train-compare run planned, so that the devices, the companion and PyTorch are
/// probed once.
pub fn plan_on(
    settings: &ScaleSettings,
    columns: impl FnOnce() -> anyhow::Result<Columns>,
) -> anyhow::Result<ScalePlan> {
    let sizes = ladder::sorted(&settings.sizes).map_err(crate::error::UsageError)?;
    let columns = columns()?;
    let mut cpu = crate::info::cpu::probe(&Root::from_env());
    peaks::fill_cpu(&mut cpu);
    Ok(ScalePlan {
        ladder: ladder::points(&sizes),
        settings: settings.clone(),
        columns,
        cpu,
    })
}

/// The FLOP formula, as the report states it.
pub const FLOP_FORMULA: &str = "4·R·I·H + 6·R·H·C + 4·R·H + 8·R·C + 2·P per epoch (R rows, I inputs, H hidden, C classes, P parameters): forward, backward without the input's gradient, SGD update";

/// How CUDA multiplies float32 matrices, as the report states it.
pub fn cuda_matmul() -> String {
    MATMUL_PRECISION.to_string()
}
