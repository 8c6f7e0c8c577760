//! One device's share of the experiment, measured inside a worker process: a warm-up run and
//! timed repeats for every sync policy.
//!
//! Honest timing on an asynchronous device: the clock is read only after `synchronize()`, and
//! every run ends with a readback of the whole loss curve, which waits for all queued work.

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, SGD};

use super::data::Dataset;
use super::fused::Kernels;
use super::model::{Batch, InitWeights, Mlp};
use super::protocol::{
    CURVE_POINTS, Event, HEARTBEAT, Progress, SessionRequest, TimedRuns, WARMUP_LIMIT,
};
use super::results::{DeviceFacts, DeviceOutcome, RunResult, curve_peak, sample_curve};
use super::{DeviceSpec, SyncPolicy, TrainConfig};

/// The data on the device, and the kernels its models use.
pub struct Prepared {
    pub device: Device,
    pub kernels: Kernels,
    pub train: Batch,
    /// The held-out rows (iris); `hwbench scale` has none.
    pub test: Option<Batch>,
}

impl Prepared {
    /// Iris's split, with the device's fastest kernels.
    pub fn new(data: &Dataset, device: Device) -> candle_core::Result<Self> {
        Ok(Self {
            train: Batch::new(&data.train_x, &data.train_y, &device)?,
            test: Some(Batch::new(&data.test_x, &data.test_y, &device)?),
            kernels: Kernels::for_device(&device),
            device,
        })
    }

    /// Training rows only (`hwbench scale`).
    pub fn rows(
        features: &[f32],
        labels: &[u32],
        device: Device,
        kernels: Kernels,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            train: Batch::new(features, labels, &device)?,
            test: None,
            kernels,
            device,
        })
    }

    /// A fresh model from `init` on this device.
    pub fn model(&self, init: &InitWeights) -> candle_core::Result<Mlp> {
        Mlp::with_kernels(init, &self.device, self.kernels)
    }
}

