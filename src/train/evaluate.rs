//! Re-id evaluation of a model on a dataset's query and gallery (Market-1501 protocol).

use burn::tensor::Device;

use super::loader::embed_samples;
use crate::data::{ReidDataset, Sample};
use crate::error::Result;
use crate::eval::{EvalOptions, Labels, Matrix, Metric, RankMetrics, evaluate_with_distances};
use crate::models::ReidModel;
use crate::preprocess::Preprocessing;

fn labels(samples: &[Sample]) -> (Vec<i64>, Vec<i64>) {
    (
        samples.iter().map(|s| s.pid).collect(),
        samples.iter().map(|s| s.camera as i64).collect(),
    )
}

/// Query and gallery embeddings of `dataset` by `model` (in inference mode).
pub fn embed_dataset(
    model: &ReidModel,
    dataset: &ReidDataset,
    preprocessing: &Preprocessing,
    batch_size: usize,
    device: &Device,
) -> Result<(Matrix, Matrix)> {
    let dim = model.feature_dim();
    let embed = |s: &[Sample]| -> Result<Matrix> {
        Matrix::new(
            s.len(),
            dim,
            embed_samples(model, s, preprocessing, batch_size, device)?,
        )
    };
    Ok((embed(&dataset.query)?, embed(&dataset.gallery)?))
}

/// CMC / mAP / mINP of `model` (in inference mode) on `dataset`'s query against its gallery.
pub fn evaluate_dataset(
    model: &ReidModel,
    dataset: &ReidDataset,
    preprocessing: &Preprocessing,
    metric: Metric,
    batch_size: usize,
    device: &Device,
) -> Result<RankMetrics> {
    let (queries, gallery) = embed_dataset(model, dataset, preprocessing, batch_size, device)?;
    let options = EvalOptions {
        metric,
        ..Default::default()
    };
    Ok(score_dataset(dataset, &queries, &gallery, options)?.0)
}

/// Scores embeddings of `dataset` with `options` (re-ranking, CUHK03 protocol); returns the
/// metrics and the distances scored.
pub fn score_dataset(
    dataset: &ReidDataset,
    queries: &Matrix,
    gallery: &Matrix,
    options: EvalOptions,
) -> Result<(RankMetrics, Matrix)> {
    let (query_ids, query_cams) = labels(&dataset.query);
    let (gallery_ids, gallery_cams) = labels(&dataset.gallery);
    let labels = Labels {
        query_ids: &query_ids,
        gallery_ids: &gallery_ids,
        query_cams: &query_cams,
        gallery_cams: &gallery_cams,
    };
    evaluate_with_distances(queries, gallery, labels, options)
}
