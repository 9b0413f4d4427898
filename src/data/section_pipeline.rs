//! deep-object-reid's training pipeline over its `data.transforms` sections, in its fixed
//! order: random grid → random figures → centre crop → random crop → resize → AugMix → RandAugment → cutout → flip → cut-out
//! with prior → blur → noise → mixup → random patch → colour jitter → random grey → rotate →
//! perspective → equalize → posterize → (random erase on pixels) → negative → forced grey →
//! coarse dropout → crop-pad → normalize → (random erase on the normalized image). Each step's geometry is a function of its draws, so the tests can compare it with
//! deep-object-reid's code given the same draws.

use crate::data::erase::{EraseShape, erase_rect, fill_planes};
use crate::data::image_ops::{self, Enhance, Resample, crop};
use crate::data::random_figures::{draw_figures, figure_draws};
use crate::data::random_grid::{GridDraw, draw_grid};
use crate::data::random_patch::{Patch, PatchPool, random_patch};
use crate::data::rng::Rng;
use crate::data::transform_sections::{
    ColorJitter, RandomCrop, RandomNoise, RandomPatch, TransformSections,
};
use crate::error::{Error, Result};
use crate::preprocess::Preprocessing;
use crate::preprocess::resample::resize_rgb;

/// `center_crop`: `margin` pixels off every side, unless that leaves under 2 pixels.
pub fn center_crop(rgb: &[u8], w: usize, h: usize, margin: usize) -> (Vec<u8>, usize, usize) {
    let region = crate::preprocess::inside_margin((0, 0, w, h), margin);
    (crop(rgb, w, region), region.2, region.3)
}

/// `random_crop`'s box `(x, y, width, height)` in a `w × h` image for a network input of aspect
/// ratio `target_ar` (height / width), `unit` giving the uniform draws in [0, 1) in
/// deep-object-reid's order: the aspect ratio (with `align_ar`), the scale (unless `static`),
/// x, y. Its arithmetic: Python's floats, `int(round(·))` rounding halves to even, NumPy's
/// slice clipping at the border.
pub fn random_crop_box(
    w: usize,
    h: usize,
    c: &RandomCrop,
    target_ar: f64,
    mut unit: impl FnMut() -> f64,
) -> (usize, usize, usize, usize) {
    let (wf, hf) = (w as f64, h as f64);
    let mut uniform = |a: f64, b: f64| a + (b - a) * unit();
    let (max_w, max_h) = if c.align_ar {
        let source_ar = hf / wf;
        let ar = uniform(source_ar.min(target_ar), source_ar.max(target_ar));
        if ar < source_ar {
            (wf, ar * wf)
        } else {
            (hf / ar, hf)
        }
    } else {
        (wf, hf)
    };
    let min_scale = if c.margin == 0 {
        c.scale
    } else {
        let rest = |side: usize| side.saturating_sub(2 * c.margin).max(1) as f64;
        (rest(w) / wf).max(rest(h) / hf)
    };
    let scale = if c.fixed {
        min_scale
    } else {
        uniform(min_scale, 1.0)
    };
    let side = |v: f64| (v.round_ties_even() as usize).max(1);
    let (cw, ch) = (side(scale * max_w), side(scale * max_h));
    let (cwf, chf) = (cw as f64, ch as f64);
    let (x_range, y_range) = if c.align_center {
        let (min_w, min_h) = (min_scale * wf, min_scale * hf);
        let (cx, cy) = (0.5 * wf, 0.5 * hf);
        (
            (
                (cx + 0.5 * min_w - cwf).max(0.0),
                (wf - cwf).min(cx - 0.5 * min_w),
            ),
            (
                (cy + 0.5 * min_h - chf).max(0.0),
                (hf - chf).min(cy - 0.5 * min_h),
            ),
        )
    } else {
        ((0.0, wf - cwf), (0.0, hf - chf))
    };
    let x = uniform(x_range.0, x_range.1).round_ties_even().max(0.0) as usize;
    let y = uniform(y_range.0, y_range.1).round_ties_even().max(0.0) as usize;
    let (x, y) = (x.min(w - 1), y.min(h - 1));
    (x, y, cw.min(w - x), ch.min(h - y))
}

