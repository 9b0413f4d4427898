//! Datasets (layer `data`): the synthetic generator and the readers of the re-id and classification layouts.

#[path = "../common/mod.rs"]
mod common;

mod classification_datasets;
mod cutout_prior;
mod grid_figures;
mod random_patch;
mod reid_datasets;
mod transform_sections;
mod video_datasets;
