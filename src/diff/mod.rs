//! `hwbench diff A.json B.json`: what differs between two reports of the same kind — "it works on
//! machine A and fails on B". Hardware, driver, CUDA and environment for `info` reports; setup and
//! per-epoch costs (as ratios, with changes inside the measured spread called noise) for
//! `train-compare` reports, and per device and ladder point for `scale` reports; every part, part
//! by part, for bug reports.

pub mod show;
pub mod walk;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::UsageError;
use crate::info::findings::{Finding, Severity};
use crate::redact::Redactor;
use crate::saved::{Kind, Saved};
use crate::scale::ScaleReport;
use crate::stats::{self, Comparison, Spread};
use crate::train::results::TrainCompareReport;
pub use walk::{FieldDifference, Walk};

pub const SCHEMA_VERSION: u32 = 1;

/// Fields that change from one second to the next on the same machine, by path within an `info`
/// report (`[]` stands for any index); they are not differences.
const VOLATILE: &[&str] = &[
    // The clock a CPU runs at changes every second: not a difference between machines (nor the
    // peak reckoned from a measured clock).
    "cpu.current_mhz",
    "cpu.measured_mhz",
    "cpu.fp32_peak_gflops",
    "cpu.fp32_peak_basis",
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

/// The parts of a scale report compared as timings (or not at all), not field by field.
const SCALE_MEASURED: &[&str] = &["devices", "verdict", "complete", "crossovers"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// True when nothing differs beyond measurement noise and the threshold.
    pub same: bool,
    /// Scale points measured in one report and over budget in the other, where the measured epoch
    /// took at least half of `--max-epoch-seconds`: a point at the budget's edge, which noise
    /// decides; listed, not counted as a difference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_edge: Vec<String>,
    /// True when the two reports hold the same JSON (then nothing else is listed).
    #[serde(default)]
    pub identical: bool,
    /// The smallest change of a timing that counts (0.1 = 10%), on top of being beyond both
    /// runs' noise.
    #[serde(default)]
    pub threshold: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FindingChange {
    /// "appeared" (in B only) or "disappeared" (in A only).
    pub change: String,
    pub id: String,
    pub severity: Severity,
    pub subject: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimingDifference {
    pub device: String,
    pub sync_every: u64,
    /// The ladder point, for scale reports (whose epochs never sync: `sync_every` 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Median per-epoch cost in A and B, µs.
    pub a_us: f64,
    pub b_us: f64,
    /// B / A.
    pub ratio: f64,
    /// B's fastest run / A's: what a change is judged by (interference on a shared machine slows
    /// a run's median, not the machine's fastest runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastest_ratio: Option<f64>,
    /// True when no change can be claimed by `stats::compare` at the threshold: the faster
    /// report's fastest runs do not all beat the other's fastest beyond it (older reports without
    /// their runs: the medians' intervals overlap, or the medians differ by less).
    pub noise: bool,
}

impl TimingDifference {
    /// Whether the median moved beyond `threshold` but the fastest run did not: interference
    /// while one of the runs ran (it only adds time), not a change.
    pub fn interference(&self, threshold: f64) -> bool {
        let beyond = |ratio| stats::apart_beyond(ratio, threshold);
        self.noise && beyond(self.ratio) && self.fastest_ratio.is_some_and(|f| !beyond(f))
    }
}

/// The default `--threshold`: a timing must change by more than this (and beyond both runs'
/// noise) to count.
pub const THRESHOLD: f64 = 0.10;

/// Compares two saved reports of the same kind; with a redactor, identifying values (this
/// machine's, and each report's own hostname, GPU UUIDs and serials) are replaced before they are
/// compared, as `info` would have.
pub fn diff_reports(
    a: &Saved,
    b: &Saved,
    redactor: Option<&Redactor>,
    threshold: f64,
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
    let shown_name = |name: &str| match redactor {
        Some(redactor) => redactor.text(name),
        None => name.to_string(),
    };
    if same_json(&a.text, &b.text) {
        return Ok(DiffReport {
            schema_version: SCHEMA_VERSION,
            kind: "diff".to_string(),
            compared: a.kind.name().to_string(),
            a: shown_name(&a.name),
            b: shown_name(&b.name),
            fields: Vec::new(),
            fields_not_listed: 0,
            timings: Vec::new(),
            findings: Vec::new(),
            budget_edge: Vec::new(),
            same: true,
            identical: true,
            threshold,
        });
    }
    let redactor = redactor.map(|r| {
        [typed_a.machine(), typed_b.machine()]
            .into_iter()
            .flatten()
            .fold(r.clone(), |r, machine| r.with(machine.secrets()))
    });
    let field_names = walk::FieldNames::of(vec![&typed_a, &typed_b]);
    let walk = |skip| Walk {
        skip,
        volatile: VOLATILE,
        redactor: redactor.as_ref(),
        field_names: &field_names,
    };
    let mut fields = match a.kind {
        // Findings are compared as findings (below), not field by field.
        Kind::Info => walk(&["findings"]).differences(&a.text, &b.text),
        Kind::TrainCompare => walk(MEASURED).differences(&a.text, &b.text),
        Kind::Scale => walk(SCALE_MEASURED).differences(&a.text, &b.text),
        Kind::Report => {
            // A bug report holds one of each: compare the parts, their paths prefixed.
            let mut fields =
                walk(&["info", "train_compare", "scale"]).differences(&a.text, &b.text);
            for (part, skip) in [
                ("info", &["findings"][..]),
                ("train_compare", MEASURED),
                ("scale", SCALE_MEASURED),
            ] {
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
    let shown = |text: String| match &redactor {
        Some(redactor) => redactor.text(&text),
        None => text,
    };
    let prefix = |part: &str| {
        if a.kind == Kind::Report {
            format!("{part}.")
        } else {
            String::new()
        }
    };
    // Devices by label, with their names and outcomes (timings come next).
    let mut devices = Vec::new();
    let mut timings = Vec::new();
    if let (Some(train_a), Some(train_b)) = (typed_a.training(), typed_b.training()) {
        devices.extend(with_prefix(
            device_differences(train_a, train_b),
            &prefix("train_compare"),
        ));
        timings = timing_differences(train_a, train_b, threshold);
    }
    let mut budget_edge = Vec::new();
    if let (Some(scale_a), Some(scale_b)) = (typed_a.scaling(), typed_b.scaling()) {
        let (listed, edge) = at_budget_edge(
            scale_device_differences(scale_a, scale_b),
            [scale_a, scale_b],
        );
        budget_edge = edge;
        devices.extend(with_prefix(listed, &prefix("scale")));
        timings.extend(scale_timing_differences(scale_a, scale_b, threshold));
    }
    fields.extend(walk::Differences {
        listed: devices
            .into_iter()
            .map(|f| FieldDifference {
                path: walk::shown_path(&f.path, redactor.as_ref(), &field_names),
                a: f.a.map(shown),
                b: f.b.map(shown),
            })
            .filter(|f| f.a != f.b)
            .collect(),
        not_listed: 0,
    });
    let findings = match (typed_a.machine(), typed_b.machine()) {
        (Some(a), Some(b)) => finding_changes(&a.findings, &b.findings),
        _ => Vec::new(),
    };
    let same = fields.listed.is_empty() && findings.is_empty() && timings.iter().all(|t| t.noise);
    Ok(DiffReport {
        schema_version: SCHEMA_VERSION,
        kind: "diff".to_string(),
        compared: a.kind.name().to_string(),
        a: shown(a.name.clone()),
        b: shown(b.name.clone()),
        fields: fields.listed,
        fields_not_listed: fields.not_listed,
        timings,
        findings,
        budget_edge,
        same,
        identical: false,
        threshold,
    })
}

/// Whether two texts hold the same JSON value (the same report, however it was spaced).
fn same_json(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (
                serde_json::from_str::<serde_json::Value>(a),
                serde_json::from_str::<serde_json::Value>(b),
            ),
            (Ok(x), Ok(y)) if x == y
        )
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
fn with_prefix(differences: Vec<FieldDifference>, prefix: &str) -> Vec<FieldDifference> {
    differences
        .into_iter()
        .map(|f| FieldDifference {
            path: format!("{prefix}{}", f.path),
            ..f
        })
        .collect()
}

/// The JSON name of a status ("not_run").
fn status_name(status: impl Serialize) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Scale columns, by label, with their names, outcomes and how far up the ladder they got.
fn scale_device_differences(a: &ScaleReport, b: &ScaleReport) -> Vec<FieldDifference> {
    let summary = |report: &ScaleReport| -> Vec<(String, String)> {
        report
            .devices
            .iter()
            .flat_map(|c| {
                let label = &c.label;
                let name = c.facts.as_ref().and_then(|f| f.name.clone());
                let mut fields = vec![
                    (
                        format!("devices.{label}.name"),
                        name.unwrap_or_else(|| "null".to_string()),
                    ),
                    (format!("devices.{label}.status"), status_name(c.status)),
                ];
                fields.extend(c.points.iter().map(|p| {
                    (
                        format!("devices.{label}.points.{}.status", p.size),
                        status_name(p.status),
                    )
                }));
                fields
            })
            .collect()
    };
    differences(&summary(a), &summary(b))
}

/// Splits point status differences into real ones and those at the budget's edge (see
/// [`DiffReport::budget_edge`]).
fn at_budget_edge(
    differences: Vec<FieldDifference>,
    reports: [&ScaleReport; 2],
) -> (Vec<FieldDifference>, Vec<String>) {
    let mut edge = Vec::new();
    let listed = differences
        .into_iter()
        .filter(|f| {
            let statuses = [f.a.as_deref(), f.b.as_deref()];
            let Some(measured) = statuses.iter().position(|s| *s == Some("measured")) else {
                return true;
            };
            if statuses[1 - measured] != Some("over_budget") {
                return true;
            }
            let report = reports[measured];
            let near_cap = report.devices.iter().any(|c| {
                c.points.iter().any(|p| {
                    f.path == format!("devices.{}.points.{}.status", c.label, p.size)
                        && p.median_s()
                            .is_some_and(|s| s >= report.config.max_epoch_s / 2.0)
                })
            });
            if near_cap {
                let side = ["A", "B"];
                edge.push(format!(
                    "{}: measured in {}, over budget in {}",
                    f.path
                        .trim_start_matches("devices.")
                        .trim_end_matches(".status")
                        .replace(".points.", " at "),
                    side[measured],
                    side[1 - measured]
                ));
            }
            !near_cap
        })
        .collect();
    (listed, edge)
}

/// Median per-epoch costs of the columns and ladder points both reports measured.
fn scale_timing_differences(
    a: &ScaleReport,
    b: &ScaleReport,
    threshold: f64,
) -> Vec<TimingDifference> {
    let mut timings = Vec::new();
    for column_a in &a.devices {
        let Some(column_b) = b.column(&column_a.label) else {
            continue;
        };
        for point_a in &column_a.points {
            let Some(point_b) = column_b.points.iter().find(|p| p.size == point_a.size) else {
                continue;
            };
            if let (Some(sa), Some(sb)) = (&point_a.epoch_s, &point_b.epoch_s) {
                let mut timing = timing(&column_a.label, 0, sa, sb, 1e6, threshold);
                timing.size = Some(point_a.size.to_string());
                timings.push(timing);
            }
        }
    }
    timings
}

/// One device's median cost in A and B, in µs (`to_us` converts the spreads' unit): a change only
/// when B is measurably slower or faster than A (`stats::compare` at `threshold`).
fn timing(
    device: &str,
    sync_every: u64,
    a: &Spread,
    b: &Spread,
    to_us: f64,
    threshold: f64,
) -> TimingDifference {
    // Only two positive, finite times make a ratio (a saved report can hold anything).
    let comparable = [a.median, b.median]
        .iter()
        .all(|t| t.is_finite() && *t > 0.0);
    TimingDifference {
        device: device.to_string(),
        sync_every,
        size: None,
        a_us: a.median * to_us,
        b_us: b.median * to_us,
        ratio: if comparable {
            b.median / a.median
        } else {
            f64::NAN
        },
        fastest_ratio: Some(b.min / a.min).filter(|r| comparable && r.is_finite()),
        noise: !comparable || matches!(stats::compare(b, a, threshold), Comparison::Same { .. }),
    }
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
                    (format!("devices.{label}.status"), status_name(d.status)),
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
fn timing_differences(
    a: &TrainCompareReport,
    b: &TrainCompareReport,
    threshold: f64,
) -> Vec<TimingDifference> {
    let mut timings = Vec::new();
    for device_a in &a.devices {
        let Some(device_b) = b.devices.iter().find(|d| d.label == device_a.label) else {
            continue;
        };
        for policy_a in &device_a.policies {
            let Some(sa) = &policy_a.per_epoch_us else {
                continue;
            };
            let Some(sb) = device_b
                .policy(policy_a.policy)
                .and_then(|p| p.per_epoch_us.as_ref())
            else {
                continue;
            };
            timings.push(timing(
                &device_a.label,
                policy_a.policy.every,
                sa,
                sb,
                1.0,
                threshold,
            ));
        }
    }
    timings
}
