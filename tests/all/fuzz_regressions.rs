//! Inputs no parser should choke on, replayed through the fuzz targets' pipeline
//! (`fuzz/pipeline.rs`) and through the `diff` and `fleet` commands: the fuzzers' seeds
//! (`fuzz/seeds/` reports, `fuzz/seeds-worker/` worker transcripts), and `tests/fixtures/fuzz/` —
//! hostile reports written by hand (deep nesting, wrong types, numbers out of range, missing
//! parts) and every input the fuzzers (`cargo +nightly fuzz run report_parser` or
//! `worker_messages`) have ever crashed on.

use std::path::PathBuf;

use crate::util::hwbench;

#[path = "../../fuzz/pipeline.rs"]
mod pipeline;

fn files(folder: &str) -> Vec<PathBuf> {
    let folder = crate::util::in_repo(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

fn never_panics(folder: &str) -> usize {
    let files = files(folder);
    for path in &files {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| pipeline::run(&data));
        assert!(outcome.is_ok(), "{} panics", path.display());

        // As a user meets them: an answer and an exit code, never a panic (101).
        let diff = hwbench().arg("diff").args([path, path]).output().unwrap();
        let fleet = hwbench().arg("fleet").arg(path).output().unwrap();
        for (command, output) in [("diff", diff), ("fleet", fleet)] {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                matches!(output.status.code(), Some(0..=2)),
                "{command} {}: exit {:?}, {stderr}",
                path.display(),
                output.status.code()
            );
            assert!(
                !stderr.contains("panicked"),
                "{command} {}: {stderr}",
                path.display()
            );
            if command == "diff" {
                // A report is never different from itself.
                assert_ne!(output.status.code(), Some(1), "diff {}", path.display());
            }
        }
    }
    files.len()
}

#[test]
fn hostile_reports_and_past_crashes_never_panic() {
    assert!(never_panics("tests/fixtures/fuzz") >= 4);
}

#[test]
fn the_seed_reports_go_through_every_stage() {
    assert!(never_panics("fuzz/seeds") >= 5);
}

#[test]
fn worker_transcripts_go_through_the_message_checks() {
    let files = files("fuzz/seeds-worker");
    assert!(files.len() >= 3);
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| pipeline::worker_messages(&data));
        assert!(outcome.is_ok(), "{} panics", path.display());
    }
}
