//! The terminal table: one comfy-table per section, sized for an 80-column terminal.

use comfy_table::{Attribute, Cell, ContentArrangement, Table, presets};

use super::{Body, Document, Section, Style};

pub fn render(doc: &Document, style: Style) -> String {
    let doc = &doc.cleaned();
    let mut out = String::new();
    out.push_str(&heading(&doc.title, style));
    out.push('\n');
    for section in doc.summary.iter().chain(&doc.details) {
        out.push('\n');
        write_section(&mut out, section, style);
    }
    out
}

fn heading(text: &str, style: Style) -> String {
    if style.color {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The most characters a table cell shows: a longer value is cut with "…" (the JSON form keeps it
/// whole). Laying out a table costs more than linear time in its longest word.
const CELL_CHARS: usize = 500;

fn cell(text: &str) -> Cell {
    Cell::new(crate::render::truncate(text, CELL_CHARS))
}

fn write_section(out: &mut String, section: &Section, style: Style) {
    out.push_str(&heading(&section.title, style));
    out.push('\n');
    match &section.body {
        Body::Pairs(pairs) => {
            let mut table = new_table(style);
            for (key, value) in pairs {
                table.add_row(vec![cell(key), cell(value)]);
            }
            out.push_str(&table.to_string());
            out.push('\n');
        }
        Body::Grid { header, rows } => {
            let mut table = new_table(style);
            table.set_header(header.iter().map(|h| header_cell(h, style)));
            for row in rows {
                table.add_row(row.iter().map(|text| cell(text)));
            }
            out.push_str(&table.to_string());
            out.push('\n');
        }
        Body::Text(paragraphs) => {
            let width = usize::from(style.width.unwrap_or(80));
            for paragraph in paragraphs {
                out.push_str(&wrap(paragraph, width));
                out.push('\n');
            }
        }
    }
}

fn new_table(style: Style) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if let Some(width) = style.width {
        table.set_width(width);
    }
    if style.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table
}

fn header_cell(text: &str, style: Style) -> Cell {
    if style.color {
        cell(text).add_attribute(Attribute::Bold)
    } else {
        cell(text)
    }
}

/// Greedy word wrap for the verdict paragraphs.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}
