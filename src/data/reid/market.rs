//! Readers for the folder layouts of Market-1501, DukeMTMC-reID and MSMT17, with torchreid's
//! rules: file names `PID_cCAM…` (Market, Duke), list files (MSMT17), pid −1 is junk and
//! dropped, cameras counted from 0, training identities relabelled.

use std::path::{Path, PathBuf};

use crate::data::dataset::{ReidDataset, Sample};
use crate::data::files::image_files;
use crate::error::{Error, Result};

/// `PID` and camera of a Market-1501 / DukeMTMC-reID file name (`0002_c1s1_000451_03.jpg`,
/// `-1_c3s1_…`): the pattern `([-\d]+)_c(\d)` of torchreid, camera counted from 1 in the name.
pub fn parse_market_name(name: &str) -> Option<(i64, i32)> {
    let (pid, rest) = name.split_once('_')?;
    let pid: i64 = pid.parse().ok()?;
    let camera = rest.strip_prefix('c')?.chars().next()?.to_digit(10)? as i32;
    Some((pid, camera))
}

/// Reads one split folder of the Market layout; junk (pid −1) is left out.
fn read_split(dir: &Path) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for path in image_files(dir)? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some((pid, camera)) = parse_market_name(name) else {
            return Err(Error::InvalidInput(format!(
                "{}: not a PID_cCAM… image name",
                path.display()
            )));
        };
        if pid == -1 {
            continue;
        }
        if camera < 1 {
            return Err(Error::InvalidInput(format!(
                "{}: cameras are numbered from 1",
                path.display()
            )));
        }
        samples.push(Sample {
            path,
            pid,
            camera: camera - 1,
            dataset: 0,
        });
    }
    Ok(samples)
}

/// The first of `candidates` that holds `marker`, or an error naming them all.
pub(crate) fn locate(name: &str, candidates: &[PathBuf], marker: &str) -> Result<PathBuf> {
    candidates
        .iter()
        .find(|dir| dir.join(marker).exists())
        .cloned()
        .ok_or_else(|| {
            let tried: Vec<String> = candidates
                .iter()
                .map(|c| c.join(marker).display().to_string())
                .collect();
            Error::InvalidInput(format!(
                "{name} not found: expected {} (real datasets cannot be downloaded here; \
                 `reid synth DIR` writes a synthetic one)",
                tried.join(" or ")
            ))
        })
}

/// Reads a folder with `bounding_box_train/`, `query/` and `bounding_box_test/`.
pub fn read_market_layout(name: &str, dir: &Path) -> Result<ReidDataset> {
    let mut dataset = ReidDataset {
        name: name.to_string(),
        train: read_split(&dir.join("bounding_box_train"))?,
        query: read_split(&dir.join("query"))?,
        gallery: read_split(&dir.join("bounding_box_test"))?,
    };
    dataset.relabel_train();
    Ok(dataset)
}

/// Market-1501 under `root`: `root/market1501/Market-1501-v15.09.15/`, `root/market1501/`, or
/// `root` itself (what `reid synth` writes).
pub fn market1501(root: &Path) -> Result<ReidDataset> {
    let base = root.join("market1501");
    let dir = locate(
        "Market-1501",
        &[base.join("Market-1501-v15.09.15"), base, root.to_path_buf()],
        "bounding_box_train",
    )?;
    read_market_layout("market1501", &dir)
}

/// DukeMTMC-reID under `root`: `root/dukemtmc-reid/DukeMTMC-reID/` (or the folder itself).
pub fn dukemtmc(root: &Path) -> Result<ReidDataset> {
    let base = root.join("dukemtmc-reid");
    let dir = locate(
        "DukeMTMC-reID",
        &[base.join("DukeMTMC-reID"), base, root.to_path_buf()],
        "bounding_box_train",
    )?;
    read_market_layout("dukemtmcreid", &dir)
}

/// Reads an MSMT17 list file: lines `relative/path.jpg PID`; the camera is the third
/// `_`-separated field of the file name, counted from 1.
fn read_msmt_list(images: &Path, list: &Path) -> Result<Vec<Sample>> {
    let text = std::fs::read_to_string(list).map_err(|e| Error::io(list, e))?;
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || Error::InvalidInput(format!("{}:{}: `{line}`", list.display(), n + 1));
        let (rel, pid) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let pid: i64 = pid.trim().parse().map_err(|_| bad())?;
        let name = Path::new(rel)
            .file_name()
            .and_then(|f| f.to_str())
            .ok_or_else(bad)?;
        let camera: i32 = name
            .split('_')
            .nth(2)
            .and_then(|c| c.parse().ok())
            .ok_or_else(bad)?;
        samples.push(Sample {
            path: images.join(rel),
            pid,
            camera: camera - 1,
            dataset: 0,
        });
    }
    Ok(samples)
}

/// MSMT17 (V1 or V2) under `root/msmt17/`: train + val lists for training (as torchreid
/// combines them), query and gallery lists for testing.
pub fn msmt17(root: &Path) -> Result<ReidDataset> {
    let base = root.join("msmt17");
    let versions = [
        ("MSMT17_V1", "train", "test"),
        ("MSMT17_V2", "mask_train_v2", "mask_test_v2"),
    ];
    let candidates: Vec<PathBuf> = versions.iter().map(|(v, _, _)| base.join(v)).collect();
    let dir = locate("MSMT17", &candidates, "list_train.txt")?;
    let (_, train_dir, test_dir) = versions
        .iter()
        .find(|(v, _, _)| dir.ends_with(v))
        .expect("one of the versions");
    let mut train = read_msmt_list(&dir.join(train_dir), &dir.join("list_train.txt"))?;
    train.extend(read_msmt_list(
        &dir.join(train_dir),
        &dir.join("list_val.txt"),
    )?);
    let mut dataset = ReidDataset {
        name: "msmt17".into(),
        train,
        query: read_msmt_list(&dir.join(test_dir), &dir.join("list_query.txt"))?,
        gallery: read_msmt_list(&dir.join(test_dir), &dir.join("list_gallery.txt"))?,
    };
    dataset.relabel_train();
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn market_names_parse_as_torchreid_reads_them() {
        assert_eq!(parse_market_name("0002_c1s1_000451_03.jpg"), Some((2, 1)));
        assert_eq!(parse_market_name("-1_c3s2_000101_01.jpg"), Some((-1, 3)));
        assert_eq!(parse_market_name("0000_c6s4_002427_02.jpg"), Some((0, 6)));
        assert_eq!(parse_market_name("0005_c2_f0046985.jpg"), Some((5, 2)));
        assert_eq!(parse_market_name("Thumbs.db"), None);
        assert_eq!(parse_market_name("abc_c1.jpg"), None);
    }
}
