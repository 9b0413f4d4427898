//! Finding a benchmark's files under the root a user gave, and the error for a malformed one.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The error for a malformed file of a benchmark.
pub(crate) fn format_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{}: {reason}", path.display()))
}

/// The first of `candidates` (relative to `root`) that exists.
pub(crate) fn locate(root: &Path, candidates: &[&str]) -> Result<PathBuf> {
    candidates
        .iter()
        .map(|c| root.join(c))
        .find(|p| p.exists())
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "none of {} exists under {}",
                candidates.join(", "),
                root.display()
            ))
        })
}

/// The folder holding the first of `files` (relative to `root`) that exists.
pub(crate) fn folder_holding(root: &Path, files: &[&str]) -> Result<PathBuf> {
    Ok(locate(root, files)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default())
}
