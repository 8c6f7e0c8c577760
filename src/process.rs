//! Other processes: the signals that ask hwbench to stop, the children it starts (in process
//! groups of their own that die with it), short helper commands with a timeout, and how their
//! output and exit status read in one line.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use crate::render::truncate;

/// Ctrl-C, `kill`, a closed terminal.
const STOP_SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The stop signal received, once catching is on (0: none yet).
static STOP: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// From now on SIGINT, SIGTERM and SIGHUP do not end hwbench at once: the signal is recorded, and
/// the work in progress stops at its next check, keeping what finished and cleaning up after
/// itself. A second signal ends hwbench at once, with exit code 128 + the signal.
pub fn catch_stop_signals() -> std::io::Result<()> {
    let received = Arc::new(AtomicUsize::new(0));
    let stopping = Arc::new(AtomicBool::new(false));
    for signal in STOP_SIGNALS {
        // A signal ignored when hwbench started stays ignored: `nohup hwbench …` must outlive
        // the terminal.
        if ignored(signal) {
            continue;
        }
        // The first signal sets `stopping`; with it set, the next one exits at once.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            128 + signal,
            Arc::clone(&stopping),
        )?;
        signal_hook::flag::register_usize(signal, Arc::clone(&received), signal as usize)?;
        signal_hook::flag::register(signal, Arc::clone(&stopping))?;
    }
    let _ = STOP.set(received);
    Ok(())
}

