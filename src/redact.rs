//! What a report may carry out of the machine: identifying values replaced by stable
//! placeholders, and text from outside (worker output, loader errors, saved files) cut to one
//! clean line.
//!
//! Redaction works on the structure first: each report replaces the values of its identifying
//! fields (the hostname, GPU UUIDs and serials) as data, and knows which of its fields hold free
//! text. Only free text is scrubbed, by [`Redactor::text`]: every known secret wherever it
//! appears (any characters, any case, inside longer words too), any GPU or MIG UUID in any form,
//! and home folders (`/home/<user>`, `/Users/<user>`, `$HOME`). Field names and the other values
//! (an OS called "Debian GNU/Linux" on a host called "Linux") are never touched. Placeholders
//! depend only on position (GPU index), so two redacted reports from the same kind of machine
//! still compare field by field.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

pub const HOSTNAME: &str = "host-redacted";

/// What a scrubbed text becomes when a secret survives every replacement (a placeholder next to
/// the text around it can spell a secret again): a text that holds none of them.
const WHOLE_TEXT: [&str; 3] = ["[redacted]", "*", "-"];

/// Known secrets and their placeholders.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Longest first, so that a fully qualified name goes before its first label.
    known: Vec<(String, String)>,
    /// Every known secret in lower case, found in one pass over a text: `fleet` knows thousands of
    /// secrets and scrubs thousands of texts, most of which hold none. Built on first use.
    matcher: OnceLock<Option<AhoCorasick>>,
}

impl Redactor {
    /// Knows `hostname` (this machine's, as its probe read it), and its first label on its own
    /// when it is a fully qualified name (so that "node01" is found in text too).
    pub fn for_hostname(hostname: Option<&str>) -> Self {
        let mut redactor = Self::default();
        if let Some(hostname) = hostname {
            redactor.add(hostname, HOSTNAME);
            if let Some((first, _)) = hostname.split_once('.') {
                redactor.add(first, HOSTNAME);
            }
        }
        redactor
    }

    /// Also knows these (secret, placeholder) pairs, e.g. a report's own (see
    /// `InfoReport::secrets`). A secret already known keeps its first placeholder; a placeholder
    /// that would spell its secret is replaced by one that does not.
    pub fn with(mut self, secrets: impl IntoIterator<Item = (String, String)>) -> Self {
        for (secret, placeholder) in secrets {
            let secret = secret.trim();
            if secret.is_empty() {
                continue;
            }
            let placeholder = std::iter::once(placeholder.as_str())
                .chain(WHOLE_TEXT)
                .find(|p| !contains_folded(p, secret))
                .unwrap_or("");
            self.known
                .push((secret.to_string(), placeholder.to_string()));
        }
        // Stable: among secrets of one length, and for a secret given twice, the first comes
        // first (and the second goes).
        self.known
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.chars().count()));
        let mut seen = std::collections::HashSet::new();
        self.known.retain(|(s, _)| seen.insert(s.clone()));
        self.matcher = OnceLock::new();
        self
    }

    /// Adds one secret (see [`Redactor::with`]).
    pub fn add(&mut self, secret: &str, placeholder: &str) {
        *self = std::mem::take(self).with([(secret.to_string(), placeholder.to_string())]);
    }

    /// Every identifying value this redactor knows.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.known.iter().map(|(s, _)| s.as_str())
    }

    /// Free text with every known secret, GPU/MIG UUID and home folder replaced; text that holds
    /// none of them comes back unchanged.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        // A replacement can meet the text around it and spell a secret again: replace until none
        // is left, a few rounds at most, else give up on the text. Only the secrets the text
        // holds are looked for, found again after each replacement.
        for _ in 0..4 {
            let mut changed = false;
            let mut present = self.present(&out);
            for (i, (secret, placeholder)) in self.known.iter().enumerate() {
                if !present[i] {
                    continue;
                }
                if let Some(replaced) = replace_folded(&out, secret, placeholder) {
                    out = replaced;
                    changed = true;
                    present = self.present(&out);
                }
            }
            if !changed {
                break;
            }
        }
        if self.present(&out).contains(&true) {
            return WHOLE_TEXT
                .into_iter()
                .find(|t| self.known.iter().all(|(s, _)| !contains_folded(t, s)))
                .unwrap_or_default()
                .to_string();
        }
        without_home(&without_uuids(&out))
    }

    /// Which known secrets `text` holds in any case (as [`contains_folded`] says), by position.
    fn present(&self, text: &str) -> Vec<bool> {
        let mut present = vec![false; self.known.len()];
        let matcher = self
            .matcher
            .get_or_init(|| AhoCorasick::new(self.known.iter().map(|(s, _)| fold(s))).ok());
        match matcher {
            Some(matcher) => {
                for found in matcher.find_overlapping_iter(&fold(text)) {
                    present[found.pattern().as_usize()] = true;
                }
            }
            // Too many secrets for an automaton: one by one.
            None => {
                for (i, (secret, _)) in self.known.iter().enumerate() {
                    present[i] = contains_folded(text, secret);
                }
            }
        }
        present
    }
}

