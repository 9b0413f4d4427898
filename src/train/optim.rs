//! Optimizers by torchreid's names and defaults (`train.optim`): SGD (momentum, dampening,
//! Nesterov, weight decay), Adam, AMSGrad, AdamW, RAdam and RMSprop, on Burn's optimizers with
//! PyTorch's conventions (L2 weight decay added to the gradient, ε = 1e-8, no dampening).

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, RmsPropConfig, SgdConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An optimizer and its hyper-parameters (the learning rate comes from the schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// `sgd`, `adam`, `amsgrad`, `adamw`, `radam` or `rmsprop`.
    pub name: String,
    /// L2 weight decay (decoupled for `adamw`).
    pub weight_decay: f64,
    /// SGD / RMSprop momentum.
    pub momentum: f64,
    /// SGD dampening.
    pub sgd_dampening: f64,
    /// SGD Nesterov momentum.
    pub sgd_nesterov: bool,
    /// Adam β₁.
    pub adam_beta1: f64,
    /// Adam β₂.
    pub adam_beta2: f64,
    /// RMSprop smoothing constant.
    pub rmsprop_alpha: f64,
}

impl Default for OptimizerConfig {
    /// torchreid's defaults: Adam, weight decay 5e-4, momentum 0.9, β = (0.9, 0.99).
    fn default() -> Self {
        Self {
            name: "adam".into(),
            weight_decay: 5e-4,
            momentum: 0.9,
            sgd_dampening: 0.0,
            sgd_nesterov: false,
            adam_beta1: 0.9,
            adam_beta2: 0.99,
            rmsprop_alpha: 0.99,
        }
    }
}

/// Optimizer names [`OptimizerConfig::build`] accepts.
pub const OPTIMIZERS: [&str; 6] = ["sgd", "adam", "amsgrad", "adamw", "radam", "rmsprop"];

impl OptimizerConfig {
    /// The optimizer, with fresh state.
    pub fn build(&self) -> Result<ModuleOptimizer> {
        let decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        let adam = |amsgrad: bool| {
            AdamConfig::new()
                .with_beta_1(self.adam_beta1 as f32)
                .with_beta_2(self.adam_beta2 as f32)
                .with_epsilon(1e-8)
                .with_amsgrad(amsgrad)
                .with_weight_decay(decay.clone())
                .init()
        };
        Ok(match self.name.as_str() {
            "sgd" => SgdConfig::new()
                .with_weight_decay(decay.clone())
                .with_momentum((self.momentum > 0.0).then_some(MomentumConfig {
                    momentum: self.momentum,
                    dampening: self.sgd_dampening,
                    nesterov: self.sgd_nesterov,
                }))
                .init(),
            "adam" => adam(false),
            "amsgrad" => adam(true),
            "adamw" => AdamWConfig::new()
                .with_beta_1(self.adam_beta1 as f32)
                .with_beta_2(self.adam_beta2 as f32)
                .with_epsilon(1e-8)
                .with_weight_decay(self.weight_decay as f32)
                .init(),
            "radam" => burn::optim::ModuleOptimizer::from(super::radam::RAdam {
                beta1: self.adam_beta1,
                beta2: self.adam_beta2,
                epsilon: 1e-8,
                weight_decay: self.weight_decay,
            }),
            "rmsprop" => RmsPropConfig::new()
                .with_alpha(self.rmsprop_alpha as f32)
                .with_momentum(self.momentum as f32)
                .with_epsilon(1e-8)
                .with_weight_decay(decay)
                .init(),
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown optimizer `{other}`; known: {}",
                    OPTIMIZERS.join(", ")
                )));
            }
        })
    }
}
