//! Where a rendered report goes: stdout, or a file written atomically.
//!
//! The destination is checked before any probing or training starts, so a bad `-o` path fails in
//! milliseconds rather than after a long run. A file is never left half-written: the text goes to
//! a temporary file beside the target (which exists only while it is written), renamed over it
//! when complete. A new file gets the mode a shell's `>` would give it (0666 less the umask); a
//! replaced file keeps its mode and, where permitted, its owner. An interrupted run never replaces
//! a file: its partial report goes to `PATH.partial`.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::UsageError;

pub enum Destination {
    Stdout,
    /// A regular file (or where one will be): written to a temporary file beside it, then renamed
    /// over it.
    File {
        path: PathBuf,
    },
    /// Something that is not a regular file (`/dev/null`, `/dev/stdout`, a named pipe): written in
    /// place, since renaming over it would replace the device or pipe with a file. Opened at once:
    /// a pipe's reader sees one writer.
    Special {
        path: PathBuf,
        file: std::fs::File,
    },
}

impl Destination {
    /// Checks that `path` can be written (`-` or none: stdout). `flag` names the option the path
    /// came from, for the error message.
    pub fn open(path: Option<&Path>, flag: &str) -> anyhow::Result<Self> {
        let Some(path) = path.filter(|p| p.as_os_str() != "-") else {
            return Ok(Self::Stdout);
        };
        if path.is_dir() {
            return Err(UsageError::new(format!(
                "cannot write to '{}': it is a directory; give {flag} a file name",
                path.display()
            ))
            .into());
        }
        let cannot = |e: std::io::Error| {
            UsageError::new(format!(
                "cannot write to '{}': {}; give {flag} a writable path",
                path.display(),
                std::io::Error::from(e.kind())
            ))
        };
        if let Ok(metadata) = std::fs::metadata(path)
            && !metadata.is_file()
        {
            let file = open_special(path).map_err(|e| match e.raw_os_error() {
                _ if let Some(signal) = crate::process::stop_signal() => {
                    anyhow::Error::new(crate::error::Interrupted { signal })
                }
                Some(libc::ENXIO) => anyhow::Error::new(UsageError::new(format!(
                    "nothing read the named pipe '{}' for {} s: start its reader, or give {flag} a file",
                    path.display(),
                    READER_WAIT.as_secs()
                ))),
                _ => cannot(e).into(),
            })?;
            return Ok(Self::Special {
                path: path.to_path_buf(),
                file,
            });
        }
        // Through a symbolic link, the file it points to is replaced, not the link.
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = folder_of(&path);
        if !dir.is_dir() {
            return Err(UsageError::new(format!(
                "cannot write to '{}': the folder '{}' does not exist; create it or give {flag} another path",
                path.display(),
                dir.display()
            ))
            .into());
        }
        // A file that can be created there now can be created when the report is ready; it is
        // removed at once, so that nothing is left behind if hwbench is killed meanwhile.
        drop(temp_file_in(dir).map_err(cannot)?);
        Ok(Self::File { path })
    }

    /// Writes the whole text. A closed stdout pipe is reported as `BrokenPipe` for the caller to
    /// treat as success.
    pub fn write(self, text: &str) -> anyhow::Result<()> {
        match self {
            Self::Stdout => {
                if stdout_was_closed() {
                    anyhow::bail!(
                        "stdout is closed, so the report has nowhere to go: give -o FILE"
                    );
                }
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
                Ok(())
            }
            Self::File { path } => write_atomically(&path, text),
            Self::Special { path, mut file } => file
                .write_all(text.as_bytes())
                .with_context(|| format!("writing {}", path.display())),
        }
    }

    /// Where an interrupted run's report goes: a file becomes `PATH.partial`, never the complete
    /// report it would replace.
    pub fn for_partial_report(self) -> Self {
        match self {
            Self::File { path } => {
                let mut partial = path.into_os_string();
                partial.push(".partial");
                Self::File {
                    path: partial.into(),
                }
            }
            other => other,
        }
    }

    /// The file written, when it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Stdout => None,
            Self::File { path } | Self::Special { path, .. } => Some(path),
        }
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self, Self::Stdout)
    }
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// How long `-o PIPE` waits for the pipe's reader to open it.
const READER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens a device or a named pipe for writing without blocking: a pipe nobody reads would hold
/// hwbench inside `open`, deaf to Ctrl-C and SIGTERM. A reader that comes within
/// [`READER_WAIT`] (`hwbench info -o pipe & cat pipe`) is waited for, stop signals heard; the
/// file then writes blocking again.
fn open_special(path: &Path) -> std::io::Result<std::fs::File> {
    let started = std::time::Instant::now();
    let file = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if started.elapsed() >= READER_WAIT || crate::process::stop_signal().is_some() {
                    return Err(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other?,
        }
    };
    // SAFETY: F_GETFL/F_SETFL on a descriptor this function owns.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    Ok(file)
}

/// Whether hwbench was started with stdout closed (`exec >&-`). Rust's runtime then opens
/// `/dev/null` in its place and every write would vanish, so the descriptor is looked at before
/// the runtime starts (a constructor in `.init_array`, which the C runtime runs before `main`).
/// `> /dev/null`, or Python's `subprocess.DEVNULL`, is an open stdout and is not flagged.
fn stdout_was_closed() -> bool {
    STDOUT_CLOSED_AT_START.load(std::sync::atomic::Ordering::Relaxed)
}

static STDOUT_CLOSED_AT_START: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static LOOK_AT_STDOUT: extern "C" fn() = look_at_stdout;

#[cfg(target_os = "linux")]
extern "C" fn look_at_stdout() {
    // SAFETY: F_GETFD only asks whether descriptor 1 is open.
    let closed = unsafe { libc::fcntl(1, libc::F_GETFD) } == -1;
    STDOUT_CLOSED_AT_START.store(closed, std::sync::atomic::Ordering::Relaxed);
}

fn temp_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".hwbench-")
        .tempfile_in(dir)
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let context = || format!("writing {}", path.display());
    let mut temp = temp_file_in(folder_of(path)).with_context(context)?;
    temp.write_all(text.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .with_context(context)?;
    match std::fs::metadata(path) {
        Ok(old) => {
            // Keep what the replaced file was: its mode, and its owner where permitted.
            let file = temp.as_file();
            let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
            file.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o7777))
                .with_context(context)?;
        }
        Err(_) => temp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o666 & !umask()))
            .with_context(context)?,
    }
    temp.persist(path)
        .with_context(|| format!("renaming the finished file to {}", path.display()))?;
    Ok(())
}

/// This process's umask, read without changing it (Linux 4.7+), else 022.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line.split_whitespace().nth(1)?, 8).ok()
        })
        .unwrap_or(0o022)
}
