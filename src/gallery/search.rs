//! Exact top-k search over contiguous storage: the gallery is scanned in chunks, each chunk
//! scored against a block of queries by one SIMD matrix product, chunks in parallel; each
//! query's candidates per chunk are shortlisted from those scores, scored again exactly, and
//! only the best k kept before merging.

use std::cmp::Ordering;
use std::collections::HashMap;

use rayon::prelude::*;

use super::{Match, SearchOptions, TimeSpan};
use crate::distance::Metric;

/// Gallery rows scored per matrix product, and queries per block: large query blocks keep the
/// AVX-512 matrix kernels efficient (measured: 64 → 1024 queries made 100k-entry search 2×
/// faster, and 2,048 → 4,096 rows 5 % faster); 1,024 × 4,096 scores are 16 MiB per thread.
const CHUNK: usize = 4096;
const QUERY_BLOCK: usize = 1024;
/// Scores checked at once against the k-th best when shortlisting (one AVX-512 register).
const SKIP_BLOCK: usize = 16;
/// Columns whose best scores bound the k-th best from below (at most 64 results a query go
/// this way).
const COLUMNS: usize = 64;

/// The columns the search reads, borrowed from the store.
pub(crate) struct Columns<'a> {
    pub dim: usize,
    pub metric: Metric,
    pub vectors: &'a [f32],
    pub ids: &'a [u64],
    pub identities: &'a [u64],
    pub cameras: &'a [i32],
    pub times: &'a [Option<TimeSpan>],
}

/// Whether an entry seen during `time` passes the options' time window.
fn in_window(time: Option<&TimeSpan>, options: &SearchOptions) -> bool {
    match (&options.time_window, time) {
        (None, _) => true,
        (Some(window), Some(time)) => window.overlaps(time),
        (Some(_), None) => false,
    }
}

/// Better first: higher similarity (cosine) or lower distance (euclidean); ties by lower id.
pub(crate) fn better(metric: Metric, a: &Match, b: &Match) -> Ordering {
    let by_score = match metric {
        Metric::Cosine => b.score.total_cmp(&a.score),
        Metric::Euclidean => a.score.total_cmp(&b.score),
    };
    by_score.then(a.id.cmp(&b.id))
}

/// Whether `score` meets the options' threshold, give or take `slack`.
fn passes(metric: Metric, score: f32, options: &SearchOptions, slack: f32) -> bool {
    match (options.min_score, metric) {
        (None, _) => true,
        (Some(min), Metric::Cosine) => score >= min - slack,
        // For a distance the threshold is a maximum.
        (Some(max), Metric::Euclidean) => score <= max + slack,
    }
}

/// Keeps the best `k` of `candidates` (one per identity when grouping), sorted.
fn select(metric: Metric, mut candidates: Vec<Match>, k: usize, group: bool) -> Vec<Match> {
    if group {
        let mut best: HashMap<u64, Match> = HashMap::new();
        for c in candidates {
            best.entry(c.identity)
                .and_modify(|b| {
                    if better(metric, &c, b) == Ordering::Less {
                        *b = c.clone();
                    }
                })
                .or_insert(c);
        }
        candidates = best.into_values().collect();
    }
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k, |a, b| better(metric, a, b));
        candidates.truncate(k);
    }
    candidates.sort_by(|a, b| better(metric, a, b));
    candidates
}

