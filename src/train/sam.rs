//! Sharpness-aware minimization (Foret et al., ICLR 2021; deep-object-reid's `sam` optimizer),
//! wrapping whichever optimizer the run uses: the gradient at `w` gives the ascent step
//! `e = ρ · g / ‖g‖` (adaptive SAM: `e = ρ · w² g / ‖w g‖`), and the base optimizer then steps
//! from `w` with the gradient taken at `w + e`.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::models::ReidModel;

/// SAM's settings (`sam:` in deep-object-reid's configs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamConfig {
    /// Radius of the neighbourhood searched for the sharpest loss (ρ).
    pub rho: f64,
    /// Adaptive SAM (ASAM): the neighbourhood scales with each weight's magnitude.
    pub adaptive: bool,
}

impl Default for SamConfig {
    /// deep-object-reid's defaults.
    fn default() -> Self {
        Self {
            rho: 0.05,
            adaptive: true,
        }
    }
}

/// Sums `‖g‖²` (or `‖w g‖²` when adaptive) over the parameters that have a gradient.
struct GradientNorm<'a> {
    grads: &'a GradientsParams,
    adaptive: bool,
    squares: Option<Tensor<1>>,
}

impl ModuleVisitor for GradientNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.get::<D>(param.id) else {
            return;
        };
        let scaled = if self.adaptive {
            grad * param.val().inner().abs()
        } else {
            grad
        };
        let square = scaled.powf_scalar(2.0).sum();
        self.squares = Some(match self.squares.take() {
            Some(total) => total + square,
            None => square,
        });
    }
}

/// Moves each parameter with a gradient by `scale · g` (`scale · w² g` when adaptive), as a
/// fresh leaf that records its own gradient.
struct Ascend<'a> {
    grads: &'a GradientsParams,
    adaptive: bool,
    scale: f32,
}

impl ModuleMapper for Ascend<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let id: ParamId = param.id;
        let Some(grad) = self.grads.get::<D>(id) else {
            return param;
        };
        param.map(|w| {
            let plain = w.inner();
            let step = if self.adaptive {
                grad * plain.clone().powf_scalar(2.0)
            } else {
                grad
            };
            Tensor::from_inner(plain + step * self.scale).require_grad()
        })
    }
}

/// The model at `w + e`, the sharpest point within ρ along the gradient `grads` taken at `w`.
pub fn ascend(model: &ReidModel, grads: &GradientsParams, config: &SamConfig) -> ReidModel {
    let mut norm = GradientNorm {
        grads,
        adaptive: config.adaptive,
        squares: None,
    };
    model.visit(&mut norm);
    let Some(squares) = norm.squares else {
        return model.clone();
    };
    let norm = squares.into_scalar::<f32>().sqrt();
    let mut ascend = Ascend {
        grads,
        adaptive: config.adaptive,
        scale: config.rho as f32 / (norm + 1e-12),
    };
    model.clone().map(&mut ascend)
}
