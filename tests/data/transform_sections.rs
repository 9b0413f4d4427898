//! deep-object-reid's `data.transforms` sections against its own transforms
//! (tests/fixtures/make_dor_transform_fixtures.py runs them, with Pillow, OpenCV, torchvision
//! and the `randaugment` package, on fixed images with chosen draws): the deterministic steps
//! pixel for pixel, the random ones by the set of outputs or by distribution.

use std::collections::BTreeMap;
use std::path::Path;

use reid::data::image_ops::{self, Enhance, Resample};
use reid::data::randaugment::{self, Draws, OPERATIONS, Operation};
use reid::data::rng::Rng;
use reid::data::section_pipeline::{center_crop, crop_pad, cutout_box};
use reid::data::transform_sections::TransformSections;
use reid::data::transforms::{Augment, training_input};
use reid::formats::npy::NpyArray;
use reid::preprocess::Preprocessing;

fn fixture() -> BTreeMap<String, NpyArray> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transforms/dor.npz");
    reid::formats::npy::read_npz(path).unwrap()
}

fn bytes(f: &BTreeMap<String, NpyArray>, key: &str) -> Vec<u8> {
    f[key].to_i64().unwrap().iter().map(|&v| v as u8).collect()
}

fn ints(f: &BTreeMap<String, NpyArray>, key: &str) -> Vec<i64> {
    f[key].to_i64().unwrap()
}

fn floats(f: &BTreeMap<String, NpyArray>, key: &str) -> Vec<f64> {
    f[key].to_f64()
}

/// Pixels that differ, and by how much at most.
fn diff(ours: &[u8], theirs: &[u8]) -> (usize, i32) {
    assert_eq!(ours.len(), theirs.len());
    let d: Vec<i32> = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .filter(|&d| d > 0)
        .collect();
    (d.len(), d.into_iter().max().unwrap_or(0))
}

fn assert_same(name: &str, ours: &[u8], theirs: &[u8]) {
    let (n, max) = diff(ours, theirs);
    assert_eq!(
        (n, max),
        (0, 0),
        "{name}: {n} values differ, by up to {max}"
    );
}

#[test]
fn deterministic_steps_match_deep_object_reids_pixel_for_pixel() {
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let square = bytes(&f, "square");
    let s = f["square"].shape[0];
    for bits in 1..=6 {
        let name = format!("posterize_{bits}");
        assert_same(
            &name,
            &image_ops::posterize(&image, bits),
            &bytes(&f, &name),
        );
    }
    assert_same(
        "equalize",
        &image_ops::equalize(&image),
        &bytes(&f, "equalize"),
    );
    assert_same(
        "negative",
        &image_ops::invert(&image),
        &bytes(&f, "negative"),
    );
    assert_same("gray", &image_ops::grayscale(&image), &bytes(&f, "gray"));
    for k in [3, 5] {
        let name = format!("blur_{k}");
        assert_same(
            &name,
            &image_ops::box_blur(&image, w, h, k),
            &bytes(&f, &name),
        );
    }
    for deg in [-10, -5, 3, 7, 45, 90, 180] {
        let name = format!("rotate_{deg}");
        let ours = image_ops::rotate(&image, w, h, deg as f64, Resample::Nearest, [0; 3]);
        assert_same(&name, &ours, &bytes(&f, &name));
    }
    let ours = image_ops::rotate(&square, s, s, 90.0, Resample::Nearest, [0; 3]);
    assert_same("rotate_sq_90", &ours, &bytes(&f, "rotate_sq_90"));
    for margin in [0, 3] {
        let name = format!("center_crop_{margin}");
        let (ours, cw, ch) = center_crop(&image, w, h, margin);
        assert_eq!(
            [ch, cw, 3],
            f[&name].shape.as_slice(),
            "{name}: size differs"
        );
        assert_same(&name, &ours, &bytes(&f, &name));
    }
    // crop_pad: every offset of the padded image.
    let crops = bytes(&f, "crop_pad");
    let offsets = f["crop_pad"].shape[0];
    let pad = (0.125 * h as f32) as usize;
    assert_eq!(offsets, 2 * pad + 1);
    for (k, theirs) in crops.chunks(w * h * 3).enumerate() {
        let (i, j) = (k / offsets, k % offsets);
        let ours = crop_pad(&image, w, h, pad, (j, i));
        assert_same(&format!("crop_pad at ({i}, {j})"), &ours, theirs);
    }
    // cutout and coarse dropout on the square image, where deep-object-reid's swapped axes
    // do not show.
    for i in 0..4 {
        let d = ints(&f, &format!("cutout_{i}_draws"));
        let mut ours = square.clone();
        let rect = cutout_box(s, s, d[5] as f32 / 100.0, (d[0] as usize, d[1] as usize));
        image_ops::fill_rect(&mut ours, s, s, rect, [d[2] as u8, d[3] as u8, d[4] as u8]);
        assert_same(
            &format!("cutout_{i}"),
            &ours,
            &bytes(&f, &format!("cutout_{i}")),
        );
    }
    for i in 0..2 {
        let holes = ints(&f, &format!("dropout_{i}_draws"));
        let mut ours = square.clone();
        for hole in holes.chunks(4) {
            let [y0, x0, hh, hw] = [0, 1, 2, 3].map(|k| hole[k] as usize);
            image_ops::fill_rect(&mut ours, s, s, (x0, y0, x0 + hw, y0 + hh), [17; 3]);
        }
        assert_same(
            &format!("dropout_{i}"),
            &ours,
            &bytes(&f, &format!("dropout_{i}")),
        );
    }
}

