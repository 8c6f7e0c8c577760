//! `hwbench fleet`: groups of identical nodes and the outliers, from folders of reports.

mod common;

use std::path::Path;

use common::info_with;
use serde_json::Value;

fn save(dir: &Path, node: &str, report: &Value) {
    std::fs::write(
        dir.join(format!("{node}.json")),
        serde_json::to_string(report).unwrap(),
    )
    .unwrap();
}

fn fleet(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let all: Vec<&std::ffi::OsStr> = std::iter::once("fleet".as_ref())
        .chain(args.iter().copied())
        .collect();
    common::run(&all)
}

#[test]
fn identical_nodes_group_and_the_odd_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let h100 = info_with("gpu/hopper_h100.json");
    for node in ["node01", "node02", "node03", "node04"] {
        save(dir.path(), node, &h100);
    }
    let mut old_driver = h100.clone();
    old_driver["gpu"]["driver_version"] = Value::from("570.86.15");
    save(dir.path(), "node05", &old_driver);
    save(
        dir.path(),
        "node06",
        &info_with("gpu/two_a100_one_mig.json"),
    );
    std::fs::write(dir.path().join("notes.txt"), "not a report").unwrap();

    let (code, stdout, stderr) =
        fleet(&[dir.path().as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(code, Some(0), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["nodes"], 6);
    assert_eq!(json["groups"][0]["nodes"].as_array().unwrap().len(), 4);
    assert_eq!(
        json["groups"][0]["signature"]["GPUs"],
        "1 × NVIDIA H100 80GB HBM3"
    );
    let outliers = json["outliers"].as_array().unwrap();
    let node05 = outliers.iter().find(|o| o["node"] == "node05").unwrap();
    assert_eq!(
        node05["reasons"][0],
        "driver 570.86.15 (most nodes: 580.95.05)"
    );
    let node06 = outliers.iter().find(|o| o["node"] == "node06").unwrap();
    assert!(
        node06["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("GPUs 2 × NVIDIA A100"))
    );
    assert_eq!(outliers.len(), 2);
}

#[test]
fn a_node_slower_than_its_group_is_an_outlier() {
    let dir = tempfile::tempdir().unwrap();
    let report = common::run_json(
        &[
            "train-compare",
            "--epochs",
            "100",
            "--repeats",
            "1",
            "--warmup-epochs",
            "5",
            "--cpu-threads",
            "1",
            "--sync-every",
            "0",
            "--format",
            "json",
        ],
        &[],
    );
    for node in ["a", "b", "c", "d"] {
        save(dir.path(), node, &report);
    }
    let mut slow = report.clone();
    let median = slow["devices"][0]["policies"][0]["per_epoch_us"]["median"]
        .as_f64()
        .unwrap();
    slow["devices"][0]["policies"][0]["per_epoch_us"]["median"] = Value::from(median * 2.0);
    save(dir.path(), "e", &slow);

    let (code, stdout, _) = fleet(&[dir.path().as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(code, Some(0));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["groups"].as_array().unwrap().len(), 1);
    let outliers = json["outliers"].as_array().unwrap();
    assert_eq!(outliers.len(), 1);
    assert_eq!(outliers[0]["node"], "e");
    assert!(
        outliers[0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("2.00× its group's median")
    );
}

#[test]
fn mixed_kinds_and_broken_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "info", &info_with("gpu/hopper_h100.json"));
    save(
        dir.path(),
        "train",
        &serde_json::json!({"schema_version": 1, "kind": "train-compare", "devices": []}),
    );
    let (code, _, stderr) = fleet(&[dir.path().as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("train.json is a train-compare report"),
        "{stderr}"
    );

    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("n1.json"), "{").unwrap();
    let (code, _, stderr) = fleet(&[broken.path().as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("n1.json is not a hwbench JSON report"),
        "{stderr}"
    );

    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = fleet(&[empty.path().as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no reports found"), "{stderr}");
}

#[test]
fn thousands_of_reports_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = serde_json::to_string(&info_with("gpu/hopper_h100.json")).unwrap();
    for i in 0..2000 {
        std::fs::write(dir.path().join(format!("node{i:04}.json")), &text).unwrap();
    }
    let (code, stdout, _) = fleet(&[dir.path().as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(code, Some(0));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["nodes"], 2000);
    assert_eq!(json["groups"].as_array().unwrap().len(), 1);
}
