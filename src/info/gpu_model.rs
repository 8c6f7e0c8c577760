//! What a GPU's name says, read as a model name — family words ("GeForce", "Quadro", "RTX"),
//! model numbers ("A4000": series A, number 4000) and suffixes ("Ti", "SUPER", "Ada") — never by
//! looking for substrings (which made "RTX A4000" an "A40", "Quadro P4000" a "P40", "T400" a
//! "T4"): the class of machine it is made for, and its rated boost clock where NVML's maximum
//! clock is not it.

/// A GPU name as words and model numbers.
pub struct Model {
    /// Lowercase words of the name, split at anything not a letter or digit.
    words: Vec<String>,
}

/// Data-centre models, as (series letters, number): any suffix ("A10G", "L40S", "H100 NVL").
const DATA_CENTRE: &[(&str, u32)] = &[
    ("a", 2),
    ("a", 10),
    ("a", 16),
    ("a", 30),
    ("a", 40),
    ("a", 100),
    ("a", 800),
    ("h", 20),
    ("h", 100),
    ("h", 200),
    ("h", 800),
    ("b", 100),
    ("b", 200),
    ("b", 300),
    ("gb", 200),
    ("gb", 300),
    ("gh", 200),
    ("l", 4),
    ("l", 20),
    ("l", 40),
    ("t", 4),
    ("v", 100),
    ("p", 4),
    ("p", 40),
    ("p", 100),
    ("k", 80),
    ("m", 40),
    ("m", 60),
];

/// Rated boost clocks (MHz) of boards whose NVML maximum SM clock is the top of their clock table
/// rather than the boost clock their published FP32 peak uses (GeForce and RTX workstation cards),
/// by the name's words after "GeForce RTX" / "RTX", from NVIDIA's specifications.
const RATED_BOOST_MHZ: &[(&[&str], u32)] = &[
    (&["3060"], 1777),
    (&["3060", "ti"], 1665),
    (&["3070"], 1725),
    (&["3070", "ti"], 1770),
    (&["3080"], 1710),
    (&["3080", "ti"], 1665),
    (&["3090"], 1695),
    (&["3090", "ti"], 1860),
    (&["4060"], 2460),
    (&["4060", "ti"], 2535),
    (&["4070"], 2475),
    (&["4070", "super"], 2475),
    (&["4070", "ti"], 2610),
    (&["4070", "ti", "super"], 2610),
    (&["4080"], 2505),
    (&["4080", "super"], 2550),
    (&["4090"], 2520),
    (&["5070"], 2512),
    (&["5070", "ti"], 2452),
    (&["5080"], 2617),
    (&["5090"], 2407),
    (&["a2000"], 1200),
    (&["a4000"], 1560),
    (&["a4500"], 1650),
    (&["a5000"], 1695),
    (&["a5500"], 1665),
    (&["a6000"], 1800),
    (&["4000", "ada"], 2175),
    (&["4500", "ada"], 2580),
    (&["5000", "ada"], 2550),
    (&["6000", "ada"], 2505),
];

