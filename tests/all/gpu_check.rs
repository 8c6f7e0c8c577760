//! `scripts/gpu-check.sh`, as far as a machine without a GPU allows: rehearsed with a recorded
//! H100 and the CPU worker standing in for the companion, so that it runs first time on a GPU.

use std::process::Command;

use crate::util::{self, Dir};

fn gpu_check(args: &[&str]) -> std::process::Output {
    let script = crate::util::in_repo("scripts/gpu-check.sh");
    let install = util::bin().parent().unwrap().to_path_buf();
    Command::new("bash")
        .arg(script)
        .args(args)
        .arg(install)
        .env_remove("HWBENCH_GPU_FIXTURE")
        .env_remove("HWBENCH_CUDA")
        .output()
        .unwrap()
}

#[test]
fn the_gpu_check_runs_every_step_in_rehearsal() {
    let dir = Dir::new();
    let out = dir.path().to_str().unwrap();
    let output = gpu_check(&["--rehearse", "--out", out]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "fields agreeing with nvidia-smi           16 of 16",
        "correctness gate",
        "cuda:0 ok",
        "first epoch cold / warm",
        "scale: best share of peak",
        "default scale --with-pytorch",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    let results = std::fs::read_to_string(dir.join("nvidia-h100-80gb-hbm3.md")).unwrap();
    assert!(results.contains("## nvidia-smi and hwbench info agree"));
    assert!(results.contains("| cuda:0 |"));
    assert!(results.contains("## scale --with-pytorch"));
    assert!(results.contains("| clocks_event_reasons.active | 0x1 | ['gpu_idle'] | yes |"));
    assert!(results.contains("## NVML queries that gave no value"));
    for raw in ["info", "train-compare", "scale"] {
        let path = dir.join(&format!("nvidia-h100-80gb-hbm3-{raw}.json"));
        let _: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    }
}

#[test]
fn without_a_gpu_it_says_so_in_one_line() {
    if std::path::Path::new("/dev/nvidiactl").exists() {
        return;
    }
    let output = gpu_check(&[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no NVIDIA GPU here"), "{stderr}");
    assert_eq!(gpu_check(&["--no-gpu-ok"]).status.code(), Some(0));
}
