//! `hwbench info`: what machine this is. Each probe fills one plain struct; `show` draws them.
//!
//! Every field stands alone: a value that cannot be read is `None` (JSON `null`) and its reason is
//! recorded in the struct's `unavailable` map, so one failing probe never hides the others.

pub mod build;
pub mod clock;
pub mod cpu;
pub mod cuda_libs;
pub mod findings;
pub mod gpu;
pub mod gpu_model;
pub mod loader;
pub mod machine;
pub mod peaks;
pub mod python;
pub mod show;
pub mod system;
pub mod uarch;
pub mod xid;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::redact::{self, Redactor};

/// Bumped when a field is renamed or removed, or changes meaning; adding fields does not bump it.
pub const SCHEMA_VERSION: u32 = 1;

/// Why a field is `null`, keyed by the field's JSON name.
pub type Unavailable = BTreeMap<String, String>;

/// Keeps a probed value, or records why it is missing.
pub fn keep<T>(result: Result<T, String>, field: &str, unavailable: &mut Unavailable) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(reason) => {
            unavailable.insert(field.to_string(), reason);
            None
        }
    }
}

/// The value of `key` in a `key = value` file (os-release, pyvenv.cfg): trimmed, its quotes
/// removed.
pub fn config_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\''))
    })
}

/// The folders of `dirs` that exist, each once, by their real paths (a link to another is the
/// other).
pub fn distinct_dirs<P: AsRef<std::path::Path>>(
    dirs: impl IntoIterator<Item = P>,
) -> Vec<std::path::PathBuf> {
    let mut real: Vec<std::path::PathBuf> = dirs
        .into_iter()
        .filter_map(|dir| std::fs::canonicalize(dir).ok())
        .filter(|dir| dir.is_dir())
        .collect();
    real.sort();
    real.dedup();
    real
}

/// The whole `hwbench info` report. The JSON schema is documented in docs/json-schema.md.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct InfoReport {
    /// Version of this JSON layout.
    pub schema_version: u32,
    /// Always "info".
    pub kind: String,
    /// Whether identifying values (hostname, GPU UUIDs and serials) were replaced by placeholders.
    pub redacted: bool,
    /// What on this machine will make training slow or wrong, errors first (absent in reports
    /// from before findings).
    #[serde(default)]
    pub findings: Vec<findings::Finding>,
    pub build: build::BuildInfo,
    pub cpu: cpu::CpuReport,
    pub memory: system::MemoryReport,
    pub os: system::OsReport,
    pub gpu: gpu::GpuSection,
    pub cuda_environment: cuda_libs::CudaEnvironment,
    /// Python, torch, numpy and NVIDIA's pip wheels, when a Python was named (absent in older
    /// reports).
    #[serde(default = "python::PythonStack::not_asked")]
    pub python: python::PythonStack,
}

impl InfoReport {
    /// This report's identifying values and their placeholders: the hostname, and each GPU's UUID,
    /// serial and MIG UUIDs (placeholders by position, so that two machines of a kind still
    /// compare).
    pub fn secrets(&self) -> Vec<(String, String)> {
        let mut secrets = self.gpu.secrets();
        if let Some(hostname) = &self.os.hostname {
            secrets.push((hostname.clone(), redact::HOSTNAME.to_string()));
        }
        secrets
    }

    /// Replaces every identifying value, its own and those `redactor` knows, wherever it appears
    /// (findings included: they were worked out from the true values); processes on the GPUs lose
    /// their pids and names, in their findings too.
    pub fn redact(&mut self, redactor: &Redactor) {
        for gpu in &mut self.gpu.devices {
            for process in gpu.processes.iter_mut().flatten() {
                process.pid = None;
                process.name = None;
            }
        }
        // Each GPU's finding again, from what is left of its processes: the findings of one
        // subject in the order of its GPUs (a hostile or broken record may give two GPUs one
        // index).
        let mut evidence: Vec<(String, String)> = self
            .gpu
            .devices
            .iter()
            .filter_map(|g| Some((format!("GPU {}", g.index), findings::other_processes(g)?)))
            .collect();
        for finding in &mut self.findings {
            if finding.id != findings::OTHER_PROCESSES {
                continue;
            }
            finding.evidence = match evidence.iter().position(|(s, _)| *s == finding.subject) {
                Some(i) => evidence.remove(i).1,
                None => "other processes use this GPU".to_string(),
            };
        }
        let redactor = redactor.clone().with(self.secrets());
        // Identifying values, replaced as data.
        if self.os.hostname.is_some() {
            self.os.hostname = Some(redact::HOSTNAME.to_string());
        }
        self.gpu.redact_identities();
        // Free text: what came from outside, and what hwbench wrote from the true values.
        self.for_each_text(|text| *text = redactor.text(text));
        self.redacted = true;
    }

