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
