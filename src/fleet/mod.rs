//! `hwbench fleet FILES|DIR`: many JSON reports from a cluster → groups of identical nodes, and the
//! nodes that stand out (another driver, fewer GPUs, a slower per-epoch cost than their group).

pub mod show;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::UsageError;

pub const SCHEMA_VERSION: u32 = 1;

/// A node this much slower per epoch than its group's median is an outlier.
pub const SLOW_FACTOR: f64 = 1.25;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    pub schema_version: u32,
    /// Always "fleet".
    pub kind: String,
    /// The kind of the reports read: "info" or "train-compare".
    pub reports_kind: String,
    pub nodes: usize,
    /// Nodes with the same hardware, driver and software, largest group first.
    pub groups: Vec<NodeGroup>,
    pub outliers: Vec<Outlier>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeGroup {
    /// What the nodes share, e.g. {"cpu": "…", "gpus": "8 × NVIDIA H100 80GB HBM3", "driver": "580.95.05"}.
    pub signature: BTreeMap<String, String>,
    /// Node names (the report files' names without `.json`).
    pub nodes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outlier {
    pub node: String,
    /// Why, in one line each: "driver 570.86.15 (most nodes: 580.95.05)".
    pub reasons: Vec<String>,
}

/// The report files named, directories expanded to the `*.json` files in them (sorted).
pub fn report_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| UsageError::new(format!("cannot read {}: {e}", input.display())))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        return Err(
            UsageError::new("no reports found: give JSON files or folders holding them").into(),
        );
    }
    Ok(files)
}

fn node_name(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

pub fn analyse(files: &[PathBuf]) -> anyhow::Result<FleetReport> {
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        let report = crate::diff::load(file)?;
        reports.push((node_name(file), report, file.display().to_string()));
    }
    analyse_reports(&reports)
}

/// The fleet of `reports`, each (node name, report checked by `diff::parse`, file name).
pub fn analyse_reports(reports: &[(String, Value, String)]) -> anyhow::Result<FleetReport> {
    if reports.is_empty() {
        return Err(
            UsageError::new("no reports found: give JSON files or folders holding them").into(),
        );
    }
    let kind = reports[0].1["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if kind == "report" {
        return Err(UsageError::new(format!(
            "{} is a bug report (hwbench report); fleet reads info or train-compare reports: make them with `hwbench info --format json` on each node",
            reports[0].2
        ))
        .into());
    }
    if let Some((_, other, file)) = reports.iter().find(|(_, r, _)| r["kind"] != kind.as_str()) {
        return Err(UsageError::new(format!(
            "{file} is a {} report, but {} is a {kind} report: give reports of one kind",
            other["kind"].as_str().unwrap_or("?"),
            reports[0].2
        ))
        .into());
    }

    let signatures: Vec<(String, BTreeMap<String, String>)> = reports
        .iter()
        .map(|(node, report, _)| (node.clone(), signature(report)))
        .collect();
    let mut groups: Vec<NodeGroup> = Vec::new();
    for (node, signature) in &signatures {
        match groups.iter_mut().find(|g| &g.signature == signature) {
            Some(group) => group.nodes.push(node.clone()),
            None => groups.push(NodeGroup {
                signature: signature.clone(),
                nodes: vec![node.clone()],
            }),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.nodes.len()));

    let mut outliers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Against the most common value of each field, across the whole fleet.
    if groups.len() > 1 {
        let fields: Vec<&String> = groups[0].signature.keys().collect();
        for field in fields {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, s) in &signatures {
                *counts
                    .entry(s.get(field).map_or("", String::as_str))
                    .or_default() += 1;
            }
            let (common, _) = counts
                .iter()
                .max_by_key(|(_, n)| **n)
                .expect("one node at least");
            for (node, s) in &signatures {
                let value = s.get(field).map_or("", String::as_str);
                if value != *common {
                    outliers
                        .entry(node.clone())
                        .or_default()
                        .push(format!("{field} {value} (most nodes: {common})"));
                }
            }
        }
    }
    if kind == "train-compare" {
        slow_nodes(reports, &signatures, &mut outliers);
    }
    Ok(FleetReport {
        schema_version: SCHEMA_VERSION,
        kind: "fleet".to_string(),
        reports_kind: kind,
        nodes: reports.len(),
        groups,
        outliers: outliers
            .into_iter()
            .map(|(node, reasons)| Outlier { node, reasons })
            .collect(),
    })
}

