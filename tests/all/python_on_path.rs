//! `hwbench info` without `--python` reads the `python3` on PATH from its files, without running
//! it: virtual environments, CPU-only builds, shims, and hostile package names.

use std::path::Path;

use serde_json::Value;

use crate::util::Dir;

/// `hwbench info --format json` with `path` as PATH and the GPUs of `gpu_fixture`, if any.
fn info(path: &Path, gpu_fixture: Option<&str>) -> Value {
    let fixture = gpu_fixture.map(crate::util::fixture);
    let mut env = vec![("PATH", path.to_str().unwrap())];
    env.extend(fixture.as_deref().map(|f| ("HWBENCH_GPU_FIXTURE", f)));
    crate::util::run_json(&["info", "--format", "json", "--no-redact"], &env)
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// A virtual environment in `dir/venv` whose torch was built with `cuda` (None: CPU-only): an
/// interpreter that is not a script (it is never run), pyvenv.cfg, and site-packages.
fn venv(dir: &Dir, cuda: Option<&str>) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let venv = dir.join("venv");
    let python = venv.join("bin/python3");
    write(&python, "\x7fELF not run");
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    write(
        &venv.join("pyvenv.cfg"),
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.12.4\n",
    );
    let site = venv.join("lib/python3.12/site-packages");
    let torch = if cuda.is_some() {
        "2.9.1+cu128"
    } else {
        "2.9.1+cpu"
    };
    write(&site.join(format!("torch-{torch}.dist-info/METADATA")), "");
    let cuda = cuda.map_or("None".to_string(), |c| format!("'{c}'"));
    write(
        &site.join("torch/version.py"),
        &format!("__version__ = '{torch}'\ncuda: Optional[str] = {cuda}\nhip = None\n"),
    );
    write(&site.join("numpy-2.3.4.dist-info/METADATA"), "");
    write(
        &site.join("nvidia_cudnn_cu12-9.10.2.21.dist-info/RECORD"),
        "nvidia/cudnn/include/cudnn.h,sha256=x,1\nnvidia/cudnn/lib/libcudnn.so.9,sha256=y,2\nnvidia/cudnn/lib/libcudnn_ops.so.9,,\n",
    );
    // A hostile distribution: its name and version carry a terminal escape sequence.
    write(
        &site.join("nvidia_evil\u{1b}[31m-1.0\u{1b}[0m.dist-info/RECORD"),
        "nvidia/evil/lib/libevil\u{1b}[2J.so.1,,\n",
    );
    std::os::unix::fs::symlink("lib", venv.join("lib64")).unwrap();
    venv.join("bin")
}

#[test]
fn a_virtual_environment_is_read_from_its_files() {
    let dir = Dir::new();
    let bin = venv(&dir, Some("12.8"));
    let report = info(&bin, None);
    let py = &report["python"];
    assert_eq!(py["source"], "files");
    assert_eq!(py["interpreter"], "python3");
    assert_eq!(py["version"], "3.12.4", "pyvenv.cfg's full version");
    assert_eq!(py["torch"], "2.9.1+cu128");
    assert_eq!(py["torch_cuda"], "12.8");
    assert_eq!(py["numpy"], "2.3.4");
    assert!(py["torch_cuda_available"].is_null());
    let why = py["unavailable"]["torch_cuda_available"].as_str().unwrap();
    assert!(why.contains("--python"), "{why}");
    assert!(
        py["unavailable"]["cudnn"]
            .as_str()
            .unwrap()
            .contains("--python")
    );
    let wheels = py["cuda_wheels"].as_array().unwrap();
    assert_eq!(wheels.len(), 2, "lib64 → lib is read once: {wheels:?}");
    assert_eq!(wheels[0]["package"], "nvidia-cudnn-cu12");
    assert_eq!(wheels[0]["version"], "9.10.2.21");
    assert_eq!(
        wheels[0]["libraries"],
        serde_json::json!(["libcudnn.so.9", "libcudnn_ops.so.9"])
    );
    let text = serde_json::to_string(&report).unwrap();
    assert!(!text.contains("\\u001b"), "escape sequences are cleaned");
    assert!(
        !text.contains(&dir.path().display().to_string()),
        "no path of the environment in the report"
    );
}

#[test]
fn a_cpu_only_torch_on_path_cannot_use_the_gpus_and_says_so() {
    let dir = Dir::new();
    let bin = venv(&dir, None);
    let report = info(&bin, Some("gpu/healthy_h100.json"));
    let py = &report["python"];
    assert_eq!(
        py["torch_cuda_available"], false,
        "a CPU-only build never can"
    );
    assert!(
        py["unavailable"]["torch_cuda"]
            .as_str()
            .unwrap()
            .contains("CPU-only")
    );
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "python.torch-without-cuda")
        .expect("the finding fires from files alone");
    assert!(finding["evidence"].as_str().unwrap().contains("CPU-only"));
}

#[test]
fn a_shim_or_no_python_says_how_to_name_one() {
    let dir = Dir::new();
    dir.executable("python3", "exec false");
    let shim = info(dir.path(), None);
    assert_eq!(shim["python"]["source"], "files");
    let why = shim["python"]["unavailable"]["version"].as_str().unwrap();
    assert!(why.contains("script") && why.contains("--python"), "{why}");

    let empty = Dir::new();
    let none = info(empty.path(), None);
    assert!(none["python"]["source"].is_null());
    let why = none["python"]["unavailable"]["version"].as_str().unwrap();
    assert!(why.contains("no python3 on PATH"), "{why}");
}