#[test]
fn colour_jitter_steps_match_torchvision() {
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    for (kind, n) in [
        ("brightness", 2),
        ("contrast", 2),
        ("saturation", 2),
        ("hue", 3),
    ] {
        for i in 0..n {
            let name = format!("jitter_{kind}_{i}");
            let factor = floats(&f, &format!("{name}_factor"))[0] as f32;
            let ours = match kind {
                "brightness" => image_ops::enhance(&image, w, h, Enhance::Brightness, factor),
                "contrast" => image_ops::enhance(&image, w, h, Enhance::Contrast, factor),
                "saturation" => image_ops::enhance(&image, w, h, Enhance::Color, factor),
                _ => image_ops::adjust_hue(&image, factor),
            };
            assert_same(&name, &ours, &bytes(&f, &name));
        }
    }
}

#[test]
fn randaugment_operations_match_the_randaugment_package() {
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let names = [
        "invert",
        "cutout",
        "sharpness",
        "autocontrast",
        "posterize",
        "shearx",
        "translatex",
        "translatey",
        "sheary",
        "rotate",
        "equalize",
        "contrast",
        "color",
        "solarize",
        "brightness",
    ];
    for (op, name) in OPERATIONS.iter().zip(names) {
        for m in [1, 2, 5, 9] {
            for (negative, sign) in [(false, "p"), (true, "n")] {
                let key = format!("ra_{name}_{m}_{sign}");
                let centre = if *op == Operation::Cutout {
                    let c = ints(&f, &format!("{key}_centre"));
                    (c[0] as usize, c[1] as usize)
                } else {
                    (0, 0)
                };
                let ours = randaugment::apply(*op, m, Draws { negative, centre }, &image, w, h);
                assert_same(&key, &ours, &bytes(&f, &key));
            }
        }
    }
}

/// The package's policy: one of the 135² ordered pairs, uniformly, each half applied with
/// probability 0.5.
#[test]
fn randaugment_policies_are_uniform_pairs_applied_half_the_time() {
    let mut rng = Rng::new(5);
    let n = 40_000;
    let mut applied = [0usize; 2];
    let mut ops = [0usize; OPERATIONS.len()];
    let mut magnitudes = [0usize; 10];
    for _ in 0..n {
        for (half, drawn) in randaugment::draw_policy(&mut rng).iter().enumerate() {
            if let Some((op, m)) = drawn {
                applied[half] += 1;
                ops[OPERATIONS.iter().position(|o| o == op).unwrap()] += 1;
                magnitudes[*m] += 1;
            }
        }
    }
    for a in applied {
        let share = a as f64 / n as f64;
        assert!((share - 0.5).abs() < 0.015, "applied {share}");
    }
    let total: usize = ops.iter().sum();
    let chi2 = |counts: &[usize]| {
        let e = total as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|&c| (c as f64 - e).powi(2) / e)
            .sum::<f64>()
    };
    // 14 and 8 degrees of freedom: 99.9 % quantiles 36.1 and 26.1.
    assert!(chi2(&ops) < 36.1, "operations {ops:?}");
    assert_eq!(magnitudes[0], 0);
    assert!(chi2(&magnitudes[1..]) < 26.1, "magnitudes {magnitudes:?}");
}

