//! Row-major matrix products on slices, over the `gemm` crate (AVX2 / AVX-512 chosen at run
//! time).

use std::mem::MaybeUninit;

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

/// Products of fewer multiply-adds than this run on the calling thread even when the caller
/// allows the pool: the pool's wake-up and the split cost more than they save (late OSNet
/// layers of one image are 128 × 128 × 128).
const PARALLEL_MIN_PRODUCT: usize = 1 << 21;

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
    let parallelism = if parallel && m * n * k >= PARALLEL_MIN_PRODUCT {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assertion above keeps every element the views address inside their slices
    // and the product inside `out`'s `out_len` elements, which the caller lends mutably, so it
    // aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            1,
            n as isize,
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
