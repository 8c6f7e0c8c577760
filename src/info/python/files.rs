//! The `python3` on PATH, read from its files without running it: starting Python and importing
//! torch takes a second or more, and `hwbench info` stays as quick as `lscpu`.
//!
//! The interpreter's environment is found from where it lies: a virtual environment's
//! `pyvenv.cfg` (its Python version, and whether the system's packages are seen too), else the
//! prefix above its `bin/` (`/usr`, a conda environment, a pyenv version). Its site-packages
//! folders give the installed distributions from their `*.dist-info` folder names, NVIDIA's wheels
//! their libraries from their `RECORD`s, and torch the CUDA it was built with from
//! `torch/version.py`. What only a running torch knows (whether it can use CUDA, cuDNN's version)
//! is `null` with the way to ask it: `--python`.

use std::path::{Path, PathBuf};

use super::{CudaWheel, PythonStack, Source};
use crate::info::Unavailable;
use crate::redact::outside_line;

/// The longest version or name kept from a file.
const MAX_TEXT: usize = 80;

/// How to learn what only a running Python knows.
const ASK: &str =
    "known only to a running torch: name this Python with --python (or HWBENCH_PYTHON) to ask it";

/// The stack of the first `python3` on `path` (PATH's value), read from its files; `None` when
/// there is none.
pub fn read_from_path(path: &std::ffi::OsStr) -> Option<PythonStack> {
    let python = std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join("python3"))
        .find(|candidate| is_executable(candidate))?;
    Some(read(&python))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The stack of the interpreter at `python`, read from its files.
pub fn read(python: &Path) -> PythonStack {
    let interpreter = Some(outside_line(
        &crate::process::program_name(python),
        MAX_TEXT,
    ));
    let failed = |why: &str| PythonStack::failed(interpreter.clone(), Some(Source::Files), why);
    if is_script(python) {
        return failed(
            "python3 on PATH is a script (a pyenv shim or a wrapper), not read: name the Python with --python",
        );
    }
    let Some(env) = Environment::of(python) else {
        return failed(
            "the Python version of python3 on PATH is not in its file names: name it with --python",
        );
    };
    // A virtual environment's lib64 is a link to its lib: each folder is read once.
    let site = crate::info::distinct_dirs(env.site_dirs());
    let installed: Vec<Distribution> = site.iter().flat_map(|dir| distributions(dir)).collect();
    stack(interpreter, &env.version, &installed, &site)
}

/// Whether the file starts with `#!` (a shell script standing in for Python).
fn is_script(path: &Path) -> bool {
    use std::io::Read;
    let mut start = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|()| &start == b"#!")
}

/// Where an interpreter's packages live.
struct Environment {
    /// "3.11.7" from a pyvenv.cfg, else "3.11" from the interpreter's file name.
    version: String,
    /// The folder above `bin/`.
    prefix: PathBuf,
    /// A virtual environment's base prefix, when it sees the system's packages too.
    base_prefix: Option<PathBuf>,
}

impl Environment {
    fn of(python: &Path) -> Option<Self> {
        let prefix = python.parent()?.parent()?.to_path_buf();
        let venv = std::fs::read_to_string(prefix.join("pyvenv.cfg")).ok();
        let venv_field = |key: &str| {
            venv.as_deref()
                .and_then(|cfg| crate::info::config_value(cfg, key))
                .map(str::to_string)
        };
        let resolved = std::fs::canonicalize(python).unwrap_or_else(|_| python.to_path_buf());
        let version = venv_field("version")
            .or_else(|| venv_field("version_info"))
            .or_else(|| minor_version(&resolved))?;
        let base_prefix = match venv_field("include-system-site-packages").as_deref() {
            Some("true") => {
                venv_field("home").and_then(|home| Path::new(&home).parent().map(Path::to_path_buf))
            }
            _ => None,
        };
        // A symbolic link to the interpreter (a system python3 → python3.11) names its prefix.
        let prefix = if venv.is_some() {
            prefix
        } else {
            resolved
                .parent()
                .and_then(Path::parent)
                .map_or(prefix, Path::to_path_buf)
        };
        Some(Self {
            version,
            prefix,
            base_prefix,
        })
    }

