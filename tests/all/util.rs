//! What the integration tests share: running hwbench, a temporary folder to write reports and
//! executable fakes into, short training runs, and fixed reports built from recorded data.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hwbench::companion::CompanionStatus;
use hwbench::info::build::BuildInfo;
use hwbench::info::cuda_libs::CudaEnvironment;
use hwbench::info::gpu::GpuSection;
use hwbench::info::system::{MemoryReport, OsReport};
use hwbench::info::{InfoReport, SCHEMA_VERSION, Unavailable, cpu};

pub const HOSTNAME: &str = "build-host-4242";

/// Makes a spread of a saved report summarise `runs`, as hwbench writes one: the runs, their
/// count, range, median and its interval.
pub fn set_runs(spread: &mut serde_json::Value, runs: &[f64]) {
    let summary = hwbench::stats::Spread::of(runs.iter().copied()).expect("some runs");
    *spread = serde_json::to_value(summary).unwrap();
}

/// Multiplies every time of a spread of a saved report, its runs included, by `factor`.
pub fn scale_spread(spread: &mut serde_json::Value, factor: f64) {
    let summary: hwbench::stats::Spread = serde_json::from_value(spread.clone()).unwrap();
    *spread = serde_json::to_value(summary.scaled(factor)).unwrap();
}

/// The executable under test: this build's, or `$HWBENCH_TEST_BIN` (to check that a regression
/// test fails on an older build).
pub fn bin() -> PathBuf {
    std::env::var_os("HWBENCH_TEST_BIN")
        .map_or_else(|| assert_cmd::cargo::cargo_bin("hwbench"), PathBuf::from)
}

/// The `hwbench` under test, with the test seams cleared from the environment and no progress
/// lines.
pub fn hwbench() -> Command {
    let mut command = Command::new(bin());
    command
        .env_remove("HWBENCH_GPU_FIXTURE")
        .env_remove("HWBENCH_CUDA")
        .env_remove("HWBENCH_PYTHON")
        // Tests read stderr for errors; progress lines have their own test.
        .env("HWBENCH_PROGRESS", "none");
    command
}