fn identity_preprocessing(h: usize, w: usize) -> Preprocessing {
    Preprocessing {
        scale: 1.0,
        mean: [0.0; 3],
        std: [1.0; 3],
        ..Preprocessing::torchreid(h, w)
    }
}

fn pipeline(yaml: &str, image: &[u8], w: usize, h: usize, seed: u64) -> Vec<u8> {
    let sections: TransformSections = serde_yaml::from_str(yaml).unwrap();
    let augment = Augment::from_sections(&sections).unwrap();
    let pre = identity_preprocessing(h, w);
    let mut chw = vec![0f32; 3 * w * h];
    training_input(image, w, h, &pre, &augment, &mut Rng::new(seed), &mut chw).unwrap();
    (0..w * h)
        .flat_map(|i| (0..3).map(move |c| (c, i)))
        .map(|(c, i)| chw[c * w * h + i] as u8)
        .collect()
}

/// Through the whole pipeline, crop_pad returns only crops deep-object-reid can return, and
/// many of them; random_rotate only its integer angles.
#[test]
fn pipeline_outputs_are_among_deep_object_reids() {
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let crops = bytes(&f, "crop_pad");
    let crops: Vec<&[u8]> = crops.chunks(w * h * 3).collect();
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..300 {
        let out = pipeline(
            "random_flip: {enable: False}\ncrop_pad: {enable: True}",
            &image,
            w,
            h,
            seed,
        );
        let at = crops.iter().position(|c| *c == out.as_slice());
        seen.insert(at.unwrap_or_else(|| panic!("seed {seed}: not one of the crops")));
    }
    assert!(
        seen.len() > crops.len() * 3 / 4,
        "{} of {}",
        seen.len(),
        crops.len()
    );
    let angles: Vec<Vec<u8>> = [-5, 3]
        .iter()
        .map(|d| bytes(&f, &format!("rotate_{d}")))
        .collect();
    let mut hits = [0; 2];
    for seed in 0..200 {
        let out = pipeline(
            "random_flip: {enable: False}\nrandom_rotate: {enable: True, p: 1, angle: '(-5, 3)'}",
            &image,
            w,
            h,
            seed,
        );
        for (k, a) in angles.iter().enumerate() {
            hits[k] += usize::from(*a == out);
        }
    }
    // Nine angles, uniform: about 22 each of 200.
    assert!(hits.iter().all(|&n| (8..=45).contains(&n)), "{hits:?}");
}

/// random_noise: the noise's standard deviation is uniform in [0, sigma × value range]
/// (Kolmogorov–Smirnov), as deep-object-reid draws it.
#[test]
fn random_noise_draws_its_strength_uniformly() {
    let (w, h) = (48, 48);
    let image: Vec<u8> = (0..w * h * 3).map(|i| 100 + (i * 37 % 56) as u8).collect();
    let top = 0.5 * 55.0;
    let mut estimates: Vec<f64> = (0..300)
        .map(|seed| {
            let out = pipeline(
                "random_flip: {enable: False}\nrandom_noise: {enable: True, p: 1, sigma: 0.5}",
                &image,
                w,
                h,
                seed,
            );
            let d: Vec<f64> = out
                .iter()
                .zip(&image)
                .map(|(&a, &b)| a as f64 - b as f64)
                .collect();
            let mean = d.iter().sum::<f64>() / d.len() as f64;
            let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d.len() as f64;
            // Truncation to 8 bits adds a uniform rounding error of variance 1/12.
            (var - 1.0 / 12.0).max(0.0).sqrt()
        })
        .collect();
    estimates.sort_by(f64::total_cmp);
    let n = estimates.len() as f64;
    let ks = estimates
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let cdf = (x / top).clamp(0.0, 1.0);
            (cdf - i as f64 / n)
                .abs()
                .max((cdf - (i + 1) as f64 / n).abs())
        })
        .fold(0.0, f64::max);
    // 99.9 % critical value for n = 300: 1.95 / √300 = 0.113.
    assert!(ks < 0.113, "KS distance {ks}");
}