    /// The folders Python itself would search, site-packages and Debian's dist-packages.
    fn site_dirs(&self) -> Vec<PathBuf> {
        let minor: String = self
            .version
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".");
        let python = format!("python{minor}");
        let mut dirs = Vec::new();
        for prefix in std::iter::once(&self.prefix).chain(&self.base_prefix) {
            dirs.extend([
                prefix.join("lib").join(&python).join("site-packages"),
                prefix.join("lib64").join(&python).join("site-packages"),
                prefix.join("local/lib").join(&python).join("dist-packages"),
                prefix.join("lib/python3/dist-packages"),
                prefix.join("lib").join(&python).join("dist-packages"),
            ]);
        }
        dirs
    }
}

/// "python3.11" → "3.11".
fn minor_version(interpreter: &Path) -> Option<String> {
    let name = interpreter.file_name()?.to_str()?;
    let version = name.strip_prefix("python")?;
    let mut parts = version.split('.');
    let valid = parts.next()?.parse::<u32>().is_ok() && parts.next()?.parse::<u32>().is_ok();
    (valid && parts.next().is_none()).then(|| version.to_string())
}

/// One installed distribution, from its `name-version.dist-info` folder.
struct Distribution {
    /// Normalised as pip does: lower case, words joined by '-' ("nvidia-cudnn-cu12").
    name: String,
    version: String,
    dist_info: PathBuf,
}

fn distributions(site: &Path) -> Vec<Distribution> {
    let Ok(entries) = std::fs::read_dir(site) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let folder = entry.file_name().into_string().ok()?;
            // pip's `name-1.2.dist-info`; Debian's and setuptools' `name-1.2[-py3.11].egg-info`.
            let stem = folder
                .strip_suffix(".dist-info")
                .or_else(|| folder.strip_suffix(".egg-info"))?;
            let (name, version) = stem.split_once('-')?;
            let version = version.split("-py").next()?;
            Some(Distribution {
                name: name.to_lowercase().replace(['_', '.'], "-"),
                version: version.to_string(),
                dist_info: entry.path(),
            })
        })
        .collect()
}

/// The `lib*.so*` files a wheel's RECORD lists.
fn libraries(dist_info: &Path) -> Vec<String> {
    let record = std::fs::read(dist_info.join("RECORD")).unwrap_or_default();
    // Headers make some RECORDs thousands of lines long: only the lines around a ".so" are read.
    let mut libs: Vec<String> = memchr::memmem::find_iter(&record, b".so")
        .filter_map(|at| {
            let start = memchr::memrchr(b'\n', &record[..at]).map_or(0, |i| i + 1);
            let end = memchr::memchr(b',', &record[at..]).map_or(record.len(), |i| at + i);
            std::str::from_utf8(&record[start..end]).ok()
        })
        .filter_map(|path| path.rsplit('/').next())
        .filter(|file| file.starts_with("lib") && file.contains(".so"))
        .map(|file| outside_line(file, MAX_TEXT))
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

/// `cuda` in torch/version.py: `Some(Some("12.8"))` for a CUDA build, `Some(None)` for a CPU-only
/// build, `None` when the file says neither.
fn built_with_cuda(version_py: &str) -> Option<Option<String>> {
    version_py.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("cuda")?;
        let value = rest.split_once('=')?.1.trim();
        if value == "None" {
            return Some(None);
        }
        let quoted = value.strip_prefix(['\'', '"'])?;
        let end = quoted.find(['\'', '"'])?;
        Some(Some(quoted[..end].to_string()))
    })
}

