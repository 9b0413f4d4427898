//! Classification datasets in deep-object-reid's annotation formats (the classification
//! half of the SDK):
//!
//! - `classification`: a text file of `relative/path.jpg LABEL` lines (paths relative to the
//!   file's folder), with an optional `classes a,b,c` line naming the labels; otherwise the
//!   classes are the labels that occur. Lines that do not fit and images that do not exist are
//!   skipped with a warning, as deep-object-reid does.
//! - `multilabel`: a JSON file `{"classes": [...], "images": [["relative/path.jpg", ["a",
//!   "b"]], ...]}`; classes are numbered in sorted order, unknown labels are dropped, and images
//!   without labels stay as negatives.
//! - ImageFolder (`ROOT/<class>/<image>`), through [`image_folder::image_folder`].

pub mod benchmarks;
pub mod image_folder;
mod locate;
pub mod pixel_archives;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use image_folder::{ImageFolder, image_folder};

/// Images with one label (multiclass) or a set of labels (multilabel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassificationDataset {
    /// Class names, indexed by label.
    pub classes: Vec<String>,
    /// Each image with its labels (exactly one unless `multilabel`).
    pub samples: Vec<(PathBuf, Vec<usize>)>,
    /// Whether an image may carry several labels, or none.
    pub multilabel: bool,
}

impl From<ImageFolder> for ClassificationDataset {
    fn from(folder: ImageFolder) -> Self {
        Self {
            classes: folder.classes,
            samples: folder
                .samples
                .into_iter()
                .map(|(path, label)| (path, vec![label]))
                .collect(),
            multilabel: false,
        }
    }
}

fn folder_of(annotation: &Path) -> PathBuf {
    annotation
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Reads deep-object-reid's `classification` list file.
pub fn read_classification_list(annotation: &Path) -> Result<ClassificationDataset> {
    let text = std::fs::read_to_string(annotation).map_err(|e| Error::io(annotation, e))?;
    let root = folder_of(annotation);
    let mut named: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.trim().split(' ').collect();
        if parts.first() == Some(&"classes") && parts.len() == 2 {
            named = parts[1].split(',').map(str::to_string).collect();
            continue;
        }
        let parsed = match parts[..] {
            [path, label] => label.parse::<usize>().ok().map(|l| (path, l)),
            _ => None,
        };
        let Some((relative, label)) = parsed else {
            if !line.trim().is_empty() {
                log::warn!(
                    "{}:{}: expected `relative/path label`",
                    annotation.display(),
                    number + 1
                );
            }
            continue;
        };
        let path = root.join(relative);
        if !path.exists() {
            log::warn!("{}: does not exist; skipped", path.display());
            continue;
        }
        samples.push((path, vec![label]));
    }
    let classes = if named.is_empty() {
        let used: BTreeSet<usize> = samples.iter().flat_map(|(_, l)| l.clone()).collect();
        let count = used.last().map_or(0, |&l| l + 1);
        (0..count).map(|l| l.to_string()).collect()
    } else {
        named
    };
    if let Some((path, labels)) = samples.iter().find(|(_, l)| l[0] >= classes.len()) {
        return Err(Error::InvalidInput(format!(
            "{}: {} has label {}, but there are {} classes",
            annotation.display(),
            path.display(),
            labels[0],
            classes.len()
        )));
    }
    if samples.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: no images",
            annotation.display()
        )));
    }
    Ok(ClassificationDataset {
        classes,
        samples,
        multilabel: false,
    })
}

#[derive(Deserialize)]
struct MultilabelFile {
    classes: Vec<String>,
    images: Vec<(String, Vec<String>)>,
}

/// Reads deep-object-reid's multilabel JSON annotation.
pub fn read_multilabel_json(annotation: &Path) -> Result<ClassificationDataset> {
    let text = std::fs::read_to_string(annotation).map_err(|e| Error::io(annotation, e))?;
    let file: MultilabelFile = serde_json::from_str(&text)
        .map_err(|e| Error::InvalidInput(format!("{}: {e}", annotation.display())))?;
    let mut classes = file.classes;
    classes.sort();
    classes.dedup();
    let index: BTreeMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let root = folder_of(annotation);
    let samples = file
        .images
        .iter()
        .map(|(relative, labels)| {
            let mut ids: Vec<usize> = labels
                .iter()
                .filter_map(|l| index.get(l.as_str()).copied())
                .collect();
            ids.sort();
            ids.dedup();
            (root.join(relative), ids)
        })
        .collect();
    Ok(ClassificationDataset {
        classes,
        samples,
        multilabel: true,
    })
}

/// Reads the classification set `name` under `root` for training (`train`) or evaluation:
///
/// - a `.json` file: deep-object-reid's multilabel format; any other file: its
///   `classification` list format;
/// - a folder with `train/` and `val/` (or `test/`) ImageFolders, or `train.json` /
///   `val.json` (or `test.json`), or `train.txt` / `val.txt` (or `test.txt`): the split asked
///   for;
/// - any other folder: one ImageFolder, for training and evaluation alike;
/// - the name of a benchmark ([`benchmarks::CLASSIFICATION_BENCHMARKS`],
///   e.g. `dtd`, `food101`) reads its official layout under `root`, split `split_id`.
pub fn load_classification(
    name: &str,
    root: &Path,
    train: bool,
    split_id: usize,
) -> Result<ClassificationDataset> {
    let path = root.join(name);
    let benchmark = if path.is_file() {
        None
    } else {
        benchmarks::load_benchmark(name, root, train, split_id)
    };
    let set = if let Some(set) = benchmark {
        set?
    } else if path.is_file() {
        read_annotation(&path)?
    } else if path.is_dir() {
        let splits: &[&str] = if train { &["train"] } else { &["val", "test"] };
        let mut found = None;
        for split in splits {
            let dir = path.join(split);
            if dir.is_dir() {
                found = Some(image_folder(&dir)?.into());
                break;
            }
            for ext in ["json", "txt"] {
                let file = path.join(format!("{split}.{ext}"));
                if file.is_file() {
                    found = Some(read_annotation(&file)?);
                    break;
                }
            }
            if found.is_some() {
                break;
            }
        }
        match found {
            Some(set) => set,
            None => image_folder(&path)?.into(),
        }
    } else {
        return Err(Error::InvalidInput(format!(
            "classification set {} does not exist",
            path.display()
        )));
    };
    if set.samples.is_empty() || set.classes.len() < 2 {
        return Err(Error::InvalidInput(format!(
            "{}: a classification set needs images of at least two classes",
            path.display()
        )));
    }
    Ok(set)
}

fn read_annotation(file: &Path) -> Result<ClassificationDataset> {
    if file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        read_multilabel_json(file)
    } else {
        read_classification_list(file)
    }
}
