//! Where a rendered report goes: stdout, or a file written atomically.
//!
//! The destination is opened before any probing or training starts, so a bad `-o` path fails in
//! milliseconds rather than after a long run, and a file is never left half-written: the text goes
//! to a temporary file beside the target, which is renamed over it only when complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::UsageError;

pub enum Destination {
    Stdout,
    File {
        path: PathBuf,
        temp: tempfile::NamedTempFile,
    },
}

impl Destination {
    /// Checks that `path` can be written, by creating the temporary file it will be renamed from.
    /// `flag` names the option the path came from, for the error message.
    pub fn open(path: Option<&Path>, flag: &str) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::Stdout);
        };
        if path.is_dir() {
            return Err(UsageError::new(format!(
                "cannot write to '{}': it is a directory; give {flag} a file name",
                path.display()
            ))
            .into());
        }
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(UsageError::new(format!(
                "cannot write to '{}': the folder '{}' does not exist; create it or give {flag} another path",
                path.display(),
                dir.display()
            ))
            .into());
        }
        let temp = tempfile::Builder::new()
            .prefix(".hwbench-")
            .tempfile_in(dir)
            .map_err(|e| {
                UsageError::new(format!(
                    "cannot write to '{}': {}; give {flag} a writable path",
                    path.display(),
                    std::io::Error::from(e.kind())
                ))
            })?;
        Ok(Self::File {
            path: path.to_path_buf(),
            temp,
        })
    }

    /// Writes the whole text. A closed stdout pipe is reported as `BrokenPipe` for the caller to
    /// treat as success.
    pub fn write(self, text: &str) -> anyhow::Result<()> {
        match self {
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
                Ok(())
            }
            Self::File { path, mut temp } => {
                temp.write_all(text.as_bytes())
                    .and_then(|()| temp.as_file().sync_all())
                    .with_context(|| format!("writing {}", path.display()))?;
                temp.persist(&path)
                    .with_context(|| format!("renaming the finished file to {}", path.display()))?;
                Ok(())
            }
        }
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self, Self::Stdout)
    }
}