/// `cutout`'s box for centre (xc, yc): half-sides `int(factor·side + 0.5) // 2`, clipped,
/// both ends included (Pillow's rectangle); as `[x0, x1) × [y0, y1)`.
pub fn cutout_box(
    w: usize,
    h: usize,
    factor: f32,
    (xc, yc): (usize, usize),
) -> (usize, usize, usize, usize) {
    let half = |side: usize| ((factor * side as f32 + 0.5) as usize) / 2;
    let (hx, hy) = (half(w), half(h));
    (
        xc.saturating_sub(hx),
        yc.saturating_sub(hy),
        (xc + hx).min(w) + 1,
        (yc + hy).min(h) + 1,
    )
}

/// deep-object-reid's five reference face landmarks (`FivePointsAligner.ref_landmarks`: eyes,
/// nose tip, mouth corners of a 96 × 112 aligned face) as shares of the width and height.
pub const FACE_LANDMARKS: [[f64; 2]; 5] = [
    [30.2946 / 96.0, 51.6963 / 112.0],
    [65.5318 / 96.0, 51.5014 / 112.0],
    [48.0252 / 96.0, 71.7366 / 112.0],
    [33.5493 / 96.0, 92.3655 / 112.0],
    [62.7299 / 96.0, 92.2041 / 112.0],
];

/// `cut_out_with_prior`'s boxes, `[x0, x1) × [y0, y1)` in a `w × h` image, for the area share
/// `share` split over the landmarks `marks`: sides `√share / count` of the height and of the
/// width about each landmark, with deep-object-reid's arithmetic — the landmark stored in
/// single precision, the half side subtracted and added in double precision (NumPy 1, which its
/// pinned torch 1.8 runs on; NumPy 2 does it in single precision, and the fixture, written with
/// NumPy 2, gives the same boxes), truncated toward zero, both corners included (OpenCV's
/// filled rectangle), and its axes as it has them: the height's side spans x, the width's
/// spans y.
pub fn landmark_boxes(
    w: usize,
    h: usize,
    share: f32,
    marks: &[usize],
) -> Vec<(usize, usize, usize, usize)> {
    let count = marks.len().max(1) as f64;
    let side = f64::from(share).sqrt() / count;
    let (half_x, half_y) = (side * h as f64 / 2.0, side * w as f64 / 2.0);
    let span = |centre: f32, half: f64, len: usize| {
        let centre = f64::from(centre);
        let (lo, hi) = ((centre - half) as i64, (centre + half) as i64);
        let lo = lo.max(0) as usize;
        let hi = (hi + 1).clamp(0, len as i64) as usize;
        (lo, hi.max(lo))
    };
    marks
        .iter()
        .map(|&m| {
            let [fx, fy] = FACE_LANDMARKS[m];
            let (x, y) = ((fx * w as f64) as f32, (fy * h as f64) as f32);
            let (x0, x1) = span(x, half_x, w);
            let (y0, y1) = span(y, half_y, h);
            (x0, y0, x1, y1)
        })
        .collect()
}

/// `crop_pad`: the image padded by `pad` black pixels per side, cropped back to its size at
/// offset (x, y) of the padded image (0 … 2·pad each).
pub fn crop_pad(rgb: &[u8], w: usize, h: usize, pad: usize, (x, y): (usize, usize)) -> Vec<u8> {
    let mut out = vec![0u8; rgb.len()];
    for oy in 0..h {
        let sy = (oy + y) as isize - pad as isize;
        if sy < 0 || sy >= h as isize {
            continue;
        }
        for ox in 0..w {
            let sx = (ox + x) as isize - pad as isize;
            if sx >= 0 && sx < w as isize {
                let s = (sy as usize * w + sx as usize) * 3;
                out[(oy * w + ox) * 3..(oy * w + ox) * 3 + 3].copy_from_slice(&rgb[s..s + 3]);
            }
        }
    }
    out
}

/// `random_noise` with standard deviation `std`: each value plus N(0, std²), clipped and
/// truncated to 8 bits (one draw per pixel when `grayscale`).
fn add_noise(rgb: &mut [u8], std: f32, grayscale: bool, rng: &mut Rng) {
    for p in rgb.chunks_mut(3) {
        let shared = rng.normal() * std;
        for (c, v) in p.iter_mut().enumerate() {
            let n = if grayscale || c == 0 {
                shared
            } else {
                rng.normal() * std
            };
            *v = (*v as f32 + n).clamp(0.0, 255.0) as u8;
        }
    }
}

fn random_noise(rgb: &mut [u8], s: &RandomNoise, rng: &mut Rng) {
    let (lo, hi) = rgb
        .iter()
        .fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = if hi > lo { (hi - lo) as f32 } else { 1.0 };
    let std = rng.range(0.0, s.sigma * range);
    add_noise(rgb, std, s.grayscale, rng);
}

