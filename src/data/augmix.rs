//! AugMix (Hendrycks et al., ICLR 2020), as deep-object-reid applies it: `width` = 3 chains of
//! 1–3 random operations at severity 3, mixed with Dirichlet(1) weights, the mixture blended
//! with the original by a Beta(1, 1) factor. The operations are PIL's, with PIL's rules
//! (`image_ops`: look-up tables per channel; affine maps sampled bilinearly, black outside).

use crate::data::image_ops::{self, Resample};
use crate::data::rng::Rng;

/// Chains mixed.
const WIDTH: usize = 3;
/// Operation strength, 1–10 (AugMix's default).
const SEVERITY: f32 = 3.0;

/// One PIL operation of AugMix's list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// Stretch each channel to the full range.
    AutoContrast,
    /// Histogram equalization per channel.
    Equalize,
    /// Keep this many high bits per channel.
    Posterize(u32),
    /// Invert values at or above the threshold.
    Solarize(u32),
    /// Counter-clockwise rotation about the centre, in degrees.
    Rotate(f64),
    /// Horizontal shear factor.
    ShearX(f64),
    /// Vertical shear factor.
    ShearY(f64),
    /// Horizontal shift in pixels.
    TranslateX(f64),
    /// Vertical shift in pixels.
    TranslateY(f64),
}

/// Applies one operation to an RGB image of `w × h`.
pub fn apply(op: Op, rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
    let shift = |m: [f64; 6]| image_ops::affine(rgb, w, h, m, Resample::Bilinear, [0; 3]);
    match op {
        Op::AutoContrast => image_ops::autocontrast(rgb),
        Op::Equalize => image_ops::equalize(rgb),
        Op::Posterize(bits) => image_ops::posterize(rgb, bits),
        Op::Solarize(threshold) => image_ops::solarize(rgb, threshold as f32),
        Op::Rotate(degrees) => image_ops::affine(
            rgb,
            w,
            h,
            image_ops::rotation(degrees, w, h),
            Resample::Bilinear,
            [0; 3],
        ),
        Op::ShearX(s) => shift([1.0, s, 0.0, 0.0, 1.0, 0.0]),
        Op::ShearY(s) => shift([1.0, 0.0, 0.0, s, 1.0, 0.0]),
        Op::TranslateX(t) => shift([1.0, 0.0, t, 0.0, 1.0, 0.0]),
        Op::TranslateY(t) => shift([1.0, 0.0, 0.0, 0.0, 1.0, t]),
    }
}

/// AugMix's `sample_level`: uniform in [0.1, severity).
fn level(rng: &mut Rng) -> f32 {
    rng.range(0.1, SEVERITY)
}

fn signed(value: f32, rng: &mut Rng) -> f64 {
    let value = value as f64;
    if rng.unit() > 0.5 { -value } else { value }
}

/// One random operation at AugMix's severity (its `int_parameter` / `float_parameter` scales).
fn random_op(w: usize, h: usize, rng: &mut Rng) -> Op {
    match rng.below(9) {
        0 => Op::AutoContrast,
        1 => Op::Equalize,
        2 => Op::Posterize(4 - (level(rng) * 4.0 / 10.0) as u32),
        3 => Op::Rotate(signed((level(rng) * 30.0 / 10.0).trunc(), rng)),
        4 => Op::Solarize(256 - (level(rng) * 256.0 / 10.0) as u32),
        5 => Op::ShearX(signed(level(rng) * 0.3 / 10.0, rng)),
        6 => Op::ShearY(signed(level(rng) * 0.3 / 10.0, rng)),
        7 => Op::TranslateX(signed((level(rng) * (w as f32 / 3.0) / 10.0).trunc(), rng)),
        _ => Op::TranslateY(signed((level(rng) * (h as f32 / 3.0) / 10.0).trunc(), rng)),
    }
}

/// The AugMix of an RGB image: `(1 − m) · image + m · Σ_i w_i · chain_i(image)`, as floats in
/// 0–255 (interleaved RGB like the input).
pub fn augmix(rgb: &[u8], w: usize, h: usize, rng: &mut Rng) -> Vec<f32> {
    // Dirichlet(1, …, 1) is normalized unit exponentials; Beta(1, 1) is uniform.
    let draws: Vec<f32> = (0..WIDTH)
        .map(|_| -(1.0 - rng.unit()).max(f32::MIN_POSITIVE).ln())
        .collect();
    let total: f32 = draws.iter().sum();
    let m = rng.unit();
    let mut mixed: Vec<f32> = rgb.iter().map(|&v| (1.0 - m) * v as f32).collect();
    for draw in draws {
        let weight = m * draw / total;
        let mut chain = rgb.to_vec();
        for _ in 0..1 + rng.below(3) {
            chain = apply(random_op(w, h, rng), &chain, w, h);
        }
        mixed
            .iter_mut()
            .zip(&chain)
            .for_each(|(out, &v)| *out += weight * v as f32);
    }
    mixed
}
