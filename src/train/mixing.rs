//! deep-object-reid's batch mixing (`loss.softmax.augmentations`): each image of a batch is
//! mixed with a partner image of the same batch — blended (MixUp), a box of it pasted in
//! (CutMix) or a low-frequency Fourier mask deciding each pixel (FMix) — and the identity loss
//! is taken against both identities, weighted by the share `lam` of the image that is its own.

use std::ops::Range;

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::rng::Rng;
use crate::error::{Error, Result};

/// How the partner image enters (`aug_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MixKind {
    /// `lam · image + (1 − lam) · partner`.
    Mixup,
    /// A box of the partner, `1 − lam` of the area, pasted in; `lam` is then the area kept.
    Cutmix,
    /// The partner's pixels where a low-frequency random mask is lowest, `1 − lam` of them.
    Fmix,
}

/// Batch mixing's settings, with deep-object-reid's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixingConfig {
    /// The mixing (`aug_type`).
    pub kind: MixKind,
    /// `lam` is drawn from Beta(alpha, alpha) (`alpha`).
    #[serde(default = "one")]
    pub alpha: f32,
    /// Probability that a batch is mixed (`aug_prob`).
    #[serde(default = "one")]
    pub probability: f32,
    /// FMix: the spectrum falls as 1 / frequency^decay_power (`fmix.decay_power`).
    #[serde(default = "three")]
    pub decay_power: f32,
}

fn one() -> f32 {
    1.0
}

fn three() -> f32 {
    3.0
}

impl MixingConfig {
    /// `kind` with deep-object-reid's defaults (alpha 1, every batch, decay power 3).
    pub fn new(kind: MixKind) -> Self {
        Self {
            kind,
            alpha: one(),
            probability: one(),
            decay_power: three(),
        }
    }

    /// Refuses settings that cannot draw a mix.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidInput(format!("loss.mixing: {what}")));
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad(&format!("alpha must be > 0, not {}", self.alpha));
        }
        if !(0.0..=1.0).contains(&self.probability) {
            return bad(&format!(
                "probability must lie in [0, 1], not {}",
                self.probability
            ));
        }
        if !(self.decay_power.is_finite() && self.decay_power > 0.0) {
            return bad(&format!(
                "decay_power must be > 0, not {}",
                self.decay_power
            ));
        }
        Ok(())
    }
}

/// Which pixels of each image come from its partner.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    /// Every pixel, blended (MixUp).
    Blend,
    /// The pixels of a box, rows × columns (CutMix).
    Box {
        /// Rows of the box.
        rows: Range<usize>,
        /// Columns of the box.
        cols: Range<usize>,
    },
    /// Row-major `[H, W]`: 1 keeps the image's own pixel, 0 takes the partner's (FMix).
    Mask(Vec<f32>),
}

/// How one batch is mixed: image `i` with image `partner[i]`, `lam` its own share.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// Each image's partner (a permutation of the batch).
    pub partner: Vec<usize>,
    /// The share of each mixed image that is its own, and the weight of its own identity.
    pub lam: f32,
    /// Which pixels the partner gives.
    pub region: Region,
}

impl Mix {
    /// Draws the mix of a batch of `batch` images of `height` × `width`, or `None` when this
    /// batch stays as it is (`probability`).
    pub fn draw(
        config: &MixingConfig,
        batch: usize,
        height: usize,
        width: usize,
        rng: &mut Rng,
    ) -> Option<Mix> {
        if rng.unit() >= config.probability {
            return None;
        }
        let alpha = f64::from(config.alpha);
        let lam = rng.beta(alpha, alpha) as f32;
        let mut partner: Vec<usize> = (0..batch).collect();
        rng.shuffle(&mut partner);
        let (lam, region) = match config.kind {
            MixKind::Mixup => (lam, Region::Blend),
            MixKind::Cutmix => {
                let centre = (rng.below(height), rng.below(width));
                cut_box(lam, height, width, centre)
            }
            MixKind::Fmix => {
                let bins = height * (width / 2 + 1);
                let noise: Vec<f32> = (0..2 * bins).map(|_| rng.normal()).collect();
                let low = low_frequency_image(&noise, height, width, config.decay_power);
                let round_up = rng.chance(0.5);
                (lam, Region::Mask(binarise(&low, lam, round_up)))
            }
        };
        Some(Mix {
            partner,
            lam,
            region,
        })
    }

