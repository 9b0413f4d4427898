//! Extraction (layer `extractor`, with `actmap`): embeddings from image files as torchreid computes them, and activation maps.

#[path = "../common/mod.rs"]
mod common;

mod actmap;
mod runtime_loading;
mod torchreid_extraction;