/// Runs `hwbench` with `args` and `env`, expects success, and parses stdout as JSON.
pub fn run_json<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> serde_json::Value {
    let output = hwbench()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs `hwbench` with `args` and `env`; returns its exit code and stdout parsed as JSON.
pub fn run_json_status<S: AsRef<OsStr>>(
    args: &[S],
    env: &[(&str, &str)],
) -> (Option<i32>, serde_json::Value) {
    let output = hwbench()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "exit {:?}, stdout is not JSON ({e}): {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), json)
}

/// Runs `hwbench` with `args`; returns its exit code, stdout and stderr.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> (Option<i32>, String, String) {
    let output = hwbench().args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// How many of the course's epochs take about `duration` on one thread of this machine, measured
/// here with the engine's loop: for tests that need a run still going after a while, however fast
/// the machine.
pub fn epochs_lasting(duration: Duration) -> u64 {
    use hwbench::engine::session::{self, Prepared};
    use hwbench::engine::{data, model::InitWeights};
    let prepared = Prepared::new(&data::prepare(42), candle_core::Device::Cpu).unwrap();
    let probe = 20_000;
    let trained = session::train_epochs(&prepared, &InitWeights::reference(), 0.01, probe).unwrap();
    let per_epoch = trained.result.total_s / probe as f64;
    ((duration.as_secs_f64() / per_epoch) as u64).max(probe)
}

/// The arguments of a short `train-compare` (300 epochs, one timed run, 10-epoch warm-ups) with
/// `extra` added; a flag in `extra` replaces the short run's own.
pub fn short_train(extra: &[&str]) -> Vec<String> {
    train_compare(&[("--epochs", "300"), ("--warmup-epochs", "10")], extra)
}

/// Like [`short_train`], shorter still: 100 epochs, 5-epoch warm-ups, for tests that need a
/// report, not a trained model.
pub fn tiny_train(extra: &[&str]) -> Vec<String> {
    train_compare(&[("--epochs", "100"), ("--warmup-epochs", "5")], extra)
}

fn train_compare(defaults: &[(&str, &str)], extra: &[&str]) -> Vec<String> {
    let mut args = vec!["train-compare".to_string()];
    for (flag, value) in defaults.iter().chain(&[("--repeats", "1")]) {
        if !extra.contains(flag) {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A temporary folder for reports, fake companions and fake Pythons; removed when dropped.
pub struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes `report` as pretty JSON to `name`.
    pub fn write_json(&self, name: &str, report: &serde_json::Value) -> PathBuf {
        self.write(name, serde_json::to_string_pretty(report).unwrap())
    }

    /// Writes an executable shell script `name` running `body`.
    pub fn executable(&self, name: &str, body: &str) -> PathBuf {
        let path = self.write(name, format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

/// A fake Python named `name` in `dir` that answers the Python-stack probe with `answer` (the
/// probe's one JSON line), whatever it is asked; its path.
pub fn fake_python(dir: &Dir, name: &str, answer: &str) -> String {
    dir.executable(name, &format!("echo '{answer}'"))
        .to_string_lossy()
        .into_owned()
}

/// `hwbench info --format json` with the GPUs of a recorded fixture.
pub fn info_with(gpu_fixture: &str) -> serde_json::Value {
    run_json(
        &["info", "--format", "json"],
        &[("HWBENCH_GPU_FIXTURE", &fixture(gpu_fixture))],
    )
}

pub fn fixture(path: &str) -> String {
    in_repo(&format!("tests/fixtures/{path}"))
}

/// A path inside this repository, whatever folder the tests run in: the one place test paths
/// are made.
pub fn in_repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// An `info` report made only of recorded data, so it renders the same on every machine.
pub fn info_report(gpu_fixture: &str) -> InfoReport {
    let mut report = recorded_info(gpu_fixture);
    for gpu in &mut report.gpu.devices {
        hwbench::info::peaks::fill_gpu(gpu);
    }
    hwbench::info::peaks::fill_cpu(&mut report.cpu);
    report.findings = hwbench::info::findings::assess(&report);
    report
}

fn recorded_info(gpu_fixture: &str) -> InfoReport {
    let cpuinfo = std::fs::read_to_string(fixture("cpuinfo/xeon_cascade_lake_2core.txt")).unwrap();
    let mut cpu = cpu::from_cpuinfo(&cpuinfo);
    cpu.architecture = "x86_64".to_string();
    cpu.usable_cpus = Some(2);
    cpu.affinity_cpus = Some(2);
    cpu.base_mhz = Some(2500.0);
    cpu.caches = vec![
        cpu::CacheLevel {
            name: "L1d".into(),
            size_kib: 32,
            instances: Some(2),
        },
        cpu::CacheLevel {
            name: "L2".into(),
            size_kib: 1024,
            instances: Some(2),
        },
        cpu::CacheLevel {
            name: "L3".into(),
            size_kib: 36608,
            instances: Some(1),
        },
    ];
    cpu.virtualization = vec!["virtual machine (KVM)".to_string()];
    cpu.unavailable
        .insert("max_mhz".into(), "no cpufreq data from the kernel".into());
    let gpu = GpuSection::from_file(std::path::Path::new(&fixture(gpu_fixture)));
    // The environment each fixture needs: its first GPU by UUID (and, where there are two, the
    // second by index — a mixed list, which the two-A100 snapshots show a finding for).
    let first_uuid = gpu.devices.first().and_then(|g| g.uuid.clone());
    let cuda_visible_devices = match gpu.devices.len() {
        0 | 1 => first_uuid,
        _ => first_uuid.map(|uuid| format!("{uuid},1")),
    };
    InfoReport {
        schema_version: SCHEMA_VERSION,
        kind: "info".to_string(),
        redacted: false,
        findings: Vec::new(),
        build: BuildInfo {
            hwbench_version: "0.1.0".to_string(),
            target: "x86_64-unknown-linux-gnu".to_string(),
            cuda_companion: CompanionStatus {
                available: false,
                found: None,
                detail: "this install has no CUDA support".to_string(),
                build: None,
            },
            gpus_not_supported: Vec::new(),
        },
        cpu,
        memory: MemoryReport {
            total_mib: Some(24_000),
            available_mib: Some(23_000),
            swap_total_mib: Some(0),
            swap_free_mib: Some(0),
            cgroup_limit_mib: None,
            unavailable: Unavailable::new(),
        },
        os: OsReport {
            name: Some("Debian GNU/Linux".into()),
            version: Some("12".into()),
            long_name: Some("Linux (Debian GNU/Linux 12)".into()),
            kernel: Some("6.1.0-18-amd64".into()),
            hostname: Some(HOSTNAME.into()),
            unavailable: Unavailable::new(),
        },
        gpu,
        cuda_environment: CudaEnvironment {
            cuda_visible_devices,
            cuda_device_order: Some("PCI_BUS_ID".into()),
            cuda_runtime_version: Some("13.0".into()),
            cuda_runtime_library: Some("libcudart.so.13".into()),
            cudnn_version: None,
            cudnn_library: None,
            unavailable: [(
                "cudnn_version".to_string(),
                "libcudnn not found by the dynamic loader".to_string(),
            )]
            .into_iter()
            .collect(),
        },
        python: hwbench::info::python::PythonStack::not_asked(),
    }
}

/// Every identifying string in the GPU fixtures and the fixed report.
pub const SECRETS: &[&str] = &[
    HOSTNAME,
    "GPU-9f3c2a71-5b1e-4c7d-8e2a-0d6b4f1a2c3e",
    "1654922012345",
    "GPU-1a2b3c4d-aaaa-4bbb-8ccc-0123456789ab",
    "GPU-5e6f7a8b-dddd-4eee-8fff-ba9876543210",
    "1323421000111",
    "1323421000222",
    "MIG-1a2b3c4d-0000-4000-8000-00000000a001",
    "MIG-1a2b3c4d-0000-4000-8000-00000000a002",
    "GPU-77777777-8888-4999-8aaa-bbbbbbbbbbbb",
];

/// Fails when `text` (named `what` in the message) holds any of [`SECRETS`] or this machine's
/// real hostname.
pub fn assert_no_secrets(text: &str, what: &str) {
    let hostname = sysinfo::System::host_name().unwrap_or_default();
    for secret in SECRETS
        .iter()
        .copied()
        .chain([hostname.as_str()])
        .filter(|s| s.len() >= 4)
    {
        assert!(!text.contains(secret), "{secret} leaked in {what}");
    }
}

/// Whether the process `pid` has ended (gone, or a zombie nobody reaped yet), waiting up to 5 s.
pub fn ended(pid: u32) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')) => {
                return true;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}
