//! Query × gallery distance matrices, computed as one blocked SIMD matrix product.

use std::str::FromStr;

use reid_kernels::matrix::{View, matmul};

use crate::error::{Error, Result};

/// How embeddings are compared. Both follow torchreid's `compute_distance_matrix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    /// `1 - cos(q, g)`, on L2-normalized rows.
    #[default]
    Cosine,
    /// Squared euclidean distance `|q|² + |g|² - 2 q·g` (torchreid's "euclidean").
    Euclidean,
}

impl Metric {
    /// The name [`FromStr`] reads: `cosine` or `euclidean`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
        }
    }
}

impl FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cosine" => Ok(Metric::Cosine),
            "euclidean" => Ok(Metric::Euclidean),
            other => Err(Error::InvalidInput(format!(
                "unknown metric `{other}`; expected cosine or euclidean"
            ))),
        }
    }
}

/// A dense row-major matrix of `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows × cols` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Wraps row-major `data`; an error when its length is not `rows × cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::InvalidInput(format!(
                "{} values cannot form a {rows}×{cols} matrix",
                data.len()
            )));
        }
        Ok(Self { rows, cols, data })
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// `a · bᵀ` for row-major `a` (`m × k`) and `b` (`n × k`), multi-threaded.
pub fn matmul_transposed(a: &Matrix, b: &Matrix) -> Result<Matrix> {
    if a.cols != b.cols {
        return Err(Error::InvalidInput(format!(
            "dimension mismatch: {} against {}",
            a.cols, b.cols
        )));
    }
    let out = dot_products(&a.data, &b.data, a.cols, true);
    Matrix::new(a.rows, b.rows, out)
}

/// Every dot product between the rows of `a` and of `b` (both row-major with `k` columns),
/// as a row-major `rows(a) × rows(b)` buffer: one blocked SIMD matrix product, multi-threaded
/// when `parallel`.
pub(crate) fn dot_products(a: &[f32], b: &[f32], k: usize, parallel: bool) -> Vec<f32> {
    let mut out = Vec::new();
    dot_products_into(a, b, k, parallel, &mut out);
    out
}

/// [`dot_products`] into `out`, resized to fit (a buffer reused across calls is written, not
/// cleared first).
pub(crate) fn dot_products_into(
    a: &[f32],
    b: &[f32],
    k: usize,
    parallel: bool,
    out: &mut Vec<f32>,
) {
    let (m, n) = (a.len() / k.max(1), b.len() / k.max(1));
    out.resize(m * n, 0.0);
    let (a, b) = (View::rows(a, m, k), View::transposed(b, k, n));
    matmul(out, a, b, false, parallel);
}

/// Rows scaled to unit L2 norm (norms below 1e-12 are clamped, as torch's `F.normalize`).
pub fn l2_normalized(x: &Matrix) -> Matrix {
    let mut out = x.clone();
    normalize_rows(&mut out.data, x.cols);
    out
}

/// Scales each `dim`-long row of `data` to unit L2 norm in place (norms below 1e-12 are
/// clamped, as torch's `F.normalize`).
pub fn normalize_rows(data: &mut [f32], dim: usize) {
    for row in data.chunks_mut(dim.max(1)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
}

/// The `queries × gallery` distance matrix under `metric`.
pub fn distance_matrix(queries: &Matrix, gallery: &Matrix, metric: Metric) -> Result<Matrix> {
    match metric {
        Metric::Cosine => {
            let mut sim = matmul_transposed(&l2_normalized(queries), &l2_normalized(gallery))?;
            sim.data.iter_mut().for_each(|s| *s = 1.0 - *s);
            Ok(sim)
        }
        Metric::Euclidean => {
            let mut dot = matmul_transposed(queries, gallery)?;
            let sq = |m: &Matrix| -> Vec<f32> {
                (0..m.rows)
                    .map(|i| m.row(i).iter().map(|v| v * v).sum())
                    .collect()
            };
            let (qn, gn) = (sq(queries), sq(gallery));
            for (i, row) in dot.data.chunks_mut(gallery.rows.max(1)).enumerate() {
                for (j, d) in row.iter_mut().enumerate() {
                    *d = qn[i] + gn[j] - 2.0 * *d;
                }
            }
            Ok(dot)
        }
    }
}