/// `text` in lower case, character by character, as every comparison here reads it.
fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// Where `needle` first appears in `text`, ignoring case (Unicode lower case, char by char): the
/// byte range in `text`.
fn find_folded(text: &str, needle: &str) -> Option<std::ops::Range<usize>> {
    find_folded_any(text, &[needle]).map(|(range, _)| range)
}

/// Where the first of `needles` appears in `text`, ignoring case, and which one: one pass over
/// `text`, however many needles.
fn find_folded_any(text: &str, needles: &[&str]) -> Option<(std::ops::Range<usize>, usize)> {
    let needles: Vec<String> = needles.iter().map(|n| fold(n)).collect();
    for (start, _) in text.char_indices() {
        for (which, needle) in needles.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            let mut folded = String::new();
            for (offset, c) in text[start..].char_indices() {
                folded.extend(c.to_lowercase());
                if folded.len() >= needle.len() {
                    if folded == *needle {
                        return Some((start..start + offset + c.len_utf8(), which));
                    }
                    break;
                }
                if !needle.starts_with(&folded) {
                    break;
                }
            }
        }
    }
    None
}

/// Whether `text` holds `secret` in any case: the stricter test (a match may start inside a
/// character whose lower case is two), which the final check of [`Redactor::text`] uses.
pub fn contains_folded(text: &str, secret: &str) -> bool {
    fold(text).contains(&fold(secret))
}

/// `text` with every case-insensitive occurrence of `secret` replaced, or `None` when it has none.
fn replace_folded(text: &str, secret: &str, placeholder: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    let mut found = false;
    while let Some(range) = find_folded(rest, secret) {
        found = true;
        out.push_str(&rest[..range.start]);
        out.push_str(placeholder);
        rest = &rest[range.end..];
    }
    found.then(|| out + rest)
}

/// Any GPU or MIG UUID — `GPU-<uuid>`, `MIG-<uuid>`, the older `MIG-GPU-<uuid>/1/0`, or the
/// unique prefix `CUDA_VISIBLE_DEVICES` accepts — becomes `GPU-redacted` / `MIG-redacted`,
/// whatever follows it.
fn without_uuids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        const PREFIXES: [&str; 2] = ["GPU-", "MIG-"];
        // Both prefixes in one pass: each round then moves past what it scanned, so a text full
        // of one prefix costs linear time, not a scan of the rest per occurrence.
        let Some((range, which)) = find_folded_any(rest, &PREFIXES) else {
            out.push_str(rest);
            return out;
        };
        let prefix = PREFIXES[which];
        out.push_str(&rest[..range.start]);
        let mut after = &rest[range.end..];
        // The older MIG form names its GPU: MIG-GPU-<uuid>/gi/ci.
        let mig_gpu = prefix == "MIG-" && find_folded(after, "GPU-").is_some_and(|r| r.start == 0);
        if mig_gpu {
            after = &after[4..];
        }
        let id_len = after
            .find(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
            .unwrap_or(after.len());
        let id = after[..id_len].trim_end_matches('-');
        if id.chars().filter(char::is_ascii_hexdigit).count() >= 4 {
            out.push_str(prefix);
            out.push_str("redacted");
            rest = &after[id.len()..];
        } else {
            out.push_str(&rest[range.start..range.end]);
            rest = &rest[range.end..];
        }
    }
}