    /// The mixed batch `[B, C, H, W]`.
    pub fn apply(&self, images: Tensor<4>) -> Tensor<4> {
        let device = images.device();
        let [_, _, height, width] = images.dims();
        let partners = images.clone().select(0, self.order(&device));
        let own = match &self.region {
            Region::Blend => return images * self.lam + partners * (1.0 - self.lam),
            Region::Box { rows, cols } => {
                let mut keep = vec![1.0f32; height * width];
                for r in rows.clone() {
                    keep[r * width + cols.start..r * width + cols.end].fill(0.0);
                }
                keep
            }
            Region::Mask(mask) => mask.clone(),
        };
        let keep = Tensor::<4>::from_data(TensorData::new(own, [1, 1, height, width]), &device);
        images * keep.clone() + partners * (keep.neg() + 1.0)
    }

    /// The partners' identities.
    pub fn partner_targets(&self, targets: Tensor<1, Int>) -> Tensor<1, Int> {
        let order = self.order(&targets.device());
        targets.select(0, order)
    }

    /// The partners' positions as an index tensor.
    fn order(&self, device: &burn::tensor::Device) -> Tensor<1, Int> {
        let order: Vec<i64> = self.partner.iter().map(|&i| i as i64).collect();
        Tensor::from_data(TensorData::new(order, [self.partner.len()]), device)
    }
}

/// CutMix's box around `centre` (row, column) for a drawn `lam`, as deep-object-reid cuts it:
/// sides of `(1 − lam)^½` of the image's, halved and truncated on each side of the centre,
/// clipped to the image; `lam` becomes the share of the area left outside the box.
pub fn cut_box(lam: f32, height: usize, width: usize, centre: (usize, usize)) -> (f32, Region) {
    let ratio = (1.0 - lam).max(0.0).sqrt();
    let half_rows = (height as f32 * ratio) as i64 / 2;
    let half_cols = (width as f32 * ratio) as i64 / 2;
    let span = |c: usize, half: i64, n: usize| {
        let clip = |v: i64| v.clamp(0, n as i64) as usize;
        clip(c as i64 - half)..clip(c as i64 + half)
    };
    let rows = span(centre.0, half_rows, height);
    let cols = span(centre.1, half_cols, width);
    let area = rows.len() * cols.len();
    let lam = 1.0 - area as f32 / (height * width) as f32;
    (lam, Region::Box { rows, cols })
}

/// FMix's low-frequency image `[H, W]` from complex Gaussian `noise` (`2 · H · (W/2 + 1)`
/// values: real and imaginary part of each frequency bin, row-major): the noise shaped by
/// 1 / max(f, 1/max(H, W))^decay and brought back by the inverse real 2-D Fourier transform
/// (numpy's `irfftn`), as the FMix paper's code intends it. (deep-object-reid's copy indexes
/// the spectrum along the wrong axis, which leaves one horizontal frequency; not reproduced.)
pub fn low_frequency_image(noise: &[f32], height: usize, width: usize, decay: f32) -> Vec<f32> {
    let bins = width / 2 + 1;
    assert_eq!(noise.len(), 2 * height * bins, "FMix noise size");
    let frequency = |i: usize, n: usize| {
        // numpy's fftfreq: 0, 1, …, then the negative frequencies.
        let k = if i <= (n - 1) / 2 {
            i as f64
        } else {
            i as f64 - n as f64
        };
        k / n as f64
    };
    let floor = 1.0 / height.max(width) as f64;
    // Each bin's complex value, the spectrum's shape applied.
    let mut z = vec![(0.0f64, 0.0f64); height * bins];
    for j in 0..height {
        let fy = frequency(j, height);
        for k in 0..bins {
            let fx = k as f64 / width as f64;
            let f = (fx * fx + fy * fy).sqrt().max(floor);
            let scale = 1.0 / f.powf(f64::from(decay));
            let at = j * bins + k;
            z[at] = (
                scale * f64::from(noise[2 * at]),
                scale * f64::from(noise[2 * at + 1]),
            );
        }
    }
    // Inverse transform along the rows (complex), then along the columns (real output: the
    // imaginary parts of the first and, for even widths, last bins are ignored, as numpy does).
    let mut rows = vec![(0.0f64, 0.0f64); height * bins];
    for y in 0..height {
        for k in 0..bins {
            let (mut re, mut im) = (0.0, 0.0);
            for j in 0..height {
                let angle = std::f64::consts::TAU * (j * y % height) as f64 / height as f64;
                let (s, c) = angle.sin_cos();
                let (a, b) = z[j * bins + k];
                re += a * c - b * s;
                im += a * s + b * c;
            }
            rows[y * bins + k] = (re / height as f64, im / height as f64);
        }
    }
    let nyquist = width.is_multiple_of(2);
    let mut image = vec![0.0f32; height * width];
    for y in 0..height {
        for x in 0..width {
            let mut v = rows[y * bins].0;
            for k in 1..bins {
                let (a, b) = rows[y * bins + k];
                if nyquist && k == bins - 1 {
                    v += a * if x % 2 == 0 { 1.0 } else { -1.0 };
                } else {
                    let angle = std::f64::consts::TAU * (k * x % width) as f64 / width as f64;
                    let (s, c) = angle.sin_cos();
                    v += 2.0 * (a * c - b * s);
                }
            }
            image[y * width + x] = (v / width as f64) as f32;
        }
    }
    image
}