fn stack(
    interpreter: Option<String>,
    version: &str,
    installed: &[Distribution],
    site: &[PathBuf],
) -> PythonStack {
    let clean = |text: &str| outside_line(text, MAX_TEXT);
    let find = |name: &str| installed.iter().find(|d| d.name == name);
    let mut unavailable = Unavailable::new();
    let mut missing = |field: &str, why: &str| {
        unavailable.insert(field.to_string(), why.to_string());
    };
    let torch = find("torch");
    let mut torch_cuda = None;
    let mut torch_cuda_available = None;
    match torch {
        None => {
            for field in super::TORCH_FIELDS {
                missing(field, super::NO_TORCH);
            }
        }
        Some(_) => {
            let version_py = site
                .iter()
                .find_map(|dir| std::fs::read_to_string(dir.join("torch/version.py")).ok());
            match version_py.as_deref().and_then(built_with_cuda) {
                Some(Some(cuda)) => {
                    torch_cuda = Some(clean(&cuda));
                    missing("torch_cuda_available", ASK);
                    missing("torch_cuda_devices", ASK);
                }
                Some(None) => {
                    // A CPU-only build cannot use CUDA: that much is known without running it.
                    torch_cuda_available = Some(false);
                    missing(
                        "torch_cuda",
                        "a CPU-only build of torch (torch.version.cuda is None)",
                    );
                    missing("torch_cuda_devices", "torch.cuda.is_available() is False");
                }
                None => {
                    for field in ["torch_cuda", "torch_cuda_available", "torch_cuda_devices"] {
                        missing(
                            field,
                            "torch/version.py does not say; name this Python with --python to ask it",
                        );
                    }
                }
            }
            missing("cudnn", ASK);
        }
    }
    let numpy = find("numpy");
    if numpy.is_none() {
        missing("numpy", "numpy is not installed in this Python");
    }
    let mut wheels: Vec<CudaWheel> = installed
        .iter()
        .filter(|d| d.name.starts_with("nvidia-"))
        .map(|d| CudaWheel {
            package: clean(&d.name),
            version: clean(&d.version),
            libraries: libraries(&d.dist_info),
        })
        .collect();
    wheels.sort_by(|a, b| a.package.cmp(&b.package));
    wheels.dedup_by(|a, b| a.package == b.package);
    PythonStack {
        interpreter,
        source: Some(Source::Files),
        version: Some(clean(version)),
        torch: torch.map(|d| clean(&d.version)),
        torch_cuda,
        cudnn: None,
        torch_cuda_available,
        torch_cuda_devices: None,
        numpy: numpy.map(|d| clean(&d.version)),
        cuda_wheels: Some(wheels),
        unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_version_py_says_which_cuda() {
        let cuda = "__version__ = '2.9.1+cu128'\ndebug = False\ncuda: Optional[str] = '12.8'\ngit_version = 'abc'\nhip: Optional[str] = None\n";
        assert_eq!(built_with_cuda(cuda), Some(Some("12.8".to_string())));
        assert_eq!(built_with_cuda("cuda: Optional[str] = None\n"), Some(None));
        assert_eq!(
            built_with_cuda("cuda = \"11.8\"\n"),
            Some(Some("11.8".to_string()))
        );
        assert_eq!(built_with_cuda("__version__ = '2.0'\n"), None);
    }

    #[test]
    fn versions_come_from_file_names_and_pyvenv_cfg() {
        assert_eq!(
            minor_version(Path::new("/usr/bin/python3.11")).as_deref(),
            Some("3.11")
        );
        assert_eq!(minor_version(Path::new("/usr/bin/python3")), None);
        assert_eq!(minor_version(Path::new("/usr/bin/python3.11-config")), None);
        let cfg = "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n";
        let value = |key| crate::info::config_value(cfg, key);
        assert_eq!(value("version"), Some("3.11.2"));
        assert_eq!(value("home"), Some("/usr/bin"));
        assert_eq!(value("version_info"), None);
    }
}
