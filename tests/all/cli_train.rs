//! `hwbench train-compare` as a user runs it: bad input, short real runs, Ctrl-C, divergence,
//! and every way a CUDA companion can fail (with fake companions; no GPU needed).

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{self, Dir, hwbench, short_train, tiny_train};

/// A short run (see `util::short_train`) with `args`, as JSON.
fn short_run_json(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    util::run_json(&short_train(&all), env)
}

fn usage_error(args: &[&str]) -> String {
    let output: Output = hwbench().arg("train-compare").args(args).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?} should be a usage error"
    );
    assert!(
        output.stdout.is_empty(),
        "nothing trained or printed for {args:?}"
    );
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn bad_input_is_refused_before_training_with_exit_code_2() {
    for args in [
        &["--epochs", "0"][..],
        &["--epochs", "100000001"],
        &["--lr", "NaN"],
        &["--lr", "inf"],
        &["--lr", "-0.1"],
        &["--lr", "0"],
        &["--hidden", "0"],
        &["--hidden", "4097"],
        &["--sync-every", "-1"],
        &["--sync-every", "often"],
        &["--sync-every", "100,100"],
        &["--repeats", "0"],
        &["--devices", "tpu"],
        &["--devices", "cpu,cpu"],
        &["--devices", "cuda:0,cuda:0"],
        &["--cpu-threads", "0"],
        &["--init-weights", "/nonexistent/init.safetensors"],
        &["--seed", "1", "--init-weights", "x.safetensors"],
    ] {
        usage_error(args);
    }
}

#[test]
fn usage_errors_are_one_clear_line() {
    let stderr = usage_error(&["--sync-every", "100,100"]);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--sync-every lists 100 twice"));
}

#[test]
fn a_misshapen_init_weights_file_is_a_usage_error() {
    let dir = Dir::new();
    let not_safetensors = dir.write("junk.safetensors", b"definitely not safetensors");
    let stderr = usage_error(&["--init-weights", not_safetensors.to_str().unwrap()]);
    assert!(stderr.contains("not a safetensors file"), "{stderr}");

    // Right names, wrong shape: fc1.weight [10, 5].
    use candle_core::{Device, Tensor};
    let wrong = dir.join("wrong.safetensors");
    let tensors = [
        (
            "fc1.weight",
            Tensor::zeros((10, 5), candle_core::DType::F32, &Device::Cpu).unwrap(),
        ),
        (
            "fc1.bias",
            Tensor::zeros(10, candle_core::DType::F32, &Device::Cpu).unwrap(),
        ),
    ];
    candle_core::safetensors::save(
        &tensors
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        &wrong,
    )
    .unwrap();
    let stderr = usage_error(&["--init-weights", wrong.to_str().unwrap()]);
    assert!(stderr.contains("fc1.weight has shape [10, 5]"), "{stderr}");
}

#[test]
fn the_reference_weights_file_gives_the_default_run() {
    let reference = util::in_repo("data/torch_iris_seed0_init.safetensors");
    let stderr = usage_error(&["--hidden", "5", "--init-weights", &reference]);
    assert!(
        stderr.contains("--hidden 5 disagrees with --init-weights"),
        "{stderr}"
    );
    let json = short_run_json(
        &[
            "--devices",
            "cpu",
            "--cpu-threads",
            "1",
            "--init-weights",
            &reference,
        ],
        &[],
    );
    let default = short_run_json(&["--devices", "cpu", "--cpu-threads", "1"], &[]);
    assert_eq!(
        json["devices"][0]["final_loss"],
        default["devices"][0]["final_loss"]
    );
}

