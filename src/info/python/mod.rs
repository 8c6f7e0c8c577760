//! The Python side of a training machine, as a bug ticket needs it: Python, torch (its version,
//! the CUDA it was built with, cuDNN, whether it can use CUDA), numpy, and the CUDA libraries pip
//! wheels bring (`nvidia-*` packages and the libraries in them).
//!
//! A Python is run only when one is named (`--python`, `HWBENCH_PYTHON`; `hwbench report` runs
//! `python3` by default): starting Python and importing torch takes a second or more. It starts
//! isolated (`-I`) with a timeout. Otherwise `info` reads the `python3` on PATH from its files
//! ([`files`]) and stays as quick as `lscpu`. Nothing in it is required, and every missing piece
//! is `null` with its reason.

pub mod files;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Unavailable;
use crate::process::{PythonFailure, ask_python, program_name};
use crate::redact::outside_line;

/// How long Python may take to start and import torch (a cold disk and a CUDA build take long).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The longest version or name kept from Python's answer.
const MAX_TEXT: usize = 80;

/// Prints what the Python knows of itself, torch, numpy and NVIDIA's pip wheels, as one JSON line.
const PROBE: &str = r#"
import importlib.metadata as md, json, os, platform
out = {"python": platform.python_version()}
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
out["torch"], out["numpy"] = version("torch"), version("numpy")
wheels = {}
for dist in md.distributions():
    name = dist.metadata["Name"] or ""
    if name.lower().startswith("nvidia-") and name not in wheels:
        files = [os.path.basename(str(f)) for f in (dist.files or [])]
        libs = sorted({f for f in files if f.startswith("lib") and ".so" in f})
        wheels[name] = {"package": name, "version": dist.version, "libraries": libs}
out["wheels"] = sorted(wheels.values(), key=lambda w: w["package"].lower())
if out["torch"]:
    try:
        import torch
        out["torch_cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        out["cuda_available"] = bool(torch.cuda.is_available())
        out["cuda_devices"] = torch.cuda.device_count() if out["cuda_available"] else 0
    except Exception as e:
        out["torch_error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"#;

/// How the stack was learnt.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The Python was run and imported torch (`--python`, `HWBENCH_PYTHON`, `hwbench report`).
    Ran,
    /// The `python3` on PATH, read from its files without running it (plain `hwbench info`):
    /// what only a running torch knows (cuDNN, whether it can use CUDA) is null.
    Files,
}

impl Source {
    /// The name JSON gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ran => "ran",
            Self::Files => "files",
        }
    }
}

/// The Python stack. Every field is `null` with its reason in `unavailable` when unknown.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct PythonStack {
    /// The Python asked: its file name only (a full path can carry a user name), e.g. "python3".
    pub interpreter: Option<String>,
    /// How this was learnt: `ran` or `files`; null when no Python was asked or found.
    #[serde(default)]
    pub source: Option<Source>,
    /// `platform.python_version()`, e.g. "3.11.2" (read from files: a virtual environment's
    /// full version, else "3.11" from the interpreter's file name).
    pub version: Option<String>,
    /// torch's version, e.g. "2.9.1+cu128".
    pub torch: Option<String>,
    /// `torch.version.cuda`: the CUDA torch was built with (null for a CPU-only build).
    pub torch_cuda: Option<String>,
    /// `torch.backends.cudnn.version()`, e.g. "9.10.2".
    pub cudnn: Option<String>,
    /// `torch.cuda.is_available()`.
    pub torch_cuda_available: Option<bool>,
    /// `torch.cuda.device_count()` where CUDA is available.
    pub torch_cuda_devices: Option<u32>,
    pub numpy: Option<String>,
    /// NVIDIA's pip wheels in the environment (cudart, cuBLAS, cuDNN, NCCL …), with the
    /// libraries each ships (null when no Python was asked).
    pub cuda_wheels: Option<Vec<CudaWheel>>,
    #[serde(default)]
    pub unavailable: Unavailable,
}

/// One of NVIDIA's pip wheels, e.g. `nvidia-cudnn-cu12` 9.10.2.21 with libcudnn.so.9.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CudaWheel {
    pub package: String,
    pub version: String,
    pub libraries: Vec<String>,
}

