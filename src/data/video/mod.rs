//! Video re-id: datasets of tracklets (a person's consecutive crops from one camera) as
//! torchreid's `VideoDataset`s read them — MARS, iLIDS-VID, PRID2011 and DukeMTMC-VideoReID —
//! and torchreid's choice of the frames a tracklet contributes ([`sampling`]).
//!
//! A tracklet's frames are in file-name order (their temporal order in every layout here);
//! torchreid keeps iLIDS-VID's and PRID2011's in directory-listing order, which only changes
//! which frames `evenly` picks.

pub mod duke;
pub mod mars;
pub mod sampling;
pub mod sequences;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::data::Sample;
use crate::error::{Error, Result};

/// A person's consecutive crops from one camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracklet {
    /// The frames, in temporal order.
    pub frames: Vec<PathBuf>,
    /// Identity (training: relabelled from 0).
    pub pid: i64,
    /// Camera, from 0.
    pub camera: i32,
}

impl Tracklet {
    /// Frame `k` as an image sample of the tracklet's identity and camera.
    pub fn frame(&self, k: usize) -> Sample {
        Sample {
            path: self.frames[k].clone(),
            pid: self.pid,
            camera: self.camera,
            dataset: 0,
        }
    }
}

/// A video re-id dataset: training tracklets, and the query and gallery tracklets of its test
/// split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoDataset {
    /// Name (`mars`, …).
    pub name: String,
    /// Training tracklets.
    pub train: Vec<Tracklet>,
    /// Query tracklets.
    pub query: Vec<Tracklet>,
    /// Gallery tracklets.
    pub gallery: Vec<Tracklet>,
}

/// Names accepted by [`load_video_dataset`] (torchreid's).
pub const VIDEO_DATASETS: [&str; 4] = ["mars", "ilidsvid", "prid2011", "dukemtmcvidreid"];

/// Reads the video dataset `name` under `root` as torchreid does; `split_id` picks one of
/// iLIDS-VID's and PRID2011's ten partitions.
pub fn load_video_dataset(name: &str, root: &Path, split_id: usize) -> Result<VideoDataset> {
    let single = |dataset: Result<VideoDataset>| {
        if split_id == 0 {
            dataset
        } else {
            Err(Error::InvalidInput(format!(
                "{name} has one split; split_id {split_id} does not exist"
            )))
        }
    };
    match name {
        "mars" => single(mars::mars(root)),
        "dukemtmcvidreid" => single(duke::duke_video(root)),
        "ilidsvid" => sequences::ilids_vid(root, split_id),
        "prid2011" => sequences::prid2011(root, split_id),
        other => Err(Error::InvalidInput(format!(
            "unknown video dataset `{other}`; known: {}",
            VIDEO_DATASETS.join(", ")
        ))),
    }
}

impl VideoDataset {
    /// Number of training identities (classifier size).
    pub fn num_train_pids(&self) -> usize {
        self.train
            .iter()
            .map(|t| t.pid)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// A table of identities, tracklets and cameras per split, like torchreid's summary.
    pub fn summary(&self) -> String {
        let row = |split: &str, tracklets: &[Tracklet]| {
            let ids: BTreeSet<i64> = tracklets.iter().map(|t| t.pid).collect();
            let cams: BTreeSet<i32> = tracklets.iter().map(|t| t.camera).collect();
            format!(
                "  {split:<8} | {:>5} | {:>11} | {:>9}\n",
                ids.len(),
                tracklets.len(),
                cams.len()
            )
        };
        format!(
            "=> {}\n  subset   | # ids | # tracklets | # cameras\n{}{}{}",
            self.name,
            row("train", &self.train),
            row("query", &self.query),
            row("gallery", &self.gallery)
        )
    }
}

/// The files in `dir` ending in `.ext`, sorted by name; an error naming the folder when it is
/// missing or holds none.
pub(crate) fn frames_in(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut frames: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)))
        .collect();
    if frames.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: a tracklet folder without .{ext} frames",
            dir.display()
        )));
    }
    frames.sort();
    Ok(frames)
}

/// The sub-folders of `dir`, sorted by name.
pub(crate) fn folders_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}
