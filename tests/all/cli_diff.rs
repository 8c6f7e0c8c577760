//! `hwbench diff`: exit 0 same, 1 different, 2 bad input; differences named field by field and
//! timings as ratios, with overlapping ranges called noise.

use std::path::Path;

use serde_json::Value;

use crate::util::{self, Dir, hwbench, info_with, tiny_train};

fn diff(a: &Path, b: &Path) -> (Option<i32>, String, String) {
    util::run(&[
        "diff".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
}

#[test]
fn identical_info_reports_are_the_same() {
    let dir = Dir::new();
    let report = info_with("gpu/hopper_h100.json");
    let a = dir.write_json("a.json", &report);
    let (code, stdout, _) = diff(&a, &a);
    assert_eq!(code, Some(0));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["same"], true);
    assert_eq!(json["fields"].as_array().unwrap().len(), 0);
}

#[test]
fn a_report_diffed_with_itself_is_one_line_identical() {
    let dir = Dir::new();
    let a = dir.write_json("a.json", &info_with("gpu/hopper_h100.json"));
    let output = hwbench().arg("diff").arg(&a).arg(&a).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("are identical"), "{stdout}");
}

/// A train-compare report whose first policy took `runs`, in µs per epoch.
fn with_runs(report: &Value, runs: &[f64]) -> Value {
    let mut report = report.clone();
    util::set_runs(
        &mut report["devices"][0]["policies"][0]["per_epoch_us"],
        runs,
    );
    report
}

/// A train-compare report whose first policy took six runs of exactly `us` per epoch.
fn with_cost(report: &Value, us: f64) -> Value {
    with_runs(report, &[us; 6])
}

