//! The worker side of `train-compare`: one device's share of the experiment, measured inside a
//! worker process — a warm-up run of every sync policy, then the rounds of timed runs the parent
//! asks for, reported as they are measured.

use std::time::Instant;

use super::protocol::{CURVE_POINTS, Event, Progress, SessionRequest, SessionStep, WARMUP_LIMIT};
use super::results::DeviceOutcome;
use crate::engine::data::Dataset;
use crate::engine::measured::{curve_peak, sample_curve};
use crate::engine::session::{self, Length, Opened, Prepared};

/// Trains and times the whole session on `data`, reporting each step through `emit` as soon as
/// it is measured: after the warm-ups, `next_step` is asked what to do until it says `finish`.
pub fn run_session(
    request: &SessionRequest,
    data: &Dataset,
    mut emit: impl FnMut(Event) -> anyhow::Result<()>,
    mut next_step: impl FnMut() -> anyhow::Result<SessionStep>,
) -> anyhow::Result<()> {
    let spec = request.device;
    let Opened { device, mut facts } = session::open(spec)?;

    let started = Instant::now();
    let prepared = Prepared::new(data, device)?;
    // The parameters' first trip to the device belongs to the setup cost too.
    let first_model = prepared.model(&request.config.init)?;
    prepared.device.synchronize()?;
    let setup_ms = started.elapsed().as_secs_f64() * 1e3;
    drop(first_model);

    let cfg = &request.config;
    let warmup_epochs = request.warmup_epochs;
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
        let warmup = session::train(
            &prepared,
            &cfg.init,
            cfg.lr,
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
            facts.setup_ms = Some(setup_ms);
            facts.first_epoch_ms = Some(first * 1e3);
            facts.operations_per_epoch =
                session::operations_per_epoch(&prepared, &cfg.init, cfg.lr)
                    .ok()
                    .flatten();
            emit(Event::Ready(facts.clone()))?;
        }
    }
    emit(Event::Calibrated {
        per_epoch_us: costs,
    })?;
    // Within a round the policies run one after another, so that slow drifts of a shared machine
    // (clock changes, neighbours) weigh on every policy alike instead of on one; the parent
    // interleaves the rounds of the columns the same way. Each round starts one policy later
    // than the last, so that no policy is always the first after another column's run (caches
    // and sleeping threads cold), which would show as a cost of syncing.
    let mut last = None;
    let mut memory: Option<(f64, &str)> = None;
    let mut round = 0;
    while let SessionStep::Round { epochs } = next_step()? {
        let epochs = epochs.clamp(1, cfg.epochs);
        round += 1;
        let start = (round as usize - 1) % request.policies.len().max(1);
        let order = request.policies[start..]
            .iter()
            .chain(&request.policies[..start]);
        for &policy in order {
            let mut trained = session::train(
                &prepared,
                &cfg.init,
                cfg.lr,
                policy,
                Length::Epochs(epochs),
                false,
                &mut |epoch| emit(progress(policy, round, epoch)),
            )?;
            trained.result.repeat = round;
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
