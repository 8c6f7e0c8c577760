//! hwbench: what machine is this, and how fast does a small model train on each of its devices?
//!
//! Data flows one way: probes and measurements fill plain serde structs (`info`, `train`,
//! `scale`), and the renderers in `render` turn any of them into a terminal table, Markdown, JSON
//! or Prometheus metrics. Rooms depend one way: `cli` → `commands` → `bug_report`, `diff`,
//! `fleet`, `saved`, `worker` → `train`, `scale` (two jobs on one engine) → `engine`, `info`,
//! `companion` → `process`, `redact`, `progress` → `render`, `output`, `readable`, `stats`, `error`
//! (see docs/ARCHITECTURE.md, checked by tests/all/architecture.rs).

pub mod bug_report;
pub mod cli;
pub mod commands;
pub mod companion;
pub mod diff;
pub mod engine;
pub mod error;
pub mod fleet;
pub mod info;
pub mod man;
pub mod output;
pub mod process;
pub mod progress;
pub mod readable;
pub mod redact;
pub mod render;
pub mod saved;
pub mod scale;
pub mod schema;
pub mod stats;
pub mod train;
pub mod worker;
