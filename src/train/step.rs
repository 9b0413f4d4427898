//! One optimization step: forward in training mode, the configured losses, backward, and the
//! optimizer's update.

use burn::module::{Module, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Int, Tensor};

use super::loss::{am_softmax, cross_entropy, triplet_hard};
use crate::models::ReidModel;

/// Which losses a step minimizes, and their weights (torchreid's `loss.softmax` /
/// `loss.triplet` sections).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossConfig {
    /// Weight of the identity cross-entropy (0: off).
    pub softmax_weight: f32,
    /// Label smoothing ε of the cross-entropy.
    pub label_smooth: f32,
    /// Weight of the batch-hard triplet loss (0: off).
    pub triplet_weight: f32,
    /// Triplet margin.
    pub margin: f32,
    /// AM-softmax instead of the plain cross-entropy: cosine logits with this additive margin
    /// (0: plain cross-entropy on the linear classifier).
    #[serde(default)]
    pub am_margin: f32,
    /// AM-softmax scale.
    #[serde(default = "default_am_scale")]
    pub am_scale: f32,
}

fn default_am_scale() -> f32 {
    30.0
}

impl Default for LossConfig {
    /// torchreid's `softmax` loss: cross-entropy with label smoothing 0.1.
    fn default() -> Self {
        Self {
            softmax_weight: 1.0,
            label_smooth: 0.1,
            triplet_weight: 0.0,
            margin: 0.3,
            am_margin: 0.0,
            am_scale: 30.0,
        }
    }
}

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Total loss.
    pub loss: f32,
    /// Fraction of the batch whose identity the classifier got right.
    pub accuracy: f32,
}

/// The loss of a batch for the model in training mode, with its statistics.
pub fn batch_loss(
    model: &ReidModel,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
) -> (Tensor<1>, StepStats) {
    let mut out = model.logits(images);
    if losses.am_margin > 0.0 {
        out.logits = model.cosine_logits(out.features.clone());
    }
    let n = targets.dims()[0];
    let correct = out
        .logits
        .clone()
        .argmax(1)
        .reshape([n])
        .equal(targets.clone())
        .int()
        .sum()
        .into_scalar::<i64>();
    let mut total: Option<Tensor<1>> = None;
    let mut add = |term: Tensor<1>| {
        total = Some(match total.take() {
            Some(t) => t + term,
            None => term,
        })
    };
    if losses.softmax_weight > 0.0 {
        let loss = if losses.am_margin > 0.0 {
            am_softmax(
                out.logits,
                targets.clone(),
                losses.am_margin,
                losses.am_scale,
                losses.label_smooth,
            )
        } else {
            cross_entropy(out.logits, targets.clone(), losses.label_smooth)
        };
        add(loss * losses.softmax_weight);
    }
    if losses.triplet_weight > 0.0 {
        add(triplet_hard(out.features, targets, losses.margin) * losses.triplet_weight);
    }
    let total = total.expect("at least one loss has a positive weight");
    let stats = StepStats {
        loss: total.clone().into_scalar::<f32>(),
        accuracy: correct as f32 / n as f32,
    };
    (total, stats)
}

/// One step on a batch: returns the updated model.
pub fn train_step(
    model: ReidModel,
    optimizer: &mut ModuleOptimizer,
    learning_rate: f64,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
) -> (ReidModel, StepStats) {
    train_step_on(
        model,
        optimizer,
        learning_rate,
        images,
        targets,
        losses,
        None,
    )
}

/// One step that updates only the parameters in `only` (all when `None`): torchreid's
/// `fixbase_epoch` trains the new layers first.
pub fn train_step_on(
    model: ReidModel,
    optimizer: &mut ModuleOptimizer,
    learning_rate: f64,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
    only: Option<&[ParamId]>,
) -> (ReidModel, StepStats) {
    let (loss, stats) = batch_loss(&model, images, targets, losses);
    let mut grads = loss.backward();
    let grads = match only {
        Some(ids) => GradientsParams::from_params(&mut grads, &model, ids),
        None => GradientsParams::from_grads(grads, &model),
    };
    (optimizer.step(learning_rate, model, grads), stats)
}

/// The model as evaluation needs it: off the autodiff graph, in inference mode.
pub fn for_inference(model: &ReidModel) -> ReidModel {
    model.valid()
}
