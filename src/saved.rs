//! Reading saved reports back, for `diff`, `fleet` and anything that compares runs: the one place
//! that checks a file is JSON, a kind hwbench writes and a schema version it understands, and
//! reads it into the typed report of that kind.
//!
//! Loading is two steps so that commands can compare kinds before they read whole reports:
//! [`read`]/[`parse`] check the envelope, [`Saved::typed`] reads the report.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::bug_report::{self, BugReport};
use crate::error::UsageError;
use crate::info::{self, InfoReport};
use crate::train::{TrainCompareReport, results};

/// The kinds of report hwbench reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Info,
    TrainCompare,
    /// A bug report (`hwbench report`).
    Report,
}

impl Kind {
    /// As in the report's `kind` field.
    pub fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::TrainCompare => "train-compare",
            Self::Report => "report",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Info, Self::TrainCompare, Self::Report]
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// The newest schema version of this kind that this hwbench understands.
    fn schema_version(self) -> u32 {
        match self {
            Self::Info => info::SCHEMA_VERSION,
            Self::TrainCompare => results::SCHEMA_VERSION,
            Self::Report => bug_report::SCHEMA_VERSION,
        }
    }
}

/// A report file whose envelope (JSON, kind, schema version) has been checked.
#[derive(Clone, Debug)]
pub struct Saved {
    /// How messages name it: the path it was read from.
    pub name: String,
    pub kind: Kind,
    /// The document as read, for listing field differences.
    pub json: Value,
}

/// A report read into the types hwbench writes it from.
#[derive(Clone, Debug)]
pub enum Typed {
    Info(Box<InfoReport>),
    TrainCompare(Box<TrainCompareReport>),
    Report(Box<BugReport>),
}

impl Typed {
    /// The training part: the report itself, or a bug report's quick run.
    pub fn training(&self) -> Option<&TrainCompareReport> {
        match self {
            Self::TrainCompare(report) => Some(report),
            Self::Report(report) => Some(&report.train_compare),
            Self::Info(_) => None,
        }
    }
}

/// Reads and checks one report file.
pub fn read(path: &Path) -> anyhow::Result<Saved> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(format!("cannot read {}: {e}", path.display())))?;
    parse(&path.display().to_string(), &text)
}

/// Checks the text of one report, called `name` in messages (what [`read`] does after reading).
pub fn parse(name: &str, text: &str) -> anyhow::Result<Saved> {
    let json: Value = serde_json::from_str(text)
        .map_err(|e| UsageError::new(format!("{name} is not a hwbench JSON report: {e}")))?;
    let kind_name = json["kind"].as_str().unwrap_or_default();
    let kind = Kind::from_name(kind_name).ok_or_else(|| {
        UsageError::new(format!(
            "{name} is not a hwbench report (kind {kind_name:?}): give the --format json output of info, train-compare or report"
        ))
    })?;
    let known = kind.schema_version();
    match json["schema_version"].as_u64() {
        Some(v) if v <= u64::from(known) => Ok(Saved {
            name: name.to_string(),
            kind,
            json,
        }),
        Some(v) => Err(UsageError::new(format!(
            "{name} uses schema version {v}, newer than this hwbench understands ({known}); upgrade hwbench"
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
            Kind::Info => Typed::Info(Box::new(
                InfoReport::deserialize(&self.json).map_err(invalid)?,
            )),
            Kind::TrainCompare => Typed::TrainCompare(Box::new(
                TrainCompareReport::deserialize(&self.json).map_err(invalid)?,
            )),
            Kind::Report => Typed::Report(Box::new(
                BugReport::deserialize(&self.json).map_err(invalid)?,
            )),
        })
    }
}
