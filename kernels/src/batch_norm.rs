//! Training-mode batch normalization over `[n, c, rest]`, fused: statistics in two passes over
//! each channel and one normalizing pass, and a backward of two passes; Burn's composition of
//! elementwise operations made about a dozen passes forward and twice that backward.

use rayon::prelude::*;

use crate::output::filled_in_parts;
use crate::simd::vectorized;

/// Sizes of a `[n, c, rest]` activation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NormShape {
    pub n: usize,
    pub c: usize,
    pub rest: usize,
}

impl NormShape {
    /// The `n` runs of channel `c` in `x`.
    fn runs<'a>(&self, x: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        (0..self.n).map(move |i| &x[(i * self.c + c) * self.rest..][..self.rest])
    }

    fn count(&self) -> f64 {
        (self.n * self.rest) as f64
    }
}

/// Per-channel mean and biased variance, in two passes of sequential `f32` sums. The first
/// layers' gradients of a network react to the last bits of these statistics: with `f64` sums,
/// or `f32` sums in eight lanes, one SGD step of osnet_x0_25 moved away from PyTorch's in conv1
/// (cosine 0.9997 where these sums give 0.99999), although all three match PyTorch per
/// operation.
pub(crate) fn statistics(s: NormShape, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let count = s.count() as f32;
    let groups: Vec<Vec<(f32, f32)>> = (0..s.c.div_ceil(INTERLEAVED))
        .into_par_iter()
        .map(|group| {
            let first = group * INTERLEAVED;
            let k = INTERLEAVED.min(s.c - first);
            let means = interleaved_sums(s, x, first, k, |_, v| v).map(|sum| sum / count);
            let squares = interleaved_sums(s, x, first, k, |j, v| (v - means[j]) * (v - means[j]));
            (0..k).map(|j| (means[j], squares[j] / count)).collect()
        })
        .collect();
    groups.into_iter().flatten().unzip()
}

/// Channels whose sequential sums run side by side: one `f32` sum waits for the previous
/// addition, so a single channel runs at the adder's latency; eight independent ones keep it
/// busy without changing any channel's order of additions.
const INTERLEAVED: usize = 8;

/// For channels `first..first + k` (`k ≤ INTERLEAVED`): the sum over images of the sequential
/// sum of `term(j, value)` over each image's run, the order [`statistics`] documents.
#[inline(always)]
fn interleaved_sums(
    s: NormShape,
    x: &[f32],
    first: usize,
    k: usize,
    term: impl Fn(usize, f32) -> f32,
) -> [f32; INTERLEAVED] {
    let mut totals = [0.0f32; INTERLEAVED];
    for i in 0..s.n {
        let run = |j: usize| &x[(i * s.c + first + j) * s.rest..][..s.rest];
        let mut partial = [0.0f32; INTERLEAVED];
        if k == INTERLEAVED {
            let runs: [&[f32]; INTERLEAVED] = std::array::from_fn(run);
            // `t` indexes eight runs at once.
            #[allow(clippy::needless_range_loop)]
            for t in 0..s.rest {
                for j in 0..INTERLEAVED {
                    partial[j] += term(j, runs[j][t]);
                }
            }
        } else {
            for (j, partial) in partial.iter_mut().enumerate().take(k) {
                for &v in run(j) {
                    *partial += term(j, v);
                }
            }
        }
        for (total, partial) in totals.iter_mut().zip(partial) {
            *total += partial;
        }
    }
    totals
}

/// `1 / sqrt(var + epsilon)` per channel.
pub(crate) fn inverse_std(var: &[f32], epsilon: f64) -> Vec<f32> {
    var.iter()
        .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
        .collect()
}

/// Per channel `(scale, shift)` with `y = x · scale + shift`: `scale = inv_std · gamma`,
/// `shift = beta − mean · scale`. The forward and, with a ReLU after, the backward's mask both
/// compute `y` from these, so they agree on every element.
pub(crate) fn affine(mean: &[f32], inv_std: &[f32], gamma: &[f32], beta: &[f32]) -> Vec<[f32; 2]> {
    (0..mean.len())
        .map(|c| {
            let scale = inv_std[c] * gamma[c];
            [scale, beta[c] - mean[c] * scale]
        })
        .collect()
}

