//! The neutral shape every report is drawn from: titled sections of pairs, grids and text.

/// A report as the table and Markdown renderers see it.
#[derive(Clone, Debug, Default)]
pub struct Document {
    pub title: String,
    /// Shown first and always open (Markdown puts everything else inside `<details>`).
    pub summary: Vec<Section>,
    pub details: Vec<Section>,
}

#[derive(Clone, Debug)]
pub struct Section {
    pub title: String,
    pub body: Body,
}

#[derive(Clone, Debug)]
pub enum Body {
    /// Two columns: what, and its value.
    Pairs(Vec<(String, String)>),
    /// A grid with a header row.
    Grid {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// Paragraphs of plain text.
    Text(Vec<String>),
}

impl Document {
    /// Every text of the document through [`clean`], for a terminal or a page.
    pub fn cleaned(&self) -> Self {
        let clean = |text: &String| clean(text);
        let section = |s: &Section| Section {
            title: clean(&s.title),
            body: match &s.body {
                Body::Pairs(pairs) => {
                    Body::Pairs(pairs.iter().map(|(k, v)| (clean(k), clean(v))).collect())
                }
                Body::Grid { header, rows } => Body::Grid {
                    header: header.iter().map(clean).collect(),
                    rows: rows
                        .iter()
                        .map(|row| row.iter().map(clean).collect())
                        .collect(),
                },
                Body::Text(paragraphs) => Body::Text(paragraphs.iter().map(clean).collect()),
            },
        };
        Self {
            title: clean(&self.title),
            summary: self.summary.iter().map(section).collect(),
            details: self.details.iter().map(section).collect(),
        }
    }
}

impl Section {
    pub fn pairs(title: impl Into<String>, pairs: Vec<(String, String)>) -> Self {
        Self {
            title: title.into(),
            body: Body::Pairs(pairs),
        }
    }

    pub fn grid(title: impl Into<String>, header: Vec<String>, rows: Vec<Vec<String>>) -> Self {
        Self {
            title: title.into(),
            body: Body::Grid { header, rows },
        }
    }

    pub fn text(title: impl Into<String>, paragraphs: Vec<String>) -> Self {
        Self {
            title: title.into(),
            body: Body::Text(paragraphs),
        }
    }
}

/// Builds the rows of a [`Body::Pairs`] section, showing a missing value as `n/a`.
#[derive(Default)]
pub struct Pairs(Vec<(String, String)>);

impl Pairs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// Adds `value` formatted, or `n/a` when it is unknown.
    pub fn opt<T>(&mut self, key: &str, value: Option<T>, show: impl Fn(T) -> String) -> &mut Self {
        let text = value.map(show).unwrap_or_else(|| NA.to_string());
        self.add(key, text)
    }

    pub fn finish(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.0)
    }
}

/// What a table shows for a value that could not be read.
pub const NA: &str = "n/a";

/// Text as it may reach a terminal or a rendered page: terminal escape sequences (CSI, OSC, and
/// two-character ones) and control characters removed — line breaks and tabs kept, carriage
/// returns dropped — and the bidirectional controls that make text read in another order
/// (U+202E and its kin) removed. The one cleaner for text from outside, in every format but
/// JSON, which keeps it whole and escaped.
pub fn clean(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // ESC [ … final byte, ESC ] … BEL/ST, or a lone ESC + one character.
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            // The single-character CSI and OSC of C1.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\n' | '\t' => clean.push(c),
            '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => {}
            c if c.is_control() => {}
            c => clean.push(c),
        }
    }
    clean
}
