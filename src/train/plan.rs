//! From what the user asked for ([`TrainSettings`]) to what will run ([`Plan`]): the training
//! problem, the data, and the columns (`engine::columns`, with the command of each worker or the
//! reason it cannot run). Everything is checked here, before anything trains.

use std::path::PathBuf;
use std::time::Duration;

use super::protocol::TrainConfig;
use crate::engine::SyncPolicy;
use crate::engine::columns::{self, Columns, DeviceSettings, no_duplicates};
use crate::engine::data::{self, Dataset};
use crate::engine::model::InitWeights;
use crate::engine::runs::Runs;
use crate::error::UsageError;
use crate::info::machine::Machine;

/// What a training run should do, as plain values: from the command line, or one of the
/// constructors below.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    pub devices: DeviceSettings,
    pub epochs: u64,
    /// Epochs of the untimed warm-up before each policy (capped at `epochs`).
    pub warmup_epochs: u64,
    pub lr: f64,
    /// Hidden units; `None`: 10, or what `init_weights` holds.
    pub hidden: Option<usize>,
    pub sync_every: Vec<SyncPolicy>,
    /// With `adaptive`, the work of the timed runs: as much as `repeats` runs of `epochs`, shared
    /// out in shorter runs (see [`Runs`]); without, exactly `repeats` runs of `epochs`.
    pub repeats: u32,
    /// Time as many runs as each figure needs (between [`Runs::MIN`] and [`Runs::MAX`], until its
    /// median is known within ±[`Runs::TARGET`]) instead of exactly `repeats`.
    pub adaptive: bool,
    pub seed: Option<u32>,
    pub init_weights: Option<PathBuf>,
    pub split_seed: u32,
    /// Time the whole run may take: each column times as many epochs as its share allows (at
    /// least [`MIN_TIMED_EPOCHS`]), and the totals for `epochs` are derived from them. `None`:
    /// every timed run trains `epochs`.
    pub time_budget: Option<Duration>,
}

impl TrainSettings {
    /// The course's loop.
    pub const EPOCHS: u64 = 20_000;
    pub const WARMUP_EPOCHS: u64 = 1_000;
    /// `--quick` and `hwbench report`: a few seconds instead of a minute.
    pub const QUICK_EPOCHS: u64 = 2_000;
    pub const QUICK_WARMUP_EPOCHS: u64 = 200;
    /// The default run fits in this, on any machine.
    pub const TIME_BUDGET: Duration = Duration::from_secs(60);
    pub const LR: f64 = 0.01;
    /// The course's hidden units.
    pub const HIDDEN: usize = 10;
    /// Every epoch (the course's `loss.item()`), every 100, every 2000, and never.
    pub const SYNC_EVERY: [SyncPolicy; 4] = [
        SyncPolicy::EVERY_EPOCH,
        SyncPolicy { every: 100 },
        SyncPolicy { every: 2000 },
        SyncPolicy::NEVER,
    ];
    pub const REPEATS: u32 = 3;
    /// The course's `train_test_split(random_state=42)`.
    pub const SPLIT_SEED: u32 = 42;

    /// What `hwbench train-compare` does with no options.
    pub fn standard() -> Self {
        Self {
            devices: DeviceSettings::default(),
            epochs: Self::EPOCHS,
            warmup_epochs: Self::WARMUP_EPOCHS,
            lr: Self::LR,
            hidden: None,
            sync_every: Self::SYNC_EVERY.to_vec(),
            repeats: Self::REPEATS,
            adaptive: true,
            seed: None,
            init_weights: None,
            split_seed: Self::SPLIT_SEED,
            time_budget: Some(Self::TIME_BUDGET),
        }
    }

    /// The standard run, shortened to a few seconds.
    pub fn quick() -> Self {
        Self {
            epochs: Self::QUICK_EPOCHS,
            warmup_epochs: Self::QUICK_WARMUP_EPOCHS,
            time_budget: None,
            ..Self::standard()
        }
    }
}

/// Everything needed to run the experiment, validated.
pub struct Plan {
    pub config: TrainConfig,
    /// The rows every column trains on, prepared once.
    pub data: Dataset,
    pub policies: Vec<SyncPolicy>,
    /// How many timed runs each figure gets (each column's most are decided by [`Plan::timing`]).
    pub runs: Runs,
    /// See [`TrainSettings::repeats`].
    pub repeats: u32,
    /// Epochs of each warm-up: the settings', capped at the course's epochs (decided here only).
    pub warmup_epochs: u64,
    pub columns: Columns,
    /// See [`TrainSettings::time_budget`].
    pub time_budget: Option<Duration>,
}

/// The fewest epochs a shortened run times: enough for a stable per-epoch cost and a sync cost
/// measured over a thousand syncs.
pub const MIN_TIMED_EPOCHS: u64 = 1_000;

