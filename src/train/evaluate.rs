//! Re-id evaluation of a model on a dataset's query and gallery (Market-1501 protocol).

use burn::tensor::Device;

use super::loader::embed_samples;
use crate::data::rng::Rng;
use crate::data::video::sampling::{TrackletSampling, frame_indices, pool};
use crate::data::video::{Tracklet, VideoDataset};
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

/// The pooled embeddings `[tracklets × dim]` of `tracklets`: the frames `sampling` picks
/// (random picks drawn from a fixed stream, so an evaluation repeats), embedded, pooled.
pub fn embed_tracklets(
    model: &ReidModel,
    tracklets: &[Tracklet],
    preprocessing: &Preprocessing,
    sampling: &TrackletSampling,
    batch_size: usize,
    device: &Device,
) -> Result<Matrix> {
    let (mut frames, mut counts) = (Vec::new(), Vec::with_capacity(tracklets.len()));
    for (i, t) in tracklets.iter().enumerate() {
        let mut rng = Rng::derive(0x5649_4445, &[i as u64]);
        let picked = frame_indices(
            t.frames.len(),
            sampling.seq_len,
            sampling.sample_method,
            &mut rng,
        );
        counts.push(picked.len());
        frames.extend(picked.iter().map(|&k| t.frame(k)));
    }
    let dim = model.feature_dim();
    let features = embed_samples(model, &frames, preprocessing, batch_size, device)?;
    Matrix::new(
        tracklets.len(),
        dim,
        pool(&features, dim, &counts, sampling.pooling_method),
    )
}

/// A video dataset's test split as re-id samples — one per tracklet (its first frame, identity
/// and camera) — with the query and gallery tracklets' pooled embeddings, ready for
/// [`score_dataset`].
pub fn embed_video_dataset(
    model: &ReidModel,
    dataset: &VideoDataset,
    preprocessing: &Preprocessing,
    sampling: &TrackletSampling,
    batch_size: usize,
    device: &Device,
) -> Result<(ReidDataset, Matrix, Matrix)> {
    let as_samples =
        |tracklets: &[Tracklet]| -> Vec<Sample> { tracklets.iter().map(|t| t.frame(0)).collect() };
    let embed = |tracklets: &[Tracklet]| {
        embed_tracklets(
            model,
            tracklets,
            preprocessing,
            sampling,
            batch_size,
            device,
        )
    };
    let samples = ReidDataset {
        name: dataset.name.clone(),
        train: Vec::new(),
        query: as_samples(&dataset.query),
        gallery: as_samples(&dataset.gallery),
    };
    Ok((samples, embed(&dataset.query)?, embed(&dataset.gallery)?))
}

/// CMC / mAP / mINP of `model` (in inference mode) on a video dataset, tracklet against
/// tracklet (see [`embed_video_dataset`]).
#[allow(clippy::too_many_arguments)]
pub fn evaluate_video_dataset(
    model: &ReidModel,
    dataset: &VideoDataset,
    preprocessing: &Preprocessing,
    sampling: &TrackletSampling,
    metric: Metric,
    batch_size: usize,
    device: &Device,
) -> Result<RankMetrics> {
    let (samples, queries, gallery) =
        embed_video_dataset(model, dataset, preprocessing, sampling, batch_size, device)?;
    let options = EvalOptions {
        metric,
        ..Default::default()
    };
    Ok(score_dataset(&samples, &queries, &gallery, options)?.0)
}
