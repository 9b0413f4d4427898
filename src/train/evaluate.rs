//! Re-id evaluation of a model on a dataset's query and gallery (Market-1501 protocol).

use burn::tensor::Device;

use super::loader::embed_samples;
use crate::data::{ReidDataset, Sample};
use crate::error::Result;
use crate::eval::{Labels, Matrix, Metric, RankMetrics, distance_matrix, evaluate_market1501};
use crate::models::ReidModel;
use crate::preprocess::Preprocessing;

fn labels(samples: &[Sample]) -> (Vec<i64>, Vec<i64>) {
    (
        samples.iter().map(|s| s.pid).collect(),
        samples.iter().map(|s| s.camera as i64).collect(),
    )
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
    let dim = model.feature_dim();
    let embed = |s: &[Sample]| -> Result<Matrix> {
        Matrix::new(
            s.len(),
            dim,
            embed_samples(model, s, preprocessing, batch_size, device)?,
        )
    };
    let distances = distance_matrix(&embed(&dataset.query)?, &embed(&dataset.gallery)?, metric)?;
    let (query_ids, query_cams) = labels(&dataset.query);
    let (gallery_ids, gallery_cams) = labels(&dataset.gallery);
    evaluate_market1501(
        &distances,
        Labels {
            query_ids: &query_ids,
            gallery_ids: &gallery_ids,
            query_cams: &query_cams,
            gallery_cams: &gallery_cams,
        },
        20,
    )
}
