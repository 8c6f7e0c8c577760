//! `hwbench diff A.json B.json`: what differs between two reports of the same kind — "it works on
//! machine A and fails on B". Hardware, driver, CUDA and environment for `info` reports; setup and
//! per-epoch costs (as ratios, with changes inside the measured spread called noise) for
//! `train-compare` reports.

pub mod show;

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::UsageError;

pub const SCHEMA_VERSION: u32 = 1;

/// Fields that change from one second to the next on the same machine; they are not differences.
const VOLATILE: &[&str] = &[
    "available_mib",
    "swap_free_mib",
    "memory_used_mib",
    "memory_free_mib",
    "temperature_c",
    "power_draw_w",
    "sm_clock_mhz",
    "memory_clock_mhz",
    "pcie_generation_current",
    "pcie_width_current",
    "unavailable",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    pub schema_version: u32,
    /// Always "diff".
    pub kind: String,
    /// The kind of the two reports compared: "info", "train-compare" or "report".
    pub compared: String,
    pub a: String,
    pub b: String,
    /// Fields whose values differ (timings excluded).
    pub fields: Vec<FieldDifference>,
    /// Per device and sync policy, for train-compare reports.
    pub timings: Vec<TimingDifference>,
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

/// Reads and checks one report file: JSON, a known schema version, a kind hwbench can compare.
pub fn load(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(format!("cannot read {}: {e}", path.display())))?;
    parse(&path.display().to_string(), &text)
}

/// Checks the text of one report, called `name` in messages (what [`load`] does after reading).
pub fn parse(name: &str, text: &str) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| UsageError::new(format!("{name} is not a hwbench JSON report: {e}")))?;
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let version = value["schema_version"].as_u64();
    let known = match kind.as_str() {
        "info" => u64::from(crate::info::SCHEMA_VERSION),
        "train-compare" => u64::from(crate::train::compare::SCHEMA_VERSION),
        "report" => u64::from(crate::report::SCHEMA_VERSION),
        _ => {
            return Err(UsageError::new(format!(
                "{name} is not a hwbench report (kind {kind:?}): give the --format json output of info, train-compare or report"
            ))
            .into());
        }
    };
    match version {
        Some(v) if v <= known => Ok(value),
        Some(v) => Err(UsageError::new(format!(
            "{name} uses schema version {v}, newer than this hwbench understands ({known}); upgrade hwbench"
        ))
        .into()),
        None => Err(UsageError::new(format!("{name} has no schema_version")).into()),
    }
}

pub fn compare(a_path: &Path, b_path: &Path) -> anyhow::Result<DiffReport> {
    let a = load(a_path)?;
    let b = load(b_path)?;
    compare_values(
        (&a_path.display().to_string(), &a),
        (&b_path.display().to_string(), &b),
    )
}

/// Compares two reports already read (and checked by [`parse`]), each with its name.
pub fn compare_values(
    (a_name, a): (&str, &Value),
    (b_name, b): (&str, &Value),
) -> anyhow::Result<DiffReport> {
    let (kind_a, kind_b) = (
        a["kind"].as_str().unwrap_or(""),
        b["kind"].as_str().unwrap_or(""),
    );
    if kind_a != kind_b {
        return Err(UsageError::new(format!(
            "cannot compare {a_name} (kind {kind_a}) with {b_name} (kind {kind_b}): give two reports of the same kind"
        ))
        .into());
    }
    let (fields, timings) = if kind_a == "report" {
        // A bug report holds one of each: compare the parts, their paths prefixed.
        let mut fields = field_differences(a, b, &["info", "train_compare"]);
        fields.extend(prefixed(
            "info",
            field_differences(&a["info"], &b["info"], &[]),
        ));
        let (train_fields, timings) = train_differences(&a["train_compare"], &b["train_compare"]);
        fields.extend(prefixed("train_compare", train_fields));
        (fields, timings)
    } else if kind_a == "info" {
        (field_differences(a, b, &[]), Vec::new())
    } else {
        train_differences(a, b)
    };
    let same = fields.is_empty() && timings.iter().all(|t| t.noise);
    Ok(DiffReport {
        schema_version: SCHEMA_VERSION,
        kind: "diff".to_string(),
        compared: kind_a.to_string(),
        a: a_name.to_string(),
        b: b_name.to_string(),
        fields,
        timings,
        same,
    })
}

