//! Training (layer `train`, with `config`): numerics against PyTorch, runs end to end, classification runs.

#[path = "../common/mod.rs"]
mod common;

mod classification_runs;
mod numerics;
mod runs;
