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
use super::fused::{FusedEpoch, Kernels};
use super::measured::{DeviceFacts, RunResult};
use super::model::{Batch, InitWeights, Mlp, Parameters};
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
        Mlp::new(init, &self.device)
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
            instruction_set: device
                .is_cpu()
                .then(|| super::fused::isa::chosen().name().to_string()),
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

/// How many tensor operations one epoch of candle's stock path runs, counted by candle's tensor
/// serial numbers (every operation makes a tensor); None for the fused CPU epoch, which is one
/// function.
pub fn operations_per_epoch(
    p: &Prepared,
    init: &InitWeights,
    lr: f64,
) -> anyhow::Result<Option<u64>> {
    if p.kernels == Kernels::Fused {
        return Ok(None);
    }
    let serial = || -> anyhow::Result<u64> {
        let probe = Tensor::zeros(1, DType::F32, &p.device)?;
        let id = format!("{:?}", probe.id());
        Ok(id.trim_matches(|c: char| !c.is_ascii_digit()).parse()?)
    };
    let mut trainer = Trainer::new(p, init, lr, 1)?;
    let before = serial()?;
    trainer.epoch(p, 0)?;
    let after = serial()?;
    Ok(Some(after.saturating_sub(before + 1)))
}

/// A model being trained, with the loss of every epoch kept where it is computed (on the device)
/// until read back.
pub enum Trainer {
    /// hwbench's own epoch on the CPU.
    Fused {
        state: Box<FusedEpoch>,
        losses: Vec<f32>,
    },
    /// candle's stock operations, autograd and candle-nn's SGD.
    Candle {
        model: Mlp,
        sgd: SGD,
        losses: Tensor,
        /// The last epoch's loss.
        last: Option<Tensor>,
    },
}

impl Trainer {
    /// A fresh model from `init`, trained with SGD at `lr` for at most `epochs` epochs.
    pub fn new(p: &Prepared, init: &InitWeights, lr: f64, epochs: u64) -> anyhow::Result<Self> {
        Ok(match p.kernels {
            Kernels::Fused => Self::Fused {
                state: Box::new(FusedEpoch::new(Parameters::new(init), &p.train, lr)?),
                losses: vec![0.0; epochs as usize],
            },
            Kernels::Stock => {
                let model = p.model(init)?;
                Self::Candle {
                    sgd: SGD::new(model.vars(), lr)?,
                    model,
                    losses: Tensor::zeros(epochs as usize, DType::F32, &p.device)?,
                    last: None,
                }
            }
        })
    }

    /// Trains epoch `index` (from 0): forward, loss kept at `index`, backward, update.
    pub fn epoch(&mut self, p: &Prepared, index: usize) -> anyhow::Result<()> {
        match self {
            Self::Fused { state, losses } => losses[index] = state.step(&p.train)?,
            Self::Candle {
                model,
                sgd,
                losses,
                last,
            } => {
                let loss = model.loss(&p.train)?;
                losses.slice_set(&loss.reshape(1)?, 0, index)?;
                sgd.backward_step(&loss)?;
                *last = Some(loss);
            }
        }
        Ok(())
    }

    /// The loss of epoch `index`, the last one trained, read back to the host (waiting for the
    /// device).
    pub fn read_last(&self, index: usize) -> anyhow::Result<f32> {
        Ok(match self {
            Self::Fused { losses, .. } => losses[index],
            Self::Candle { last, .. } => match last {
                Some(loss) => loss.to_scalar::<f32>()?,
                None => anyhow::bail!("no epoch trained yet"),
            },
        })
    }

    /// The losses of the first `epochs` epochs, read back to the host.
    pub fn curve(&self, epochs: usize) -> anyhow::Result<Vec<f32>> {
        Ok(match self {
            Self::Fused { losses, .. } => losses[..epochs].to_vec(),
            Self::Candle { losses, .. } => losses.narrow(0, 0, epochs)?.to_vec1::<f32>()?,
        })
    }

    /// The trained model, on `p`'s device.
    pub fn into_model(self, p: &Prepared) -> anyhow::Result<Mlp> {
        Ok(match self {
            Self::Fused { state, .. } => Mlp::from_parameters(state.parameters(), &p.device)?,
            Self::Candle { model, .. } => model,
        })
    }
}

pub struct Trained {
    pub result: RunResult,
    pub curve: Vec<f32>,
    pub model: Mlp,
    /// The first epoch, synchronised, when the run was asked to time it.
    pub first_epoch: Option<Duration>,
}

/// `epochs` epochs from `init` with SGD at `lr`, the loss read back once at the end and nobody
/// told of progress: the plain run tests, benchmarks and examples compare.
pub fn train_epochs(
    p: &Prepared,
    init: &InitWeights,
    lr: f64,
    epochs: u64,
) -> anyhow::Result<Trained> {
    train(
        p,
        init,
        lr,
        SyncPolicy::NEVER,
        Length::Epochs(epochs),
        false,
        &mut |_| Ok(()),
    )
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
    let mut trainer = Trainer::new(p, init, lr, epochs)?;
    let mut readback = Duration::ZERO;
    let mut syncs = 0;
    let mut diverged_at = None;
    let mut trained_epochs = epochs;
    let mut first_epoch = None;

    p.device.synchronize()?;
    let start = Instant::now();
    let mut last_beat = start;
    for epoch in 1..=epochs {
        trainer.epoch(p, (epoch - 1) as usize)?;
        if policy.reads_at(epoch) {
            let asked = Instant::now();
            let value = trainer.read_last((epoch - 1) as usize)?;
            readback += asked.elapsed();
            syncs += 1;
            if !value.is_finite() {
                diverged_at = Some(epoch);
                trained_epochs = epoch;
                break;
            }
        }
        if time_first_epoch && epoch == 1 {
            p.device.synchronize()?;
            first_epoch = Some(start.elapsed());
        }
        // A clock read costs tens of nanoseconds; the smallest epoch, microseconds.
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
    let curve = trainer.curve(trained_epochs as usize)?;
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
        model: trainer.into_model(p)?,
        first_epoch,
    })
}