/// Top-k matches for each row of `queries` (already normalized for cosine).
///
/// The matrix product ranks fast but its rounding depends on the SIMD kernel and on how many
/// queries share it; so it only shortlists each chunk's candidates (everything that could be
/// in the top k given a bound on that rounding), and the shortlist is scored again exactly
/// (f64 sums in a fixed order). Scores are therefore the same whether a query is searched
/// alone or in a batch, on every machine, and an identical vector is at distance 0.
pub(crate) fn search(cols: &Columns, queries: &[f32], options: &SearchOptions) -> Vec<Vec<Match>> {
    let (dim, n) = (cols.dim, cols.ids.len());
    let nq = queries.len() / dim.max(1);
    let mut results = Vec::with_capacity(nq);
    for q0 in (0..nq).step_by(QUERY_BLOCK) {
        let qb = (nq - q0).min(QUERY_BLOCK);
        let block = &queries[q0 * dim..(q0 + qb) * dim];
        // Per chunk, per query: the chunk's candidates (row, approximate score) and the
        // slack of its scores. Each worker reuses one score buffer (16 MiB): a fresh one per
        // chunk cost a fill and page faults every time.
        let per_chunk: Vec<Vec<Candidates>> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map_init(Vec::new, |scores, c| {
                let start = c * CHUNK;
                let len = (n - start).min(CHUNK);
                let scored = score_block(cols, block, start, len, scores);
                (0..qb)
                    .map(|q| {
                        let row = &scores[q * len..(q + 1) * len];
                        let slack = 2.0 * scored.max_error(q);
                        let rows = shortlist(cols, start, row, slack, options)
                            .into_iter()
                            .map(|j| (start + j, row[j]))
                            .collect();
                        Candidates { rows, slack }
                    })
                    .collect()
            })
            .collect();
        // Per query: the chunks' candidates narrowed to those within the largest slack of
        // the k-th best of them all, then scored exactly.
        let block_results: Vec<Vec<Match>> = (0..qb)
            .into_par_iter()
            .map(|q| {
                let query = &block[q * dim..(q + 1) * dim];
                let slack = per_chunk
                    .iter()
                    .fold(0f32, |m, chunk| m.max(chunk[q].slack));
                let mut rows: Vec<(usize, f32)> = per_chunk
                    .iter()
                    .flat_map(|chunk| chunk[q].rows.iter().copied())
                    .collect();
                if !options.group_by_identity
                    && let Some(kth) =
                        kth_best(cols.metric, rows.iter().map(|&(_, a)| a), options.k)
                {
                    rows.retain(|&(_, a)| match cols.metric {
                        Metric::Cosine => a >= kth - slack,
                        Metric::Euclidean => a <= kth + slack,
                    });
                }
                let exact = rows
                    .into_iter()
                    .filter_map(|(g, _)| {
                        let score =
                            exact_score(cols.metric, query, &cols.vectors[g * dim..(g + 1) * dim]);
                        passes(cols.metric, score, options, 0.0).then(|| Match {
                            id: cols.ids[g],
                            identity: cols.identities[g],
                            camera: cols.cameras[g],
                            score,
                        })
                    })
                    .collect();
                select(cols.metric, exact, options.k, options.group_by_identity)
            })
            .collect();
        results.extend(block_results);
    }
    results
}

/// One chunk's candidates for one query: gallery rows with their approximate scores, and how
/// far those may be from the exact ones (twice the rounding bound).
struct Candidates {
    rows: Vec<(usize, f32)>,
    slack: f32,
}

/// The rows of a chunk (indices into `row`, its approximate scores) that may be among the best
/// `k` (or, grouping, hold their identity's best among the best `k` identities) once scored
/// exactly: every eligible row whose approximate score is within `slack` of the k-th best.
fn shortlist(
    cols: &Columns,
    start: usize,
    row: &[f32],
    slack: f32,
    options: &SearchOptions,
) -> Vec<usize> {
    let metric = cols.metric;
    let eligible = |j: usize| {
        options.exclude_camera != Some(cols.cameras[start + j])
            && in_window(cols.times[start + j].as_ref(), options)
            && passes(metric, row[j], options, slack)
    };
    if !options.group_by_identity && options.k <= 64 {
        // Only `min_score` may make a row ineligible (and only rows it leaves out would be
        // below it): the block maxima then bound the k-th best from below.
        let every_row = options.exclude_camera.is_none() && options.time_window.is_none();
        return shortlist_top_k(metric, row, slack, options.k, every_row, eligible);
    }
    let kth = if options.group_by_identity {
        let mut by_identity: HashMap<u64, f32> = HashMap::new();
        for j in (0..row.len()).filter(|&j| eligible(j)) {
            let best = by_identity
                .entry(cols.identities[start + j])
                .or_insert(row[j]);
            if closer(metric, row[j], *best) {
                *best = row[j];
            }
        }
        kth_best(metric, by_identity.into_values(), options.k)
    } else {
        kth_best(
            metric,
            (0..row.len()).filter(|&j| eligible(j)).map(|j| row[j]),
            options.k,
        )
    };
    let within = |j: usize| match (kth, metric) {
        (None, _) => true,
        (Some(t), Metric::Cosine) => row[j] >= t - slack,
        (Some(t), Metric::Euclidean) => row[j] <= t + slack,
    };
    (0..row.len())
        .filter(|&j| within(j) && eligible(j))
        .collect()
}

