//! Finding a runtime's shared library (ONNX Runtime's, OpenVINO's C API): an explicit file,
//! an environment variable, the runtime's Python package in the usual prefixes, then the
//! system's library path; an error says what was tried and where.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};

/// A shared library loaded at run time, and where users have it.
pub(crate) struct Library {
    /// The file name's stem (`libonnxruntime`): `STEM.so`, `STEM.so.N…`, `STEM.dylib`,
    /// `STEM.N….dylib` or, on Windows, the stem without `lib` plus `.dll`.
    pub stem: &'static str,
    /// The runtime's name (`ONNX Runtime`).
    pub name: &'static str,
    /// What the runtime is, for messages (`ONNX Runtime (>= 1.31)`).
    pub what: &'static str,
    /// The environment variable that names the file.
    pub env: &'static str,
    /// Its folder inside the runtime's Python package (`onnxruntime/capi`).
    pub package: &'static [&'static str],
    /// How to get one, for messages.
    pub advice: &'static str,
}

impl Library {
    fn is_name(&self, name: &str) -> bool {
        let stem = self.stem;
        let dll = format!("{}.dll", stem.strip_prefix("lib").unwrap_or(stem));
        name == format!("{stem}.so")
            || name.starts_with(&format!("{stem}.so."))
            || name == format!("{stem}.dylib")
            || (name.starts_with(&format!("{stem}.")) && name.ends_with(".dylib"))
            || name == dll
    }

    fn libraries_in(&self, dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| self.is_name(n))
            })
            .collect();
        found.sort();
        found.reverse(); // highest version first
        found
    }

    fn package_dir(&self, site: &Path) -> PathBuf {
        self.package
            .iter()
            .fold(site.to_path_buf(), |p, part| p.join(part))
    }

    /// The files to try, in order, and every folder searched. Python is asked where its
    /// packages are only when nothing else was found (it starts a process).
    pub fn search(&self, explicit: Option<&Path>) -> Search {
        let mut out = Search::default();
        if let Some(p) = explicit {
            out.files.push(p.to_path_buf());
            return out;
        }
        if let Ok(p) = std::env::var(self.env)
            && !p.is_empty()
        {
            out.files.push(PathBuf::from(p));
        }
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
                out.look_in(self, self.package_dir(&site));
            }
        }
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
            out.look_in(self, dir);
        }
        if out.files.is_empty()
            && let Some(site) = python_site_packages()
        {
            out.look_in(self, self.package_dir(&site));
        }
        out
    }

    /// Loads the first of `search`'s files that `load` accepts (its error: try the next);
    /// else an error naming every file tried and every folder searched.
    pub fn load_first<T>(
        &self,
        search: Search,
        mut load: impl FnMut(&Path) -> std::result::Result<T, String>,
    ) -> Result<(T, PathBuf)> {
        let mut tried = Vec::new();
        for path in search.files {
            if !path.exists() {
                tried.push(format!("{} (absent)", path.display()));
                continue;
            }
            match load(&path) {
                Ok(loaded) => return Ok((loaded, path)),
                Err(e) => tried.push(format!("{} ({e})", path.display())),
            }
        }
        let folders: Vec<String> = search
            .folders
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        let stem = self.stem;
        Err(Error::Runtime(format!(
            "{} was not found. {} Tried: {}",
            self.what,
            self.advice,
            match (tried.is_empty(), folders.is_empty()) {
                (false, true) => tried.join("; "),
                (true, _) => format!("no {stem} in {}", folders.join(", ")),
                (false, false) => format!(
                    "{}; no other {stem} in {}",
                    tried.join("; "),
                    folders.join(", ")
                ),
            }
        )))
    }
}

/// A library a process loads once: what loading it gave, and the file it came from. A failed
/// load is not remembered (a later call may name a good file); once one has succeeded, a call
/// naming another file is an error.
pub(crate) struct LoadedOnce<T> {
    value: OnceLock<(T, PathBuf)>,
    loading: Mutex<()>,
}

impl<T> LoadedOnce<T> {
    pub const fn new() -> Self {
        Self {
            value: OnceLock::new(),
            loading: Mutex::new(()),
        }
    }

    /// The loaded value, loading `library` first (from `explicit`, else found) with `load`
    /// when no load has succeeded yet.
    pub fn get_or_load(
        &self,
        library: &Library,
        explicit: Option<&Path>,
        load: impl FnMut(&Path) -> std::result::Result<T, String>,
    ) -> Result<&T> {
        let _one_at_a_time = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        let (value, loaded) = match self.value.get() {
            Some(done) => done,
            None => {
                let done = library.load_first(library.search(explicit), load)?;
                self.value.get_or_init(|| done)
            }
        };
        match explicit {
            Some(path) if !same_file(path, loaded) => Err(Error::Runtime(format!(
                "{} is already loaded from {} in this process; {} cannot be loaded too \
                 (leave the library option empty, or give the same file)",
                library.name,
                loaded.display(),
                path.display()
            ))),
            _ => Ok(value),
        }
    }

    /// The file loaded, once one has been.
    pub fn path(&self) -> Option<&Path> {
        self.value.get().map(|(_, path)| path.as_path())
    }
}

/// Where a library is looked for: the files found, in order, and every folder searched.
#[derive(Default)]
pub(crate) struct Search {
    pub files: Vec<PathBuf>,
    pub folders: Vec<PathBuf>,
}

impl Search {
    fn look_in(&mut self, library: &Library, dir: PathBuf) {
        self.files.extend(library.libraries_in(&dir));
        self.folders.push(dir);
    }
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

/// Whether `a` and `b` name the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
