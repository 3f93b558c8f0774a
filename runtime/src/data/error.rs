//! Errors of the data loaders: each names the file and, for missing data, says how to get it.

use std::fmt;
use std::path::{Path, PathBuf};

pub type Result<T, E = DataError> = std::result::Result<T, E>;

#[derive(Debug)]
pub enum DataError {
    /// A dataset file or folder does not exist; `hint` says how to get it.
    Missing { path: PathBuf, hint: String },
    /// Reading failed for another reason (permissions, a directory where a file was expected, ...).
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file exists but its contents are not what the format requires.
    Malformed { path: PathBuf, reason: String },
    /// A request that cannot be met (bad shapes, normalization, batch size, ...).
    Config(String),
}

impl DataError {
    pub(crate) fn malformed(path: &Path, reason: impl Into<String>) -> Self {
        DataError::Malformed {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// An I/O error on `path`; "not found" becomes [`DataError::Missing`] with `hint`.
    pub(crate) fn io(path: &Path, source: std::io::Error, hint: &str) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.to_path_buf(),
                hint: hint.to_string(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Missing { path, hint } => {
                write!(f, "{}: not found", path.display())?;
                if !hint.is_empty() {
                    write!(f, ". {hint}")?;
                }
                Ok(())
            }
            DataError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DataError::Malformed { path, reason } => write!(f, "{}: {reason}", path.display()),
            DataError::Config(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Reads a whole file, mapping errors to [`DataError`] with `hint` for a missing file.
pub(crate) fn read_file(path: &Path, hint: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e, hint))
}
