//! `hwbench train-compare`: the course's iris MLP on every device, per-epoch and sync costs side
//! by side, a correctness gate and a verdict — one job on the engine (`crate::engine`).
//!
//! In the parent process: `plan` turns settings into columns and the training problem, `runner`
//! starts one worker per column and gathers what it measures into a `TrainCompareReport`
//! (`results`), `analysis` adds the figures computed from measurements and every column's status,
//! `verdict` says what they mean, `show` and `plot` draw them. In the worker process: `worker`
//! runs one device's session, spoken to over `protocol`. `sample` (unit tests only) builds
//! reports from chosen timings.

pub mod analysis;
pub mod plan;
pub mod plot;
pub mod protocol;
pub mod results;
pub mod runner;
#[cfg(test)]
pub mod sample;
pub mod show;
pub mod verdict;
pub mod worker;

use results::TrainCompareReport;

/// Works out what the measurements mean, once every column has run: the derived figures and every
/// column's status (`analysis`), then the verdict.
pub fn analyse(report: &mut TrainCompareReport) {
    analysis::add_derived_figures(report);
    report.verdict = verdict::conclusions(report);
}