/// The fields that only torch can fill, and why they are null without it.
const TORCH_FIELDS: [&str; 5] = [
    "torch",
    "torch_cuda",
    "cudnn",
    "torch_cuda_available",
    "torch_cuda_devices",
];
const NO_TORCH: &str = "torch is not installed in this Python";

/// What the probe printed.
#[derive(Deserialize)]
struct Answer {
    python: String,
    torch: Option<String>,
    numpy: Option<String>,
    #[serde(default)]
    wheels: Vec<CudaWheel>,
    torch_cuda: Option<String>,
    cudnn: Option<u64>,
    cuda_available: Option<bool>,
    cuda_devices: Option<u32>,
    torch_error: Option<String>,
}

impl PythonStack {
    /// The stack when no Python was named: every field null, for one reason.
    pub fn not_asked() -> Self {
        Self::failed(
            None,
            None,
            "not asked: name a Python with --python or HWBENCH_PYTHON",
        )
    }

    /// The stack when no Python was named and none is on PATH.
    pub fn none_on_path() -> Self {
        Self::failed(
            None,
            None,
            "no python3 on PATH: name a Python with --python or HWBENCH_PYTHON",
        )
    }

    /// Every field null for one reason: `interpreter` (when known) could not be asked or read.
    fn failed(interpreter: Option<String>, source: Option<Source>, reason: &str) -> Self {
        let unavailable = [
            "version",
            "torch",
            "torch_cuda",
            "cudnn",
            "torch_cuda_available",
            "torch_cuda_devices",
            "numpy",
            "cuda_wheels",
        ]
        .iter()
        .chain(interpreter.is_none().then_some(&"interpreter"))
        .map(|field| (field.to_string(), reason.to_string()))
        .collect();
        Self {
            interpreter,
            source,
            unavailable,
            ..Self::default()
        }
    }
}

/// Asks `python` what it has.
pub fn probe(python: &Path) -> PythonStack {
    let name = program_name(python);
    let interpreter = Some(outside_line(&name, MAX_TEXT));
    match ask_python(python, PROBE, TIMEOUT) {
        Ok(answer) => stack(interpreter, answer),
        Err(failure) => {
            let why = match failure {
                PythonFailure::NotFound => format!("{name} not found"),
                PythonFailure::Spawn(e) => format!("cannot start {name}: {e}"),
                PythonFailure::Stopped => "interrupted".to_string(),
                PythonFailure::TimedOut => {
                    format!("{name} did not answer in {} s", TIMEOUT.as_secs())
                }
                PythonFailure::Failed(why) | PythonFailure::Unexpected(why) => {
                    format!("{name} could not run the probe: {why}")
                }
            };
            PythonStack::failed(interpreter, Some(Source::Ran), &outside_line(&why, 200))
        }
    }
}

/// The report's stack from the probe's answer, every text cleaned.
fn stack(interpreter: Option<String>, answer: Answer) -> PythonStack {
    let clean = |text: String| outside_line(&text, MAX_TEXT);
    let mut unavailable = Unavailable::new();
    let mut missing = |field: &str, why: String| {
        unavailable.insert(field.to_string(), why);
    };
    let torch = answer.torch.map(clean);
    let mut torch_fields = (None, None, None, None);
    match (&torch, answer.torch_error) {
        (None, _) => {
            for field in TORCH_FIELDS {
                missing(field, NO_TORCH.to_string());
            }
        }
        (Some(_), Some(error)) => {
            let why = format!("import torch failed: {}", clean(error));
            for field in [
                "torch_cuda",
                "cudnn",
                "torch_cuda_available",
                "torch_cuda_devices",
            ] {
                missing(field, why.clone());
            }
        }
        (Some(_), None) => {
            let cuda = answer.torch_cuda.map(clean);
            if cuda.is_none() {
                missing(
                    "torch_cuda",
                    "a CPU-only build of torch (torch.version.cuda is None)".to_string(),
                );
            }
            let cudnn = answer.cudnn.map(cudnn_version);
            if cudnn.is_none() {
                missing("cudnn", "torch.backends.cudnn is not available".to_string());
            }
            if answer.cuda_available != Some(true) {
                missing(
                    "torch_cuda_devices",
                    "torch.cuda.is_available() is False".to_string(),
                );
            }
            torch_fields = (cuda, cudnn, answer.cuda_available, answer.cuda_devices);
        }
    }
    if answer.numpy.is_none() {
        missing("numpy", "numpy is not installed in this Python".to_string());
    }
    let wheels = answer
        .wheels
        .into_iter()
        .map(|w| CudaWheel {
            package: clean(w.package),
            version: clean(w.version),
            libraries: w.libraries.into_iter().map(clean).collect(),
        })
        .collect();
    let (torch_cuda, cudnn, torch_cuda_available, torch_cuda_devices) = torch_fields;
    PythonStack {
        interpreter,
        source: Some(Source::Ran),
        version: Some(clean(answer.python)),
        torch,
        torch_cuda,
        cudnn,
        torch_cuda_available,
        torch_cuda_devices: torch_cuda_devices.filter(|_| torch_cuda_available == Some(true)),
        numpy: answer.numpy.map(clean),
        cuda_wheels: Some(wheels),
        unavailable,
    }
}

