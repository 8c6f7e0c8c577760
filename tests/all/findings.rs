//! Findings: every rule fires on a recorded machine made to trigger it (a GPU section, and /proc
//! and /sys files under a test root), and none fires on a healthy one.

use std::collections::BTreeSet;

use hwbench::info::findings::RULES;
use serde_json::Value;

use crate::util::{self, Dir, hwbench};

/// A companion built with CUDA `cuda` for compute capability `cc`.
fn companion(dir: &Dir, cuda: &str, cc: &str, ptx: bool) -> String {
    dir.executable(
        &format!("hwbench-cuda-{cuda}-{cc}"),
        &format!(
            r#"[ "$1" = describe ] && echo '{{"protocol":4,"hwbench_version":"0.1.0","cuda_version":"{cuda}","compute_capability":"{cc}","ptx":{ptx},"libraries":[]}}'"#
        ),
    )
    .display()
    .to_string()
}

/// A fake Python that answers the stack probe with torch built for `cuda` (None: a CPU-only
/// build), which can use CUDA exactly when it was built for it.
fn python(dir: &Dir, name: &str, cuda: Option<&str>) -> String {
    let answer = match cuda {
        Some(cuda) => format!(
            r#"{{"python": "3.11.2", "torch": "2.9.1", "numpy": "2.3.4", "torch_cuda": "{cuda}", "cudnn": 91002, "cuda_available": true, "cuda_devices": 1}}"#
        ),
        None => r#"{"python": "3.11.2", "torch": "2.9.1+cpu", "numpy": "2.3.4", "torch_cuda": null, "cudnn": null, "cuda_available": false, "cuda_devices": 0}"#.to_string(),
    };
    util::fake_python(dir, name, &answer)
}

