//! `hwbench fleet FILES|DIR`: many JSON reports from a cluster → groups of identical nodes, and the
//! nodes that stand out (another driver, fewer GPUs, a slower per-epoch cost than their group — at
//! any ladder point, for scale reports).

pub mod show;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::measured::DeviceFacts;
use crate::error::UsageError;
use crate::info::InfoReport;
use crate::info::findings::{Finding, Severity};
use crate::readable::{factor, micros};
use crate::redact::{Redactor, outside_line};
use crate::saved::{self, Kind, Saved, Typed};
use crate::scale::ScaleReport;
use crate::stats::{Comparison, Spread, compare};
use crate::train::results::TrainCompareReport;

pub const SCHEMA_VERSION: u32 = 1;

/// A node this much slower per epoch than the rest of its group — by `stats::compare`'s test on
/// the fastest runs: the group's fastest runs, pooled, all beat its fastest by this much — is an
/// outlier.
pub const SLOW_FACTOR: f64 = 1.25;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FleetReport {
    pub schema_version: u32,
    /// Always "fleet".
    pub kind: String,
    /// The kind of the reports read: "info", "train-compare" or "scale".
    pub reports_kind: String,
    pub nodes: usize,
    /// Nodes with the same hardware, driver and software, largest group first.
    pub groups: Vec<NodeGroup>,
    pub outliers: Vec<Outlier>,
    /// Fields on which no value is held by more nodes than every other, one line each: no node is
    /// an outlier on them.
    #[serde(default)]
    pub no_majority: Vec<String>,
    /// The nodes with findings of severity error, and which (info reports).
    #[serde(default)]
    pub nodes_with_errors: Vec<Outlier>,
    /// Files that could not be read as reports, with why; the exit code is 1 when there are any.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeGroup {
    /// What the nodes share, e.g. {"cpu": "…", "gpus": "8 × NVIDIA H100 80GB HBM3", "driver": "580.95.05"}.
    pub signature: BTreeMap<String, String>,
    /// Node names (the report files' names without `.json`; their paths when two share a name).
    pub nodes: Vec<String>,
    /// How many of the group's nodes have each finding, by id (info reports).
    #[serde(default)]
    pub findings: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Outlier {
    pub node: String,
    /// Why, in one line each: "driver 570.86.15 (most nodes: 580.95.05)".
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

/// How deep folders are searched for reports.
const FOLDER_DEPTH: usize = 16;

/// The report files named, and the `*.json` regular files in the folders named and their
/// subfolders (links to folders not followed; pipes and devices skipped), sorted per folder.
/// Every report file the inputs name, and the folders too deep to search (each a [`Skipped`]).
pub fn report_files(inputs: &[PathBuf]) -> anyhow::Result<(Vec<PathBuf>, Vec<Skipped>)> {
    let mut files = Vec::new();
    let mut too_deep = Vec::new();
    for input in inputs {
        if input.is_dir() {
            search(input, FOLDER_DEPTH, &mut files, &mut too_deep)?;
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        return Err(
            UsageError::new("no reports found: give JSON files or folders holding them").into(),
        );
    }
    // One file given twice (as itself and inside its folder, or through a link) is one node.
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|file| seen.insert(std::fs::canonicalize(file).unwrap_or_else(|_| file.clone())));
    let too_deep = too_deep
        .into_iter()
        .map(|folder: PathBuf| Skipped {
            file: outside_line(&folder.display().to_string(), 300),
            reason: format!(
                "a folder more than {FOLDER_DEPTH} levels down: not searched (give it as an input of its own)"
            ),
        })
        .collect();
    Ok((files, too_deep))
}

fn search(
    folder: &Path,
    depth: usize,
    files: &mut Vec<PathBuf>,
    too_deep: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(folder)
        .map_err(|e| UsageError::new(format!("cannot read {}: {e}", folder.display())))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if file_type.is_dir() && depth > 0 {
            search(&path, depth - 1, files, too_deep)?;
        } else if file_type.is_dir() {
            too_deep.push(path);
        } else if file_type.is_file() && path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(())
}

fn node_name(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

/// One node's report, read back.
pub struct Node {
    /// The report file's name without `.json` (its path when two files share a name).
    pub name: String,
    pub report: Saved,
}

/// Reads every file: each readable report becomes a node, every other file is skipped with why.
pub fn read_nodes(files: &[PathBuf]) -> (Vec<Node>, Vec<Skipped>) {
    let mut stems: BTreeMap<String, usize> = BTreeMap::new();
    for file in files {
        *stems.entry(node_name(file)).or_default() += 1;
    }
    let mut nodes = Vec::new();
    let mut skipped = Vec::new();
    for file in files {
        match saved::read(file) {
            Ok(report) => {
                let stem = node_name(file);
                let name = if stems[&stem] > 1 {
                    file.with_extension("").display().to_string()
                } else {
                    stem
                };
                nodes.push(Node { name, report });
            }
            Err(e) => skipped.push(Skipped {
                file: file.display().to_string(),
                reason: outside_line(&format!("{e:#}"), 300),
            }),
        }
    }
    (nodes, skipped)
}

/// The report reading wants: what nodes share, as their signature.
enum Reading {
    Info(Box<InfoReport>),
    TrainCompare(Box<TrainCompareReport>),
    Scale(Box<ScaleReport>),
}

/// Groups `nodes` (all of one kind) into identical nodes and names the outliers; `skipped` are
/// the files that could not be read. With a redactor, identifying values are replaced (a node
/// whose file is named after its own hostname is shown as `node-N`).
pub fn analyse(
    nodes: &[Node],
    mut skipped: Vec<Skipped>,
    redactor: Option<&Redactor>,
) -> anyhow::Result<FleetReport> {
    let Some(first) = nodes.first() else {
        return Err(UsageError::new(match skipped.first() {
            Some(first) => format!(
                "no readable report: {}{}",
                first.reason,
                match skipped.len() {
                    1 => String::new(),
                    n => format!(" (and {} more files)", n - 1),
                }
            ),
            None => "no reports found: give JSON files or folders holding them".to_string(),
        })
        .into());
    };
    let kind = first.report.kind;
    if kind == Kind::Report {
        return Err(bug_report_refused(&first.report.name));
    }
    if let Some(other) = nodes.iter().find(|n| n.report.kind != kind) {
        return Err(UsageError::new(format!(
            "{} is a {} report, but {} is a {} report: give reports of one kind",
            other.report.name,
            other.report.kind.name(),
            first.report.name,
            kind.name()
        ))
        .into());
    }
    let mut readings = Vec::with_capacity(nodes.len());
    let mut names = Vec::with_capacity(nodes.len());
    for (position, node) in nodes.iter().enumerate() {
        let reading = match node.report.typed() {
            Ok(Typed::Info(report)) => Reading::Info(report),
            Ok(Typed::TrainCompare(report)) => Reading::TrainCompare(report),
            Ok(Typed::Scale(report)) => Reading::Scale(report),
            Ok(Typed::Report(_)) => return Err(bug_report_refused(&node.report.name)),
            Err(e) => {
                skipped.push(Skipped {
                    file: node.report.name.clone(),
                    reason: outside_line(&format!("{e:#}"), 300),
                });
                continue;
            }
        };
        let name = match (&reading, redactor) {
            (Reading::Info(report), Some(_))
                if report
                    .os
                    .hostname
                    .as_deref()
                    .is_some_and(|host| same_first_label(host, &node.name)) =>
            {
                format!("node-{}", position + 1)
            }
            _ => node.name.clone(),
        };
        names.push(name);
        readings.push(reading);
    }
    // Every report's own secrets (its hostname, its GPUs'), wherever they appear in any report.
    let redactor = redactor.map(|r| {
        r.clone()
            .with(readings.iter().flat_map(|reading| match reading {
                Reading::Info(report) => report.secrets(),
                _ => Vec::new(),
            }))
    });
    let redactor = redactor.as_ref();
    let shown = |text: String| match redactor {
        Some(redactor) => redactor.text(&text),
        None => text,
    };
    // A file named after some report's host in another way ("report-gpu01.json") is scrubbed.
    let names: Vec<String> = names.into_iter().map(shown).collect();

    let signatures: Vec<(String, BTreeMap<String, String>)> = names
        .iter()
        .zip(&readings)
        .map(|(name, reading)| {
            let signature = signature(reading)
                .into_iter()
                .map(|(field, value)| (field, shown(value)))
                .collect();
            (name.clone(), signature)
        })
        .collect();
    let mut groups: Vec<NodeGroup> = Vec::new();
    let mut nodes_with_errors = Vec::new();
    for ((node, signature), reading) in signatures.iter().zip(&readings) {
        let findings: &[Finding] = match reading {
            Reading::Info(report) => &report.findings,
            Reading::TrainCompare(_) | Reading::Scale(_) => &[],
        };
        let group = match groups.iter().position(|g| &g.signature == signature) {
            Some(at) => &mut groups[at],
            None => {
                groups.push(NodeGroup {
                    signature: signature.clone(),
                    nodes: Vec::new(),
                    findings: BTreeMap::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        group.nodes.push(node.clone());
        let mut ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
        ids.dedup();
        for id in ids {
            *group.findings.entry(id.to_string()).or_default() += 1;
        }
        let errors: Vec<String> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| shown(format!("{} ({}): {}", f.id, f.subject, f.evidence)))
            .collect();
        if !errors.is_empty() {
            nodes_with_errors.push(Outlier {
                node: node.clone(),
                reasons: errors,
            });
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.nodes.len()));

    let mut outliers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut no_majority = Vec::new();
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
            let most = counts.values().copied().max().unwrap_or_default();
            let leaders: Vec<&str> = counts
                .iter()
                .filter(|(_, n)| **n == most)
                .map(|(value, _)| *value)
                .collect();
            if let [common] = leaders[..] {
                for (node, s) in &signatures {
                    let value = s.get(field).map_or("", String::as_str);
                    if value != common {
                        outliers
                            .entry(node.clone())
                            .or_default()
                            .push(format!("{field} {value} (most nodes: {common})"));
                    }
                }
            } else if counts.len() > 1 {
                no_majority.push(format!(
                    "{field}: no value is on most nodes ({} on {most} nodes each)",
                    leaders.join(", ")
                ));
            }
        }
    }
    slow_nodes(&readings, &signatures, &mut outliers);
    Ok(FleetReport {
        schema_version: SCHEMA_VERSION,
        kind: "fleet".to_string(),
        reports_kind: kind.name().to_string(),
        nodes: readings.len(),
        groups,
        outliers: outliers
            .into_iter()
            .map(|(node, reasons)| Outlier {
                node,
                reasons: reasons.into_iter().map(shown).collect(),
            })
            .collect(),
        no_majority,
        nodes_with_errors,
        skipped,
    })
}

fn bug_report_refused(name: &str) -> anyhow::Error {
    UsageError::new(format!(
        "{name} is a bug report (hwbench report); fleet reads info, train-compare or scale reports: make them with `hwbench info --format json` on each node"
    ))
    .into()
}

/// A training report's columns as a node's signature names them: each label with its device's
/// name ("cpu×2 (AMD EPYC 9B14), cuda:0 (NVIDIA H100 80GB HBM3)").
fn devices<'a>(columns: impl Iterator<Item = (&'a String, &'a Option<DeviceFacts>)>) -> String {
    let named: Vec<String> = columns
        .map(|(label, facts)| {
            let name = facts.as_ref().and_then(|f| f.name.as_deref());
            format!("{label} ({})", name.unwrap_or("unknown"))
        })
        .collect();
    named.join(", ")
}

/// What makes two nodes the same kind of node.
fn signature(reading: &Reading) -> BTreeMap<String, String> {
    let text = |v: Option<String>| v.unwrap_or_else(|| "unknown".to_string());
    let mut s = BTreeMap::new();
    match reading {
        Reading::Info(report) => {
            s.insert("cpu".into(), text(report.cpu.model_name.clone()));
            s.insert(
                "usable CPUs".into(),
                text(report.cpu.usable_cpus.map(|n| n.to_string())),
            );
            let memory = report.memory.total_mib.map(gib_rounded);
            s.insert("memory".into(), text(memory));
            let mut counted: BTreeMap<String, usize> = BTreeMap::new();
            for gpu in &report.gpu.devices {
                *counted.entry(text(gpu.name.clone())).or_default() += 1;
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
            s.insert("driver".into(), text(report.gpu.driver_version.clone()));
            s.insert(
                "CUDA (driver)".into(),
                text(report.gpu.cuda_driver_version.clone()),
            );
            s.insert("hwbench".into(), report.build.hwbench_version.clone());
            // A node on another kernel or OS release is not identical to its neighbours.
            s.insert("OS".into(), text(report.os.long_name.clone()));
            s.insert("kernel".into(), text(report.os.kernel.clone()));
        }
        Reading::TrainCompare(report) => {
            let columns = report.devices.iter().map(|d| (&d.label, &d.facts));
            s.insert("devices".into(), devices(columns));
            s.insert("epochs".into(), report.config.epochs.to_string());
            s.insert("hwbench".into(), report.hwbench_version.clone());
        }
        Reading::Scale(report) => {
            let columns = report.devices.iter().map(|c| (&c.label, &c.facts));
            s.insert("devices".into(), devices(columns));
            let sizes: Vec<String> = report.ladder.iter().map(|p| p.size.to_string()).collect();
            s.insert("sizes".into(), sizes.join(", "));
            s.insert("hwbench".into(), report.hwbench_version.clone());
        }
    }
    s
}

/// The headline per-epoch cost, in µs, of every device of a train-compare report, by label; of
/// every device at every ladder point of a scale report, by "label at size".
fn per_epoch(reading: &Reading) -> Vec<(String, Spread)> {
    match reading {
        Reading::TrainCompare(report) => report
            .devices
            .iter()
            .filter_map(|d| Some((d.label.clone(), d.headline_spread()?.clone())))
            .collect(),
        Reading::Scale(report) => report
            .devices
            .iter()
            .flat_map(|c| {
                c.points.iter().filter_map(|p| {
                    Some((
                        format!("{} at {}", c.label, p.size),
                        p.epoch_s.as_ref()?.scaled(1e6),
                    ))
                })
            })
            .collect(),
        Reading::Info(_) => Vec::new(),
    }
}

/// Nodes whose per-epoch cost on a device is measurably above the median of the rest of their
/// group, by more than [`SLOW_FACTOR`].
fn slow_nodes(
    readings: &[Reading],
    signatures: &[(String, BTreeMap<String, String>)],
    outliers: &mut BTreeMap<String, Vec<String>>,
) {
    let mut members: BTreeMap<&BTreeMap<String, String>, Vec<usize>> = BTreeMap::new();
    for (i, (_, signature)) in signatures.iter().enumerate() {
        members.entry(signature).or_default().push(i);
    }
    for indices in members.values().filter(|m| m.len() >= 3) {
        let costs: Vec<Vec<(String, Spread)>> =
            indices.iter().map(|&i| per_epoch(&readings[i])).collect();
        for (position, node_costs) in costs.iter().enumerate() {
            for (label, cost) in node_costs {
                // The group without this node: an outlier must not widen its own yardstick.
                let others: Vec<&Spread> = costs
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != position)
                    .flat_map(|(_, list)| list.iter().filter(|(l, _)| l == label))
                    .map(|(_, spread)| spread)
                    .collect();
                // Every run of the others (their medians, from reports that did not keep them).
                let pooled = Spread::of(others.iter().flat_map(|s| {
                    if s.values.is_empty() {
                        vec![s.median]
                    } else {
                        s.values.clone()
                    }
                }));
                let (Some(pooled), Some(group_fastest)) =
                    (pooled, Spread::of(others.iter().map(|s| s.min)))
                else {
                    continue;
                };
                if let Comparison::Slower { .. } = compare(cost, &pooled, SLOW_FACTOR - 1.0) {
                    outliers
                        .entry(signatures[indices[position]].0.clone())
                        .or_default()
                        .push(format!(
                            "{label} {} per epoch at its fastest, {} its group's ({}, the median of their fastest runs)",
                            micros(cost.min),
                            factor(cost.min / group_fastest.median),
                            micros(group_fastest.median)
                        ));
                }
            }
        }
    }
}

/// "gpu01.cluster.local" and "GPU01" name the same node: a file named after its host, however
/// the Slurm recipe spelled it.
fn same_first_label(a: &str, b: &str) -> bool {
    let first = |name: &str| {
        let name = name.rsplit('/').next().unwrap_or(name);
        name.split('.').next().unwrap_or(name).to_lowercase()
    };
    first(a) == first(b)
}

/// A node's memory as whole gibibytes, the key nodes are grouped on: 24064 → "24 GiB" (two nodes
/// of the same kind differ by a few MiB the firmware keeps).
fn gib_rounded(mib: u64) -> String {
    format!("{:.0} GiB", mib as f64 / 1024.0)
}
