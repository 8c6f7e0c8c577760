//! `hwbench scale`: the course's model and bigger ones, up to sizes that fill the hardware, on
//! every device — where each device pays off, and how close it gets to its peak.
//!
//! One job on the engine (`crate::engine`), beside `train-compare`: the columns are the engine's
//! (`engine::columns`), each column's worker is started and spoken to through
//! `engine::conversation`, and the worker trains with `engine::session::train` on data from
//! `engine::synthetic`. What is its own: the ladder (`ladder`), its messages (`protocol`) and
//! worker side (`worker`), what to try next on each device (`runner`), the report (`results`), its
//! figures, statuses and words (`analysis`, `verdict`), and how it reads (`show`, `plot`).

pub mod analysis;
pub mod ladder;
pub mod plan;
pub mod plot;
pub mod protocol;
pub mod results;
pub mod runner;
pub mod show;
pub mod verdict;
pub mod worker;

pub use plan::ScaleSettings;
pub use results::ScaleReport;

/// Works out what the measurements mean, once every column has run: throughput, shares of peak,
/// crossovers and every column's status (`analysis`), then the verdict.
pub fn analyse(report: &mut ScaleReport) {
    analysis::add_derived_figures(report);
    report.verdict = verdict::conclusions(report);
}
