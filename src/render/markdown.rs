//! Markdown for a GitHub or GitLab issue: the summary open, everything else in a `<details>` block.

use super::{Body, Document, Section};

pub fn render(doc: &Document) -> String {
    let mut out = format!("### {}\n\n", escape_html(&doc.title));
    for section in &doc.summary {
        write_section(&mut out, section);
    }
    if !doc.details.is_empty() {
        out.push_str("<details><summary>Details</summary>\n\n");
        for section in &doc.details {
            write_section(&mut out, section);
        }
        out.push_str("</details>\n");
    }
    out
}

fn write_section(out: &mut String, section: &Section) {
    out.push_str(&format!("**{}**\n\n", escape(&section.title)));
    match &section.body {
        Body::Pairs(pairs) => {
            out.push_str("| | |\n|---|---|\n");
            for (key, value) in pairs {
                out.push_str(&format!("| {} | {} |\n", escape(key), escape(value)));
            }
        }
        Body::Grid { header, rows } => {
            write_row(out, header);
            out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
            for row in rows {
                write_row(out, row);
            }
        }
        Body::Text(paragraphs) => {
            for paragraph in paragraphs {
                out.push_str(&escape_html(paragraph));
                out.push_str("\n\n");
            }
            return;
        }
    }
    out.push('\n');
}

fn write_row(out: &mut String, cells: &[String]) {
    out.push('|');
    for cell in cells {
        out.push_str(&format!(" {} |", escape(cell)));
    }
    out.push('\n');
}

/// Keeps a cell inside its table: HTML escaped, pipes escaped, line breaks as `<br>`.
fn escape(text: &str) -> String {
    escape_html(text).replace('|', "\\|").replace('\n', "<br>")
}

/// `<`, `>` and `&` as entities: text from outside hwbench (a process named `</details>`, a
/// Python `<module>`) must not become HTML that GitHub hides or that closes the report's own
/// `<details>` block.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
