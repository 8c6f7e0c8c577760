//! Stopping hwbench: SIGTERM and Ctrl-C keep what finished without replacing a good file, and
//! leave no process, temporary folder or temporary file behind; a hung worker is stopped with
//! everything it started.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{Dir, ended, hwbench, tiny_train};

/// A fake Python: answers the torch probe, then as a worker says hello and waits forever on a
/// child whose pid it writes to `pid_file`.
fn hanging_python(dir: &Dir, pid_file: &Path) -> String {
    dir.executable(
        "python3",
        &format!(
            r#"case "$3" in
  "import json, torch"*) echo '{{"version": "0.0-fake", "cuda_devices": 0}}' ;;
  *) read request
     printf '%s\n' '{{"event":"hello","protocol":4,"hwbench_version":"0.1.0","backend":"pytorch"}}'
     sleep 300 &
     echo $! > '{}'
     wait ;;
esac"#,
            pid_file.display()
        ),
    )
    .display()
    .to_string()
}

fn wait_for(path: &Path) -> String {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never appeared", path.display());
}

fn names_in(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn sigterm_leaves_no_process_folder_or_file_and_keeps_the_good_report() {
    let dir = Dir::new();
    let tmp = dir.join("tmp");
    let out = dir.join("out");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let target = out.join("report.json");
    std::fs::write(&target, "KEEP").unwrap();
    let pid_file = dir.join("child.pid");
    let python = hanging_python(&dir, &pid_file);

    let child = hwbench()
        .args(tiny_train(&["--cpu-threads", "1", "--sync-every", "0"]))
        .args([
            "--with-pytorch",
            "--python",
            &python,
            "--format",
            "json",
            "-o",
        ])
        .arg(&target)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let grandchild: u32 = wait_for(&pid_file).trim().parse().unwrap();
    // The PyTorch column's script is on its command line: nothing under TMPDIR to leave behind,
    // even when a second signal ends hwbench at once.
    assert!(names_in(&tmp).is_empty(), "{:?}", names_in(&tmp));
    // SAFETY: SIGTERM to the hwbench we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "KEEP");
    assert!(stderr.contains("report.json.partial"), "{stderr}");
    let partial: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json.partial")).unwrap())
            .unwrap();
    assert_eq!(partial["complete"], false);
    // Columns warm up first and time their rounds together: cpu×1 was waiting for its rounds
    // when the signal came, and is kept with what it had measured.
    assert_eq!(partial["devices"][0]["status"], "interrupted");
    assert!(partial["devices"][0]["facts"]["setup_ms"].is_number());
    assert!(
        partial["devices"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("SIGTERM")
    );
    assert!(
        ended(grandchild),
        "the worker's child {grandchild} outlived hwbench"
    );
    assert!(
        names_in(&tmp).is_empty(),
        "left in TMPDIR: {:?}",
        names_in(&tmp)
    );
    let mut left = names_in(&out);
    left.sort();
    assert_eq!(left, ["report.json", "report.json.partial"]);
}

#[test]
fn a_hung_worker_is_stopped_with_every_process_it_started() {
    let dir = Dir::new();
    let pid_file = dir.join("child.pid");
    let companion = dir.executable(
        "hwbench-cuda",
        &format!("sleep 300 &\necho $! > '{}'\nwait", pid_file.display()),
    );
    let output = hwbench()
        .args(tiny_train(&[
            "--devices",
            "cuda:0",
            "--worker-timeout",
            "1",
        ]))
        .arg("--cuda-companion")
        .arg(&companion)
        .env(
            "HWBENCH_GPU_FIXTURE",
            crate::util::fixture("gpu/hopper_h100.json"),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no answer for 1 s"));
    let grandchild: u32 = wait_for(&pid_file).trim().parse().unwrap();
    assert!(
        ended(grandchild),
        "the hung worker's child {grandchild} survived"
    );
}

#[test]
fn ctrl_c_never_replaces_an_existing_report() {
    let dir = Dir::new();
    let target = dir.join("report.json");
    std::fs::write(&target, "KEEP").unwrap();
    let child = hwbench()
        // Exact runs of 200,000 epochs: still running when the signal comes, however fast.
        .args([
            "train-compare",
            "--cpu-threads",
            "1",
            "--epochs",
            "200000",
            "-o",
        ])
        .arg(&target)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: SIGINT to the hwbench we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "KEEP");
    let partial = std::fs::read_to_string(dir.join("report.json.partial")).unwrap();
    assert!(partial.contains("interrupted"), "{partial}");
}

#[test]
fn a_hangup_ignored_at_start_stays_ignored_as_under_nohup() {
    // `nohup hwbench train-compare … &`: the run must outlive the terminal (it used to exit 129).
    let dir = Dir::new();
    let report = dir.join("report.json");
    let ignore_hup_and_run = "import os, signal, sys\n\
        signal.signal(signal.SIGHUP, signal.SIG_IGN)\n\
        os.execv(sys.argv[1], sys.argv[1:])";
    let mut child = std::process::Command::new("python3")
        .args(["-c", ignore_hup_and_run])
        .arg(crate::util::bin())
        .args(tiny_train(&[
            "--epochs",
            "20000",
            "--devices",
            "cpu",
            "--cpu-threads",
            "1",
            "--format",
            "json",
            "-o",
            report.to_str().unwrap(),
        ]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill with a valid pid and signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        std::fs::read_to_string(&report)
            .unwrap()
            .contains("\"complete\": true")
    );
}

#[test]
fn a_report_and_a_plot_on_one_file_are_refused_before_any_work() {
    let dir = Dir::new();
    let same = dir.join("out.svg");
    let started = Instant::now();
    let output = hwbench()
        .args(tiny_train(&["--plot", same.to_str().unwrap(), "-o"]))
        .arg(&same)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("-o and --plot both name"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!same.exists());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn sigterm_ends_a_run_that_waits_for_a_pipes_reader() {
    // `-o PIPE` with nobody reading it: hwbench used to sit in open(2), deaf to SIGTERM.
    let dir = Dir::new();
    let fifo = dir.join("pipe");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path in our own temporary folder.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let child = hwbench()
        .args(tiny_train(&[
            "--cpu-threads",
            "1",
            "-o",
            fifo.to_str().unwrap(),
        ]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut child = child;
    // SAFETY: SIGTERM to the hwbench we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("SIGTERM did not end hwbench within 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // 143 once hwbench caught it; on a machine so slow that it arrived before, SIGTERM's own end.
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.code() == Some(143) || status.signal() == Some(libc::SIGTERM),
        "{status:?}"
    );
}
