//! What a report may carry out of the machine: identifying values replaced by stable
//! placeholders, and text from outside (worker output, loader errors, saved files) cut to one
//! clean line.
//!
//! Placeholders depend only on position (GPU index), so two redacted reports from the same kind of
//! machine still compare field by field. Free text is redacted token by token: a token that is a
//! known secret (the hostname, a GPU's UUID or serial) becomes its placeholder, and any token that
//! looks like a GPU or MIG UUID becomes `GPU-redacted` / `MIG-redacted`.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub const HOSTNAME: &str = "host-redacted";

/// Known secrets and their placeholders.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    known: Vec<(String, String)>,
}

impl Redactor {
    /// Knows this machine's hostname.
    pub fn for_this_machine() -> Self {
        let mut redactor = Self::default();
        if let Some(hostname) = sysinfo::System::host_name() {
            redactor.add(&hostname, HOSTNAME);
        }
        redactor
    }

    /// Also knows these (secret, placeholder) pairs, e.g. a report's own (see
    /// `InfoReport::secrets`).
    pub fn with(mut self, secrets: impl IntoIterator<Item = (String, String)>) -> Self {
        for (secret, placeholder) in secrets {
            self.add(&secret, &placeholder);
        }
        self
    }

    /// Adds one secret; a placeholder is never a secret itself.
    pub fn add(&mut self, secret: &str, placeholder: &str) {
        let secret = secret.trim();
        if !secret.is_empty() && !self.known.iter().any(|(s, _)| s == secret) {
            self.known
                .push((secret.to_string(), placeholder.to_string()));
        }
    }

    /// `text` with every secret token replaced.
    pub fn text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            let start = rest.find(is_token_char).unwrap_or(rest.len());
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(|c| !is_token_char(c)).unwrap_or(rest.len());
            out.push_str(&self.token(&rest[..end]));
            rest = &rest[end..];
        }
        out
    }

    fn token(&self, token: &str) -> String {
        for (secret, placeholder) in &self.known {
            if token == secret {
                return placeholder.clone();
            }
            // A fully qualified name: "node01.cluster.example" for the secret "node01".
            if let Some(domain) = token.strip_prefix(secret.as_str())
                && domain.starts_with('.')
            {
                return format!("{placeholder}{domain}");
            }
        }
        for prefix in ["GPU-", "MIG-"] {
            if let Some(id) = token.strip_prefix(prefix)
                && looks_like_uuid_or_prefix(id)
            {
                return format!("{prefix}redacted");
            }
        }
        token.to_string()
    }

    /// Every string inside `value` (keys too), redacted.
    pub fn json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut child) in entries {
                    self.json(&mut child);
                    map.insert(self.text(&key), child);
                }
            }
            _ => {}
        }
    }

    /// Every string of a serde value redacted, through its JSON form.
    pub fn apply<T: Serialize + DeserializeOwned>(&self, report: &mut T) {
        let Ok(mut value) = serde_json::to_value(&*report) else {
            return;
        };
        self.json(&mut value);
        if let Ok(redacted) = serde_json::from_value(value) {
            *report = redacted;
        }
    }
}

fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// "9f3c2a71-5b1e-4c7d-8e2a-0d6b4f1a2c3e", or the start of one (`CUDA_VISIBLE_DEVICES` takes
/// unique prefixes): hex digits and dashes, at least four digits.
fn looks_like_uuid_or_prefix(text: &str) -> bool {
    text.chars().filter(char::is_ascii_hexdigit).count() >= 4
        && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Text from outside hwbench (a worker's stderr, a loader's error, a field of a saved file) as
/// one clean line: terminal escape sequences and control characters removed, line breaks joined
/// with " / ", absolute paths shortened to their file name (a path can carry a user name into a
/// public report), at most `max` characters.
pub fn outside_line(text: &str, max: usize) -> String {
    let mut clean = String::with_capacity(text.len().min(max * 4));
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
            '\n' | '\r' => {
                if !clean.trim_end().is_empty() && !clean.ends_with(" / ") {
                    clean.truncate(clean.trim_end().len());
                    clean.push_str(" / ");
                }
            }
            '\t' => clean.push(' '),
            c if c.is_control() => {}
            c => clean.push(c),
        }
        if clean.len() > max * 4 {
            break;
        }
    }
    let clean = clean.trim().trim_end_matches(" /").trim();
    let shortened: Vec<String> = clean.split(' ').map(shorten_path).collect();
    crate::render::truncate(&shortened.join(" "), max)
}

/// "/home/alice/bin/hwbench-cuda:" → "hwbench-cuda:"; anything else as it is.
fn shorten_path(word: &str) -> String {
    let trimmed = word.trim_start_matches(['(', '\'', '"', '`']);
    if !trimmed.starts_with('/') || trimmed.matches('/').count() < 2 {
        return word.to_string();
    }
    let lead = &word[..word.len() - trimmed.len()];
    let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
    format!("{lead}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_as_whole_tokens() {
        let mut redactor = Redactor::default();
        redactor.add("vm", HOSTNAME);
        redactor.add("GPU-1234", "GPU-redacted-0");
        assert_eq!(
            redactor.text("kvm on vm (vm.example.org), GPU-1234,1"),
            "kvm on host-redacted (host-redacted.example.org), GPU-redacted-0,1"
        );
        assert_eq!(
            redactor.text("MIG-1a2b3c4d-0000-4000-8000-00000000a001 failed"),
            "MIG-redacted failed"
        );
    }

    #[test]
    fn outside_text_becomes_one_clean_line() {
        assert_eq!(
            outside_line(
                "\u{1b}[31m/home/alice/bin/hwbench-cuda: error\u{1b}[0m\nline two\r\n\u{7}",
                200
            ),
            "hwbench-cuda: error / line two"
        );
        assert_eq!(outside_line("a\u{1b}]0;title\u{7}b", 200), "ab");
        assert_eq!(
            outside_line(&"x".repeat(500), 10),
            format!("{}…", "x".repeat(10))
        );
        assert_eq!(
            outside_line("exit 127: libcuda.so.1", 200),
            "exit 127: libcuda.so.1"
        );
    }
}