/// Every section at once: a seeded, finite result of the right size that changes with the
/// seed; a section switched off changes nothing.
#[test]
fn all_sections_together_are_seeded() {
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let all = "center_crop: {enable: True, margin: 2}\naugmix: {enable: True}\n\
               randaugment: {enable: True}\ncutout: {enable: True, p: 1}\n\
               random_blur: {enable: True, k: 3}\nrandom_noise: {enable: True}\n\
               color_jitter: {enable: True, p: 1}\nrandom_gray_scale: {enable: True}\n\
               random_rotate: {enable: True}\nrandom_perspective: {enable: True}\n\
               equalize: {enable: True}\n\
               posterize: {enable: True}\nrandom_erase: {enable: True, norm_image: False}\n\
               random_negative: {enable: True}\ncoarse_dropout: {enable: True}\n\
               crop_pad: {enable: True}";
    let a = pipeline(all, &image, w, h, 1);
    assert_eq!(a, pipeline(all, &image, w, h, 1));
    assert_ne!(a, pipeline(all, &image, w, h, 2));
    let off = "random_flip: {enable: False}\nposterize: {enable: False, p: 1}";
    assert_eq!(pipeline(off, &image, w, h, 1), image);
}

/// deep-object-reid's test transform crops `center_crop.margin` and greys
/// (`force_gray_scale`) before normalizing: the preprocessing carries both, through the
/// model's metadata too.
#[test]
fn test_time_crop_and_grey_match_deep_object_reids_test_transform() {
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let pre = Preprocessing {
        crop_margin: 3,
        grayscale: true,
        ..identity_preprocessing(h - 6, w - 6)
    };
    let view =
        reid::preprocess::ImageView::packed(&image, w, h, reid::preprocess::PixelFormat::Rgb8);
    let mut chw = vec![0f32; pre.input_len()];
    pre.prepare(&view, &mut chw).unwrap();
    let plane = (w - 6) * (h - 6);
    let ours: Vec<u8> = (0..plane)
        .flat_map(|i| (0..3).map(move |c| (c, i)))
        .map(|(c, i)| chw[c * plane + i] as u8)
        .collect();
    assert_same("test_crop_3_gray", &ours, &bytes(&f, "test_crop_3_gray"));
    let meta = pre.to_metadata().into_iter().collect();
    assert_eq!(Preprocessing::from_metadata(&meta).unwrap(), pre);
    let plain = Preprocessing::torchreid(8, 4).to_metadata();
    assert!(
        plain
            .iter()
            .all(|(k, _)| k != "crop_margin" && k != "grayscale")
    );
}