#[test]
fn a_timing_changes_only_beyond_noise_and_the_threshold() {
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
    let a = dir.write_json("a.json", &with_cost(&report, 100.0));
    // 5% slower in every run: below the default 10% threshold, so not a change.
    let b = dir.write_json("b.json", &with_cost(&report, 105.0));
    let (code, stdout, _) = diff(&a, &b);
    assert_eq!(code, Some(0), "{stdout}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["timings"][0]["noise"], true);
    assert_eq!(json["threshold"], 0.1);
    // Not in the table's summary either: only in the details.
    let table = hwbench().arg("diff").arg(&a).arg(&b).output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("No difference"), "{text}");
    assert!(text.contains("within noise or the threshold"), "{text}");
    // With a 3% threshold it is a change, named, and the exit code says so.
    let strict = hwbench()
        .args(["diff", "--threshold", "3%"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1));
    let text = String::from_utf8(strict.stdout).unwrap();
    assert!(text.contains("B 1.05× slower"), "{text}");
    // 50% slower in the median but with a run faster than all of A's: noise, whatever the
    // threshold.
    let wide = with_runs(&report, &[150.0, 150.0, 90.0, 150.0, 150.0, 150.0]);
    let c = dir.write_json("c.json", &wide);
    let (code, _, _) = util::run(&[
        "diff".as_ref(),
        "--threshold".as_ref(),
        "0".as_ref(),
        a.as_os_str(),
        c.as_os_str(),
    ]);
    assert_eq!(code, Some(0));
    // 30% slower in the median, but B's fastest run as fast as A's: interference held B's other
    // runs back (it only adds time); not a change, and said so in the details.
    let d = dir.write_json(
        "d.json",
        &with_runs(&report, &[130.0, 130.0, 101.0, 130.0, 130.0, 130.0]),
    );
    let (code, stdout, _) = diff(&a, &d);
    assert_eq!(code, Some(0), "{stdout}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["timings"][0]["noise"], true);
    assert!((json["timings"][0]["fastest_ratio"].as_f64().unwrap() - 1.01).abs() < 1e-9);
    let table = hwbench()
        .args(["diff", "--format", "markdown"])
        .arg(&a)
        .arg(&d)
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("none measurable (1.30×, fastest run 1.01×)"),
        "{text}"
    );
    assert!(
        text.contains(
            "1 timing(s) moved beyond the threshold in the median but not in the fastest run"
        ),
        "{text}"
    );
    // Its fastest run 20% slower too: a change.
    let e = dir.write_json(
        "e.json",
        &with_runs(&report, &[130.0, 130.0, 120.0, 130.0, 130.0, 130.0]),
    );
    assert_eq!(diff(&a, &e).0, Some(1));
    let refused = hwbench()
        .args(["diff", "--threshold", "ten"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn another_gpu_and_driver_are_named() {
    let dir = Dir::new();
    let a = dir.write_json("a.json", &info_with("gpu/hopper_h100.json"));
    let mut other = info_with("gpu/hopper_h100.json");
    other["gpu"]["driver_version"] = Value::from("570.86.15");
    other["gpu"]["devices"][0]["name"] = Value::from("NVIDIA H100 PCIe");
    other["gpu"]["devices"][0]["temperature_c"] = Value::from(80); // volatile: not a difference
    let b = dir.write_json("b.json", &other);
    let (code, stdout, _) = diff(&a, &b);
    assert_eq!(code, Some(1));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let paths: Vec<&str> = json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["gpu.devices[0].name", "gpu.driver_version"]);
    assert_eq!(json["fields"][1]["b"], "570.86.15");
}

#[test]
fn per_epoch_costs_compare_as_ratios_and_overlap_is_noise() {
    let dir = Dir::new();
    let report = util::run_json(
        &tiny_train(&[
            "--repeats",
            "6",
            "--cpu-threads",
            "1",
            "--sync-every",
            "1,0",
            "--format",
            "json",
        ]),
        &[],
    );
    let a = dir.write_json("a.json", &report);
    let (code, _, _) = diff(&a, &a);
    assert_eq!(code, Some(0), "a report against itself");

    // B's first policy: every run twice as slow as A's slowest.
    let spread = &report["devices"][0]["policies"][0]["per_epoch_us"];
    let a_max = spread["max"].as_f64().unwrap();
    let a_median = spread["median"].as_f64().unwrap();
    let slower = with_cost(&report, a_max * 2.0);
    let b = dir.write_json("b.json", &slower);
    let (code, stdout, _) = diff(&a, &b);
    assert_eq!(code, Some(1));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let timings = json["timings"].as_array().unwrap();
    assert_eq!(timings.len(), 2);
    assert_eq!(timings[0]["noise"], false);
    let expected = a_max * 2.0 / a_median;
    assert!((timings[0]["ratio"].as_f64().unwrap() - expected).abs() < 1e-9);
    assert_eq!(timings[1]["noise"], true);

    let table = hwbench().arg("diff").arg(&a).arg(&b).output().unwrap();
    assert!(
        String::from_utf8(table.stdout)
            .unwrap()
            .contains(&format!("B {expected:.2}× slower"))
    );
}

#[test]
fn bad_reports_are_refused_with_exit_code_2_naming_the_file() {
    let dir = Dir::new();
    let info = dir.write_json("info.json", &info_with("gpu/hopper_h100.json"));
    let broken = dir.write("broken.json", "{ not json");
    let mut future = info_with("gpu/hopper_h100.json");
    future["schema_version"] = Value::from(99);
    let future = dir.write_json("future.json", &future);
    let train = dir.write_json(
        "train.json",
        &serde_json::json!({"schema_version": 1, "kind": "train-compare", "devices": []}),
    );
    let other = dir.write_json(
        "other.json",
        &serde_json::json!({"schema_version": 1, "kind": "weather"}),
    );
    for (a, b, expected) in [
        (&info, &broken, "broken.json is not a hwbench JSON report"),
        (&info, &future, "future.json uses schema version 99"),
        (&info, &train, "(kind info) with"),
        (
            &other,
            &info,
            "other.json is not a hwbench report (kind \"weather\")",
        ),
        (&info, &dir.join("missing.json"), "cannot read"),
    ] {
        let (code, stdout, stderr) = diff(a, b);
        assert_eq!(code, Some(2), "{expected}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn diff_redacts_unless_asked_not_to() {
    let dir = Dir::new();
    let fixture = util::fixture("gpu/two_a100_one_mig.json");
    let unredacted = util::run_json(
        &["info", "--format", "json", "--no-redact"],
        &[("HWBENCH_GPU_FIXTURE", &fixture)],
    );
    let a = dir.write_json("a.json", &unredacted);
    let mut other = unredacted.clone();
    other["gpu"]["devices"][0]["uuid"] = "GPU-77777777-8888-4999-8aaa-bbbbbbbbbbbb".into();
    other["os"]["hostname"] = "other-host-7777".into();
    let b = dir.write_json("b.json", &other);
    for format in ["table", "markdown", "json", "prometheus"] {
        let output = hwbench()
            .args(["diff", "--format", format])
            .args([&a, &b])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        util::assert_no_secrets(&text, format);
        assert!(!text.contains("other-host-7777"), "{format}: {text}");
    }
    let (_, stdout, _) = diff(&a, &b);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    // Redacted, the two hostnames are the same placeholder; the GPUs differ by their position.
    let paths: Vec<&str> = json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(!paths.contains(&"os.hostname"), "{paths:?}");
    let output = hwbench()
        .args(["diff", "--format", "json", "--no-redact"])
        .args([&a, &b])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("other-host-7777") && text.contains("GPU-77777777"));
}

#[test]
fn a_huge_array_is_compared_element_by_element_and_capped() {
    let dir = Dir::new();
    let mut a = info_with("gpu/hopper_h100.json");
    a["extra"] = Value::from(vec![0; 1_000_000]);
    let mut b = a.clone();
    b["extra"][123_456] = Value::from(7);
    let (a, b) = (dir.write_json("a.json", &a), dir.write_json("b.json", &b));
    let (code, stdout, _) = diff(&a, &b);
    assert_eq!(code, Some(1));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["fields"][0]["path"], "extra[123456]");
    assert_eq!(json["fields"].as_array().unwrap().len(), 1);

    // Every element different: the first 10,000 are listed, the rest counted.
    let mut c = info_with("gpu/hopper_h100.json");
    c["extra"] = Value::from(vec![1; 1_000_000]);
    let c = dir.write_json("c.json", &c);
    let (_, stdout, _) = diff(&a, &c);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["fields"].as_array().unwrap().len(), 10_000);
    assert_eq!(json["fields_not_listed"], 990_000);
}
