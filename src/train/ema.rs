//! deep-object-reid's `train.ema`: an exponential moving average of the model — every
//! parameter and BatchNorm running statistic, as timm's `ModelEmaV2` averages the whole
//! `state_dict` — updated after every optimizer step (`average ← decay · average + (1 − decay) ·
//! model`) and evaluated beside the model; the better of the two becomes the run's best model.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::flat::{Values, adopt};
use crate::error::{Error, Result};
use crate::models::ReidModel;
use crate::weights::{load_checkpoint, save_checkpoint};

/// The moving average's settings (`train.ema` in deep-object-reid's configs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmaConfig {
    /// Weight of the average's past at each step, in [0, 1) (deep-object-reid's `ema_decay`).
    pub decay: f64,
}

impl Default for EmaConfig {
    /// deep-object-reid's default decay, 0.9999.
    fn default() -> Self {
        Self { decay: 0.9999 }
    }
}

impl EmaConfig {
    /// An error unless the decay is in [0, 1).
    pub fn check(&self) -> Result<()> {
        if (0.0..1.0).contains(&self.decay) {
            Ok(())
        } else {
            Err(Error::InvalidInput(format!(
                "ema decay {}: expected a value in [0, 1)",
                self.decay
            )))
        }
    }
}

/// The moving average of a model's float values, kept on the host.
#[derive(Debug, Clone)]
pub struct Ema {
    values: Vec<f32>,
    decay: f32,
    rest: f32,
}

impl Ema {
    /// The average of `config`, starting at `model`'s values (as timm's copy of the model).
    pub fn new(model: &ReidModel, config: &EmaConfig) -> Result<Self> {
        config.check()?;
        Ok(Self {
            values: Values::of(&model.valid()).values,
            decay: config.decay as f32,
            // As PyTorch computes `(1. - decay) * model_v`: the difference in double, then f32.
            rest: (1.0 - config.decay) as f32,
        })
    }

    /// Moves the average towards `model` (the model under training, after its step).
    pub fn update(&mut self, model: &ReidModel) {
        // `valid()` gathers the running statistics the step updated.
        let current = Values::of(&model.valid()).values;
        assert_eq!(current.len(), self.values.len(), "the model changed shape");
        for (average, value) in self.values.iter_mut().zip(current) {
            *average = self.decay * *average + self.rest * value;
        }
    }

    /// The average as a model for evaluation: `like` (the model under training) holding the
    /// averaged values.
    pub fn model(&self, like: &ReidModel) -> ReidModel {
        adopt(like.valid(), &self.values)
    }

    /// Writes the average as a model checkpoint (`like` gives its structure).
    pub fn save(&self, like: &ReidModel, path: &Path) -> Result<()> {
        save_checkpoint(&self.model(like), path)
    }

    /// The average saved by [`Ema::save`], for a run whose model is `model`.
    pub fn load(
        path: &Path,
        model: &ReidModel,
        config: &EmaConfig,
        device: &Device,
    ) -> Result<Self> {
        let saved = load_checkpoint(path, device)?;
        let mut ema = Self::new(model, config)?;
        let values = Values::of(&saved).values;
        if values.len() != ema.values.len() {
            return Err(Error::InvalidInput(format!(
                "{}: a moving average of {} values for a model of {}",
                path.display(),
                values.len(),
                ema.values.len()
            )));
        }
        ema.values = values;
        Ok(ema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decay_must_be_below_one() {
        for decay in [0.0, 0.5, 0.9999] {
            assert!(EmaConfig { decay }.check().is_ok());
        }
        for decay in [1.0, -0.1, f64::NAN, 2.0] {
            assert!(EmaConfig { decay }.check().is_err(), "{decay}");
        }
    }
}
