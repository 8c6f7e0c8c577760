//! `hwbench fleet`: groups of identical nodes and the outliers, from folders of reports.

use serde_json::Value;

use crate::util::{self, Dir, info_with, tiny_train};

/// Saves `report` as the node `node` of the fleet in `dir`.
fn save(dir: &Dir, node: &str, report: &Value) {
    dir.write_json(&format!("{node}.json"), report);
}

fn fleet(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let all: Vec<&std::ffi::OsStr> = std::iter::once("fleet".as_ref())
        .chain(args.iter().copied())
        .collect();
    util::run(&all)
}

#[test]
fn identical_nodes_group_and_the_odd_ones_are_named() {
    let dir = Dir::new();
    let h100 = info_with("gpu/hopper_h100.json");
    for node in ["node01", "node02", "node03", "node04"] {
        save(&dir, node, &h100);
    }
    let mut old_driver = h100.clone();
    old_driver["gpu"]["driver_version"] = Value::from("570.86.15");
    save(&dir, "node05", &old_driver);
    save(&dir, "node06", &info_with("gpu/two_a100_one_mig.json"));
    dir.write("notes.txt", "not a report");

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
    let dir = Dir::new();
    let report = util::run_json(
        &tiny_train(&[
            "--cpu-threads",
            "1",
            "--sync-every",
            "0",
            "--format",
            "json",
        ]),
        &[],
    );
    // Every node took six runs of 10–11 µs per epoch.
    let runs = [10.0, 10.4, 10.2, 11.0, 10.1, 10.6];
    let with_runs = |runs: &[f64]| {
        let mut report = report.clone();
        util::set_runs(
            &mut report["devices"][0]["policies"][0]["per_epoch_us"],
            runs,
        );
        report
    };
    for node in ["a", "b", "c", "d"] {
        save(&dir, node, &with_runs(&runs));
    }
    // Every run twice as slow.
    let slow = runs.map(|r| r * 2.0);
    save(&dir, "e", &with_runs(&slow));

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
            .contains("20 µs per epoch at its fastest, 2.00× its group's (10 µs")
    );

    // Its median as slow, but one run as fast as the group's: a node that was busier while it
    // ran (interference only adds time), not a slower node.
    let busy_dir = Dir::new();
    for node in ["a", "b", "c", "d"] {
        save(&busy_dir, node, &with_runs(&runs));
    }
    let mut busy = slow;
    busy[2] = 10.0;
    save(&busy_dir, "f", &with_runs(&busy));
    let (_, stdout, _) = fleet(&[
        busy_dir.path().as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["outliers"].as_array().unwrap().len(), 0, "{stdout}");
}

