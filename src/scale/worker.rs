//! The worker side of `hwbench scale`: open the device once, then prepare each size the parent
//! sends and time the runs it asks for, with the engine's loop (`engine::session::train`, as
//! `train-compare` does), timed the same way.

use std::time::Duration;

use super::protocol::{LadderRequest, LadderStep, PointPrepared, PointRun, ScaleEvent};
use crate::engine::SyncPolicy;
use crate::engine::fused::Kernels;
use crate::engine::session::{self, Length, Opened, Prepared, Trained};
use crate::engine::synthetic::{self, Size};

/// The most epochs one timed run trains (the course's model at its fastest needs about 10,000 for
/// a fifth of a second).
const MOST_EPOCHS: u64 = 10_000_000;

/// One size's data and weights on the device, ready for timed runs.
struct Point {
    prepared: Prepared,
    init: crate::engine::model::InitWeights,
    epochs: u64,
}

/// Opens the device, says it is ready, and answers each step the parent sends until `finish`.
pub fn run_ladder(
    request: &LadderRequest,
    mut emit: impl FnMut(ScaleEvent) -> anyhow::Result<()>,
    mut next: impl FnMut() -> anyhow::Result<LadderStep>,
) -> anyhow::Result<()> {
    let spec = request.device;
    // No setup or first epoch for the whole device: each size makes its own data, and has its
    // cold epoch (`PointPrepared::cold_epoch_s`).
    let Opened { device, facts } = session::open(spec)?;
    emit(ScaleEvent::Ready {
        facts,
        memory_free_mib: spec.free_memory_mib(&device),
    })?;
    let kernels = Kernels::chosen(&device, request.kernels);
    // Every prepared size stays ready: the parent times them in rounds over the whole ladder.
    let mut points: Vec<(Size, Point)> = Vec::new();
    loop {
        match next()? {
            LadderStep::Point { size, max_epoch_s } => {
                size.check().map_err(anyhow::Error::msg)?;
                if points.iter().any(|(s, _)| *s == size) {
                    anyhow::bail!("asked to prepare {size} twice");
                }
                let (ready, answer) =
                    prepare(request, size, max_epoch_s, &device, kernels, &mut emit)?;
                points.extend(ready.map(|point| (size, point)));
                emit(ScaleEvent::Prepared(answer))?;
            }
            LadderStep::Run { size } => {
                let Some((_, p)) = points.iter().find(|(s, _)| *s == size) else {
                    anyhow::bail!("asked to time a run of {size}, which is not prepared");
                };
                let trained = train(request, p, Length::Epochs(p.epochs), &mut emit)?;
                emit(ScaleEvent::Timed(PointRun {
                    size,
                    seconds: trained.result.total_s,
                    final_loss: trained.result.final_loss,
                    memory_mib: request.device.memory_mib(&device).map(|(mib, _)| mib),
                }))?;
            }
            LadderStep::Finish => return emit(ScaleEvent::Finished),
        }
    }
}

fn train(
    request: &LadderRequest,
    point: &Point,
    length: Length,
    emit: &mut impl FnMut(ScaleEvent) -> anyhow::Result<()>,
) -> anyhow::Result<Trained> {
    session::train(
        &point.prepared,
        &point.init,
        request.lr,
        SyncPolicy::NEVER,
        length,
        false,
        &mut |epoch| emit(ScaleEvent::Progress { epoch }),
    )
}

/// One point made ready: the cold epoch, a warm-up, and the epochs of each timed run — or over
/// budget, its data dropped.
fn prepare(
    request: &LadderRequest,
    size: Size,
    max_epoch_s: f64,
    device: &candle_core::Device,
    kernels: Kernels,
    emit: &mut impl FnMut(ScaleEvent) -> anyhow::Result<()>,
) -> anyhow::Result<(Option<Point>, PointPrepared)> {
    let prepared = {
        let (features, labels) = synthetic::rows(request.seed, size);
        Prepared::rows(&features, &labels, device.clone(), kernels)?
    };
    let mut point = Point {
        prepared,
        init: synthetic::init_weights(request.seed, size),
        epochs: 0,
    };
    let timing = request.timing;
    let cold = train(request, &point, Length::Epochs(1), emit)?;
    let cold_epoch_s = cold.result.total_s;
    let mut answer = PointPrepared {
        size,
        kernels: kernels.name().to_string(),
        cold_epoch_s,
        warm_epoch_s: cold_epoch_s,
        over_budget: false,
        epochs: 0,
        first_loss: cold.curve.first().copied().filter(|v| v.is_finite()),
        memory_mib: None,
    };
    drop(cold);
    // A cold epoch pays for first allocations (and on a GPU, loading kernels): far over the
    // budget, it is over budget warm too.
    if cold_epoch_s <= 3.0 * max_epoch_s {
        let warm = train(
            request,
            &point,
            Length::Until {
                epochs: MOST_EPOCHS,
                limit: Duration::from_secs_f64(timing.warmup_s),
                at_least: 1,
            },
            emit,
        )?;
        answer.warm_epoch_s = warm.result.total_s / warm.result.epochs as f64;
    }
    answer.memory_mib = request.device.memory_mib(device).map(|(mib, _)| mib);
    if cold_epoch_s > 3.0 * max_epoch_s || answer.warm_epoch_s > max_epoch_s {
        answer.over_budget = true;
        return Ok((None, answer));
    }
    answer.epochs = timed_epochs(
        answer.warm_epoch_s,
        timing.work_s / f64::from(timing.runs.max.max(1)),
        1,
    );
    point.epochs = answer.epochs;
    Ok((Some(point), answer))
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
