//! Max and average pooling over `[n, c, h, w]`, per plane, and their gradients. Burn's Flex
//! backend pools through its 3-D path with an index tensor even in inference.

use crate::output::filled_in_parts;
use crate::scratch::with_scratch;
use crate::simd::vectorized;
#[cfg(target_arch = "x86_64")]
use crate::{output::written_in_parts, pool_avx512};

/// Pooling geometry: window, stride, symmetric zero padding (`[rows, columns]` each), and for
/// average pooling whether padded positions count in the divisor (PyTorch's
/// `count_include_pad`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Padding on each side.
    pub padding: [usize; 2],
    /// Average pooling: divide by the whole window, padding included (else by its inside).
    pub count_include_pad: bool,
}

/// Every size of one pooling: input `[n, c, h, w]`, output `[n, c, oh, ow]` (floor mode).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub p: PoolParams,
}

impl PoolShape {
    /// `None` when the window does not fit the padded input or a size is zero.
    pub fn new(input: [usize; 4], p: PoolParams) -> Option<Self> {
        let [n, c, h, w] = input;
        let [kh, kw] = p.kernel;
        let [sh, sw] = p.stride;
        let [ph, pw] = p.padding;
        let fits = kh > 0 && kw > 0 && sh > 0 && sw > 0 && h + 2 * ph >= kh && w + 2 * pw >= kw;
        fits.then(|| Self {
            planes: n * c,
            h,
            w,
            oh: (h + 2 * ph - kh) / sh + 1,
            ow: (w + 2 * pw - kw) / sw + 1,
            p,
        })
    }

    /// The input rows (or columns) under output position `o` along one axis, clipped to the
    /// image.
    fn window(o: usize, stride: usize, pad: usize, kernel: usize, size: usize) -> (usize, usize) {
        let start = (o * stride).saturating_sub(pad);
        let end = (o * stride + kernel).saturating_sub(pad).min(size);
        (start, end)
    }

    fn rows(&self, oy: usize) -> (usize, usize) {
        Self::window(
            oy,
            self.p.stride[0],
            self.p.padding[0],
            self.p.kernel[0],
            self.h,
        )
    }

    fn cols(&self, ox: usize) -> (usize, usize) {
        Self::window(
            ox,
            self.p.stride[1],
            self.p.padding[1],
            self.p.kernel[1],
            self.w,
        )
    }

    /// Where the maximum of output `(oy, ox)`'s window lies in its plane: the first in row-major
    /// order, as PyTorch picks among ties (a NaN wins).
    fn argmax(&self, plane: &[f32], oy: usize, ox: usize) -> usize {
        let ((y0, y1), (x0, x1)) = (self.rows(oy), self.cols(ox));
        let (mut best, mut at) = (f32::NEG_INFINITY, y0 * self.w + x0);
        for y in y0..y1 {
            for (x, &v) in plane[y * self.w..][x0..x1].iter().enumerate() {
                if v > best || v.is_nan() {
                    (best, at) = (v, y * self.w + x0 + x);
                    if v.is_nan() {
                        return at;
                    }
                }
            }
        }
        at
    }

    /// What a window's sum is divided by: the whole window, or only its part inside the image.
    fn divisor(&self, (y0, y1): (usize, usize), (x0, x1): (usize, usize)) -> f32 {
        if self.p.count_include_pad {
            (self.p.kernel[0] * self.p.kernel[1]) as f32
        } else {
            ((y1 - y0) * (x1 - x0)) as f32
        }
    }
}

/// A pooling forward: each output is `window(plane, rows, columns)` over its window, clipped to
/// the image.
fn forward_with(
    s: &PoolShape,
    x: &[f32],
    window: impl Fn(&[f32], (usize, usize), (usize, usize)) -> f32 + Sync,
) -> Vec<f32> {
    let (hw, p) = (s.h * s.w, s.oh * s.ow);
    filled_in_parts(s.planes * p, p, true, 4, |plane, out| {
        let input = &x[plane * hw..][..hw];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                out[oy * s.ow + ox] = window(input, s.rows(oy), s.cols(ox));
            }
        }
    })
}

/// `b` if it is larger than `a` or NaN, else `a`: a maximum through which a NaN propagates.
#[inline(always)]
fn nan_max(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() { b } else { a }
}

