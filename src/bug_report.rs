//! `hwbench report`: one document for a bug ticket — the machine (`info`), a quick
//! `train-compare`, a quick `scale`, and the versions of everything involved.
//!
//! Markdown output always fits in a GitHub issue body: when the whole document would pass
//! [`GITHUB_LIMIT`] characters, detail sections are left out from the end (the summary never is)
//! and a line says which, pointing at the JSON form, which is never shortened.

use serde::{Deserialize, Serialize};

use crate::engine::SyncPolicy;
use crate::info::InfoReport;
use crate::readable::spread_micros;
use crate::redact::Redactor;
use crate::render::document::{NA, Pairs};
use crate::render::prometheus::Metric;
use crate::render::{Body, Document, Render, Section};
use crate::scale::ScaleReport;
use crate::train::results::{PolicyResult, TrainCompareReport};

pub const SCHEMA_VERSION: u32 = 1;

/// GitHub's limit on an issue or comment body, in characters.
pub const GITHUB_LIMIT: usize = 65_536;

/// The JSON schema is documented in docs/json-schema.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BugReport {
    pub schema_version: u32,
    /// Always "report".
    pub kind: String,
    pub redacted: bool,
    pub hwbench_version: String,
    pub versions: Versions,
    /// Exactly what `hwbench info --format json` reports.
    pub info: InfoReport,
    /// Exactly what `hwbench train-compare --quick --format json` reports.
    pub train_compare: TrainCompareReport,
    /// Exactly what `hwbench scale --quick --format json` reports (absent in older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleReport>,
}

/// Every version that can explain a difference between two machines' results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Versions {
    pub hwbench: String,
    pub target: String,
    pub rustc: String,
    pub candle: String,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub nvidia_driver: Option<String>,
    /// The newest CUDA version the driver supports.
    pub cuda_driver: Option<String>,
    pub cuda_runtime: Option<String>,
    pub cudnn: Option<String>,
    /// The CUDA companion's build: "CUDA 13.0, kernels for compute capability 8.0 (PTX)".
    pub cuda_companion: Option<String>,
    /// The PyTorch the PyTorch columns ran with (`--with-pytorch`).
    pub pytorch: Option<String>,
}

impl BugReport {
    pub fn new(
        info: InfoReport,
        train_compare: TrainCompareReport,
        scale: Option<ScaleReport>,
    ) -> Self {
        let versions = Versions {
            hwbench: env!("CARGO_PKG_VERSION").to_string(),
            target: env!("HWBENCH_TARGET").to_string(),
            rustc: env!("HWBENCH_RUSTC").to_string(),
            candle: env!("HWBENCH_CANDLE_VERSION").to_string(),
            os: info.os.long_name.clone(),
            kernel: info.os.kernel.clone(),
            nvidia_driver: info.gpu.driver_version.clone(),
            cuda_driver: info.gpu.cuda_driver_version.clone(),
            cuda_runtime: info.cuda_environment.cuda_runtime_version.clone(),
            cudnn: info.cuda_environment.cudnn_version.clone(),
            cuda_companion: info.build.cuda_companion.build.as_ref().map(|b| {
                format!(
                    "CUDA {}, kernels for compute capability {}{}",
                    b.cuda_version,
                    b.compute_capability,
                    if b.ptx { " (PTX)" } else { "" }
                )
            }),
            pytorch: train_compare
                .devices
                .iter()
                .filter_map(|d| d.facts.as_ref()?.framework.as_deref())
                .find_map(|f| f.strip_prefix("PyTorch "))
                .map(str::to_string),
        };
        Self {
            schema_version: SCHEMA_VERSION,
            kind: "report".to_string(),
            redacted: info.redacted,
            hwbench_version: versions.hwbench.clone(),
            versions,
            info,
            train_compare,
            scale,
        }
    }
}

impl BugReport {
    /// Replaces every identifying value: the machine's own, and those `redactor` knows, in both
    /// parts and the versions.
    pub fn redact(&mut self, redactor: &Redactor) {
        let redactor = redactor.clone().with(self.info.secrets());
        self.info.redact(&redactor);
        self.train_compare.redact(&redactor);
        if let Some(scale) = &mut self.scale {
            scale.redact(&redactor);
        }
        // The versions are the machine's facts, copied from its parts; the companion's and
        // PyTorch's came from those programs, and are scrubbed like any outside text.
        for text in [
            &mut self.versions.cuda_companion,
            &mut self.versions.pytorch,
        ] {
            text.iter_mut().for_each(|t| *t = redactor.text(t));
        }
        self.redacted = true;
    }
}

/// Renders `doc`, leaving out detail sections from the end until it is under `limit` characters;
/// a summary that is still too long (a hostile report) is cut at a line, and says so.
pub fn fit_markdown(mut doc: Document, limit: usize) -> String {
    // In document order: each section left out comes before the ones left out earlier.
    let mut left_out: Vec<String> = Vec::new();
    loop {
        let mut text = crate::render::markdown::render(&doc);
        if !left_out.is_empty() {
            text.push_str(&format!(
                "\n_Left out to stay under GitHub's {limit}-character limit: {}. The JSON form (`--format json`) has everything._\n",
                crate::render::truncate(&compact(&left_out), 2000)
            ));
        }
        if text.chars().count() < limit {
            return text;
        }
        match doc.details.pop() {
            Some(section) => left_out.insert(0, section.title),
            None => {
                let note = format!(
                    "\n_Cut here to stay under GitHub's {limit}-character limit. The JSON form (`--format json`) has everything._\n"
                );
                let keep = limit.saturating_sub(note.chars().count() + 1);
                let mut cut: String = text.chars().take(keep).collect();
                cut.truncate(cut.rfind('\n').map_or(0, |i| i + 1));
                cut.push_str(&note);
                return cut;
            }
        }
    }
}

