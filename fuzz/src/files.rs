//! Scratch files for the readers that take a path.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This process's scratch folder (under `$TMPDIR`, which `fuzz/run` points at a folder it
/// removes afterwards).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch folder").keep())
}

/// Writes `bytes` to `name` in the scratch folder and gives its path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("scratch folder");
    }
    std::fs::write(&path, bytes).expect("scratch file");
    path
}
