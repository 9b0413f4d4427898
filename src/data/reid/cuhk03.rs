//! CUHK03 as torchreid 0.2.5 reads it, detected or labeled boxes, with the new protocol
//! (767 training / 700 test identities, Zhong et al. 2017) or the 20 classic splits.
//!
//! Under `cuhk03/`: the images in `images_detected/` and `images_labeled/`
//! (`C_PPP_V_II.png`: camera pair, person, view, image), unpacked once from the release's
//! `cuhk03_release/cuhk-03.mat` (by torchreid or by [`super::cuhk03_release`]); the split comes
//! from torchreid's `splits_{new,classic}_{detected,labeled}.json` when present, else, for the
//! new protocol, from the official `cuhk03_new_protocol_config_{detected,labeled}.mat`.

use std::path::Path;

use super::split_file::read_sample_split;
use crate::data::dataset::{ReidDataset, Sample, ascending_labels};
use crate::error::{Error, Result};
use crate::formats::mat::{MatValue, read_mat};

/// Which CUHK03 images and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cuhk03Variant {
    /// Hand-drawn boxes instead of the detector's.
    pub labeled: bool,
    /// The 20 classic splits instead of the new protocol.
    pub classic: bool,
}

impl Cuhk03Variant {
    fn kind(&self) -> &'static str {
        if self.labeled { "labeled" } else { "detected" }
    }

    /// The dataset name this variant is loaded by.
    pub fn name(&self) -> String {
        let mut name = "cuhk03".to_string();
        if self.labeled {
            name += "_labeled";
        }
        if self.classic {
            name += "_classic";
        }
        name
    }
}

fn new_protocol_from_mat(dir: &Path, variant: Cuhk03Variant) -> Result<ReidDataset> {
    let kind = variant.kind();
    let mat_path = dir.join(format!("cuhk03_new_protocol_config_{kind}.mat"));
    let images = dir.join(format!("images_{kind}"));
    for needed in [&mat_path, &images] {
        if !needed.exists() {
            return Err(Error::InvalidInput(format!(
                "CUHK03 not found: expected {} (or cuhk03_release/cuhk-03.mat to unpack)",
                needed.display()
            )));
        }
    }
    let bad = |what: String| Error::InvalidInput(format!("{}: {what}", mat_path.display()));
    let mat = read_mat(&mat_path)?;
    let numbers = |key: &str| -> Result<Vec<i64>> {
        mat.get(key)
            .and_then(MatValue::numbers)
            .map(|v| v.iter().map(|&x| x as i64).collect())
            .ok_or_else(|| bad(format!("no numeric `{key}`")))
    };
    let files: Vec<String> = mat
        .get("filelist")
        .and_then(MatValue::cells)
        .ok_or_else(|| bad("no `filelist` cell array".into()))?
        .iter()
        .map(|c| c.text().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("`filelist` holds something other than names".into()))?;
    let labels = numbers("labels")?;
    let set = |key: &str| -> Result<Vec<usize>> {
        numbers(key)?
            .into_iter()
            .map(|i| {
                // `then`, not `then_some`: the index is computed only once it is known ≥ 1.
                (i >= 1 && (i as usize) <= files.len() && (i as usize) <= labels.len())
                    .then(|| i as usize - 1)
                    .ok_or_else(|| bad(format!("`{key}` index {i} is out of range")))
            })
            .collect()
    };
    let (train_idx, query_idx, gallery_idx) =
        (set("train_idx")?, set("query_idx")?, set("gallery_idx")?);
    // Increasing order: what torchreid's relabelling through a Python set gives for the
    // release's identity numbers (all smaller than the set's table).
    let train_pids = ascending_labels(train_idx.iter().map(|&i| labels[i]));
    let samples = |idx: &[usize], relabel: bool| -> Result<Vec<Sample>> {
        idx.iter()
            .map(|&i| {
                let name = &files[i];
                let view = name.split('_').nth(2).and_then(|v| v.parse::<i32>().ok());
                let view = view.filter(|&v| v >= 1);
                let view =
                    view.ok_or_else(|| bad(format!("`{name}` is not a CUHK03 image name")))?;
                let pid = if relabel {
                    train_pids[&labels[i]]
                } else {
                    labels[i]
                };
                Ok(Sample {
                    path: images.join(name),
                    pid,
                    camera: view - 1,
                    dataset: 0,
                })
            })
            .collect()
    };
    Ok(ReidDataset {
        name: variant.name(),
        train: samples(&train_idx, true)?,
        query: samples(&query_idx, false)?,
        gallery: samples(&gallery_idx, false)?,
    })
}

/// CUHK03 under `root` (`root/cuhk03/`), split `split_id` (0 for the new protocol).
pub fn cuhk03(root: &Path, variant: Cuhk03Variant, split_id: usize) -> Result<ReidDataset> {
    let dir = root.join("cuhk03");
    let protocol = if variant.classic { "classic" } else { "new" };
    let json = dir.join(format!("splits_{protocol}_{}.json", variant.kind()));
    let unpacked = dir.join(format!("images_{}", variant.kind())).is_dir()
        && (!variant.classic || json.is_file());
    if !unpacked && dir.join("cuhk03_release/cuhk-03.mat").is_file() {
        super::cuhk03_release::extract(&dir)?;
    }
    if json.is_file() {
        let markers = ["images_detected", "images_labeled"];
        return Ok(
            read_sample_split(&json, split_id, &dir, &markers)?.into_dataset(&variant.name())
        );
    }
    if variant.classic {
        return Err(Error::InvalidInput(format!(
            "CUHK03 classic splits: expected {} (written when cuhk03_release/cuhk-03.mat is \
             unpacked)",
            json.display()
        )));
    }
    if split_id != 0 {
        return Err(Error::InvalidInput(format!(
            "CUHK03's new protocol has one split; split_id {split_id} does not exist"
        )));
    }
    new_protocol_from_mat(&dir, variant)
}
