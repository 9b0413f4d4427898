//! DukeMTMC-VideoReID: `dukemtmc-vidreid/DukeMTMC-VideoReID/{train,query,gallery}/PPPP/
//! TTTT/PPPP_Cc_Ffff_….jpg` (the older naming `PPPPCcFfff….jpg` too). torchreid caches each
//! part's tracklets in `split_{train,query,gallery}.json` (with its machine's absolute paths,
//! mapped onto this copy); without them the folders are walked and the files written.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Tracklet, VideoDataset, folders_in, frames_in};
use crate::data::dataset::ascending_labels;
use crate::data::reid::split_file::{missing, read_json, relocate, save_splits};
use crate::error::{Error, Result};

const MARKERS: [&str; 1] = ["DukeMTMC-VideoReID"];

/// The camera in a frame's file name (`0001_C6_F0099_X30823.jpg` or `0001C6F0099X30823.jpg`).
fn camera_of(frame: &Path) -> Result<i32> {
    let name = frame.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let at = if name.contains('_') { 6 } else { 5 };
    name.get(at..at + 1)
        .and_then(|c| c.parse::<i32>().ok())
        .filter(|&c| c >= 1)
        .map(|c| c - 1)
        .ok_or_else(|| {
            Error::InvalidInput(format!("{}: no camera in the file name", frame.display()))
        })
}

fn walk(part: &Path, relabel: bool) -> Result<Vec<Tracklet>> {
    let mut out = Vec::new();
    for person in folders_in(part)? {
        let pid: i64 = person
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                Error::InvalidInput(format!("{}: not an identity number", person.display()))
            })?;
        for track in folders_in(&person)? {
            let frames = frames_in(&track, "jpg")?;
            out.push(Tracklet {
                camera: camera_of(&frames[0])?,
                frames,
                pid,
            });
        }
    }
    if relabel {
        let labels = ascending_labels(out.iter().map(|t| t.pid));
        out.iter_mut().for_each(|t| t.pid = labels[&t.pid]);
    }
    Ok(out)
}

fn read_cache(path: &Path, dataset_dir: &Path) -> Result<Vec<Tracklet>> {
    let bad = |what: String| Error::InvalidInput(format!("{}: {what}", path.display()));
    let value = read_json(path)?;
    let list = value["tracklets"]
        .as_array()
        .ok_or_else(|| bad("no `tracklets` list".into()))?;
    list.iter()
        .map(|entry| {
            let parsed = entry.as_array().filter(|a| a.len() >= 3).and_then(|a| {
                let frames: Option<Vec<PathBuf>> = a[0]
                    .as_array()?
                    .iter()
                    .map(|f| Some(relocate(f.as_str()?, dataset_dir, &MARKERS)))
                    .collect();
                Some((frames?, a[1].as_i64()?, a[2].as_i64()?))
            });
            let (frames, pid, camera) = parsed.ok_or_else(|| bad(format!("bad entry {entry}")))?;
            if frames.is_empty() {
                return Err(bad(format!("a tracklet without frames: {entry}")));
            }
            let camera = i32::try_from(camera)
                .ok()
                .filter(|c| (0..=99).contains(c))
                .ok_or_else(|| bad(format!("a camera outside 0–99: {entry}")))?;
            Ok(Tracklet {
                frames,
                pid,
                camera,
            })
        })
        .collect()
}

fn cache_json(tracklets: &[Tracklet]) -> Value {
    let list: Vec<Value> = tracklets
        .iter()
        .map(|t| {
            let frames: Vec<String> = t.frames.iter().map(|f| f.display().to_string()).collect();
            json!([frames, t.pid, t.camera])
        })
        .collect();
    json!({ "tracklets": list })
}

/// DukeMTMC-VideoReID as torchreid reads it; training identities relabelled in increasing
/// order (torchreid takes a Python set's order).
pub fn duke_video(root: &Path) -> Result<VideoDataset> {
    let dir = root.join("dukemtmc-vidreid");
    let base = dir.join("DukeMTMC-VideoReID");
    let part = |name: &str, relabel: bool| -> Result<Vec<Tracklet>> {
        let cache = dir.join(format!("split_{name}.json"));
        if cache.is_file() {
            let mut tracklets = read_cache(&cache, &dir)?;
            if relabel {
                // torchreid's file holds labels already; numbering them again bounds the
                // classifier by the tracklets the file lists, whatever numbers it claims.
                let labels = ascending_labels(tracklets.iter().map(|t| t.pid));
                tracklets.iter_mut().for_each(|t| t.pid = labels[&t.pid]);
            }
            return Ok(tracklets);
        }
        let folder = base.join(name);
        if !folder.is_dir() {
            return Err(missing("DukeMTMC-VideoReID", &folder));
        }
        let tracklets = walk(&folder, relabel)?;
        save_splits(&cache, &cache_json(&tracklets));
        Ok(tracklets)
    };
    Ok(VideoDataset {
        name: "dukemtmcvidreid".into(),
        train: part("train", true)?,
        query: part("query", false)?,
        gallery: part("gallery", false)?,
    })
}