/// random_perspective is torchvision's `RandomPerspective`: its warp pixel for pixel at given
/// corners, and its corners drawn over the same values with the same (uniform) frequencies.
#[test]
fn random_perspective_matches_torchvision() {
    use reid::data::section_pipeline::{perspective, perspective_corners};
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let warp = |i: usize| {
        let c = ints(&f, &format!("perspective_{i}_corners"));
        let corners: [[usize; 2]; 4] =
            std::array::from_fn(|k| [c[2 * k] as usize, c[2 * k + 1] as usize]);
        perspective(&image, w, h, corners)
    };
    for i in 0..2 {
        let name = format!("perspective_{i}");
        assert_same(&name, &warp(i), &bytes(&f, &name));
    }
    // Corners left in place: reid's exact solve returns the image; torchvision's least
    // squares leaves ~1e-15 in the coefficients, a shift that truncation turns into one grey
    // level less on some pixels.
    assert_same("perspective_2 (identity)", &warp(2), &image);
    let (_, max) = diff(&warp(2), &bytes(&f, "perspective_2"));
    assert!(max <= 1, "perspective_2: off by {max}");
    let theirs = ints(&f, "perspective_draw_counts");
    let side = f["perspective_draw_counts"].shape[1];
    let n = 20_000;
    let mut ours = vec![0i64; 8 * side];
    let mut rng = Rng::new(9);
    for _ in 0..n {
        for (k, v) in perspective_corners(w, h, 0.5, &mut rng)
            .iter()
            .flatten()
            .enumerate()
        {
            ours[k * side + v] += 1;
        }
    }
    for k in 0..8 {
        let (a, b) = (
            &ours[k * side..(k + 1) * side],
            &theirs[k * side..(k + 1) * side],
        );
        let support = |c: &[i64]| c.iter().map(|&v| v > 0).collect::<Vec<_>>();
        assert_eq!(
            support(a),
            support(b),
            "coordinate {k}: values drawn differ"
        );
        let values = b.iter().filter(|&&v| v > 0).count() as f64;
        for (x, y) in a.iter().zip(b) {
            // Both near n / values; 5 standard deviations of a binomial count apart at most.
            let sd = (n as f64 / values).sqrt();
            assert!(
                ((x - y) as f64).abs() < 7.0 * sd,
                "coordinate {k}: {a:?} vs {b:?}"
            );
        }
    }
}