/// Max pooling forward: the largest value of each window, NaN if the window holds one (the
/// value at [`PoolShape::argmax`], found without tracking where it is). Separably: the maximum
/// across each input row's column windows, then down each output's rows, `kh + kw` instead of
/// `kh · kw` comparisons per output, in loops that vectorize.
pub(crate) fn max_forward(s: &PoolShape, x: &[f32]) -> Vec<f32> {
    let (hw, p) = (s.h * s.w, s.oh * s.ow);
    #[cfg(target_arch = "x86_64")]
    if s.p.kernel == [3, 3]
        && s.p.stride == [2, 2]
        && s.p.padding == [1, 1]
        && pool_avx512::available()
    {
        return written_in_parts(s.planes * p, p, true, 4, |plane, out| {
            let input = &x[plane * hw..][..hw];
            with_scratch(pool_avx512::scratch_len(s.w), |scratch| {
                // SAFETY: AVX-512F is available (checked).
                unsafe { pool_avx512::max_3x3_s2_plane(input, (s.h, s.w), scratch, out) }
            })
        });
    }
    let cols: Vec<(usize, usize)> = (0..s.ow).map(|ox| s.cols(ox)).collect();
    filled_in_parts(s.planes * p, p, true, 4, |plane, out| {
        let input = &x[plane * hw..][..hw];
        vectorized(
            #[inline(always)]
            || {
                with_scratch(
                    s.h * s.ow,
                    #[inline(always)]
                    |across| {
                        for (row, maxima) in
                            input.chunks_exact(s.w).zip(across.chunks_exact_mut(s.ow))
                        {
                            for (m, &(x0, x1)) in maxima.iter_mut().zip(&cols) {
                                *m = row[x0..x1]
                                    .iter()
                                    .fold(f32::NEG_INFINITY, |m, &v| nan_max(m, v));
                            }
                        }
                        for (oy, dst) in out.chunks_exact_mut(s.ow).enumerate() {
                            let (y0, y1) = s.rows(oy);
                            dst.fill(f32::NEG_INFINITY);
                            for maxima in across[y0 * s.ow..y1 * s.ow].chunks_exact(s.ow) {
                                for (d, &m) in dst.iter_mut().zip(maxima) {
                                    *d = nan_max(*d, m);
                                }
                            }
                        }
                    },
                )
            },
        );
    })
}

/// Max pooling backward: each output gradient goes to its window's maximum in `x`.
pub(crate) fn max_backward(s: &PoolShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (hw, p) = (s.h * s.w, s.oh * s.ow);
    filled_in_parts(s.planes * hw, hw, true, 4, |plane, dx| {
        let input = &x[plane * hw..][..hw];
        let dy = &grad[plane * p..][..p];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                dx[s.argmax(input, oy, ox)] += dy[oy * s.ow + ox];
            }
        }
    })
}

/// Average pooling forward: one sequential sum per window in row-major order, as PyTorch's
/// kernel adds, over the divisor the parameters ask for. Without padding every window is
/// whole: each output row is summed tap by tap across the row, the same order per output.
pub(crate) fn avg_forward(s: &PoolShape, x: &[f32]) -> Vec<f32> {
    if s.p.padding != [0, 0] {
        return forward_with(s, x, |input, (y0, y1), (x0, x1)| {
            let mut sum = 0.0f32;
            for y in y0..y1 {
                for &v in &input[y * s.w..][x0..x1] {
                    sum += v;
                }
            }
            sum / s.divisor((y0, y1), (x0, x1))
        });
    }
    let (hw, p) = (s.h * s.w, s.oh * s.ow);
    let ([kh, kw], [sh, sw]) = (s.p.kernel, s.p.stride);
    let divisor = (kh * kw) as f32;
    filled_in_parts(s.planes * p, p, true, 4, |plane, out| {
        let input = &x[plane * hw..][..hw];
        vectorized(
            #[inline(always)]
            || {
                for (oy, dst) in out.chunks_exact_mut(s.ow).enumerate() {
                    if (kh, kw, sh, sw) == (2, 2, 2, 2) {
                        // OSNet's transitions: pairs of values read as interleaved vectors (a
                        // strided tap loop stayed scalar: 15 % of a batch-32 forward).
                        let top = input[2 * oy * s.w..][..2 * s.ow].chunks_exact(2);
                        let bottom = input[(2 * oy + 1) * s.w..][..2 * s.ow].chunks_exact(2);
                        for ((d, a), b) in dst.iter_mut().zip(top).zip(bottom) {
                            *d = (a[0] + a[1] + b[0] + b[1]) / divisor;
                        }
                        continue;
                    }
                    for row in input[oy * sh * s.w..][..kh * s.w].chunks_exact(s.w) {
                        for kx in 0..kw {
                            let taps = &row[kx..][..(s.ow - 1) * sw + 1];
                            for (d, &v) in dst.iter_mut().zip(taps.iter().step_by(sw)) {
                                *d += v;
                            }
                        }
                    }
                    dst.iter_mut().for_each(|d| *d /= divisor);
                }
            },
        );
    })
}

/// Average pooling backward: each output gradient spread evenly over its window.
pub(crate) fn avg_backward(s: &PoolShape, grad: &[f32]) -> Vec<f32> {
    let (hw, p) = (s.h * s.w, s.oh * s.ow);
    filled_in_parts(s.planes * hw, hw, true, 4, |plane, dx| {
        let dy = &grad[plane * p..][..p];
        for oy in 0..s.oh {
            let (y0, y1) = s.rows(oy);
            for ox in 0..s.ow {
                let (x0, x1) = s.cols(ox);
                let share = dy[oy * s.ow + ox] / s.divisor((y0, y1), (x0, x1));
                for y in y0..y1 {
                    dx[y * s.w..][x0..x1].iter_mut().for_each(|d| *d += share);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_in_a_window_wins_forward_and_backward() {
        let params = PoolParams {
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0, 0],
            count_include_pad: true,
        };
        let s = PoolShape::new([1, 1, 2, 4], params).unwrap();
        let x = [1.0, 5.0, 2.0, 2.0, f32::NAN, 3.0, 2.0, 0.0];
        let y = max_forward(&s, &x);
        assert!(y[0].is_nan());
        // The second window's maximum is tied (2.0 three times): the first one gets the gradient.
        assert_eq!(y[1], 2.0);
        let dx = max_backward(&s, &x, &[1.0, 10.0]);
        assert_eq!(dx, [0.0, 0.0, 10.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    }
}
