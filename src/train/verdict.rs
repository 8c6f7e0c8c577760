//! The plain-language answer to the exercise, drawn from this run's numbers only.

use super::results::{DeviceResult, PolicyResult, TrainCompareReport};
use crate::engine::data::{CLASSES, FEATURES};
use crate::engine::device::DeviceSpec;
use crate::engine::fused;
use crate::engine::measured::DeviceStatus;
use crate::engine::{Framework, SyncPolicy};
use crate::readable::{micros, percent};
use crate::stats::{Comparison, Spread, VERDICT_THRESHOLD, compare};

/// The conclusions, one paragraph each: what is fastest and why, threads, PyTorch, syncs, and
/// every column that did not finish.
pub fn conclusions(report: &TrainCompareReport) -> Vec<String> {
    let measured: Vec<&DeviceResult> = report
        .devices
        .iter()
        .filter(|d| d.headline_per_epoch_us().is_some())
        .collect();
    if measured.is_empty() {
        return vec!["No device finished a policy, so there is nothing to compare.".to_string()];
    }
    // Wrong arithmetic first: nothing else said about such a column means anything.
    let mut lines: Vec<String> = report
        .devices
        .iter()
        .filter_map(|d| {
            let wrong = d.wrong_results?;
            Some(format!(
                "{} computed wrong results: its loss at epoch {} is {}, where cpu×1's is {}. Its timings are of wrong arithmetic and are left out of every comparison below.",
                d.label,
                wrong.epoch,
                loss(wrong.loss),
                loss(wrong.reference_loss)
            ))
        })
        .collect();
    let measured: Vec<&DeviceResult> = measured
        .into_iter()
        .filter(|d| d.wrong_results.is_none())
        .collect();
    if measured.is_empty() {
        lines.push("No device computed right results, so there is nothing to compare.".to_string());
        return lines;
    }
    let config = &report.config;
    let shared = fused::shares_epoch(config.train_rows, FEATURES, config.hidden, CLASSES);
    lines.push(fastest(&measured, shared));
    for device in &measured {
        if let Some(rise) = &device.did_not_learn {
            lines.push(format!(
                "{} did not learn: its loss went from {} at epoch 1 to {} at epoch {} and ended at {}; its timings are of a run that did not learn (lower --lr).",
                device.label,
                loss(rise.first_loss),
                loss(rise.peak_loss),
                rise.peak_epoch,
                loss(rise.final_loss)
            ));
        }
    }
    if let Some(line) = threads(&measured, shared) {
        lines.push(line);
    }
    if let Some(line) = against_pytorch(&measured) {
        lines.push(line);
    }
    if let Some(line) = readback_cost(&measured) {
        lines.push(line);
    }
    if let Some(line) = logging_every_epoch(&measured, report.config.epochs) {
        lines.push(line);
    }
    for device in report
        .devices
        .iter()
        .filter(|d| !matches!(d.status, DeviceStatus::Ok | DeviceStatus::WrongResults))
    {
        let why = device.reason.as_deref().unwrap_or("no reason given");
        lines.push(format!("{} has no (complete) result: {why}.", device.label));
    }
    for device in &measured {
        for policy in device.policies.iter().filter(|p| p.diverged_at.is_some()) {
            lines.push(format!(
                "{} diverged at epoch {} ({}): lower --lr.",
                device.label,
                policy.diverged_at.unwrap_or_default(),
                policy.policy.label()
            ));
        }
    }
    lines
}