/// [`shortlist`] without grouping, for a small `k`, in one pass: a sorted run of the best `k`
/// scores so far, and every eligible row within `slack` of the k-th of them when it was seen
/// (a superset of those within `slack` of the final k-th, which is no worse), trimmed at the
/// end.
///
/// When `every_row` may be among the best (no filter but `min_score`), the k-th best of the
/// columns' best scores ([`column_best`]) bounds the k-th best score from below, so only blocks
/// within `slack` of it are looked at row by row.
fn shortlist_top_k(
    metric: Metric,
    row: &[f32],
    slack: f32,
    k: usize,
    every_row: bool,
    eligible: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let within = |s: f32, t: f32| match metric {
        Metric::Cosine => s >= t - slack,
        Metric::Euclidean => s <= t + slack,
    };
    // Whether any score of a block is within `slack` of `t`: no early exit, so that it runs
    // on SIMD lanes; most blocks of a large gallery have none and are skipped whole.
    let any_within = |block: &[f32], t: f32| match metric {
        Metric::Cosine => block.iter().fold(false, |any, &s| any | (s >= t - slack)),
        Metric::Euclidean => block.iter().fold(false, |any, &s| any | (s <= t + slack)),
    };
    let floor = if every_row {
        kth_best(metric, column_best(metric, row).into_iter(), k)
    } else {
        None
    };
    let mut best: Vec<f32> = Vec::with_capacity(k + 1);
    let mut picked = Vec::new();
    for (b, block) in row.chunks(SKIP_BLOCK).enumerate() {
        let bar = if best.len() == k {
            Some(best[k - 1])
        } else {
            floor
        };
        if bar.is_some_and(|t| !any_within(block, t)) {
            continue;
        }
        for (o, &s) in block.iter().enumerate() {
            let j = b * SKIP_BLOCK + o;
            let full = best.len() == k;
            let bar = if full { Some(best[k - 1]) } else { floor };
            if bar.is_some_and(|t| !within(s, t)) || !eligible(j) {
                continue;
            }
            picked.push(j);
            if !full || closer(metric, s, best[k - 1]) {
                let at = best.partition_point(|&b| !closer(metric, s, b));
                best.insert(at, s);
                best.truncate(k);
            }
        }
    }
    if best.len() == k {
        let kth = best[k - 1];
        picked.retain(|&j| within(row[j], kth));
    }
    picked
}

/// The closest score in each of the `COLUMNS` columns of `row` seen as a matrix of that width
/// (scores `j` with the same `j mod COLUMNS`): one pass on SIMD lanes. Columns are disjoint,
/// so their k-th best is at most the k-th best score of the row.
fn column_best(metric: Metric, row: &[f32]) -> [f32; COLUMNS] {
    let pick = |a: f32, b: f32| match metric {
        Metric::Cosine => a.max(b),
        Metric::Euclidean => a.min(b),
    };
    let worst = match metric {
        Metric::Cosine => f32::NEG_INFINITY,
        Metric::Euclidean => f32::INFINITY,
    };
    let mut best = [worst; COLUMNS];
    let rows = row.chunks_exact(COLUMNS);
    let tail = rows.remainder();
    for values in rows {
        for (b, &v) in best.iter_mut().zip(values) {
            *b = pick(*b, v);
        }
    }
    for (b, &v) in best.iter_mut().zip(tail) {
        *b = pick(*b, v);
    }
    best
}

/// The k-th closest of `scores`; `None` when there are no more than `k`.
fn kth_best(metric: Metric, scores: impl Iterator<Item = f32>, k: usize) -> Option<f32> {
    let mut all: Vec<f32> = scores.collect();
    if all.len() <= k {
        return None;
    }
    let (_, kth, _) = all.select_nth_unstable_by(k - 1, |a, b| match metric {
        Metric::Cosine => b.total_cmp(a),
        Metric::Euclidean => a.total_cmp(b),
    });
    Some(*kth)
}