/// FMix's binary mask: the `lam · N` largest values of `image` (rounded up or down as drawn)
/// keep the image's own pixels (1), the rest take the partner's (0).
pub fn binarise(image: &[f32], lam: f32, round_up: bool) -> Vec<f32> {
    let n = image.len();
    let wanted = f64::from(lam) * n as f64;
    let keep = if round_up {
        wanted.ceil()
    } else {
        wanted.floor()
    } as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| image[b].total_cmp(&image[a]));
    let mut mask = vec![0.0f32; n];
    for &i in order.iter().take(keep.min(n)) {
        mask[i] = 1.0;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutmix_boxes_are_cut_and_clipped_as_deep_object_reid_cuts_them() {
        // lam 0.75 on 64 × 32: sides 32 × 16, halves 16 and 8 around (10, 30).
        let (lam, region) = cut_box(0.75, 64, 32, (10, 30));
        assert_eq!(
            region,
            Region::Box {
                rows: 0..26,
                cols: 22..32
            }
        );
        assert_eq!(lam, 1.0 - (26.0 * 10.0) / (64.0 * 32.0));
        // lam 1: an empty box, nothing mixed.
        let (lam, region) = cut_box(1.0, 64, 32, (5, 5));
        assert_eq!(lam, 1.0);
        assert_eq!(
            region,
            Region::Box {
                rows: 5..5,
                cols: 5..5
            }
        );
    }

    #[test]
    fn draws_respect_the_settings() {
        let mut never = MixingConfig::new(MixKind::Mixup);
        never.probability = 0.0;
        let mut rng = Rng::new(1);
        assert!((0..50).all(|_| Mix::draw(&never, 8, 16, 8, &mut rng).is_none()));
        for kind in [MixKind::Mixup, MixKind::Cutmix, MixKind::Fmix] {
            let config = MixingConfig::new(kind);
            let mix = Mix::draw(&config, 8, 16, 8, &mut rng).unwrap();
            let mut sorted = mix.partner.clone();
            sorted.sort();
            assert_eq!(sorted, (0..8).collect::<Vec<_>>());
            assert!((0.0..=1.0).contains(&mix.lam), "{kind:?} {}", mix.lam);
            if let Region::Mask(mask) = &mix.region {
                let kept = mask.iter().filter(|&&m| m == 1.0).count() as f32;
                assert!((kept - mix.lam * 128.0).abs() <= 1.0);
            }
        }
        let mut bad = MixingConfig::new(MixKind::Cutmix);
        bad.alpha = 0.0;
        assert!(bad.validate().is_err());
        bad.alpha = 1.0;
        bad.probability = 1.5;
        assert!(bad.validate().is_err());
    }
}
