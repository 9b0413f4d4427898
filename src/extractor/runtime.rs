//! Finding and loading the ONNX Runtime shared library (ort's `load-dynamic`): the SDK looks
//! in the places users have it and says what it tried when it finds none.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ort::logging::LogLevel;

use crate::error::{Error, Result};
use crate::logging::Level;

/// The process-wide ONNX Runtime environment, with the library it was loaded from.
struct Runtime {
    environment: ort::environment::Environment,
    library: PathBuf,
}

/// Only a successful load is kept: a failed one (a wrong path, a missing library) is tried
/// afresh by the next call, which may name a good library.
static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// One load attempt at a time.
static LOADING: Mutex<()> = Mutex::new(());

/// File names the library goes by: the plain name and the wheel's versioned one.
fn is_library_name(name: &str) -> bool {
    name == "libonnxruntime.so"
        || name.starts_with("libonnxruntime.so.")
        || name == "libonnxruntime.dylib"
        || (name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
        || name == "onnxruntime.dll"
}

fn libraries_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_library_name)
        })
        .collect();
    found.sort();
    found.reverse(); // highest version first
    found
}

/// `site-packages` / `dist-packages` folders under a Python prefix.
fn site_packages(prefix: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for lib in ["lib", "lib64"] {
        for entry in std::fs::read_dir(prefix.join(lib))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("python3") {
                dirs.push(entry.path().join("site-packages"));
                dirs.push(entry.path().join("dist-packages"));
            }
        }
    }
    dirs
}

/// Where the library is looked for: the files found, in order, and every folder searched.
#[derive(Default)]
struct Search {
    files: Vec<PathBuf>,
    folders: Vec<PathBuf>,
}

impl Search {
    fn look_in(&mut self, dir: PathBuf) {
        self.files.extend(libraries_in(&dir));
        self.folders.push(dir);
    }
}

/// The places the library is looked for, in order.
fn candidates(explicit: Option<&Path>) -> Search {
    let mut out = Search::default();
    if let Some(p) = explicit {
        out.files.push(p.to_path_buf());
        return out;
    }
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH")
        && !p.is_empty()
    {
        out.files.push(PathBuf::from(p));
    }
    // The `onnxruntime` Python package keeps the library in its `capi/` folder.
    let mut prefixes: Vec<PathBuf> = ["VIRTUAL_ENV", "CONDA_PREFIX"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        prefixes.push(Path::new(&home).join(".local"));
    }
    prefixes.extend(["/usr/local", "/usr"].map(PathBuf::from));
    for site in prefixes.iter().flat_map(|p| site_packages(p)) {
        if site.is_dir() {
            out.look_in(site.join("onnxruntime").join("capi"));
        }
    }
    // The system's library path.
    let mut system: Vec<PathBuf> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    system.extend(
        [
            "/usr/local/lib",
            "/usr/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
        ]
        .map(PathBuf::from),
    );
    for dir in system {
        out.look_in(dir);
    }
    out
}

/// The `purelib` folder of the `python3` on PATH (or `REID_PYTHON`), if there is one.
fn python_site_packages() -> Option<PathBuf> {
    let python = std::env::var("REID_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn load(explicit: Option<&Path>) -> Result<Runtime> {
    let mut search = candidates(explicit);
    if explicit.is_none() && search.files.is_empty() {
        // Asking Python where its packages are starts a process: only when nothing else was
        // found.
        if let Some(site) = python_site_packages() {
            search.look_in(site.join("onnxruntime").join("capi"));
        }
    }
    load_first(search)
}

/// Loads the first of the files found that loads; else an error naming every file tried and
/// every folder searched.
fn load_first(search: Search) -> Result<Runtime> {
    let mut tried = Vec::new();
    for path in search.files {
        if !path.exists() {
            tried.push(format!("{} (absent)", path.display()));
            continue;
        }
        match ort::init_from(&path) {
            Ok(builder) => {
                // ONNX Runtime's own log lines go where the host said, not to its stderr.
                let environment = builder
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
                    .map_err(|e| Error::Runtime(format!("{}: {e}", path.display())))?;
                return Ok(Runtime {
                    environment,
                    library: path,
                });
            }
            Err(e) => tried.push(format!("{} ({e})", path.display())),
        }
    }
    let folders: Vec<String> = search
        .folders
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    Err(Error::Runtime(format!(
        "ONNX Runtime (>= 1.31) was not found. Set ORT_DYLIB_PATH or the extractor's library \
         option to libonnxruntime, or `pip install onnxruntime`. Tried: {}",
        match (tried.is_empty(), folders.is_empty()) {
            (false, true) => tried.join("; "),
            (true, _) => format!("no libonnxruntime in {}", folders.join(", ")),
            (false, false) => format!(
                "{}; no other libonnxruntime in {}",
                tried.join("; "),
                folders.join(", ")
            ),
        }
    )))
}

/// Whether `a` and `b` name the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Loads ONNX Runtime once per process and returns its environment. A failed load is not
/// remembered; once one has succeeded, a call naming another library is an error (a process
/// holds one ONNX Runtime).
pub(crate) fn environment(
    explicit: Option<&Path>,
) -> Result<&'static ort::environment::Environment> {
    let _one_at_a_time = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = match RUNTIME.get() {
        Some(rt) => rt,
        None => {
            let rt = load(explicit)?;
            RUNTIME.get_or_init(|| rt)
        }
    };
    match explicit {
        Some(path) if !same_file(path, &runtime.library) => Err(Error::Runtime(format!(
            "ONNX Runtime is already loaded from {} in this process; {} cannot be loaded too \
             (leave the library option empty, or give the same file)",
            runtime.library.display(),
            path.display()
        ))),
        _ => Ok(&runtime.environment),
    }
}

/// The library ONNX Runtime was loaded from, once it has been.
pub fn loaded_library() -> Option<&'static Path> {
    RUNTIME.get().map(|rt| rt.library.as_path())
}

#[cfg(test)]
mod tests {
    use super::*;

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
