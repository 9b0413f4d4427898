//! Training-time image transforms with torchreid's names and parameters, applied to decoded
//! RGB images, ending in the normalized CHW tensor the model takes:
//! resize → `random_crop` (Random2DTranslation) → `random_flip` → `random_patch` → `augmix` →
//! `color_jitter` → `random_grayscale` → normalize → `random_erase`.

use crate::data::augmix::augmix;
use crate::data::erase::{TORCHREID_ERASE, erase_rect, fill_planes};
use crate::data::image_ops::flip;
use crate::data::random_patch::{Patch, PatchPool, SharedPatchPool, random_patch};
use crate::data::rng::Rng;
use crate::data::transform_sections::{RandomPatch, TransformSections};
use crate::error::{Error, Result};
use crate::preprocess::Preprocessing;
use crate::preprocess::resample::resize_rgb;

/// Which augmentations run: torchreid's `data.transforms` list, or deep-object-reid's
/// sections (which then replace the list's pipeline).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Augment {
    /// Mirror left-right with probability 0.5.
    pub random_flip: bool,
    /// With probability 0.5, enlarge by 1/8 and crop back at a random place.
    pub random_crop: bool,
    /// Random brightness (±20 %) and contrast (±15 %), in random order.
    pub color_jitter: bool,
    /// Random erasing (probability 0.5, area 2–40 %, aspect 0.3–3.3).
    pub random_erase: bool,
    /// Grey with probability 0.2.
    pub random_grayscale: bool,
    /// AugMix: the image blended with a mixture of randomly augmented copies.
    pub augmix: bool,
    /// torchreid's `RandomPatch` (either pipeline: the list's name or the sections' `enable`):
    /// its settings when it runs.
    pub random_patch: Option<RandomPatch>,
    /// The patches `random_patch` collected so far in this run.
    pub patch_pool: SharedPatchPool,
    /// deep-object-reid's sections, run in its order instead of the flags above.
    pub sections: Option<TransformSections>,
    /// The images the sections' sample-level mixup blends with (read from its list).
    pub mixup_images: Vec<std::path::PathBuf>,
}

/// Transform names [`Augment::from_names`] accepts.
pub const TRANSFORMS: [&str; 7] = [
    "random_flip",
    "random_crop",
    "random_patch",
    "color_jitter",
    "random_erase",
    "random_grayscale",
    "augmix",
];

impl Augment {
    /// From torchreid's names; an unknown name is an error.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self> {
        let mut a = Self::default();
        for name in names {
            match name.as_ref() {
                "random_flip" => a.random_flip = true,
                "random_crop" => a.random_crop = true,
                "random_patch" => a.random_patch = Some(RandomPatch::torchreid()),
                "color_jitter" => a.color_jitter = true,
                "random_erase" => a.random_erase = true,
                "random_grayscale" => a.random_grayscale = true,
                "augmix" => a.augmix = true,
                other => {
                    return Err(Error::InvalidInput(format!(
                        "unknown transform `{other}`; known: {}",
                        TRANSFORMS.join(", ")
                    )));
                }
            }
        }
        Ok(a)
    }

    /// Adds the patches a batch's images gave (in the batch's order) to the run's pool.
    pub fn collect_patches(&self, patches: impl IntoIterator<Item = Option<Patch>>) {
        if let Some(settings) = &self.random_patch {
            self.patch_pool
                .extend(patches.into_iter().flatten(), settings.pool_capacity);
        }
    }

    /// deep-object-reid's sections, checked.
    pub fn from_sections(sections: &TransformSections) -> Result<Self> {
        sections.validate()?;
        let mixup_images = if sections.mixup.enable {
            sections.mixup.images()?
        } else {
            Vec::new()
        };
        Ok(Self {
            random_patch: Some(sections.random_patch.clone()).filter(|p| p.enable),
            sections: Some(sections.clone()),
            mixup_images,
            ..Self::default()
        })
    }
}

