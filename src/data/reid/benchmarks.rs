//! The small classic re-id benchmarks as torchreid 0.2.5 reads them: VIPeR, CUHK01, GRID,
//! PRID2011 (single shot), iLIDS and SenseReID. Each dataset folder is the one torchreid
//! uses under the data root; random splits come from torchreid's split file when it exists
//! (so both tools evaluate the same partitions) and are otherwise drawn with torchreid's
//! rules from a fixed seed and saved in its format.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::split_file::{
    Split, file_name, files_with_extension, missing, nth_split, number_in, read_json,
    read_sample_split, sample_splits_json, save_splits,
};
use crate::data::dataset::{ReidDataset, Sample, ascending_labels};
use crate::data::rng::Rng;
use crate::error::{Error, Result};
use crate::formats::mat::{MatValue, read_mat};

/// Random partitions drawn (torchreid draws 10, each giving two splits where the cameras
/// swap roles).
const PARTITIONS: u64 = 10;
const SPLIT_SEED: u64 = 0x5350_4c49;

fn partition_rng(dataset: u64, partition: u64) -> Rng {
    Rng::derive(SPLIT_SEED, &[dataset, partition])
}

fn sample(path: PathBuf, pid: i64, camera: i64) -> Sample {
    Sample {
        path,
        pid,
        camera: camera as i32,
        dataset: 0,
    }
}

/// The two splits of a two-camera partition: camera A queried against B, then B against A.
fn both_ways(train: Vec<Sample>, a: Vec<Sample>, b: Vec<Sample>) -> [Split; 2] {
    [
        Split {
            train: train.clone(),
            query: a.clone(),
            gallery: b.clone(),
        },
        Split {
            train,
            query: b,
            gallery: a,
        },
    ]
}

/// VIPeR: `viper/VIPeR/cam_a/*.bmp` and `cam_b/*.bmp`, one image per identity and camera,
/// paired by sorted order; half the identities train; even splits query camera A against
/// camera B, odd splits the reverse.
pub fn viper(root: &Path, split_id: usize) -> Result<ReidDataset> {
    let dir = root.join("viper");
    let split_path = dir.join("splits.json");
    if !split_path.is_file() {
        let a = files_with_extension("VIPeR", &dir.join("VIPeR/cam_a"), "bmp")?;
        let b = files_with_extension("VIPeR", &dir.join("VIPeR/cam_b"), "bmp")?;
        if a.len() != b.len() {
            return Err(Error::InvalidInput(format!(
                "VIPeR: {} images in cam_a but {} in cam_b",
                a.len(),
                b.len()
            )));
        }
        let n = a.len();
        let mut splits = Vec::new();
        for partition in 0..PARTITIONS {
            let mut order: Vec<usize> = (0..n).collect();
            partition_rng(1, partition).shuffle(&mut order);
            let (train_idx, test_idx) = order.split_at(n / 2);
            let mut train = Vec::new();
            for (pid, &i) in train_idx.iter().enumerate() {
                train.push(sample(a[i].clone(), pid as i64, 0));
                train.push(sample(b[i].clone(), pid as i64, 1));
            }
            let view = |files: &[PathBuf], camera| -> Vec<Sample> {
                test_idx
                    .iter()
                    .enumerate()
                    .map(|(pid, &i)| sample(files[i].clone(), pid as i64, camera))
                    .collect()
            };
            splits.extend(both_ways(train, view(&a, 0), view(&b, 1)));
        }
        save_splits(&split_path, &sample_splits_json(&splits));
    }
    Ok(read_sample_split(&split_path, split_id, &dir, &["VIPeR"])?.into_dataset("viper"))
}

/// CUHK01: `cuhk01/campus/PPPPCCC.png` (identity from 1, cameras 1–4; cameras 1 and 2 are one
/// view, 3 and 4 the other); half the identities train.
pub fn cuhk01(root: &Path, split_id: usize) -> Result<ReidDataset> {
    let dir = root.join("cuhk01");
    let split_path = dir.join("splits.json");
    if !split_path.is_file() {
        let files = files_with_extension("CUHK01", &dir.join("campus"), "png")?;
        let mut images = Vec::new();
        for file in files {
            let name = file_name(&file);
            let pid = number_in(name, 0..4, &file)? - 1;
            let camera = (number_in(name, 4..7, &file)? - 1) / 2;
            images.push((file, pid, camera));
        }
        let n = images.iter().map(|i| i.1).collect::<BTreeSet<_>>().len();
        let mut splits = Vec::new();
        for partition in 0..PARTITIONS {
            let mut order: Vec<i64> = (0..n as i64).collect();
            partition_rng(2, partition).shuffle(&mut order);
            let mut train_ids = order[..n / 2].to_vec();
            train_ids.sort();
            let label: BTreeMap<i64, i64> =
                train_ids.iter().zip(0..).map(|(&p, l)| (p, l)).collect();
            let (mut train, mut test_a, mut test_b) = (vec![], vec![], vec![]);
            for (file, pid, camera) in &images {
                let s = sample(file.clone(), *pid, *camera);
                match label.get(pid) {
                    Some(&l) => train.push(Sample { pid: l, ..s }),
                    None if *camera == 0 => test_a.push(s),
                    None => test_b.push(s),
                }
            }
            splits.extend(both_ways(train, test_a, test_b));
        }
        save_splits(&split_path, &sample_splits_json(&splits));
    }
    Ok(read_sample_split(&split_path, split_id, &dir, &["campus"])?.into_dataset("cuhk01"))
}

