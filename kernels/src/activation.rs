//! SiLU (swish, `x · sigmoid(x)`) and its gradient in one pass each, with an `exp` that
//! vectorizes: Burn computes SiLU as a sigmoid and a product (and their backward) in half a
//! dozen passes, each `exp` a call into libm; in an EfficientNet training step those took
//! 40 % of the time.

use crate::output::filled_in_parts;
use crate::simd::vectorized;

/// Elements per task.
const CHUNK: usize = 1 << 14;

/// `e^x` to within 2 ulp (Cephes' `expf` polynomial on a range reduced by `ln 2`), written so
/// that loops over it vectorize: no calls, no branches. Inputs beyond ±88.3 are clamped (the
/// results stay finite: `e^88.3 ≈ 2.2e38`); NaN stays NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // 1.5 · 2^23: adding it rounds to an integer kept in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-88.3, 88.3);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = p * r * r + r + 1.0;
    // 2^n from n's bits in `t` (the low 9 bits of the mantissa hold n mod 512).
    let two_n = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
    if x.is_nan() { x } else { e_r * two_n }
}

/// `sigmoid(x) = 1 / (1 + e^−x)`.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `x · sigmoid(x)` of every element.
pub(crate) fn silu(x: &[f32]) -> Vec<f32> {
    filled_in_parts(x.len(), CHUNK, true, 1, |part, out| {
        let x = &x[part * CHUNK..][..out.len()];
        vectorized(
            #[inline(always)]
            || {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = v * sigmoid(v);
                }
            },
        );
    })
}

/// The gradient of [`silu`] at `x` times `grad`: `dy · s · (1 + x · (1 − s))`, `s = sigmoid(x)`.
pub(crate) fn silu_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), grad.len(), "SiLU's gradient has its input's size");
    filled_in_parts(x.len(), CHUNK, true, 1, |part, out| {
        let x = &x[part * CHUNK..][..out.len()];
        let dy = &grad[part * CHUNK..][..out.len()];
        vectorized(
            #[inline(always)]
            || {
                for ((o, &v), &d) in out.iter_mut().zip(x).zip(dy) {
                    let s = sigmoid(v);
                    *o = d * s * (1.0 + v * (1.0 - s));
                }
            },
        );
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (ours, libm) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((ours - libm) / libm).abs());
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1000.0) >= 0.0 && exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn silu_and_its_gradient_match_their_formulas_in_f64() {
        let x: Vec<f32> = (0..40_000).map(|i| (i as f32 - 20_000.0) * 1e-3).collect();
        let dy: Vec<f32> = (0..x.len()).map(|i| ((i % 7) as f32 - 3.0) * 0.5).collect();
        let (y, dx) = (silu(&x), silu_backward(&x, &dy));
        for i in 0..x.len() {
            let v = x[i] as f64;
            let s = 1.0 / (1.0 + (-v).exp());
            assert!((y[i] as f64 - v * s).abs() < 1e-6 * (1.0 + (v * s).abs()));
            let want = dy[i] as f64 * s * (1.0 + v * (1.0 - s));
            assert!((dx[i] as f64 - want).abs() < 1e-6 * (1.0 + want.abs()));
        }
    }
}
