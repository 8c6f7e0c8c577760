//! One device's share of the experiment, measured inside a worker process: a warm-up run and
//! timed repeats for every sync policy.
//!
//! Honest timing on an asynchronous device: the clock is read only after `synchronize()`, and
//! every run ends with a readback of the whole loss curve, which waits for all queued work.

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, SGD};
use serde::{Deserialize, Serialize};

use super::model::{Batch, Mlp};
use super::{DeviceSpec, SyncPolicy, TrainConfig, data};

/// What a worker is asked to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRequest {
    pub device: DeviceSpec,
    pub config: TrainConfig,
    pub policies: Vec<SyncPolicy>,
    pub repeats: u32,
    /// Epochs of the untimed warm-up run before each policy's timed runs.
    pub warmup_epochs: u64,
}

/// Facts about the device, known once the first warm-up run is done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceFacts {
    /// CPU model or GPU name, as the worker sees it.
    pub name: Option<String>,
    /// What trains, with its version: "candle 0.11.1", "PyTorch 2.5.1" (absent in older reports).
    #[serde(default)]
    pub framework: Option<String>,
    /// Creating the device (for CUDA: the context), in milliseconds.
    pub open_ms: f64,
    /// Data and parameters onto the device, in milliseconds.
    pub setup_ms: f64,
    /// The very first epoch on this device (cold: first allocations, kernel loading), in ms.
    pub first_epoch_ms: f64,
}

/// One timed training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub policy: SyncPolicy,
    /// 1-based repeat number.
    pub repeat: u32,
    /// Epochs trained (fewer than asked only when the loss diverged).
    pub epochs: u64,
    /// Wall time from the first epoch to the final readback, synchronised, in seconds.
    pub total_s: f64,
    /// Readbacks of the loss to the host, the final one included.
    pub syncs: u64,
    /// Time spent inside the readback calls, in seconds. On an asynchronous device this includes
    /// waiting for the queued work to finish.
    pub readback_s: f64,
    /// Epoch whose loss was NaN or infinite, if any; training stops there.
    pub diverged_at: Option<u64>,
    pub final_loss: Option<f32>,
}

impl RunResult {
    pub fn per_epoch_us(&self) -> f64 {
        self.total_s * 1e6 / self.epochs.max(1) as f64
    }
}

/// What the device ends with, after all its runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceOutcome {
    /// Training loss of the last epoch of the last run.
    pub final_loss: Option<f32>,
    /// Accuracy on the test rows after the last run.
    pub test_accuracy: Option<f64>,
    /// Loss of every epoch of the last run (NaN or infinity travel as `null`).
    #[serde(with = "non_finite_as_null")]
    pub loss_curve: Vec<f32>,
    /// Peak memory: the worker process's peak RSS (CPU) or the GPU memory in use (CUDA), in MiB.
    pub peak_memory_mib: Option<f64>,
    /// What `peak_memory_mib` measures.
    pub memory_kind: String,
}

pub enum Event {
    Ready(DeviceFacts),
    Run(RunResult),
    Finished(DeviceOutcome),
}

/// The data, on the device.
pub struct Prepared {
    pub device: Device,
    pub train: Batch,
    pub test: Batch,
}

/// Opens the device, or says in one line why it cannot be used.
pub fn open_device(spec: DeviceSpec) -> Result<Device, String> {
    match spec {
        DeviceSpec::Cpu { .. } => Ok(Device::Cpu),
        DeviceSpec::Cuda { ordinal } => {
            if !candle_core::utils::cuda_is_available() {
                return Err("this executable was built without CUDA support".to_string());
            }
            Device::new_cuda(ordinal).map_err(|e| format!("cannot open cuda:{ordinal}: {e}"))
        }
    }
}

/// Runs the whole session, reporting each step through `emit` as soon as it is measured.
pub fn run(
    request: &SessionRequest,
    mut emit: impl FnMut(Event) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let opened = Instant::now();
    let device = open_device(request.device).map_err(anyhow::Error::msg)?;
    device.synchronize()?;
    let open_ms = opened.elapsed().as_secs_f64() * 1e3;

    let started = Instant::now();
    let prepared = prepare(&request.config, device)?;
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
                name: device_name(&prepared.device),
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

    let outcome = match last {
        Some(trained) => DeviceOutcome {
            final_loss: trained.result.final_loss,
            test_accuracy: Some(trained.model.accuracy(&prepared.test)?),
            loss_curve: trained.curve,
            peak_memory_mib: peak_memory_mib(&prepared.device),
            memory_kind: memory_kind(&prepared.device).to_string(),
        },
        None => DeviceOutcome {
            final_loss: None,
            test_accuracy: None,
            loss_curve: Vec::new(),
            peak_memory_mib: peak_memory_mib(&prepared.device),
            memory_kind: memory_kind(&prepared.device).to_string(),
        },
    };
    emit(Event::Finished(outcome))
}

pub fn prepare(cfg: &super::TrainConfig, device: Device) -> candle_core::Result<Prepared> {
    let data = data::prepare(cfg.split_seed);
    Ok(Prepared {
        train: Batch::new(&data.train_x, &data.train_y, &device)?,
        test: Batch::new(&data.test_x, &data.test_y, &device)?,
        device,
    })
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

fn device_name(device: &Device) -> Option<String> {
    if device.is_cpu() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        crate::info::cpu::from_cpuinfo(&cpuinfo).model_name
    } else {
        super::cuda::device_name(device)
    }
}

fn memory_kind(device: &Device) -> &'static str {
    if device.is_cpu() {
        "peak RSS of the worker process"
    } else {
        "GPU memory in use (whole device)"
    }
}

/// Peak memory of this worker: its peak resident set on the CPU, GPU memory in use for CUDA.
fn peak_memory_mib(device: &Device) -> Option<f64> {
    if device.is_cpu() {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    } else {
        super::cuda::memory_in_use_mib(device)
    }
}

/// JSON has no NaN or infinity: a diverged loss travels as `null` and comes back as NaN.
mod non_finite_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|v| v.is_finite().then_some(*v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
        let values = Vec::<Option<f32>>::deserialize(deserializer)?;
        Ok(values.into_iter().map(|v| v.unwrap_or(f32::NAN)).collect())
    }
}