/// The sample-level mixup (`data.transforms.mixup`) blends as its code means: the other image
/// resized by Pillow, cropped, mirrored and blended pixel for pixel as NumPy does; through the
/// pipeline it reads its list, and a list naming a missing file is refused up front.
#[test]
fn sample_mixup_blends_with_the_listed_images() {
    use reid::data::section_pipeline::blend_other;
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let other = bytes(&f, "mixup_other");
    let (oh, ow) = (f["mixup_other"].shape[0], f["mixup_other"].shape[1]);
    for i in 0..3 {
        let d = floats(&f, &format!("mixup_{i}_draws"));
        let ours = blend_other(
            &image,
            w,
            h,
            &other,
            (ow, oh),
            d[0] as f32,
            (d[1] as usize, d[2] as usize),
            d[3] != 0.0,
        );
        assert_same(
            &format!("mixup_{i}"),
            &ours,
            &bytes(&f, &format!("mixup_{i}")),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let picture = image::RgbImage::from_raw(ow as u32, oh as u32, other.clone()).unwrap();
    reid::preprocess::write_png(&picture, &dir.path().join("other.png")).unwrap();
    std::fs::write(dir.path().join("list.txt"), "other.png\n\n").unwrap();
    let yaml = |p: f32, list: &str| {
        format!(
            "random_flip: {{enable: False}}\nmixup: {{enable: True, p: {p}, alpha: 0.4, \
             images_root_dir: {}, images_list_file: {}}}",
            dir.path().display(),
            dir.path().join(list).display()
        )
    };
    let mixed = pipeline(&yaml(1.0, "list.txt"), &image, w, h, 3);
    assert_ne!(mixed, image);
    assert_eq!(pipeline(&yaml(0.0, "list.txt"), &image, w, h, 3), image);
    std::fs::write(dir.path().join("bad.txt"), "other.png\nmissing.png\n").unwrap();
    let sections: TransformSections = serde_yaml::from_str(&yaml(1.0, "bad.txt")).unwrap();
    let err = Augment::from_sections(&sections).unwrap_err().to_string();
    assert!(err.contains("missing.png"), "{err}");
}

/// `(x, y, w, h)` of an RGB image `width` pixels wide.
fn region(rgb: &[u8], width: usize, (x, y, w, h): (usize, usize, usize, usize)) -> Vec<u8> {
    (y..y + h)
        .flat_map(|row| rgb[(row * width + x) * 3..(row * width + x + w) * 3].to_vec())
        .collect()
}

/// deep-object-reid's `random_crop` on chosen draws: scale, margin, static, aspect-ratio
/// alignment (to a taller and to a wider input), centre alignment, a half that Python rounds
/// to even — the same crop, pixel for pixel.
#[test]
fn random_crop_matches_deep_object_reid() {
    use reid::data::section_pipeline::random_crop_box;
    use reid::data::transform_sections::RandomCrop;
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let mut cases = 0;
    while f.contains_key(&format!("random_crop_{cases}")) {
        let name = format!("random_crop_{cases}");
        let p = floats(&f, &format!("{name}_params"));
        let section = RandomCrop {
            enable: true,
            p: 1.0,
            scale: p[0],
            margin: p[1] as usize,
            fixed: p[2] != 0.0,
            align_ar: p[3] != 0.0,
            align_center: p[4] != 0.0,
        };
        let mut draws = floats(&f, &format!("{name}_draws")).into_iter();
        let r = random_crop_box(w, h, &section, p[5], || draws.next().unwrap());
        assert!(draws.next().is_none(), "{name}: draws left over");
        assert_eq!([r.3, r.2, 3], f[&name].shape.as_slice(), "{name}: size");
        assert_same(&name, &region(&image, w, r), &bytes(&f, &name));
        cases += 1;
    }
    assert_eq!(cases, 8);
}

/// Through the pipeline a static crop of half the sides lands anywhere it can: every output is
/// the resize of one of the 13 × 17 possible crops, and many of them occur.
#[test]
fn random_crop_in_the_pipeline_takes_every_position() {
    use reid::preprocess::resample::resize_rgb;
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    let (cw, ch) = (w / 2, h / 2);
    let crops: Vec<Vec<u8>> = (0..=h - ch)
        .flat_map(|y| (0..=w - cw).map(move |x| (x, y)))
        .map(|(x, y)| resize_rgb(&region(&image, w, (x, y, cw, ch)), cw, ch, w, h))
        .collect();
    let yaml = "random_flip: {enable: False}\n\
                random_crop: {enable: True, p: 1, scale: 0.5, static: True}";
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..300 {
        let out = pipeline(yaml, &image, w, h, seed);
        let at = crops.iter().position(|c| *c == out);
        seen.insert(at.unwrap_or_else(|| panic!("seed {seed}: not one of the crops")));
    }
    assert!(
        seen.len() > crops.len() / 2,
        "{} of {}",
        seen.len(),
        crops.len()
    );
    let bad: Result<TransformSections, _> =
        serde_yaml::from_str("random_crop: {enable: True, scale: 1.5}");
    assert!(bad.unwrap().validate().is_err());
}

/// In the pipeline (before the resize, on the image as decoded), `random_grid` paints only its
/// colour and `random_figures` only black when `random_color` is off; both paint something on
/// most images and nothing at p 0.
#[test]
fn grid_and_figures_in_the_pipeline_paint_only_their_colours() {
    let f = fixture();
    let image = bytes(&f, "image");
    let (h, w) = (f["image"].shape[0], f["image"].shape[1]);
    for (yaml, color) in [
        (
            "random_flip: {enable: False}\n\
             random_grid: {enable: True, p: 1, color: '(7, 8, 9)', grid_size: '(6, 9)'}",
            [7, 8, 9],
        ),
        (
            "random_flip: {enable: False}\n\
             random_figures: {enable: True, p: 1, random_color: False, figure_prob: 0.0}",
            [0, 0, 0],
        ),
    ] {
        let mut painted_images = 0;
        for seed in 0..40 {
            let out = pipeline(yaml, &image, w, h, seed);
            let mut painted = 0;
            for (o, i) in out.chunks_exact(3).zip(image.chunks_exact(3)) {
                if o != i {
                    assert_eq!(o, color, "{yaml}: seed {seed}");
                    painted += 1;
                }
            }
            painted_images += usize::from(painted > 0);
        }
        assert!(painted_images >= 30, "{yaml}: {painted_images} of 40");
        let off = yaml.replace("p: 1", "p: 0");
        assert_eq!(pipeline(&off, &image, w, h, 3), image, "{off}");
    }
}
