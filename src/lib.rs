//! hwbench: what machine is this, and how fast does a small model train on each of its devices?
//!
//! Data flows one way: probes and measurements fill plain serde structs (`info`, `train`),
//! and the renderers in `render` turn any of them into a terminal table, Markdown or JSON.

pub mod cli;
pub mod diff;
pub mod error;
pub mod fleet;
pub mod info;
pub mod output;
pub mod redact;
pub mod render;
pub mod report;
pub mod train;