/// Section titles in one line, runs of GPUs as ranges: "GPU 68 to GPU 299, CUDA environment".
fn compact(titles: &[String]) -> String {
    let gpu = |title: &str| title.strip_prefix("GPU ")?.parse::<u64>().ok();
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    let close = |run: &mut Option<(u64, u64)>, parts: &mut Vec<String>| match run.take() {
        Some((first, last)) if first == last => parts.push(format!("GPU {first}")),
        Some((first, last)) => parts.push(format!("GPU {first} to GPU {last}")),
        None => {}
    };
    for title in titles {
        match (gpu(title), run) {
            (Some(n), Some((first, last))) if n == last + 1 => run = Some((first, n)),
            (Some(n), _) => {
                close(&mut run, &mut parts);
                run = Some((n, n));
            }
            (None, _) => {
                close(&mut run, &mut parts);
                parts.push(title.clone());
            }
        }
    }
    close(&mut run, &mut parts);
    parts.join(", ")
}

impl Render for BugReport {
    fn document(&self) -> Document {
        // The machine as its Markdown reads: errors and warnings in view, notes with the details.
        let machine = self.info.markdown_document();
        let training = self.train_compare.document();
        let mut summary: Vec<Section> = machine
            .summary
            .into_iter()
            .map(|s| match s.title.as_str() {
                "Summary" => Section {
                    title: "Machine".to_string(),
                    ..s
                },
                _ => s,
            })
            .collect();
        summary.push(training_summary(&self.train_compare));
        // train-compare's summary is its full grid and its verdict (notes included): the
        // verdict stays in view, the grid joins the details.
        let (grids, verdict): (Vec<Section>, Vec<Section>) = training
            .summary
            .into_iter()
            .partition(|s| matches!(s.body, Body::Grid { .. }));
        summary.extend(verdict);
        let scale = self.scale.as_ref().map(Render::document);
        if let Some(scale) = &scale {
            // The scale run's verdict in view; its grids and devices with the details.
            summary.extend(scale.summary.iter().take(1).map(|s| Section {
                title: "Scale (quick): verdict".to_string(),
                ..s.clone()
            }));
        }
        summary.push(Section::pairs("Versions", versions(&self.versions)));

        let mut details = machine.details;
        details.extend(grids.into_iter().chain(training.details).map(|s| Section {
            title: format!("Training: {}", s.title.to_lowercase()),
            ..s
        }));
        if let Some(scale) = scale {
            details.extend(
                scale
                    .summary
                    .into_iter()
                    .skip(1)
                    .chain(scale.details)
                    .map(|s| Section {
                        title: format!("Scale: {}", s.title),
                        ..s
                    }),
            );
        }
        Document {
            title: format!("hwbench report (hwbench {})", self.hwbench_version),
            summary,
            details,
        }
    }

    /// Fits in a GitHub issue body.
    fn markdown(&self) -> String {
        fit_markdown(self.document(), GITHUB_LIMIT)
    }

    fn metrics(&self) -> Vec<Metric> {
        let mut metrics = self.info.metrics();
        metrics.extend(self.train_compare.metrics());
        if let Some(scale) = &self.scale {
            metrics.extend(scale.metrics());
        }
        metrics
    }
}

/// One row per device: the headline numbers of the quick run.
fn training_summary(report: &TrainCompareReport) -> Section {
    let header = [
        "device",
        "per epoch (no sync)",
        "per epoch (sync every epoch)",
        "final loss",
        "status",
    ]
    .map(String::from)
    .to_vec();
    let rows = report
        .devices
        .iter()
        .map(|d| {
            let per_epoch = |p: Option<&PolicyResult>| {
                p.and_then(|p| p.per_epoch_us.as_ref())
                    .map_or(NA.to_string(), spread_micros)
            };
            vec![
                d.label.clone(),
                per_epoch(d.policy(SyncPolicy::NEVER)),
                per_epoch(d.policy(SyncPolicy::EVERY_EPOCH)),
                d.final_loss.map_or(NA.to_string(), |l| format!("{l:.4}")),
                match &d.reason {
                    Some(reason) => reason.clone(),
                    None => "ok".to_string(),
                },
            ]
        })
        .collect();
    let runs = match report.config.runs {
        Some(runs) if runs.min != runs.max => format!("{} to {}", runs.min, runs.max),
        _ => report.config.repeats.to_string(),
    };
    Section::grid(
        format!(
            "Training (iris MLP, {} epochs, {runs} timed runs each)",
            report.config.epochs
        ),
        header,
        rows,
    )
}

fn versions(v: &Versions) -> Vec<(String, String)> {
    let mut p = Pairs::new();
    p.add("hwbench", format!("{} ({})", v.hwbench, v.target))
        .add("built with", format!("{}, candle {}", v.rustc, v.candle))
        .add(
            "OS",
            format!(
                "{}, kernel {}",
                v.os.as_deref().unwrap_or(NA),
                v.kernel.as_deref().unwrap_or(NA)
            ),
        )
        .opt("NVIDIA driver", v.nvidia_driver.clone(), |d| d)
        .opt("CUDA (driver supports)", v.cuda_driver.clone(), |d| d)
        .opt("CUDA runtime (libcudart)", v.cuda_runtime.clone(), |d| d)
        .opt("cuDNN", v.cudnn.clone(), |d| d)
        .add(
            "CUDA companion",
            v.cuda_companion
                .clone()
                .unwrap_or_else(|| "not available (see \"This build\")".to_string()),
        );
    if let Some(torch) = &v.pytorch {
        p.add("PyTorch", torch.clone());
    }
    p.finish()
}