/// Whether score `a` is closer than `b`.
fn closer(metric: Metric, a: f32, b: f32) -> bool {
    match metric {
        Metric::Cosine => a > b,
        Metric::Euclidean => a < b,
    }
}

/// The exact score of a query and a gallery row: the dot product (cosine; both are unit
/// vectors) or the squared euclidean distance, summed in f64 in a fixed order — eight partial
/// sums (term `i` into sum `i mod 8`) added pairwise at the end — so the same on every machine
/// and in every batch (a product of two f32 is exact in f64); the eight independent sums are
/// what lets it run on SIMD lanes.
pub(crate) fn exact_score(metric: Metric, query: &[f32], row: &[f32]) -> f32 {
    match metric {
        Metric::Cosine => fixed_order_sum(query, row, |a, b| a * b),
        Metric::Euclidean => fixed_order_sum(query, row, |a, b| (a - b) * (a - b)),
    }
}

#[inline(always)]
fn fixed_order_sum(a: &[f32], b: &[f32], term: impl Fn(f64, f64) -> f64) -> f32 {
    const LANES: usize = 8;
    let mut sums = [0f64; LANES];
    let (a_blocks, b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_tail, b_tail) = (a_blocks.remainder(), b_blocks.remainder());
    for (x, y) in a_blocks.zip(b_blocks) {
        for lane in 0..LANES {
            sums[lane] += term(x[lane] as f64, y[lane] as f64);
        }
    }
    for (lane, (&x, &y)) in a_tail.iter().zip(b_tail).enumerate() {
        sums[lane] += term(x as f64, y as f64);
    }
    let [s0, s1, s2, s3, s4, s5, s6, s7] = sums;
    (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) as f32
}

/// What bounds the rounding error of a block of approximate scores.
struct Scored {
    /// Each query's squared norm.
    query_norms: Vec<f32>,
    /// The largest squared norm of the chunk's rows.
    max_row_norm: f32,
    dim: usize,
}

impl Scored {
    /// A bound on |approximate − exact| of query `q`'s scores: a sum of `dim` f32 products is
    /// within γ = dim·u of the sum of their magnitudes, which Cauchy–Schwarz bounds by the
    /// norms (for euclidean, |q|² + |g|² + 2|q·g| ≤ (|q| + |g|)²); 4× for safety and the
    /// final subtraction.
    fn max_error(&self, q: usize) -> f32 {
        let gamma = 4.0 * (self.dim as f32 + 2.0) * f32::EPSILON;
        let (qn, gn) = (self.query_norms[q].sqrt(), self.max_row_norm.sqrt());
        gamma * (qn + gn) * (qn + gn)
    }
}

/// Scores of `qb` queries against gallery rows `start .. start + len` into `scores` (`qb ×
/// len`, row-major): similarities (cosine) or squared distances (euclidean) from one matrix
/// product.
fn score_block(
    cols: &Columns,
    queries: &[f32],
    start: usize,
    len: usize,
    scores: &mut Vec<f32>,
) -> Scored {
    let dim = cols.dim;
    let rows = &cols.vectors[start * dim..(start + len) * dim];
    crate::distance::dot_products_into(queries, rows, dim, false, scores);
    let query_norms: Vec<f32> = queries
        .chunks(dim)
        .map(|q| q.iter().map(|v| v * v).sum())
        .collect();
    let max_row_norm = match cols.metric {
        // Cosine rows are stored as unit vectors: their squared norms are 1 up to rounding
        // (computing them would double the cost of a single query).
        Metric::Cosine => 1.0 + 1e-3,
        Metric::Euclidean => {
            let row_norms: Vec<f32> = rows
                .chunks(dim)
                .map(|g| g.iter().map(|v| v * v).sum())
                .collect();
            for (q, row) in scores.chunks_mut(len).enumerate() {
                for (j, s) in row.iter_mut().enumerate() {
                    *s = query_norms[q] + row_norms[j] - 2.0 * *s;
                }
            }
            row_norms.iter().fold(0f32, |m, &v| m.max(v))
        }
    };
    Scored {
        query_norms,
        max_row_norm,
        dim,
    }
}
