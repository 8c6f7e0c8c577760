//! What the man pages say beyond the command-line definition: EXIT STATUS, ENVIRONMENT and
//! EXAMPLES, for the top page and each subcommand.

/// An exit code and when hwbench ends with it.
type Status = (&'static str, &'static str);

/// 128 + signal, the same for every command that trains.
const INTERRUPTED: Status = (
    "130, 143, 129",
    "interrupted by Ctrl-C, SIGTERM or SIGHUP: the finished rows are kept, in PATH.partial when -o PATH is given; an existing report is never replaced",
);

fn exit_status(page: Option<&str>) -> Vec<Status> {
    match page {
        Some("info") => vec![
            ("0", "the report was written"),
            (
                "1",
                "it could not be written (disk full, …), or --fail-on found a finding of that severity",
            ),
            ("2", "a bad flag or -o path"),
        ],
        Some("train-compare") => vec![
            ("0", "at least one column trained"),
            (
                "1",
                "no column trained (one line per column on stderr), or the report or --plot could not be written",
            ),
            (
                "2",
                "a bad flag, --init-weights file, or a device that does not exist",
            ),
            INTERRUPTED,
        ],
        Some("scale") => vec![
            ("0", "at least one column measured a point"),
            (
                "1",
                "no column measured any point, a column computed wrong results, or the report or --plot could not be written",
            ),
            (
                "2",
                "a bad flag, a malformed or absurd --sizes, or a device that does not exist",
            ),
            INTERRUPTED,
        ],
        Some("report") => vec![
            (
                "0",
                "the report was written (also when training failed: that is what the report is for)",
            ),
            ("1", "it could not be written"),
            ("2", "as train-compare"),
            INTERRUPTED,
        ],
        Some("diff") => vec![
            (
                "0",
                "the reports agree, beyond measurement noise and --threshold",
            ),
            ("1", "they differ"),
            (
                "2",
                "a bad report: not JSON, an unknown kind or schema, over 256 MB, or two kinds",
            ),
        ],
        Some("fleet") => vec![
            ("0", "every file was read"),
            (
                "1",
                "some files could not be read: they are listed under Skipped, the others analysed",
            ),
            (
                "2",
                "no readable report, mixed kinds, or a bug report among them",
            ),
        ],
        _ => vec![
            ("0", "success"),
            (
                "1",
                "a runtime failure: what was asked could not be done (each subcommand's page says when)",
            ),
            ("2", "a usage error: a bad flag, file or device"),
            INTERRUPTED,
        ],
    }
}

/// Every variable hwbench reads at run time.
const ENVIRONMENT: &[Status] = &[
    (
        "HWBENCH_PYTHON",
        "the Python that has torch, for --with-pytorch, and whose stack info and report describe (as --python)",
    ),
    (
        "PATH",
        "where info finds the python3 it describes without --python (read from its files, not run), and where a --python name without a slash is looked up",
    ),
    (
        "HWBENCH_PROGRESS",
        "bar, lines or none: how progress shows on stderr (default: a bar on a terminal, plain lines elsewhere, none when TERM=dumb)",
    ),
    (
        "HWBENCH_CUDA",
        "the hwbench-cuda companion to use (as --cuda-companion)",
    ),
    (
        "HWBENCH_CUDA_LIBS",
        "system: the companion loads the machine's CUDA 13 libraries before the ones installed beside it",
    ),
    (
        "CUDA_VISIBLE_DEVICES",
        "which GPUs CUDA, and so the CUDA columns, may use; info checks it against the GPUs",
    ),
    (
        "CUDA_DEVICE_ORDER",
        "CUDA's device order (PCI_BUS_ID makes CUDA's order NVML's)",
    ),
    (
        "CUDA_CACHE_PATH, CUDA_CACHE_DISABLE",
        "the driver's compute cache, whose state train-compare reports",
    ),
    (
        "LD_LIBRARY_PATH",
        "where info looks for the CUDA runtime and cuDNN",
    ),
    (
        "HOME",
        "where the compute cache is by default, and what redaction hides in paths",
    ),
    (
        "KUBERNETES_SERVICE_HOST",
        "a sign of running in a Kubernetes pod (a finding)",
    ),
    ("NO_COLOR", "no colours in tables"),
    (
        "TERM, COLUMNS",
        "TERM=dumb: no colours and no progress bar; COLUMNS: how wide tables are",
    ),
    (
        "RAYON_NUM_THREADS",
        "set by hwbench for each CPU worker (its thread count); not read from the user",
    ),
];