/// torchvision's `ColorJitter`: the four adjustments in random order, each factor uniform in
/// its range (skipped when the range is zero).
fn color_jitter(rgb: Vec<u8>, w: usize, h: usize, c: &ColorJitter, rng: &mut Rng) -> Vec<u8> {
    let mut order = [0usize, 1, 2, 3];
    rng.shuffle(&mut order);
    let mut out = rgb;
    for step in order {
        out = match step {
            0 if c.brightness > 0.0 => {
                let f = rng.range(1.0 - c.brightness, 1.0 + c.brightness);
                image_ops::enhance(&out, w, h, Enhance::Brightness, f)
            }
            1 if c.contrast > 0.0 => {
                let f = rng.range(1.0 - c.contrast, 1.0 + c.contrast);
                image_ops::enhance(&out, w, h, Enhance::Contrast, f)
            }
            2 if c.saturation > 0.0 => {
                let f = rng.range(1.0 - c.saturation, 1.0 + c.saturation);
                image_ops::enhance(&out, w, h, Enhance::Color, f)
            }
            3 if c.hue > 0.0 => image_ops::adjust_hue(&out, rng.range(-c.hue, c.hue)),
            _ => out,
        };
    }
    out
}

/// torchvision's `RandomPerspective.get_params`: each corner moved inwards by up to
/// `scale` × half the side (uniform integers), as [top-left, top-right, bottom-right,
/// bottom-left] (x, y).
pub fn perspective_corners(w: usize, h: usize, scale: f32, rng: &mut Rng) -> [[usize; 2]; 4] {
    let (dx, dy) = (
        (scale * (w / 2) as f32) as usize,
        (scale * (h / 2) as f32) as usize,
    );
    // torch.randint(lo, hi) excludes hi; the draws in torchvision's order.
    let mut pick = |(lo, hi): (usize, usize)| lo + rng.below(hi - lo);
    let (left, right) = ((0, dx + 1), (w - dx - 1, w));
    let (top, bottom) = ((0, dy + 1), (h - dy - 1, h));
    let top_left = [pick(left), pick(top)];
    let top_right = [pick(right), pick(top)];
    let bottom_right = [pick(right), pick(bottom)];
    let bottom_left = [pick(left), pick(bottom)];
    [top_left, top_right, bottom_right, bottom_left]
}

/// torchvision's `perspective`: the image corners moved to `corners`, bilinear, black outside.
pub fn perspective(rgb: &[u8], w: usize, h: usize, corners: [[usize; 2]; 4]) -> Vec<u8> {
    let (r, b) = ((w - 1) as f64, (h - 1) as f64);
    let start = [[0.0, 0.0], [r, 0.0], [r, b], [0.0, b]];
    let end = corners.map(|[x, y]| [x as f64, y as f64]);
    let c = image_ops::perspective_coefficients(start, end);
    image_ops::perspective(rgb, w, h, c, [0; 3])
}

/// The sample-level mixup's blend: `other` (`ow × oh`) resized to `int(1.125 ×)` the input
/// size (Pillow's bilinear), cropped back at `(x, y)`, mirrored if `mirror`, and blended as
/// `(1 − a) · image + a · other`, truncated to 8 bits.
#[allow(clippy::too_many_arguments)]
pub fn blend_other(
    img: &[u8],
    w: usize,
    h: usize,
    other: &[u8],
    (ow, oh): (usize, usize),
    a: f32,
    (x, y): (usize, usize),
    mirror: bool,
) -> Vec<u8> {
    let (bw, bh) = enlarged(w, h);
    let big = resize_rgb(other, ow, oh, bw, bh);
    let mut crop = Vec::with_capacity(w * h * 3);
    for row in y..y + h {
        crop.extend_from_slice(&big[(row * bw + x) * 3..(row * bw + x + w) * 3]);
    }
    if mirror {
        image_ops::flip(&mut crop, w);
    }
    img.iter()
        .zip(&crop)
        .map(|(&v, &o)| ((1.0 - a) * v as f32 + a * o as f32).clamp(0.0, 255.0) as u8)
        .collect()
}

/// deep-object-reid's enlargement of the other image: `int(1.125 × side)`.
fn enlarged(w: usize, h: usize) -> (usize, usize) {
    ((w as f64 * 1.125) as usize, (h as f64 * 1.125) as usize)
}

