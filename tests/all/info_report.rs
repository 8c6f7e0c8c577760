//! The three renderers on recorded GPU data: snapshots, JSON checked field by field, serde round
//! trip, and redaction.

use hwbench::redact::Redactor;

use crate::util::{self, SECRETS, info_report};
use hwbench::info::InfoReport;
use hwbench::render::{self, Format, Style};
use serde_json::Value;

const FIXTURES: &[&str] = &[
    "gpu/hopper_h100.json",
    "gpu/two_a100_one_mig.json",
    "gpu/optional_fields_not_supported.json",
];

fn rendered(report: &InfoReport, format: Format) -> String {
    render::render(report, format, Style::plain()).unwrap()
}

fn snapshot_name(fixture: &str) -> String {
    fixture
        .trim_start_matches("gpu/")
        .trim_end_matches(".json")
        .to_string()
}

#[test]
fn table_snapshots() {
    for fixture in FIXTURES {
        let mut report = info_report(fixture);
        report.redact(&Redactor::default());
        insta::assert_snapshot!(
            format!("table_{}", snapshot_name(fixture)),
            rendered(&report, Format::Table)
        );
    }
}

#[test]
fn markdown_snapshots() {
    for fixture in FIXTURES {
        let mut report = info_report(fixture);
        report.redact(&Redactor::default());
        let markdown = rendered(&report, Format::Markdown);
        assert!(markdown.contains("<details>") && markdown.contains("</details>"));
        let summary_end = markdown.find("<details>").unwrap();
        assert!(
            markdown[..summary_end].contains("| GPU 0 |"),
            "summary names the GPUs first"
        );
        insta::assert_snapshot!(format!("markdown_{}", snapshot_name(fixture)), markdown);
    }
}

#[test]
fn json_round_trips_through_serde() {
    for fixture in FIXTURES {
        let report = info_report(fixture);
        let json = rendered(&report, Format::Json);
        let back: InfoReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report, "{fixture}");
    }
}

#[test]
fn json_fields_for_a_hopper_gpu() {
    let json: Value = serde_json::from_str(&rendered(
        &info_report("gpu/hopper_h100.json"),
        Format::Json,
    ))
    .unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["kind"], "info");
    assert_eq!(json["gpu"]["driver_version"], "580.95.05");
    assert_eq!(json["gpu"]["cuda_driver_version"], "13.0");
    let gpu = &json["gpu"]["devices"][0];
    assert_eq!(gpu["name"], "NVIDIA H100 80GB HBM3");
    assert_eq!(gpu["architecture"], "Hopper");
    assert_eq!(gpu["compute_capability"], "9.0");
    assert_eq!(gpu["memory_total_mib"], 81559);
    assert_eq!(gpu["pcie_generation_max"], 5);
    assert_eq!(gpu["power_limit_enforced_w"], 700.0);
    assert_eq!(gpu["mig_enabled"], false);
    assert_eq!(json["cpu"]["microarchitecture"], "Cascade Lake");
    assert_eq!(json["cpu"]["logical_cpus"], 2);
    assert_eq!(json["cpu"]["x86_64_level"], "x86-64-v4");
}

