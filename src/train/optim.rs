//! Optimizers by torchreid's names and defaults (`train.optim`): SGD (momentum, dampening,
//! Nesterov, weight decay), Adam, AMSGrad, AdamW, RAdam and RMSprop, on Burn's optimizers with
//! PyTorch's conventions (L2 weight decay added to the gradient, ε = 1e-8, no dampening), and
//! the [`Optimizer`] a run steps with: one of them, with deep-object-reid's `train.clip_grad`
//! (torch's `clip_grad_norm_` over the whole gradient) before every step.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, RmsPropConfig, SgdConfig,
};
use burn::tensor::{Bytes, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An optimizer and its hyper-parameters (the learning rate comes from the schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// `sgd`, `adam`, `amsgrad`, `adamw`, `radam` or `rmsprop`.
    pub name: String,
    /// L2 weight decay (decoupled for `adamw`).
    pub weight_decay: f64,
    /// Decay only parameters of two or more dimensions (convolution and linear weights), not
    /// biases and normalization parameters: deep-object-reid's `train.nbd` ("no bias decay").
    #[serde(default)]
    pub only_matrices_decay: bool,
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
            only_matrices_decay: false,
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
    pub fn build(&self) -> Result<Optimizer> {
        if !self.only_matrices_decay {
            return Ok(Optimizer::from(self.module_optimizer(self.weight_decay)?));
        }
        if self.name == "adamw" {
            return Err(Error::InvalidInput(
                "nbd (weight decay on weights only) works with the optimizers whose decay is \
                 part of the gradient; adamw decays the weights apart: use adam or sgd"
                    .into(),
            ));
        }
        // The decay is added to the chosen gradients before the update, as the optimizer
        // itself would add it to all of them.
        let mut optimizer = Optimizer::from(self.module_optimizer(0.0)?);
        optimizer.matrix_decay = (self.weight_decay > 0.0).then_some(self.weight_decay as f32);
        Ok(optimizer)
    }

    fn module_optimizer(&self, weight_decay: f64) -> Result<ModuleOptimizer> {
        let decay = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
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
                .with_weight_decay(weight_decay as f32)
                .init(),
            "radam" => burn::optim::ModuleOptimizer::from(super::radam::RAdam {
                beta1: self.adam_beta1,
                beta2: self.adam_beta2,
                epsilon: 1e-8,
                weight_decay,
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

/// The optimizer of a training step: a [`ModuleOptimizer`], and optionally torch's
/// `clip_grad_norm_` (L2 norm of all the gradients together) applied to every gradient before
/// the update, as deep-object-reid's `train.clip_grad` does. Every recipe (one model, mutual
/// learning, multi-label, several devices or processes) updates through [`Optimizer::step`],
/// so the clip applies to the gradient that actually moves the weights: the whole batch's,
/// after the devices' and ranks' gradients are summed.
#[derive(Clone)]
pub struct Optimizer {
    inner: ModuleOptimizer,
    max_norm: Option<f32>,
    /// L2 decay added here to the gradients of parameters of 2+ dimensions only (`nbd`).
    matrix_decay: Option<f32>,
}

impl From<ModuleOptimizer> for Optimizer {
    /// The optimizer without clipping.
    fn from(inner: ModuleOptimizer) -> Self {
        Self {
            inner,
            max_norm: None,
            matrix_decay: None,
        }
    }
}

impl Optimizer {
    /// Clips the gradient to the L2 norm `max_norm` before every step (0: no clipping); an
    /// error for a negative or non-finite norm.
    pub fn with_clip_norm(mut self, max_norm: f64) -> Result<Self> {
        if !(max_norm.is_finite() && max_norm >= 0.0) {
            return Err(Error::InvalidInput(format!(
                "clip_grad {max_norm}: expected a finite norm >= 0 (0: no clipping)"
            )));
        }
        self.max_norm = (max_norm > 0.0).then_some(max_norm as f32);
        Ok(self)
    }

    /// Updates `module` from `grads` (clipped first when a norm is set, then the weights'
    /// decay added when it is limited to them). Inside a loss-scaled step
    /// ([`super::loss_scale`]) the gradients are divided by the step's scale first, and when
    /// any of them is not finite the update is skipped — `module` comes back unchanged, the
    /// optimizer's state too — and the step's scaler told.
    pub fn step<M: Module>(
        &mut self,
        learning_rate: impl Into<ModuleLearningRate>,
        module: M,
        mut grads: GradientsParams,
    ) -> M {
        if let Some(scale) = super::loss_scale::step_scale()
            && !unscale(&module, &mut grads, scale)
        {
            super::loss_scale::report_overflow();
            return module;
        }
        if let Some(max_norm) = self.max_norm {
            clip_grad_norm(&module, &mut grads, max_norm);
        }
        if let Some(decay) = self.matrix_decay {
            module.visit(&mut MatrixDecay {
                grads: &mut grads,
                decay,
            });
        }
        self.inner.step(learning_rate, module, grads)
    }

    /// The optimizer's state as bytes (Burn's record).
    pub(crate) fn to_bytes(&self) -> Result<Bytes> {
        self.inner
            .into_bytes()
            .map_err(|e| Error::Runtime(format!("cannot serialize the optimizer: {e:?}")))
    }

    /// This optimizer with the state of [`Optimizer::to_bytes`]; `origin` names where the bytes
    /// came from in the error.
    pub(crate) fn with_state(self, bytes: Bytes, origin: &str) -> Result<Self> {
        let inner = self
            .inner
            .from_bytes(bytes)
            .map_err(|e| Error::InvalidInput(format!("{origin}: optimizer state: {e:?}")))?;
        Ok(Self { inner, ..self })
    }
}

/// Scales the gradients of `module`'s parameters in `grads` so that their joint L2 norm is at
/// most `max_norm`, as torch's `clip_grad_norm_` does (factor `max_norm / (norm + 1e-6)`,
/// capped at 1); parameters without a gradient (closed layers) take no part. Returns the norm
/// before clipping.
pub fn clip_grad_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f32) -> f32 {
    let mut squares = SumOfSquares { grads, sum: None };
    module.visit(&mut squares);
    let Some(sum) = squares.sum else {
        return 0.0;
    };
    // One read of the device for the whole model.
    let norm = sum.sqrt().into_scalar::<f32>();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        module.visit(&mut Scale { grads, factor });
    }
    norm
}

/// Divides the gradients of `module`'s parameters in `grads` by `scale` (multiplied by its
/// reciprocal, as torch's `GradScaler.unscale_`); whether all of them are finite after it.
fn unscale<M: Module>(module: &M, grads: &mut GradientsParams, scale: f32) -> bool {
    module.visit(&mut Scale {
        grads,
        factor: 1.0 / scale,
    });
    let mut check = NonFinite { grads, count: None };
    module.visit(&mut check);
    // One read of the device for the whole model.
    check
        .count
        .is_none_or(|count| count.into_scalar::<i64>() == 0)
}

/// Counts the values that are infinite or NaN in every gradient of a module's parameters, on
/// the device.
struct NonFinite<'a> {
    grads: &'a GradientsParams,
    count: Option<Tensor<1, Int>>,
}

impl ModuleVisitor for NonFinite<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let bad = grad.is_finite().bool_not().int().sum();
            self.count = Some(match self.count.take() {
                Some(count) => count + bad,
                None => bad,
            });
        }
    }
}

/// Adds up the squares of every gradient of a module's parameters, on the device.
struct SumOfSquares<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for SumOfSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let squares = grad.square().sum();
            self.sum = Some(match self.sum.take() {
                Some(sum) => sum + squares,
                None => squares,
            });
        }
    }
}

/// Adds `decay · parameter` to the gradient of every parameter of two or more dimensions that
/// has one (torch's L2 weight decay, for the parameter groups deep-object-reid's `nbd` decays).
struct MatrixDecay<'a> {
    grads: &'a mut GradientsParams,
    decay: f32,
}

impl ModuleVisitor for MatrixDecay<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if D < 2 {
            return;
        }
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let value = param.val().inner().to_device(&grad.device());
            self.grads.register(param.id, grad + value * self.decay);
        }
    }
}

/// Multiplies every gradient of a module's parameters by `factor`.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f32,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, grad * self.factor);
        }
    }
}