impl Plan {
    /// Epochs of each timed run of a column and how many runs it may take: see [`run_timing`].
    pub fn timing(&self, budget: Option<Duration>, per_epoch_us: &[f64]) -> (u64, Runs) {
        run_timing(
            self.runs,
            self.repeats,
            self.config.epochs,
            budget,
            per_epoch_us,
        )
    }
}

/// Epochs of each timed run of a column, and how many runs it may take, given what an epoch costs
/// under each policy (µs, from the warm-ups) and the time `budget` it may spend. Exact runs train
/// every epoch. Adaptive runs share out the work of `repeats` whole runs — or what fits the budget,
/// if less — in runs of at least [`MIN_TIMED_EPOCHS`], enough for the most runs `runs` allows.
pub fn run_timing(
    runs: Runs,
    repeats: u32,
    epochs: u64,
    budget: Option<Duration>,
    per_epoch_us: &[f64],
) -> (u64, Runs) {
    if runs.target == 0.0 {
        return (epochs, runs);
    }
    let round_us: f64 = per_epoch_us.iter().sum();
    let mut work = (u64::from(repeats) * epochs) as f64;
    if let Some(budget) = budget
        && round_us > 0.0
    {
        work = work.min(budget.as_secs_f64() * 1e6 / round_us);
    }
    let floor = MIN_TIMED_EPOCHS.min(epochs);
    let per_run = ((work / f64::from(runs.max)).floor() as u64).clamp(floor, epochs);
    (per_run, runs.within(work, per_run as f64))
}

/// Validates the settings and decides every column on `machine`, before anything trains.
pub fn plan(settings: &TrainSettings, machine: &Machine) -> anyhow::Result<Plan> {
    let init = initial_weights(settings)?;
    let policies = no_duplicates(&settings.sync_every, "--sync-every", |p| {
        p.every.to_string()
    })?;
    let columns = columns::columns(&settings.devices, machine)?;
    Ok(Plan {
        data: data::prepare(settings.split_seed),
        config: TrainConfig {
            hidden: init.hidden,
            lr: settings.lr,
            epochs: settings.epochs,
            split_seed: settings.split_seed,
            init,
        },
        policies,
        runs: if settings.adaptive {
            Runs::adaptive(Runs::MAX)
        } else {
            Runs::exactly(settings.repeats)
        },
        repeats: settings.repeats,
        warmup_epochs: settings.warmup_epochs.clamp(1, settings.epochs),
        columns,
        time_budget: settings.time_budget,
    })
}

fn initial_weights(settings: &TrainSettings) -> anyhow::Result<InitWeights> {
    if let Some(path) = &settings.init_weights {
        let init = InitWeights::from_file(path).map_err(UsageError)?;
        if let Some(hidden) = settings.hidden
            && init.hidden != hidden
        {
            return Err(UsageError::new(format!(
                "--hidden {hidden} disagrees with --init-weights, whose fc1.weight has {} hidden units",
                init.hidden
            ))
            .into());
        }
        return Ok(init);
    }
    let hidden = settings.hidden.unwrap_or(TrainSettings::HIDDEN);
    Ok(match settings.seed {
        Some(seed) => InitWeights::from_seed(seed, hidden),
        None if hidden == TrainSettings::HIDDEN => InitWeights::reference(),
        None => InitWeights::from_seed(0, hidden),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_runs_share_out_the_work_of_three_whole_runs() {
        let runs = Runs::adaptive(Runs::MAX);
        // A fast CPU column: 60,000 epochs of work in runs of 5,000, six to twelve of them.
        assert_eq!(
            run_timing(runs, 3, 20_000, None, &[15.0; 4]),
            (5_000, Runs::adaptive(12))
        );
        // cuda:0 at 730 µs per epoch, four policies, 20 s: 6,849 epochs of work fit, in runs of
        // the floor; six runs at least even so, nine if they are noisy.
        let budget = Some(Duration::from_secs(20));
        let (epochs, most) = run_timing(runs, 3, 20_000, budget, &[730.0; 4]);
        assert_eq!((epochs, most.min, most.max), (MIN_TIMED_EPOCHS, 6, 9));
        // `--quick`: 2,000 epochs, runs of 1,000, six to nine of them.
        assert_eq!(run_timing(runs, 3, 2_000, None, &[15.0; 4]).0, 1_000);
        // A short course is never lengthened.
        assert_eq!(run_timing(runs, 3, 300, None, &[15.0; 4]).0, 300);
    }

    #[test]
    fn exact_runs_train_every_epoch_as_often_as_asked() {
        let budget = Some(Duration::from_secs(1));
        assert_eq!(
            run_timing(Runs::exactly(3), 3, 20_000, budget, &[730.0; 4]),
            (20_000, Runs::exactly(3))
        );
    }
}
