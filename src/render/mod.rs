//! Turns any report into text: a terminal table, paste-ready Markdown, JSON, or Prometheus metrics.
//!
//! Reports describe themselves once as a [`Document`] (titled sections of key/value pairs, grids and
//! text) and once as Prometheus [`prometheus::Metric`]s; the table and Markdown renderers each draw
//! a `Document`, and JSON is the report's own serde form, so every command gets all four formats
//! from the same code.

pub mod chart;
pub mod document;
pub mod json;
pub mod markdown;
pub mod prometheus;
pub mod table;

pub use document::{Body, Document, Section, clean};

/// A report that can be rendered: serialisable as JSON, describable as a [`Document`], and
/// countable as Prometheus metrics.
pub trait Render: serde::Serialize {
    fn document(&self) -> Document;
    fn metrics(&self) -> Vec<prometheus::Metric>;

    /// Markdown; a report with a size limit (GitHub's, for `hwbench report`) fits itself.
    fn markdown(&self) -> String {
        markdown::render(&self.document())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for the terminal.
    Table,
    /// GitHub/GitLab-flavoured Markdown, ready to paste into an issue.
    Markdown,
    /// The documented JSON schema (see docs/json-schema.md).
    Json,
    /// Prometheus text format, for node_exporter's textfile collector.
    Prometheus,
}

/// How the terminal table is drawn.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
    /// Width to wrap to; `None` lets the table size itself to the terminal.
    pub width: Option<u16>,
}

impl Style {
    /// Colour only on a terminal, never with `NO_COLOR` or `TERM=dumb`; 80 columns when not on a
    /// terminal.
    pub fn for_stdout(to_terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let term = std::env::var("TERM").unwrap_or_default();
        let columns = std::env::var("COLUMNS").ok();
        Self::choose(to_terminal, no_color, &term, columns.as_deref())
    }

    /// On a terminal the table takes its width (`COLUMNS` when it says one a table fits in: a
    /// `COLUMNS=0` or `COLUMNS=5` would give one-character cells); elsewhere 80 columns.
    fn choose(to_terminal: bool, no_color: bool, term: &str, columns: Option<&str>) -> Self {
        let width = match columns.map(|c| c.trim().parse::<u16>()) {
            _ if !to_terminal => Some(80),
            Some(Ok(columns)) if columns >= Self::MIN_WIDTH => Some(columns),
            Some(_) => Some(80),
            None => None,
        };
        Self {
            color: to_terminal && !no_color && term != "dumb",
            width,
        }
    }

    /// The narrowest table width taken from `COLUMNS`.
    pub const MIN_WIDTH: u16 = 40;

    pub fn plain() -> Self {
        Self {
            color: false,
            width: Some(80),
        }
    }
}

/// At most `max` characters, with "…" when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

pub fn render<R: Render>(report: &R, format: Format, style: Style) -> anyhow::Result<String> {
    Ok(match format {
        Format::Table => table::render(&report.document(), style),
        Format::Markdown => document::clean(&report.markdown()),
        Format::Json => json::render(report)?,
        Format::Prometheus => prometheus::render(&report.metrics()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_that_wants_it() {
        assert!(Style::choose(true, false, "xterm-256color", None).color);
        assert!(!Style::choose(true, true, "xterm", None).color, "NO_COLOR");
        assert!(!Style::choose(true, false, "dumb", None).color, "TERM=dumb");
        assert!(!Style::choose(false, false, "xterm", None).color, "a pipe");
        // COLUMNS that no table fits in is not taken; one that fits is.
        assert_eq!(
            Style::choose(true, false, "xterm", Some("0")).width,
            Some(80)
        );
        assert_eq!(
            Style::choose(true, false, "xterm", Some("5")).width,
            Some(80)
        );
        assert_eq!(
            Style::choose(true, false, "xterm", Some("120")).width,
            Some(120)
        );
        assert_eq!(Style::choose(true, false, "xterm", None).width, None);
        assert_eq!(
            Style::choose(false, false, "xterm", Some("0")).width,
            Some(80)
        );
    }

    #[test]
    fn truncate_counts_characters_not_bytes() {
        assert_eq!(truncate("µµµµ", 2), "µµ…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
