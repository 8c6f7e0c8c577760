//! The worker side of `hwbench scale`: open the device once, then train each size the parent
//! sends with the engine's loop (`engine::session::train`, as `train-compare` does), timed the
//! same way.

use std::time::Duration;

use super::protocol::{LadderRequest, NextPoint, PointMeasured, ScaleEvent};
use crate::engine::SyncPolicy;
use crate::engine::fused::Kernels;
use crate::engine::session::{self, Length, Opened, Prepared, Trained};
use crate::engine::synthetic::{self, Size};

/// The most epochs one timed run trains (the course's model at its fastest needs about 10,000 for
/// a fifth of a second).
const MOST_EPOCHS: u64 = 10_000_000;

/// Opens the device, says it is ready, and measures each point the parent asks for until it asks
/// for none.
pub fn run_ladder(
    request: &LadderRequest,
    mut emit: impl FnMut(ScaleEvent) -> anyhow::Result<()>,
    mut next: impl FnMut() -> anyhow::Result<NextPoint>,
) -> anyhow::Result<()> {
    let spec = request.device;
    // No setup or first epoch for the whole device: each size makes its own data, and has its
    // cold epoch (`PointMeasured::cold_epoch_s`).
    let Opened { device, facts } = session::open(spec)?;
    emit(ScaleEvent::Ready {
        facts,
        memory_free_mib: spec.free_memory_mib(&device),
    })?;
    let kernels = Kernels::chosen(&device, request.kernels);
    loop {
        let step = next()?;
        let Some(size) = step.size else {
            return emit(ScaleEvent::Finished);
        };
        size.check().map_err(anyhow::Error::msg)?;
        let measured = measure(request, size, step.max_epoch_s, &device, kernels, &mut emit)?;
        emit(ScaleEvent::Point(measured))?;
    }
}

/// One point: the cold epoch, a warm-up, then the timed runs (unless an epoch is over budget).
fn measure(
    request: &LadderRequest,
    size: Size,
    max_epoch_s: f64,
    device: &candle_core::Device,
    kernels: Kernels,
    emit: &mut impl FnMut(ScaleEvent) -> anyhow::Result<()>,
) -> anyhow::Result<PointMeasured> {
    let prepared = {
        let (features, labels) = synthetic::rows(request.seed, size);
        Prepared::rows(&features, &labels, device.clone(), kernels)?
    };
    let init = synthetic::init_weights(request.seed, size);
    let timing = request.timing;
    let mut run = |length| -> anyhow::Result<Trained> {
        session::train(
            &prepared,
            &init,
            request.lr,
            SyncPolicy::NEVER,
            length,
            false,
            &mut |epoch| emit(ScaleEvent::Progress { epoch }),
        )
    };
    let cold = run(Length::Epochs(1))?;
    let cold_epoch_s = cold.result.total_s;
    let mut measured = PointMeasured {
        size,
        kernels: kernels.name().to_string(),
        cold_epoch_s,
        warm_epoch_s: cold_epoch_s,
        over_budget: false,
        epochs: 0,
        runs_s: Vec::new(),
        first_loss: cold.curve.first().copied().filter(|v| v.is_finite()),
        final_loss: None,
        memory_mib: None,
    };
    drop(cold);
    // A cold epoch pays for first allocations (and on a GPU, loading kernels): far over the
    // budget, it is over budget warm too.
    if cold_epoch_s > 3.0 * max_epoch_s {
        measured.over_budget = true;
        return Ok(with_memory(measured, request, device));
    }
    let warm = run(Length::Until {
        epochs: MOST_EPOCHS,
        limit: Duration::from_secs_f64(timing.warmup_s),
        at_least: 1,
    })?;
    measured.warm_epoch_s = warm.result.total_s / warm.result.epochs as f64;
    drop(warm);
    if measured.warm_epoch_s > max_epoch_s {
        measured.over_budget = true;
        return Ok(with_memory(measured, request, device));
    }
    let runs = timing.runs;
    measured.epochs = timed_epochs(
        measured.warm_epoch_s,
        timing.work_s / f64::from(runs.max.max(1)),
        1,
    );
    let runs = runs.within(
        timing.work_s,
        measured.epochs as f64 * measured.warm_epoch_s,
    );
    while runs.wants_more(&measured.runs_s) {
        let trained = run(Length::Epochs(measured.epochs))?;
        measured.runs_s.push(trained.result.total_s);
        measured.final_loss = trained.result.final_loss;
    }
    Ok(with_memory(measured, request, device))
}

fn with_memory(
    mut measured: PointMeasured,
    request: &LadderRequest,
    device: &candle_core::Device,
) -> PointMeasured {
    measured.memory_mib = request.device.memory_mib(device).map(|(mib, _)| mib);
    measured
}

/// Epochs of a timed run: at least `min_epochs`, and enough for `min_run_s` at `epoch_s` each.
pub fn timed_epochs(epoch_s: f64, min_run_s: f64, min_epochs: u64) -> u64 {
    let for_time = if epoch_s > 0.0 {
        (min_run_s / epoch_s).ceil() as u64
    } else {
        MOST_EPOCHS
    };
    for_time.clamp(min_epochs.max(1), MOST_EPOCHS.max(min_epochs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_run_lasts_the_minimum_time_and_epochs() {
        // The course's model at 30 µs per epoch: 0.2 s is 6667 epochs.
        assert_eq!(timed_epochs(30e-6, 0.2, 3), 6667);
        // A 1 s epoch: three of them.
        assert_eq!(timed_epochs(1.0, 0.2, 3), 3);
        assert_eq!(timed_epochs(0.0, 0.2, 3), MOST_EPOCHS);
    }
}