/// Timings are compared as ratios; everything else field by field.
fn train_differences(a: &Value, b: &Value) -> (Vec<FieldDifference>, Vec<TimingDifference>) {
    let skip = ["devices", "verdict", "complete"];
    let mut fields = field_differences(a, b, &skip);
    fields.extend(device_differences(a, b));
    (fields, timing_differences(a, b))
}

fn prefixed(prefix: &str, fields: Vec<FieldDifference>) -> Vec<FieldDifference> {
    fields
        .into_iter()
        .map(|f| FieldDifference {
            path: format!("{prefix}.{}", f.path),
            ..f
        })
        .collect()
}

/// Every leaf of a JSON document as (path, value), volatile fields and `skip` left out.
fn flatten(value: &Value, path: &str, skip: &[&str], out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if VOLATILE.contains(&key.as_str())
                    || (path.is_empty() && skip.contains(&key.as_str()))
                {
                    continue;
                }
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, &child_path, skip, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(child, &format!("{path}[{i}]"), skip, out);
            }
        }
        Value::Null => out.push((path.to_string(), "null".to_string())),
        Value::String(s) => out.push((path.to_string(), s.clone())),
        other => out.push((path.to_string(), other.to_string())),
    }
}

fn field_differences(a: &Value, b: &Value, skip: &[&str]) -> Vec<FieldDifference> {
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    flatten(a, "", skip, &mut fa);
    flatten(b, "", skip, &mut fb);
    differences(&fa, &fb)
}

/// The paths whose values differ between two (path, value) lists, in path order.
fn differences(a: &[(String, String)], b: &[(String, String)]) -> Vec<FieldDifference> {
    let a_map: std::collections::BTreeMap<&str, &str> =
        a.iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
    let b_map: std::collections::BTreeMap<&str, &str> =
        b.iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
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

/// The `devices` of a train-compare report (none for other kinds).
pub fn devices(report: &Value) -> impl Iterator<Item = &Value> {
    report["devices"].as_array().into_iter().flatten()
}

/// Devices, by label, with their names and outcomes (not timings).
fn device_differences(a: &Value, b: &Value) -> Vec<FieldDifference> {
    let summary = |report: &Value| -> Vec<(String, String)> {
        devices(report)
            .flat_map(|d| {
                let label = d["label"].as_str().unwrap_or("?").to_string();
                [
                    (
                        format!("devices.{label}.name"),
                        d["facts"]["name"].to_string(),
                    ),
                    (format!("devices.{label}.status"), d["status"].to_string()),
                    (
                        format!("devices.{label}.test_accuracy"),
                        d["test_accuracy"].to_string(),
                    ),
                ]
            })
            .collect()
    };
    differences(&summary(a), &summary(b))
}

fn timing_differences(a: &Value, b: &Value) -> Vec<TimingDifference> {
    let spreads = |report: &Value| -> Vec<(String, u64, f64, f64, f64)> {
        devices(report)
            .flat_map(|d| {
                let label = d["label"].as_str().unwrap_or("?").to_string();
                d["policies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(move |p| {
                        let s = &p["per_epoch_us"];
                        Some((
                            label.clone(),
                            p["policy"].as_u64()?,
                            s["min"].as_f64()?,
                            s["median"].as_f64()?,
                            s["max"].as_f64()?,
                        ))
                    })
            })
            .collect()
    };
    let sb = spreads(b);
    spreads(a)
        .into_iter()
        .filter_map(|(device, every, a_min, a_med, a_max)| {
            let &(_, _, b_min, b_med, b_max) =
                sb.iter().find(|(d, e, ..)| *d == device && *e == every)?;
            Some(TimingDifference {
                device,
                sync_every: every,
                a_us: a_med,
                b_us: b_med,
                ratio: if a_med > 0.0 { b_med / a_med } else { f64::NAN },
                // Equal medians are no change even when a hand-edited range is not a range.
                noise: a_med == b_med || (a_min <= b_max && b_min <= a_max),
            })
        })
        .collect()
}
