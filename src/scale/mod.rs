//! `hwbench scale`: the course's model and bigger ones, up to sizes that fill the hardware, on
//! every device — where each device pays off, and how close it gets to its peak.
//!
//! It reuses `train-compare`'s machinery rather than copying it: the columns are planned by
//! `train::plan::columns`, each column's worker is started and spoken to through
//! `train::conversation`, and the worker trains with `train::session::train` on data from
//! `train::synthetic`. What is its own: the ladder (`ladder`), what to try next on each device
//! (`runner`), the report (`results`), its figures and words (`analysis`, `verdict`), and how it
//! reads (`show`, `plot`).

pub mod analysis;
pub mod ladder;
pub mod plan;
pub mod plot;
pub mod results;
pub mod runner;
pub mod show;
pub mod verdict;

pub use plan::ScaleSettings;
pub use results::ScaleReport;
