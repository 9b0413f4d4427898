//! Dynamic loss scaling for float16 training, as torch's `GradScaler` does it: the loss is
//! multiplied by a large scale before the backward pass so that small gradients survive
//! float16's narrow range; the optimizer divides the gradients by the scale again and skips the
//! update when any of them came out infinite or NaN. The scale halves after such a step and
//! doubles after `growth_interval` good steps in a row (torch's defaults: 2¹⁶, ×2, ×½, 2000).
//!
//! The scale of the step in progress belongs to the thread that runs it ([`LossScaler::run`]):
//! every backward pass of the step multiplies its loss by [`scaled`], and
//! [`super::optim::Optimizer::step`] divides by [`step_scale`]; a step that spreads over
//! threads hands the scale on with [`with_step_scale`].

use std::cell::Cell;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::models::precision::{HalfPrecision, autocast, with_thread_setting};

/// torch's `GradScaler` state: the scale and the good steps since it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// The factor the next step's loss is multiplied by.
    pub scale: f32,
    /// Steps in a row whose gradients were all finite, since the scale last changed.
    pub good_steps: u32,
    /// Good steps in a row after which the scale doubles.
    pub growth_interval: u32,
    /// Steps skipped since the run began (gradients not finite).
    #[serde(default)]
    pub skipped_steps: u64,
}

impl Default for LossScaler {
    /// torch's defaults: `init_scale` 2¹⁶, `growth_interval` 2000.
    fn default() -> Self {
        Self {
            scale: 65536.0,
            good_steps: 0,
            growth_interval: 2000,
            skipped_steps: 0,
        }
    }
}

thread_local! {
    /// The scale of the step this thread is running, if scaled.
    static STEP_SCALE: Cell<Option<f32>> = const { Cell::new(None) };
    /// Whether an optimizer of this step found a gradient that is not finite.
    static OVERFLOW: Cell<bool> = const { Cell::new(false) };
}

impl LossScaler {
    /// Runs one training step `step` with its losses scaled, then updates the scale: halved
    /// (and the count of good steps reset) when an optimizer skipped its update for gradients
    /// that are not finite, doubled after `growth_interval` good steps.
    pub fn run<T>(&mut self, step: impl FnOnce() -> T) -> T {
        OVERFLOW.with(|o| o.set(false));
        let out = with_step_scale(Some(self.scale), step);
        self.update(OVERFLOW.with(|o| o.replace(false)));
        out
    }

    /// The scale after a step that `overflowed` or not (`GradScaler.update`).
    pub fn update(&mut self, overflowed: bool) {
        if overflowed {
            self.scale *= 0.5;
            self.good_steps = 0;
            self.skipped_steps += 1;
        } else {
            self.good_steps += 1;
            if self.good_steps >= self.growth_interval {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        }
    }
}

/// Runs one training step `step` as `train.mix_precision` runs it: inside
/// [`autocast`]`(precision)`, and with its losses scaled by `scaler` when there is one (float16).
pub fn mixed_step<T>(
    precision: Option<HalfPrecision>,
    scaler: Option<&mut LossScaler>,
    step: impl FnOnce() -> T,
) -> T {
    autocast(precision, || match scaler {
        Some(scaler) => scaler.run(step),
        None => step(),
    })
}

/// Runs `f` with this thread's step scale set to `scale`, restoring the previous one after.
pub(crate) fn with_step_scale<T>(scale: Option<f32>, f: impl FnOnce() -> T) -> T {
    with_thread_setting(&STEP_SCALE, scale, f)
}

/// The scale of the step this thread runs (`None`: unscaled).
pub(crate) fn step_scale() -> Option<f32> {
    STEP_SCALE.with(Cell::get)
}

/// `loss` multiplied by the step's scale, for its backward pass.
pub fn scaled(loss: Tensor<1>) -> Tensor<1> {
    match step_scale() {
        Some(scale) => loss * scale,
        None => loss,
    }
}

/// Records that an optimizer of this step skipped its update (gradients not finite).
pub(crate) fn report_overflow() {
    OVERFLOW.with(|o| o.set(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_the_threads_for_the_step_only() {
        assert_eq!(step_scale(), None);
        let mut scaler = LossScaler::default();
        let seen = scaler.run(|| {
            let inner = std::thread::spawn(step_scale).join().unwrap();
            (step_scale(), inner)
        });
        assert_eq!(seen, (Some(65536.0), None));
        assert_eq!(step_scale(), None);
        assert_eq!(scaler.good_steps, 1);
        scaler.run(report_overflow);
        assert_eq!((scaler.scale, scaler.good_steps), (32768.0, 0));
        assert_eq!(scaler.skipped_steps, 1);
    }
}
