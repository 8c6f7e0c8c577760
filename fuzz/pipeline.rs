//! What the `report_parser` fuzz target does with one input, shared with the regression test
//! (`tests/fuzz_regressions.rs`) that replays every crash the fuzzer has found.
//!
//! The bytes go through `diff::parse` (what `hwbench diff` and `hwbench fleet` do with a file);
//! a report that passes is compared with itself and with a bare report of its kind, grouped as a
//! fleet, read into the typed reports, and every result is rendered in all formats. Whatever a
//! file holds, hwbench must answer with an error or a result, never a panic.

use hwbench::render::{self, Format, Report, Style};
use serde_json::Value;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(report) = hwbench::diff::parse("fuzz.json", text) else {
        return;
    };
    for other in [&report, &bare(&report)] {
        if let Ok(diff) = hwbench::diff::compare_values(("a", &report), ("b", other)) {
            render_all(&diff);
        }
    }
    let fleet = [
        ("a".to_string(), report.clone(), "a.json".to_string()),
        ("b".to_string(), report.clone(), "b.json".to_string()),
        ("c".to_string(), bare(&report), "c.json".to_string()),
    ];
    if let Ok(fleet) = hwbench::fleet::analyse_reports(&fleet) {
        render_all(&fleet);
    }
    typed::<hwbench::info::InfoReport>(&report);
    typed::<hwbench::train::CompareReport>(&report);
    typed::<hwbench::report::BugReport>(&report);
}

fn render_all<R: Report>(report: &R) {
    for format in [
        Format::Table,
        Format::Markdown,
        Format::Json,
        Format::Prometheus,
    ] {
        let _ = render::render(report, format, Style::plain());
    }
}

fn typed<T: serde::de::DeserializeOwned + Report>(value: &Value) {
    if let Ok(report) = serde_json::from_value::<T>(value.clone()) {
        render_all(&report);
    }
}

/// A report of the same kind and schema with nothing else in it.
fn bare(report: &Value) -> Value {
    serde_json::json!({ "kind": report["kind"], "schema_version": report["schema_version"] })
}
