//! How a [`ScaleReport`] reads: the verdict, then one row per ladder point and one column per
//! device — time per epoch, then throughput and share of peak — then the devices and the setup.

use super::analysis;
use super::results::{PointResult, PointStatus, ScaleColumn, ScaleReport};
use crate::readable::{factor, flop, gflops, memory, millis, percent, seconds};
use crate::readable::{sparkline, spread_micros};
use crate::render::document::{NA, Pairs};
use crate::render::prometheus::Metric;
use crate::render::{Document, Render, Section};

impl Render for ScaleReport {
    fn document(&self) -> Document {
        let mut summary = vec![Section::text("Verdict", self.verdict.clone())];
        summary.push(self.grid(
            "Time per epoch (median, 95% confidence interval of the median, runs)",
            |p| p.epoch_s.as_ref().map(|s| spread_micros(&s.scaled(1e6))),
        ));
        summary.push(
            self.grid("Throughput in GFLOP/s (share of FP32 peak)", |p| {
                p.gflops.map(|g| {
                    let rate = if g < 100.0 {
                        format!("{g:.1}")
                    } else {
                        format!("{g:.0}")
                    };
                    match p.peak_share {
                        Some(share) => format!("{rate} ({})", percent(share)),
                        None => rate,
                    }
                })
            }),
        );
        let against: Vec<(&ScaleColumn, &ScaleColumn, Vec<_>)> = self
            .devices
            .iter()
            .filter_map(|c| {
                let (torch, ratios) = analysis::against_pytorch(self, c)?;
                Some((c, torch, ratios))
            })
            .collect();
        if !against.is_empty() {
            let mut header = vec!["size".to_string()];
            header.extend(
                against
                    .iter()
                    .map(|(c, t, _)| format!("{} / {}", c.label, t.label)),
            );
            let rows = self
                .ladder
                .iter()
                .map(|point| {
                    std::iter::once(point.size.to_string())
                        .chain(against.iter().map(|(_, _, ratios)| {
                            ratios
                                .iter()
                                .find(|(size, _)| *size == point.size)
                                .map_or_else(|| NA.to_string(), |(_, r)| factor(*r))
                        }))
                        .collect()
                })
                .collect();
            summary.push(Section::grid(
                "throughput against PyTorch's on the same device (above 1: faster than PyTorch)",
                header,
                rows,
            ));
        }

        let mut devices = Vec::new();
        for c in &self.devices {
            let mut pairs = Pairs::new();
            pairs
                .add(
                    "status",
                    match &c.reason {
                        Some(reason) => format!("{}: {reason}", c.status.words()),
                        None => c.status.words().to_string(),
                    },
                )
                .opt("name", c.facts.as_ref().and_then(|f| f.name.clone()), |n| n)
                .opt(
                    "framework",
                    c.facts.as_ref().and_then(|f| f.framework.clone()),
                    |f| f,
                )
                .add("kernels", kernels(c))
                .opt(
                    "vector instructions",
                    c.facts.as_ref().and_then(|f| f.instruction_set.clone()),
                    |i| i,
                )
                .opt("FP32 peak (theoretical)", c.peak_gflops, |g| {
                    format!(
                        "{} ({})",
                        gflops(g),
                        c.peak_basis.as_deref().unwrap_or("basis unknown")
                    )
                })
                .opt("memory free at start", c.memory_free_mib, memory)
                .opt(
                    "memory after the largest point",
                    c.points.iter().rev().find_map(|p| p.memory_mib),
                    memory,
                )
                .add("time per epoch (log) by size", {
                    let times: Vec<(u64, f32)> = c
                        .points
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| Some((i as u64, p.median_s()? as f32)))
                        .collect();
                    sparkline(&times, times.len())
                });
            // Opening a GPU creates its context; opening the CPU costs nothing worth a row.
            if let Some(facts) = c.facts.as_ref().filter(|_| c.device.is_accelerator()) {
                pairs.add("opening the device", millis(facts.open_ms));
            }
            devices.push(Section::pairs(c.label.clone(), pairs.finish()));
        }