/// Home folders cut out of free text: "/home/alice/x" → "~/x", "/Users/alice" → "~", and the
/// value of `$HOME` wherever it is.
fn without_home(text: &str) -> String {
    let mut text = text.to_string();
    if let Some(home) = std::env::var("HOME")
        .ok()
        .filter(|h| h.len() > 1 && h != "/root")
        && text.contains(home.as_str())
    {
        text = text.replace(home.as_str(), "~");
    }
    for base in ["/home/", "/Users/"] {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(base) {
            out.push_str(&rest[..at]);
            let after = &rest[at + base.len()..];
            let user_len = after
                .find(|c: char| c == '/' || c.is_whitespace() || "'\"`:;,)]}".contains(c))
                .unwrap_or(after.len());
            out.push('~');
            rest = &after[user_len..];
        }
        out.push_str(rest);
        text = out;
    }
    text
}

/// Text from outside hwbench (a worker's stderr, a loader's error, a field of a saved file) as
/// one clean line: terminal escape sequences and control characters removed, line breaks joined
/// with " / ", absolute paths shortened to their file name (a path can carry a user name into a
/// public report), at most `max` characters.
pub fn outside_line(text: &str, max: usize) -> String {
    let mut clean = String::with_capacity(text.len().min(max * 4));
    for c in crate::render::clean(text).chars() {
        match c {
            '\n' => {
                if !clean.trim_end().is_empty() && !clean.ends_with(" / ") {
                    clean.truncate(clean.trim_end().len());
                    clean.push_str(" / ");
                }
            }
            '\t' => clean.push(' '),
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
    fn secrets_are_replaced_wherever_they_are() {
        let mut redactor = Redactor::for_hostname(Some("vm.example.org"));
        redactor.add("GPU-1234abcd", "GPU-redacted-0");
        assert_eq!(
            redactor.text("kvm on VM (vm.example.org), GPU-1234abcd,1"),
            "khost-redacted on host-redacted (host-redacted), GPU-redacted-0,1"
        );
        assert_eq!(
            redactor.text("MIG-1a2b3c4d-0000-4000-8000-00000000a001 failed"),
            "MIG-redacted failed"
        );
        // Hostnames that are not one word, and one made of pattern characters.
        for host in ["node 1", "a+b", ".*", "[x]", "n😀de", "gpu"] {
            let redactor = Redactor::for_hostname(Some(host));
            let text = format!("error on {host}: {}.", host.to_uppercase());
            let scrubbed = redactor.text(&text);
            assert!(find_folded(&scrubbed, host).is_none(), "{host}: {scrubbed}");
            assert!(
                scrubbed.starts_with("error on host-redacted: "),
                "{scrubbed}"
            );
        }
        // Text without a secret is left alone.
        let redactor = Redactor::for_hostname(Some("Linux"));
        assert_eq!(redactor.text("all fine"), "all fine");
    }

    #[test]
    fn uuids_in_any_form_are_replaced() {
        let redactor = Redactor::default();
        assert_eq!(
            redactor.text("see GPU-9f3c2a71-5b1e-4c7d-8e2a-0d6b4f1a2c3e."),
            "see GPU-redacted."
        );
        assert_eq!(
            redactor.text("MIG-GPU-9f3c2a71-5b1e-4c7d-8e2a-0d6b4f1a2c3e/1/0"),
            "MIG-redacted/1/0"
        );
        assert_eq!(redactor.text("gpu-9f3c2a71,1"), "GPU-redacted,1");
        assert_eq!(redactor.text("GPU-name"), "GPU-name");
    }

    #[test]
    fn home_folders_are_cut() {
        let redactor = Redactor::default();
        assert_eq!(
            redactor.text("OSError: /home/alice/.venv/lib/x.so: bad"),
            "OSError: ~/.venv/lib/x.so: bad"
        );
        assert_eq!(redactor.text("(/Users/bob)"), "(~)");
    }

    #[test]
    fn a_placeholder_never_spells_the_secret() {
        for secret in ["redacted", "host", "dh", "-", "*"] {
            let redactor = Redactor::for_hostname(Some(secret));
            for text in [
                format!("{secret}{secret}"),
                format!("s{secret}h"),
                "host-redacted".to_string(),
            ] {
                let scrubbed = redactor.text(&text);
                assert!(
                    find_folded(&scrubbed, secret).is_none(),
                    "{secret} in {scrubbed} (from {text})"
                );
            }
        }
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
