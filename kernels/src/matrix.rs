//! Row-major matrix products on slices, over the `gemm` crate (AVX2 / AVX-512 chosen at run
//! time).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::output::SharedOut;

/// A read-only `rows × cols` matrix view: element `(i, j)` is `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between rows in `data`.
    pub row_stride: usize,
    /// Distance between columns in `data`.
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A contiguous row-major matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a contiguous row-major `cols × rows` matrix.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: 1,
            col_stride: rows,
        }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// `out = a·b` into an uninitialized `out` of exactly `a.rows × b.cols` elements, returned
/// initialized (`gemm` writes without reading when it does not accumulate).
pub fn matmul_uninit<'a>(
    out: &'a mut [MaybeUninit<f32>],
    a: View,
    b: View,
    parallel: bool,
) -> &'a mut [f32] {
    assert_eq!(
        out.len(),
        a.rows * b.cols,
        "the output is the product's size"
    );
    if a.cols == 0 || out.is_empty() {
        return crate::output::zeroed(out);
    }
    let len = out.len();
    // SAFETY: `out` is valid for `len` writes and `product` does not read it (no
    // accumulation); with `a.cols > 0` and a non-empty output it writes all `len` elements,
    // which makes the slice initialized.
    unsafe {
        product(out.as_mut_ptr().cast::<f32>(), len, a, b, false, parallel);
        std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), len)
    }
}

/// `out = a·b` (or `out += a·b` when `accumulate`), `out` contiguous row-major; on the rayon
/// pool when `parallel`.
pub fn matmul(out: &mut [f32], a: View, b: View, accumulate: bool, parallel: bool) {
    let (m, n) = (a.rows, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            out[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: `out` is an initialized slice of `out.len()` elements.
    unsafe { product(out.as_mut_ptr(), out.len(), a, b, accumulate, parallel) }
}

/// Products of fewer multiply-adds than this are not handed to `gemm`'s own threading: its
/// split of such sizes ran at about one core's rate on two (late OSNet layers of one image
/// are 128 × 128 × 128).
const PARALLEL_MIN_PRODUCT: usize = 1 << 21;

/// Products from this many multiply-adds up to [`PARALLEL_MIN_PRODUCT`] are cut into column
/// blocks, one per thread, each a one-thread product: a batch-1 osnet_x0_25 forward is ~80
/// such products, which ran on one core (0.80–0.83 of ONNX Runtime's speed in turns; split,
/// 0.88–0.91). Smaller ones cost less than the hand-over.
const SPLIT_MIN_PRODUCT: usize = 1 << 17;

/// Width of the column blocks' unit: a multiple of the widest vector of `gemm`'s kernels.
const BLOCK_UNIT: usize = 16;

/// The product through `gemm`, writing `out` (row-major `a.rows × b.cols`) without reading it
/// unless `accumulate`.
///
/// # Safety
/// `out` must be valid for writes of `out_len` elements, and initialized when `accumulate`.
unsafe fn product(
    out: *mut f32,
    out_len: usize,
    a: View,
    b: View,
    accumulate: bool,
    parallel: bool,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && out_len >= m * n && a.fits() && b.fits());
    let work = m * n * k;
    let blocks = if parallel && (SPLIT_MIN_PRODUCT..PARALLEL_MIN_PRODUCT).contains(&work) {
        rayon::current_num_threads().min(n / BLOCK_UNIT)
    } else {
        1
    };
    if blocks >= 2 {
        let width = n.div_ceil(blocks).next_multiple_of(BLOCK_UNIT);
        let shared = SharedOut(out);
        (0..n.div_ceil(width)).into_par_iter().for_each(|block| {
            let (first, last) = (block * width, ((block + 1) * width).min(n));
            let b = View {
                data: &b.data[first * b.col_stride..],
                cols: last - first,
                ..b
            };
            // SAFETY: columns `first..last` of the output's `m` rows of `n`, inside
            // `out_len` (asserted above) and written by this task alone; the sub-view keeps
            // `b`'s strides over a suffix of its data, so it fits as `b` does.
            unsafe { gemm_into(shared.at(first), n, a, b, accumulate, false) };
        });
        return;
    }
    // SAFETY: the caller's contract; the assertion above.
    unsafe {
        gemm_into(
            out,
            n,
            a,
            b,
            accumulate,
            parallel && work >= PARALLEL_MIN_PRODUCT,
        )
    }
}

/// `gemm`'s product `a·b` into `out`, rows `out_row_stride` apart, on its own threads when
/// `threaded`.
///
/// # Safety
/// `a` and `b` fit their data; `out` is valid for writes at `i·out_row_stride + j` for every
/// `i < a.rows`, `j < b.cols`, initialized there when `accumulate`, and aliases neither.
unsafe fn gemm_into(
    out: *mut f32,
    out_row_stride: usize,
    a: View,
    b: View,
    accumulate: bool,
    threaded: bool,
) {
    let parallelism = if threaded {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            out,
            1,
            out_row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919 % 1013) as f32 - 506.0) / 500.0)
            .collect()
    }

    /// Products split in column blocks (and not), `b` row-major and transposed, overwritten
    /// and accumulated, against the sum written out.
    #[test]
    fn split_and_whole_products_match_the_sum_written_out() {
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // Work below, inside and above the split range; widths off the block unit.
            for (m, k, n) in [(8, 8, 40), (64, 32, 100), (128, 128, 97), (130, 70, 300)] {
                let a = values(m * k, 1);
                let b_rows = values(k * n, 2);
                let b_cols: Vec<f32> = (0..n * k).map(|i| b_rows[(i % k) * n + i / k]).collect();
                for (b, b_view) in [
                    (&b_rows, View::rows(&b_rows, k, n)),
                    (
                        &b_cols,
                        View {
                            data: &b_cols,
                            rows: k,
                            cols: n,
                            row_stride: 1,
                            col_stride: k,
                        },
                    ),
                ] {
                    assert_eq!(b.len(), k * n);
                    for accumulate in [false, true] {
                        let start = values(m * n, 3);
                        let mut out = start.clone();
                        pool.install(|| {
                            matmul(&mut out, View::rows(&a, m, k), b_view, accumulate, true)
                        });
                        for i in 0..m {
                            for j in 0..n {
                                let sum: f64 = (0..k)
                                    .map(|t| f64::from(a[i * k + t]) * f64::from(b_rows[t * n + j]))
                                    .sum();
                                let want =
                                    sum as f32 + if accumulate { start[i * n + j] } else { 0.0 };
                                let got = out[i * n + j];
                                assert!(
                                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                                    "{threads} threads, {m}×{k}×{n}, accumulate {accumulate}, [{i}, {j}]: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
