//! The training loop every job runs inside a worker process: open a device, put rows on it, and
//! train from given weights for a given length, timing honestly.
//!
//! Honest timing on an asynchronous device: the clock is read only after `synchronize()`, and
//! every run ends with a readback of the whole loss curve, which waits for all queued work.

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, SGD};

use super::SyncPolicy;
use super::data::Dataset;
use super::device::DeviceSpec;
use super::fused::Kernels;
use super::measured::{DeviceFacts, RunResult};
use super::model::{Batch, InitWeights, Mlp};
use super::protocol::HEARTBEAT;

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

/// A device as a worker opened it, with what is known of it so far.
pub struct Opened {
    pub device: Device,
    /// Its name, candle's version, the time to open it (for CUDA: creating the context) and the
    /// driver's compute cache before it opened; the rest is for the job to measure.
    pub facts: DeviceFacts,
}

/// Opens `spec`, timing it up to a synchronised device.
pub fn open(spec: DeviceSpec) -> anyhow::Result<Opened> {
    // Before the device opens: opening it and the first epoch fill the cache.
    let kernel_cache = spec.kernel_cache();
    let opened = Instant::now();
    let device = spec.open().map_err(anyhow::Error::msg)?;
    device.synchronize()?;
    let open_ms = opened.elapsed().as_secs_f64() * 1e3;
    Ok(Opened {
        facts: DeviceFacts {
            name: spec.name(&device),
            framework: Some(format!("candle {}", env!("HWBENCH_CANDLE_VERSION"))),
            open_ms,
            setup_ms: None,
            first_epoch_ms: None,
            kernel_cache,
            operations_per_epoch: None,
        },
        device,
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
pub fn operations_per_epoch(p: &Prepared, init: &InitWeights, lr: f64) -> anyhow::Result<u64> {
    let serial = || -> anyhow::Result<u64> {
        let probe = Tensor::zeros(1, DType::F32, &p.device)?;
        let id = format!("{:?}", probe.id());
        Ok(id.trim_matches(|c: char| !c.is_ascii_digit()).parse()?)
    };
    let model = p.model(init)?;
    let mut sgd = SGD::new(model.vars(), lr)?;
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
    /// The first epoch, synchronised, when the run was asked to time it.
    pub first_epoch: Option<Duration>,
}

/// One training run from `init` with SGD at `lr`. The loss of every epoch is kept on the device in a
/// preallocated buffer (identical work under every policy); the policy only decides how often it is
/// also read back to the host, so the difference between policies is the cost of those readbacks.
/// `heartbeat` hears the epoch reached at least every [`HEARTBEAT`] (checked after every epoch).
pub fn train(
    p: &Prepared,
    init: &InitWeights,
    lr: f64,
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
    let model = p.model(init)?;
    let mut sgd = SGD::new(model.vars(), lr)?;
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
