//! Evaluation: distance matrices, the Market-1501 rank metrics (CMC, mAP, mINP) and
//! k-reciprocal re-ranking, with torchreid's definitions; ranked-results pictures;
//! classification, multilabel and face-verification metrics.

pub mod classification;
pub mod cuhk03;
pub mod features;

pub mod rank;
pub mod rerank;
pub mod verification;
pub mod visualize;

pub use crate::distance::{Matrix, Metric, distance_matrix};
pub use classification::{
    MultilabelScores, confusion_matrix, mean_class_accuracy, multilabel_map, multilabel_scores,
    top_k_accuracy,
};
pub use cuhk03::evaluate_cuhk03;
pub use features::Features;
pub use rank::{Labels, RankMetrics, evaluate_market1501};
pub use rerank::{RerankParams, rerank};

use crate::error::Result;

/// Options of [`evaluate`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalOptions {
    /// Distance between embeddings.
    pub metric: Metric,
    /// Re-rank with these parameters before scoring.
    pub rerank: Option<RerankParams>,
    /// Score CMC with the CUHK03 single-gallery-shot protocol instead of Market-1501's.
    pub cuhk03: bool,
}

/// Scores query embeddings against gallery embeddings: distances, optional re-ranking, then
/// CMC (up to rank 50), mAP and mINP under the Market-1501 (or CUHK03) protocol.
pub fn evaluate(
    queries: &Matrix,
    gallery: &Matrix,
    labels: Labels,
    options: EvalOptions,
) -> Result<RankMetrics> {
    Ok(evaluate_with_distances(queries, gallery, labels, options)?.0)
}

/// [`evaluate`], also returning the (re-ranked) query × gallery distances it scored.
pub fn evaluate_with_distances(
    queries: &Matrix,
    gallery: &Matrix,
    labels: Labels,
    options: EvalOptions,
) -> Result<(RankMetrics, Matrix)> {
    let q_g = distance_matrix(queries, gallery, options.metric)?;
    let distmat = match options.rerank {
        Some(params) => {
            let q_q = distance_matrix(queries, queries, options.metric)?;
            let g_g = distance_matrix(gallery, gallery, options.metric)?;
            rerank(&q_g, &q_q, &g_g, params)?
        }
        None => q_g,
    };
    let metrics = if options.cuhk03 {
        evaluate_cuhk03(&distmat, labels, 50)?
    } else {
        evaluate_market1501(&distmat, labels, 50)?
    };
    Ok((metrics, distmat))
}