impl Model {
    pub fn of(name: &str) -> Self {
        Self {
            words: name
                .to_lowercase()
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }

    /// Model numbers in the name: "a4000" → ("a", 4000, ""), "l40s" → ("l", 40, "s").
    fn numbers(&self) -> impl Iterator<Item = (&str, u32, &str)> {
        self.words.iter().filter_map(|word| {
            let letters = word.find(|c: char| c.is_ascii_digit())?;
            let digits_end = word[letters..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(word.len(), |i| letters + i);
            let number = word[letters..digits_end].parse().ok()?;
            Some((&word[..letters], number, &word[digits_end..]))
        })
    }

    /// What kind of machine the GPU is made for; `None` for a name hwbench does not know.
    pub fn class(&self, brand: Option<&str>) -> Option<&'static str> {
        let any = |words: &[&str]| words.iter().any(|w| self.has(w));
        if any(&["jetson", "orin", "xavier", "tegra", "thor"]) {
            return Some("embedded");
        }
        if any(&["laptop", "mobile"]) || (self.has("max") && self.has("q")) {
            return Some("laptop");
        }
        if any(&["geforce", "titan"]) {
            return Some("consumer desktop");
        }
        let numbers: Vec<(&str, u32, &str)> = self.numbers().collect();
        if numbers
            .iter()
            .any(|(series, number, _)| DATA_CENTRE.contains(&(*series, *number)))
        {
            return Some("data centre");
        }
        // The workstation series: T400–T1200, A400–A6000 and P400–P6000 (three or four digits).
        let workstation_number = numbers
            .iter()
            .any(|(series, number, _)| matches!(*series, "t" | "a" | "p") && *number >= 400);
        if any(&["quadro", "rtx"]) || workstation_number {
            return Some("workstation");
        }
        match brand {
            Some(b) if b.starts_with("Tesla") => Some("data centre"),
            Some(b) if b.starts_with("Quadro") || b.starts_with("NVIDIA RTX") => {
                Some("workstation")
            }
            Some(b) if b.starts_with("GeForce") || b.starts_with("Titan") => {
                Some("consumer desktop")
            }
            _ => None,
        }
    }

    /// The rated boost clock of a GeForce or RTX workstation board, where hwbench knows it.
    pub fn rated_boost_mhz(&self) -> Option<u32> {
        let start = self.words.iter().position(|w| w == "rtx")? + 1;
        let rest = &self.words[start..];
        // The longest entry whose words all follow "RTX" ("4070 Ti SUPER" before "4070 Ti").
        RATED_BOOST_MHZ
            .iter()
            .filter(|(words, _)| {
                rest.first().map(String::as_str) == Some(words[0])
                    && words.iter().all(|w| rest.iter().any(|r| r == w))
                    && rest
                        .iter()
                        .filter(|r| matches!(r.as_str(), "ti" | "super"))
                        .all(|r| words.contains(&r.as_str()))
            })
            .max_by_key(|(words, _)| words.len())
            .map(|(_, mhz)| *mhz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str) -> Option<&'static str> {
        Model::of(name).class(None)
    }

    #[test]
    fn classes_come_from_model_numbers_not_substrings() {
        for (name, expected) in [
            ("NVIDIA RTX A4000", Some("workstation")),
            ("Quadro P4000", Some("workstation")),
            ("NVIDIA T400", Some("workstation")),
            ("NVIDIA T1000 8GB", Some("workstation")),
            ("NVIDIA RTX A6000", Some("workstation")),
            ("NVIDIA RTX 6000 Ada Generation", Some("workstation")),
            (
                "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
                Some("workstation"),
            ),
            ("Quadro RTX 8000", Some("workstation")),
            ("NVIDIA A2", Some("data centre")),
            ("NVIDIA A10G", Some("data centre")),
            ("NVIDIA A40", Some("data centre")),
            ("NVIDIA A100-SXM4-80GB", Some("data centre")),
            ("NVIDIA H100 80GB HBM3", Some("data centre")),
            ("NVIDIA H100 NVL", Some("data centre")),
            ("NVIDIA H200", Some("data centre")),
            ("NVIDIA B300", Some("data centre")),
            ("NVIDIA GB200", Some("data centre")),
            ("NVIDIA GH200 480GB", Some("data centre")),
            ("NVIDIA L4", Some("data centre")),
            ("NVIDIA L40S", Some("data centre")),
            ("Tesla T4", Some("data centre")),
            ("Tesla V100-SXM2-16GB", Some("data centre")),
            ("NVIDIA GeForce RTX 4090", Some("consumer desktop")),
            ("NVIDIA TITAN RTX", Some("consumer desktop")),
            ("NVIDIA GeForce RTX 4070 Laptop GPU", Some("laptop")),
            ("Orin (nvgpu)", Some("embedded")),
            ("Mystery GPU", None),
            ("NVIDIA X9000", None),
        ] {
            assert_eq!(class(name), expected, "{name}");
        }
        assert_eq!(
            Model::of("NVIDIA Graphics Device").class(Some("Tesla (data centre)")),
            Some("data centre")
        );
    }

    #[test]
    fn rated_boost_clocks_by_model() {
        for (name, mhz) in [
            ("NVIDIA GeForce RTX 3090", Some(1695)),
            ("NVIDIA GeForce RTX 4090", Some(2520)),
            ("NVIDIA GeForce RTX 4070 Ti SUPER", Some(2610)),
            ("NVIDIA GeForce RTX 4070 Ti", Some(2610)),
            ("NVIDIA GeForce RTX 4070", Some(2475)),
            ("NVIDIA GeForce RTX 5090", Some(2407)),
            ("NVIDIA RTX 6000 Ada Generation", Some(2505)),
            ("NVIDIA RTX A6000", Some(1800)),
            ("NVIDIA H100 80GB HBM3", None),
            ("NVIDIA GeForce RTX 9090", None),
        ] {
            assert_eq!(Model::of(name).rated_boost_mhz(), mhz, "{name}");
        }
    }
}
