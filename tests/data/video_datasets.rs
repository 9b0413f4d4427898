//! The video datasets (MARS, iLIDS-VID, PRID2011, DukeMTMC-VideoReID) against torchreid 0.2.5's
//! own readers on fake copies of their layouts (`tests/fixtures/make_video_dataset_fixtures.py`):
//! the same tracklets — frames, identities, cameras — in every split; training identities may
//! carry other labels (torchreid numbers them in a Python set's order), one for one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reid::data::video::{Tracklet, VIDEO_DATASETS, load_video_dataset};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/video_datasets")
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Files torchreid writes itself on first use (reid writes its own when they are missing).
const WRITTEN: [&str; 4] = [
    "ilids-vid/splits.json",
    "dukemtmc-vidreid/split_train.json",
    "dukemtmc-vidreid/split_query.json",
    "dukemtmc-vidreid/split_gallery.json",
];

/// The fake layout under a new root: empty frames, the datasets' own files, and — with
/// `torchreids_files` — the split files torchreid wrote.
fn layout(torchreids_files: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let layout = read(&fixtures().join("layout.json"));
    for frame in layout["frames"].as_array().unwrap() {
        let path = dir.path().join(frame.as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }
    for file in layout["files"].as_array().unwrap() {
        let rel = file.as_str().unwrap();
        if !torchreids_files && WRITTEN.contains(&rel) {
            continue;
        }
        let dest = dir.path().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(fixtures().join("files").join(rel), dest).unwrap();
    }
    dir
}

/// (sorted frames relative to `root`, pid, camera) per tracklet.
fn ours(tracklets: &[Tracklet], root: &Path) -> Vec<(Vec<String>, i64, i64)> {
    tracklets
        .iter()
        .map(|t| {
            let frames = t
                .frames
                .iter()
                .map(|f| f.strip_prefix(root).unwrap().display().to_string())
                .collect();
            (frames, t.pid, t.camera as i64)
        })
        .collect()
}

fn theirs(list: &Value) -> Vec<(Vec<String>, i64, i64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut frames: Vec<String> = t[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            frames.sort();
            (frames, t[1].as_i64().unwrap(), t[2].as_i64().unwrap())
        })
        .collect()
}

/// Equal lists of tracklets; with `relabelled`, pids equal up to a one-to-one renaming.
fn same(
    name: &str,
    mut a: Vec<(Vec<String>, i64, i64)>,
    mut b: Vec<(Vec<String>, i64, i64)>,
    relabelled: bool,
) {
    assert_eq!(a.len(), b.len(), "{name}: tracklet count");
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    let mut forward = BTreeMap::new();
    let mut backward = BTreeMap::new();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, x.2), (&y.0, y.2), "{name}: frames or camera");
        if relabelled {
            assert_eq!(
                *forward.entry(x.1).or_insert(y.1),
                y.1,
                "{name}: pid {}",
                x.1
            );
            assert_eq!(
                *backward.entry(y.1).or_insert(x.1),
                x.1,
                "{name}: pid {}",
                y.1
            );
        } else {
            assert_eq!(x.1, y.1, "{name}: pid");
        }
    }
}

#[test]
fn video_datasets_match_torchreids_readers() {
    let expected = read(&fixtures().join("expected.json"));
    for torchreids_files in [false, true] {
        let root = layout(torchreids_files);
        for (key, splits) in expected.as_object().unwrap() {
            let (name, split) = key.split_once('/').unwrap();
            let ds = load_video_dataset(name, root.path(), split.parse().unwrap())
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            let case = format!("{key} (torchreid's split files: {torchreids_files})");
            same(
                &format!("{case} train"),
                ours(&ds.train, root.path()),
                theirs(&splits["train"]),
                true,
            );
            same(
                &format!("{case} query"),
                ours(&ds.query, root.path()),
                theirs(&splits["query"]),
                false,
            );
            same(
                &format!("{case} gallery"),
                ours(&ds.gallery, root.path()),
                theirs(&splits["gallery"]),
                false,
            );
            // Training labels run from 0, one per identity.
            let n = ds.num_train_pids() as i64;
            assert!(ds.train.iter().all(|t| (0..n).contains(&t.pid)), "{case}");
            // Frames are in temporal (file-name) order.
            for t in ds.train.iter().chain(&ds.query).chain(&ds.gallery) {
                assert!(t.frames.windows(2).all(|w| w[0] < w[1]), "{case}");
            }
        }
        if !torchreids_files {
            // The iLIDS-VID partitions reid wrote from the .mat are torchreid's, folder for folder.
            assert_eq!(
                read(&root.path().join("ilids-vid/splits.json")),
                read(&fixtures().join("files/ilids-vid/splits.json"))
            );
        }
    }
    assert_eq!(VIDEO_DATASETS.len(), 4);
}

#[test]
fn missing_or_broken_video_layouts_are_errors_that_name_the_path() {
    let root = tempfile::tempdir().unwrap();
    for name in VIDEO_DATASETS {
        let err = load_video_dataset(name, root.path(), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains(root.path().to_str().unwrap()), "{name}: {err}");
    }
    let root = layout(true);
    let err = load_video_dataset("prid2011", root.path(), 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("split_id 10"), "{err}");
    assert!(load_video_dataset("mars", root.path(), 1).is_err());
    assert!(load_video_dataset("mars2", root.path(), 0).is_err());
    // A MARS table row pointing past the frame list.
    let names = root.path().join("mars/info/train_name.txt");
    std::fs::write(&names, "0005C1T0001F001.jpg\n").unwrap();
    let err = load_video_dataset("mars", root.path(), 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tracks_train_info.mat"), "{err}");
}

/// A DukeMTMC-VideoReID split cache that claims absurd identities or cameras: the training
/// labels are numbered from 0 again (the classifier stays as large as the tracklets), and a
/// camera outside 0–99 is refused.
#[test]
fn hostile_duke_caches_are_bounded_or_refused() {
    let root = layout(true);
    let cache = root.path().join("dukemtmc-vidreid/split_train.json");
    let mut value = read(&cache);
    for (k, t) in value["tracklets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        t[1] = serde_json::json!(i64::MAX - k as i64);
    }
    std::fs::write(&cache, value.to_string()).unwrap();
    let ds = load_video_dataset("dukemtmcvidreid", root.path(), 0).unwrap();
    assert!(ds.train.iter().all(|t| (t.pid as usize) < ds.train.len()));
    value["tracklets"][0][2] = serde_json::json!(1i64 << 40);
    std::fs::write(&cache, value.to_string()).unwrap();
    let err = load_video_dataset("dukemtmcvidreid", root.path(), 0).unwrap_err();
    assert!(err.to_string().contains("camera"), "{err}");
}