/// Trains and times the whole session on `data`, reporting each step through `emit` as soon as
/// it is measured. When the request asks to calibrate, `timed_runs` is asked, after the warm-ups,
/// how many epochs each timed run trains.
pub fn measure(
    request: &SessionRequest,
    data: &Dataset,
    mut emit: impl FnMut(Event) -> anyhow::Result<()>,
    mut timed_runs: impl FnMut() -> anyhow::Result<TimedRuns>,
) -> anyhow::Result<()> {
    let spec = request.device;
    let Opened {
        device,
        open_ms,
        kernel_cache,
    } = open(spec)?;

    let started = Instant::now();
    let prepared = Prepared::new(data, device)?;
    // The parameters' first trip to the device belongs to the setup cost too.
    let first_model = prepared.model(&request.config.init)?;
    prepared.device.synchronize()?;
    let setup_ms = started.elapsed().as_secs_f64() * 1e3;
    drop(first_model);

    let cfg = &request.config;
    let warmup_epochs = request.warmup_epochs.clamp(1, cfg.epochs);
    // Heartbeats, so that the parent can tell a long run from a hung worker.
    let progress = |policy, repeat, epoch| {
        Event::Progress(Progress {
            policy,
            repeat,
            epoch,
        })
    };
    let mut costs = Vec::new();
    for (i, &policy) in request.policies.iter().enumerate() {
        let warmup = train(
            &prepared,
            cfg,
            policy,
            Length::Until {
                epochs: warmup_epochs,
                limit: WARMUP_LIMIT,
                at_least: 10,
            },
            i == 0,
            &mut |epoch| emit(progress(policy, 0, epoch)),
        )?;
        // The first warm-up's first epoch is the cold one: it is not what an epoch costs.
        let first = warmup.first_epoch.unwrap_or_default().as_secs_f64();
        let warm_epochs = warmup
            .result
            .epochs
            .saturating_sub(u64::from(i == 0))
            .max(1);
        costs.push((warmup.result.total_s - first).max(0.0) * 1e6 / warm_epochs as f64);
        if i == 0 {
            emit(Event::Ready(DeviceFacts {
                name: spec.name(&prepared.device),
                framework: Some(format!("candle {}", env!("HWBENCH_CANDLE_VERSION"))),
                open_ms,
                setup_ms,
                first_epoch_ms: first * 1e3,
                kernel_cache: kernel_cache.clone(),
                operations_per_epoch: operations_per_epoch(&prepared, cfg).ok(),
            }))?;
        }
    }
    let epochs = if request.calibrate {
        emit(Event::Calibrated {
            per_epoch_us: costs,
        })?;
        timed_runs()?.epochs.clamp(1, cfg.epochs)
    } else {
        cfg.epochs
    };
    // Timed runs are interleaved, one of every policy per round, so that slow drifts of a shared
    // machine (clock changes, neighbours) weigh on every policy alike instead of on one.
    let mut last = None;
    let mut memory: Option<(f64, &str)> = None;
    for repeat in 1..=request.repeats {
        for &policy in &request.policies {
            let mut trained = train(
                &prepared,
                cfg,
                policy,
                Length::Epochs(epochs),
                false,
                &mut |epoch| emit(progress(policy, repeat, epoch)),
            )?;
            trained.result.repeat = repeat;
            emit(Event::Run(trained.result.clone()))?;
            // Memory is looked at after every run: the highest is this device's peak.
            if let Some((mib, kind)) = spec.memory_mib(&prepared.device)
                && memory.is_none_or(|(most, _)| mib > most)
            {
                memory = Some((mib, kind));
            }
            last = Some(trained);
        }
    }

    let (final_loss, test_accuracy, curve) = match last {
        Some(trained) => (
            trained.result.final_loss,
            prepared
                .test
                .as_ref()
                .map(|test| trained.model.accuracy(test))
                .transpose()?,
            trained.curve,
        ),
        None => (None, None, Vec::new()),
    };
    let memory = memory.or_else(|| spec.memory_mib(&prepared.device));
    emit(Event::Finished(DeviceOutcome {
        final_loss,
        test_accuracy,
        loss_curve: sample_curve(&curve, CURVE_POINTS),
        loss_peak: curve_peak(&curve),
        peak_memory_mib: memory.map(|(mib, _)| mib),
        memory_kind: memory
            .map_or(spec.memory_kind(), |(_, kind)| kind)
            .to_string(),
    }))
}

/// A device as a worker opened it.
pub struct Opened {
    pub device: Device,
    /// Opening it (for CUDA: creating the context), in milliseconds.
    pub open_ms: f64,
    /// The driver's compute cache before it opened (see `DeviceSpec::kernel_cache`).
    pub kernel_cache: Option<String>,
}

/// Opens `spec`, timing it up to a synchronised device.
pub fn open(spec: DeviceSpec) -> anyhow::Result<Opened> {
    // Before the device opens: opening it and the first epoch fill the cache.
    let kernel_cache = spec.kernel_cache();
    let opened = Instant::now();
    let device = spec.open().map_err(anyhow::Error::msg)?;
    device.synchronize()?;
    Ok(Opened {
        device,
        open_ms: opened.elapsed().as_secs_f64() * 1e3,
        kernel_cache,
    })
}

/// How long a run trains.
#[derive(Clone, Copy, Debug)]
pub enum Length {
    Epochs(u64),
    /// These epochs, or until `limit` has passed once `at_least` epochs are done.
    Until {
        epochs: u64,
        limit: Duration,
        at_least: u64,
    },
}

