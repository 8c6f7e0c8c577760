//! The Prometheus text exposition format, for node_exporter's textfile collector: facts as `_info`
//! metrics with labels, figures as gauges with their unit in the name.

use std::fmt::Write;

/// One metric family: a name, its help text, and its samples.
#[derive(Clone, Debug)]
pub struct Metric {
    pub name: String,
    pub help: String,
    pub samples: Vec<Sample>,
}

#[derive(Clone, Debug)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Metric {
    pub fn new(name: &str, help: &str) -> Self {
        Self {
            name: format!("hwbench_{name}"),
            help: help.to_string(),
            samples: Vec::new(),
        }
    }

    /// Adds a sample; a missing value adds nothing (Prometheus has no null).
    pub fn sample(mut self, labels: &[(&str, &str)], value: Option<f64>) -> Self {
        if let Some(value) = value.filter(|v| v.is_finite()) {
            self.samples.push(Sample {
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                value,
            });
        }
        self
    }

    /// Adds a sample labelled with `owned` (a column's labels) and then `labels`.
    pub fn sample_with(
        self,
        owned: &[(&str, String)],
        labels: &[(&str, &str)],
        value: Option<f64>,
    ) -> Self {
        let all: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(labels.iter().copied())
            .collect();
        self.sample(&all, value)
    }

    /// An `_info` metric: value 1, the facts in its labels.
    pub fn info(name: &str, help: &str, labels: &[(&str, &str)]) -> Self {
        Self::new(name, help).sample(labels, Some(1.0))
    }
}

/// Every metric with at least one sample, as the text format.
pub fn render(metrics: &[Metric]) -> String {
    let mut out = String::new();
    for metric in metrics.iter().filter(|m| !m.samples.is_empty()) {
        let _ = writeln!(
            out,
            "# HELP {} {}",
            metric.name,
            super::document::clean(&metric.help)
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
        );
        let _ = writeln!(out, "# TYPE {} gauge", metric.name);
        for sample in &metric.samples {
            out.push_str(&metric.name);
            if !sample.labels.is_empty() {
                let labels: Vec<String> = sample
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", labels.join(","));
            }
            let _ = writeln!(out, " {}", sample.value);
        }
    }
    out
}

/// A label value: cleaned of escapes and controls, then escaped as the text format says.
fn escape(value: &str) -> String {
    super::document::clean(value)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
