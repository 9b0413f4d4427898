//! A synthetic image-classification dataset: each class is an object of its own shape and
//! colour, drawn at a random place and size over a noisy, randomly tinted background.
//! Single-label sets are written as ImageFolders (`train/<class>/`, `val/<class>/`);
//! multi-label sets put one to `max_labels` objects in each image and are written in
//! deep-object-reid's multilabel JSON format (`train.json`, `val.json`, `images/`).

use std::path::Path;

use rayon::prelude::*;

use super::canvas::{Canvas, Rgb};
use super::encode_jpeg;
use crate::data::rng::Rng;
use crate::error::{Error, Result};

/// Options of [`synthesize_classes`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSynthOptions {
    /// Number of classes (at most 48: 6 shapes × 8 colours).
    pub classes: usize,
    /// Training images per class (single-label) or in all (multi-label: this × classes).
    pub train_per_class: usize,
    /// Validation images per class (or this × classes in all).
    pub val_per_class: usize,
    /// Square image side in pixels.
    pub size: usize,
    /// Several objects per image, labelled with every class present.
    pub multilabel: bool,
    /// Most objects in one multi-label image.
    pub max_labels: usize,
    /// Seed of everything drawn.
    pub seed: u64,
}

impl Default for ClassSynthOptions {
    fn default() -> Self {
        Self {
            classes: 10,
            train_per_class: 40,
            val_per_class: 10,
            size: 64,
            multilabel: false,
            max_labels: 3,
            seed: 0,
        }
    }
}

const PALETTE: [Rgb; 8] = [
    [220.0, 40.0, 40.0],
    [40.0, 170.0, 60.0],
    [40.0, 80.0, 220.0],
    [230.0, 200.0, 40.0],
    [200.0, 60.0, 200.0],
    [40.0, 200.0, 210.0],
    [240.0, 140.0, 30.0],
    [250.0, 250.0, 250.0],
];
const SHAPES: usize = 6;

/// Draws class `class`'s object centred at `(cx, cy)` with radius `r`.
fn draw_object(canvas: &mut Canvas, class: usize, cx: f32, cy: f32, r: f32) {
    let color = PALETTE[class % PALETTE.len()];
    let dark = color.map(|c| c * 0.35);
    let solid = |_: f32, _: f32| color;
    match (class / PALETTE.len()) % SHAPES {
        0 => canvas.ellipse(cx, cy, r, r, color),
        1 => canvas.rect(cx - r, cy - r, cx + r, cy + r, solid),
        2 => {
            canvas.rect(cx - r, cy - r / 3.0, cx + r, cy + r / 3.0, solid);
            canvas.rect(cx - r / 3.0, cy - r, cx + r / 3.0, cy + r, solid);
        }
        3 => {
            canvas.ellipse(cx, cy, r, r, color);
            canvas.ellipse(cx, cy, r * 0.5, r * 0.5, dark);
        }
        4 => canvas.rect(cx - r, cy - r, cx + r, cy + r, |u, _| {
            if ((u * 4.0) as usize).is_multiple_of(2) {
                color
            } else {
                dark
            }
        }),
        _ => canvas.ellipse(cx, cy, r, r * 0.45, color),
    }
}

fn render(options: &ClassSynthOptions, labels: &[usize], rng: &mut Rng) -> Vec<u8> {
    let s = options.size as f32;
    let base: Rgb = [
        rng.range(60.0, 160.0),
        rng.range(60.0, 160.0),
        rng.range(60.0, 160.0),
    ];
    let mut canvas = Canvas::new(options.size, options.size, base);
    let tilt = rng.range(-40.0, 40.0);
    canvas.paint(|x, y| {
        let t = (x + y) as f32 / (2.0 * s) - 0.5;
        base.map(|c| (c + tilt * t).clamp(0.0, 255.0))
    });
    // Objects share the image: each gets its own cell of a 2×2 grid when there are several.
    let mut cells = [0usize, 1, 2, 3];
    rng.shuffle(&mut cells);
    for (i, &class) in labels.iter().enumerate() {
        let (r, cx, cy) = if labels.len() == 1 {
            let r = s * rng.range(0.15, 0.3);
            (r, rng.range(r, s - r), rng.range(r, s - r))
        } else {
            let r = s * rng.range(0.09, 0.16);
            let (col, row) = ((cells[i % 4] % 2) as f32, (cells[i % 4] / 2) as f32);
            let half = s / 2.0;
            (
                r,
                col * half + rng.range(r, half - r),
                row * half + rng.range(r, half - r),
            )
        };
        draw_object(&mut canvas, class, cx, cy, r);
    }
    let gain = rng.range(0.8, 1.2);
    canvas.light(gain, [1.0; 3]);
    let mut noise = Rng::derive(rng.next_u64(), &[]);
    canvas.noise(|| noise.normal() * 6.0);
    canvas.to_rgb8()
}