/// `hwbench info --format json` on a recorded machine; `extra` adds to its environment.
fn info(root: &str, gpus: &str, extra: &[(&str, &str)], redact: bool) -> Value {
    let mut command = hwbench();
    command
        .args(["info", "--format", "json"])
        .env("HWBENCH_ROOT", util::fixture(&format!("roots/{root}")))
        .env("HWBENCH_GPU_FIXTURE", util::fixture(&format!("gpu/{gpus}")))
        .env_remove("CUDA_VISIBLE_DEVICES")
        .envs(extra.iter().copied());
    if !redact {
        command.arg("--no-redact");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn ids(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_rule_fires_on_its_fixture() {
    let dir = Dir::new();
    let newer = companion(&dir, "13.0", "9.0", false);
    let cpu_torch = python(&dir, "python-cpu", None);
    let mut fired = BTreeSet::new();
    for (root, gpus, extra) in [
        (
            "troubled",
            "troubled_two_models.json",
            vec![("HWBENCH_CUDA", newer.as_str())],
        ),
        (
            "troubled",
            "troubled_two_models.json",
            vec![("CUDA_VISIBLE_DEVICES", "0,GPU-ffffffff-0000")],
        ),
        (
            "troubled",
            "troubled_two_models.json",
            vec![("CUDA_VISIBLE_DEVICES", "-1")],
        ),
        ("troubled", "driver_mismatch.json", vec![]),
        ("healthy", "idle_5090_and_l4.json", vec![]),
        ("troubled", "no_driver.json", vec![]),
        ("arm-no-neon", "hopper_h100.json", vec![]),
        ("healthy", "gpu_lost.json", vec![]),
        (
            "healthy",
            "healthy_h100.json",
            vec![("HWBENCH_PYTHON", cpu_torch.as_str())],
        ),
    ] {
        fired.extend(ids(&info(root, gpus, &extra, false)));
    }
    let rules: BTreeSet<String> = RULES.iter().map(|(id, _, _)| id.to_string()).collect();
    let silent: Vec<&String> = rules.difference(&fired).collect();
    assert!(silent.is_empty(), "rules no fixture triggers: {silent:?}");
    assert!(fired.is_subset(&rules), "{fired:?}");
}

#[test]
fn no_rule_fires_on_a_healthy_machine() {
    let dir = Dir::new();
    let matching = companion(&dir, "13.0", "8.0", true);
    let cuda_torch = python(&dir, "python-cuda", Some("12.8"));
    for gpus in [
        "healthy_h100.json",
        "hopper_h100.json",
        "optional_fields_not_supported.json",
    ] {
        let env = [
            ("HWBENCH_CUDA", matching.as_str()),
            ("HWBENCH_PYTHON", &cuda_torch),
        ];
        let report = info("healthy", gpus, &env, false);
        assert!(ids(&report).is_empty(), "{gpus}: {}", report["findings"]);
    }
}

#[test]
fn a_gpu_on_the_bus_that_nvml_does_not_see_is_an_error() {
    // The troubled machine's sysfs lists three NVIDIA 3D controllers; NVML sees two of them.
    let report = info("troubled", "troubled_two_models.json", &[], false);
    let missing = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "gpu.missing-from-nvml")
        .unwrap_or_else(|| panic!("{}", report["findings"]));
    assert_eq!(missing["severity"], "error");
    assert_eq!(
        missing["evidence"],
        "3 NVIDIA GPUs on the PCI bus, NVML sees 2; not seen: 0000:0a:00.0"
    );
    assert_eq!(
        report["gpu"]["pci_gpus"],
        serde_json::json!(["0000:07:00.0", "0000:0a:00.0", "0000:19:00.0"])
    );
    // Without a driver the same bus is a warning that says so; a machine without PCI data in its
    // root (the healthy one) raises neither.
    let bare = info("troubled", "no_driver.json", &[], false);
    assert!(
        ids(&bare).contains("gpu.driver-not-loaded"),
        "{}",
        bare["findings"]
    );
    let healthy = info("healthy", "healthy_h100.json", &[], false);
    assert!(healthy["gpu"]["pci_gpus"].is_null());
}

#[test]
fn an_idle_healthy_node_passes_fail_on_warning() {
    // An idle RTX 5090 with only the software power cap active (24 W, its limit at the default)
    // and an idle L4, both links narrowed to x8 of x16: what a Slurm prolog sees between jobs.
    let report = info("healthy", "idle_5090_and_l4.json", &[], false);
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["severity"] == "note"),
        "{}",
        report["findings"]
    );
    assert!(ids(&report).contains("gpu.pcie-narrow-idle"));
    let output = hwbench()
        .args(["info", "--fail-on", "warning"])
        .env("HWBENCH_ROOT", util::fixture("roots/healthy"))
        .env(
            "HWBENCH_GPU_FIXTURE",
            util::fixture("gpu/idle_5090_and_l4.json"),
        )
        .env_remove("CUDA_VISIBLE_DEVICES")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn several_clock_reasons_get_advice_for_each_and_a_lowered_limit_is_named() {
    let report = info("troubled", "troubled_two_models.json", &[], false);
    let finding = |id: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id && f["subject"] == "GPU 0")
            .unwrap_or_else(|| panic!("no {id}: {}", report["findings"]))
            .clone()
    };
    let held = finding("gpu.clocks-held-down");
    let advice = held["advice"].as_str().unwrap();
    assert!(
        advice.contains("power limit") && advice.contains("too hot"),
        "{advice}"
    );
    assert_eq!(
        finding("gpu.power-limit-low")["evidence"],
        "power limit 500 W of 700 W by default"
    );
}

#[test]
fn findings_are_redacted_and_say_what_to_do() {
    let report = info("troubled", "troubled_two_models.json", &[], true);
    let text = report["findings"].to_string();
    assert!(
        !text.contains("python3") && !text.contains("4242"),
        "{text}"
    );
    let processes = &report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "gpu.other-processes")
        .unwrap()["evidence"];
    assert_eq!(processes, "1 other process using 2048 MiB");
    for finding in report["findings"].as_array().unwrap() {
        for field in ["severity", "subject", "summary", "evidence", "advice"] {
            assert!(!finding[field].as_str().unwrap().is_empty(), "{finding}");
        }
    }
    // Errors come first.
    assert_eq!(report["findings"][0]["severity"], "error");
}