fn examples(page: Option<&str>) -> Vec<Status> {
    match page {
        Some("info") => vec![
            ("hwbench info", "the machine, its findings first"),
            (
                "hwbench info --fail-on warning",
                "exits 1 when a warning or an error is found (a Slurm prolog, a readiness probe)",
            ),
            (
                "hwbench info -o /var/lib/node_exporter/textfile/hwbench.prom",
                "Prometheus text for node_exporter, the format taken from the extension",
            ),
        ],
        Some("train-compare") => vec![
            (
                "hwbench train-compare",
                "the course's model on every device, about a minute at most",
            ),
            (
                "hwbench train-compare --with-pytorch --python venv/bin/python3",
                "PyTorch's loop in the same rounds",
            ),
            (
                "hwbench train-compare --cpu-threads 1,4,8 -o run.json --plot loss.svg",
                "chosen thread counts, a JSON report and the loss plot",
            ),
        ],
        Some("scale") => vec![
            (
                "hwbench scale",
                "the ladder of sizes on every device: crossovers and shares of peak",
            ),
            (
                "hwbench scale --quick --plot scale.svg",
                "six sizes, a few seconds, and the picture",
            ),
            (
                "hwbench scale --sizes 64:256:16:1024,512:2048:256:8192 --with-pytorch",
                "chosen sizes against PyTorch",
            ),
        ],
        Some("report") => vec![
            (
                "hwbench report -o ticket.md",
                "one Markdown document to attach to a bug ticket",
            ),
            (
                "hwbench report --format json -o report.json",
                "the same as JSON, never shortened",
            ),
        ],
        Some("diff") => vec![
            (
                "hwbench diff before.json after.json",
                "what changed between two reports of one kind; exits 1 when they differ",
            ),
            (
                "hwbench diff --threshold 20 a.json b.json",
                "timings count as changed only beyond 20% (and both runs' noise)",
            ),
        ],
        Some("fleet") => vec![
            (
                "hwbench fleet reports/",
                "groups the nodes by hardware and names the odd ones out",
            ),
            (
                "hwbench fleet --format json reports/*.json",
                "the same, for a script",
            ),
        ],
        Some(_) => Vec::new(),
        None => vec![
            (
                "hwbench info",
                "what this machine is, and what is wrong with it",
            ),
            (
                "hwbench train-compare",
                "how fast the course's model trains on each device",
            ),
            (
                "hwbench report -o ticket.md",
                "everything, for a bug ticket",
            ),
            ("hwbench man --out DIR", "every man page into DIR"),
        ],
    }
}

/// The sections, as roff, for `page` (a subcommand's name; None for the top page).
pub fn sections(page: Option<&str>) -> String {
    let mut roff = String::new();
    let mut section = |title: &str, items: &[Status], code: bool| {
        if items.is_empty() {
            return;
        }
        roff.push_str(&format!(".SH \"{title}\"\n"));
        for (term, text) in items {
            let term = escape(term);
            roff.push_str(&if code {
                format!(".TP\n\\fB$ {term}\\fR\n{}\n", escape(text))
            } else {
                format!(".TP\n\\fB{term}\\fR\n{}\n", escape(text))
            });
        }
    };
    section("EXIT STATUS", &exit_status(page), false);
    section("ENVIRONMENT", ENVIRONMENT, false);
    section("EXAMPLES", &examples(page), true);
    roff
}

/// Text safe in roff: backslashes and hyphens escaped, no line starting with a control
/// character.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

/// `page`'s roff with the sections added before VERSION (or at the end).
pub fn with_sections(roff: &str, page: Option<&str>) -> String {
    let extra = sections(page);
    match roff.find("\n.SH VERSION") {
        Some(at) => format!("{}\n{}{}", &roff[..at], extra, &roff[at + 1..]),
        None => format!("{roff}{extra}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_its_exit_status_environment_and_examples() {
        for page in [
            None,
            Some("info"),
            Some("train-compare"),
            Some("scale"),
            Some("report"),
            Some("diff"),
            Some("fleet"),
        ] {
            let roff = sections(page);
            for title in ["EXIT STATUS", "ENVIRONMENT", "EXAMPLES"] {
                assert!(
                    roff.contains(&format!(".SH \"{title}\"")),
                    "{page:?}: {title}"
                );
            }
            assert!(roff.contains("HWBENCH_PYTHON"));
            assert!(!roff.lines().any(|l| l.starts_with('\'')), "{roff}");
        }
        let with = with_sections(".TH x\n.SH NAME\nx\n.SH VERSION\nv1\n", Some("info"));
        assert!(
            with.find("EXIT STATUS") < with.find(".SH VERSION"),
            "{with}"
        );
    }
}
