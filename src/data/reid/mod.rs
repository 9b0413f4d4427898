//! Readers of the re-id benchmark layouts as torchreid reads them (Market-1501, DukeMTMC-reID,
//! MSMT17, CUHK03, VIPeR, GRID, CUHK01, PRID, iLIDS, SenseReID) and of users' folder-per-identity
//! datasets.

pub mod benchmarks;
pub mod cuhk03;
pub mod cuhk03_release;
pub mod folders;
pub mod market;
pub mod split_file;

use std::path::Path;

use crate::data::ReidDataset;
use crate::error::{Error, Result};

/// Names accepted by [`load_dataset`] (torchreid's, plus the CUHK03 variants and `folders`).
pub const DATASETS: [&str; 14] = [
    "market1501",
    "dukemtmcreid",
    "msmt17",
    "cuhk03",
    "cuhk03_labeled",
    "cuhk03_classic",
    "cuhk03_labeled_classic",
    "viper",
    "grid",
    "cuhk01",
    "prid",
    "ilids",
    "sensereid",
    "folders",
];

/// Reads the dataset `name` under `root` as torchreid would (`folders`: `root` is a
/// folder-per-identity dataset, see [`folders`]); split 0 of the datasets with several.
pub fn load_dataset(name: &str, root: &Path) -> Result<ReidDataset> {
    load_dataset_split(name, root, 0)
}

/// Reads split `split_id` of the dataset `name` (torchreid's `split_id`: VIPeR, GRID, CUHK01,
/// PRID, iLIDS and CUHK03's classic protocol have several; the others only split 0).
pub fn load_dataset_split(name: &str, root: &Path, split_id: usize) -> Result<ReidDataset> {
    let single = |dataset: Result<ReidDataset>| {
        if split_id == 0 {
            dataset
        } else {
            Err(Error::InvalidInput(format!(
                "{name} has one split; split_id {split_id} does not exist"
            )))
        }
    };
    let cuhk03 = |labeled, classic| {
        cuhk03::cuhk03(root, cuhk03::Cuhk03Variant { labeled, classic }, split_id)
    };
    match name {
        "market1501" => single(market::market1501(root)),
        "dukemtmcreid" => single(market::dukemtmc(root)),
        "msmt17" => single(market::msmt17(root)),
        "folders" => single(folders::identity_folders(root)),
        "sensereid" => single(benchmarks::sensereid(root)),
        "cuhk03" => cuhk03(false, false),
        "cuhk03_labeled" => cuhk03(true, false),
        "cuhk03_classic" => cuhk03(false, true),
        "cuhk03_labeled_classic" => cuhk03(true, true),
        "viper" => benchmarks::viper(root, split_id),
        "grid" => benchmarks::grid(root, split_id),
        "cuhk01" => benchmarks::cuhk01(root, split_id),
        "prid" => benchmarks::prid(root, split_id),
        "ilids" => benchmarks::ilids(root, split_id),
        other => Err(Error::InvalidInput(format!(
            "unknown dataset `{other}`; known: {}",
            DATASETS.join(", ")
        ))),
    }
}
