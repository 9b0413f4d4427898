//! Dense and grouped convolutions as unfolding (im2col) and one matrix product per image and
//! group; 1×1 stride-1 convolutions use the input as it is.

use rayon::prelude::*;

use std::mem::MaybeUninit;

use crate::matrix::{View, matmul, matmul_uninit};
use crate::output::{filled_in_parts, written_in_parts, zeroed};
use crate::scratch::with_scratch;
use crate::shape::{ConvShape, Epilogue};
use crate::simd::vectorized;

/// Unfolds group `g` of one image `[c, h, w]` into `col` `[k, p]`: row `(ci, ki, kj)` holds the
/// input under tap `(ki, kj)` for every output pixel, zero where it falls in the padding. The
/// rows on rayon's pool when `parallel` (one image's stem unfolds into megabytes).
fn unfold(s: &ConvShape, image: &[f32], g: usize, col: &mut [f32], parallel: bool) {
    let p = s.p();
    if parallel && col.len() >= PARALLEL_UNFOLD_LEN {
        col.par_chunks_mut(p)
            .enumerate()
            .with_min_len(PARALLEL_UNFOLD_LEN / 4 / p.max(1))
            .for_each(|(r, row)| unfold_row(s, image, g, r, row));
    } else {
        for (r, row) in col.chunks_mut(p).enumerate() {
            unfold_row(s, image, g, r, row);
        }
    }
}

/// Unfolded inputs smaller than this many floats are written on the calling thread.
const PARALLEL_UNFOLD_LEN: usize = 1 << 16;

/// Row `r` = `(ci, ki, kj)` of the unfolding of group `g` (see [`unfold`]).
fn unfold_row(s: &ConvShape, image: &[f32], g: usize, r: usize, row: &mut [f32]) {
    let ow = s.ow;
    let (ci, ki, kj) = (r / (s.kh * s.kw), r / s.kw % s.kh, r % s.kw);
    let plane = &image[(g * s.cg() + ci) * s.hw()..][..s.hw()];
    let (rows, cols) = (s.rows(ki), s.cols(kj));
    for oy in 0..s.oh {
        let out = &mut row[oy * ow..][..ow];
        if !rows.contains(&oy) || cols.is_empty() {
            out.fill(0.0);
            continue;
        }
        let src = &plane[(oy * s.sh + ki - s.ph) * s.w..][..s.w];
        out[..cols.start].fill(0.0);
        out[cols.end..].fill(0.0);
        let first = cols.start * s.sw + kj - s.pw;
        let out = &mut out[cols.clone()];
        if s.sw == 1 {
            out.copy_from_slice(&src[first..first + out.len()]);
        } else {
            let src = &src[first..first + (out.len() - 1) * s.sw + 1];
            strided_copy(out, src, s.sw);
        }
    }
}

/// `out[j] = src[j · stride]`, with the bounds checked once so the loop compiles to vector
/// gathers (a stride-2 stem's unfolding was a scalar loop and an eighth of a batch-1 forward).
fn strided_copy(out: &mut [f32], src: &[f32], stride: usize) {
    assert!(out.is_empty() || (out.len() - 1) * stride < src.len());
    vectorized(
        #[inline(always)]
        || {
            for (j, o) in out.iter_mut().enumerate() {
                // SAFETY: j · stride ≤ (len − 1) · stride < src.len(), checked above.
                *o = unsafe { *src.get_unchecked(j * stride) };
            }
        },
    );
}

/// The adjoint of [`unfold`]: adds every entry of `col` `[k, p]` to the input pixel it was read
/// from, in group `g` of one image `[c, h, w]`.
fn fold_add(s: &ConvShape, col: &[f32], g: usize, image: &mut [f32]) {
    let (p, ow) = (s.p(), s.ow);
    for ci in 0..s.cg() {
        let plane = &mut image[(g * s.cg() + ci) * s.hw()..][..s.hw()];
        for ki in 0..s.kh {
            let rows = s.rows(ki);
            for kj in 0..s.kw {
                let cols = s.cols(kj);
                if cols.is_empty() {
                    continue;
                }
                let row = &col[((ci * s.kh + ki) * s.kw + kj) * p..][..p];
                for oy in rows.clone() {
                    let src = &row[oy * ow..][cols.clone()];
                    let dst = &mut plane[(oy * s.sh + ki - s.ph) * s.w..][..s.w];
                    let first = cols.start * s.sw + kj - s.pw;
                    if s.sw == 1 {
                        for (d, x) in dst[first..first + cols.len()].iter_mut().zip(src) {
                            *d += *x;
                        }
                    } else {
                        for (d, x) in dst[first..].iter_mut().step_by(s.sw).zip(src) {
                            *d += *x;
                        }
                    }
                }
            }
        }
    }
}

/// Whether to spread images over the thread pool (each product on one thread) rather than run
/// each product on the whole pool.
fn per_image(s: &ConvShape) -> bool {
    s.n > 1 && rayon::current_num_threads() > 1
}

/// A `[n, …]` output of `image_len` floats per image, each image zeroed and then written by
/// `f(image index, output image)`, in parallel when that pays.
fn per_image_output(
    s: &ConvShape,
    image_len: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    filled_in_parts(s.n * image_len, image_len, per_image(s), 1, f)
}