#[test]
fn a_short_run_reports_every_device_and_policy() {
    let json = short_run_json(&["--cpu-threads", "1,2", "--sync-every", "1,50,0"], &[]);
    assert_eq!(json["kind"], "train-compare");
    assert_eq!(json["complete"], true);
    let devices = json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    for (device, label) in devices.iter().zip(["cpu×1", "cpu×2"]) {
        assert_eq!(device["label"], label);
        assert_eq!(device["status"], "ok");
        let policies = device["policies"].as_array().unwrap();
        assert_eq!(policies.len(), 3);
        assert_eq!(policies[0]["syncs"], 301);
        assert_eq!(policies[1]["syncs"], 7);
        assert_eq!(policies[2]["syncs"], 1);
        for policy in policies {
            let spread = &policy["per_epoch_us"];
            assert!(spread["min"].as_f64().unwrap() > 0.0);
            assert!(spread["min"].as_f64().unwrap() <= spread["median"].as_f64().unwrap());
        }
        // 300 epochs of the reference run: PyTorch's loss at epoch 300 is 0.97935.
        assert!((device["final_loss"].as_f64().unwrap() - 0.979_349_5).abs() < 1e-4);
        assert!(device["peak_memory_mib"].as_f64().unwrap() > 0.0);
        assert!(device["facts"]["first_epoch_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(devices[0]["speed_vs_cpu1"], 1.0);
    assert!(!json["verdict"].as_array().unwrap().is_empty());
}

#[test]
fn table_and_markdown_show_one_column_per_device() {
    for (format, marker) in [("table", "cpu×1"), ("markdown", "| cpu×1 |")] {
        let output = hwbench()
            .args(tiny_train(&["--cpu-threads", "1", "--format", format]))
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.contains(marker), "{text}");
        assert!(text.contains("Verdict"));
    }
}

#[test]
fn prometheus_format_has_per_epoch_gauges_for_every_device_and_policy() {
    let output = hwbench()
        .args(tiny_train(&[
            "--repeats",
            "2",
            "--cpu-threads",
            "1,2",
            "--sync-every",
            "1,0",
            "--format",
            "prometheus",
        ]))
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let medians = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "hwbench_train_epoch_seconds" && s.labels.get("stat") == Some("median")
        })
        .count();
    assert_eq!(medians, 4, "2 devices × 2 policies");
    // A column is labelled with ASCII facts a query can use, one each.
    let threads: std::collections::BTreeSet<&str> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "hwbench_train_epoch_seconds")
        .map(|s| {
            assert_eq!(s.labels.get("device"), Some("cpu"));
            assert_eq!(s.labels.get("framework"), Some("candle"));
            s.labels.get("threads").unwrap()
        })
        .collect();
    assert_eq!(threads, ["1", "2"].into());
    assert!(text.is_ascii(), "{text}");
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "hwbench_train_test_accuracy_ratio")
    );
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let output = hwbench().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}");
        assert!(
            String::from_utf8(output.stdout)
                .unwrap()
                .contains("train-compare"),
            "{shell}"
        );
    }
    let man = hwbench().arg("man").output().unwrap();
    assert!(man.status.success());
    assert!(String::from_utf8(man.stdout).unwrap().starts_with(".ie"));
    // Every subcommand's page says how it exits, what it reads from the environment, and how to
    // use it.
    for page in ["info", "train-compare", "scale", "report", "diff", "fleet"] {
        let man = hwbench().args(["man", page]).output().unwrap();
        let text = String::from_utf8(man.stdout).unwrap();
        for section in ["EXIT STATUS", "ENVIRONMENT", "EXAMPLES"] {
            assert!(
                text.contains(&format!(".SH \"{section}\"")),
                "{page}: {section}"
            );
        }
        // roff writes a hyphen as \-.
        let example = format!("hwbench {page}").replace('-', "\\-");
        assert!(text.contains(&example), "{page}");
    }
    assert_eq!(
        hwbench()
            .args(["completions", "tcsh"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn plot_and_output_files_are_written() {
    let dir = Dir::new();
    let svg = dir.join("loss.svg");
    let report = dir.join("report.json");
    let status = hwbench()
        .args(short_train(&[
            "--format",
            "json",
            "--cpu-threads",
            "1",
            "--plot",
        ]))
        .arg(&svg)
        .arg("-o")
        .arg(&report)
        .status()
        .unwrap();
    assert!(status.success());
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("<svg") && svg.contains("cpu×1"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["devices"][0]["label"], "cpu×1");
}

#[test]
fn an_unwritable_plot_path_fails_before_training() {
    let output = hwbench()
        .args([
            "train-compare",
            "--epochs",
            "100000000",
            "--plot",
            "/nonexistent-dir/loss.svg",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_diverging_run_is_reported_and_the_others_continue() {
    let json = short_run_json(
        &[
            "--cpu-threads",
            "1,2",
            "--sync-every",
            "1,0",
            "--lr",
            "1e30",
        ],
        &[],
    );
    for device in json["devices"].as_array().unwrap() {
        assert_eq!(device["status"], "ok");
        for policy in device["policies"].as_array().unwrap() {
            assert_eq!(policy["diverged_at"], 2);
        }
    }
    let table = hwbench()
        .args(short_train(&[
            "--epochs",
            "50",
            "--warmup-epochs",
            "5",
            "--cpu-threads",
            "1",
            "--lr",
            "1e30",
        ]))
        .output()
        .unwrap();
    assert!(
        String::from_utf8(table.stdout)
            .unwrap()
            .contains("diverged at epoch")
    );
}

/// Starts a JSON train-compare with `args`, sends SIGINT after `after`, to hwbench alone or to its
/// whole process group (as a terminal's Ctrl-C does), and returns the exit code and the report.
fn interrupt(args: &[&str], after: Duration, whole_group: bool) -> (Option<i32>, Value) {
    use std::os::unix::process::CommandExt;
    // Runs of about a second each, however fast the machine: 15 of them per column, far more
    // than the seconds before the signal, even if the machine was busier while it was measured.
    let epochs = crate::util::epochs_lasting(Duration::from_secs(1)).to_string();
    let mut command = hwbench();
    command
        .args([
            "train-compare",
            "--epochs",
            &epochs,
            "--repeats",
            "3",
            "--warmup-epochs",
            "10",
        ])
        .args(args)
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if whole_group {
        command.process_group(0);
    }
    let child = command.spawn().unwrap();
    std::thread::sleep(after);
    let target = if whole_group {
        -(child.id() as i32)
    } else {
        child.id() as i32
    };
    // SAFETY: SIGINT to the child we started, or to its own process group (its id is the group id).
    unsafe { libc::kill(target, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        serde_json::from_slice(&output.stdout).unwrap(),
    )
}

#[test]
fn ctrl_c_prints_the_finished_rows_and_exits_130() {
    let (code, json) = interrupt(&["--cpu-threads", "1,2"], Duration::from_secs(5), false);
    assert_eq!(code, Some(130));
    assert_eq!(json["complete"], false);
    let first = &json["devices"][0];
    assert!(
        !first["policies"].as_array().unwrap().is_empty(),
        "finished policies are kept"
    );
    assert!(
        json["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["status"] == "interrupted")
    );
}

/// Ctrl-C in a terminal signals the whole process group: the worker dies at once too.
#[test]
fn ctrl_c_to_the_process_group_is_an_interruption_too() {
    let (code, json) = interrupt(&["--cpu-threads", "1"], Duration::from_secs(3), true);
    assert_eq!(code, Some(130));
    assert_eq!(json["complete"], false);
    assert_eq!(json["devices"][0]["status"], "interrupted");
}

// ---- CUDA devices on a machine without CUDA, and fake companions ----

#[test]
fn asking_for_cuda_without_support_reports_the_device_as_not_run() {
    // A machine with a GPU, but an install without the companion.
    let json = short_run_json(
        &["--devices", "cpu,cuda:0", "--cpu-threads", "1"],
        &[(
            "HWBENCH_GPU_FIXTURE",
            &util::fixture("gpu/hopper_h100.json"),
        )],
    );
    let cuda = &json["devices"][1];
    assert_eq!(cuda["label"], "cuda:0");
    assert_eq!(cuda["status"], "not_run");
    assert!(
        cuda["reason"].as_str().unwrap().contains("no CUDA support"),
        "{cuda}"
    );
    assert_eq!(json["devices"][0]["status"], "ok", "the CPU still ran");
}

#[test]
fn a_cuda_device_that_does_not_exist_is_a_usage_error() {
    let dir = Dir::new();
    let companion = dir.executable("hwbench-cuda", "exit 1");
    let h100 = util::fixture("gpu/hopper_h100.json");
    for (args, env, expected) in [
        (
            &["--devices", "cuda:3"][..],
            vec![("HWBENCH_GPU_FIXTURE", h100.as_str())],
            "cuda:3 does not exist: the only CUDA device here is cuda:0",
        ),
        (
            &["--devices", "cuda:99"],
            vec![],
            "cuda:99 does not exist: this machine has no CUDA GPU",
        ),
        (
            &["--devices", "cuda:0"],
            vec![
                ("HWBENCH_GPU_FIXTURE", h100.as_str()),
                ("CUDA_VISIBLE_DEVICES", "-1"),
            ],
            "CUDA_VISIBLE_DEVICES=\"-1\" hides every GPU",
        ),
        (
            &["--devices", "cuda:0"],
            vec![
                ("HWBENCH_GPU_FIXTURE", h100.as_str()),
                ("CUDA_VISIBLE_DEVICES", ""),
            ],
            "hides every GPU",
        ),
    ] {
        let output = hwbench()
            .args(short_train(args))
            .args(["--cuda-companion", companion.to_str().unwrap()])
            .envs(env)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

/// Runs cuda:0 through a fake companion running `body` on a recorded H100 and returns that
/// column's status and reason. Nothing else trains, so hwbench must exit 1 (the report is still
/// written).
fn cuda_reason(body: &str, extra: &[&str]) -> (String, String) {
    let dir = Dir::new();
    let companion = dir.executable("hwbench-cuda", body);
    let mut args = vec![
        "--devices",
        "cuda:0",
        "--cuda-companion",
        companion.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, json) = util::run_json_status(
        &short_train(&args),
        &[(
            "HWBENCH_GPU_FIXTURE",
            &util::fixture("gpu/hopper_h100.json"),
        )],
    );
    assert_eq!(code, Some(1), "no column trained: {json}");
    let device = &json["devices"][0];
    (
        device["status"].as_str().unwrap().to_string(),
        device["reason"].as_str().unwrap_or("").to_string(),
    )
}

const HELLO: &str = r#"{"event":"hello","protocol":4,"hwbench_version":"0.1.0","backend":"cuda"}"#;

#[test]
fn companion_that_cannot_load_libcuda() {
    let (status, reason) = cuda_reason(
        "echo 'hwbench-cuda: error while loading shared libraries: libcuda.so.1: cannot open shared object file: No such file or directory' >&2\nexit 127",
        &[],
    );
    assert_eq!(status, "not_run");
    assert!(
        reason.contains("libcuda.so.1 not found (no NVIDIA driver on this machine)"),
        "{reason}"
    );
}

#[test]
fn companion_that_crashes() {
    let (status, reason) = cuda_reason(&format!("echo '{HELLO}'\nkill -SEGV $$"), &[]);
    assert_eq!(status, "not_run");
    assert!(reason.contains("crashed (signal 11)"), "{reason}");
}

#[test]
fn companion_that_hangs() {
    let started = std::time::Instant::now();
    let (status, reason) = cuda_reason(
        &format!("echo '{HELLO}'\nexec sleep 30"),
        &["--worker-timeout", "1"],
    );
    assert_eq!(status, "not_run");
    assert!(reason.contains("no answer for 1 s"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn companion_with_another_protocol_version() {
    let (_, reason) = cuda_reason(
        r#"echo '{"event":"hello","protocol":99,"hwbench_version":"9.0.0","backend":"cuda"}'; exec sleep 5"#,
        &[],
    );
    assert!(reason.contains("protocol 99"), "{reason}");
}

#[test]
fn companion_that_talks_nonsense() {
    let (_, reason) = cuda_reason("echo 'Segmentation fault (core dumped)'", &[]);
    assert!(reason.contains("does not understand"), "{reason}");
}

#[test]
fn companion_without_cuda_support_says_so() {
    // The CPU build's own worker, posing as the companion, is asked for a CUDA device.
    let bin = crate::util::bin();
    let (status, reason) = cuda_reason(&format!("exec '{}' worker", bin.display()), &[]);
    assert_eq!(status, "not_run");
    assert!(reason.contains("built without CUDA support"), "{reason}");
}

#[test]
fn info_describes_the_companion_and_flags_gpus_it_cannot_run_on() {
    let dir = Dir::new();
    let fake = dir.executable(
        "hwbench-cuda",
        r#"[ "$1" = describe ] && echo '{"protocol":4,"hwbench_version":"0.1.0","cuda_version":"13.0","compute_capability":"9.0","ptx":false}'"#,
    );
    let output = hwbench()
        .args(["info", "--format", "json"])
        .env("HWBENCH_CUDA", &fake)
        .env(
            "HWBENCH_GPU_FIXTURE",
            util::fixture("gpu/two_a100_one_mig.json"),
        )
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let companion = &json["build"]["cuda_companion"];
    assert_eq!(companion["available"], true);
    assert_eq!(companion["build"]["cuda_version"], "13.0");
    let flagged = json["build"]["gpus_not_supported"].as_array().unwrap();
    assert_eq!(
        flagged.len(),
        2,
        "both A100s (8.0) are older than sm_90 kernels: {flagged:?}"
    );

    let broken = dir.executable(
        "broken-cuda",
        "echo 'error while loading shared libraries: libcuda.so.1: cannot open shared object file' >&2; exit 127",
    );
    let output = hwbench()
        .args(["info", "--format", "json"])
        .env("HWBENCH_CUDA", &broken)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["build"]["cuda_companion"]["available"], false);
    assert!(
        json["build"]["cuda_companion"]["detail"]
            .as_str()
            .unwrap()
            .contains("libcuda.so.1 not found")
    );
}

#[test]
fn a_plot_that_cannot_be_written_keeps_the_report() {
    let dir = Dir::new();
    let report = dir.join("r.json");
    let output = hwbench()
        .args(short_train(&[
            "--cpu-threads",
            "1",
            "--format",
            "json",
            "--plot",
            "/dev/full",
            "-o",
        ]))
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--plot /dev/full"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["devices"][0]["status"], "ok");
}

#[test]
fn a_loss_that_explodes_without_nan_is_called_not_learning() {
    let json = short_run_json(&["--cpu-threads", "1", "--lr", "1e6"], &[]);
    let device = &json["devices"][0];
    let rise = &device["did_not_learn"];
    assert!(rise["peak_loss"].as_f64().unwrap() > 1000.0 * rise["first_loss"].as_f64().unwrap());
    let verdict = json["verdict"].to_string();
    assert!(
        verdict.contains("cpu×1 (a run that did not learn)"),
        "{verdict}"
    );
    assert!(
        verdict.contains("cpu×1 did not learn: its loss went from 1.123"),
        "{verdict}"
    );
    // A run that learns says nothing of the kind.
    let fine = short_run_json(&["--cpu-threads", "1"], &[]);
    assert!(fine["devices"][0].get("did_not_learn").is_none());
}

#[test]
fn more_threads_than_cpus_run_with_a_note() {
    let json = short_run_json(&["--cpu-threads", "64", "--epochs", "20"], &[]);
    assert_eq!(json["devices"][0]["status"], "ok");
    let notes = json["notes"].to_string();
    assert!(
        notes.contains("cpu×64 runs more threads than the"),
        "{notes}"
    );
}

#[test]
fn report_takes_the_device_flags_of_train_compare() {
    let output = hwbench()
        .args(["report", "--format", "json", "--cpu-threads", "1"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let labels: Vec<&str> = json["train_compare"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["cpu×1"]);
}

#[test]
fn under_a_tight_memory_limit_hwbench_fails_without_a_panic() {
    let bin = crate::util::bin();
    for limit in ["14000", "60000"] {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {limit}; '{}' train-compare --epochs 50 --repeats 1 --warmup-epochs 1 --cpu-threads 1,2",
                bin.display()
            ))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{limit}: {stderr}");
        assert_ne!(output.status.code(), Some(101), "{limit}: {stderr}");
        assert!(
            output.status.code().is_some(),
            "{limit}: killed by a signal"
        );
    }
}

/// A fake companion that trains "cuda:0" by replaying cpu×1's loss curve scaled by `factor`.
fn replaying_companion(dir: &Dir, factor: f64) -> String {
    let reference = short_run_json(&["--cpu-threads", "1", "--sync-every", "0"], &[]);
    let curve: Vec<Value> = reference["devices"][0]["loss_curve_sampled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|point| serde_json::json!([point[0], point[1].as_f64().unwrap() * factor]))
        .collect();
    let finished = serde_json::json!({"event": "finished", "final_loss": 0.9,
        "test_accuracy": 0.9, "loss_curve": curve, "loss_peak": curve[0],
        "peak_memory_mib": 100.0, "memory_kind": "GPU"});
    let lines = [
        r#"{"event":"hello","protocol":4,"hwbench_version":"0.1.0","backend":"cuda"}"#.to_string(),
        r#"{"event":"ready","name":"GPU","open_ms":1.0,"setup_ms":1.0,"first_epoch_ms":1.0}"#.to_string(),
        r#"{"event":"calibrated","per_epoch_us":[30.0]}"#.to_string(),
        // One round (`--repeats 1`), then `finish`: each answered after hwbench's step.
        r#"{"event":"run","policy":0,"repeat":1,"epochs":300,"total_s":0.01,"syncs":1,"readback_s":0.0,"diverged_at":null,"final_loss":0.9}"#.to_string(),
        finished.to_string(),
    ];
    let body: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let wait = if i >= 3 { "read step\n" } else { "" };
            format!("{wait}printf '%s\\n' '{l}'\n")
        })
        .collect();
    dir.executable("hwbench-cuda", &format!("read request\n{body}"))
        .display()
        .to_string()
}

#[test]
fn a_column_whose_losses_leave_cpu1s_computed_wrong_results() {
    for (factor, wrong) in [(1.0 + 1e-6, false), (1.01, true)] {
        let dir = Dir::new();
        let companion = replaying_companion(&dir, factor);
        let (code, json) = util::run_json_status(
            &short_train(&[
                "--devices",
                "cpu,cuda:0",
                "--cpu-threads",
                "1",
                "--sync-every",
                "0",
                "--cuda-companion",
                &companion,
                "--format",
                "json",
            ]),
            &[(
                "HWBENCH_GPU_FIXTURE",
                &util::fixture("gpu/hopper_h100.json"),
            )],
        );
        let cuda = &json["devices"][1];
        if wrong {
            assert_eq!(code, Some(1), "{json}");
            assert_eq!(cuda["status"], "wrong_results");
            assert_eq!(
                cuda["wrong_results"]["epoch"], 1,
                "the first epoch already differs"
            );
            let verdict = json["verdict"][0].as_str().unwrap();
            assert!(
                verdict.starts_with("cuda:0 computed wrong results"),
                "{verdict}"
            );
        } else {
            assert_eq!(code, Some(0), "{json}");
            assert_eq!(cuda["status"], "ok", "{cuda}");
            assert!(cuda.get("wrong_results").is_none());
        }
    }
}

/// A companion of known speed: every epoch costs `per_epoch_us` under every policy; it times as
/// many epochs as hwbench tells it to, and says how many it was told in a file.
fn companion_of_speed(dir: &Dir, per_epoch_us: f64) -> String {
    let told = dir.join("told");
    dir.write(
        "fake_gpu.py",
        format!(
            r#"import json, sys
send = lambda **m: (sys.stdout.write(json.dumps(m) + "\n"), sys.stdout.flush())
request = json.loads(sys.stdin.readline())["session"]
send(event="hello", protocol=4, hwbench_version="0.1.0", backend="cuda")
send(event="ready", name="GPU", open_ms=1.0, setup_ms=1.0, first_epoch_ms=1.0)
policies = request["policies"]
send(event="calibrated", per_epoch_us=[{per_epoch_us}] * len(policies))
repeat = 0
while True:
    step = json.loads(sys.stdin.readline())
    if step["step"] != "round":
        break
    epochs = step["epochs"]
    open({told:?}, "w").write(str(epochs))
    repeat += 1
    for every in policies:
        syncs = (epochs // every + 1) if every else 1
        send(event="run", policy=every, repeat=repeat, epochs=epochs, total_s=epochs * {per_epoch_us} / 1e6,
             syncs=syncs, readback_s=0.0, diverged_at=None, final_loss=0.5)
send(event="finished", final_loss=0.5, test_accuracy=0.9, loss_curve=[], loss_peak=None,
     peak_memory_mib=1.0, memory_kind="GPU")
"#
        ),
    );
    dir.executable(
        "hwbench-cuda",
        &format!("exec python3 '{}'", dir.join("fake_gpu.py").display()),
    )
    .display()
    .to_string()
}

#[test]
fn the_time_budget_decides_how_many_epochs_a_slow_device_times() {
    let dir = Dir::new();
    // 500 µs per epoch, 4 policies: a 10 s budget fits 5000 epochs of work, shared out in runs of
    // the 1000-epoch floor.
    let companion = companion_of_speed(&dir, 500.0);
    let (code, json) = util::run_json_status(
        &[
            "train-compare",
            "--devices",
            "cuda:0",
            "--time-budget",
            "10",
            "--warmup-epochs",
            "5",
            "--cuda-companion",
            &companion,
            "--format",
            "json",
        ],
        &[(
            "HWBENCH_GPU_FIXTURE",
            &util::fixture("gpu/hopper_h100.json"),
        )],
    );
    assert_eq!(code, Some(0), "{json}");
    let told: u64 = std::fs::read_to_string(dir.join("told"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(told, 1000, "told to time {told} epochs");
    let cuda = &json["devices"][0];
    assert_eq!(cuda["timed_epochs"], told);
    let never = &cuda["policies"][3];
    assert_eq!(never["course_total_derived"], true);
    // 20000 epochs at 500 µs: 10 s, derived from the shorter runs.
    assert!((never["course_total_s"].as_f64().unwrap() - 10.0).abs() < 1e-6);

    // Given the epochs, every timed run trains them all: no budget.
    let exact = companion_of_speed(&dir, 500.0);
    let (_, json) = util::run_json_status(
        &short_train(&[
            "--devices",
            "cuda:0",
            "--cuda-companion",
            &exact,
            "--format",
            "json",
        ]),
        &[(
            "HWBENCH_GPU_FIXTURE",
            &util::fixture("gpu/hopper_h100.json"),
        )],
    );
    assert_eq!(std::fs::read_to_string(dir.join("told")).unwrap(), "300");
    assert!(json["devices"][0].get("timed_epochs").is_none());
}

#[test]
fn identical_gpus_run_once_unless_all_are_asked_for() {
    let dir = Dir::new();
    let companion = companion_of_speed(&dir, 100.0);
    let mut eight = serde_json::from_str::<Value>(
        &std::fs::read_to_string(util::fixture("gpu/hopper_h100.json")).unwrap(),
    )
    .unwrap();
    let gpu = eight["devices"][0].clone();
    eight["devices"] = Value::from(vec![gpu; 8]);
    let fixture = dir.write_json("eight.json", &eight);
    let labels = |devices: &[&str]| {
        let mut args = vec![
            "--cpu-threads",
            "1",
            "--cuda-companion",
            &companion,
            "--format",
            "json",
        ];
        args.extend_from_slice(devices);
        let (_, json) = util::run_json_status(
            &short_train(&args),
            &[("HWBENCH_GPU_FIXTURE", fixture.to_str().unwrap())],
        );
        let labels: Vec<String> = json["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["label"].as_str().unwrap().to_string())
            .collect();
        (labels, json["notes"].to_string())
    };
    let (default, notes) = labels(&[]);
    assert_eq!(default, ["cpu×1", "cuda:0"]);
    assert!(
        notes.contains("cuda:1 to cuda:7 are the same model as cuda:0"),
        "{notes}"
    );
    let (all, _) = labels(&["--devices", "all"]);
    assert_eq!(all.len(), 9, "{all:?}");
}

/// A fake compare worker for `who` ("cuda" or "pytorch") that logs "who round" to `log` as each
/// round starts, and times every run at exactly 500 µs per epoch (so six runs settle every figure).
fn logging_worker(dir: &Dir, who: &str, log: &std::path::Path) -> std::path::PathBuf {
    dir.write(
        &format!("fake_{who}.py"),
        format!(
            r#"import json, sys
send = lambda **m: (sys.stdout.write(json.dumps(m) + "\n"), sys.stdout.flush())
request = json.loads(sys.stdin.readline())["session"]
send(event="hello", protocol=4, hwbench_version="0.1.0", backend="{who}")
send(event="ready", name="GPU", open_ms=1.0, setup_ms=1.0, first_epoch_ms=1.0)
policies = request["policies"]
send(event="calibrated", per_epoch_us=[500.0] * len(policies))
repeat = 0
while True:
    step = json.loads(sys.stdin.readline())
    if step["step"] != "round":
        break
    repeat += 1
    open({log:?}, "a").write("{who} %d\n" % repeat)
    epochs = step["epochs"]
    for every in policies:
        syncs = (epochs // every + 1) if every else 1
        send(event="run", policy=every, repeat=repeat, epochs=epochs, total_s=epochs * 500e-6,
             syncs=syncs, readback_s=epochs * 250e-6, diverged_at=None, final_loss=0.5)
send(event="finished", final_loss=0.5, test_accuracy=0.9, loss_curve=[], loss_peak=None,
     peak_memory_mib=1.0, memory_kind="GPU")
"#
        ),
    )
}

#[test]
fn columns_take_their_timed_runs_in_interleaved_rounds() {
    let dir = Dir::new();
    let log = dir.join("rounds.log");
    let cuda = logging_worker(&dir, "cuda", &log);
    let torch = logging_worker(&dir, "pytorch", &log);
    let companion = dir.executable(
        "hwbench-cuda",
        &format!("exec python3 '{}'", cuda.display()),
    );
    // The fake Python answers the torch probe, and runs the fake worker for anything else.
    let python = dir.executable(
        "python3",
        &format!(
            "case \"$3\" in *'import json, torch'*) echo '{{\"version\": \"2.0\", \"cuda_devices\": 1}}'; exit 0 ;; esac\nexec python3 '{}'",
            torch.display()
        ),
    );
    let (code, json) = util::run_json_status(
        &[
            "train-compare".as_ref(),
            "--devices".as_ref(),
            "cuda:0".as_ref(),
            "--with-pytorch".as_ref(),
            "--python".as_ref(),
            python.as_os_str(),
            "--cuda-companion".as_ref(),
            companion.as_os_str(),
            "--warmup-epochs".as_ref(),
            "5".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
        ],
        &[(
            "HWBENCH_GPU_FIXTURE",
            &util::fixture("gpu/hopper_h100.json"),
        )],
    );
    assert_eq!(code, Some(0), "{json}");
    // Identical runs settle every figure at the fewest runs: six rounds, taken in turn, each
    // round starting one column later than the last.
    let expected: Vec<String> = (1..=6)
        .flat_map(|round| {
            let (cuda, torch) = (format!("cuda {round}"), format!("pytorch {round}"));
            if round % 2 == 1 {
                [cuda, torch]
            } else {
                [torch, cuda]
            }
        })
        .collect();
    let rounds: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(rounds, expected);
    for device in json["devices"].as_array().unwrap() {
        let spread = &device["policies"][0]["per_epoch_us"];
        assert_eq!(spread["n"], 6, "{device}");
        assert_eq!(spread["median"], 500.0, "{device}");
    }
}

#[test]
fn progress_in_a_log_is_one_plain_line_per_phase() {
    // stderr is a pipe here, as in a Slurm job's log: plain lines, no bar, no escapes.
    let output = hwbench()
        .args(["train-compare", "--quick", "--format", "json"])
        .env_remove("HWBENCH_PROGRESS")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("train-compare: warm-up · "),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("train-compare: timed runs · ")),
        "{stderr}"
    );
    assert!(lines.iter().all(|l| l.contains(" after ")), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    // A line per phase (and per column's warm-up message at most), not a redraw per tick.
    assert!(lines.len() <= 6, "{stderr}");
    let quiet = hwbench()
        .args(["train-compare", "--quick", "--format", "json"])
        .env("HWBENCH_PROGRESS", "none")
        .output()
        .unwrap();
    assert!(quiet.stderr.is_empty());
}