/// Which devices are fastest. Devices with no measurable difference from the fastest are named
/// together (in the report's order), so that a tie never reads as a winner; so are candle's CPU
/// columns when the fastest is one of them and the epoch is too small to share (`shared` false):
/// they run the same one-thread epoch, and what their workers measured apart is said as such.
fn fastest(measured: &[&DeviceResult], shared: bool) -> String {
    let mut ranked: Vec<(&DeviceResult, &Spread)> = measured
        .iter()
        .filter_map(|d| Some((*d, d.headline_spread()?)))
        .collect();
    // Ranked by the statistic the test judges by: the fastest run.
    ranked.sort_by(|a, b| a.1.min.total_cmp(&b.1.min));
    let (best, best_time) = ranked[0];
    let mut within: f64 = 0.0;
    let by_test: Vec<&DeviceResult> = measured
        .iter()
        .copied()
        .filter(|d| {
            d.label == best.label
                || d.headline_spread().is_some_and(|time| {
                    match compare(time, best_time, VERDICT_THRESHOLD) {
                        Comparison::Same { within: w } => {
                            within = within.max(w);
                            true
                        }
                        _ => false,
                    }
                })
        })
        .collect();
    let one_epoch: Vec<&DeviceResult> = measured
        .iter()
        .copied()
        .filter(|d| !shared && fused_cpu(best) && fused_cpu(d))
        .collect();
    let same_epoch = one_epoch.len() > 1 && by_test.iter().all(|d| fused_cpu(d));
    let tied = if same_epoch { one_epoch } else { by_test };
    let mut line = if same_epoch {
        let apart = tied
            .iter()
            .filter_map(
                |d| match compare(d.headline_spread()?, best_time, VERDICT_THRESHOLD) {
                    Comparison::Slower { ratio } => Some(ratio),
                    _ => None,
                },
            )
            .fold(1.0, f64::max);
        let workers = if apart > 1.0 {
            format!("their workers up to {apart:.2}× apart here, not the threads' doing")
        } else {
            format!(
                "no measurable difference between their workers, {}",
                within_text(within)
            )
        };
        format!(
            "Fastest for this model: {}, which run the same one-thread epoch at this size, at about {} per epoch ({workers}).",
            and_list(&tied.iter().map(|d| named(d)).collect::<Vec<_>>()),
            micros(best_time.median)
        )
    } else if tied.len() == 1 {
        format!(
            "Fastest for this model: {} at {} per epoch at its fastest.",
            named(best),
            micros(best_time.min)
        )
    } else {
        format!(
            "Fastest for this model: {}, with no measurable difference between them ({}), at about {} per epoch.",
            and_list(&tied.iter().map(|d| named(d)).collect::<Vec<_>>()),
            within_text(within),
            micros(best_time.median)
        )
    };
    if let Some((slowest, slow_time)) = ranked
        .iter()
        .rev()
        .find(|(d, _)| !tied.iter().any(|t| t.label == d.label))
    {
        line.push_str(&format!(
            " The slowest, {}, needs {} at its fastest ({:.1}× longer).",
            named(slowest),
            micros(slow_time.min),
            slow_time.min / best_time.min
        ));
    }
    let any_gpu = ranked.iter().any(|(d, _)| d.device.is_accelerator());
    let fastest_gpus = tied.iter().filter(|d| d.device.is_accelerator()).count();
    line.push_str(if any_gpu && fastest_gpus == 0 {
        " An epoch here is a few dozen tiny operations on a 120×4 batch; on a GPU each one is a kernel launch whose fixed cost dwarfs its arithmetic, so the GPU cannot win until the model or the batch grows."
    } else if fastest_gpus == tied.len() {
        " Even at this size the GPU's launch overhead is smaller than what an epoch costs the CPU on this machine."
    } else {
        " An epoch is about 49 thousand floating-point operations in a handful of tiny steps; what decides the speed is the fixed cost of each step, not arithmetic."
    });
    line
}

/// A CPU column of candle's: hwbench's fused epoch (which stays on one thread where the model is
/// too small to share, `fused::shares_epoch`; the callers ask that).
fn fused_cpu(device: &DeviceResult) -> bool {
    device.framework == Framework::Candle && matches!(device.device, DeviceSpec::Cpu { .. })
}

