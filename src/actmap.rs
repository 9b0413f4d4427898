//! Activation maps (torchreid's `tools/visualize_actmap.py`): where a model looks. For each
//! image, the last feature maps' channels are squared and summed, L2-normalized over
//! positions, resized to the input (bilinear, pixel centres), scaled to 0–255 by their range
//! and coloured with the jet colour map; the PNG shows the input, the heat map and their blend
//! (0.3 · image + 0.7 · heat) side by side. (torchreid blends its RGB image with OpenCV's BGR
//! heat map; here both are RGB.)

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::models::ReidModel;
use crate::preprocess::resample::resize_rgb;
use crate::preprocess::{ImageView, PixelFormat, Preprocessing, decode, write_png};

/// White space between the three panels of a picture.
pub const SPACING: usize = 10;

/// Activation maps `[N][h·w]` of `images` (`[N, 3, H, W]`, prepared for the model) and their
/// size `(h, w)`; `model` must be in inference mode.
pub fn activation_maps(
    model: &ReidModel,
    images: Tensor<4>,
) -> Result<(Vec<Vec<f32>>, usize, usize)> {
    let maps = model.featuremaps(images);
    let [n, _, h, w] = maps.dims();
    let energy = maps.powf_scalar(2.0).sum_dim(1).reshape([n, h * w]);
    let norm = energy
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    let values = (energy / norm)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::InvalidInput(format!("activation maps: {e}")))?;
    Ok((values.chunks(h * w).map(<[f32]>::to_vec).collect(), h, w))
}

/// Bilinear resize of one plane with pixel-centre alignment and clamped edges (OpenCV's
/// `INTER_LINEAR`).
fn resize_plane(src: &[f32], w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<f32> {
    let taps = |out: usize, size: usize| -> Vec<(usize, usize, f32)> {
        let scale = size as f32 / out as f32;
        (0..out)
            .map(|o| {
                let x = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
                let x0 = (x.floor() as usize).min(size - 1);
                let x1 = (x0 + 1).min(size - 1);
                (x0, x1, x - x0 as f32)
            })
            .collect()
    };
    let (xs, ys) = (taps(out_w, w), taps(out_h, h));
    let mut out = Vec::with_capacity(out_w * out_h);
    for &(y0, y1, fy) in &ys {
        for &(x0, x1, fx) in &xs {
            let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
            let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// The jet colour of a level 0–255 (within one level of OpenCV's `COLORMAP_JET`).
pub fn jet(level: u8) -> [u8; 3] {
    let x = level as f32 / 255.0;
    let channel =
        |centre: f32| ((1.5 - (4.0 * x - centre).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [channel(3.0), channel(2.0), channel(1.0)]
}

/// The RGB heat map (`out_w × out_h`) of one activation map of `w × h`.
pub fn heatmap(map: &[f32], w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    let resized = resize_plane(map, w, h, out_w, out_h);
    let (lo, hi) = resized
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    resized
        .iter()
        .flat_map(|&v| jet((255.0 * (v - lo) / (hi - lo + 1e-12)).floor() as u8))
        .collect()
}

/// The picture of one image: input | heat map | blend, `SPACING` white pixels apart.
pub fn actmap_picture(rgb: &[u8], heat: &[u8], w: usize, h: usize) -> image::RgbImage {
    let mut canvas =
        image::RgbImage::from_pixel((3 * w + 2 * SPACING) as u32, h as u32, image::Rgb([255; 3]));
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) * 3;
            let (img, hot) = (&rgb[i..i + 3], &heat[i..i + 3]);
            let blend = |c: usize| (0.3 * img[c] as f32 + 0.7 * hot[c] as f32).min(255.0) as u8;
            let (x, y) = (x as u32, y as u32);
            canvas.put_pixel(x, y, image::Rgb([img[0], img[1], img[2]]));
            canvas.put_pixel(
                x + (w + SPACING) as u32,
                y,
                image::Rgb([hot[0], hot[1], hot[2]]),
            );
            canvas.put_pixel(
                x + 2 * (w + SPACING) as u32,
                y,
                image::Rgb([blend(0), blend(1), blend(2)]),
            );
        }
    }
    canvas
}

/// Writes one activation-map PNG per image file into `out_dir` (named after the image),
/// `batch` images at a time; returns the files written.
pub fn write_actmaps(
    model: &ReidModel,
    files: &[PathBuf],
    preprocessing: &Preprocessing,
    out_dir: &Path,
    device: &Device,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let (w, h) = (preprocessing.width, preprocessing.height);
    let mut written = Vec::with_capacity(files.len());
    for chunk in files.chunks(16) {
        let mut pixels = vec![0f32; chunk.len() * preprocessing.input_len()];
        let mut shown = Vec::with_capacity(chunk.len());
        for (file, out) in chunk
            .iter()
            .zip(pixels.chunks_mut(preprocessing.input_len()))
        {
            let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
            let (rgb, iw, ih) = decode(&bytes)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", file.display())))?;
            preprocessing.prepare(&ImageView::packed(&rgb, iw, ih, PixelFormat::Rgb8), out)?;
            shown.push(resize_rgb(&rgb, iw, ih, w, h));
        }
        let images =
            Tensor::<4>::from_data(TensorData::new(pixels, [chunk.len(), 3, h, w]), device);
        let (maps, mh, mw) = activation_maps(model, images)?;
        for ((file, map), rgb) in chunk.iter().zip(&maps).zip(&shown) {
            let picture = actmap_picture(rgb, &heatmap(map, mw, mh, w, h), w, h);
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
            let path = out_dir.join(format!("{:05}_{stem}.png", written.len()));
            write_png(&picture, &path)?;
            written.push(path);
        }
    }
    Ok(written)
}