/// The sample-level mixup: its draws — the folded Beta share, the image, the crop, the
/// mirror — then [`blend_other`].
fn mix_with_other(
    img: &[u8],
    w: usize,
    h: usize,
    alpha: f32,
    images: &[std::path::PathBuf],
    rng: &mut Rng,
) -> Result<Vec<u8>> {
    let a = rng.beta(alpha as f64, alpha as f64) as f32;
    let a = if a < 0.5 { a } else { 1.0 - a };
    let path = rng.pick(images);
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (other, ow, oh) = crate::preprocess::decode(&bytes)
        .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
    let (bw, bh) = enlarged(w, h);
    let x = rng.range(0.0, (bw - w) as f32).round() as usize;
    let y = rng.range(0.0, (bh - h) as f32).round() as usize;
    let mirror = rng.unit() > 0.5;
    Ok(blend_other(img, w, h, &other, (ow, oh), a, (x, y), mirror))
}

/// Inclusive uniform integer in [lo, hi].
fn between(lo: usize, hi: usize, rng: &mut Rng) -> usize {
    lo + rng.below(hi - lo + 1)
}

/// `random_rotate`'s angle: one of `values` when any is non-zero, else an integer in `angle`.
fn rotation_angle(values: &[f32], angle: &[f32], rng: &mut Rng) -> f32 {
    if values.iter().any(|&v| v != 0.0) {
        *rng.pick(values)
    } else {
        let (lo, hi) = (angle[0].ceil() as i64, angle[1].floor() as i64);
        (lo + rng.below((hi - lo + 1).max(1) as usize) as i64) as f32
    }
}

