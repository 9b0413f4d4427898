//! The two-camera sequence datasets: iLIDS-VID (`ilids-vid/i-LIDS-VID/sequences/cam{1,2}/
//! personNNN/*.png`, partitions from `train-test people splits/train_test_splits_ilidsvid.mat`)
//! and PRID2011 (`prid2011/prid_2011/multi_shot/cam_{a,b}/person_NNNN/*.png`, partitions from
//! `splits_prid2011.json`). Each identity has one tracklet per camera; half the identities
//! train (both cameras), the other half are queried from the first camera against the second.

use std::path::Path;

use serde_json::{Value, json};

use super::{Tracklet, VideoDataset, folders_in, frames_in};
use crate::data::reid::split_file::{missing, nth_split, read_json, save_splits};
use crate::error::{Error, Result};
use crate::formats::mat::read_mat;

/// The tracklets of `persons` (folder names): camera 0 from `cam_a`, camera 1 from `cam_b`,
/// identities numbered by position in `persons`.
fn tracklets(persons: &[String], cams: [Option<&Path>; 2]) -> Result<Vec<Tracklet>> {
    let mut out = Vec::new();
    for (pid, person) in persons.iter().enumerate() {
        for (camera, dir) in cams.iter().enumerate() {
            if let Some(dir) = dir {
                out.push(Tracklet {
                    frames: frames_in(&dir.join(person), "png")?,
                    pid: pid as i64,
                    camera: camera as i32,
                });
            }
        }
    }
    Ok(out)
}

fn from_split(name: &str, split: &Value, path: &Path, cams: [&Path; 2]) -> Result<VideoDataset> {
    let list = |key: &str| -> Result<Vec<String>> {
        split[key]
            .as_array()
            .and_then(|a| a.iter().map(|v| v.as_str().map(String::from)).collect())
            .ok_or_else(|| {
                Error::InvalidInput(format!("{}: no `{key}` list of folders", path.display()))
            })
    };
    let (train, test) = (list("train")?, list("test")?);
    Ok(VideoDataset {
        name: name.into(),
        train: tracklets(&train, [Some(cams[0]), Some(cams[1])])?,
        query: tracklets(&test, [Some(cams[0]), None])?,
        gallery: tracklets(&test, [None, Some(cams[1])])?,
    })
}

/// iLIDS-VID; `splits.json` is written from the `.mat` partitions on first use (the first
/// half of each row of `ls_set` tests, the rest trains, as torchreid does).
pub fn ilids_vid(root: &Path, split_id: usize) -> Result<VideoDataset> {
    let dir = root.join("ilids-vid");
    let sequences = dir.join("i-LIDS-VID/sequences");
    let (cam1, cam2) = (sequences.join("cam1"), sequences.join("cam2"));
    for cam in [&cam1, &cam2] {
        if !cam.is_dir() {
            return Err(missing("iLIDS-VID", cam));
        }
    }
    let split_path = dir.join("splits.json");
    if !split_path.is_file() {
        let mat = dir.join("train-test people splits/train_test_splits_ilidsvid.mat");
        if !mat.is_file() {
            return Err(missing("iLIDS-VID", &mat));
        }
        let bad = |what: &str| Error::InvalidInput(format!("{}: {what}", mat.display()));
        let values = read_mat(&mat)?
            .get("ls_set")
            .and_then(|v| v.numbers().map(|n| n.into_owned()))
            .ok_or_else(|| bad("no numeric ls_set"))?;
        let persons: Vec<String> = folders_in(&cam1)?
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(String::from))
            .collect();
        let other: Vec<String> = folders_in(&cam2)?
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(String::from))
            .collect();
        if persons != other || persons.is_empty() || values.len() % persons.len() != 0 {
            return Err(bad(
                "the partitions do not fit the persons of cam1 and cam2",
            ));
        }
        // ls_set is splits × persons, column-major; its entries index the sorted cam1 folders.
        let ids = persons.len();
        let splits = values.len() / ids;
        let half = ids / 2;
        let row = |s: usize, range: std::ops::Range<usize>| -> Result<Vec<String>> {
            let mut idx: Vec<usize> = range.map(|c| values[c * splits + s] as usize).collect();
            idx.sort_unstable();
            idx.iter()
                .map(|&i| {
                    persons
                        .get(i.wrapping_sub(1))
                        .cloned()
                        .ok_or_else(|| bad("an index past the persons"))
                })
                .collect()
        };
        let all: Vec<Value> = (0..splits)
            .map(|s| Ok(json!({"train": row(s, half..ids)?, "test": row(s, 0..half)?})))
            .collect::<Result<_>>()?;
        save_splits(&split_path, &Value::Array(all));
    }
    let split = nth_split(&read_json(&split_path)?, split_id, &split_path)?;
    from_split("ilidsvid", &split, &split_path, [&cam1, &cam2])
}

/// PRID2011 (multi-shot); its `splits_prid2011.json` comes with the dataset's torchreid
/// instructions and must be there.
pub fn prid2011(root: &Path, split_id: usize) -> Result<VideoDataset> {
    let dir = root.join("prid2011");
    let shots = dir.join("prid_2011/multi_shot");
    let (cam_a, cam_b) = (shots.join("cam_a"), shots.join("cam_b"));
    let split_path = dir.join("splits_prid2011.json");
    for needed in [&cam_a, &cam_b, &split_path] {
        if !needed.exists() {
            return Err(missing("PRID2011", needed));
        }
    }
    let split = nth_split(&read_json(&split_path)?, split_id, &split_path)?;
    from_split("prid2011", &split, &split_path, [&cam_a, &cam_b])
}
