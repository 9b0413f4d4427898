//! AugMix (Hendrycks et al., ICLR 2020), as deep-object-reid applies it: `width` = 3 chains of
//! 1–3 random operations at severity 3, mixed with Dirichlet(1) weights, the mixture blended
//! with the original by a Beta(1, 1) factor. The operations are PIL's, with PIL's rules
//! (look-up tables per channel; affine maps sampled bilinearly at pixel centres, black outside).

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
    Rotate(f32),
    /// Horizontal shear factor.
    ShearX(f32),
    /// Vertical shear factor.
    ShearY(f32),
    /// Horizontal shift in pixels.
    TranslateX(f32),
    /// Vertical shift in pixels.
    TranslateY(f32),
}

fn per_channel_lut(rgb: &[u8], lut_for: impl Fn(&[u64; 256]) -> [u8; 256]) -> Vec<u8> {
    let mut out = rgb.to_vec();
    for c in 0..3 {
        let mut histogram = [0u64; 256];
        rgb.iter()
            .skip(c)
            .step_by(3)
            .for_each(|&v| histogram[v as usize] += 1);
        let lut = lut_for(&histogram);
        out.iter_mut()
            .skip(c)
            .step_by(3)
            .for_each(|v| *v = lut[*v as usize]);
    }
    out
}

fn identity_lut() -> [u8; 256] {
    std::array::from_fn(|i| i as u8)
}

/// PIL's `ImageOps.autocontrast` (no cut-off).
fn autocontrast_lut(h: &[u64; 256]) -> [u8; 256] {
    let lo = h.iter().position(|&n| n > 0);
    let hi = h.iter().rposition(|&n| n > 0);
    match (lo, hi) {
        (Some(lo), Some(hi)) if hi > lo => {
            let scale = 255.0 / (hi - lo) as f64;
            let offset = -(lo as f64) * scale;
            std::array::from_fn(|i| (i as f64 * scale + offset).clamp(0.0, 255.0) as u8)
        }
        _ => identity_lut(),
    }
}

/// PIL's `ImageOps.equalize`.
fn equalize_lut(h: &[u64; 256]) -> [u8; 256] {
    let used: Vec<u64> = h.iter().copied().filter(|&n| n > 0).collect();
    if used.len() <= 1 {
        return identity_lut();
    }
    let step = (used.iter().sum::<u64>() - used[used.len() - 1]) / 255;
    if step == 0 {
        return identity_lut();
    }
    let mut n = step / 2;
    std::array::from_fn(|i| {
        let v = (n / step).min(255) as u8;
        n += h[i];
        v
    })
}

/// Samples `rgb` through the affine map from output to input coordinates
/// `(a x + b y + c, d x + e y + f)`, at pixel centres, bilinearly, black outside (PIL's
/// `Image.transform(AFFINE, BILINEAR)`).
fn affine(rgb: &[u8], w: usize, h: usize, m: [f32; 6]) -> Vec<u8> {
    let mut out = vec![0u8; rgb.len()];
    let at = |x: isize, y: isize, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
            0.0
        } else {
            rgb[(y as usize * w + x as usize) * 3 + c] as f32
        }
    };
    for y in 0..h {
        for x in 0..w {
            let (cx, cy) = (x as f32 + 0.5, y as f32 + 0.5);
            let sx = m[0] * cx + m[1] * cy + m[2] - 0.5;
            let sy = m[3] * cx + m[4] * cy + m[5] - 0.5;
            if sx < -0.5 || sy < -0.5 || sx > w as f32 - 0.5 || sy > h as f32 - 0.5 {
                continue;
            }
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            // Neighbours outside the image repeat the edge, as PIL's bilinear filter does.
            let clampx = |x: isize| x.clamp(0, w as isize - 1);
            let clampy = |y: isize| y.clamp(0, h as isize - 1);
            for c in 0..3 {
                let p = |dx, dy| at(clampx(x0 + dx), clampy(y0 + dy), c);
                let top = p(0, 0) * (1.0 - fx) + p(1, 0) * fx;
                let bottom = p(0, 1) * (1.0 - fx) + p(1, 1) * fx;
                let v = top * (1.0 - fy) + bottom * fy;
                out[(y * w + x) * 3 + c] = (v + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// PIL's `Image.rotate(degrees)` map: about the centre, counter-clockwise.
fn rotation(degrees: f32, w: usize, h: usize) -> [f32; 6] {
    let angle = -degrees.to_radians();
    let (cos, sin) = (angle.cos(), angle.sin());
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let mut m = [cos, sin, 0.0, -sin, cos, 0.0];
    m[2] = m[0] * -cx + m[1] * -cy + cx;
    m[5] = m[3] * -cx + m[4] * -cy + cy;
    m
}

/// Applies one operation to an RGB image of `w × h`.
pub fn apply(op: Op, rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
    match op {
        Op::AutoContrast => per_channel_lut(rgb, autocontrast_lut),
        Op::Equalize => per_channel_lut(rgb, equalize_lut),
        Op::Posterize(bits) => {
            let mask = !((1u32 << (8 - bits.min(8))) - 1) as u8;
            rgb.iter().map(|v| v & mask).collect()
        }
        Op::Solarize(threshold) => rgb
            .iter()
            .map(|&v| if (v as u32) < threshold { v } else { 255 - v })
            .collect(),
        Op::Rotate(degrees) => affine(rgb, w, h, rotation(degrees, w, h)),
        Op::ShearX(s) => affine(rgb, w, h, [1.0, s, 0.0, 0.0, 1.0, 0.0]),
        Op::ShearY(s) => affine(rgb, w, h, [1.0, 0.0, 0.0, s, 1.0, 0.0]),
        Op::TranslateX(t) => affine(rgb, w, h, [1.0, 0.0, t, 0.0, 1.0, 0.0]),
        Op::TranslateY(t) => affine(rgb, w, h, [1.0, 0.0, 0.0, 0.0, 1.0, t]),
    }
}

/// AugMix's `sample_level`: uniform in [0.1, severity).
fn level(rng: &mut Rng) -> f32 {
    rng.range(0.1, SEVERITY)
}

fn signed(value: f32, rng: &mut Rng) -> f32 {
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