/// torchreid's `Resize` then `Random2DTranslation`: the image at (w, h), or, with probability
/// 0.5, that image enlarged to 1.125× and cropped back to (w, h) at a random offset. The
/// enlargement starts from the (w, h) image, not the original, as torchreid's does: an image of
/// another size is resampled twice (each rounded to 8 bits), which blurs it a little.
fn random_crop(rgb: &[u8], w0: usize, h0: usize, w: usize, h: usize, rng: &mut Rng) -> Vec<u8> {
    let resized = resize_rgb(rgb, w0, h0, w, h);
    if rng.unit() >= 0.5 {
        return resized;
    }
    let (bw, bh) = (
        (w as f32 * 1.125).round() as usize,
        (h as f32 * 1.125).round() as usize,
    );
    let big = resize_rgb(&resized, w, h, bw, bh);
    let x0 = (rng.range(0.0, (bw - w) as f32)).round() as usize;
    let y0 = (rng.range(0.0, (bh - h) as f32)).round() as usize;
    let mut out = Vec::with_capacity(w * h * 3);
    for y in y0..y0 + h {
        out.extend_from_slice(&big[(y * bw + x0) * 3..(y * bw + x0 + w) * 3]);
    }
    out
}

fn color_jitter(rgb: &mut [f32], rng: &mut Rng) {
    let brightness = rng.range(0.8, 1.2);
    let contrast = rng.range(0.85, 1.15);
    let apply_brightness = |px: &mut [f32]| {
        px.iter_mut()
            .for_each(|v| *v = (*v * brightness).clamp(0.0, 255.0))
    };
    let apply_contrast = |px: &mut [f32]| {
        let n = (px.len() / 3) as f32;
        let grey: f32 = px
            .chunks(3)
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .sum::<f32>()
            / n;
        px.iter_mut()
            .for_each(|v| *v = (grey + contrast * (*v - grey)).clamp(0.0, 255.0));
    };
    if rng.chance(0.5) {
        apply_brightness(rgb);
        apply_contrast(rgb);
    } else {
        apply_contrast(rgb);
        apply_brightness(rgb);
    }
}

/// Turns a decoded RGB image into one augmented, normalized `[3, H, W]` training input (an
/// error only where the sample-level mixup cannot read its other image). Returns the patch
/// `random_patch` took from the image for the pool, if it runs; the caller adds it with
/// [`Augment::collect_patches`] (the pool is only read here).
pub fn training_input(
    rgb: &[u8],
    width: usize,
    height: usize,
    preprocessing: &Preprocessing,
    augment: &Augment,
    rng: &mut Rng,
    out: &mut [f32],
) -> Result<Option<Patch>> {
    augment.patch_pool.read(|pool| {
        if let Some(sections) = &augment.sections {
            return crate::data::section_pipeline::training_input(
                rgb,
                (width, height),
                preprocessing,
                (sections, &augment.mixup_images),
                (augment.random_patch.as_ref(), pool),
                rng,
                out,
            );
        }
        torchreid_input(rgb, (width, height), preprocessing, augment, pool, rng, out)
    })
}