/// The training indices of GRID's partitions: `trainIdxAll`, a 1×10 cell of structs whose
/// third field lists 125 indices.
fn grid_partitions(mat: &Path) -> Result<Vec<Vec<i64>>> {
    let bad = |what: &str| Error::InvalidInput(format!("{}: {what}", mat.display()));
    let variables = read_mat(mat)?;
    let cells = variables
        .get("trainIdxAll")
        .and_then(MatValue::cells)
        .ok_or_else(|| bad("no trainIdxAll cell array"))?;
    cells
        .iter()
        .map(|cell| match cell {
            MatValue::Struct { items, .. } => items
                .first()
                .and_then(|fields| fields.get(2))
                .and_then(MatValue::numbers)
                .map(|v| v.iter().map(|&x| x as i64).collect())
                .ok_or_else(|| bad("a partition has no index list")),
            _ => Err(bad("trainIdxAll holds something other than structs")),
        })
        .collect()
}

/// GRID: `grid/underground_reid/{probe,gallery}/IIII_C_….jpeg` (index 0: gallery-only
/// distractors) and the ten fixed partitions of `features_and_partitions.mat`.
pub fn grid(root: &Path, split_id: usize) -> Result<ReidDataset> {
    let dir = root.join("grid");
    let base = dir.join("underground_reid");
    let split_path = dir.join("splits.json");
    if !split_path.is_file() {
        let mat = base.join("features_and_partitions.mat");
        if !mat.is_file() {
            return Err(missing("GRID", &mat));
        }
        let probe = files_with_extension("GRID", &base.join("probe"), "jpeg")?;
        let gallery = files_with_extension("GRID", &base.join("gallery"), "jpeg")?;
        let parse = |file: &PathBuf| -> Result<(i64, i64)> {
            let parts: Vec<&str> = file_name(file).split('_').collect();
            let number = |i: usize| parts.get(i).and_then(|s| s.parse::<i64>().ok());
            match (number(0), number(1)) {
                (Some(index), Some(camera)) if camera >= 1 => Ok((index, camera - 1)),
                _ => Err(Error::InvalidInput(format!(
                    "{}: not a GRID image name",
                    file.display()
                ))),
            }
        };
        let mut splits = Vec::new();
        for train_idx in grid_partitions(&mat)? {
            let label: BTreeMap<i64, i64> =
                train_idx.iter().zip(0..).map(|(&i, l)| (i, l)).collect();
            let mut split = Split::default();
            for (files, is_probe) in [(&probe, true), (&gallery, false)] {
                for file in files {
                    let (index, camera) = parse(file)?;
                    match label.get(&index) {
                        Some(&l) => split.train.push(sample(file.clone(), l, camera)),
                        None if is_probe => split.query.push(sample(file.clone(), index, camera)),
                        None => split.gallery.push(sample(file.clone(), index, camera)),
                    }
                }
            }
            splits.push(split);
        }
        save_splits(&split_path, &sample_splits_json(&splits));
    }
    Ok(read_sample_split(&split_path, split_id, &dir, &["underground_reid"])?.into_dataset("grid"))
}

