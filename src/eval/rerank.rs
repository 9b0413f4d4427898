//! k-reciprocal re-ranking (Zhong et al., CVPR 2017), as torchreid's `re_ranking` computes it,
//! with the neighbourhood encodings `V` kept sparse (each row holds a few dozen entries).

use rayon::prelude::*;

use crate::distance::Matrix;
use crate::error::{Error, Result};

/// Parameters of the re-ranking; the paper's (and torchreid's) defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RerankParams {
    /// Size of the k-reciprocal neighbourhood.
    pub k1: usize,
    /// Size of the local query expansion.
    pub k2: usize,
    /// Weight of the original distance in the final one.
    pub lambda: f32,
}

impl Default for RerankParams {
    fn default() -> Self {
        Self {
            k1: 20,
            k2: 6,
            lambda: 0.3,
        }
    }
}

type SparseRow = Vec<(usize, f32)>;

/// Re-ranked `queries × gallery` distances from the query-gallery, query-query and
/// gallery-gallery distance matrices.
pub fn rerank(q_g: &Matrix, q_q: &Matrix, g_g: &Matrix, params: RerankParams) -> Result<Matrix> {
    let (nq, ng) = (q_g.rows, q_g.cols);
    if q_q.rows != nq || q_q.cols != nq || g_g.rows != ng || g_g.cols != ng {
        return Err(Error::InvalidInput(format!(
            "re-ranking needs q×g, q×q and g×g matrices; got {}×{}, {}×{}, {}×{}",
            nq, ng, q_q.rows, q_q.cols, g_g.rows, g_g.cols
        )));
    }
    let n = nq + ng;
    let k1 = params.k1.min(n - 1);
    // full[r][c] of the stacked matrix [[q_q, q_g], [q_gᵀ, g_g]].
    let full = |r: usize, c: usize| -> f32 {
        match (r < nq, c < nq) {
            (true, true) => q_q.data[r * nq + c],
            (true, false) => q_g.data[r * ng + (c - nq)],
            (false, true) => q_g.data[c * ng + (r - nq)],
            (false, false) => g_g.data[(r - nq) * ng + (c - nq)],
        }
    };
    // Squared, divided by each column's maximum, then transposed (torchreid's order).
    let col_max: Vec<f32> = (0..n)
        .into_par_iter()
        .map(|c| (0..n).map(|r| full(r, c).powi(2)).fold(f32::MIN, f32::max))
        .collect();
    let original: Vec<f32> = (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            let max = col_max[i];
            (0..n).map(move |j| full(j, i).powi(2) / max)
        })
        .collect();
    let row = |i: usize| &original[i * n..(i + 1) * n];

    // The k1 + 1 nearest neighbours of every sample, nearest first (ties by index).
    let neighbours = k1 + 1;
    let initial_rank: Vec<Vec<usize>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let r = row(i);
            let mut idx: Vec<usize> = (0..n).collect();
            let cmp = |a: &usize, b: &usize| r[*a].total_cmp(&r[*b]).then(a.cmp(b));
            if neighbours < n {
                idx.select_nth_unstable_by(neighbours, cmp);
                idx.truncate(neighbours);
            }
            idx.sort_by(cmp);
            idx
        })
        .collect();
    let reciprocal = |i: usize, k: usize| -> Vec<usize> {
        initial_rank[i][..=k]
            .iter()
            .copied()
            .filter(|&f| initial_rank[f][..=k].contains(&i))
            .collect()
    };
    let half = (k1 as f64 / 2.0).round() as usize;
    let v: Vec<SparseRow> = (0..n)
        .into_par_iter()
        .map(|i| {
            let k_reciprocal = reciprocal(i, k1);
            let mut expansion = k_reciprocal.clone();
            for &candidate in &k_reciprocal {
                let cand = reciprocal(candidate, half);
                let shared = cand.iter().filter(|c| k_reciprocal.contains(c)).count();
                if shared as f64 > 2.0 / 3.0 * cand.len() as f64 {
                    expansion.extend(cand);
                }
            }
            expansion.sort_unstable();
            expansion.dedup();
            let weights: Vec<f32> = expansion.iter().map(|&j| (-row(i)[j]).exp()).collect();
            let total: f32 = weights.iter().sum();
            expansion
                .into_iter()
                .zip(weights)
                .map(|(j, w)| (j, w / total))
                .collect()
        })
        .collect();
    // Local query expansion: average the encodings of the k2 nearest neighbours.
    let v: Vec<SparseRow> = if params.k2 > 1 {
        let k2 = params.k2.min(neighbours);
        (0..n)
            .into_par_iter()
            .map(|i| {
                let mut dense: std::collections::BTreeMap<usize, f32> = Default::default();
                for &nb in &initial_rank[i][..k2] {
                    for &(j, w) in &v[nb] {
                        *dense.entry(j).or_insert(0.0) += w;
                    }
                }
                dense
                    .into_iter()
                    .map(|(j, w)| (j, w / k2 as f32))
                    .filter(|&(_, w)| w != 0.0)
                    .collect()
            })
            .collect()
    } else {
        v
    };
    // Inverted index: for each column, the rows holding it.
    let mut inverted: Vec<SparseRow> = vec![Vec::new(); n];
    for (r, entries) in v.iter().enumerate() {
        for &(c, w) in entries {
            inverted[c].push((r, w));
        }
    }
    let lambda = params.lambda;
    let data: Vec<f32> = (0..nq)
        .into_par_iter()
        .flat_map_iter(|i| {
            let mut shared = vec![0f32; n];
            for &(c, wi) in &v[i] {
                for &(r, wr) in &inverted[c] {
                    shared[r] += wi.min(wr);
                }
            }
            let original_row = row(i);
            (nq..n).map(move |j| {
                let jaccard = 1.0 - shared[j] / (2.0 - shared[j]);
                jaccard * (1.0 - lambda) + original_row[j] * lambda
            })
        })
        .collect();
    Matrix::new(nq, ng, data)
}