        let t = &self.config.timing;
        let mut setup = Pairs::new();
        setup
            .add(
                "data and weights",
                format!(
                    "synthetic, seed {} (the same for every device and PyTorch)",
                    self.config.seed
                ),
            )
            .add("learning rate", self.config.lr.to_string())
            .add(
                "timing per point",
                format!(
                    "1 cold epoch, a warm-up of up to {}, then {} to {} timed runs of at least one epoch sharing out {} (more only while the median's 95% confidence interval is wider than ±{}); columns take each point in turn",
                    seconds(t.warmup_s),
                    t.runs.min,
                    t.runs.max,
                    seconds(t.work_s),
                    percent(t.runs.target)
                ),
            )
            .add(
                "stops climbing",
                format!(
                    "when an epoch would take over {}, or a point needs more memory than is free",
                    seconds(self.config.max_epoch_s)
                ),
            )
            .add("FLOP per epoch", self.config.flop_formula.clone())
            .add("CUDA matrix products", self.config.cuda_matmul.clone())
            .add("hwbench", self.hwbench_version.clone());
        if !self.complete {
            setup.add(
                "complete",
                "no: interrupted; only the finished points are shown",
            );
        }
        let mut details = devices;
        details.push(Section::pairs("Setup", setup.finish()));
        if !self.notes.is_empty() {
            details.push(Section::text("Notes", self.notes.clone()));
        }
        Document {
            title: "hwbench scale".to_string(),
            summary,
            details,
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        let mut seconds = Metric::new(
            "scale_epoch_seconds",
            "Median seconds per training epoch at a ladder point.",
        );
        let mut rate = Metric::new(
            "scale_gflops",
            "Achieved GFLOP/s at a ladder point (FLOP per epoch / median epoch time).",
        );
        let mut share = Metric::new(
            "scale_peak_share",
            "Achieved throughput as a share of the device's theoretical FP32 peak.",
        );
        let mut work = Metric::new("scale_flop_per_epoch", "FLOP per epoch of a ladder point.");
        for point in &self.ladder {
            work = work.sample(
                &[("size", &point.size.to_string())],
                Some(point.flop_per_epoch),
            );
        }
        for c in &self.devices {
            let column = c.framework.metric_labels(c.device);
            for p in c
                .points
                .iter()
                .filter(|p| p.status == PointStatus::Measured)
            {
                let size = p.size.to_string();
                let labels = [("size", size.as_str())];
                seconds = seconds.sample_with(&column, &labels, p.median_s());
                rate = rate.sample_with(&column, &labels, p.gflops);
                share = share.sample_with(&column, &labels, p.peak_share);
            }
        }
        vec![work, seconds, rate, share]
    }
}

impl ScaleReport {
    /// One row per ladder point (its size over its FLOP per epoch), one column per device:
    /// `cell` for a measured point, why not for a skipped one.
    fn grid(&self, title: &str, cell: impl Fn(&PointResult) -> Option<String>) -> Section {
        let mut header = vec!["size, work".to_string()];
        header.extend(self.devices.iter().map(|c| c.label.clone()));
        let rows = self
            .ladder
            .iter()
            .enumerate()
            .map(|(i, point)| {
                let course = if point.course { " (course)" } else { "" };
                let size = format!(
                    "{}{course}\n{} per epoch",
                    point.size,
                    flop(point.flop_per_epoch)
                );
                let mut row = vec![size];
                row.extend(self.devices.iter().map(|c| match c.points.get(i) {
                    Some(p) if p.status == PointStatus::Measured => {
                        cell(p).unwrap_or_else(|| NA.to_string())
                    }
                    Some(p) => skipped(p),
                    None => NA.to_string(),
                }));
                row
            })
            .collect();
        Section::grid(title, header, rows)
    }
}

/// "over budget", "needs 2.1 GiB", "failed", "not run".
fn skipped(p: &PointResult) -> String {
    match p.status {
        PointStatus::OverBudget => "over budget".to_string(),
        PointStatus::NeedsMemory => p
            .reason
            .as_deref()
            .and_then(|r| r.split(',').next())
            .map_or("needs more memory".to_string(), str::to_string),
        other => other.words().to_string(),
    }
}

/// The kernels a column used, by size range: "fused", or "fused up to X, stock from Y".
fn kernels(c: &ScaleColumn) -> String {
    let mut runs: Vec<(String, String, String)> = Vec::new();
    for p in &c.points {
        let Some(k) = &p.kernels else { continue };
        match runs.last_mut() {
            Some((last, _, to)) if last == k => *to = p.size.to_string(),
            _ => runs.push((k.clone(), p.size.to_string(), p.size.to_string())),
        }
    }
    match runs.as_slice() {
        [] => NA.to_string(),
        [(k, _, _)] => k.clone(),
        _ => runs
            .iter()
            .map(|(k, from, to)| format!("{k} ({from} to {to})"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}
