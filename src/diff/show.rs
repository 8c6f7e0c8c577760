//! How a [`DiffReport`] reads: the differing fields, then per-epoch costs as ratios.

use super::{DiffReport, TimingDifference};
use crate::engine::SyncPolicy;
use crate::readable::{factor, micros, percent};
use crate::render::prometheus::Metric;
use crate::render::{Document, Render, Section};

/// Per-epoch costs in A and B, with their change.
fn timing_grid(title: &str, timings: &[&TimingDifference], threshold: f64) -> Section {
    let rows = timings
        .iter()
        .map(|t| {
            let change = if !t.ratio.is_finite() {
                "not comparable (a time is not a positive number)".to_string()
            } else if t.noise {
                match t.fastest_ratio {
                    Some(fastest) if t.interference(threshold) => format!(
                        "none measurable ({}, fastest run {})",
                        factor(t.ratio),
                        factor(fastest)
                    ),
                    _ => format!("none measurable ({})", factor(t.ratio)),
                }
            } else if t.ratio > 1.0 {
                format!("B {} slower", factor(t.ratio))
            } else {
                format!("B {} faster", factor(1.0 / t.ratio))
            };
            let policy = match &t.size {
                Some(size) => format!("size {size}"),
                None => SyncPolicy {
                    every: t.sync_every,
                }
                .label(),
            };
            vec![
                t.device.clone(),
                policy,
                micros(t.a_us),
                micros(t.b_us),
                change,
            ]
        })
        .collect();
    Section::grid(
        title,
        ["device", "policy or size", "A", "B", "change"]
            .map(String::from)
            .to_vec(),
        rows,
    )
}

impl Render for DiffReport {
    fn document(&self) -> Document {
        if self.identical {
            return Document {
                title: format!("hwbench diff: {} and {} are identical.", self.a, self.b),
                summary: Vec::new(),
                details: Vec::new(),
            };
        }
        let changed: Vec<&TimingDifference> = self.timings.iter().filter(|t| !t.noise).collect();
        let unchanged: Vec<&TimingDifference> = self.timings.iter().filter(|t| t.noise).collect();
        let interfered = unchanged
            .iter()
            .filter(|t| t.interference(self.threshold))
            .count();
        let mut result = vec![if self.same {
            format!(
                "No difference between {} and {} beyond measurement noise and the {} threshold.",
                self.a,
                self.b,
                percent(self.threshold)
            )
        } else {
            format!(
                "{} field(s) differ, {} finding(s) appeared or disappeared, and {} timing(s) changed beyond both runs' noise and the {} threshold.",
                self.fields.len() as u64 + self.fields_not_listed,
                self.findings.len(),
                changed.len(),
                percent(self.threshold)
            )
        }];
        if interfered > 0 {
            result.push(format!(
                "{interfered} timing(s) moved beyond the threshold in the median but not in the fastest run: interference while one of the runs ran (another tenant, a busy core), not a change of the machine or the code."
            ));
        }
        let mut summary = vec![Section::text("Result", result)];
        if self.fields_not_listed > 0 {
            summary.push(Section::text(
                "Not listed",
                vec![format!(
                    "The first {} differing fields are listed; {} more differ.",
                    self.fields.len(),
                    self.fields_not_listed
                )],
            ));
        }
        if !self.fields.is_empty() {
            let rows = self
                .fields
                .iter()
                .map(|f| {
                    let show =
                        |v: &Option<String>| v.clone().unwrap_or_else(|| "(missing)".to_string());
                    vec![f.path.clone(), show(&f.a), show(&f.b)]
                })
                .collect();
            summary.push(Section::grid(
                "Fields that differ",
                vec!["field".into(), "A".into(), "B".into()],
                rows,
            ));
        }
        if !self.findings.is_empty() {
            let rows = self
                .findings
                .iter()
                .map(|f| {
                    vec![
                        f.change.clone(),
                        f.severity.name().to_string(),
                        f.subject.clone(),
                        f.id.clone(),
                    ]
                })
                .collect();
            summary.push(Section::grid(
                "Findings that differ (B against A)",
                ["change", "severity", "subject", "finding"]
                    .map(String::from)
                    .to_vec(),
                rows,
            ));
        }
        let mut details = Vec::new();
        if !self.budget_edge.is_empty() {
            details.push(Section::text(
                "At the budget's edge (not counted as differences)",
                self.budget_edge.clone(),
            ));
        }
        if !changed.is_empty() {
            summary.push(timing_grid(
                "Per-epoch cost that changed (median)",
                &changed,
                self.threshold,
            ));
        }
        if !unchanged.is_empty() {
            details.push(timing_grid(
                "Per-epoch cost within noise or the threshold (median)",
                &unchanged,
                self.threshold,
            ));
        }
        Document {
            title: format!("hwbench diff — {} reports", self.compared),
            summary,
            details: details
                .into_iter()
                .chain([Section::pairs(
                    "Reports",
                    vec![
                        ("A".to_string(), self.a.clone()),
                        ("B".to_string(), self.b.clone()),
                        ("threshold".to_string(), percent(self.threshold)),
                    ],
                )])
                .collect(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![
            Metric::new(
                "diff_fields_differing",
                "Fields that differ between the two reports.",
            )
            .sample(
                &[],
                Some((self.fields.len() as u64 + self.fields_not_listed) as f64),
            ),
            Metric::new(
                "diff_timings_changed",
                "Per-epoch costs that changed beyond both runs' noise and the threshold.",
            )
            .sample(
                &[],
                Some(self.timings.iter().filter(|t| !t.noise).count() as f64),
            ),
        ]
    }
}
