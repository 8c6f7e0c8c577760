//! Reading saved reports back, for `diff`, `fleet` and anything that compares runs: the one place
//! that checks a file is a report hwbench wrote — size, JSON, kind, schema version — and reads it
//! into the typed report of that kind.
//!
//! Loading is two steps so that commands can compare kinds before they read whole reports:
//! [`read`]/[`parse`] check the envelope, [`Saved::typed`] reads the report. Both work on the text
//! itself, never on a tree of every value: memory stays close to the file's size.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::bug_report::{self, BugReport};
use crate::error::UsageError;
use crate::info::{self, InfoReport};
use crate::scale::{self, ScaleReport};
use crate::train::results::{self, TrainCompareReport};

/// The largest report hwbench reads back (a real one is a few hundred kilobytes).
pub const MAX_REPORT_BYTES: u64 = 256 << 20;

/// The kinds of report hwbench reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Info,
    TrainCompare,
    Scale,
    /// A bug report (`hwbench report`).
    Report,
}

impl Kind {
    /// As in the report's `kind` field.
    pub fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::TrainCompare => "train-compare",
            Self::Scale => "scale",
            Self::Report => "report",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Info, Self::TrainCompare, Self::Scale, Self::Report]
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// The newest schema version of this kind that this hwbench understands.
    fn schema_version(self) -> u32 {
        match self {
            Self::Info => info::SCHEMA_VERSION,
            Self::TrainCompare => results::SCHEMA_VERSION,
            Self::Scale => scale::results::SCHEMA_VERSION,
            Self::Report => bug_report::SCHEMA_VERSION,
        }
    }
}

/// A report file whose envelope (size, JSON, kind, schema version) has been checked.
#[derive(Clone, Debug)]
pub struct Saved {
    /// How messages name it: the path it was read from.
    pub name: String,
    pub kind: Kind,
    /// The document as read, for listing field differences.
    pub text: String,
}

/// A report read into the types hwbench writes it from.
#[derive(Clone, Debug)]
pub enum Typed {
    Info(Box<InfoReport>),
    TrainCompare(Box<TrainCompareReport>),
    Scale(Box<ScaleReport>),
    Report(Box<BugReport>),
}

impl Typed {
    /// The machine part: the report itself, or a bug report's.
    pub fn machine(&self) -> Option<&InfoReport> {
        match self {
            Self::Info(report) => Some(report),
            Self::Report(report) => Some(&report.info),
            Self::TrainCompare(_) | Self::Scale(_) => None,
        }
    }

    /// Every field name of the typed report (nested ones too): hwbench's own vocabulary, which
    /// redaction leaves alone in `diff`'s field paths.
    pub fn field_names(&self) -> std::collections::BTreeSet<String> {
        fn collect(value: &serde_json::Value, names: &mut std::collections::BTreeSet<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, child) in map {
                        names.insert(key.clone());
                        collect(child, names);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, names)),
                _ => {}
            }
        }
        let value = match self {
            Self::Info(report) => serde_json::to_value(report),
            Self::TrainCompare(report) => serde_json::to_value(report),
            Self::Scale(report) => serde_json::to_value(report),
            Self::Report(report) => serde_json::to_value(report),
        };
        let mut names = std::collections::BTreeSet::new();
        if let Ok(value) = value {
            collect(&value, &mut names);
        }
        names
    }

    /// The training part: the report itself, or a bug report's quick run.
    pub fn training(&self) -> Option<&TrainCompareReport> {
        match self {
            Self::TrainCompare(report) => Some(report),
            Self::Report(report) => Some(&report.train_compare),
            Self::Info(_) | Self::Scale(_) => None,
        }
    }

    /// The scale part: the report itself, or a bug report's quick run (absent in older ones).
    pub fn scaling(&self) -> Option<&ScaleReport> {
        match self {
            Self::Scale(report) => Some(report),
            Self::Report(report) => report.scale.as_ref(),
            Self::Info(_) | Self::TrainCompare(_) => None,
        }
    }
}

/// Reads and checks one report file.
pub fn read(path: &Path) -> anyhow::Result<Saved> {
    let name = path.display().to_string();
    let cannot = |e: std::io::Error| UsageError::new(format!("cannot read {name}: {e}"));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let too_large = || {
        UsageError::new(format!(
            "{name} is larger than {} MiB, more than any hwbench report: give the --format json output of info, train-compare, scale or report",
            MAX_REPORT_BYTES >> 20
        ))
    };
    if file.metadata().map_err(cannot)?.len() > MAX_REPORT_BYTES {
        return Err(too_large().into());
    }
    // A pipe or a growing file is read only up to the limit, too.
    let mut bytes = Vec::new();
    file.take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(too_large().into());
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        UsageError::new(format!(
            "{name} is not a hwbench JSON report: not UTF-8 text"
        ))
    })?;
    parse(&name, text)
}

/// The fields every report starts with; everything else is skipped without being kept.
#[derive(Deserialize)]
struct Envelope {
    kind: Option<Value>,
    schema_version: Option<Value>,
}

/// Checks the text of one report, called `name` in messages (what [`read`] does after reading).
pub fn parse(name: &str, text: String) -> anyhow::Result<Saved> {
    // Editors on Windows start UTF-8 files with a byte-order mark; JSON has no place for one.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    let envelope: Envelope = serde_json::from_str(&text)
        .map_err(|e| UsageError::new(format!("{name} is not a hwbench JSON report: {e}")))?;
    let kind = match &envelope.kind {
        Some(Value::String(kind)) => Kind::from_name(kind),
        _ => None,
    };
    let kind = kind.ok_or_else(|| {
        let shown = envelope.kind.as_ref().map_or("none".to_string(), |k| {
            crate::render::truncate(&k.to_string(), 40)
        });
        UsageError::new(format!(
            "{name} is not a hwbench report (kind {shown}): give the --format json output of info, train-compare, scale or report"
        ))
    })?;
    let known = kind.schema_version();
    match envelope.schema_version {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v <= u64::from(known)) => Ok(Saved {
            name: name.to_string(),
            kind,
            text,
        }),
        Some(Value::Number(n)) if n.as_u64().is_some() => Err(UsageError::new(format!(
            "{name} uses schema version {n}, newer than this hwbench understands ({known}); upgrade hwbench"
        ))
        .into()),
        Some(other) => Err(UsageError::new(format!(
            "{name} has schema_version {}, not a whole number such as {known}",
            crate::render::truncate(&other.to_string(), 40)
        ))
        .into()),
        None => Err(UsageError::new(format!("{name} has no schema_version")).into()),
    }
}

impl Saved {
    /// The whole report, typed; a field of the wrong type or a missing one is named.
    pub fn typed(&self) -> anyhow::Result<Typed> {
        let invalid = |e: serde_json::Error| {
            UsageError::new(format!(
                "{} is not a readable {} report: {e}",
                self.name,
                self.kind.name()
            ))
        };
        Ok(match self.kind {
            Kind::Info => Typed::Info(Box::new(serde_json::from_str(&self.text).map_err(invalid)?)),
            Kind::TrainCompare => {
                Typed::TrainCompare(Box::new(serde_json::from_str(&self.text).map_err(invalid)?))
            }
            Kind::Scale => {
                Typed::Scale(Box::new(serde_json::from_str(&self.text).map_err(invalid)?))
            }
            Kind::Report => {
                Typed::Report(Box::new(serde_json::from_str(&self.text).map_err(invalid)?))
            }
        })
    }
}
