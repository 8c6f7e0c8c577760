//! `train-compare --with-pytorch`: PyTorch columns when torch imports, one line when it does not,
//! and no way for a stray `torch.py` to stand in for PyTorch.
//!
//! The run against real PyTorch needs a Python with torch: `HWBENCH_TEST_PYTHON`, else `python3`
//! (`.ci/run` installs one). Where neither has it, that test says it skipped — and fails under CI
//! (see [`torch_python`]).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{Dir, hwbench, short_train};

/// A short run with PyTorch columns (JSON unless `format` says otherwise).
fn args(format: &str) -> Vec<String> {
    short_train(&[
        "--with-pytorch",
        "--cpu-threads",
        "1",
        "--sync-every",
        "1,0",
        "--format",
        format,
    ])
}

fn train(python: &Path, cwd: &Path) -> Value {
    let output = hwbench()
        .args(args("json"))
        .arg("--python")
        .arg(python)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn labels(report: &Value) -> Vec<&str> {
    report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap())
        .collect()
}

pub fn has_torch(python: &str) -> bool {
    Command::new(python)
        .args(["-I", "-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Python with torch for the parity tests: `HWBENCH_TEST_PYTHON`, else `python3`. `None`
/// (the test says it skipped) where neither has torch — except under CI (`CI` set), where the
/// parity tests must run: `.ci/run` installs torch, so a missing torch there fails loudly.
pub fn torch_python() -> Option<String> {
    let python = std::env::var("HWBENCH_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    if has_torch(&python) {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {python} cannot import torch: the PyTorch parity tests must run in CI (.ci/run installs torch and sets HWBENCH_TEST_PYTHON)"
    );
    eprintln!("skipped: {python} cannot import torch (set HWBENCH_TEST_PYTHON)");
    None
}

#[test]
fn without_python_the_columns_are_left_out_in_one_line() {
    let dir = Dir::new();
    let report = train(&dir.join("no-such-python"), dir.path());
    assert_eq!(labels(&report), ["cpu×1"]);
    let notes = report["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    let note = notes[0].as_str().unwrap();
    assert!(note.starts_with("No PyTorch columns:"), "{note}");
    assert!(
        note.contains("not found") && note.contains("--python"),
        "{note}"
    );
    assert!(!note.contains('\n'));
}

#[test]
fn a_python_that_cannot_import_torch_is_named_with_its_error() {
    let dir = Dir::new();
    let python = dir.executable(
        "python3",
        "echo 'Traceback (most recent call last):' >&2\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1",
    );
    let report = train(&python, dir.path());
    assert_eq!(labels(&report), ["cpu×1"]);
    let note = report["notes"][0].as_str().unwrap();
    assert!(
        note.contains("cannot import torch (ModuleNotFoundError: No module named 'torch')"),
        "{note}"
    );
    // The note is part of the verdict people read.
    let table = hwbench()
        .args(args("table"))
        .arg("--python")
        .arg(&python)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("No PyTorch columns"));
}

#[test]
fn a_torch_py_in_the_working_directory_cannot_hijack_the_run() {
    let dir = Dir::new();
    let marker = dir.join("HIJACKED");
    dir.write(
        "torch.py",
        format!(
            "open({:?}, 'w').write('imported')\n__version__ = '0.0-fake'\n",
            marker.display().to_string()
        ),
    );
    let report = train(Path::new("python3"), dir.path());
    assert!(!marker.exists(), "python3 imported ./torch.py");
    for device in report["devices"].as_array().unwrap() {
        if let Some(framework) = device["facts"]["framework"].as_str() {
            assert!(!framework.contains("0.0-fake"), "{framework}");
        }
    }
}

#[test]
fn pytorch_trains_the_same_model_to_the_same_loss() {
    let Some(python) = torch_python() else {
        return;
    };
    let dir = Dir::new();
    let report = train(Path::new(&python), dir.path());
    assert_eq!(labels(&report), ["cpu×1", "pytorch cpu×1"]);
    let (candle, torch) = (&report["devices"][0], &report["devices"][1]);
    assert_eq!(torch["status"], "ok", "{}", torch["reason"]);
    assert_eq!(torch["framework"], "pytorch");
    assert!(
        torch["facts"]["framework"]
            .as_str()
            .unwrap()
            .starts_with("PyTorch ")
    );
    // Same data, weights and updates: the losses agree to float32 rounding.
    let loss = |d: &Value| d["final_loss"].as_f64().unwrap();
    assert!(
        (loss(candle) - loss(torch)).abs() < 1e-5,
        "{} vs {}",
        loss(candle),
        loss(torch)
    );
    assert_eq!(candle["test_accuracy"], torch["test_accuracy"]);
    for policy in torch["policies"].as_array().unwrap() {
        assert_eq!(policy["runs"].as_array().unwrap().len(), 1);
        assert!(policy["per_epoch_us"]["median"].as_f64().unwrap() > 0.0);
    }
    let verdict = report["verdict"].to_string();
    assert!(verdict.contains("PyTorch on cpu×1"), "{verdict}");
}

#[test]
fn a_python_that_hangs_waits_only_as_long_as_the_worker_timeout() {
    let dir = Dir::new();
    let python = dir.executable("python3", "exec sleep 60");
    let started = std::time::Instant::now();
    let output = hwbench()
        .args(args("json"))
        .args(["--worker-timeout", "1", "--python"])
        .arg(&python)
        .output()
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert_eq!(output.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let note = report["notes"][0].as_str().unwrap();
    assert!(note.contains("did not finish in 1 s"), "{note}");
}