/// What makes two nodes the same kind of node.
fn signature(report: &Value) -> BTreeMap<String, String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "unknown".to_string(),
        other => other.to_string(),
    };
    let mut s = BTreeMap::new();
    if report["kind"] == "info" {
        s.insert("cpu".into(), text(&report["cpu"]["model_name"]));
        s.insert("usable CPUs".into(), text(&report["cpu"]["usable_cpus"]));
        let gib = report["memory"]["total_mib"]
            .as_f64()
            .map_or("unknown".into(), |m| format!("{:.0} GiB", m / 1024.0));
        s.insert("memory".into(), gib);
        let gpus: Vec<String> = report["gpu"]["devices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| text(&g["name"]))
            .collect();
        let mut counted: BTreeMap<&str, usize> = BTreeMap::new();
        for name in &gpus {
            *counted.entry(name).or_default() += 1;
        }
        let gpus = counted
            .iter()
            .map(|(name, n)| format!("{n} × {name}"))
            .collect::<Vec<_>>()
            .join(", ");
        s.insert(
            "GPUs".into(),
            if gpus.is_empty() { "none".into() } else { gpus },
        );
        s.insert("driver".into(), text(&report["gpu"]["driver_version"]));
        s.insert(
            "CUDA (driver)".into(),
            text(&report["gpu"]["cuda_driver_version"]),
        );
        s.insert("hwbench".into(), text(&report["build"]["hwbench_version"]));
    } else {
        let devices: Vec<String> = crate::diff::devices(report)
            .map(|d| format!("{} ({})", text(&d["label"]), text(&d["facts"]["name"])))
            .collect();
        s.insert("devices".into(), devices.join(", "));
        s.insert("epochs".into(), text(&report["config"]["epochs"]));
        s.insert("hwbench".into(), text(&report["hwbench_version"]));
    }
    s
}

/// The headline per-epoch cost of every device of a train-compare report, by label.
fn per_epoch(report: &Value) -> Vec<(String, f64)> {
    crate::diff::devices(report)
        .filter_map(|d| {
            let policies = d["policies"].as_array()?;
            let headline = policies
                .iter()
                .find(|p| p["policy"] == 0)
                .or(policies.first())?;
            Some((
                d["label"].as_str()?.to_string(),
                headline["per_epoch_us"]["median"].as_f64()?,
            ))
        })
        .collect()
}

/// Nodes whose per-epoch cost on a device is well above the median of their group.
fn slow_nodes(
    reports: &[(String, Value, String)],
    signatures: &[(String, BTreeMap<String, String>)],
    outliers: &mut BTreeMap<String, Vec<String>>,
) {
    let mut members: BTreeMap<&BTreeMap<String, String>, Vec<usize>> = BTreeMap::new();
    for (i, (_, signature)) in signatures.iter().enumerate() {
        members.entry(signature).or_default().push(i);
    }
    for indices in members.values().filter(|m| m.len() >= 3) {
        let costs: Vec<Vec<(String, f64)>> =
            indices.iter().map(|&i| per_epoch(&reports[i].1)).collect();
        let mut by_label: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (label, cost) in costs.iter().flatten() {
            by_label.entry(label).or_default().push(*cost);
        }
        let medians: BTreeMap<&str, f64> = by_label
            .into_iter()
            .map(|(label, mut list)| {
                list.sort_by(f64::total_cmp);
                (label, list[list.len() / 2])
            })
            .collect();
        for (&i, node_costs) in indices.iter().zip(&costs) {
            for (label, cost) in node_costs {
                let median = medians[label.as_str()];
                if *cost > median * SLOW_FACTOR {
                    outliers.entry(reports[i].0.clone()).or_default().push(format!(
                        "{label} {cost:.1} µs per epoch, {:.2}× its group's median ({median:.1} µs)",
                        cost / median
                    ));
                }
            }
        }
    }
}