    /// Every free-text field: reasons a value is missing, the findings' evidence (worked out from
    /// the true values), the companion's own words, the CUDA environment as the process saw it.
    /// The machine's facts (OS, CPU and GPU names, versions) are not free text.
    pub fn for_each_text(&mut self, mut edit: impl FnMut(&mut String)) {
        for unavailable in [
            &mut self.cpu.unavailable,
            &mut self.memory.unavailable,
            &mut self.os.unavailable,
            &mut self.gpu.unavailable,
            &mut self.cuda_environment.unavailable,
        ] {
            unavailable.values_mut().for_each(&mut edit);
        }
        self.gpu.message.iter_mut().for_each(&mut edit);
        for gpu in &mut self.gpu.devices {
            gpu.unavailable.values_mut().for_each(&mut edit);
        }
        for finding in &mut self.findings {
            edit(&mut finding.evidence);
        }
        let companion = &mut self.build.cuda_companion;
        edit(&mut companion.detail);
        companion.found.iter_mut().for_each(&mut edit);
        // What the companion said of itself is outside text too.
        if let Some(build) = &mut companion.build {
            edit(&mut build.hwbench_version);
            edit(&mut build.cuda_version);
            edit(&mut build.compute_capability);
            for library in &mut build.libraries {
                edit(&mut library.file);
                library.version.iter_mut().for_each(&mut edit);
            }
        }
        let environment = &mut self.cuda_environment;
        for text in [
            &mut environment.cuda_visible_devices,
            &mut environment.cuda_runtime_library,
            &mut environment.cudnn_library,
        ] {
            text.iter_mut().for_each(&mut edit);
        }
    }
}

/// Where the machine's files are read from: `/`, or the folder `HWBENCH_ROOT` names (a test seam:
/// recorded /proc and /sys files, so that every rule can be tried on a made-up machine).
#[derive(Clone, Debug)]
pub struct Root(std::path::PathBuf);

impl Root {
    pub fn from_env() -> Self {
        match std::env::var_os("HWBENCH_ROOT") {
            Some(path) => Self(path.into()),
            None => Self("/".into()),
        }
    }

    /// The machine this process runs on.
    pub fn real() -> Self {
        Self("/".into())
    }

    /// A recorded machine.
    pub fn at(path: impl Into<std::path::PathBuf>) -> Self {
        Self(path.into())
    }

    /// True for the machine itself, where CPUID and system calls tell the same as the files.
    pub fn is_real(&self) -> bool {
        self.0 == std::path::Path::new("/")
    }

    /// An absolute path ("/proc/cpuinfo") under this root.
    pub fn path(&self, path: &str) -> std::path::PathBuf {
        self.0.join(path.trim_start_matches('/'))
    }

    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path(path)).ok()
    }

    pub fn exists(&self, path: &str) -> bool {
        self.path(path).exists()
    }
}

/// Where the GPU data comes from: the real NVML, or a recorded file (tests).
pub enum GpuSource {
    Nvml,
    Recorded(std::path::PathBuf),
}

impl GpuSource {
    /// NVML, unless `HWBENCH_GPU_FIXTURE` names a recorded `GpuSection` JSON file (a test seam).
    pub fn from_env() -> Self {
        match std::env::var_os("HWBENCH_GPU_FIXTURE") {
            Some(path) => Self::Recorded(path.into()),
            None => Self::Nvml,
        }
    }

    pub fn probe(&self) -> gpu::GpuSection {
        match self {
            Self::Nvml => gpu::probe_nvml(),
            Self::Recorded(path) => gpu::GpuSection::from_file(path),
        }
    }
}

/// The report of `machine`, with what is left to probe (memory, OS, CUDA libraries). Never
/// fails: what cannot be read is marked unavailable. Findings come last (`findings::assess`), once
/// the report is redacted or not.
pub fn collect(machine: &machine::Machine) -> InfoReport {
    let gpu = machine.gpus().clone();
    let root = &machine.root;
    InfoReport {
        schema_version: SCHEMA_VERSION,
        kind: "info".to_string(),
        redacted: false,
        findings: Vec::new(),
        build: build::BuildInfo::current(&gpu, machine.companion_status()),
        cpu: machine.cpu.clone(),
        memory: system::probe_memory(root),
        os: system::probe_os(root),
        gpu,
        cuda_environment: cuda_libs::probe(),
        python: python::PythonStack::not_asked(),
    }
}