#[test]
fn json_lists_mig_devices() {
    let json: Value = serde_json::from_str(&rendered(
        &info_report("gpu/two_a100_one_mig.json"),
        Format::Json,
    ))
    .unwrap();
    let devices = json["gpu"]["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["mig_enabled"], true);
    assert_eq!(devices[0]["mig_devices"].as_array().unwrap().len(), 2);
    assert_eq!(devices[0]["mig_devices"][1]["memory_total_mib"], 40192);
    assert_eq!(devices[1]["mig_enabled"], false);
}

#[test]
fn unsupported_fields_are_null_with_a_reason_and_na_in_tables() {
    let report = info_report("gpu/optional_fields_not_supported.json");
    let json: Value = serde_json::from_str(&rendered(&report, Format::Json)).unwrap();
    let gpu = &json["gpu"]["devices"][0];
    for field in [
        "power_limit_w",
        "temperature_c",
        "ecc_enabled",
        "pcie_generation_max",
        "serial",
    ] {
        assert!(gpu[field].is_null(), "{field} should be null");
        assert!(
            gpu["unavailable"][field].is_string(),
            "{field} should carry a reason"
        );
    }
    assert_eq!(gpu["unavailable"]["power_limit_w"], "no permission");
    assert_eq!(
        gpu["memory_total_mib"], 12288,
        "the fields that answered are still there"
    );
    let table = rendered(&report, Format::Table);
    assert!(table.contains("n/a"));
    assert!(table.contains("NVIDIA GeForce RTX 3060"));
}

#[test]
fn no_identifying_value_survives_redaction_in_any_format() {
    for fixture in FIXTURES {
        let mut report = info_report(fixture);
        report.redact(&Redactor::default());
        for format in [
            Format::Table,
            Format::Markdown,
            Format::Json,
            Format::Prometheus,
        ] {
            let text = rendered(&report, format);
            for secret in SECRETS {
                assert!(
                    !text.contains(secret),
                    "{secret} leaked in {format:?} for {fixture}"
                );
            }
            assert!(text.contains("GPU-redacted-0"));
        }
    }
}

#[test]
fn unredacted_reports_keep_the_values() {
    let report = info_report("gpu/two_a100_one_mig.json");
    let text = rendered(&report, Format::Json);
    assert!(text.contains("GPU-1a2b3c4d-aaaa-4bbb-8ccc-0123456789ab"));
    assert!(text.contains(util::HOSTNAME));
}

#[test]
fn table_fits_an_80_column_terminal() {
    for fixture in FIXTURES {
        let text = rendered(&info_report(fixture), Format::Table);
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "too wide: {line}");
        }
    }
}

#[test]
fn prometheus_output_parses_and_carries_every_gpu() {
    let mut report = info_report("gpu/two_a100_one_mig.json");
    report.redact(&Redactor::default());
    let text = rendered(&report, Format::Prometheus);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let gpus: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "hwbench_gpu_info")
        .collect();
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0].labels.get("compute_capability"), Some("8.0"));
    assert_eq!(gpus[1].labels.get("uuid"), Some("GPU-redacted-1"));
    let memory = scrape
        .samples
        .iter()
        .find(|s| s.metric == "hwbench_gpu_memory_total_bytes")
        .unwrap();
    assert!(
        matches!(memory.value, prometheus_parse::Value::Gauge(v) if v == 81920.0 * 1024.0 * 1024.0)
    );
    let mig: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "hwbench_gpu_mig_enabled")
        .collect();
    assert!(matches!(mig[0].value, prometheus_parse::Value::Gauge(v) if v == 1.0));
    let driver = scrape
        .samples
        .iter()
        .find(|s| s.metric == "hwbench_nvidia_driver_info")
        .unwrap();
    assert_eq!(driver.labels.get("cuda_driver_version"), Some("13.0"));
    let up = scrape
        .samples
        .iter()
        .find(|s| s.metric == "hwbench_nvml_up")
        .unwrap();
    assert!(matches!(up.value, prometheus_parse::Value::Gauge(v) if v == 1.0));
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("hwbench_"), "{line}");
    }
}

#[test]
fn prometheus_leaves_out_what_could_not_be_read() {
    let text = rendered(
        &info_report("gpu/optional_fields_not_supported.json"),
        Format::Prometheus,
    );
    assert!(
        !text.contains("hwbench_gpu_power_limit_watts"),
        "no sample, no family: {text}"
    );
    assert!(text.contains("hwbench_gpu_memory_total_bytes{gpu=\"0\"}"));
}

/// "No GPU" and "no driver library" both have no GPU samples; `hwbench_nvml_up` tells them apart,
/// with the reason.
#[test]
fn prometheus_says_when_nvml_could_not_be_used_and_why() {
    let text = rendered(&info_report("gpu/no_driver.json"), Format::Prometheus);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let up = scrape
        .samples
        .iter()
        .find(|s| s.metric == "hwbench_nvml_up")
        .unwrap();
    assert!(matches!(up.value, prometheus_parse::Value::Gauge(v) if v == 0.0));
    assert!(
        !up.labels.get("reason").unwrap_or_default().is_empty(),
        "{text}"
    );
}