/// `y = x · scale + shift` per channel (see [`affine`]), then `max(y, 0)` when `relu`.
pub(crate) fn normalize(s: NormShape, x: &[f32], affine: &[[f32; 2]], relu: bool) -> Vec<f32> {
    filled_in_parts(x.len(), s.rest, true, 1, |plane, y| {
        let [scale, shift] = affine[plane % s.c];
        let x = &x[plane * s.rest..][..s.rest];
        vectorized(
            #[inline(always)]
            || {
                for (y, x) in y.iter_mut().zip(x) {
                    *y = x * scale + shift;
                }
                if relu {
                    y.iter_mut().for_each(|y| *y = y.max(0.0));
                }
            },
        );
    })
}

/// `dy` where the forward's output `x · scale + shift` was positive, else 0: the gradient through
/// the ReLU after the normalization (`gate` is `None` without one).
#[inline(always)]
fn through_relu(dy: f32, x: f32, gate: Option<[f32; 2]>) -> f32 {
    match gate {
        Some([scale, shift]) if x * scale + shift <= 0.0 => 0.0,
        _ => dy,
    }
}

/// Gradients `(dx, dgamma, dbeta)` from the output gradient `dy`; with `relu_after` (the
/// forward's [`affine`]) through the ReLU that followed the normalization.
pub(crate) fn backward(
    s: NormShape,
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    relu_after: Option<&[[f32; 2]]>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let gate = |c: usize| relu_after.map(|affine| affine[c]);
    // Per channel: Σ dy and Σ dy · x̂.
    let sums: Vec<(f64, f64)> = (0..s.c)
        .into_par_iter()
        .map(|c| {
            let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
            for (x, dy) in s.runs(x, c).zip(s.runs(dy, c)) {
                let (a, b) = vectorized(
                    #[inline(always)]
                    || dot_pair(x, dy, mean[c], gate(c)),
                );
                sum_dy += a;
                sum_dy_xhat += b * inv_std[c] as f64;
            }
            (sum_dy, sum_dy_xhat)
        })
        .collect();
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) =
        sums.iter().map(|&(a, b)| (a as f32, b as f32)).unzip();
    let m = s.count();
    // dx = k · (dy − mean(dy) − x̂ · mean(dy · x̂)) with k = γ · inv_std, written per channel as
    // a · dy + b · (x − mean) + c, the coefficients in f64.
    let coefficients: Vec<[f32; 3]> = (0..s.c)
        .map(|c| {
            let (inv_std, k) = (inv_std[c] as f64, gamma[c] as f64 * inv_std[c] as f64);
            let (mean_dy, mean_dy_xhat) = (sums[c].0 / m, sums[c].1 / m);
            [
                k as f32,
                (-k * inv_std * mean_dy_xhat) as f32,
                (-k * mean_dy) as f32,
            ]
        })
        .collect();
    let dx = filled_in_parts(x.len(), s.rest, true, 1, |plane, dx| {
        let c = plane % s.c;
        let [a, b, shift] = coefficients[c];
        let (x, dy) = (
            &x[plane * s.rest..][..s.rest],
            &dy[plane * s.rest..][..s.rest],
        );
        let (mean, gate) = (mean[c], gate(c));
        vectorized(
            #[inline(always)]
            || {
                for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                    *dx = a * through_relu(dy, x, gate) + b * (x - mean) + shift;
                }
            },
        );
    });
    (dx, dgamma, dbeta)
}

/// `(Σ dy, Σ dy · (x − mean))` over one run, `dy` taken [`through_relu`]: eight `f32` partial
/// sums, added in `f64`.
#[inline(always)]
fn dot_pair(x: &[f32], dy: &[f32], mean: f32, gate: Option<[f32; 2]>) -> (f64, f64) {
    let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
    let (xs, dys) = (x.chunks_exact(8), dy.chunks_exact(8));
    let (x_tail, dy_tail) = (xs.remainder(), dys.remainder());
    for (x, dy) in xs.zip(dys) {
        for l in 0..8 {
            let dy = through_relu(dy[l], x[l], gate);
            a[l] += dy;
            b[l] += dy * (x[l] - mean);
        }
    }
    let mut sum_a: f64 = a.iter().map(|&v| v as f64).sum();
    let mut sum_b: f64 = b.iter().map(|&v| v as f64).sum();
    for (&x, &dy) in x_tail.iter().zip(dy_tail) {
        let dy = through_relu(dy, x, gate);
        sum_a += dy as f64;
        sum_b += (dy * (x - mean)) as f64;
    }
    (sum_a, sum_b)
}