#[test]
fn fail_on_exits_1_with_one_line_and_still_writes_the_report() {
    let dir = Dir::new();
    let path = dir.join("info.json");
    let output = hwbench()
        .args(["info", "--format", "json", "--fail-on", "error", "-o"])
        .arg(&path)
        .env("HWBENCH_ROOT", util::fixture("roots/troubled"))
        .env(
            "HWBENCH_GPU_FIXTURE",
            util::fixture("gpu/troubled_two_models.json"),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "at error or above: gpu.missing-from-nvml (GPUs), gpu.xid-drain (GPU 1), gpu.recovery-needed (GPU 1), gpu.nvlink-down (GPU 0), gpu.ecc-uncorrected (GPU 0)"
        ),
        "{stderr}"
    );
    assert!(path.exists());
    // A machine with notes only passes --fail-on warning.
    let healthy = hwbench()
        .args(["info", "--fail-on", "warning"])
        .env("HWBENCH_ROOT", util::fixture("roots/healthy"))
        .env(
            "HWBENCH_GPU_FIXTURE",
            util::fixture("gpu/healthy_h100.json"),
        )
        .output()
        .unwrap();
    assert_eq!(healthy.status.code(), Some(0));
}

#[test]
fn findings_reach_every_format_diff_and_fleet() {
    let text = |format: &str| {
        let output = hwbench()
            .args(["info", "--format", format])
            .env("HWBENCH_ROOT", util::fixture("roots/troubled"))
            .env(
                "HWBENCH_GPU_FIXTURE",
                util::fixture("gpu/troubled_two_models.json"),
            )
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let table = text("table");
    assert!(table.starts_with("hwbench info\n\nFindings"), "{table}");
    let markdown = text("markdown");
    let details = markdown.find("<details>").unwrap();
    assert!(markdown[..details].contains("[gpu.ecc-uncorrected]"));
    assert!(
        markdown[details..].contains("[env.container]"),
        "notes go with the details"
    );
    let prometheus = text("prometheus");
    assert!(
        prometheus.contains(
            r#"hwbench_finding{id="gpu.pcie-narrow",severity="warning",subject="GPU 0"} 1"#
        )
    );

    let dir = Dir::new();
    let healthy = info("healthy", "healthy_h100.json", &[], true);
    let troubled = info("troubled", "troubled_two_models.json", &[], true);
    let a = dir.write_json("a.json", &healthy);
    let b = dir.write_json("b.json", &troubled);
    let (code, stdout, _) = util::run(&[
        "diff".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(code, Some(1));
    let diff: Value = serde_json::from_str(&stdout).unwrap();
    let changes = diff["findings"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["change"] == "appeared" && c["id"] == "gpu.ecc-uncorrected")
    );
    assert!(
        !diff["fields"].to_string().contains("findings["),
        "findings are not listed field by field"
    );

    let fleet = Dir::new();
    for node in ["n1", "n2"] {
        fleet.write_json(&format!("{node}.json"), &healthy);
    }
    fleet.write_json("n3.json", &troubled);
    let (_, stdout, _) = util::run(&[
        "fleet".as_ref(),
        fleet.path().as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["nodes_with_errors"][0]["node"], "n3");
    let troubled_group = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["nodes"][0] == "n3")
        .unwrap();
    assert_eq!(troubled_group["findings"]["gpu.ecc-uncorrected"], 1);
}

#[test]
fn this_machine_lists_only_what_is_true_here() {
    let report = util::run_json(&["info", "--format", "json"], &[]);
    let ids = ids(&report);
    let virtualised = !report["cpu"]["virtualization"]
        .as_array()
        .unwrap()
        .is_empty();
    for id in &ids {
        assert!(
            id.starts_with("env.") == virtualised || !id.starts_with("env."),
            "{id} on {}",
            report["cpu"]["virtualization"]
        );
    }
    if std::path::Path::new("/dev/nvidiactl").exists() {
        return;
    }
    // Without a GPU, no GPU rule can fire.
    assert!(ids.iter().all(|id| !id.starts_with("gpu.")), "{ids:?}");
}

#[test]
fn every_rule_is_in_the_docs_table() {
    let docs = std::fs::read_to_string(crate::util::in_repo("docs/findings.md")).unwrap();
    for (id, severity, _) in RULES {
        assert!(
            docs.contains(&format!("| `{id}` | {} |", severity.name())),
            "{id} is not in docs/findings.md"
        );
    }
}

/// Each GPU's NUMA node comes from sysfs (its PCI device found by NVML's bus id), with the node's
/// CPUs; a one-node machine's -1 is a reason, not a node.
#[test]
fn each_gpu_has_its_numa_node_from_sysfs() {
    let report = info("troubled", "troubled_two_models.json", &[], false);
    let gpus = report["gpu"]["devices"].as_array().unwrap();
    assert_eq!(gpus[0]["pci_bus_id"], "00000000:19:00.0");
    assert_eq!(gpus[0]["numa_node"], 1);
    assert_eq!(gpus[0]["numa_cpus"], "32-63");
    assert_eq!(gpus[1]["pci_bus_id"], "00000000:07:00.0");
    assert!(gpus[1].get("numa_node").is_none());
    assert!(
        gpus[1]["unavailable"]["numa_node"]
            .as_str()
            .unwrap()
            .contains("one-node"),
        "{}",
        gpus[1]["unavailable"]
    );
}

/// Two GPUs recorded with one index (a broken or hostile record): redaction keeps each one's
/// finding, worked out again from its own processes, instead of blanking the second.
#[test]
fn two_gpus_with_one_index_keep_their_own_redacted_findings() {
    let report = info("troubled", "duplicate_index.json", &[], true);
    let evidence: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "gpu.other-processes")
        .map(|f| f["evidence"].as_str().unwrap())
        .collect();
    assert_eq!(
        evidence,
        [
            "1 other process using 2048 MiB",
            "2 other processes using 1536 MiB"
        ]
    );
    let text = report.to_string();
    for secret in ["python3", "4242", "train.py", "5151", "eval.py"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

/// A GPU NVML answers GPU_IS_LOST for is an error naming it, so that a prolog drains the node
/// (the table alone showed "n/a").
#[test]
fn a_gpu_fallen_off_the_bus_is_an_error() {
    let report = info("healthy", "gpu_lost.json", &[], false);
    let lost: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "gpu.lost")
        .collect();
    assert_eq!(lost.len(), 1, "{}", report["findings"]);
    assert_eq!(lost[0]["severity"], "error");
    assert_eq!(lost[0]["subject"], "GPU 1");
}

/// The driver's Xids in the kernel log are counted per GPU: a drain-class number (79: fallen off
/// the bus) is an error, another (13) a warning, each named by the GPU its PCI address is.
#[test]
fn xids_in_the_kernel_log_are_findings_for_their_gpus() {
    let report = info("troubled", "troubled_two_models.json", &[], false);
    let xids: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("gpu.xid"))
        .map(|f| {
            let field = |k: &str| f[k].as_str().unwrap().to_string();
            (field("id"), field("subject"), field("evidence"))
        })
        .collect();
    assert_eq!(
        xids,
        [
            (
                "gpu.xid-drain".to_string(),
                "GPU 1".to_string(),
                "Xid 79, once since boot, PCI 0000:07:00".to_string()
            ),
            (
                "gpu.xid".to_string(),
                "GPU 0".to_string(),
                "Xid 13, 2 times since boot, PCI 0000:19:00".to_string()
            ),
        ]
    );
    // Where the log cannot be read, the report says why instead.
    let healthy = info("healthy", "healthy_h100.json", &[], false);
    assert!(healthy["gpu"]["xids"].is_null());
    assert!(
        healthy["gpu"]["unavailable"]["xids"]
            .as_str()
            .unwrap()
            .contains("/dev/kmsg")
    );
}