/// How many tensor operations one epoch runs, counted by candle's tensor serial numbers: every
/// operation makes a tensor.
fn operations_per_epoch(p: &Prepared, cfg: &TrainConfig) -> anyhow::Result<u64> {
    let serial = || -> anyhow::Result<u64> {
        let probe = Tensor::zeros(1, DType::F32, &p.device)?;
        let id = format!("{:?}", probe.id());
        Ok(id.trim_matches(|c: char| !c.is_ascii_digit()).parse()?)
    };
    let model = p.model(&cfg.init)?;
    let mut sgd = SGD::new(model.vars(), cfg.lr)?;
    let losses = Tensor::zeros(1, DType::F32, &p.device)?;
    let before = serial()?;
    let loss = model.loss(&p.train)?;
    losses.slice_set(&loss.reshape(1)?, 0, 0)?;
    sgd.backward_step(&loss)?;
    let after = serial()?;
    Ok(after.saturating_sub(before + 1))
}

pub struct Trained {
    pub result: RunResult,
    pub curve: Vec<f32>,
    pub model: Mlp,
    first_epoch: Option<Duration>,
}

/// One training run from the initial weights. The loss of every epoch is kept on the device in a
/// preallocated buffer (identical work under every policy); the policy only decides how often it is
/// also read back to the host, so the difference between policies is the cost of those readbacks.
/// `heartbeat` hears the epoch reached at least every [`HEARTBEAT`] (checked after every epoch).
pub fn train(
    p: &Prepared,
    cfg: &TrainConfig,
    policy: SyncPolicy,
    length: Length,
    time_first_epoch: bool,
    heartbeat: &mut dyn FnMut(u64) -> anyhow::Result<()>,
) -> anyhow::Result<Trained> {
    let (epochs, limit) = match length {
        Length::Epochs(epochs) => (epochs, None),
        Length::Until {
            epochs,
            limit,
            at_least,
        } => (epochs, Some((limit, at_least))),
    };
    let model = p.model(&cfg.init)?;
    let mut sgd = SGD::new(model.vars(), cfg.lr)?;
    let losses = Tensor::zeros(epochs as usize, DType::F32, &p.device)?;
    let mut readback = Duration::ZERO;
    let mut syncs = 0;
    let mut diverged_at = None;
    let mut trained_epochs = epochs;
    let mut first_epoch = None;

    p.device.synchronize()?;
    let start = Instant::now();
    let mut last_beat = start;
    for epoch in 1..=epochs {
        let loss = model.loss(&p.train)?;
        losses.slice_set(&loss.reshape(1)?, 0, (epoch - 1) as usize)?;
        if policy.reads_at(epoch) {
            let asked = Instant::now();
            let value = loss.to_scalar::<f32>()?;
            readback += asked.elapsed();
            syncs += 1;
            if !value.is_finite() {
                diverged_at = Some(epoch);
                trained_epochs = epoch;
                break;
            }
        }
        sgd.backward_step(&loss)?;
        if time_first_epoch && epoch == 1 {
            p.device.synchronize()?;
            first_epoch = Some(start.elapsed());
        }
        // A clock read costs tens of nanoseconds; the smallest epoch, tens of microseconds.
        let now = Instant::now();
        if now.duration_since(last_beat) >= HEARTBEAT {
            heartbeat(epoch)?;
            last_beat = now;
        }
        if limit.is_some_and(|(limit, at_least)| {
            epoch >= at_least && now.duration_since(start) >= limit
        }) {
            trained_epochs = epoch;
            break;
        }
    }
    let asked = Instant::now();
    let curve = losses
        .narrow(0, 0, trained_epochs as usize)?
        .to_vec1::<f32>()?;
    readback += asked.elapsed();
    syncs += 1;
    // The copy above waits for the queued work today; the clock must not depend on that.
    p.device.synchronize()?;
    let total = start.elapsed();

    if diverged_at.is_none() {
        diverged_at = curve
            .iter()
            .position(|v| !v.is_finite())
            .map(|i| i as u64 + 1);
    }
    let result = RunResult {
        policy,
        repeat: 0,
        epochs: trained_epochs,
        total_s: total.as_secs_f64(),
        syncs,
        readback_s: readback.as_secs_f64(),
        diverged_at,
        final_loss: curve.last().copied().filter(|v| v.is_finite()),
    };
    Ok(Trained {
        result,
        curve,
        model,
        first_epoch,
    })
}
