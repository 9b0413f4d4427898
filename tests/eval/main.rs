//! Evaluation (layer `eval`): re-id and classification metrics against torchreid and scikit-learn, ranked-results pictures.

#[path = "../common/mod.rs"]
mod common;

mod classification_metrics;
mod ranked_pictures;
mod reid_parity;