/// cuDNN's version number as it is written: 90102 → "9.1.2" (cuDNN 9: major·10000 + minor·100 +
/// patch), 8907 → "8.9.7" (cuDNN 8 and older: major·1000 + minor·100 + patch).
fn cudnn_version(number: u64) -> String {
    let major_unit = if number >= 90_000 { 10_000 } else { 1_000 };
    format!(
        "{}.{}.{}",
        number / major_unit,
        number % major_unit / 100,
        number % 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Answer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn cudnn_numbers_read_as_versions() {
        assert_eq!(cudnn_version(91002), "9.10.2");
        assert_eq!(cudnn_version(90100), "9.1.0");
        assert_eq!(cudnn_version(8907), "8.9.7");
    }

    #[test]
    fn a_cuda_build_with_its_wheels() {
        let s = stack(
            Some("python3".into()),
            answer(
                r#"{"python": "3.11.2", "torch": "2.9.1+cu128", "numpy": "2.3.4",
                "wheels": [{"package": "nvidia-cudnn-cu12", "version": "9.10.2.21",
                "libraries": ["libcudnn.so.9"]}], "torch_cuda": "12.8", "cudnn": 91002,
                "cuda_available": true, "cuda_devices": 8}"#,
            ),
        );
        assert_eq!(s.torch_cuda.as_deref(), Some("12.8"));
        assert_eq!(s.cudnn.as_deref(), Some("9.10.2"));
        assert_eq!(
            (s.torch_cuda_available, s.torch_cuda_devices),
            (Some(true), Some(8))
        );
        assert_eq!(s.cuda_wheels.unwrap()[0].libraries, ["libcudnn.so.9"]);
        assert!(s.unavailable.is_empty(), "{:?}", s.unavailable);
    }

    #[test]
    fn every_missing_piece_says_why() {
        let cpu_only = stack(
            None,
            answer(
                r#"{"python": "3.12.1", "torch": "2.9.1+cpu", "numpy": null, "wheels": [],
                "torch_cuda": null, "cudnn": null, "cuda_available": false, "cuda_devices": 0}"#,
            ),
        );
        assert!(cpu_only.unavailable["torch_cuda"].contains("CPU-only build"));
        assert!(cpu_only.unavailable["numpy"].contains("not installed"));
        assert_eq!(cpu_only.torch_cuda_devices, None);
        let no_torch = stack(None, answer(r#"{"python": "3.12.1", "torch": null}"#));
        assert!(no_torch.unavailable["torch"].contains("not installed"));
        let broken = stack(
            None,
            answer(
                r#"{"python": "3.12.1", "torch": "2.9.1", "torch_error": "OSError: libcudnn.so.9: cannot open\u001b[31m"}"#,
            ),
        );
        let why = &broken.unavailable["torch_cuda_available"];
        assert!(why.starts_with("import torch failed: OSError"), "{why}");
        assert!(
            !why.contains('\u{1b}'),
            "escape sequences are cleaned: {why:?}"
        );
        assert!(PythonStack::not_asked().unavailable["torch"].contains("--python"));
    }
}