/// How close two times are that show no measurable difference: "within ±4%", or, where too few
/// runs were taken for the test to tell anything apart (`stats::compare`), that.
fn within_text(within: f64) -> String {
    if within.is_finite() {
        format!("within ±{}", percent(within))
    } else {
        "too few runs to tell".to_string()
    }
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The column's label, marked when its run did not learn: its speed is not a training speed.
fn named(device: &DeviceResult) -> String {
    match device.did_not_learn {
        Some(_) => format!("{} (a run that did not learn)", device.label),
        None => device.label.clone(),
    }
}

/// A loss, with the digits that matter: "1.12", "0.0619", "521328".
fn loss(value: f32) -> String {
    let size = value.abs();
    if size >= 1e6 || (size < 1e-3 && size > 0.0) {
        format!("{value:.3e}")
    } else if size >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// The CPU at one thread against more threads. Where the fused epoch hands nothing to other
/// threads (`shared` false: the model is too small), every CPU column runs the same
/// single-threaded epoch: a measured difference between them is not its thread count's doing (the
/// workers ran on their own cores, at their own times), and is said as such.
fn threads(measured: &[&DeviceResult], shared: bool) -> Option<String> {
    const WHERE: &str = ", not the threads' doing: the workers ran the same one-thread epoch, on their own cores and at their own times";
    let cpu: Vec<(usize, &Spread)> = measured
        .iter()
        .filter(|d| d.framework == Framework::Candle)
        .filter_map(|d| match d.device {
            DeviceSpec::Cpu { threads } => Some((threads, d.headline_spread()?)),
            _ => None,
        })
        .collect();
    let &(_, one) = cpu.iter().find(|(t, _)| *t == 1)?;
    let &(most, many) = cpu.iter().max_by_key(|(t, _)| *t)?;
    if most == 1 {
        return None;
    }
    let comparison = compare(many, one, VERDICT_THRESHOLD);
    if !shared {
        let measured = match comparison {
            Comparison::Same { within } => format!(
                "no measurable difference per epoch ({})",
                within_text(within)
            ),
            Comparison::Slower { ratio } => {
                format!(
                    "its worker took {ratio:.2}× as long per epoch as cpu×1's at their fastest here{WHERE}"
                )
            }
            Comparison::Faster { ratio } => {
                format!(
                    "its worker was {ratio:.2}× faster per epoch than cpu×1's at their fastest here{WHERE}"
                )
            }
        };
        return Some(format!(
            "cpu×{most} is no faster than cpu×1: at this size the epoch runs on one thread in every CPU column (matrices this small give extra threads nothing to share); {measured}."
        ));
    }
    Some(match comparison {
        Comparison::Same { within } => format!(
            "cpu×{most} is no faster than cpu×1: no measurable difference per epoch ({}); matrices this small give extra threads nothing to share.",
            within_text(within)
        ),
        Comparison::Slower { ratio } => format!(
            "More CPU threads make it slower: cpu×{most} takes {ratio:.1}× as long per epoch as cpu×1 at their fastest, because handing matrices this small to a thread pool costs more than the work it spreads."
        ),
        Comparison::Faster { ratio } => {
            format!("cpu×{most} is {ratio:.1}× faster than cpu×1 per epoch at their fastest.")
        }
    })
}

/// candle against the reference PyTorch loop on the same device (`--with-pytorch`).
fn against_pytorch(measured: &[&DeviceResult]) -> Option<String> {
    let parts: Vec<String> = measured
        .iter()
        .filter(|d| d.framework == Framework::Pytorch)
        .filter_map(|torch| {
            let candle = measured
                .iter()
                .find(|d| d.framework == Framework::Candle && d.device == torch.device)?;
            let (ours, theirs) = (candle.headline_spread()?, torch.headline_spread()?);
            // The ratio a difference is stated by: their fastest runs (`stats::compare`).
            let times = format!(
                "{} vs {} per epoch at their fastest",
                micros(ours.min),
                micros(theirs.min)
            );
            Some(match compare(ours, theirs, VERDICT_THRESHOLD) {
                Comparison::Faster { ratio } => format!(
                    "{ratio:.1}× faster than PyTorch on {} ({times})",
                    candle.device
                ),
                Comparison::Slower { ratio } => format!(
                    "{ratio:.1}× slower than PyTorch on {} ({times})",
                    candle.device
                ),
                Comparison::Same { within } => format!(
                    "level with PyTorch on {} (no measurable difference, {}; {times})",
                    candle.device,
                    within_text(within)
                ),
            })
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "hwbench's loop is {}, with the same data, initial weights and sync policies. For a model this small both are dominated by fixed costs: hwbench's of each step of its epoch, PyTorch's of each operation, which is where Python and its dispatcher spend their time.",
        parts.join("; ")
    ))
}

/// The policy with the most syncs measures the cost of one most precisely.
fn most_synced(device: &DeviceResult) -> Option<&PolicyResult> {
    device
        .policies
        .iter()
        .filter(|p| p.sync_cost_interval_us.is_some())
        .max_by_key(|p| p.syncs)
}

/// What one sync costs on a device, as the verdict may say it: a cost only when it is measured and
/// at least [`VERDICT_THRESHOLD`] of an epoch; otherwise the most it can be.
enum SyncCost<'a> {
    Costs { us: f64, share: f64 },
    Under { share: f64 },
    NotMeasurable(&'a str),
}

fn sync_cost<'a>(device: &DeviceResult, policy: &'a PolicyResult) -> Option<SyncCost<'a>> {
    let epoch = device
        .policy(SyncPolicy::NEVER)?
        .per_epoch_us
        .as_ref()?
        .median;
    let (low, high) = policy.sync_cost_interval_us?;
    // Whatever the difference is made of, one surely under the threshold is too little to
    // measure.
    if low.abs().max(high.abs()) < VERDICT_THRESHOLD * epoch {
        return Some(SyncCost::Under {
            share: VERDICT_THRESHOLD,
        });
    }
    if let Some(note) = &policy.sync_cost_note {
        return Some(SyncCost::NotMeasurable(note));
    }
    Some(match (policy.sync_cost_us, policy.sync_cost_below_us) {
        (Some(us), _) if us / epoch >= VERDICT_THRESHOLD => SyncCost::Costs {
            us,
            share: us / epoch,
        },
        (Some(us), _) => SyncCost::Under {
            share: VERDICT_THRESHOLD.max(us / epoch),
        },
        (None, Some(bound)) => SyncCost::Under {
            share: VERDICT_THRESHOLD.max(bound / epoch),
        },
        (None, None) => return None,
    })
}