/// Whether `signal`'s disposition is "ignore" (as `nohup` leaves SIGHUP).
fn ignored(signal: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// The signal that asked hwbench to stop, if one has (only once [`catch_stop_signals`] ran).
pub fn stop_signal() -> Option<i32> {
    let signal = STOP.get()?.load(Ordering::SeqCst);
    (signal != 0).then_some(signal as i32)
}

/// Starts `command` in a process group of its own, so that it can be stopped with every process
/// it starts, and so that it dies with hwbench (even when hwbench is killed).
pub fn spawn_in_own_group(command: &mut Command) -> std::io::Result<Child> {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    command.process_group(0);
    // SAFETY: between fork and exec only async-signal-safe calls: prctl, getppid, _exit.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // hwbench may have died before the line above: then nobody waits for this child.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Kills a child started by [`spawn_in_own_group`] and everything in its process group.
pub fn kill_group(child: &Child) {
    // SAFETY: kill(2) on the process group of a child we started and have not reaped.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
}

/// Starts a thread, or says why it could not (under tight limits creating one can fail).
pub fn spawn_thread<F>(name: &str, work: F) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(work)
}

/// Why a short helper command gave no output.
#[derive(Debug)]
pub enum QuickRunError {
    Spawn(std::io::Error),
    TimedOut,
    /// A stop signal arrived while it ran; it was stopped.
    Stopped(i32),
}

/// Runs a short command (stdin closed) to the end, killing it with its process group after
/// `timeout` or when a stop signal arrives. Its outputs are read while it runs, so a chatty
/// command cannot block on a full pipe.
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> Result<Output, QuickRunError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_in_own_group(command).map_err(QuickRunError::Spawn)?;
    let pipes = read_to_end_in_thread(child.stdout.take())
        .and_then(|out| Ok((out, read_to_end_in_thread(child.stderr.take())?)));
    let (stdout, stderr) = match pipes {
        Ok(pipes) => pipes,
        Err(e) => {
            kill_group(&child);
            let _ = child.wait();
            return Err(QuickRunError::Spawn(e));
        }
    };
    let deadline = Instant::now() + timeout;
    // Most helpers answer in milliseconds: look often at first, then less.
    let mut pause = Duration::from_micros(250);
    loop {
        match child.try_wait().map_err(QuickRunError::Spawn)? {
            Some(status) => {
                // Whatever it left running in the background (holding its pipes open, or just
                // outliving hwbench) goes with it; then the pipes close.
                kill_group(&child);
                let collect = |pipe: mpsc::Receiver<Vec<u8>>| {
                    pipe.recv_timeout(Duration::from_secs(2))
                        .unwrap_or_default()
                };
                return Ok(Output {
                    status,
                    stdout: collect(stdout),
                    stderr: collect(stderr),
                });
            }
            None => {
                let stop = stop_signal();
                if stop.is_some() || Instant::now() >= deadline {
                    kill_group(&child);
                    let _ = child.wait();
                    return Err(stop.map_or(QuickRunError::TimedOut, QuickRunError::Stopped));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// Why [`ask_python`] got no answer.
#[derive(Debug)]
pub enum PythonFailure {
    /// No such program.
    NotFound,
    Spawn(std::io::Error),
    TimedOut,
    Stopped,
    /// It exited with an error: the last line of its stderr, or its exit status.
    Failed(String),
    /// Its last line of stdout is not the JSON expected.
    Unexpected(String),
}

/// Runs `python -I -c script` (isolated: no environment variables, no user site-packages, no
/// current folder on `sys.path`, so a stray `torch.py` cannot answer) for at most `timeout`, and
/// reads the last line it prints as JSON.
pub fn ask_python<T: serde::de::DeserializeOwned>(
    python: &Path,
    script: &str,
    timeout: Duration,
) -> Result<T, PythonFailure> {
    let output = run_with_timeout(Command::new(python).args(["-I", "-c", script]), timeout)
        .map_err(|e| match e {
            QuickRunError::Spawn(e) if e.kind() == std::io::ErrorKind::NotFound => {
                PythonFailure::NotFound
            }
            QuickRunError::Spawn(e) => PythonFailure::Spawn(e),
            QuickRunError::Stopped(_) => PythonFailure::Stopped,
            QuickRunError::TimedOut => PythonFailure::TimedOut,
        })?;
    if !output.status.success() {
        return Err(PythonFailure::Failed(
            last_line(&String::from_utf8_lossy(&output.stderr))
                .unwrap_or_else(|| format!("{}", output.status)),
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|_| PythonFailure::Unexpected(line.to_string()))
}

/// A program's file name only, as reports name it: a full path can carry a user name.
pub fn program_name(program: &Path) -> String {
    program.file_name().map_or_else(
        || program.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Reads a child's pipe to its end in a thread of its own; the bytes arrive when it closes.
pub fn read_to_end_in_thread<R: Read + Send + 'static>(
    pipe: Option<R>,
) -> std::io::Result<mpsc::Receiver<Vec<u8>>> {
    let (sender, receiver) = mpsc::channel();
    spawn_thread("child output", move || {
        let mut kept = Vec::new();
        if let Some(mut pipe) = pipe {
            // Read to the end, keeping the last KEPT_OUTPUT bytes: a child that writes 100 MB
            // costs hwbench no more memory than one that writes a line.
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&chunk[..n]);
                        if kept.len() > 2 * KEPT_OUTPUT {
                            kept.drain(..kept.len() - KEPT_OUTPUT);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if kept.len() > KEPT_OUTPUT {
                kept.drain(..kept.len() - KEPT_OUTPUT);
            }
        }
        let _ = sender.send(kept);
    })?;
    Ok(receiver)
}

/// The most a child's output kept in memory: its last mebibyte (what hwbench shows of it is a
/// line; a `describe` answer is a few kilobytes).
pub const KEPT_OUTPUT: usize = 1 << 20;

/// The last line with something on it, trimmed and cut to 200 characters.
pub fn last_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| truncate(l.trim(), 200))
}

/// The loader names a program by its full path; the file name says as much without revealing
/// where it is installed (a path can carry a user name into a public report).
pub fn without_path(line: &str, program: &Path) -> String {
    match program.file_name() {
        Some(name) => line.replace(&program.display().to_string(), &name.to_string_lossy()),
        None => line.to_string(),
    }
}

/// How a worker process ended, in words: "exit code 3", "crashed (signal 11)".
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(127), _) => {
            "the worker could not start (exit code 127: a shared library is missing)".to_string()
        }
        (Some(code), _) => format!("the worker stopped early with exit code {code}"),
        (None, Some(signal)) => format!("the worker crashed (signal {signal})"),
        (None, None) => "the worker stopped early".to_string(),
    }
}

/// How people know a stop signal.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "Ctrl-C".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        libc::SIGHUP => "SIGHUP".to_string(),
        other => format!("signal {other}"),
    }
}
