//! Depthwise convolutions (one input and one output channel per group), computed directly per
//! channel plane: unfolding would copy each input `kh·kw` times for a product with one row.

use rayon::prelude::*;

use crate::shape::{ConvShape, Epilogue};

/// Smallest number of planes per rayon task: late OSNet planes are 16×8 pixels.
const MIN_PLANES_PER_TASK: usize = 4;

/// `dst[i] += a · src[i·stride]` over `dst`.
fn axpy_strided(dst: &mut [f32], a: f32, src: &[f32], stride: usize) {
    if stride == 1 {
        for (d, x) in dst.iter_mut().zip(src) {
            *d += a * *x;
        }
    } else {
        for (d, x) in dst.iter_mut().zip(src.iter().step_by(stride)) {
            *d += a * *x;
        }
    }
}

/// `dst[i·stride] += a · src[i]` over `src`.
fn scatter_axpy(dst: &mut [f32], a: f32, src: &[f32], stride: usize) {
    if stride == 1 {
        for (d, x) in dst.iter_mut().zip(src) {
            *d += a * *x;
        }
    } else {
        for (d, x) in dst.iter_mut().step_by(stride).zip(src) {
            *d += a * *x;
        }
    }
}

/// `Σ a[i] · b[i·stride]`, with eight partial sums so the compiler can vectorize it.
fn dot_strided(a: &[f32], b: &[f32], stride: usize) -> f32 {
    let mut lanes = [0.0f32; 8];
    if stride == 1 {
        let b = &b[..a.len()];
        let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
        let (b8, b_rest) = b.split_at(a8.len());
        for (ca, cb) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
            for l in 0..8 {
                lanes[l] += ca[l] * cb[l];
            }
        }
        lanes[0] += a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum::<f32>();
    } else {
        for (i, (x, y)) in a.iter().zip(b.iter().step_by(stride)).enumerate() {
            lanes[i % 8] += x * y;
        }
    }
    lanes.iter().sum()
}

/// Forward: each output plane is the sum over taps of a shifted, scaled input plane, then the
/// epilogue.
pub(crate) fn forward(s: &ConvShape, x: &[f32], weight: &[f32], epilogue: Epilogue) -> Vec<f32> {
    let (hw, p, taps) = (s.hw(), s.p(), s.kh * s.kw);
    let mut out = vec![0.0; s.n * s.o * p];
    out.par_chunks_mut(p)
        .with_min_len(MIN_PLANES_PER_TASK)
        .enumerate()
        .for_each(|(plane, out)| {
            let input = &x[plane * hw..][..hw];
            let w = &weight[(plane % s.c) * taps..][..taps];
            for ki in 0..s.kh {
                for oy in s.rows(ki) {
                    let src = &input[(oy * s.sh + ki - s.ph) * s.w..][..s.w];
                    let dst = &mut out[oy * s.ow..][..s.ow];
                    for kj in 0..s.kw {
                        let cols = s.cols(kj);
                        if !cols.is_empty() {
                            let first = cols.start * s.sw + kj - s.pw;
                            axpy_strided(&mut dst[cols], w[ki * s.kw + kj], &src[first..], s.sw);
                        }
                    }
                }
            }
            epilogue.apply(out, plane % s.c);
        });
    out
}

/// Gradient of the input: each output gradient scattered back through every tap.
pub(crate) fn input_grad(s: &ConvShape, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let (hw, p, taps) = (s.hw(), s.p(), s.kh * s.kw);
    let mut dx = vec![0.0; s.n * s.c * hw];
    dx.par_chunks_mut(hw)
        .with_min_len(MIN_PLANES_PER_TASK)
        .enumerate()
        .for_each(|(plane, dx)| {
            let dy = &grad[plane * p..][..p];
            let w = &weight[(plane % s.c) * taps..][..taps];
            for ki in 0..s.kh {
                for oy in s.rows(ki) {
                    let dst = &mut dx[(oy * s.sh + ki - s.ph) * s.w..][..s.w];
                    let src = &dy[oy * s.ow..][..s.ow];
                    for kj in 0..s.kw {
                        let cols = s.cols(kj);
                        if !cols.is_empty() {
                            let first = cols.start * s.sw + kj - s.pw;
                            let a = w[ki * s.kw + kj];
                            scatter_axpy(&mut dst[first..], a, &src[cols], s.sw);
                        }
                    }
                }
            }
        });
    dx
}

/// Gradient of the weight: per channel and tap, the dot product of the output gradient with
/// the input under that tap, summed over the batch.
pub(crate) fn weight_grad(s: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (hw, p, taps) = (s.hw(), s.p(), s.kh * s.kw);
    let mut dw = vec![0.0; s.c * taps];
    dw.par_chunks_mut(taps).enumerate().for_each(|(c, dw)| {
        for i in 0..s.n {
            let input = &x[(i * s.c + c) * hw..][..hw];
            let dy = &grad[(i * s.c + c) * p..][..p];
            for ki in 0..s.kh {
                for kj in 0..s.kw {
                    let cols = s.cols(kj);
                    if cols.is_empty() {
                        continue;
                    }
                    let first = cols.start * s.sw + kj - s.pw;
                    let mut sum = 0.0;
                    for oy in s.rows(ki) {
                        let src = &input[(oy * s.sh + ki - s.ph) * s.w..][first..];
                        sum += dot_strided(&dy[oy * s.ow..][cols.clone()], src, s.sw);
                    }
                    dw[ki * s.kw + kj] += sum;
                }
            }
        }
    });
    dw
}
