//! The field-by-field walk of two JSON documents, on their text: both are walked side by side,
//! identical parts are recognised by their text and skipped whole, and only what differs is ever
//! unpacked, so time and memory stay linear in the input whatever it holds (a report with ten
//! million array elements takes a few hundred milliseconds and no more memory than its text).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::redact::Redactor;

/// One field whose values differ between the two reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldDifference {
    /// Where the field is, e.g. "gpu.devices[0].name".
    pub path: String,
    /// `null` when the field is missing from that report.
    pub a: Option<String>,
    pub b: Option<String>,
}

/// How many differences are listed; the rest are counted.
pub const LISTED: usize = 10_000;

/// What the walk found.
#[derive(Default)]
pub struct Differences {
    pub listed: Vec<FieldDifference>,
    /// Differences beyond [`LISTED`].
    pub not_listed: u64,
}

impl Differences {
    /// Whether another difference would still be listed (else it is only counted).
    fn listing(&self) -> bool {
        self.listed.len() < LISTED
    }

    fn push(&mut self, path: &str, a: Option<String>, b: Option<String>) {
        if self.listed.len() < LISTED {
            self.listed.push(FieldDifference {
                path: path.to_string(),
                a,
                b,
            });
        } else {
            self.not_listed += 1;
        }
    }

    pub fn extend(&mut self, other: Differences) {
        for difference in other.listed {
            self.push(&difference.path, difference.a, difference.b);
        }
        self.not_listed += other.not_listed;
    }
}

/// The walk's rules: fields never compared, and the redaction applied to values before they are
/// compared and shown.
pub struct Walk<'a> {
    /// Top-level fields compared elsewhere.
    pub skip: &'a [&'a str],
    /// Fields that change by the second, by path with `[]` for any index.
    pub volatile: &'a [&'a str],
    pub redactor: Option<&'a Redactor>,
    /// Field names never redacted in paths.
    pub field_names: &'a FieldNames<'a>,
}

impl Walk<'_> {
    /// Every leaf that differs between the documents `a` and `b`, in path order.
    pub fn differences(&self, a: &str, b: &str) -> Differences {
        let mut out = Differences::default();
        let mut path = String::new();
        self.walk(Some(a), Some(b), &mut path, &mut out);
        out
    }

    fn walk(&self, a: Option<&str>, b: Option<&str>, path: &mut String, out: &mut Differences) {
        let (a, b) = (a.map(str::trim), b.map(str::trim));
        if a == b {
            return;
        }
        match (a.map(shape), b.map(shape)) {
            (Some(Shape::Object(x)), Some(Shape::Object(y))) => {
                let (x, y) = (object_members(x), object_members(y));
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    self.member(key, x.get(key).copied(), y.get(key).copied(), path, out);
                }
            }
            (Some(Shape::Array(x)), Some(Shape::Array(y))) => {
                let (mut x, mut y) = (items(x), items(y));
                for index in 0.. {
                    let (ex, ey) = (x.next(), y.next());
                    if ex.is_none() && ey.is_none() {
                        break;
                    }
                    let length = path.len();
                    let _ = write!(path, "[{index}]");
                    self.walk(ex, ey, path, out);
                    path.truncate(length);
                }
            }
            (Some(Shape::Scalar(x)), Some(Shape::Scalar(y))) => {
                // Texts that differ are different values, but for strings written with other
                // escapes, or the same once redacted.
                let strings = x.starts_with('"') || y.starts_with('"');
                if !strings && !out.listing() {
                    out.not_listed += 1;
                    return;
                }
                let (x, y) = (self.scalar(x), self.scalar(y));
                if x != y {
                    out.push(&self.shown_path(path), Some(x), Some(y));
                }
            }
            // Different shapes, or a side that is missing: every leaf of each side is a difference
            // against nothing.
            _ => {
                if let Some(a) = a {
                    self.leaves(a, path, &mut |path, value| {
                        out.push(path, Some(value), None)
                    });
                }
                if let Some(b) = b {
                    self.leaves(b, path, &mut |path, value| {
                        out.push(path, None, Some(value))
                    });
                }
            }
        }
    }

    fn member(
        &self,
        key: &str,
        a: Option<&str>,
        b: Option<&str>,
        path: &mut String,
        out: &mut Differences,
    ) {
        if path.is_empty() && self.skip.contains(&key) {
            return;
        }
        let length = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        if !self.volatile.contains(&without_indices(path).as_str()) {
            self.walk(a, b, path, out);
        }
        path.truncate(length);
    }

    /// Every leaf of one document, as (path, value), volatile fields left out.
    fn leaves(&self, value: &str, path: &mut String, emit: &mut dyn FnMut(&str, String)) {
        match shape(value.trim()) {
            Shape::Object(inner) => {
                for (key, child) in object_members(inner) {
                    if path.is_empty() && self.skip.contains(&key.as_str()) {
                        continue;
                    }
                    let length = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&key);
                    if !self.volatile.contains(&without_indices(path).as_str()) {
                        self.leaves(child, path, emit);
                    }
                    path.truncate(length);
                }
            }
            Shape::Array(inner) => {
                for (index, item) in items(inner).enumerate() {
                    let length = path.len();
                    let _ = write!(path, "[{index}]");
                    self.leaves(item, path, emit);
                    path.truncate(length);
                }
            }
            Shape::Scalar(text) => emit(&self.shown_path(path), self.scalar(text)),
        }
    }

    /// A leaf as people read it: a string without its quotes and escapes, anything else as written;
    /// redacted when redacting.
    fn scalar(&self, text: &str) -> String {
        let value = if text.starts_with('"') {
            serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_string())
        } else {
            text.to_string()
        };
        match self.redactor {
            Some(redactor) => redactor.text(&value),
            None => value,
        }
    }

    fn shown_path(&self, path: &str) -> String {
        shown_path(path, self.redactor, self.field_names)
    }
}

