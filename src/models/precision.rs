//! Mixed precision, as `torch.autocast` does it: inside [`autocast`] every convolution (and the
//! matrix product a pointwise one becomes) computes in half precision — its input, weight and
//! bias cast down, its output cast back to float32 — while the weights, normalizations, losses
//! and the optimizer stay in float32. The casts are recorded by autodiff, so the gradients of
//! the float32 weights come back in float32 (the "master weights" of mixed-precision training).
//!
//! The setting belongs to the thread, as autocast's does: a training step sets it around its
//! forward and backward passes and evaluation, run outside, stays in float32.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::thread::LocalKey;

use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The half-precision type the convolutions compute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HalfPrecision {
    /// IEEE float16, torch.autocast's default on CUDA: its narrow range needs loss scaling.
    F16,
    /// bfloat16: float32's range with 8 bits of mantissa; no loss scaling needed.
    Bf16,
}

impl HalfPrecision {
    /// Burn's type.
    pub fn dtype(self) -> FloatDType {
        match self {
            HalfPrecision::F16 => FloatDType::F16,
            HalfPrecision::Bf16 => FloatDType::BF16,
        }
    }

    /// Whether gradients computed in this type underflow unless the loss is scaled up first.
    pub fn needs_loss_scaling(self) -> bool {
        self == HalfPrecision::F16
    }
}

impl FromStr for HalfPrecision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f16" | "fp16" | "float16" => Ok(HalfPrecision::F16),
            "bf16" | "bfloat16" => Ok(HalfPrecision::Bf16),
            other => Err(Error::InvalidInput(format!(
                "unknown half precision `{other}`; known: f16, bf16"
            ))),
        }
    }
}

impl fmt::Display for HalfPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HalfPrecision::F16 => "f16",
            HalfPrecision::Bf16 => "bf16",
        })
    }
}

thread_local! {
    static COMPUTE: Cell<Option<HalfPrecision>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's convolutions computing in `precision` (`None`: float32), then
/// restores the setting it found, also when `f` panics.
pub fn autocast<T>(precision: Option<HalfPrecision>, f: impl FnOnce() -> T) -> T {
    with_thread_setting(&COMPUTE, precision, f)
}

/// Runs `f` with the thread-local `setting` holding `value`, then restores what it held, also
/// when `f` panics (a step's settings: [`autocast`], the loss scale of `train::loss_scale`).
pub(crate) fn with_thread_setting<S: Copy + 'static, T>(
    setting: &'static LocalKey<Cell<S>>,
    value: S,
    f: impl FnOnce() -> T,
) -> T {
    struct Restore<S: Copy + 'static>(&'static LocalKey<Cell<S>>, S);
    impl<S: Copy + 'static> Drop for Restore<S> {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(setting, setting.with(|c| c.replace(value)));
    f()
}

/// The half precision this thread's convolutions compute in, if any ([`autocast`]).
pub fn compute_precision() -> Option<HalfPrecision> {
    COMPUTE.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autocast_is_scoped_to_the_thread_and_the_call() {
        assert_eq!(compute_precision(), None);
        autocast(Some(HalfPrecision::Bf16), || {
            assert_eq!(compute_precision(), Some(HalfPrecision::Bf16));
            std::thread::spawn(|| assert_eq!(compute_precision(), None))
                .join()
                .unwrap();
            autocast(None, || assert_eq!(compute_precision(), None));
            assert_eq!(compute_precision(), Some(HalfPrecision::Bf16));
        });
        let caught = std::panic::catch_unwind(|| {
            autocast(Some(HalfPrecision::F16), || panic!("inside"));
        });
        assert!(caught.is_err());
        assert_eq!(compute_precision(), None);
        assert_eq!(
            "bf16".parse::<HalfPrecision>().unwrap(),
            HalfPrecision::Bf16
        );
        assert_eq!("fp16".parse::<HalfPrecision>().unwrap(), HalfPrecision::F16);
        assert!("f8".parse::<HalfPrecision>().is_err());
    }
}
