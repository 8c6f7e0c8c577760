//! How a [`TrainCompareReport`] reads: one column per device, rows grouped by sync policy.

use super::results::{DeviceResult, PolicyResult, TrainCompareReport};
use crate::engine::measured::DeviceStatus;
use crate::readable::{factor, memory, micros, millis, percent, seconds, sparkline, spread_micros};
use crate::render::document::{NA, Pairs};
use crate::render::prometheus::Metric;
use crate::render::{Document, Render, Section};

/// How the timed runs were decided, in one line.
fn timing(config: &super::results::RunConfig) -> String {
    let per_figure = match config.runs {
        Some(runs) if runs.target > 0.0 => format!(
            "{} to {} timed runs per device and policy (more only while the median's 95% confidence interval is wider than ±{})",
            runs.min,
            runs.max,
            percent(runs.target)
        ),
        _ => format!("{} timed runs per device and policy", config.repeats),
    };
    format!(
        "{per_figure}, in rounds interleaved across devices, after a warm-up of up to {} epochs; each cell: median (95% confidence interval of the median, runs)",
        config.warmup_epochs
    )
}

impl Render for TrainCompareReport {
    fn document(&self) -> Document {
        // A column with no finished run would be a block of n/a: it is listed by itself instead.
        let (measured, without): (Vec<&DeviceResult>, Vec<&DeviceResult>) =
            self.devices.iter().partition(|d| !d.policies.is_empty());
        let mut header = vec![String::new()];
        header.extend(measured.iter().map(|d| d.label.clone()));
        let mut rows = Vec::new();
        let row = |name: &str, cell: &dyn Fn(&DeviceResult) -> String| -> Vec<String> {
            std::iter::once(name.to_string())
                .chain(measured.iter().map(|d| cell(d)))
                .collect()
        };

        if measured.iter().any(|d| d.status != DeviceStatus::Ok) {
            rows.push(row("status", &status));
        }
        if measured.iter().any(|d| d.timed_epochs.is_some()) {
            rows.push(row("timed epochs per run", &|d| {
                d.timed_epochs.unwrap_or(self.config.epochs).to_string()
            }));
        }
        for &policy in &self.config.policies {
            let cell = |d: &DeviceResult, f: &dyn Fn(&PolicyResult) -> Option<String>| {
                d.policy(policy)
                    .and_then(f)
                    .unwrap_or_else(|| NA.to_string())
            };
            rows.push(row(&format!("{} · per epoch", policy.label()), &|d| {
                cell(d, &|p| p.per_epoch_us.as_ref().map(spread_micros))
            }));
            rows.push(row("  total run", &|d| {
                cell(d, &|p| {
                    let total = seconds(p.course_total_s?);
                    Some(if p.course_total_derived {
                        format!("≈ {total} (derived)")
                    } else {
                        total
                    })
                })
            }));
            rows.push(row("  syncs", &|d| cell(d, &|p| Some(p.syncs.to_string()))));
            if policy.every != 0 {
                rows.push(row("  cost of one sync", &|d| {
                    cell(d, &|p| match (p.sync_cost_us, p.sync_cost_below_us) {
                        (Some(c), _) => Some(format!(
                            "{} ({})",
                            micros(c),
                            percent(p.sync_share_of_epoch.unwrap_or_default())
                        )),
                        (None, Some(bound)) => Some(format!("< {} (noise)", micros(bound))),
                        (None, None) if p.sync_cost_note.is_some() => {
                            Some("not a sync's cost (see the JSON)".to_string())
                        }
                        (None, None) => None,
                    })
                }));
            }
            rows.push(row("  blocked in readback", &|d| {
                cell(d, &|p| {
                    p.readback_us
                        .as_ref()
                        .map(|s| format!("{}/sync", micros(s.median)))
                })
            }));
            if measured
                .iter()
                .any(|d| d.policy(policy).is_some_and(|p| p.diverged_at.is_some()))
            {
                rows.push(row("  diverged at epoch", &|d| {
                    cell(d, &|p| p.diverged_at.map(|e| e.to_string()))
                }));
            }
        }
        rows.push(row("setup (data + params)", &|d| {
            opt(d.facts.as_ref().and_then(|f| f.setup_ms).map(millis))
        }));
        rows.push(row("first epoch (cold)", &|d| {
            opt(d.facts.as_ref().and_then(|f| f.first_epoch_ms).map(millis))
        }));
        if measured.iter().any(|d| {
            d.facts
                .as_ref()
                .is_some_and(|f| f.operations_per_epoch.is_some())
        }) {
            rows.push(row("operations per epoch", &|d| {
                opt(d
                    .facts
                    .as_ref()
                    .and_then(|f| f.operations_per_epoch)
                    .map(|n| n.to_string()))
            }));
        }
        // After the last timed run: of the course's epochs, or of as many as the runs trained.
        let after = |d: &DeviceResult| match d.timed_epochs {
            Some(epochs) => format!(" (epoch {epochs})"),
            None => String::new(),
        };
        rows.push(row("final training loss", &|d| {
            opt(d.final_loss.map(|l| format!("{l:.4}{}", after(d))))
        }));
        rows.push(row("test accuracy", &|d| {
            opt(d.test_accuracy.map(|a| format!("{a:.4}{}", after(d))))
        }));
        rows.push(row("peak memory", &|d| opt(d.peak_memory_mib.map(memory))));
        rows.push(row("speed vs cpu×1", &|d| {
            opt(d.speed_vs_cpu1.map(factor))
        }));
        rows.push(row("loss curve (log)", &|d| sparkline(&d.loss_curve, 12)));

        let mut config = Pairs::new();
        config
            .add("model", format!("4 → {} → 3 MLP, ReLU, cross-entropy", self.config.hidden))
            .add("optimizer", format!("SGD, lr {}, full batch", self.config.lr))
            .add("data", format!(
                "iris: {} training rows, {} test rows (train_test_split random_state={}), MinMax-scaled on the training rows",
                self.config.train_rows, self.config.test_rows, self.config.split_seed
            ))
            .add("initial weights", self.config.init.clone())
            .add("epochs", self.config.epochs.to_string())
            .add("timing", timing(&self.config))
            .add("total run", format!(
                "all {} epochs; when the time budget let a column time fewer (see \"timed epochs per run\"), its per-epoch cost, syncs included, times {} (derived)",
                self.config.epochs, self.config.epochs
            ))
            .add("cost of one sync", "median over rounds of (T(k) − T(never)) / (syncs(k) − syncs(never)), the two runs of each round paired; % of an epoch without syncs; \"< x (noise)\" when its 95% confidence interval reaches below 5% of an epoch")
            .add("blocked in readback", "time inside the readback call; on a GPU it includes waiting for queued work");
        if self.devices.iter().any(|d| {
            d.facts
                .as_ref()
                .is_some_and(|f| f.operations_per_epoch.is_some())
        }) {
            config.add("operations per epoch", "tensor operations candle runs per epoch (forward, backward, SGD update, the loss buffer; views included), counted on the device: on a GPU each is at most one kernel launch");
        }
        config.add("hwbench", self.hwbench_version.clone());
        if !self.complete {
            config.add("complete", "no: interrupted, only finished rows are shown");
        }
        let mut devices = Pairs::new();
        for d in &self.devices {
            let name = d
                .facts
                .as_ref()
                .and_then(|f| f.name.clone())
                .unwrap_or_else(|| NA.to_string());
            let framework = d.facts.as_ref().and_then(|f| f.framework.as_deref());
            let name = match framework {
                Some(framework) => format!("{name} ({framework})"),
                None => name,
            };
            let name = match d.facts.as_ref().and_then(|f| f.instruction_set.as_deref()) {
                Some(isa) => {
                    format!("{name}; the epoch is hwbench's fused CPU kernels, with {isa}")
                }
                None => name,
            };
            let cache = d
                .facts
                .as_ref()
                .and_then(|f| f.kernel_cache.as_deref())
                .map(|c| format!("; compute cache {c}"))
                .unwrap_or_default();
            devices.add(
                &d.label,
                match (&d.memory_kind, &d.facts) {
                    (Some(kind), Some(facts)) => format!(
                        "{name}; device opened in {:.1} ms; memory = {kind}{cache}",
                        facts.open_ms
                    ),
                    _ => name,
                },
            );
        }

        Document {
            title: format!(
                "hwbench train-compare — iris MLP, {} epochs",
                self.config.epochs
            ),
            summary: [
                (!measured.is_empty())
                    .then(|| Section::grid("Per-epoch cost and cost of syncing", header, rows)),
                (!without.is_empty()).then(|| {
                    Section::pairs(
                        "Columns without a result",
                        without
                            .iter()
                            .map(|d| (d.label.clone(), status(d)))
                            .collect(),
                    )
                }),
                Some(Section::text(
                    "Verdict",
                    self.verdict.iter().chain(&self.notes).cloned().collect(),
                )),
            ]
            .into_iter()
            .flatten()
            .collect(),
            details: vec![
                Section::pairs("Configuration", config.finish()),
                Section::pairs("Devices", devices.finish()),
            ],
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        let config = &self.config;
        let mut metrics = vec![Metric::info(
            "train_info",
            "The train-compare experiment.",
            &[
                ("version", &self.hwbench_version),
                ("epochs", &config.epochs.to_string()),
                ("hidden", &config.hidden.to_string()),
                ("lr", &config.lr.to_string()),
                ("repeats", &config.repeats.to_string()),
                ("complete", if self.complete { "yes" } else { "no" }),
            ],
        )];
        let mut epoch = Metric::new(
            "train_epoch_seconds",
            "Cost of one epoch, over the timed runs (stat = min, median, max).",
        );
        let mut sync = Metric::new(
            "train_sync_cost_seconds",
            "Marginal cost of one readback of the loss.",
        );
        let mut loss = Metric::new("train_final_loss", "Training loss after the last epoch.");
        let mut accuracy = Metric::new(
            "train_test_accuracy_ratio",
            "Share of test rows classified correctly.",
        );
        let mut relative = Metric::new(
            "train_speed_vs_cpu1_ratio",
            "The one-thread CPU column's per-epoch cost divided by this device's.",
        );
        let mut ok = Metric::new("train_device_ok", "1 when every policy ran on the device.");
        for d in &self.devices {
            let device = d.framework.metric_labels(d.device);
            for p in &d.policies {
                let every = p.policy.every.to_string();
                if let Some(spread) = &p.per_epoch_us {
                    for (stat, value) in [
                        ("min", spread.min),
                        ("median", spread.median),
                        ("max", spread.max),
                    ] {
                        epoch = epoch.sample_with(
                            &device,
                            &[("sync_every", &every), ("stat", stat)],
                            Some(value / 1e6),
                        );
                    }
                }
                sync = sync.sample_with(
                    &device,
                    &[("sync_every", &every)],
                    p.sync_cost_us.map(|c| c / 1e6),
                );
            }
            loss = loss.sample_with(&device, &[], d.final_loss.map(f64::from));
            accuracy = accuracy.sample_with(&device, &[], d.test_accuracy);
            relative = relative.sample_with(&device, &[], d.speed_vs_cpu1);
            ok = ok.sample_with(
                &device,
                &[],
                Some(if d.status == DeviceStatus::Ok {
                    1.0
                } else {
                    0.0
                }),
            );
        }
        metrics.extend([epoch, sync, loss, accuracy, relative, ok]);
        metrics
    }
}

fn status(d: &DeviceResult) -> String {
    let word = d.status.words();
    match &d.reason {
        Some(reason) => format!("{word}: {reason}"),
        None => word.to_string(),
    }
}

fn opt(value: Option<String>) -> String {
    value.unwrap_or_else(|| NA.to_string())
}
