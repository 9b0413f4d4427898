//! The learning-rate range test (Smith; the seed's "automated learning rate search"): train
//! from the run's starting model for a number of steps while the rate grows exponentially
//! from `min_lr` to `max_lr`, follow the smoothed loss, stop once it explodes, and suggest
//! the rate where it fell fastest. Nothing is saved; the model is discarded. A run whose
//! `schedule.lr_finder` is set does this first and trains at the suggested rate
//! (deep-object-reid's `lr_finder.enable`; see `train::engine`).

use burn::module::Module;
use serde::Serialize;

pub use super::config::LrFindOptions;
use super::config::TrainConfig;
use super::setup::{initial_model, scaled_for_classes, setup};
use super::step::train_step;
use crate::error::{Error, Result};

/// The curve and the suggestion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrFindReport {
    /// Rates tried, in order.
    pub lrs: Vec<f64>,
    /// Exponentially smoothed (bias-corrected) loss after each step.
    pub losses: Vec<f64>,
    /// The rate at the steepest descent of the smoothed loss.
    pub suggestion: f64,
    /// Whether the loss exploded (more than 4× its best) before the last step.
    pub diverged: bool,
}

impl LrFindReport {
    /// Writes the curve as CSV (`lr,loss` rows), atomically.
    pub fn write_csv(&self, path: &std::path::Path) -> Result<()> {
        let csv: String = std::iter::once("lr,loss\n".to_string())
            .chain(
                self.lrs
                    .iter()
                    .zip(&self.losses)
                    .map(|(l, v)| format!("{l},{v}\n")),
            )
            .collect();
        crate::formats::npy::write_atomically(path, csv.as_bytes())
    }
}

/// Runs the range test with `config`'s model, data, optimizer and losses (whatever
/// `options.mode` says: the searches by trial runs are run by `train::train`).
pub fn lr_find(
    config: &TrainConfig,
    options: &LrFindOptions,
    progress: &mut dyn FnMut(usize, f64, f64) -> bool,
) -> Result<LrFindReport> {
    let ok = options.min_lr > 0.0
        && options.max_lr > options.min_lr
        && options.max_lr.is_finite()
        && options.smoothing > 0.0
        && options.smoothing <= 1.0;
    if !ok {
        return Err(Error::InvalidInput(format!(
            "lr finder: need 0 < min_lr < max_lr (finite) and 0 < smoothing <= 1, got {options:?}"
        )));
    }
    let s = setup(config)?;
    let scaled = scaled_for_classes(config, &s);
    let config = scaled.as_ref().unwrap_or(config);
    let per_epoch = s.train_set.len() / config.sampler.batch_size.max(1);
    let steps = match options.epochs {
        Some(epochs) => epochs * per_epoch,
        None => options.steps,
    };
    if steps < 3 {
        return Err(Error::InvalidInput(format!(
            "lr finder: {steps} steps; it needs at least 3"
        )));
    }
    let mut model = initial_model(config, &s)?.fork(&s.train_device).train();
    let mut optimizer = config.optimizer.build()?;
    let ratio = (options.max_lr / options.min_lr).powf(1.0 / (steps - 1) as f64);
    let beta = 1.0 - options.smoothing;
    let (mut lrs, mut losses) = (Vec::new(), Vec::new());
    let (mut average, mut best) = (0.0, f64::MAX);
    let mut diverged = false;
    let mut order: Vec<usize> = Vec::new();
    let mut epoch = 0usize;
    // Its own stream: the range test does not take the training run's batches.
    let mut next_batch = || -> Result<_> {
        if order.len() < config.sampler.batch_size {
            let seed = config.seed ^ 0x4c52;
            order = s
                .sampler
                .epoch(&s.train_set, config.sampler.batch_size, seed, epoch)?;
            order.reverse();
            epoch += 1;
            if order.len() < config.sampler.batch_size {
                return Err(Error::InvalidInput(format!(
                    "{} training images make no full batch of {}",
                    s.train_set.len(),
                    config.sampler.batch_size
                )));
            }
        }
        let indices: Vec<usize> = (0..config.sampler.batch_size)
            .filter_map(|_| order.pop())
            .collect();
        s.batch(&indices, &config.video, config.seed, epoch)
    };
    // deep-object-reid's warm-up: epochs at the run's rate, the test from the model they leave.
    for _ in 0..options.warmup_epochs * per_epoch {
        let (images, labels) = next_batch()?;
        let lr = config.schedule.lr;
        let (next, _) = train_step(model, &mut optimizer, lr, images, labels, &config.loss.reid);
        model = next;
    }
    for step in 0..steps {
        let lr = options.min_lr * ratio.powi(step as i32);
        let (images, labels) = next_batch()?;
        let (next, stats) =
            train_step(model, &mut optimizer, lr, images, labels, &config.loss.reid);
        model = next;
        let loss = stats.loss as f64;
        average = beta * average + options.smoothing * loss;
        let smoothed = average / (1.0 - beta.powi(step as i32 + 1));
        lrs.push(lr);
        losses.push(smoothed);
        if !progress(step + 1, lr, smoothed) {
            return Err(Error::Cancelled);
        }
        if !loss.is_finite() || smoothed > 4.0 * best {
            diverged = true;
            break;
        }
        best = best.min(smoothed);
    }
    // Steepest descent of the smoothed loss against log(lr), ignoring the noisy start.
    let start = (lrs.len() / 10).max(1);
    let suggestion = (start..lrs.len())
        .filter(|&i| losses[i].is_finite() && losses[i - 1].is_finite())
        .min_by(|&a, &b| {
            let slope = |i: usize| losses[i] - losses[i - 1];
            slope(a).total_cmp(&slope(b))
        })
        .map_or(options.min_lr, |i| lrs[i]);
    Ok(LrFindReport {
        lrs,
        losses,
        suggestion,
        diverged,
    })
}
