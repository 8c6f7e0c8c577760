//! The JSON Schema of every report kind, generated from the report types themselves (schemars).
//! The files under docs/schema/ are these schemas; tests/all/schema.rs fails when they are stale
//! and validates every command's JSON output against them.

use schemars::{Schema, schema_for};

use crate::bug_report::BugReport;
use crate::diff::DiffReport;
use crate::fleet::FleetReport;
use crate::info::InfoReport;
use crate::scale::results::ScaleReport;
use crate::train::results::TrainCompareReport;

/// Each report kind (its `kind` field, and its file `docs/schema/<kind>.schema.json`) and its
/// schema.
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        ("info", titled(schema_for!(InfoReport), "hwbench info")),
        (
            "train-compare",
            titled(schema_for!(TrainCompareReport), "hwbench train-compare"),
        ),
        ("scale", titled(schema_for!(ScaleReport), "hwbench scale")),
        ("report", titled(schema_for!(BugReport), "hwbench report")),
        ("diff", titled(schema_for!(DiffReport), "hwbench diff")),
        ("fleet", titled(schema_for!(FleetReport), "hwbench fleet")),
    ]
}

/// The schema as its committed file holds it: pretty JSON, a newline at the end.
pub fn file_text(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema is plain JSON");
    text.push('\n');
    text
}

fn titled(mut schema: Schema, command: &str) -> Schema {
    schema.insert(
        "title".to_string(),
        format!("{command} --format json").into(),
    );
    schema
}
