//! Turns lists of samples into tensors: training batches (decoded and augmented in parallel,
//! each image's randomness fixed by the seed, epoch and position) and test-time features.

use std::borrow::Borrow;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;

use crate::data::Sample;
use crate::data::rng::Rng;
use crate::data::transforms::{Augment, training_input};
use crate::data::video::Tracklet;
use crate::data::video::sampling::{TrackletSampling, frame_indices};
use crate::error::{Error, Result};
use crate::models::ReidModel;
use crate::preprocess::{ImageView, PixelFormat, Preprocessing, decode};

fn read_image(sample: &Sample) -> Result<(Vec<u8>, usize, usize)> {
    let bytes = std::fs::read(&sample.path).map_err(|e| Error::io(&sample.path, e))?;
    decode(&bytes).map_err(|e| Error::InvalidInput(format!("{}: {e}", sample.path.display())))
}

/// A training batch: images `[B, 3, H, W]` and identity labels `[B]`.
pub fn training_batch(
    samples: &[Sample],
    indices: &[usize],
    preprocessing: &Preprocessing,
    augment: &Augment,
    seed: u64,
    epoch: usize,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>)> {
    packaged_batch(
        samples,
        indices,
        1,
        preprocessing,
        augment,
        seed,
        epoch,
        device,
    )
}

/// A training batch of `packages` augmented copies of each image (deep-object-reid's
/// `num_sampled_packages`): `[B · P, 3, H, W]`, the copies of an image in consecutive rows,
/// each with its own draws; one copy is [`training_batch`].
#[allow(clippy::too_many_arguments)]
pub fn packaged_batch(
    samples: &[Sample],
    indices: &[usize],
    packages: usize,
    preprocessing: &Preprocessing,
    augment: &Augment,
    seed: u64,
    epoch: usize,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>)> {
    let items: Vec<(&Sample, Vec<u64>)> = indices
        .iter()
        .flat_map(|&i| {
            (0..packages).map(move |p| {
                let mut keys = vec![epoch as u64, i as u64];
                // The first copy draws as an image without copies does.
                if p > 0 {
                    keys.push(p as u64);
                }
                (&samples[i], keys)
            })
        })
        .collect();
    batch_of(&items, preprocessing, augment, seed, device)
}

/// A training batch of tracklets (video re-id, as torchreid's video engines train): the
/// frames `sampling` picks from each tracklet of `indices` (drawn from the seed, the epoch and
/// the tracklet), each an image labelled with its tracklet's identity — `[Σ frames, 3, H, W]`.
#[allow(clippy::too_many_arguments)]
pub fn tracklet_batch(
    tracklets: &[Tracklet],
    indices: &[usize],
    sampling: &TrackletSampling,
    preprocessing: &Preprocessing,
    augment: &Augment,
    seed: u64,
    epoch: usize,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>)> {
    const FRAMES: u64 = 0x4652_414d;
    let mut frames = Vec::new();
    for &i in indices {
        let t = &tracklets[i];
        let mut rng = Rng::derive(seed, &[FRAMES, epoch as u64, i as u64]);
        for k in frame_indices(
            t.frames.len(),
            sampling.seq_len,
            sampling.sample_method,
            &mut rng,
        ) {
            frames.push((t.frame(k), vec![epoch as u64, i as u64, k as u64 + 1]));
        }
    }
    batch_of(&frames, preprocessing, augment, seed, device)
}

/// Decodes and augments `items` in parallel, each image's randomness drawn from the seed and
/// its keys.
fn batch_of<S: Borrow<Sample> + Sync>(
    items: &[(S, Vec<u64>)],
    preprocessing: &Preprocessing,
    augment: &Augment,
    seed: u64,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>)> {
    let per = preprocessing.input_len();
    let mut pixels = vec![0f32; items.len() * per];
    let patches: Vec<_> = pixels
        .par_chunks_mut(per)
        .zip(items.par_iter())
        .map(|(out, (sample, keys))| {
            let (rgb, w, h) = read_image(sample.borrow())?;
            let mut rng = Rng::derive(seed, keys);
            training_input(&rgb, w, h, preprocessing, augment, &mut rng, out)
        })
        .collect::<Result<_>>()?;
    // After the whole batch, in its order: every image of it saw the same pool.
    augment.collect_patches(patches);
    let labels: Vec<i64> = items.iter().map(|(s, _)| s.borrow().pid).collect();
    let shape = [items.len(), 3, preprocessing.height, preprocessing.width];
    Ok((
        Tensor::from_data(TensorData::new(pixels, shape), device),
        Tensor::from_data(TensorData::new(labels, [items.len()]), device),
    ))
}

/// Test-time embeddings `[N × dim]` of `samples` (the extractor's preprocessing, no
/// augmentation) from a model in inference mode.
pub fn embed_samples(
    model: &ReidModel,
    samples: &[Sample],
    preprocessing: &Preprocessing,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<f32>> {
    forward_samples(samples, preprocessing, batch_size, device, |images| {
        model.features(images)
    })
}

/// Test-time outputs of `run` on `samples` (the extractor's preprocessing, no augmentation),
/// `batch_size` images at a time, rows concatenated.
pub fn forward_samples(
    samples: &[Sample],
    preprocessing: &Preprocessing,
    batch_size: usize,
    device: &Device,
    run: impl Fn(Tensor<4>) -> Tensor<2>,
) -> Result<Vec<f32>> {
    let per = preprocessing.input_len();
    let mut out = Vec::new();
    for chunk in samples.chunks(batch_size.max(1)) {
        let mut pixels = vec![0f32; chunk.len() * per];
        pixels
            .par_chunks_mut(per)
            .zip(chunk.par_iter())
            .try_for_each(|(slot, sample)| -> Result<()> {
                let (rgb, w, h) = read_image(sample)?;
                preprocessing.prepare(&ImageView::packed(&rgb, w, h, PixelFormat::Rgb8), slot)
            })?;
        let shape = [chunk.len(), 3, preprocessing.height, preprocessing.width];
        let images = Tensor::<4>::from_data(TensorData::new(pixels, shape), device);
        out.extend(crate::models::embed::tensor_to_vec(run(images)));
    }
    Ok(out)
}
