//! RandAugment as deep-object-reid applies it (its `randaugment` transform wraps the
//! `randaugment` 1.0.2 package): a policy is one of the 135² ordered pairs of (operation,
//! magnitude 1–9) over 15 Pillow operations, each half of the pair applied with probability
//! 0.5. Grey 128 fills what a geometric operation uncovers.

use crate::data::image_ops::{self, Enhance, Resample};
use crate::data::rng::Rng;

/// The package's 15 operations, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `ImageOps.invert`.
    Invert,
    /// A grey square (125, 122, 113) of side 2–20 at a random centre.
    Cutout,
    /// `ImageEnhance.Sharpness`, factor 1 ± 0.1·m.
    Sharpness,
    /// `ImageOps.autocontrast`.
    AutoContrast,
    /// `ImageOps.posterize` to 8 … 4 bits.
    Posterize,
    /// Horizontal shear ± 0.3·m/9, bicubic.
    ShearX,
    /// Horizontal shift ± (150/331)·m/9 of the width.
    TranslateX,
    /// Vertical shift ± (150/331)·m/9 of the height.
    TranslateY,
    /// Vertical shear ± 0.3·m/9, bicubic.
    ShearY,
    /// Counter-clockwise rotation by 30·m/9 degrees (the package never turns clockwise).
    Rotate,
    /// `ImageOps.equalize`.
    Equalize,
    /// `ImageEnhance.Contrast`, factor 1 ± 0.1·m.
    Contrast,
    /// `ImageEnhance.Color`, factor 1 ± 0.1·m.
    Color,
    /// `ImageOps.solarize` at 256 − 256·m/9.
    Solarize,
    /// `ImageEnhance.Brightness`, factor 1 ± 0.1·m.
    Brightness,
}

/// The operations in the package's order (a policy index counts through them × 9 magnitudes).
pub const OPERATIONS: [Operation; 15] = [
    Operation::Invert,
    Operation::Cutout,
    Operation::Sharpness,
    Operation::AutoContrast,
    Operation::Posterize,
    Operation::ShearX,
    Operation::TranslateX,
    Operation::TranslateY,
    Operation::ShearY,
    Operation::Rotate,
    Operation::Equalize,
    Operation::Contrast,
    Operation::Color,
    Operation::Solarize,
    Operation::Brightness,
];

const FILL: [u8; 3] = [128; 3];
const CUTOUT_FILL: [u8; 3] = [125, 122, 113];

/// `np.linspace(lo, hi, 10)[m]`.
fn linspace(lo: f64, hi: f64, m: usize) -> f64 {
    lo + (hi - lo) * m as f64 / 9.0
}

/// The random choices one operation makes besides its magnitude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draws {
    /// `random.choice([-1, 1])` of the signed operations.
    pub negative: bool,
    /// Cutout's centre (x, y).
    pub centre: (usize, usize),
}

impl Draws {
    fn sample(op: Operation, w: usize, h: usize, rng: &mut Rng) -> Self {
        match op {
            Operation::Cutout => Self {
                negative: false,
                centre: (rng.below(w), rng.below(h)),
            },
            _ => Self {
                negative: rng.chance(0.5),
                centre: (0, 0),
            },
        }
    }
}

/// Applies `op` at magnitude index `m` (1–9) with the given draws.
pub fn apply(op: Operation, m: usize, draws: Draws, rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
    let sign = if draws.negative { -1.0 } else { 1.0 };
    let factor = (1.0 + sign * linspace(0.0, 0.9, m)) as f32;
    let shear = sign * linspace(0.0, 0.3, m);
    let shift = sign * linspace(0.0, 150.0 / 331.0, m);
    let affine = |a: [f64; 6], resample| image_ops::affine(rgb, w, h, a, resample, FILL);
    match op {
        Operation::Invert => image_ops::invert(rgb),
        Operation::Cutout => {
            let size = linspace(0.0, 20.0, m).round() as usize;
            let (cx, cy) = draws.centre;
            let mut out = rgb.to_vec();
            let rect = (
                cx.saturating_sub(size / 2),
                cy.saturating_sub(size / 2),
                cx + size / 2,
                cy + size / 2,
            );
            image_ops::fill_rect(&mut out, w, h, rect, CUTOUT_FILL);
            out
        }
        Operation::Sharpness => image_ops::enhance(rgb, w, h, Enhance::Sharpness, factor),
        Operation::AutoContrast => image_ops::autocontrast(rgb),
        Operation::Posterize => image_ops::posterize(rgb, linspace(8.0, 4.0, m).round() as u32),
        Operation::ShearX => affine([1.0, shear, 0.0, 0.0, 1.0, 0.0], Resample::Bicubic),
        Operation::ShearY => affine([1.0, 0.0, 0.0, shear, 1.0, 0.0], Resample::Bicubic),
        Operation::TranslateX => affine(
            [1.0, 0.0, shift * w as f64, 0.0, 1.0, 0.0],
            Resample::Nearest,
        ),
        Operation::TranslateY => affine(
            [1.0, 0.0, 0.0, 0.0, 1.0, shift * h as f64],
            Resample::Nearest,
        ),
        Operation::Rotate => {
            image_ops::rotate(rgb, w, h, linspace(0.0, 30.0, m), Resample::Nearest, FILL)
        }
        Operation::Equalize => image_ops::equalize(rgb),
        Operation::Contrast => image_ops::enhance(rgb, w, h, Enhance::Contrast, factor),
        Operation::Color => image_ops::enhance(rgb, w, h, Enhance::Color, factor),
        Operation::Solarize => image_ops::solarize(rgb, linspace(256.0, 0.0, m) as f32),
        Operation::Brightness => image_ops::enhance(rgb, w, h, Enhance::Brightness, factor),
    }
}

/// Number of (operation, magnitude) pairs a policy picks from.
pub const CHOICES: usize = OPERATIONS.len() * 9;

/// The (operation, magnitude) of choice `i` (0 … 134).
pub fn choice(i: usize) -> (Operation, usize) {
    (OPERATIONS[i / 9], i % 9 + 1)
}

/// A policy's draws: the two (operation, magnitude) halves, each `None` when its coin said
/// no (probability 0.5).
pub fn draw_policy(rng: &mut Rng) -> [Option<(Operation, usize)>; 2] {
    let policy = rng.below(CHOICES * CHOICES);
    [policy / CHOICES, policy % CHOICES].map(|i| rng.chance(0.5).then(|| choice(i)))
}

/// One RandAugment call: a uniformly random policy of two choices, each applied with
/// probability 0.5, in order.
pub fn randaugment(rgb: &[u8], w: usize, h: usize, rng: &mut Rng) -> Vec<u8> {
    let mut out = rgb.to_vec();
    for (op, m) in draw_policy(rng).into_iter().flatten() {
        let draws = Draws::sample(op, w, h, rng);
        out = apply(op, m, draws, &out, w, h);
    }
    out
}
