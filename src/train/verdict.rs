//! The plain-language answer to the exercise, drawn from this run's numbers only.

use super::results::{DeviceResult, PolicyResult, TrainCompareReport};
use crate::engine::device::DeviceSpec;
use crate::engine::measured::DeviceStatus;
use crate::engine::{Framework, SyncPolicy};
use crate::readable::micros;

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
    lines.push(fastest(&measured));
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
    if let Some(line) = threads(&measured) {
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

fn fastest(measured: &[&DeviceResult]) -> String {
    let mut ranked: Vec<(&DeviceResult, f64)> = measured
        .iter()
        .filter_map(|d| Some((*d, d.headline_per_epoch_us()?)))
        .collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (best, best_us) = ranked[0];
    let mut line = format!(
        "Fastest for this model: {} at {} per epoch.",
        named(best),
        micros(best_us)
    );
    if let Some((slowest, slow_us)) = ranked.last().filter(|(d, _)| d.label != best.label) {
        if slow_us / best_us < 1.05 {
            line.push_str(" Every device measured is within 5% of that.");
        } else {
            line.push_str(&format!(
                " The slowest, {}, needs {} ({:.1}× longer).",
                named(slowest),
                micros(*slow_us),
                slow_us / best_us
            ));
        }
    }
    let gpu_lost =
        ranked.iter().any(|(d, _)| d.device.is_accelerator()) && !best.device.is_accelerator();
    line.push_str(if gpu_lost {
        " An epoch here is a few dozen tiny operations on a 120×4 batch; on a GPU each one is a kernel launch whose fixed cost dwarfs its arithmetic, so the GPU cannot win until the model or the batch grows."
    } else if best.device.is_accelerator() {
        " Even at this size the GPU's launch overhead is smaller than the CPU's per-operation cost on this machine."
    } else {
        " An epoch is a few dozen tiny operations; what decides the speed is the fixed cost per operation, not arithmetic."
    });
    line
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

/// The CPU at one thread against more threads.
fn threads(measured: &[&DeviceResult]) -> Option<String> {
    let cpu: Vec<(usize, f64)> = measured
        .iter()
        .filter(|d| d.framework == Framework::Candle)
        .filter_map(|d| match d.device {
            DeviceSpec::Cpu { threads } => Some((threads, d.headline_per_epoch_us()?)),
            _ => None,
        })
        .collect();
    let &(_, one) = cpu.iter().find(|(t, _)| *t == 1)?;
    let &(most, many) = cpu.iter().max_by_key(|(t, _)| *t)?;
    if most == 1 {
        return None;
    }
    let ratio = many / one;
    Some(if (0.95..=1.05).contains(&ratio) {
        format!(
            "cpu×{most} is no faster than cpu×1 ({ratio:.2}× the time per epoch): matrices this small give extra threads nothing to share."
        )
    } else if many > one {
        format!(
            "More CPU threads make it slower: cpu×{most} takes {:.1}× as long per epoch as cpu×1, because handing matrices this small to a thread pool costs more than the work it spreads.",
            many / one
        )
    } else {
        format!(
            "cpu×{most} is {:.1}× faster than cpu×1 per epoch.",
            one / many
        )
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
            let (ours, theirs) = (
                candle.headline_per_epoch_us()?,
                torch.headline_per_epoch_us()?,
            );
            let ratio = theirs / ours;
            let (factor, word) = if ratio >= 1.0 {
                (ratio, "faster")
            } else {
                (1.0 / ratio, "slower")
            };
            Some(format!(
                "{factor:.1}× {word} than PyTorch on {} ({} vs {} per epoch)",
                candle.device,
                micros(ours),
                micros(theirs)
            ))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "hwbench's candle loop is {}, with the same data, initial weights and sync policies. For a model this small both are dominated by the fixed cost of each operation, which is where Python and PyTorch's dispatcher spend their time.",
        parts.join("; ")
    ))
}

/// The policy with the most syncs measures the cost of one most precisely.
fn most_synced(device: &DeviceResult) -> Option<&PolicyResult> {
    device
        .policies
        .iter()
        .filter(|p| p.sync_cost_us.is_some() || p.sync_cost_below_us.is_some())
        .max_by_key(|p| p.syncs)
}

fn readback_cost(measured: &[&DeviceResult]) -> Option<String> {
    let parts: Vec<String> = measured
        .iter()
        .filter_map(|d| {
            let policy = most_synced(d)?;
            Some(match (policy.sync_cost_us, policy.sync_cost_below_us) {
                (Some(cost), _) => format!(
                    "{} on {} ({:.0}% of an epoch)",
                    micros(cost),
                    d.label,
                    policy.sync_share_of_epoch.unwrap_or_default() * 100.0
                ),
                (None, Some(bound)) => format!(
                    "less than run-to-run noise on {} (under {})",
                    d.label,
                    micros(bound)
                ),
                (None, None) => return None,
            })
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "One readback of the loss to the host costs {}. On the CPU the value is already in memory; on a GPU the readback waits for the queued work and copies across PCIe.",
        parts.join(", ")
    ))
}

fn logging_every_epoch(measured: &[&DeviceResult], epochs: u64) -> Option<String> {
    let mut largest_share: f64 = 0.0;
    let parts: Vec<String> = measured
        .iter()
        .filter_map(|d| {
            let policy = d.policy(SyncPolicy::EVERY_EPOCH)?;
            let never = d.policy(SyncPolicy::NEVER)?;
            let added = policy.total_s?.min - never.total_s?.min;
            let share = added / never.total_s?.min * 100.0;
            Some(if policy.sync_cost_below_us.is_some() {
                format!("nothing measurable on {}", d.label)
            } else {
                // Only a measured difference may call the interval important.
                largest_share = largest_share.max(share);
                format!("{added:.2} s ({share:+.0}%) on {}", d.label)
            })
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let conclusion = if largest_share < 10.0 {
        "That is why the logging interval barely changes the total time: a readback is small next to the epoch itself."
    } else {
        "Here the logging interval does matter: read the loss less often, or keep it on the device and read it once."
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
        // The fastest every-epoch run is 14 % slower than the fastest silent one, but the
        // run-to-run spreads are wider than that difference.
        let lines = verdict(vec![device(
            CPU1,
            Framework::Candle,
            &[(1, &[0.033, 0.036, 0.045]), (0, &[0.029, 0.030, 0.041])],
        )]);
        let logging = line(&lines, "Logging every epoch");
        assert!(logging.contains("nothing measurable on cpu×1"), "{logging}");
        assert!(logging.contains("barely changes"), "{logging}");
    }

    #[test]
    fn a_measured_cost_of_logging_is_called_out() {
        let lines = verdict(vec![device(
            CPU1,
            Framework::Candle,
            &[(1, &[0.050, 0.051, 0.052]), (0, &[0.030, 0.031, 0.032])],
        )]);
        let logging = line(&lines, "Logging every epoch");
        assert!(logging.contains("0.02 s (+67%) on cpu×1"), "{logging}");
        assert!(logging.contains("does matter"), "{logging}");
    }

    #[test]
    fn candle_is_compared_with_pytorch_on_the_same_device_only() {
        let lines = verdict(vec![
            device(CPU1, Framework::Candle, &[(0, &[0.031, 0.031, 0.032])]),
            device(CPU2, Framework::Candle, &[(0, &[0.030, 0.031, 0.032])]),
            device(CPU2, Framework::Pytorch, &[(0, &[0.600, 0.604, 0.610])]),
        ]);
        let against = line(&lines, "hwbench's candle loop is");
        assert!(
            against.contains("19.5× faster than PyTorch on cpu×2 (31 µs vs 604 µs per epoch)"),
            "{against}"
        );
        // The thread comparison is candle's own: PyTorch's column is not "more threads".
        let threads = line(&lines, "cpu×2 is no faster than cpu×1");
        assert!(!threads.contains("pytorch"), "{threads}");
    }

    #[test]
    fn the_fastest_device_and_the_slowest_are_named_with_the_ratio() {
        let lines = verdict(vec![
            device(CPU1, Framework::Candle, &[(0, &[0.031, 0.031, 0.032])]),
            device(CPU2, Framework::Candle, &[(0, &[0.062, 0.063, 0.064])]),
        ]);
        let fastest = line(&lines, "Fastest for this model");
        assert!(fastest.contains("cpu×1 at 31 µs per epoch"), "{fastest}");
        assert!(
            fastest.contains("The slowest, cpu×2, needs 63 µs (2.0× longer)"),
            "{fastest}"
        );
        let threads = line(&lines, "More CPU threads make it slower");
        assert!(threads.contains("2.0× as long"), "{threads}");
    }
}
