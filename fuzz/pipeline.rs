//! What the `report_parser` fuzz target does with one input, shared with the regression test
//! (`tests/all/fuzz_regressions.rs`) that replays every crash the fuzzer has found.
//!
//! The bytes go through `saved::parse` (what `hwbench diff` and `hwbench fleet` do with a file);
//! a report that passes is read into its typed form, compared with itself and with a bare report
//! of its kind (plain and redacted), grouped as a fleet, and every result is rendered in all
//! formats (a scale report also as its chart). Every line of the input is also read as a worker's
//! message and checked the way the parent checks a companion's. Whatever a file holds, hwbench must answer with an error or a
//! result, never a panic.

use hwbench::engine::SyncPolicy;
use hwbench::engine::conversation::Checks;
use hwbench::engine::device::DeviceSpec;
use hwbench::engine::model::InitWeights;
use hwbench::engine::protocol::Message;
use hwbench::engine::synthetic::Size;
use hwbench::fleet::Node;
use hwbench::redact::Redactor;
use hwbench::render::{self, Format, Render, Style};
use hwbench::saved::{self, Saved, Typed};
use hwbench::scale::protocol::{LadderStep, PointTiming, ScaleCheck, ScaleEvent};
use hwbench::train::protocol::{Event, EventCheck, SessionRequest, SessionStep, TrainConfig};

/// Both targets' work on one input.
pub fn run(data: &[u8]) {
    reports(data);
    worker_messages(data);
}

/// The `report_parser` target: the input as a saved report, through `diff` and `fleet`.
pub fn reports(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(report) = saved::parse("fuzz.json", text.to_string()) else {
        return;
    };
    match report.typed() {
        Ok(Typed::Info(typed)) => render_all(typed.as_ref()),
        Ok(Typed::TrainCompare(typed)) => render_all(typed.as_ref()),
        Ok(Typed::Scale(typed)) => {
            render_all(typed.as_ref());
            let _ = hwbench::scale::plot::svg(&typed);
        }
        Ok(Typed::Report(typed)) => render_all(typed.as_ref()),
        Err(_) => {}
    }
    let bare = bare(&report);
    let redactor = Redactor::default();
    for other in [&report, &bare] {
        for redacting in [None, Some(&redactor)] {
            if let Ok(diff) =
                hwbench::diff::diff_reports(&report, other, redacting, hwbench::diff::THRESHOLD)
            {
                render_all(&diff);
            }
        }
    }
    let node = |name: &str, report: &Saved| Node {
        name: name.to_string(),
        report: report.clone(),
    };
    let fleet = [node("a", &report), node("b", &report), node("c", &bare)];
    if let Ok(fleet) = hwbench::fleet::analyse(&fleet, Vec::new(), Some(&redactor)) {
        render_all(&fleet);
    }
}

/// The `worker_messages` target: each line as a worker's message, checked as the parent checks a
/// companion's for a small session and for a scale ladder.
pub fn worker_messages(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let request = SessionRequest {
        device: DeviceSpec::Cuda { ordinal: 0 },
        config: TrainConfig {
            hidden: 10,
            lr: 0.01,
            epochs: 300,
            split_seed: 42,
            init: InitWeights::from_seed(0, 10),
        },
        policies: vec![SyncPolicy::EVERY_EPOCH, SyncPolicy::NEVER],
        warmup_epochs: 10,
    };
    let mut check = EventCheck::new(&request);
    check.asked(SessionStep::Round { epochs: 300 });
    let mut scale = ScaleCheck::new(PointTiming {
        runs: hwbench::engine::runs::Runs::adaptive(10),
        work_s: 0.6,
        warmup_s: 0.1,
    });
    scale.asked(LadderStep::Point {
        size: Size::COURSE,
        max_epoch_s: 1.0,
    });
    for line in text.lines() {
        if let Ok(Message::Event(event)) = serde_json::from_str::<Message<Event>>(line) {
            let _ = check.check(&event);
        }
        if let Ok(Message::Event(event)) = serde_json::from_str::<Message<ScaleEvent>>(line) {
            let _ = scale.check(&event);
        }
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
        text: format!(
            r#"{{"kind": "{}", "schema_version": 1}}"#,
            report.kind.name()
        ),
        ..report.clone()
    }
}