/// PRID2011, single shot: `prid2011/prid_2011/single_shot/cam_{a,b}/person_NNNN.png`; 100 of
/// the 200 identities seen by both cameras train, the other 100 are queried from camera A
/// against camera B, whose identities 201–749 join the gallery.
pub fn prid(root: &Path, split_id: usize) -> Result<ReidDataset> {
    let dir = root.join("prid2011");
    let cams = dir.join("prid_2011/single_shot");
    for cam in ["cam_a", "cam_b"] {
        if !cams.join(cam).is_dir() {
            return Err(missing("PRID2011", &cams.join(cam)));
        }
    }
    let split_path = dir.join("splits_single_shot.json");
    if !split_path.is_file() {
        let splits: Vec<Value> = (0..PARTITIONS)
            .map(|partition| {
                let mut ids: Vec<i64> = (1..=200).collect();
                partition_rng(4, partition).shuffle(&mut ids);
                let mut train = ids[..100].to_vec();
                train.sort();
                let test: Vec<i64> = (1..=200).filter(|p| !train.contains(p)).collect();
                json!({"train": train, "test": test})
            })
            .collect();
        save_splits(&split_path, &Value::Array(splits));
    }
    let split = nth_split(&read_json(&split_path)?, split_id, &split_path)?;
    let ids = |key: &str| -> Result<Vec<i64>> {
        split[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .ok_or_else(|| {
                Error::InvalidInput(format!("{}: no `{key}` list", split_path.display()))
            })
    };
    let image = |cam: &str, pid: i64| cams.join(cam).join(format!("person_{pid:04}.png"));
    let mut out = Split::default();
    for (label, pid) in ids("train")?.into_iter().enumerate() {
        out.train.push(sample(image("cam_a", pid), label as i64, 0));
        out.train.push(sample(image("cam_b", pid), label as i64, 1));
    }
    for pid in ids("test")? {
        out.query.push(sample(image("cam_a", pid), pid, 0));
        out.gallery.push(sample(image("cam_b", pid), pid, 1));
    }
    for pid in 201..750 {
        out.gallery.push(sample(image("cam_b", pid), pid, 1));
    }
    Ok(out.into_dataset("prid"))
}

/// iLIDS: `ilids/i-LIDS_Pedestrian/Persons/PPPPCCC.jpg`; half the identities train, each other
/// identity gives one query and one gallery image.
pub fn ilids(root: &Path, split_id: usize) -> Result<ReidDataset> {
    let dir = root.join("ilids");
    let persons = dir.join("i-LIDS_Pedestrian/Persons");
    let split_path = dir.join("splits.json");
    if !split_path.is_file() {
        let files = files_with_extension("iLIDS", &persons, "jpg")?;
        let mut by_pid: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for file in &files {
            let pid = number_in(file_name(file), 0..4, file)?;
            by_pid
                .entry(pid)
                .or_default()
                .push(file_name(file).to_string());
        }
        let pids: Vec<i64> = by_pid.keys().copied().collect();
        let splits: Vec<Value> = (0..PARTITIONS)
            .map(|partition| {
                let mut rng = partition_rng(5, partition);
                let mut shuffled = pids.clone();
                rng.shuffle(&mut shuffled);
                let (train_ids, test_ids) = shuffled.split_at(pids.len() / 2);
                let train: Vec<&String> = train_ids.iter().flat_map(|p| &by_pid[p]).collect();
                let (mut query, mut gallery) = (vec![], vec![]);
                for p in test_ids {
                    let mut names = by_pid[p].clone();
                    rng.shuffle(&mut names);
                    if names.len() >= 2 {
                        query.push(names[0].clone());
                        gallery.push(names[1].clone());
                    }
                }
                json!({"train": train, "query": query, "gallery": gallery})
            })
            .collect();
        save_splits(&split_path, &Value::Array(splits));
    }
    let split = nth_split(&read_json(&split_path)?, split_id, &split_path)?;
    let parse = |key: &str| -> Result<Vec<Sample>> {
        let names = split[key].as_array().ok_or_else(|| {
            Error::InvalidInput(format!("{}: no `{key}` list", split_path.display()))
        })?;
        names
            .iter()
            .map(|n| {
                let name = n.as_str().unwrap_or("");
                let file = persons.join(name);
                let pid = number_in(name, 0..4, &file)?;
                let camera = number_in(name, 4..7, &file)? - 1;
                Ok(sample(file, pid, camera))
            })
            .collect()
    };
    let mut dataset = ReidDataset {
        name: "ilids".into(),
        train: parse("train")?,
        query: parse("query")?,
        gallery: parse("gallery")?,
    };
    dataset.relabel_train();
    Ok(dataset)
}

/// SenseReID (test only): `sensereid/SenseReID/test_{probe,gallery}/PID_CAM.jpg`, identities
/// relabelled in increasing order of the gallery's; the training list is the test images
/// (torchreid's placeholder: SenseReID is for cross-domain evaluation).
pub fn sensereid(root: &Path) -> Result<ReidDataset> {
    let base = root.join("sensereid/SenseReID");
    let read = |folder: &str| -> Result<Vec<Sample>> {
        files_with_extension("SenseReID", &base.join(folder), "jpg")?
            .into_iter()
            .map(|file| {
                let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                let parsed = stem
                    .split_once('_')
                    .and_then(|(p, c)| Some((p.parse::<i64>().ok()?, c.parse::<i64>().ok()?)));
                let (pid, camera) = parsed.ok_or_else(|| {
                    Error::InvalidInput(format!("{}: not a SenseReID image name", file.display()))
                })?;
                Ok(sample(file, pid, camera))
            })
            .collect()
    };
    let (mut query, mut gallery) = (read("test_probe")?, read("test_gallery")?);
    let labels = ascending_labels(gallery.iter().map(|s| s.pid));
    for s in query.iter_mut().chain(gallery.iter_mut()) {
        s.pid = *labels.get(&s.pid).ok_or_else(|| {
            Error::InvalidInput(format!(
                "{}: identity {} is not in the gallery",
                s.path.display(),
                s.pid
            ))
        })?;
    }
    let train = query.iter().chain(&gallery).cloned().collect();
    Ok(ReidDataset {
        name: "sensereid".into(),
        train,
        query,
        gallery,
    })
}
