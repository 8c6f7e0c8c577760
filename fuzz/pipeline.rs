//! What the `report_parser` fuzz target does with one input, shared with the regression test
//! (`tests/fuzz_regressions.rs`) that replays every crash the fuzzer has found.
//!
//! The bytes go through `saved::parse` (what `hwbench diff` and `hwbench fleet` do with a file);
//! a report that passes is read into its typed form, compared with itself and with a bare report
//! of its kind, grouped as a fleet, and every result is rendered in all formats. Whatever a file
//! holds, hwbench must answer with an error or a result, never a panic.

use hwbench::fleet::Node;
use hwbench::render::{self, Format, Render, Style};
use hwbench::saved::{self, Saved, Typed};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(report) = saved::parse("fuzz.json", text) else {
        return;
    };
    match report.typed() {
        Ok(Typed::Info(typed)) => render_all(typed.as_ref()),
        Ok(Typed::TrainCompare(typed)) => render_all(typed.as_ref()),
        Ok(Typed::Report(typed)) => render_all(typed.as_ref()),
        Err(_) => {}
    }
    let bare = bare(&report);
    for other in [&report, &bare] {
        if let Ok(diff) = hwbench::diff::diff_reports(&report, other) {
            render_all(&diff);
        }
    }
    let node = |name: &str, report: &Saved| Node {
        name: name.to_string(),
        report: report.clone(),
    };
    let fleet = [node("a", &report), node("b", &report), node("c", &bare)];
    if let Ok(fleet) = hwbench::fleet::analyse(&fleet) {
        render_all(&fleet);
    }
}

fn render_all<R: Render>(report: &R) {
    for format in [
        Format::Table,
        Format::Markdown,
        Format::Json,
        Format::Prometheus,
    ] {
        let _ = render::render(report, format, Style::plain());
    }
}

/// A report of the same kind and schema with nothing else in it.
fn bare(report: &Saved) -> Saved {
    Saved {
        json: serde_json::json!({
            "kind": report.json["kind"],
            "schema_version": report.json["schema_version"],
        }),
        ..report.clone()
    }
}
