//! How a [`FleetReport`] reads: the groups, largest first, then the nodes that stand out.

use super::{FleetReport, Outlier};
use crate::render::prometheus::Metric;
use crate::render::{Document, Render, Section};

/// Node lists longer than this are shortened in tables (JSON keeps them all).
const SHOWN_NODES: usize = 12;

impl Render for FleetReport {
    fn document(&self) -> Document {
        let mut summary = vec![Section::text(
            "Fleet",
            vec![format!(
                "{} {} reports: {} group(s) of identical nodes, {} outlier(s).",
                self.nodes,
                self.reports_kind,
                self.groups.len(),
                self.outliers.len()
            )],
        )];
        for (i, group) in self.groups.iter().enumerate() {
            let mut pairs: Vec<(String, String)> = group
                .signature
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut names = group
                .nodes
                .iter()
                .take(SHOWN_NODES)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if group.nodes.len() > SHOWN_NODES {
                names.push_str(&format!(", … ({} more)", group.nodes.len() - SHOWN_NODES));
            }
            pairs.push(("nodes".to_string(), names));
            if !group.findings.is_empty() {
                let counted: Vec<String> = group
                    .findings
                    .iter()
                    .map(|(id, n)| format!("{id} ×{n}"))
                    .collect();
                pairs.push(("findings".to_string(), counted.join(", ")));
            }
            summary.push(Section::pairs(
                format!("Group {} — {} node(s)", i + 1, group.nodes.len()),
                pairs,
            ));
        }
        if !self.nodes_with_errors.is_empty() {
            summary.push(node_grid(
                "Nodes with errors",
                "findings",
                &self.nodes_with_errors,
            ));
        }
        if !self.no_majority.is_empty() {
            summary.push(Section::text("No majority", self.no_majority.clone()));
        }
        if !self.outliers.is_empty() {
            summary.push(node_grid("Outliers", "why", &self.outliers));
        }
        if !self.skipped.is_empty() {
            let rows = self
                .skipped
                .iter()
                .map(|s| vec![s.file.clone(), s.reason.clone()])
                .collect();
            summary.push(Section::grid(
                format!("Skipped — {} file(s) not read", self.skipped.len()),
                vec!["file".into(), "why".into()],
                rows,
            ));
        }
        Document {
            title: format!("hwbench fleet — {} nodes", self.nodes),
            summary,
            details: Vec::new(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        let mut groups = Metric::new(
            "fleet_group_nodes",
            "Nodes in each group of identical nodes.",
        );
        for (i, group) in self.groups.iter().enumerate() {
            groups = groups.sample(
                &[("group", &(i + 1).to_string())],
                Some(group.nodes.len() as f64),
            );
        }
        let mut outliers = Metric::new(
            "fleet_outlier",
            "1 for each node that stands out from the fleet.",
        );
        for outlier in &self.outliers {
            outliers = outliers.sample(&[("node", &outlier.node)], Some(1.0));
        }
        vec![
            Metric::new("fleet_nodes", "Reports read.").sample(&[], Some(self.nodes as f64)),
            Metric::new(
                "fleet_skipped_files",
                "Files that could not be read as reports.",
            )
            .sample(&[], Some(self.skipped.len() as f64)),
            groups,
            outliers,
        ]
    }
}

/// A grid of nodes, each with its reasons in one cell.
fn node_grid(title: &str, reasons: &str, nodes: &[Outlier]) -> Section {
    let rows = nodes
        .iter()
        .map(|o| vec![o.node.clone(), o.reasons.join("; ")])
        .collect();
    Section::grid(title, vec!["node".into(), reasons.into()], rows)
}