/// Turns a decoded RGB image into one augmented, normalized `[3, H, W]` training input with
/// deep-object-reid's sections (`mixup_images`: the sample-level mixup's list, read; `patch`:
/// `random_patch`'s settings when it runs, and its pool), returning the patch `random_patch`
/// took from the image.
pub fn training_input(
    rgb: &[u8],
    (width, height): (usize, usize),
    preprocessing: &Preprocessing,
    (s, mixup_images): (&TransformSections, &[std::path::PathBuf]),
    patch: (Option<&RandomPatch>, &PatchPool),
    rng: &mut Rng,
    out: &mut [f32],
) -> Result<Option<Patch>> {
    let (w, h) = (preprocessing.width, preprocessing.height);
    let mut drawn = std::borrow::Cow::Borrowed(rgb);
    if s.random_grid.enable && rng.chance(s.random_grid.p) {
        let grid = GridDraw::draw(&s.random_grid, rng);
        draw_grid(drawn.to_mut(), width, height, &grid);
    }
    if s.random_figures.enable && rng.chance(s.random_figures.p) {
        let figures = figure_draws(&s.random_figures, width, height, rng);
        draw_figures(drawn.to_mut(), width, height, &figures);
    }
    let rgb: &[u8] = &drawn;
    let (src, sw, sh) = if s.center_crop.enable && !s.center_crop.test_only {
        center_crop(rgb, width, height, s.center_crop.margin)
    } else {
        (rgb.to_vec(), width, height)
    };
    let (src, sw, sh) = if s.random_crop.enable && rng.chance(s.random_crop.p) {
        let target_ar = h as f64 / w as f64;
        let region = random_crop_box(sw, sh, &s.random_crop, target_ar, || rng.unit() as f64);
        (crop(&src, sw, region), region.2, region.3)
    } else {
        (src, sw, sh)
    };
    let mut img = resize_rgb(&src, sw, sh, w, h);
    if s.augmix.enable {
        img = crate::data::augmix::augmix(&img, w, h, rng)
            .iter()
            .map(|&v| v.clamp(0.0, 255.0) as u8)
            .collect();
    }
    if s.randaugment.enable && rng.chance(s.randaugment.p) {
        img = crate::data::randaugment::randaugment(&img, w, h, rng);
    }
    if s.cutout.enable && rng.chance(s.cutout.p) {
        let centre = (rng.below(w), rng.below(h));
        let fill = s
            .cutout
            .fill_color
            .unwrap_or_else(|| std::array::from_fn(|_| rng.below(256) as u8));
        let rect = cutout_box(w, h, s.cutout.cutout_factor, centre);
        image_ops::fill_rect(&mut img, w, h, rect, fill);
    }
    if s.random_flip.enable && rng.chance(s.random_flip.p) {
        image_ops::flip(&mut img, w);
    }
    let c = &s.cut_out_with_prior;
    if c.enable && rng.chance(c.p) {
        let count = 1 + rng.below(3);
        let share = rng.range(c.max_area / 2.0, c.max_area);
        let mut marks: Vec<usize> = Vec::with_capacity(count);
        while marks.len() < count {
            let mark = rng.below(FACE_LANDMARKS.len());
            if !marks.contains(&mark) {
                marks.push(mark);
            }
        }
        for rect in landmark_boxes(w, h, share, &marks) {
            image_ops::fill_rect(&mut img, w, h, rect, [0; 3]);
        }
    }
    if s.random_blur.enable && rng.chance(s.random_blur.p) {
        img = image_ops::box_blur(&img, w, h, s.random_blur.k);
    }
    if s.random_noise.enable && rng.chance(s.random_noise.p) {
        random_noise(&mut img, &s.random_noise, rng);
    }
    if s.mixup.enable && rng.chance(s.mixup.p) {
        img = mix_with_other(&img, w, h, s.mixup.alpha, mixup_images, rng)?;
    }
    let collected = match patch {
        (Some(settings), pool) => random_patch(&mut img, w, h, settings, pool, rng),
        (None, _) => None,
    };
    if s.color_jitter.enable && rng.chance(s.color_jitter.p) {
        img = color_jitter(img, w, h, &s.color_jitter, rng);
    }
    if s.random_gray_scale.enable && rng.chance(s.random_gray_scale.p) {
        img = image_ops::grayscale(&img);
    }
    if s.random_rotate.enable && rng.chance(s.random_rotate.p) {
        let r = &s.random_rotate;
        let angle = rotation_angle(&r.values, &r.angle, rng);
        img = image_ops::rotate(&img, w, h, angle as f64, Resample::Nearest, [0; 3]);
    }
    let q = &s.random_perspective;
    if q.enable && rng.chance(q.p) {
        let corners = perspective_corners(w, h, q.distortion_scale, rng);
        img = perspective(&img, w, h, corners);
    }
    if s.equalize.enable && rng.chance(s.equalize.p) {
        img = image_ops::equalize(&img);
    }
    if s.posterize.enable && rng.chance(s.posterize.p) {
        let bits = between(s.posterize.bits as usize, 6, rng);
        img = image_ops::posterize(&img, bits as u32);
    }
    let e = &s.random_erase;
    let erase = EraseShape {
        p: e.p,
        area: (e.sl, e.sh),
        aspect: (e.rl, e.rh),
    };
    let fill = [e.fill_color[0], e.fill_color[1], e.fill_color[2]];
    if e.enable
        && !e.norm_image
        && let Some((x0, y0, ew, eh)) = erase_rect(w, h, erase, rng)
    {
        let color = fill.map(|v| v.round().clamp(0.0, 255.0) as u8);
        image_ops::fill_rect(&mut img, w, h, (x0, y0, x0 + ew, y0 + eh), color);
    }
    if s.random_negative.enable && rng.chance(s.random_negative.p) {
        img = image_ops::invert(&img);
    }
    if s.force_gray_scale.enable {
        img = image_ops::grayscale(&img);
    }
    if s.coarse_dropout.enable && rng.chance(s.coarse_dropout.p) {
        let (holes, hh, hw) = s.coarse_dropout_ranges();
        let value = [s.coarse_dropout.fill_value; 3];
        for _ in 0..between(holes.0, holes.1, rng) {
            let (dh, dw) = (
                between(hh.0, hh.1, rng).min(h),
                between(hw.0, hw.1, rng).min(w),
            );
            let (y0, x0) = (between(0, h - dh, rng), between(0, w - dw, rng));
            image_ops::fill_rect(&mut img, w, h, (x0, y0, x0 + dw, y0 + dh), value);
        }
    }
    if s.crop_pad.enable {
        let pad = (0.125 * h as f32) as usize;
        let offset = (rng.below(2 * pad + 1), rng.below(2 * pad + 1));
        img = crop_pad(&img, w, h, pad, offset);
    }
    let px: Vec<f32> = img.iter().map(|&v| v as f32).collect();
    preprocessing.normalize_into(&px, out);
    if e.enable
        && e.norm_image
        && let Some(rect) = erase_rect(w, h, erase, rng)
    {
        let p = preprocessing;
        let normalized: [f32; 3] = std::array::from_fn(|c| {
            let src = match p.channel_order {
                crate::preprocess::ChannelOrder::Rgb => c,
                crate::preprocess::ChannelOrder::Bgr => 2 - c,
            };
            (fill[src] * p.scale - p.mean[c]) / p.std[c]
        });
        fill_planes(out, w, h, rect, normalized);
    }
    Ok(collected)
}
