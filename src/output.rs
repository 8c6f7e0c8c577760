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
    /// A regular file: written to a temporary file beside it, then renamed over it.
    File {
        path: PathBuf,
        temp: tempfile::NamedTempFile,
    },
    /// Something that is not a regular file (`/dev/null`, `/dev/stdout`, a named pipe): written in
    /// place, since renaming over it would replace the device or pipe with a file.
    Special {
        path: PathBuf,
        file: std::fs::File,
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
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(cannot)?;
            return Ok(Self::Special {
                path: path.to_path_buf(),
                file,
            });
        }
        // Through a symbolic link, the file it points to is replaced, not the link.
        let path = &std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
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
            .map_err(cannot)?;
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
            Self::Special { path, mut file } => file
                .write_all(text.as_bytes())
                .with_context(|| format!("writing {}", path.display())),
        }
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self, Self::Stdout)
    }
}
