//! `hwbench info` as a user runs it, on this machine (no GPU needed).

use std::process::Command;

use serde_json::Value;

use crate::util::{self, Dir, hwbench};

fn info_json(env: &[(&str, &str)]) -> Value {
    util::run_json(&["info", "--format", "json"], env)
}

#[test]
fn cpu_figures_agree_with_proc_cpuinfo_and_nproc() {
    let json = info_json(&[]);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(json["cpu"]["logical_cpus"], processors);
    let nproc = Command::new("nproc").output().unwrap();
    let nproc: u64 = String::from_utf8(nproc.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(json["cpu"]["usable_cpus"], nproc);
    if let Some(name) = cpuinfo.lines().find_map(|l| {
        l.strip_prefix("model name")
            .map(|r| r.trim_start_matches([' ', '\t', ':']).trim())
    }) {
        assert_eq!(json["cpu"]["model_name"], name);
    }
    assert_eq!(json["schema_version"], 1);
    assert!(json["memory"]["total_mib"].as_u64().unwrap() > 0);
}

#[test]
fn without_a_driver_the_gpu_section_says_why_and_the_command_succeeds() {
    if std::path::Path::new("/dev/nvidiactl").exists() {
        return; // a GPU machine: the other tests cover it
    }
    let json = info_json(&[]);
    assert_eq!(json["gpu"]["nvml_loaded"], false);
    assert!(
        json["gpu"]["message"]
            .as_str()
            .unwrap()
            .contains("libnvidia-ml.so.1")
    );
    assert_eq!(json["build"]["cuda_companion"]["available"], false);
}

#[test]
fn every_format_runs() {
    for format in ["table", "markdown", "json"] {
        let output = hwbench()
            .args(["info", "--format", format])
            .output()
            .unwrap();
        assert!(output.status.success(), "{format}");
        assert!(!output.stdout.is_empty());
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let bin = crate::util::bin();
    let output = Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -o pipefail; '{}' info | head -1 >/dev/null",
                bin.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "exit {:?}", output.status.code());
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn output_file_is_written_and_matches_stdout() {
    let dir = Dir::new();
    let path = dir.join("info.md");
    let status = hwbench()
        .args(["info", "--format", "markdown", "-o"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.starts_with("### hwbench info"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");
}

#[test]
fn an_unwritable_output_fails_at_once_with_exit_code_2() {
    let output = hwbench()
        .args(["info", "-o", "/nonexistent-dir/report.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent-dir/report.json"));
}

#[test]
fn unknown_flags_are_usage_errors() {
    let output = hwbench().args(["info", "--colour"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn recorded_gpus_are_redacted_in_every_format_unless_asked_not_to() {
    let fixture = util::fixture("gpu/two_a100_one_mig.json");
    let visible = "GPU-1a2b3c4d-aaaa-4bbb-8ccc-0123456789ab";
    for format in ["table", "markdown", "json"] {
        let output = hwbench()
            .args(["info", "--format", format])
            .env("HWBENCH_GPU_FIXTURE", &fixture)
            .env("CUDA_VISIBLE_DEVICES", visible)
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.contains("NVIDIA A100-SXM4-80GB"),
            "{format}: the GPUs are reported"
        );
        util::assert_no_secrets(&text, format);
    }
    let output = hwbench()
        .args(["info", "--format", "json", "--no-redact"])
        .env("HWBENCH_GPU_FIXTURE", &fixture)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("GPU-5e6f7a8b-dddd-4eee-8fff-ba9876543210"));
    assert!(text.contains("1323421000222"));
}

#[test]
fn verify_cli() {
    use clap::CommandFactory;
    hwbench::cli::Cli::command().debug_assert();
}

#[test]
fn output_through_a_link_or_into_a_named_pipe_keeps_them_what_they_are() {
    use std::os::unix::fs::FileTypeExt;
    let dir = Dir::new();

    let target = dir.write("real.json", "old");
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let status = hwbench()
        .args(["info", "--format", "json", "-o"])
        .arg(&link)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(written["kind"], "info");

    let fifo = dir.join("pipe");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path in our own temporary folder.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let status = hwbench()
        .args(["info", "--format", "json", "-o"])
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let received: Value = serde_json::from_str(&reader.join().unwrap()).unwrap();
    assert_eq!(received["kind"], "info");
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "the pipe stays a pipe"
    );
}

#[test]
fn a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    let path = dir.join("x.prom");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let run = |umask: &str| {
        let bin = crate::util::bin();
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask {umask}; '{}' info --format prometheus -o '{}'",
                bin.display(),
                path.display()
            ))
            .status()
            .unwrap();
        assert!(status.success());
    };
    run("022");
    assert_eq!(mode(&path), 0o644, "as `>` would create it");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    run("077");
    assert_eq!(mode(&path), 0o640, "a replaced file keeps its mode");
}

#[test]
fn man_renders_one_page_per_subcommand() {
    let dir = Dir::new();
    let output = hwbench()
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    for page in [
        "hwbench.1",
        "hwbench-info.1",
        "hwbench-train-compare.1",
        "hwbench-report.1",
        "hwbench-diff.1",
        "hwbench-fleet.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.starts_with(".ie"), "{page}");
    }
    let info = hwbench().args(["man", "info"]).output().unwrap();
    assert!(String::from_utf8_lossy(&info.stdout).contains(".TH hwbench-info"));
}

#[test]
fn a_long_value_is_cut_in_tables_and_whole_in_json() {
    let visible = vec!["0"; 40_000].join(",");
    let table = hwbench()
        .arg("info")
        .env("CUDA_VISIBLE_DEVICES", &visible)
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("0,0,0") && table.contains('…'));
    assert!(table.len() < 20_000, "{} bytes", table.len());
    let json = util::run_json(
        &["info", "--format", "json"],
        &[("CUDA_VISIBLE_DEVICES", &visible)],
    );
    assert_eq!(json["cuda_environment"]["cuda_visible_devices"], visible);
}

#[test]
fn the_format_follows_the_output_files_extension_unless_given() {
    let dir = Dir::new();
    let written = |name: &str, extra: &[&str]| {
        let path = dir.join(name);
        let output = hwbench()
            .args(["info", "-o", path.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        std::fs::read_to_string(&path).unwrap()
    };
    assert!(serde_json::from_str::<Value>(&written("a.json", &[])).is_ok());
    assert!(written("a.md", &[]).starts_with("### hwbench info"));
    assert!(written("a.markdown", &[]).starts_with("### hwbench info"));
    assert!(written("a.prom", &[]).starts_with("# HELP"));
    assert!(written("a.txt", &[]).starts_with("hwbench info"));
    // --format wins over the extension.
    assert!(serde_json::from_str::<Value>(&written("b.md", &["--format", "json"])).is_ok());
}
