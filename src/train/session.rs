//! One device's share of the experiment, measured inside a worker process: a warm-up run and
//! timed repeats for every sync policy.
//!
//! Honest timing on an asynchronous device: the clock is read only after `synchronize()`, and
//! every run ends with a readback of the whole loss curve, which waits for all queued work.

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, SGD};

use super::data::Dataset;
use super::model::{Batch, Mlp};
use super::protocol::{Event, SessionRequest};
use super::results::{DeviceFacts, DeviceOutcome, RunResult};
use super::{SyncPolicy, TrainConfig};

/// The data, on the device.
pub struct Prepared {
    pub device: Device,
    pub train: Batch,
    pub test: Batch,
}

impl Prepared {
    pub fn new(data: &Dataset, device: Device) -> candle_core::Result<Self> {
        Ok(Self {
            train: Batch::new(&data.train_x, &data.train_y, &device)?,
            test: Batch::new(&data.test_x, &data.test_y, &device)?,
            device,
        })
    }
}

/// Trains and times the whole session on `data`, reporting each step through `emit` as soon as
/// it is measured.
pub fn measure(
    request: &SessionRequest,
    data: &Dataset,
    mut emit: impl FnMut(Event) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let spec = request.device;
    let opened = Instant::now();
    let device = spec.open().map_err(anyhow::Error::msg)?;
    device.synchronize()?;
    let open_ms = opened.elapsed().as_secs_f64() * 1e3;

    let started = Instant::now();
    let prepared = Prepared::new(data, device)?;
    // The parameters' first trip to the device belongs to the setup cost too.
    let first_model = Mlp::new(&request.config.init, &prepared.device)?;
    prepared.device.synchronize()?;
    let setup_ms = started.elapsed().as_secs_f64() * 1e3;
    drop(first_model);

    let cfg = &request.config;
    let warmup_epochs = request.warmup_epochs.clamp(1, cfg.epochs);
    for (i, &policy) in request.policies.iter().enumerate() {
        let warmup = train(&prepared, cfg, policy, warmup_epochs, i == 0)?;
        if i == 0 {
            emit(Event::Ready(DeviceFacts {
                name: spec.name(&prepared.device),
                framework: Some(format!("candle {}", env!("HWBENCH_CANDLE_VERSION"))),
                open_ms,
                setup_ms,
                first_epoch_ms: warmup.first_epoch.unwrap_or_default().as_secs_f64() * 1e3,
            }))?;
        }
    }
    // Timed runs are interleaved, one of every policy per round, so that slow drifts of a shared
    // machine (clock changes, neighbours) weigh on every policy alike instead of on one.
    let mut last = None;
    for repeat in 1..=request.repeats {
        for &policy in &request.policies {
            let mut trained = train(&prepared, cfg, policy, cfg.epochs, false)?;
            trained.result.repeat = repeat;
            emit(Event::Run(trained.result.clone()))?;
            last = Some(trained);
        }
    }

    let (final_loss, test_accuracy, loss_curve) = match last {
        Some(trained) => (
            trained.result.final_loss,
            Some(trained.model.accuracy(&prepared.test)?),
            trained.curve,
        ),
        None => (None, None, Vec::new()),
    };
    emit(Event::Finished(DeviceOutcome {
        final_loss,
        test_accuracy,
        loss_curve,
        peak_memory_mib: spec.peak_memory_mib(&prepared.device),
        memory_kind: spec.memory_kind().to_string(),
    }))
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
pub fn train(
    p: &Prepared,
    cfg: &TrainConfig,
    policy: SyncPolicy,
    epochs: u64,
    time_first_epoch: bool,
) -> anyhow::Result<Trained> {
    let model = Mlp::new(&cfg.init, &p.device)?;
    let mut sgd = SGD::new(model.vars(), cfg.lr)?;
    let losses = Tensor::zeros(epochs as usize, DType::F32, &p.device)?;
    let mut readback = Duration::ZERO;
    let mut syncs = 0;
    let mut diverged_at = None;
    let mut trained_epochs = epochs;
    let mut first_epoch = None;

    p.device.synchronize()?;
    let start = Instant::now();
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
    }
    let asked = Instant::now();
    let curve = losses
        .narrow(0, 0, trained_epochs as usize)?
        .to_vec1::<f32>()?;
    readback += asked.elapsed();
    syncs += 1;
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
