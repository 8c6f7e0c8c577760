//! `hwbench report`: one redacted document for a bug ticket, Markdown under GitHub's limit or
//! JSON holding the info and train-compare reports whole; `diff` compares two of them.

use std::process::Output;

use hwbench::bug_report::{BugReport, GITHUB_LIMIT};
use hwbench::render::Render;
use serde_json::Value;

use crate::util::{self, Dir, hwbench};

fn report(args: &[&str]) -> Output {
    hwbench()
        .arg("report")
        .args(args)
        .env(
            "HWBENCH_GPU_FIXTURE",
            util::fixture("gpu/two_a100_one_mig.json"),
        )
        .env(
            "CUDA_VISIBLE_DEVICES",
            "GPU-1a2b3c4d-aaaa-4bbb-8ccc-0123456789ab",
        )
        .output()
        .unwrap()
}

#[test]
fn markdown_report_has_the_summary_first_and_fits_in_an_issue() {
    let output = report(&[]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("### hwbench report"), "{text}");
    let position = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing"))
    };
    // Summary (machine, training, verdict, versions), then everything else folded away.
    assert!(position("**Machine**") < position("**Training (iris MLP, 2000 epochs"));
    assert!(position("**Training (iris MLP") < position("**Verdict**"));
    assert!(position("**Verdict**") < position("**Versions**"));
    assert!(position("**Versions**") < position("<details>"));
    assert!(position("<details>") < position("**GPU 1**"));
    assert!(position("<details>") < position("**Training: configuration**"));
    assert!(text.contains("NVIDIA A100-SXM4-80GB"));
    assert!(text.contains("| cpu×1 |"));
    assert!(text.contains("candle "));
    assert!(text.chars().count() < GITHUB_LIMIT);
    util::assert_no_secrets(&text, "the Markdown report");
}

#[test]
fn json_report_holds_info_and_train_compare_whole() {
    let dir = Dir::new();
    let path = dir.join("report.json");
    let output = report(&["--format", "json", "-o", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty(), "-o writes the file only");
    let text = std::fs::read_to_string(&path).unwrap();
    util::assert_no_secrets(&text, "the JSON report");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["kind"], "report");
    assert_eq!(json["redacted"], true);
    assert_eq!(json["info"]["kind"], "info");
    assert_eq!(json["info"]["gpu"]["devices"].as_array().unwrap().len(), 2);
    let training = &json["train_compare"];
    assert_eq!(training["kind"], "train-compare");
    assert_eq!(training["config"]["epochs"], 2000);
    assert_eq!(training["devices"][0]["label"], "cpu×1");
    assert_eq!(training["devices"][0]["status"], "ok");
    let versions = &json["versions"];
    for field in ["hwbench", "target", "rustc", "candle"] {
        let value = versions[field].as_str().unwrap();
        assert!(!value.is_empty() && value != "unknown", "{field}: {value}");
    }
    assert_eq!(
        versions["nvidia_driver"],
        json["info"]["gpu"]["driver_version"]
    );
    // It reads back into the library's types.
    let parsed: BugReport = serde_json::from_str(&text).unwrap();
    assert_eq!(
        parsed.train_compare.devices.len(),
        training["devices"].as_array().unwrap().len()
    );

    // Two reports of the same machine: diff compares their parts; fleet wants info reports.
    let same = hwbench()
        .args(["diff", path.to_str().unwrap(), path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    let mut other = json.clone();
    other["info"]["gpu"]["driver_version"] = "999.1".into();
    let other_path = dir.write_json("other.json", &other);
    let differ = hwbench()
        .args(["diff", "--format", "json"])
        .args([&path, &other_path])
        .output()
        .unwrap();
    assert_eq!(differ.status.code(), Some(1));
    let diff: Value = serde_json::from_slice(&differ.stdout).unwrap();
    assert_eq!(diff["compared"], "report");
    assert_eq!(diff["fields"][0]["path"], "info.gpu.driver_version");
    let fleet = hwbench().arg("fleet").arg(&path).output().unwrap();
    assert_eq!(fleet.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&fleet.stderr).contains("is a bug report"));
}

#[test]
fn a_bad_output_path_fails_before_anything_runs() {
    let output = report(&["-o", "/nonexistent-dir/report.md"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_huge_machine_is_shortened_to_fit_and_says_what_was_left_out() {
    let mut info = util::info_report("gpu/two_a100_one_mig.json");
    let gpu = info.gpu.devices[0].clone();
    info.gpu.devices = (0..300)
        .map(|index| hwbench::info::gpu::GpuReport {
            index,
            ..gpu.clone()
        })
        .collect();
    // A real train-compare report, as saved.
    let training = serde_json::from_str(
        &std::fs::read_to_string(util::in_repo("fuzz/seeds/train-compare.json")).unwrap(),
    )
    .unwrap();
    let report = BugReport::new(info, training, None);
    let whole = hwbench::render::markdown::render(&report.document());
    assert!(
        whole.chars().count() > GITHUB_LIMIT,
        "the test needs a report over the limit"
    );

    let text = report.markdown();
    assert!(text.chars().count() < GITHUB_LIMIT);
    assert!(text.contains("**Machine**") && text.contains("**Verdict**"));
    assert!(
        text.contains("**GPU 0**"),
        "sections are left out from the end"
    );
    let note = text.lines().last().unwrap();
    assert!(note.contains("Left out to stay under GitHub's 65536-character limit"));
    assert!(
        note.contains("to GPU 299") && note.contains("--format json"),
        "{note}"
    );
    // JSON is never shortened.
    let json = hwbench::render::json::render(&report).unwrap();
    assert!(json.contains("\"index\": 299"));
}

#[test]
fn a_companion_given_on_the_command_line_is_the_one_the_whole_report_speaks_of() {
    // Before: `report --cuda-companion X` trained a CUDA column with X while its info part said
    // "this install has no CUDA support" (info probed the machine again, without the flag).
    let dir = Dir::new();
    let fake = dir.executable(
        "my-cuda",
        r#"case "$1" in
describe) echo '{"protocol":4,"hwbench_version":"0.1.0","cuda_version":"13.0","compute_capability":"8.0","ptx":true}' ;;
worker) echo '{"event":"hello","protocol":4,"hwbench_version":"0.1.0","backend":"cuda"}'; echo '{"event":"error","message":"fake companion: no GPU"}'; exit 1 ;;
esac"#,
    );
    let path = dir.join("report.json");
    let output = hwbench()
        .arg("report")
        .args([
            "--format",
            "json",
            "--cpu-threads",
            "1",
            "--devices",
            "cpu,cuda:0",
        ])
        .arg("--cuda-companion")
        .arg(&fake)
        .arg("-o")
        .arg(&path)
        .env(
            "HWBENCH_GPU_FIXTURE",
            util::fixture("gpu/two_a100_one_mig.json"),
        )
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let companion = &json["info"]["build"]["cuda_companion"];
    assert_eq!(companion["available"], true, "{companion}");
    assert_eq!(companion["found"], "--cuda-companion");
    let cuda = &json["train_compare"]["devices"][1];
    assert_eq!(cuda["label"], "cuda:0");
    assert!(
        cuda["reason"].as_str().unwrap().contains("fake companion"),
        "the CUDA column ran the given companion: {cuda}"
    );
    assert!(!text.contains("no CUDA support"), "{text}");
}
