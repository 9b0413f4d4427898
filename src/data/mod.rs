//! Datasets: readers for the standard re-id layouts ([`reid`]) and classification layouts
//! ([`classification`]), users' own folders, a synthetic generator ([`synth`]), samplers,
//! training transforms, and the deterministic random numbers they share.

pub mod augmix;
pub mod classification;
pub mod dataset;
pub mod drawing;
pub mod erase;
pub mod files;
pub mod image_ops;
pub mod randaugment;
pub mod random_figures;
pub mod random_grid;
pub mod random_patch;
pub mod reid;
pub mod rng;
pub mod sampler;
pub mod section_pipeline;
pub mod synth;
pub mod transform_sections;
pub mod transforms;
pub mod video;

pub use self::reid::{DATASETS, load_dataset, load_dataset_split};
pub use dataset::{ReidDataset, Sample, combine_train, junk_pids};
pub use synth::{SynthOptions, SynthSummary, synthesize};
