//! The model zoo's published weights: the catalog of pretrained models by name ([`catalog`]),
//! and [`Zoo`], the cache folder they are downloaded into (resumed after an interruption,
//! checked before use) or placed in by hand where there is no network.
//!
//! ```no_run
//! let zoo = reid::zoo::Zoo::from_env();
//! let entry = reid::zoo::find("osnet_x0_25_imagenet")?;
//! let path = zoo.fetch(entry, &mut |_| {})?;
//! # Ok::<(), reid::Error>(())
//! ```

mod catalog;
mod download;
mod verify;

pub use catalog::{Accuracy, Expected, ZooModel, ZooTask, catalog, find, imagenet};
pub use download::Progress;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Environment variable naming the cache folder.
pub const DIR_VARIABLE: &str = "REID_ZOO_DIR";
/// Environment variable naming a mirror: a base URL serving the catalog's files by file name.
pub const MIRROR_VARIABLE: &str = "REID_ZOO_MIRROR";

/// Where pretrained files are kept and where they are downloaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zoo {
    dir: PathBuf,
    /// Read-only folders also searched: torchreid's and torch.hub's download folders, so that
    /// files a PyTorch install already fetched are found.
    also: Vec<PathBuf>,
    mirror: Option<String>,
}

impl Zoo {
    /// The cache folder `dir`, downloading from each file's published address.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            also: Vec::new(),
            mirror: None,
        }
    }

    /// The user's cache: `$REID_ZOO_DIR`, else `$XDG_CACHE_HOME/reid/zoo`, else
    /// `~/.cache/reid/zoo`; PyTorch's download folders (`$TORCH_HOME/checkpoints`, its
    /// `hub/checkpoints`) are searched too; `$REID_ZOO_MIRROR` replaces the published addresses.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let cache = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")));
        let dir = var(DIR_VARIABLE)
            .or_else(|| cache.as_ref().map(|c| c.join("reid").join("zoo")))
            .unwrap_or_else(|| PathBuf::from(".reid-zoo"));
        let torch = var("TORCH_HOME").or_else(|| cache.map(|c| c.join("torch")));
        let also = torch
            .map(|t| vec![t.join("checkpoints"), t.join("hub").join("checkpoints")])
            .unwrap_or_default();
        let mirror = std::env::var(MIRROR_VARIABLE)
            .ok()
            .filter(|m| !m.is_empty());
        Self { dir, also, mirror }
    }

    /// Downloads from `base` (`http://host/path`), which serves the files by their names,
    /// instead of the published addresses.
    pub fn with_mirror(mut self, base: impl Into<String>) -> Self {
        self.mirror = Some(base.into());
        self
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `model` is downloaded from.
    pub fn url(&self, model: &ZooModel) -> String {
        match &self.mirror {
            Some(base) => format!("{}/{}", base.trim_end_matches('/'), model.file),
            None => download::direct_url(&model.url),
        }
    }

    /// `model`'s file when the cache folder (or PyTorch's) holds it, checked; `None` when no
    /// folder has it; an error when a file is there but is not the published one.
    pub fn local(&self, model: &ZooModel) -> Result<Option<PathBuf>> {
        for dir in std::iter::once(&self.dir).chain(&self.also) {
            let path = dir.join(&model.file);
            if path.is_file() {
                verify::verify(model, &path).map_err(|e| {
                    Error::InvalidInput(format!(
                        "{e}; delete {} or put the published file there",
                        path.display()
                    ))
                })?;
                return Ok(Some(path));
            }
        }
        Ok(None)
    }

    /// `model`'s file: the cached one, else downloaded into the cache folder (continuing an
    /// interrupted transfer) and checked before it takes its name, so a file under the name
    /// is always the published one. `progress` hears of every received block.
    pub fn fetch(&self, model: &ZooModel, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf> {
        if let Some(path) = self.local(model)? {
            return Ok(path);
        }
        let path = self.dir.join(&model.file);
        let part = self.dir.join(format!("{}.part", model.file));
        let url = self.url(model);
        let failed = |reason: String| {
            Error::Download(format!(
                "{} from {url}: {reason}. Without a network, download {} elsewhere and put it \
                 in {} (it is checked before use)",
                model.name,
                model.file,
                self.dir.display()
            ))
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        download::download(&url, &part, progress).map_err(failed)?;
        if let Err(e) = verify::verify(model, &part) {
            // A wrong file would be resumed from forever: start again next time.
            let _ = std::fs::remove_file(&part);
            return Err(failed(e.to_string()));
        }
        std::fs::rename(&part, &path).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }
}

impl Default for Zoo {
    fn default() -> Self {
        Self::from_env()
    }
}
