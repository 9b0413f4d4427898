//! torchreid's split files (`splits.json` and friends): the random train / test partitions of
//! the small benchmarks, written on first use and read after, so that every run (ours or
//! torchreid's) evaluates the same partitions. Files written by torchreid hold absolute paths
//! of the machine that wrote them; they are mapped onto the local copy of the dataset.

use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};

use crate::data::dataset::{ReidDataset, Sample};
use crate::error::{Error, Result};

/// The train / query / gallery lists of one split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// Training images, identities relabelled from 0.
    pub train: Vec<Sample>,
    /// Query images.
    pub query: Vec<Sample>,
    /// Gallery images.
    pub gallery: Vec<Sample>,
}

impl Split {
    /// The split as a dataset called `name`.
    pub fn into_dataset(self, name: &str) -> ReidDataset {
        ReidDataset {
            name: name.to_string(),
            train: self.train,
            query: self.query,
            gallery: self.gallery,
        }
    }
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{}: {what}", path.display()))
}

/// `path` as it lies under `dataset_dir`: from the last component that is one of `markers`
/// (the dataset's own sub-folders) on; a path without one is kept as it is.
pub(crate) fn relocate(path: &str, dataset_dir: &Path, markers: &[&str]) -> PathBuf {
    let parts: Vec<&str> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    match parts.iter().rposition(|p| markers.contains(p)) {
        Some(i) => parts[i..]
            .iter()
            .fold(dataset_dir.to_path_buf(), |acc, p| acc.join(p)),
        None => PathBuf::from(path),
    }
}

/// The error of a missing part of a dataset's layout.
pub(crate) fn missing(name: &str, path: &Path) -> Error {
    Error::InvalidInput(format!(
        "{name} not found: expected {} (real datasets cannot be downloaded here)",
        path.display()
    ))
}

/// Reads a JSON file.
pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| invalid(path, e))
}

/// The splits of a file (a JSON list), or an error naming the valid range for `split_id`.
pub(crate) fn nth_split(value: &Value, split_id: usize, path: &Path) -> Result<Value> {
    let splits = value
        .as_array()
        .ok_or_else(|| invalid(path, "not a list of splits"))?;
    splits.get(split_id).cloned().ok_or_else(|| {
        invalid(
            path,
            format!("split_id {split_id}: the file has {} splits", splits.len()),
        )
    })
}

fn samples(list: &Value, dataset_dir: &Path, markers: &[&str], path: &Path) -> Result<Vec<Sample>> {
    let entries = list
        .as_array()
        .ok_or_else(|| invalid(path, "a split list is not a list"))?;
    entries
        .iter()
        .map(|entry| {
            let item = entry.as_array().filter(|a| a.len() >= 3);
            let parsed = item.and_then(|a| Some((a[0].as_str()?, a[1].as_i64()?, a[2].as_i64()?)));
            let (file, pid, camera) =
                parsed.ok_or_else(|| invalid(path, format!("bad entry {entry}")))?;
            Ok(Sample {
                path: relocate(file, dataset_dir, markers),
                pid,
                camera: camera as i32,
                dataset: 0,
            })
        })
        .collect()
}

/// Split `split_id` of a torchreid file of `[{"train": [[path, pid, camid], …], "query": …,
/// "gallery": …}, …]`.
pub(crate) fn read_sample_split(
    path: &Path,
    split_id: usize,
    dataset_dir: &Path,
    markers: &[&str],
) -> Result<Split> {
    let split = nth_split(&read_json(path)?, split_id, path)?;
    let list = |key: &str| samples(&split[key], dataset_dir, markers, path);
    Ok(Split {
        train: list("train")?,
        query: list("query")?,
        gallery: list("gallery")?,
    })
}

fn distinct_pids(samples: &[Sample]) -> usize {
    samples
        .iter()
        .map(|s| s.pid)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

fn sample_list(samples: &[Sample]) -> Value {
    Value::Array(
        samples
            .iter()
            .map(|s| json!([s.path.display().to_string(), s.pid, s.camera]))
            .collect(),
    )
}

/// The torchreid file of `splits`, with its count fields.
pub(crate) fn sample_splits_json(splits: &[Split]) -> Value {
    Value::Array(
        splits
            .iter()
            .map(|s| {
                json!({
                    "train": sample_list(&s.train),
                    "query": sample_list(&s.query),
                    "gallery": sample_list(&s.gallery),
                    "num_train_pids": distinct_pids(&s.train),
                    "num_query_pids": distinct_pids(&s.query),
                    "num_gallery_pids": distinct_pids(&s.gallery),
                })
            })
            .collect(),
    )
}

/// Saves freshly drawn splits where torchreid keeps them, so later runs (ours or torchreid's)
/// use the same ones. A read-only dataset folder only costs that: the run goes on.
pub(crate) fn save_splits(path: &Path, value: &Value) {
    let bytes = serde_json::to_vec(value).expect("serializable splits");
    if let Err(e) = crate::formats::npy::write_atomically(path, &bytes) {
        log::warn!("could not save the splits to {}: {e}", path.display());
    }
}

/// The image files in `dir` with extension `ext`, sorted (torchreid's `sorted(glob(…))`), or an
/// error naming the folder the dataset needs.
pub(crate) fn files_with_extension(name: &str, dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{name} not found: expected the folder {} (real datasets cannot be downloaded here)",
            dir.display()
        )));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)))
        .collect();
    files.sort();
    Ok(files)
}

/// The file name of `path` as text.
pub(crate) fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// The decimal number in `text[range]`, or an error naming the file.
pub(crate) fn number_in(text: &str, range: std::ops::Range<usize>, file: &Path) -> Result<i64> {
    text.get(range)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(file, "the file name does not follow the dataset's naming"))
}