#[test]
fn mixed_kinds_and_broken_files_are_refused_naming_the_file() {
    let dir = Dir::new();
    save(&dir, "info", &info_with("gpu/hopper_h100.json"));
    save(
        &dir,
        "train",
        &serde_json::json!({"schema_version": 1, "kind": "train-compare", "devices": []}),
    );
    let (code, _, stderr) = fleet(&[dir.path().as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("train.json is a train-compare report"),
        "{stderr}"
    );

    let broken = Dir::new();
    broken.write("n1.json", "{");
    let (code, _, stderr) = fleet(&[broken.path().as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("n1.json is not a hwbench JSON report"),
        "{stderr}"
    );

    let empty = Dir::new();
    let (code, _, stderr) = fleet(&[empty.path().as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no reports found"), "{stderr}");
}

#[test]
fn thousands_of_reports_are_read() {
    let dir = Dir::new();
    let text = serde_json::to_string(&info_with("gpu/hopper_h100.json")).unwrap();
    for i in 0..2000 {
        dir.write(&format!("node{i:04}.json"), &text);
    }
    let (code, stdout, _) = fleet(&[dir.path().as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(code, Some(0));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["nodes"], 2000);
    assert_eq!(json["groups"].as_array().unwrap().len(), 1);
}

/// Saved reports are checked in as they were written: a field that fleet groups on, renamed in
/// the report types, would read as "unknown" from them, and fail here.
#[test]
fn every_field_fleet_groups_on_is_read_from_saved_reports() {
    for saved in [
        util::fixture("reports/info-h100.json"),
        util::in_repo("fuzz/seeds/train-compare.json"),
    ] {
        let dir = Dir::new();
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
        save(&dir, "a", &report);
        save(&dir, "b", &report);
        let (code, stdout, stderr) =
            fleet(&[dir.path().as_os_str(), "--format".as_ref(), "json".as_ref()]);
        assert_eq!(code, Some(0), "{stderr}");
        let json: Value = serde_json::from_str(&stdout).unwrap();
        let signature = json["groups"][0]["signature"].as_object().unwrap();
        assert!(signature.len() >= 3, "{signature:?}");
        for (field, value) in signature {
            let value = value.as_str().unwrap();
            assert!(
                !value.is_empty() && !value.contains("unknown"),
                "{saved}: {field} = {value}"
            );
        }
    }
}

#[test]
fn one_broken_file_among_many_is_reported_and_the_rest_analysed() {
    let dir = Dir::new();
    let h100 = info_with("gpu/hopper_h100.json");
    for node in ["a", "b", "c"] {
        save(&dir, node, &h100);
    }
    dir.write("d.json", "{ truncated");
    let (code, stdout, stderr) =
        fleet(&[dir.path().as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("1 of 4 files could not be read"),
        "{stderr}"
    );
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["nodes"], 3);
    assert!(
        json["skipped"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("d.json")
    );
}

#[test]
fn same_names_in_two_folders_are_two_nodes_and_pipes_are_skipped() {
    let dir = Dir::new();
    let h100 = info_with("gpu/hopper_h100.json");
    for rack in ["rack1", "rack2"] {
        std::fs::create_dir(dir.join(rack)).unwrap();
        save(&dir, &format!("{rack}/node01"), &h100);
    }
    let fifo = std::ffi::CString::new(dir.join("rack1/pipe.json").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path in our own temporary folder.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let (code, stdout, stderr) =
        fleet(&[dir.path().as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(code, Some(0), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let nodes: Vec<&str> = json["groups"][0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(nodes.len(), 2);
    assert!(nodes[0].ends_with("rack1/node01") && nodes[1].ends_with("rack2/node01"));
}

#[test]
fn a_tie_for_most_nodes_is_said_as_a_tie() {
    let dir = Dir::new();
    let h100 = info_with("gpu/hopper_h100.json");
    let mut old = h100.clone();
    old["gpu"]["driver_version"] = Value::from("570.86.15");
    save(&dir, "a", &h100);
    save(&dir, "b", &h100);
    save(&dir, "c", &old);
    save(&dir, "d", &old);
    let (code, stdout, _) = fleet(&[dir.path().as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(code, Some(0));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert!(json["outliers"].as_array().unwrap().is_empty(), "{json}");
    assert_eq!(
        json["no_majority"][0],
        "driver: no value is on most nodes (570.86.15, 580.95.05 on 2 nodes each)"
    );
}

#[test]
fn a_node_on_another_kernel_or_os_stands_out() {
    let dir = Dir::new();
    let h100 = info_with("gpu/hopper_h100.json");
    for node in ["node01", "node02", "node03"] {
        save(&dir, node, &h100);
    }
    let mut kernel = h100.clone();
    kernel["os"]["kernel"] = Value::from("5.4.0-old");
    save(&dir, "node04", &kernel);
    let mut os = h100.clone();
    os["os"]["long_name"] = Value::from("Linux (Ubuntu 20.04)");
    save(&dir, "node05", &os);
    let (code, stdout, stderr) =
        fleet(&[dir.path().as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(code, Some(0), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let outliers = json["outliers"].to_string();
    assert!(
        outliers.contains("node04") && outliers.contains("kernel 5.4.0-old"),
        "{outliers}"
    );
    assert!(
        outliers.contains("node05") && outliers.contains("Ubuntu 20.04"),
        "{outliers}"
    );
}
