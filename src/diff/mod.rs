//! `hwbench diff A.json B.json`: what differs between two reports of the same kind — "it works on
//! machine A and fails on B". Hardware, driver, CUDA and environment for `info` reports; setup and
//! per-epoch costs (as ratios, with changes inside the measured spread called noise) for
//! `train-compare` reports; both, part by part, for bug reports.

pub mod show;
pub mod walk;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::UsageError;
use crate::info::findings::{Finding, Severity};
use crate::redact::Redactor;
use crate::saved::{Kind, Saved};
use crate::train::TrainCompareReport;
use walk::Walk;

pub const SCHEMA_VERSION: u32 = 1;

/// Fields that change from one second to the next on the same machine, by path within an `info`
/// report (`[]` stands for any index); they are not differences.
const VOLATILE: &[&str] = &[
    "cpu.unavailable",
    "memory.available_mib",
    "memory.swap_free_mib",
    "memory.unavailable",
    "os.unavailable",
    "gpu.unavailable",
    "gpu.devices[].memory_used_mib",
    "gpu.devices[].memory_free_mib",
    "gpu.devices[].temperature_c",
    "gpu.devices[].power_draw_w",
    "gpu.devices[].sm_clock_mhz",
    "gpu.devices[].memory_clock_mhz",
    "gpu.devices[].pcie_generation_current",
    "gpu.devices[].pcie_width_current",
    "gpu.devices[].unavailable",
    "cuda_environment.unavailable",
];

