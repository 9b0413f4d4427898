//! One training step of a multi-label classifier: logits (or cosine scores for AM-binary)
//! against multi-hot targets with one of the multilabel losses.

use burn::module::ParamId;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::loss_scale::scaled;
use super::multilabel_loss::{AmBinaryLoss, AsymmetricLoss, bce_with_logits};
use super::optim::Optimizer;
use super::step::{StepStats, gradients};
use crate::models::ReidModel;

/// The loss a multi-label classifier trains with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MultilabelLoss {
    /// Binary cross-entropy.
    Bce,
    /// The asymmetric loss (deep-object-reid's default for multilabel).
    Asl {
        /// Focusing exponent on positives.
        gamma_pos: f32,
        /// Focusing exponent on negatives.
        gamma_neg: f32,
        /// Probability margin shifted off the negatives.
        clip: f32,
    },
    /// The additive-margin binary loss on cosine scores.
    AmBinary {
        /// Cosine margin.
        margin: f32,
        /// Scale.
        scale: f32,
        /// Weight of the positive term.
        k: f32,
    },
}

impl Default for MultilabelLoss {
    fn default() -> Self {
        let asl = AsymmetricLoss::default();
        MultilabelLoss::Asl {
            gamma_pos: asl.gamma_pos,
            gamma_neg: asl.gamma_neg,
            clip: asl.clip,
        }
    }
}

impl MultilabelLoss {
    /// Whether the loss reads cosine scores rather than the classifier's logits.
    pub fn uses_cosine(&self) -> bool {
        matches!(self, MultilabelLoss::AmBinary { .. })
    }

    /// The loss of `scores` (logits, or cosines for AM-binary) against `targets`.
    pub fn forward(&self, scores: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        match *self {
            MultilabelLoss::Bce => bce_with_logits(scores, targets),
            MultilabelLoss::Asl {
                gamma_pos,
                gamma_neg,
                clip,
            } => AsymmetricLoss {
                gamma_pos,
                gamma_neg,
                clip,
                ..AsymmetricLoss::default()
            }
            .forward(scores, targets),
            MultilabelLoss::AmBinary { margin, scale, k } => {
                AmBinaryLoss { margin, scale, k }.forward(scores, targets)
            }
        }
    }
}

/// The class scores a multi-label model is read by: logits, or cosine scores when it was
/// trained with AM-binary.
pub fn multilabel_scores(model: &ReidModel, images: Tensor<4>, loss: &MultilabelLoss) -> Tensor<2> {
    let out = model.logits(images);
    if loss.uses_cosine() {
        model.cosine_logits(out.features)
    } else {
        out.logits
    }
}

/// One step on images and `[N, C]` multi-hot targets; the step's "accuracy" is the fraction of
/// (image, class) decisions right at score 0.
pub fn multilabel_step(
    model: ReidModel,
    optimizer: &mut Optimizer,
    learning_rate: impl Into<ModuleLearningRate>,
    images: Tensor<4>,
    targets: Tensor<2>,
    loss: &MultilabelLoss,
    only: Option<&[ParamId]>,
) -> (ReidModel, StepStats) {
    let scores = multilabel_scores(&model, images, loss);
    let [n, c] = scores.dims();
    let decided = scores.clone().greater_elem(0.0).float();
    let right = decided
        .equal(targets.clone())
        .int()
        .sum()
        .into_scalar::<i64>();
    let value = loss.forward(scores, targets);
    let stats = StepStats {
        loss: value.clone().into_scalar::<f32>(),
        accuracy: right as f32 / (n * c).max(1) as f32,
    };
    let grads = gradients(scaled(value).backward(), &model, only);
    (optimizer.step(learning_rate, model, grads), stats)
}