/// [`training_input`] with torchreid's transform list.
fn torchreid_input(
    rgb: &[u8],
    (width, height): (usize, usize),
    preprocessing: &Preprocessing,
    augment: &Augment,
    pool: &PatchPool,
    rng: &mut Rng,
    out: &mut [f32],
) -> Result<Option<Patch>> {
    let (w, h) = (preprocessing.width, preprocessing.height);
    let mut img = if augment.random_crop {
        random_crop(rgb, width, height, w, h, rng)
    } else {
        resize_rgb(rgb, width, height, w, h)
    };
    if augment.random_flip && rng.chance(0.5) {
        flip(&mut img, w);
    }
    let collected = augment
        .random_patch
        .as_ref()
        .and_then(|settings| random_patch(&mut img, w, h, settings, pool, rng));
    let mut px: Vec<f32> = if augment.augmix {
        augmix(&img, w, h, rng)
    } else {
        img.iter().map(|&v| v as f32).collect()
    };
    if augment.color_jitter {
        color_jitter(&mut px, rng);
    }
    if augment.random_grayscale && rng.chance(0.2) {
        for p in px.chunks_mut(3) {
            let g = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
            p.fill(g);
        }
    }
    preprocessing.normalize_into(&px, out);
    if augment.random_erase
        && let Some(rect) = erase_rect(w, h, TORCHREID_ERASE, rng)
    {
        // torchreid fills with the normalization mean values (on the normalized image).
        fill_planes(out, w, h, rect, preprocessing.mean);
    }
    Ok(collected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every output of `random_crop` is one torchreid's transforms return for the same image
    /// (`tests/fixtures/transforms/translation.npz`, by `make_transform_fixtures.py`): the
    /// plain resize, or one of the crops of the twice-resampled enlargement.
    #[test]
    fn random_crop_returns_what_torchreid_returns() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/transforms/translation.npz"
        );
        let fixture = crate::formats::npy::read_npz(path).unwrap();
        let bytes = |key: &str| -> (Vec<usize>, Vec<u8>) {
            let a = &fixture[key];
            let v = a.to_i64().unwrap().into_iter().map(|v| v as u8).collect();
            (a.shape.clone(), v)
        };
        let (w, h) = (16, 32);
        for case in ["A", "B"] {
            let (shape, src) = bytes(&format!("src_{case}"));
            let (_, plain) = bytes(&format!("plain_{case}"));
            let (crops_shape, crops) = bytes(&format!("crops_{case}"));
            let crops: Vec<&[u8]> = crops.chunks(w * h * 3).collect();
            assert_eq!(crops.len(), crops_shape[0] * crops_shape[1]);
            let mut seen = std::collections::BTreeSet::new();
            for seed in 0..200 {
                let out = random_crop(&src, shape[1], shape[0], w, h, &mut Rng::new(seed));
                let found = if out == plain {
                    Some(usize::MAX)
                } else {
                    crops.iter().position(|c| *c == out.as_slice())
                };
                let found = found.unwrap_or_else(|| panic!("{case}, seed {seed}: no match"));
                seen.insert(found);
            }
            // Both branches, and most offsets, were taken.
            assert!(
                seen.contains(&usize::MAX) && seen.len() > crops.len() / 2,
                "{seen:?}"
            );
        }
    }

    #[test]
    fn transforms_keep_size_and_vary_with_the_seed() {
        let (w0, h0) = (40, 90);
        let rgb: Vec<u8> = (0..w0 * h0 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let pre = Preprocessing::torchreid(64, 32);
        let all = Augment::from_names(&TRANSFORMS).unwrap();
        let run = |seed| {
            let mut out = vec![0f32; 3 * 64 * 32];
            training_input(&rgb, w0, h0, &pre, &all, &mut Rng::new(seed), &mut out).unwrap();
            out
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let mut plain = vec![0f32; 3 * 64 * 32];
        training_input(
            &rgb,
            w0,
            h0,
            &pre,
            &Augment::default(),
            &mut Rng::new(1),
            &mut plain,
        )
        .unwrap();
        let mut test_time = vec![0f32; 3 * 64 * 32];
        pre.prepare(
            &crate::preprocess::ImageView::packed(
                &rgb,
                w0,
                h0,
                crate::preprocess::PixelFormat::Rgb8,
            ),
            &mut test_time,
        )
        .unwrap();
        let worst = plain
            .iter()
            .zip(&test_time)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-5,
            "no augmentation must equal the test transform ({worst})"
        );
        let mut flipped = rgb.clone();
        flip(&mut flipped, w0);
        flip(&mut flipped, w0);
        assert_eq!(flipped, rgb);
        assert!(Augment::from_names(&["auto_augment"]).is_err());
    }
}
