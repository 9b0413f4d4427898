//! Users' own data in plain folders.
//!
//! Re-id, one folder per identity:
//! ```text
//! ROOT/train/<identity>/<image>      ROOT/query/<identity>/<image>      ROOT/gallery/<identity>/<image>
//! ```
//! (or only `ROOT/<identity>/…`, all for training). An image name starting with a camera
//! number (`3_…`, `c3_…`, `cam3_…`) gives its camera; otherwise query images are camera 0 and
//! gallery images camera 1, so that every gallery image counts as another camera in
//! evaluation. Identities are folder names, numbered in sorted order (shared by query and
//! gallery).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::dataset::{ReidDataset, Sample};
use crate::data::files::{folder_name, image_files, subfolders};
use crate::error::{Error, Result};

/// The camera a file name starts with: `3_x.jpg`, `c3_x.jpg`, `cam3_x.jpg`.
pub fn camera_prefix(name: &str) -> Option<i32> {
    let head = name.split(['_', '-', '.']).next()?;
    let digits = head
        .strip_prefix("cam")
        .or_else(|| head.strip_prefix('c'))
        .unwrap_or(head);
    digits.parse().ok()
}

/// Images of the identity folders of `dir` as (identity name, path, camera).
fn identity_images(dir: &Path, default_camera: i32) -> Result<Vec<(String, PathBuf, i32)>> {
    let mut out = Vec::new();
    for identity in subfolders(dir)? {
        let name = folder_name(&identity);
        for path in image_files(&identity)? {
            let camera = camera_prefix(&folder_name(&path)).unwrap_or(default_camera);
            out.push((name.clone(), path, camera));
        }
    }
    Ok(out)
}

/// Reads a folder-per-identity dataset (layout in the module documentation).
pub fn identity_folders(root: &Path) -> Result<ReidDataset> {
    if !root.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{}: no such folder (expected ROOT/train/<identity>/<image>, or ROOT/<identity>/<image>)",
            root.display()
        )));
    }
    let split = root.join("train");
    let train_dir = if split.is_dir() {
        split
    } else {
        root.to_path_buf()
    };
    let train = identity_images(&train_dir, 0)?;
    let query = match root.join("query") {
        d if d.is_dir() => identity_images(&d, 0)?,
        _ => Vec::new(),
    };
    let gallery = match root.join("gallery") {
        d if d.is_dir() => identity_images(&d, 1)?,
        _ => Vec::new(),
    };
    let numbers = |items: &[(String, PathBuf, i32)]| -> BTreeMap<String, i64> {
        let mut names: Vec<&String> = items.iter().map(|(n, _, _)| n).collect();
        names.sort();
        names.dedup();
        names.into_iter().cloned().zip(0..).collect()
    };
    let train_ids = numbers(&train);
    let test_ids = numbers(&[query.clone(), gallery.clone()].concat());
    let samples = |items: Vec<(String, PathBuf, i32)>, ids: &BTreeMap<String, i64>| {
        items
            .into_iter()
            .map(|(name, path, camera)| Sample {
                path,
                pid: ids[&name],
                camera,
                dataset: 0,
            })
            .collect::<Vec<_>>()
    };
    let dataset = ReidDataset {
        name: folder_name(root),
        train: samples(train, &train_ids),
        query: samples(query, &test_ids),
        gallery: samples(gallery, &test_ids),
    };
    if dataset.train.is_empty() && dataset.query.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: no images in identity folders",
            root.display()
        )));
    }
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_prefixes() {
        assert_eq!(camera_prefix("3_0001.jpg"), Some(3));
        assert_eq!(camera_prefix("c12_x.png"), Some(12));
        assert_eq!(camera_prefix("cam2-frame9.jpg"), Some(2));
        assert_eq!(camera_prefix("frame_0001.jpg"), None);
    }

    #[test]
    fn identity_folders_number_names_and_default_cameras() {
        let dir = tempfile::tempdir().unwrap();
        let put = |rel: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        };
        put("train/bob/2_a.jpg");
        put("train/alice/a.jpg");
        put("train/alice/b.png");
        put("query/zed/q.jpg");
        put("gallery/zed/g.jpg");
        put("gallery/amy/c4_g.jpg");
        put("train/alice/notes.txt");
        let d = identity_folders(dir.path()).unwrap();
        let labels: Vec<(i64, i32)> = d.train.iter().map(|s| (s.pid, s.camera)).collect();
        assert_eq!(labels, [(0, 0), (0, 0), (1, 2)]);
        assert_eq!((d.query[0].pid, d.query[0].camera), (1, 0));
        let gallery: Vec<(i64, i32)> = d.gallery.iter().map(|s| (s.pid, s.camera)).collect();
        assert_eq!(gallery, [(0, 4), (1, 1)]);
        let classes =
            crate::data::classification::image_folder::image_folder(&dir.path().join("train"))
                .unwrap();
        assert_eq!(classes.classes, ["alice", "bob"]);
        assert_eq!(classes.samples.len(), 3);
        assert!(identity_folders(&dir.path().join("absent")).is_err());
    }
}