/// Forward: `x` `[n, c, h, w]`, `weight` `[o, cg, kh, kw]` → `[n, o, oh, ow]`, with the epilogue
/// applied to each image's output while it is still in cache. Inputs of few channels (the RGB
/// stems) are convolved directly where the CPU allows, the others unfolded.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], epilogue: Epilogue) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if crate::direct::applies(s) {
        return crate::direct::forward(s, x, weight, epilogue);
    }
    unfolded_forward(s, x, weight, epilogue)
}

/// [`forward`] by unfolding and one matrix product per image and group.
pub(crate) fn unfolded_forward(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    epilogue: Epilogue,
) -> Vec<f32> {
    let (p, og) = (s.p(), s.og());
    let whole_pool = !per_image(s);
    let image_len = s.o * p;
    written_in_parts(s.n * image_len, image_len, per_image(s), 1, |i, out| {
        let image = &x[i * s.c * s.hw()..][..s.c * s.hw()];
        let out = if s.groups == 1 {
            group_product(s, image, weight, 0, out, whole_pool)
        } else {
            let out = zeroed(out);
            for g in 0..s.groups {
                let dst = &mut out[g * og * p..][..og * p];
                group_product(s, image, weight, g, as_uninit(dst), whole_pool);
            }
            out
        };
        vectorized(
            #[inline(always)]
            || {
                for (channel, plane) in out.chunks_mut(p).enumerate() {
                    epilogue.apply(plane, i * s.o + channel, channel);
                }
            },
        );
        out
    })
}

/// Group `g`'s output of one image, written whole (no zeroing pass before it).
fn group_product<'a>(
    s: &ConvShape,
    image: &[f32],
    weight: &[f32],
    g: usize,
    dst: &'a mut [MaybeUninit<f32>],
    whole_pool: bool,
) -> &'a mut [f32] {
    let (k, p, og) = (s.k(), s.p(), s.og());
    let a = View::rows(&weight[g * og * k..][..og * k], og, k);
    if s.pointwise() {
        let b = View::rows(&image[g * k * p..][..k * p], k, p);
        matmul_uninit(dst, a, b, whole_pool)
    } else {
        with_scratch(k * p, |col| {
            unfold(s, image, g, col, whole_pool);
            matmul_uninit(dst, a, View::rows(col, k, p), whole_pool)
        })
    }
}

/// An initialized slice seen as one that may be overwritten without being read.
fn as_uninit(slice: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and every `f32` is a valid
    // `MaybeUninit<f32>`; whatever is written through the result is an initialized `f32`.
    unsafe { &mut *(slice as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// Gradient of the input: `weightᵀ · grad` per group, folded back onto the image.
pub(crate) fn input_grad(s: &ConvShape, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let (k, p, og) = (s.k(), s.p(), s.og());
    let whole_pool = !per_image(s);
    per_image_output(s, s.c * s.hw(), |i, dx| {
        let dy = &grad[i * s.o * p..][..s.o * p];
        for g in 0..s.groups {
            let a = View::transposed(&weight[g * og * k..][..og * k], k, og);
            let b = View::rows(&dy[g * og * p..][..og * p], og, p);
            if s.pointwise() {
                matmul(&mut dx[g * k * p..][..k * p], a, b, false, whole_pool);
            } else {
                with_scratch(k * p, |col| {
                    matmul(col, a, b, false, whole_pool);
                    fold_add(s, col, g, dx);
                });
            }
        }
    })
}

/// Gradient of the weight: `Σ_images grad · unfold(x)ᵀ` per group, the images split into one
/// run per thread whose partial sums are added at the end.
pub(crate) fn weight_grad(s: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (k, p, og) = (s.k(), s.p(), s.og());
    let runs = if per_image(s) {
        rayon::current_num_threads().min(s.n)
    } else {
        1
    };
    let whole_pool = runs == 1;
    let accumulate_run = |run: usize| {
        let mut dw = vec![0.0; s.o * k];
        for i in (run * s.n / runs)..((run + 1) * s.n / runs) {
            let image = &x[i * s.c * s.hw()..][..s.c * s.hw()];
            let dy = &grad[i * s.o * p..][..s.o * p];
            for g in 0..s.groups {
                let a = View::rows(&dy[g * og * p..][..og * p], og, p);
                let dst = &mut dw[g * og * k..][..og * k];
                if s.pointwise() {
                    let b = View::transposed(&image[g * k * p..][..k * p], p, k);
                    matmul(dst, a, b, true, whole_pool);
                } else {
                    with_scratch(k * p, |col| {
                        unfold(s, image, g, col, whole_pool);
                        matmul(dst, a, View::transposed(col, p, k), true, whole_pool);
                    });
                }
            }
        }
        dw
    };
    let partials: Vec<Vec<f32>> = if runs > 1 {
        (0..runs).into_par_iter().map(accumulate_run).collect()
    } else {
        vec![accumulate_run(0)]
    };
    let mut partials = partials.into_iter();
    let mut dw = partials.next().unwrap_or_else(|| vec![0.0; s.o * k]);
    for partial in partials {
        for (d, x) in dw.iter_mut().zip(&partial) {
            *d += *x;
        }
    }
    dw
}