/// What [`synthesize_classes`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSynthSummary {
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub val: usize,
}

fn class_name(class: usize) -> String {
    format!("class_{class:02}")
}

/// Writes a synthetic classification dataset under `out` (each file atomically).
pub fn synthesize_classes(out: &Path, options: &ClassSynthOptions) -> Result<ClassSynthSummary> {
    if options.classes < 2 || options.classes > PALETTE.len() * SHAPES {
        return Err(Error::InvalidInput(format!(
            "classes must be within 2..={}",
            PALETTE.len() * SHAPES
        )));
    }
    if options.size < 16 || options.train_per_class == 0 || options.val_per_class == 0 {
        return Err(Error::InvalidInput(
            "the image size must be at least 16 and each split needs images".into(),
        ));
    }
    if options.multilabel && !(1..=4).contains(&options.max_labels) {
        return Err(Error::InvalidInput(
            "max_labels must be within 1..=4".into(),
        ));
    }
    let marker = if options.multilabel {
        out.join("train.json")
    } else {
        out.join("train")
    };
    if marker.exists() {
        return Err(Error::InvalidInput(format!(
            "{} already holds a dataset; choose an empty folder",
            out.display()
        )));
    }
    let mut counts = Vec::new();
    for (split, per_class, stream) in [
        ("train", options.train_per_class, 1u64),
        ("val", options.val_per_class, 2u64),
    ] {
        let n = per_class * options.classes;
        let items: Vec<(String, Vec<usize>)> = (0..n)
            .map(|i| {
                let mut rng = Rng::derive(options.seed, &[stream, i as u64, 0]);
                let labels = if options.multilabel {
                    let count = 1 + rng.below(options.max_labels);
                    let mut all: Vec<usize> = (0..options.classes).collect();
                    rng.shuffle(&mut all);
                    let mut chosen = all[..count].to_vec();
                    chosen.sort_unstable();
                    chosen
                } else {
                    vec![i % options.classes]
                };
                let file = if options.multilabel {
                    format!("images/{split}_{i:05}.jpg")
                } else {
                    format!("{split}/{}/{i:05}.jpg", class_name(labels[0]))
                };
                (file, labels)
            })
            .collect();
        items
            .par_iter()
            .enumerate()
            .try_for_each(|(i, (file, labels))| {
                let mut rng = Rng::derive(options.seed, &[stream, i as u64, 1]);
                let rgb = render(options, labels, &mut rng);
                let path = out.join(file);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                }
                let jpeg = encode_jpeg(&rgb, options.size, options.size)?;
                crate::formats::npy::write_atomically(&path, &jpeg)
            })?;
        if options.multilabel {
            let images: Vec<serde_json::Value> = items
                .iter()
                .map(|(file, labels)| {
                    let names: Vec<String> = labels.iter().map(|&c| class_name(c)).collect();
                    serde_json::json!([file, names])
                })
                .collect();
            let classes: Vec<String> = (0..options.classes).map(class_name).collect();
            let json = serde_json::json!({"classes": classes, "images": images});
            crate::formats::npy::write_atomically(
                &out.join(format!("{split}.json")),
                json.to_string().as_bytes(),
            )?;
        }
        counts.push(n);
    }
    Ok(ClassSynthSummary {
        train: counts[0],
        val: counts[1],
    })
}