/// Parts of a train-compare report that are compared as devices and timings, not field by field.
const MEASURED: &[&str] = &["devices", "verdict", "complete"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    pub schema_version: u32,
    /// Always "diff".
    pub kind: String,
    /// The kind of the two reports compared: "info", "train-compare" or "report".
    pub compared: String,
    pub a: String,
    pub b: String,
    /// Fields whose values differ (timings excluded), the first 10,000.
    pub fields: Vec<FieldDifference>,
    /// Differing fields beyond those listed.
    #[serde(default)]
    pub fields_not_listed: u64,
    /// Per device and sync policy, for train-compare reports.
    pub timings: Vec<TimingDifference>,
    /// Findings that B has and A has not (`appeared`), or the other way round, for info reports.
    #[serde(default)]
    pub findings: Vec<FindingChange>,
    /// True when nothing differs beyond measurement noise.
    pub same: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldDifference {
    /// Where the field is, e.g. "gpu.devices[0].name".
    pub path: String,
    /// `null` when the field is missing from that report.
    pub a: Option<String>,
    pub b: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingChange {
    /// "appeared" (in B only) or "disappeared" (in A only).
    pub change: String,
    pub id: String,
    pub severity: Severity,
    pub subject: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimingDifference {
    pub device: String,
    pub sync_every: u64,
    /// Median per-epoch cost in A and B, µs.
    pub a_us: f64,
    pub b_us: f64,
    /// B / A.
    pub ratio: f64,
    /// True when the two min–max ranges overlap: no change can be claimed.
    pub noise: bool,
}

/// Compares two saved reports of the same kind; with a redactor, identifying values (this
/// machine's, and each report's own hostname, GPU UUIDs and serials) are replaced before they are
/// compared, as `info` would have.
pub fn diff_reports(
    a: &Saved,
    b: &Saved,
    redactor: Option<&Redactor>,
) -> anyhow::Result<DiffReport> {
    if a.kind != b.kind {
        return Err(UsageError::new(format!(
            "cannot compare {} (kind {}) with {} (kind {}): give two reports of the same kind",
            a.name,
            a.kind.name(),
            b.name,
            b.kind.name()
        ))
        .into());
    }
    let (typed_a, typed_b) = (a.typed()?, b.typed()?);
    let redactor = redactor.map(|r| {
        [typed_a.machine(), typed_b.machine()]
            .into_iter()
            .flatten()
            .fold(r.clone(), |r, machine| r.with(machine.secrets()))
    });
    let walk = |skip| Walk {
        skip,
        volatile: VOLATILE,
        redactor: redactor.as_ref(),
    };
    let mut fields = match a.kind {
        // Findings are compared as findings (below), not field by field.
        Kind::Info => walk(&["findings"]).differences(&a.text, &b.text),
        Kind::TrainCompare => walk(MEASURED).differences(&a.text, &b.text),
        Kind::Report => {
            // A bug report holds one of each: compare the parts, their paths prefixed.
            let mut fields = walk(&["info", "train_compare"]).differences(&a.text, &b.text);
            for (part, skip) in [("info", &["findings"][..]), ("train_compare", MEASURED)] {
                let (part_a, part_b) = (
                    walk::member(&a.text, part).unwrap_or("null"),
                    walk::member(&b.text, part).unwrap_or("null"),
                );
                let mut differences = walk(skip).differences(part_a, part_b);
                for difference in &mut differences.listed {
                    difference.path = format!("{part}.{}", difference.path);
                }
                fields.extend(differences);
            }
            fields
        }
    };
    let mut timings = Vec::new();
    if let (Some(train_a), Some(train_b)) = (typed_a.training(), typed_b.training()) {
        let prefix = if a.kind == Kind::Report {
            "train_compare."
        } else {
            ""
        };
        let shown = |text: String| match &redactor {
            Some(redactor) => redactor.text(&text),
            None => text,
        };
        let devices = walk::Differences {
            listed: device_differences(train_a, train_b)
                .into_iter()
                .map(|f| FieldDifference {
                    path: shown(format!("{prefix}{}", f.path)),
                    a: f.a.map(shown),
                    b: f.b.map(shown),
                })
                .filter(|f| f.a != f.b)
                .collect(),
            not_listed: 0,
        };
        fields.extend(devices);
        timings = timing_differences(train_a, train_b);
    }
    let findings = match (typed_a.machine(), typed_b.machine()) {
        (Some(a), Some(b)) => finding_changes(&a.findings, &b.findings),
        _ => Vec::new(),
    };
    let same = fields.listed.is_empty() && findings.is_empty() && timings.iter().all(|t| t.noise);
    Ok(DiffReport {
        schema_version: SCHEMA_VERSION,
        kind: "diff".to_string(),
        compared: a.kind.name().to_string(),
        a: a.name.clone(),
        b: b.name.clone(),
        fields: fields.listed,
        fields_not_listed: fields.not_listed,
        timings,
        findings,
        same,
    })
}

/// Findings by id and subject: those only in B appeared, those only in A disappeared.
fn finding_changes(a: &[Finding], b: &[Finding]) -> Vec<FindingChange> {
    let key = |f: &Finding| (f.id.clone(), f.subject.clone());
    let change = |f: &Finding, change: &str| FindingChange {
        change: change.to_string(),
        id: f.id.clone(),
        severity: f.severity,
        subject: f.subject.clone(),
    };
    let in_a: Vec<_> = a.iter().map(key).collect();
    let in_b: Vec<_> = b.iter().map(key).collect();
    b.iter()
        .filter(|f| !in_a.contains(&key(f)))
        .map(|f| change(f, "appeared"))
        .chain(
            a.iter()
                .filter(|f| !in_b.contains(&key(f)))
                .map(|f| change(f, "disappeared")),
        )
        .collect()
}

/// The paths whose values differ between two (path, value) lists, in path order.
fn differences(a: &[(String, String)], b: &[(String, String)]) -> Vec<FieldDifference> {
    let a_map: BTreeMap<&str, &str> = a.iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
    let b_map: BTreeMap<&str, &str> = b.iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
    let mut paths: Vec<&str> = a_map.keys().chain(b_map.keys()).copied().collect();
    paths.sort_unstable();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let (va, vb) = (a_map.get(path), b_map.get(path));
            (va != vb).then(|| FieldDifference {
                path: path.to_string(),
                a: va.map(|v| v.to_string()),
                b: vb.map(|v| v.to_string()),
            })
        })
        .collect()
}
/// Devices, by label, with their names and outcomes (not timings).
fn device_differences(a: &TrainCompareReport, b: &TrainCompareReport) -> Vec<FieldDifference> {
    let summary = |report: &TrainCompareReport| -> Vec<(String, String)> {
        let text = |v: Option<String>| v.unwrap_or_else(|| "null".to_string());
        report
            .devices
            .iter()
            .flat_map(|d| {
                let label = &d.label;
                [
                    (
                        format!("devices.{label}.name"),
                        text(d.facts.as_ref().and_then(|f| f.name.clone())),
                    ),
                    (
                        format!("devices.{label}.status"),
                        serde_json::to_value(d.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                    ),
                    (
                        format!("devices.{label}.test_accuracy"),
                        text(d.test_accuracy.map(|a| a.to_string())),
                    ),
                ]
            })
            .collect()
    };
    differences(&summary(a), &summary(b))
}

/// Median per-epoch costs of the devices and policies both reports measured.
fn timing_differences(a: &TrainCompareReport, b: &TrainCompareReport) -> Vec<TimingDifference> {
    let mut timings = Vec::new();
    for device_a in &a.devices {
        let Some(device_b) = b.devices.iter().find(|d| d.label == device_a.label) else {
            continue;
        };
        for policy_a in &device_a.policies {
            let Some(sa) = policy_a.per_epoch_us else {
                continue;
            };
            let Some(sb) = device_b
                .policy(policy_a.policy)
                .and_then(|p| p.per_epoch_us)
            else {
                continue;
            };
            timings.push(TimingDifference {
                device: device_a.label.clone(),
                sync_every: policy_a.policy.every,
                a_us: sa.median,
                b_us: sb.median,
                ratio: if sa.median > 0.0 {
                    sb.median / sa.median
                } else {
                    f64::NAN
                },
                // Equal medians are no change even when a hand-edited range is not a range.
                noise: sa.median == sb.median || (sa.min <= sb.max && sb.min <= sa.max),
            });
        }
    }
    timings
}
