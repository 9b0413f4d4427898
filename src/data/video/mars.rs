//! MARS: `mars/bbox_{train,test}/PPPP/PPPPCcTtttFfff.jpg`, the frame lists
//! `info/{train,test}_name.txt` and the tracklet tables `info/tracks_{train,test}_info.mat`
//! (rows: first frame, last frame (1-based, inclusive), identity, camera 1–6), with
//! `info/query_IDX.mat` naming the test rows that are queries; the other test rows are the
//! gallery. Identity −1 (junk) is left out, 0 (distractors) kept, as torchreid does.

use std::path::{Path, PathBuf};

use super::{Tracklet, VideoDataset};
use crate::data::dataset::ascending_labels;
use crate::data::reid::split_file::missing;
use crate::error::{Error, Result};
use crate::formats::mat::read_mat;

/// A `rows × columns` numeric matrix of a `.mat` file, row-major.
fn matrix(path: &Path, key: &str, columns: usize) -> Result<Vec<Vec<i64>>> {
    let bad = |what: String| Error::InvalidInput(format!("{}: {what}", path.display()));
    let variables = read_mat(path)?;
    let values = variables
        .get(key)
        .and_then(|v| v.numbers())
        .ok_or_else(|| bad(format!("no numeric `{key}`")))?;
    if !values.len().is_multiple_of(columns) {
        return Err(bad(format!("`{key}` is not {columns} columns wide")));
    }
    let rows = values.len() / columns;
    // MATLAB stores columns one after another.
    Ok((0..rows)
        .map(|r| (0..columns).map(|c| values[c * rows + r] as i64).collect())
        .collect())
}

fn names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text.lines().map(|l| l.trim_end().to_string()).collect())
}

/// The tracklets of `rows` (first, last, pid, camera) over the frame `names` under `home`.
fn tracklets(
    rows: &[Vec<i64>],
    names: &[String],
    home: &Path,
    table: &Path,
) -> Result<Vec<Tracklet>> {
    let bad = |row: usize, what: &str| {
        Error::InvalidInput(format!("{}: row {}: {what}", table.display(), row + 1))
    };
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let (first, last, pid, camera) = (row[0], row[1], row[2], row[3]);
        if pid == -1 {
            continue;
        }
        if !(1..=6).contains(&camera) {
            return Err(bad(i, "the camera is not 1–6"));
        }
        let frames = first
            .checked_sub(1)
            .and_then(|f| usize::try_from(f).ok())
            .zip(usize::try_from(last).ok())
            .and_then(|(a, b)| names.get(a..b))
            .filter(|f| !f.is_empty())
            .ok_or_else(|| bad(i, "the frame range lies outside the name list"))?;
        let same = |range: std::ops::Range<usize>| {
            frames.iter().all(|f| {
                f.get(range.clone()).is_some()
                    && f.get(range.clone()) == frames[0].get(range.clone())
            })
        };
        if !same(0..4) || !same(5..6) {
            return Err(bad(i, "a tracklet mixes identities or cameras"));
        }
        let frames: Vec<PathBuf> = frames.iter().map(|f| home.join(&f[..4]).join(f)).collect();
        out.push(Tracklet {
            frames,
            pid,
            camera: camera as i32 - 1,
        });
    }
    Ok(out)
}

/// MARS as torchreid reads it; training identities relabelled in increasing order (torchreid
/// takes a Python set's order: the same identities under other labels).
pub fn mars(root: &Path) -> Result<VideoDataset> {
    let dir = root.join("mars");
    let info = dir.join("info");
    let files = [
        "train_name.txt",
        "test_name.txt",
        "tracks_train_info.mat",
        "tracks_test_info.mat",
        "query_IDX.mat",
    ]
    .map(|f| info.join(f));
    if let Some(absent) = files.iter().find(|f| !f.is_file()) {
        return Err(missing("MARS", absent));
    }
    let [train_names, test_names, train_table, test_table, query_file] = &files;
    let train_rows = matrix(train_table, "track_train_info", 4)?;
    let test_rows = matrix(test_table, "track_test_info", 4)?;
    let query_idx: Vec<usize> = read_mat(query_file)?
        .get("query_IDX")
        .and_then(|v| v.numbers())
        .map(|v| v.iter().map(|&x| x as usize).collect())
        .ok_or_else(|| {
            Error::InvalidInput(format!("{}: no numeric `query_IDX`", query_file.display()))
        })?;
    if query_idx.iter().any(|&q| q == 0 || q > test_rows.len()) {
        return Err(Error::InvalidInput(format!(
            "{}: a query index lies outside the {} test tracklets",
            query_file.display(),
            test_rows.len()
        )));
    }
    let is_query: std::collections::BTreeSet<usize> = query_idx.iter().map(|q| q - 1).collect();
    let query_rows: Vec<Vec<i64>> = query_idx.iter().map(|q| test_rows[q - 1].clone()).collect();
    let gallery_rows: Vec<Vec<i64>> = (0..test_rows.len())
        .filter(|i| !is_query.contains(i))
        .map(|i| test_rows[i].clone())
        .collect();
    let (train_names, test_names) = (names(train_names)?, names(test_names)?);
    let mut train = tracklets(
        &train_rows,
        &train_names,
        &dir.join("bbox_train"),
        train_table,
    )?;
    let labels = ascending_labels(train.iter().map(|t| t.pid));
    train.iter_mut().for_each(|t| t.pid = labels[&t.pid]);
    let test_home = dir.join("bbox_test");
    Ok(VideoDataset {
        name: "mars".into(),
        train,
        query: tracklets(&query_rows, &test_names, &test_home, test_table)?,
        gallery: tracklets(&gallery_rows, &test_names, &test_home, test_table)?,
    })
}
