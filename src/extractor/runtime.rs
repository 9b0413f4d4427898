//! Finding and loading the ONNX Runtime shared library (ort's `load-dynamic`): the SDK looks
//! in the places users have it and says what it tried when it finds none.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The process-wide ONNX Runtime environment, with the library it was loaded from.
struct Runtime {
    environment: ort::environment::Environment,
    library: PathBuf,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

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

/// Where the library is looked for, in order.
fn candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        out.push(p.to_path_buf());
        return out;
    }
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH")
        && !p.is_empty()
    {
        out.push(PathBuf::from(p));
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
    let site: Vec<PathBuf> = prefixes.iter().flat_map(|p| site_packages(p)).collect();
    for dir in site {
        out.extend(libraries_in(&dir.join("onnxruntime").join("capi")));
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
        out.extend(libraries_in(&dir));
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

fn load(explicit: Option<&Path>) -> std::result::Result<Runtime, String> {
    let mut tried = Vec::new();
    // Asking Python where its packages are starts a process: only when nothing else was found.
    let python = || {
        python_site_packages()
            .map(|dir| libraries_in(&dir.join("onnxruntime").join("capi")))
            .unwrap_or_default()
    };
    let fallback = std::iter::once_with(|| {
        if explicit.is_none() {
            python()
        } else {
            Vec::new()
        }
    })
    .flatten();
    for path in candidates(explicit).into_iter().chain(fallback) {
        if !path.exists() {
            tried.push(format!("{} (absent)", path.display()));
            continue;
        }
        match ort::init_from(&path) {
            Ok(builder) => {
                let environment = builder
                    .with_name("reid")
                    .build()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                return Ok(Runtime {
                    environment,
                    library: path,
                });
            }
            Err(e) => tried.push(format!("{} ({e})", path.display())),
        }
    }
    Err(format!(
        "ONNX Runtime (>= 1.31) was not found. Set ORT_DYLIB_PATH or the extractor's library \
         option to libonnxruntime, or `pip install onnxruntime`. Tried: {}",
        if tried.is_empty() {
            "nothing (no candidate paths)".to_string()
        } else {
            tried.join("; ")
        }
    ))
}

/// Loads ONNX Runtime once per process and returns its environment. The first successful
/// load wins: a later call with another `explicit` path reuses the loaded library.
pub(crate) fn environment(
    explicit: Option<&Path>,
) -> Result<&'static ort::environment::Environment> {
    match RUNTIME.get_or_init(|| load(explicit)) {
        Ok(rt) => Ok(&rt.environment),
        Err(message) => Err(Error::Runtime(message.clone())),
    }
}

/// The library ONNX Runtime was loaded from, once it has been.
pub fn loaded_library() -> Option<&'static Path> {
    RUNTIME.get()?.as_ref().ok().map(|rt| rt.library.as_path())
}