/// The field names of the reports compared (see `Typed::field_names`), worked out only when a
/// path holds a secret: collecting them costs a pass over both whole reports.
pub struct FieldNames<'a> {
    reports: Vec<&'a crate::saved::Typed>,
    names: std::cell::OnceCell<std::collections::BTreeSet<String>>,
}

impl<'a> FieldNames<'a> {
    pub fn of(reports: Vec<&'a crate::saved::Typed>) -> Self {
        Self {
            reports,
            names: std::cell::OnceCell::new(),
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.names
            .get_or_init(|| self.reports.iter().flat_map(|r| r.field_names()).collect())
            .contains(name)
    }
}

/// A field path as people read it: the report's own field names (and what follows them in
/// brackets: indices, column labels) as they are — a host called "gpu" does not turn
/// `gpu.driver_version` into something else — and any other part scrubbed.
pub fn shown_path(path: &str, redactor: Option<&Redactor>, field_names: &FieldNames) -> String {
    let Some(redactor) = redactor else {
        return path.to_string();
    };
    path.split('.')
        .map(|part| {
            let scrubbed = redactor.text(part);
            let name = part.split('[').next().unwrap_or(part);
            if scrubbed == part || field_names.contains(name) {
                part.to_string()
            } else {
                scrubbed
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

enum Shape<'a> {
    /// The text between the braces.
    Object(&'a str),
    /// The text between the brackets.
    Array(&'a str),
    Scalar(&'a str),
}

fn shape(text: &str) -> Shape<'_> {
    let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
    if text.starts_with('{') && text.ends_with('}') && text.len() >= 2 {
        Shape::Object(inner)
    } else if text.starts_with('[') && text.ends_with(']') && text.len() >= 2 {
        Shape::Array(inner)
    } else {
        Shape::Scalar(text)
    }
}

/// The top-level items of an array's or object's inner text, split at the commas that are not
/// inside a string or a nested value. The text was checked to be JSON before.
fn items(inner: &str) -> impl Iterator<Item = &str> {
    let bytes = inner.as_bytes();
    let mut start = 0;
    let mut position = 0;
    let mut done = inner.trim().is_empty();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        while position < bytes.len() {
            let byte = bytes[position];
            position += 1;
            if in_string {
                match byte {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                b',' if depth == 0 => {
                    let item = &inner[start..position - 1];
                    start = position;
                    return Some(item);
                }
                _ => {}
            }
        }
        done = true;
        Some(&inner[start..])
    })
}

/// An object's members by key (the last of a repeated key wins, as in every JSON reader).
fn object_members(inner: &str) -> BTreeMap<String, &str> {
    let mut members = BTreeMap::new();
    for item in items(inner) {
        let item = item.trim_start();
        // The key is a string: find the colon after its closing quote.
        let mut escaped = false;
        let close = item
            .char_indices()
            .skip(1)
            .find(|&(_, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })
            .map(|(i, _)| i);
        let Some(close) = close else { continue };
        let key = serde_json::from_str::<String>(&item[..=close])
            .unwrap_or_else(|_| item[1..close].to_string());
        let rest = item[close + 1..].trim_start();
        if let Some(value) = rest.strip_prefix(':') {
            members.insert(key, value);
        }
    }
    members
}

/// The text of the top-level member `key` of the document `document`.
pub fn member<'a>(document: &'a str, key: &str) -> Option<&'a str> {
    match shape(document.trim()) {
        Shape::Object(inner) => object_members(inner).get(key).copied(),
        _ => None,
    }
}

/// The path with every array index replaced by `[]`, as the volatile list names fields.
pub fn without_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(a: &str, b: &str) -> Vec<(String, Option<String>, Option<String>)> {
        let walk = Walk {
            skip: &["skipped"],
            volatile: &["gpu.devices[].temperature_c"],
            redactor: None,
            field_names: &FieldNames::of(Vec::new()),
        };
        walk.differences(a, b)
            .listed
            .into_iter()
            .map(|d| (d.path, d.a, d.b))
            .collect()
    }

    #[test]
    fn only_differing_leaves_are_listed_in_path_order() {
        let a = r#"{"b": 1, "a": {"x": "s,]\"", "y": [1, 2, 3]}, "skipped": 1,
            "gpu": {"devices": [{"temperature_c": 40, "name": "x"}]}, "temperature_c": 1}"#;
        let b = r#"{"a": {"x": "s,]\"", "y": [1, 5]}, "b": 1, "skipped": 2, "c": {"d": null},
            "gpu": {"devices": [{"temperature_c": 80, "name": "x"}]}, "temperature_c": 2}"#;
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            paths(a, b),
            [
                ("a.y[1]".to_string(), some("2"), some("5")),
                ("a.y[2]".to_string(), some("3"), None),
                ("c.d".to_string(), None, some("null")),
                ("temperature_c".to_string(), some("1"), some("2")),
            ]
        );
    }

    #[test]
    fn a_value_that_changes_shape_is_listed_leaf_by_leaf() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            paths(r#"{"x": {"y": 1}}"#, r#"{"x": 5}"#),
            [
                ("x.y".to_string(), some("1"), None),
                ("x".to_string(), None, some("5")),
            ]
        );
        assert!(paths("{}", "{ }").is_empty());
        assert!(paths(r#"{"a": []}"#, r#"{"a": [ ]}"#).is_empty());
    }

    #[test]
    fn volatile_fields_are_named_by_their_full_path() {
        assert_eq!(
            without_indices("gpu.devices[12].temperature_c"),
            "gpu.devices[].temperature_c"
        );
    }
}
