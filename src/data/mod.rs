//! Datasets: readers for the standard re-id layouts and users' own folders, a synthetic
//! dataset generator, and the deterministic random numbers they share.

pub mod augmix;
pub mod dataset;
pub mod folders;
pub mod market;
pub mod rng;
pub mod sampler;
pub mod synth;
pub mod transforms;

pub use dataset::{ReidDataset, Sample, combine_train};
pub use synth::{SynthOptions, SynthSummary, synthesize};

use std::path::Path;

use crate::error::{Error, Result};

/// Names accepted by [`load_dataset`].
pub const DATASETS: [&str; 4] = ["market1501", "dukemtmcreid", "msmt17", "folders"];

/// Reads the dataset `name` under `root` as torchreid would (`folders`: `root` is a
/// folder-per-identity dataset, see [`folders`]).
pub fn load_dataset(name: &str, root: &Path) -> Result<ReidDataset> {
    match name {
        "market1501" => market::market1501(root),
        "dukemtmcreid" => market::dukemtmc(root),
        "msmt17" => market::msmt17(root),
        "folders" => folders::identity_folders(root),
        other => Err(Error::InvalidInput(format!(
            "unknown dataset `{other}`; known: {}",
            DATASETS.join(", ")
        ))),
    }
}
