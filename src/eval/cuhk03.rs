//! The CUHK03 single-gallery-shot protocol: for each query, one gallery image per identity is
//! drawn at random and CMC is measured on that reduced gallery. torchreid estimates it from 10
//! random draws; we compute the exact expectation over all draws, which is deterministic and is
//! what the random estimate converges to. mAP uses the whole gallery, as in torchreid.

use std::collections::HashMap;

use rayon::prelude::*;

use super::rank::{Labels, RankMetrics, evaluate_market1501};
use crate::distance::Matrix;
use crate::error::Result;

/// Expected CMC under single-gallery-shot sampling, and mAP / mINP as in
/// [`evaluate_market1501`].
pub fn evaluate_cuhk03(distmat: &Matrix, labels: Labels, max_rank: usize) -> Result<RankMetrics> {
    // Validates the inputs, skips the same queries, and gives mAP / mINP.
    let mut metrics = evaluate_market1501(distmat, labels, max_rank)?;
    let max_rank = metrics.cmc.len();
    let per_query: Vec<Vec<f64>> = (0..distmat.rows)
        .into_par_iter()
        .filter_map(|q| expected_cmc(distmat.row(q), q, &labels, max_rank))
        .collect();
    let n = per_query.len() as f64;
    metrics.cmc = (0..max_rank)
        .map(|k| per_query.iter().map(|c| c[k]).sum::<f64>() / n)
        .collect();
    Ok(metrics)
}

/// `P(the sampled match ranks within k + 1)` for k < `max_rank`, or `None` without a match.
fn expected_cmc(dist: &[f32], q: usize, labels: &Labels, max_rank: usize) -> Option<Vec<f64>> {
    let (q_id, q_cam) = (labels.query_ids[q], labels.query_cams[q]);
    let kept = |j: usize| !(labels.gallery_ids[j] == q_id && labels.gallery_cams[j] == q_cam);
    let matches: Vec<usize> = (0..dist.len())
        .filter(|&j| kept(j) && labels.gallery_ids[j] == q_id)
        .collect();
    if matches.is_empty() {
        return None;
    }
    // Other identities: their kept samples, by identity.
    let mut others: HashMap<i64, Vec<usize>> = HashMap::new();
    for j in (0..dist.len()).filter(|&j| kept(j) && labels.gallery_ids[j] != q_id) {
        others.entry(labels.gallery_ids[j]).or_default().push(j);
    }
    let ahead = |a: usize, b: usize| dist[a] < dist[b] || (dist[a] == dist[b] && a < b);
    let mut cmc = vec![0f64; max_rank];
    for &s in &matches {
        // dp[t] = P(exactly t sampled identities rank ahead of s), t < max_rank.
        let mut dp = vec![0f64; max_rank];
        dp[0] = 1.0;
        for samples in others.values() {
            let closer = samples.iter().filter(|&&j| ahead(j, s)).count();
            if closer == 0 {
                continue;
            }
            let p = closer as f64 / samples.len() as f64;
            for t in (0..max_rank).rev() {
                let from_below = if t > 0 { dp[t - 1] * p } else { 0.0 };
                dp[t] = dp[t] * (1.0 - p) + from_below;
            }
        }
        let mut cumulative = 0.0;
        for (k, c) in cmc.iter_mut().enumerate() {
            cumulative += dp[k];
            *c += cumulative / matches.len() as f64;
        }
    }
    Some(cmc)
}
