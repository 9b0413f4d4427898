//! Finding and loading the ONNX Runtime shared library (ort's `load-dynamic`): the SDK looks
//! in the places users have it and says what it tried when it finds none.

use std::path::Path;
use std::sync::Arc;

use ort::environment::Environment;
use ort::logging::LogLevel;

use super::library::{Library, LoadedOnce};
use crate::error::Result;
use crate::logging::Level;

/// The process-wide ONNX Runtime environment. Only a successful load is kept: a failed one (a
/// wrong path, a missing library) is tried afresh by the next call, which may name a good one.
static RUNTIME: LoadedOnce<Environment> = LoadedOnce::new();

/// ONNX Runtime's library: `ORT_DYLIB_PATH`, the `onnxruntime` Python package's `capi/`
/// folder, the system's library path.
pub(crate) const ONNX_RUNTIME: Library = Library {
    stem: "libonnxruntime",
    name: "ONNX Runtime",
    what: "ONNX Runtime (>= 1.31)",
    env: "ORT_DYLIB_PATH",
    package: &["onnxruntime", "capi"],
    advice: "Set ORT_DYLIB_PATH or the extractor's library option to libonnxruntime, or `pip \
             install onnxruntime`.",
};

/// ONNX Runtime's environment from the library at `path`, its log going to the SDK's log.
fn environment_from(path: &Path) -> std::result::Result<Environment, String> {
    let builder = ort::init_from(path).map_err(|e| e.to_string())?;
    // ONNX Runtime's own log lines go where the host said, not to its stderr.
    builder
        .with_name("reid")
        .with_logger(Arc::new(|level, category, _id, _location, message| {
            let level = match level {
                LogLevel::Verbose => Level::Verbose,
                LogLevel::Info => Level::Info,
                LogLevel::Warning => Level::Warning,
                LogLevel::Error => Level::Error,
                LogLevel::Fatal => Level::Fatal,
            };
            crate::logging::emit(level, &format!("onnxruntime {category}"), message);
        }))
        .build()
        .map_err(|e| e.to_string())
}

/// Loads ONNX Runtime once per process and returns its environment. A failed load is not
/// remembered; once one has succeeded, a call naming another library is an error (a process
/// holds one ONNX Runtime).
pub(crate) fn environment(explicit: Option<&Path>) -> Result<&'static Environment> {
    RUNTIME.get_or_load(&ONNX_RUNTIME, explicit, environment_from)
}

/// The library ONNX Runtime was loaded from, once it has been.
pub fn loaded_library() -> Option<&'static Path> {
    RUNTIME.path()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::extractor::library::Search;

    fn load_first(search: Search) -> Result<(Environment, std::path::PathBuf)> {
        ONNX_RUNTIME.load_first(search, environment_from)
    }

    #[test]
    fn a_failed_search_names_what_it_tried_and_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let message = |search| match load_first(search) {
            Err(Error::Runtime(m)) => m,
            _ => panic!("nothing here is a library"),
        };
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let nothing = message(Search {
            files: vec![],
            folders: vec![a.clone(), b.clone()],
        });
        assert!(
            nothing.ends_with(&format!(
                "Tried: no libonnxruntime in {}, {}",
                a.display(),
                b.display()
            )),
            "{nothing}"
        );
        let absent = a.join("libonnxruntime.so");
        let some = message(Search {
            files: vec![absent.clone()],
            folders: vec![b.clone()],
        });
        assert!(
            some.ends_with(&format!(
                "Tried: {} (absent); no other libonnxruntime in {}",
                absent.display(),
                b.display()
            )),
            "{some}"
        );
    }
}
