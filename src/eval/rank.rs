//! CMC, mAP and mINP under the Market-1501 protocol, as torchreid's `evaluate_rank`.
//!
//! For each query, gallery samples of the same identity *and* camera are dropped; a query with
//! no remaining match is skipped. Rather than sorting each gallery row, only the ranks of the
//! query's matches are needed: each gallery distance is placed among the sorted match distances
//! by binary search, which makes the evaluation O(G log M) per query (M matches) instead of
//! O(G log G). Ties are broken by gallery index (a stable sort).

use rayon::prelude::*;
use serde::Serialize;

use crate::distance::Matrix;
use crate::error::{Error, Result};

/// Identity and camera labels of the queries and the gallery.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// Identity of each query.
    pub query_ids: &'a [i64],
    /// Identity of each gallery sample.
    pub gallery_ids: &'a [i64],
    /// Camera of each query.
    pub query_cams: &'a [i64],
    /// Camera of each gallery sample.
    pub gallery_cams: &'a [i64],
}

/// Rank metrics over the valid queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankMetrics {
    /// `cmc[k]`: fraction of valid queries with a correct match within the top k + 1.
    pub cmc: Vec<f64>,
    /// Mean average precision.
    #[serde(rename = "mAP")]
    pub map: f64,
    /// Mean inverse negative penalty (Ye et al.): mean of #matches / rank of the last match.
    #[serde(rename = "mINP")]
    pub minp: f64,
    /// Queries with at least one valid match (the others are skipped).
    pub num_valid_queries: usize,
}

impl RankMetrics {
    /// Rank-`k` accuracy (`k` ≥ 1), 0 when beyond the computed ranks.
    pub fn rank(&self, k: usize) -> f64 {
        self.cmc
            .get(k.saturating_sub(1))
            .copied()
            .unwrap_or(*self.cmc.last().unwrap_or(&0.0))
    }
}

struct QueryResult {
    /// Rank (0-based, among kept gallery samples) of each match, ascending.
    match_ranks: Vec<usize>,
}

fn rank_query(dist: &[f32], q_id: i64, q_cam: i64, labels: &Labels) -> Option<QueryResult> {
    // Matches sorted by (distance, index).
    let mut matches: Vec<(f32, usize)> = dist
        .iter()
        .enumerate()
        .filter(|&(j, _)| labels.gallery_ids[j] == q_id && labels.gallery_cams[j] != q_cam)
        .map(|(j, &d)| (d, j))
        .collect();
    if matches.is_empty() {
        return None;
    }
    let before = |a: (f32, usize), b: (f32, usize)| a.0 < b.0 || (a.0 == b.0 && a.1 < b.1);
    matches.sort_by(|&a, &b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    // preceding[p]: kept non-matches that sort before match p but after match p - 1.
    let mut preceding = vec![0usize; matches.len() + 1];
    for (j, &d) in dist.iter().enumerate() {
        let id = labels.gallery_ids[j];
        if id == q_id {
            // Matches are counted by position; same-camera samples are dropped.
            continue;
        }
        let p = matches.partition_point(|&m| before(m, (d, j)));
        preceding[p] += 1;
    }
    let mut match_ranks = Vec::with_capacity(matches.len());
    let mut non_matches_before = 0;
    for (p, count) in preceding.iter().take(matches.len()).enumerate() {
        non_matches_before += count;
        match_ranks.push(p + non_matches_before);
    }
    Some(QueryResult { match_ranks })
}

/// CMC up to `max_rank`, mAP and mINP of `distmat` (queries × gallery) under the Market-1501
/// protocol. Equal to torchreid's `evaluate_rank(..., use_metric_cuhk03=False)`.
pub fn evaluate_market1501(
    distmat: &Matrix,
    labels: Labels,
    max_rank: usize,
) -> Result<RankMetrics> {
    let (nq, ng) = (distmat.rows, distmat.cols);
    if labels.query_ids.len() != nq || labels.query_cams.len() != nq {
        return Err(Error::InvalidInput(format!(
            "{nq} queries but {} query ids and {} query cameras",
            labels.query_ids.len(),
            labels.query_cams.len()
        )));
    }
    if labels.gallery_ids.len() != ng || labels.gallery_cams.len() != ng {
        return Err(Error::InvalidInput(format!(
            "{ng} gallery samples but {} gallery ids and {} gallery cameras",
            labels.gallery_ids.len(),
            labels.gallery_cams.len()
        )));
    }
    if let Some(i) = distmat.data.iter().position(|d| d.is_nan()) {
        return Err(Error::InvalidInput(format!(
            "distance matrix holds NaN at row {}, column {}",
            i / ng.max(1),
            i % ng.max(1)
        )));
    }
    let max_rank = max_rank.min(ng).max(1);
    let results: Vec<QueryResult> = (0..nq)
        .into_par_iter()
        .filter_map(|i| {
            rank_query(
                distmat.row(i),
                labels.query_ids[i],
                labels.query_cams[i],
                &labels,
            )
        })
        .collect();
    if results.is_empty() {
        return Err(Error::InvalidInput(
            "no query has a valid match in the gallery (same identity, another camera)".into(),
        ));
    }
    let n = results.len() as f64;
    let mut hits = vec![0usize; max_rank];
    let (mut ap_sum, mut inp_sum) = (0.0, 0.0);
    for r in &results {
        let first = r.match_ranks[0];
        if first < max_rank {
            hits[first] += 1;
        }
        let m = r.match_ranks.len() as f64;
        ap_sum += r
            .match_ranks
            .iter()
            .enumerate()
            .map(|(p, &rank)| (p + 1) as f64 / (rank + 1) as f64)
            .sum::<f64>()
            / m;
        inp_sum += m / (*r.match_ranks.last().unwrap() + 1) as f64;
    }
    let mut cumulative = 0;
    let cmc = hits
        .iter()
        .map(|h| {
            cumulative += h;
            cumulative as f64 / n
        })
        .collect();
    Ok(RankMetrics {
        cmc,
        map: ap_sum / n,
        minp: inp_sum / n,
        num_valid_queries: results.len(),
    })
}