fn readback_cost(measured: &[&DeviceResult]) -> Option<String> {
    let parts: Vec<String> = measured
        .iter()
        .filter_map(|d| {
            Some(match sync_cost(d, most_synced(d)?)? {
                SyncCost::Costs { us, share } => format!(
                    "{} on {} ({} of an epoch)",
                    micros(us),
                    d.label,
                    percent(share)
                ),
                SyncCost::Under { share } => format!(
                    "too little to measure on {} (under {} of an epoch)",
                    d.label,
                    percent(share)
                ),
                SyncCost::NotMeasurable(why) => format!("not measurable on {}: {why}", d.label),
            })
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "One readback of the loss to the host costs {}. On the CPU the value is already in memory; on a GPU the readback waits for the queued work and copies across PCIe.",
        parts.join("; ")
    ))
}

fn logging_every_epoch(measured: &[&DeviceResult], epochs: u64) -> Option<String> {
    let mut largest_share: Option<f64> = None;
    let parts: Vec<String> = measured
        .iter()
        .filter_map(|d| {
            let policy = d.policy(SyncPolicy::EVERY_EPOCH)?;
            Some(match sync_cost(d, policy)? {
                SyncCost::Costs { us, share } => {
                    largest_share = Some(largest_share.unwrap_or_default().max(share));
                    let added = us * policy.syncs.saturating_sub(1) as f64
                        / policy.runs.first()?.epochs.max(1) as f64
                        * epochs as f64;
                    format!("{} (+{}) on {}", micros(added), percent(share), d.label)
                }
                SyncCost::Under { share } => {
                    format!(
                        "nothing measurable on {} (under {})",
                        d.label,
                        percent(share)
                    )
                }
                SyncCost::NotMeasurable(_) => format!("nothing measurable on {}", d.label),
            })
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let conclusion = match largest_share {
        Some(share) if share >= 0.10 => {
            "Here the logging interval does matter: read the loss less often, or keep it on the device and read it once.".to_string()
        }
        Some(share) => format!(
            "The logging interval changes the total time by at most {} here: a readback is small next to the epoch itself.",
            percent(share)
        ),
        None => "The logging interval makes no measurable difference to the total time here: a readback is small next to the epoch itself.".to_string(),
    };
    Some(format!(
        "Logging every epoch, as the reference loop's loss.item() does, adds {} over {epochs} epochs compared with reading the loss once at the end. {conclusion}",
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::sample::{self, device};

    fn verdict(devices: Vec<DeviceResult>) -> Vec<String> {
        conclusions(&sample::report(devices))
    }

    fn line<'a>(lines: &'a [String], start: &str) -> &'a str {
        lines
            .iter()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in {lines:#?}"))
    }

    const CPU1: DeviceSpec = DeviceSpec::Cpu { threads: 1 };
    const CPU2: DeviceSpec = DeviceSpec::Cpu { threads: 2 };

    #[test]
    fn differences_inside_the_noise_never_make_the_interval_matter() {
        // Round by round, the every-epoch run is 4 ms slower, 1 ms faster, 4 ms slower than the
        // silent one: the paired differences straddle zero.
        let lines = verdict(vec![device(
            CPU1,
            Framework::Candle,
            &[(1, &[0.033, 0.029, 0.045]), (0, &[0.029, 0.030, 0.041])],
        )]);
        let logging = line(&lines, "Logging every epoch");
        assert!(logging.contains("nothing measurable on cpu×1"), "{logging}");
        assert!(
            logging.contains("makes no measurable difference"),
            "{logging}"
        );
    }

    #[test]
    fn a_paired_difference_below_the_threshold_is_too_little_to_measure() {
        // Every round the every-epoch run is 0.6–1.2 µs per epoch slower (the interval is above
        // zero) on a 30 µs epoch: 3%, below the verdicts' 5%, as every other difference.
        let lines = verdict(vec![device(
            CPU1,
            Framework::Candle,
            &[
                (1, &[0.0309, 0.0312, 0.0307]),
                (0, &[0.0300, 0.0301, 0.0301]),
            ],
        )]);
        let readback = line(&lines, "One readback");
        assert!(
            readback.contains("too little to measure on cpu×1 (under 5% of an epoch)"),
            "{readback}"
        );
        let logging = line(&lines, "Logging every epoch");
        assert!(logging.contains("nothing measurable on cpu×1"), "{logging}");
    }

    #[test]
    fn a_measured_cost_of_logging_is_called_out() {
        let lines = verdict(vec![device(
            CPU1,
            Framework::Candle,
            &[(1, &[0.050, 0.051, 0.052]), (0, &[0.030, 0.031, 0.032])],
        )]);
        let logging = line(&lines, "Logging every epoch");
        assert!(logging.contains("20.00 ms (+65%) on cpu×1"), "{logging}");
        assert!(logging.contains("does matter"), "{logging}");
    }

    /// A device whose silent policy took six runs: `runs`, twice.
    fn six_runs(spec: DeviceSpec, framework: Framework, runs: [f64; 3]) -> DeviceResult {
        let [a, b, c] = runs;
        device(spec, framework, &[(0, &[a, b, c, a, b, c])])
    }

    #[test]
    fn candle_is_compared_with_pytorch_on_the_same_device_only() {
        let lines = verdict(vec![
            six_runs(CPU1, Framework::Candle, [0.031, 0.031, 0.032]),
            six_runs(CPU2, Framework::Candle, [0.030, 0.031, 0.032]),
            six_runs(CPU2, Framework::Pytorch, [0.600, 0.604, 0.610]),
        ]);
        let against = line(&lines, "hwbench's loop is");
        assert!(
            against.contains(
                "20.0× faster than PyTorch on cpu×2 (30 µs vs 600 µs per epoch at their fastest)"
            ),
            "{against}"
        );
        // The thread comparison is candle's own: PyTorch's column is not "more threads".
        let threads = line(&lines, "cpu×2 is no faster than cpu×1");
        assert!(!threads.contains("pytorch"), "{threads}");
    }

    #[test]
    fn the_fastest_device_and_the_slowest_are_named_with_the_ratio() {
        let lines = verdict(vec![
            six_runs(CPU1, Framework::Candle, [0.031, 0.031, 0.032]),
            six_runs(CPU1, Framework::Pytorch, [0.062, 0.063, 0.064]),
        ]);
        let fastest = line(&lines, "Fastest for this model");
        assert!(fastest.contains("cpu×1 at 31 µs per epoch"), "{fastest}");
        assert!(
            fastest.contains("needs 62 µs at its fastest (2.0× longer)"),
            "{fastest}"
        );
    }

    #[test]
    fn cpu_columns_running_the_same_one_thread_epoch_are_not_ranked_by_their_threads() {
        // The course's model is too small for the fused epoch to share: cpu×1 and cpu×2 run the
        // same one-thread epoch, so their workers' difference is not the threads'.
        let lines = verdict(vec![
            six_runs(CPU1, Framework::Candle, [0.031, 0.031, 0.032]),
            six_runs(CPU2, Framework::Candle, [0.062, 0.063, 0.064]),
        ]);
        let fastest = line(&lines, "Fastest for this model");
        assert!(
            fastest.contains("cpu×1 and cpu×2, which run the same one-thread epoch at this size"),
            "{fastest}"
        );
        assert!(fastest.contains("up to 2.00× apart here"), "{fastest}");
        assert!(!fastest.contains("slowest"), "{fastest}");
        let threads = line(&lines, "cpu×2 is no faster than cpu×1");
        assert!(
            threads.contains("its worker took 2.00× as long"),
            "{threads}"
        );
        // Equal workers: no measurable difference, the same claim.
        let lines = verdict(vec![
            six_runs(CPU1, Framework::Candle, [0.031, 0.031, 0.032]),
            six_runs(CPU2, Framework::Candle, [0.031, 0.032, 0.032]),
        ]);
        let fastest = line(&lines, "Fastest for this model");
        assert!(
            fastest.contains("no measurable difference between their workers"),
            "{fastest}"
        );
        // A model large enough to share: more threads that are slower are said to be slower.
        let report = sample::report(vec![
            six_runs(CPU1, Framework::Candle, [0.031, 0.031, 0.032]),
            six_runs(CPU2, Framework::Candle, [0.062, 0.063, 0.064]),
        ]);
        let measured: Vec<&DeviceResult> = report.devices.iter().collect();
        let shared = super::threads(&measured, true).unwrap();
        assert!(
            shared.starts_with("More CPU threads make it slower"),
            "{shared}"
        );
        assert!(shared.contains("2.0× as long"), "{shared}");
    }
}
