//! One optimization step: forward in training mode, the configured losses, backward, and the
//! optimizer's update.

use burn::module::{Module, ParamId};
use burn::optim::GradientsParams;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::tensor::{Int, Tensor};

use super::center::CenterLoss;
use super::loss::{
    am_softmax, cross_entropy, distillation_js, mixed_am_softmax, mixed_cross_entropy, mutual_kl,
    package_consistency, probabilistic_transfer, triplet_hard,
};
use super::loss_scale::scaled;
use super::mixing::Mix;
use super::optim::Optimizer;
use super::rsc::{self, Challenge};
use super::sam::{SamConfig, ascend};
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
    /// Weight of the center loss on the features (0: off).
    #[serde(default)]
    pub center_weight: f32,
    /// Rate at which the identity centers follow the features (the paper's α).
    #[serde(default = "default_center_alpha")]
    pub center_alpha: f32,
}

fn default_center_alpha() -> f32 {
    0.5
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
            center_weight: 0.0,
            center_alpha: 0.5,
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

/// A forward pass in training mode with its losses, before backward.
struct Forward {
    loss: Tensor<1>,
    correct: i64,
    features: Tensor<2>,
    logits: Tensor<2>,
}

impl Forward {
    fn stats(&self, loss: &Tensor<1>) -> StepStats {
        let n = self.logits.dims()[0];
        StepStats {
            loss: loss.clone().into_scalar::<f32>(),
            accuracy: self.correct as f32 / n as f32,
        }
    }
}

/// A trained model whose softened class distribution (and, with `feature_weight`, whose
/// embeddings' similarities) the model under training follows: knowledge distillation.
pub struct Teacher {
    /// The teacher, in inference mode, its parameters constant (on the training device).
    pub model: ReidModel,
    /// Weight of the softened-logits term.
    pub weight: f32,
    /// Temperature of the softened distributions.
    pub temperature: f32,
    /// Weight of the embedding term (probabilistic knowledge transfer).
    pub feature_weight: f32,
}

/// The teacher's outputs for a batch, constants of the step.
pub(crate) struct Taught {
    logits: Tensor<2>,
    features: Tensor<2>,
}

fn forward(
    model: &ReidModel,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
    extra: Extra,
) -> Forward {
    let Extra {
        centers,
        taught,
        mixed,
        challenge,
        copies,
    } = extra;
    let mut out = model.logits(images);
    let scores = |features: Tensor<2>| {
        if losses.am_margin > 0.0 {
            model.cosine_logits(features)
        } else {
            model.scores(features)
        }
    };
    if losses.am_margin > 0.0 {
        out.logits = model.cosine_logits(out.features.clone());
    }
    if let Some(challenge) = challenge {
        out.features = rsc::challenge(out.features, targets.clone(), scores, challenge);
        out.logits = scores(out.features.clone());
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
    if let (Some((partners, lam)), true) = (mixed, losses.softmax_weight > 0.0) {
        let (own, partners) = (targets.clone(), partners.clone());
        let loss = if losses.am_margin > 0.0 {
            let margins = (losses.am_margin, losses.am_scale);
            mixed_am_softmax(
                out.logits.clone(),
                own,
                partners,
                lam,
                margins,
                losses.label_smooth,
            )
        } else {
            mixed_cross_entropy(out.logits.clone(), own, partners, lam, losses.label_smooth)
        };
        add(loss * losses.softmax_weight);
    } else if losses.softmax_weight > 0.0 {
        let loss = if losses.am_margin > 0.0 {
            am_softmax(
                out.logits.clone(),
                targets.clone(),
                losses.am_margin,
                losses.am_scale,
                losses.label_smooth,
            )
        } else {
            cross_entropy(out.logits.clone(), targets.clone(), losses.label_smooth)
        };
        add(loss * losses.softmax_weight);
    }
    if let Some((packages, weight)) = copies.filter(|&(p, w)| p > 1 && w > 0.0) {
        // AM-softmax scores the scaled cosines, without the margin.
        let scale = if losses.am_margin > 0.0 {
            losses.am_scale
        } else {
            1.0
        };
        add(package_consistency(out.logits.clone() * scale, packages) * weight);
    }
    if losses.triplet_weight > 0.0 {
        add(
            triplet_hard(out.features.clone(), targets.clone(), losses.margin)
                * losses.triplet_weight,
        );
    }
    if let Some(centers) = centers.filter(|_| losses.center_weight > 0.0) {
        add(centers.loss(out.features.clone(), targets) * losses.center_weight);
    }
    if let Some((teacher, target)) = taught {
        if teacher.weight > 0.0 {
            let logits = target.logits.clone();
            let term = distillation_js(out.logits.clone(), logits, teacher.temperature);
            add(term * teacher.weight);
        }
        if teacher.feature_weight > 0.0 {
            let term = probabilistic_transfer(out.features.clone(), target.features.clone());
            add(term * teacher.feature_weight);
        }
    }
    Forward {
        loss: total.expect("at least one loss has a positive weight"),
        correct,
        features: out.features,
        logits: out.logits,
    }
}

/// The terms of a forward pass beyond the configured losses.
#[derive(Clone, Copy, Default)]
struct Extra<'a> {
    /// The center loss's centers.
    centers: Option<&'a CenterLoss>,
    /// The distillation's teacher and its logits for the batch (computed once per step: SAM's
    /// second pass sees the same images).
    taught: Option<(&'a Teacher, &'a Taught)>,
    /// A mixed batch: the partners' identities and each image's own share.
    mixed: Option<(&'a Tensor<1, Int>, f32)>,
    /// Representation self-challenging: the images whose strongest features are dropped.
    challenge: Option<&'a Challenge>,
    /// The copies of each image in the batch, and the weight of their consistency.
    copies: Option<(usize, f32)>,
}

impl Teacher {
    /// The teacher's logits and embeddings for `images`, constants of the step.
    fn outputs(&self, images: Tensor<4>) -> Taught {
        let out = self.model.logits(images);
        Taught {
            logits: out.logits.detach(),
            features: out.features.detach(),
        }
    }
}

/// The loss of a batch for the model in training mode, with its statistics.
pub fn batch_loss(
    model: &ReidModel,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
) -> (Tensor<1>, StepStats) {
    let f = forward(model, images, targets, losses, Extra::default());
    let stats = f.stats(&f.loss);
    (f.loss, stats)
}

/// One step on a batch: returns the updated model.
pub fn train_step(
    model: ReidModel,
    optimizer: &mut Optimizer,
    learning_rate: impl Into<ModuleLearningRate>,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
) -> (ReidModel, StepStats) {
    train_step_with(
        model,
        optimizer,
        learning_rate,
        images,
        targets,
        losses,
        StepExtras::default(),
    )
}

/// The optional parts of a step.
#[derive(Default)]
pub struct StepExtras<'a> {
    /// Update only these parameters (all when `None`): torchreid's `fixbase_epoch` trains the
    /// new layers first.
    pub only: Option<&'a [ParamId]>,
    /// The same for deep mutual learning's peer (its own parameters).
    pub peer_only: Option<&'a [ParamId]>,
    /// Sharpness-aware minimization around the base optimizer.
    pub sam: Option<&'a SamConfig>,
    /// Identity centers for the center loss (`LossConfig::center_weight`), updated by the step.
    pub centers: Option<&'a mut CenterLoss>,
    /// A teacher to distill from.
    pub teacher: Option<&'a Teacher>,
    /// Batch mixing: the images are mixed before the forward pass, the identity loss scores
    /// both identities.
    pub mix: Option<&'a Mix>,
    /// Representation self-challenging of this batch.
    pub challenge: Option<&'a Challenge>,
    /// Consecutive copies of each image in the batch and the weight of their consistency
    /// (deep-object-reid's `mixing_loss`).
    pub copies: Option<(usize, f32)>,
}

/// The gradients of `model`'s parameters (only those in `only`, when given).
pub(crate) fn gradients(
    mut grads: burn::tensor::Gradients,
    model: &ReidModel,
    only: Option<&[ParamId]>,
) -> GradientsParams {
    match only {
        Some(ids) => GradientsParams::from_params(&mut grads, model, ids),
        None => GradientsParams::from_grads(grads, model),
    }
}

/// One step with the optional parts: returns the updated model.
pub fn train_step_with(
    model: ReidModel,
    optimizer: &mut Optimizer,
    learning_rate: impl Into<ModuleLearningRate>,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
    extras: StepExtras,
) -> (ReidModel, StepStats) {
    // One model: `peer_only` has no peer to restrict.
    let StepExtras {
        only,
        peer_only: _,
        sam,
        centers,
        teacher,
        mix,
        challenge,
        copies,
    } = extras;
    let images = match mix {
        Some(mix) => mix.apply(images),
        None => images,
    };
    let partners = mix.map(|m| m.partner_targets(targets.clone()));
    let target = teacher.map(|t| t.outputs(images.clone()));
    let extra = Extra {
        centers: centers.as_deref(),
        taught: teacher.zip(target.as_ref()),
        mixed: partners.as_ref().zip(mix.map(|m| m.lam)),
        challenge,
        copies,
    };
    let f = forward(&model, images.clone(), targets.clone(), losses, extra);
    let stats = f.stats(&f.loss);
    let mut grads = gradients(scaled(f.loss).backward(), &model, only);
    if let Some(sam) = sam {
        let sharp = ascend(&model, &grads, sam);
        let at_sharp = forward(&sharp, images, targets.clone(), losses, extra);
        grads = gradients(scaled(at_sharp.loss).backward(), &sharp, only);
    }
    if let Some(centers) = centers {
        centers.update(f.features, targets);
    }
    (optimizer.step(learning_rate, model, grads), stats)
}

/// A model trained by deep mutual learning, with its optimizer.
pub struct Learner<'a> {
    /// The model.
    pub model: ReidModel,
    /// Its optimizer.
    pub optimizer: &'a mut Optimizer,
}

/// One step of deep mutual learning (Zhang et al., CVPR 2018): each model minimizes its own
/// losses plus `weight ·` KL(peer's class distribution ‖ its own), the peer's held constant.
/// `extras` apply to the first model; SAM is not combined with mutual learning.
pub fn mutual_step(
    (main, peer): (Learner, Learner),
    learning_rate: impl Into<ModuleLearningRate>,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
    losses: &LossConfig,
    weight: f32,
    extras: StepExtras,
) -> ((ReidModel, ReidModel), (StepStats, StepStats)) {
    let StepExtras {
        only,
        peer_only,
        centers,
        ..
    } = extras;
    let centers_only = Extra {
        centers: centers.as_deref(),
        ..Extra::default()
    };
    let a = forward(
        &main.model,
        images.clone(),
        targets.clone(),
        losses,
        centers_only,
    );
    let b = forward(
        &peer.model,
        images,
        targets.clone(),
        losses,
        Extra::default(),
    );
    let loss_a = a.loss.clone() + mutual_kl(b.logits.clone(), a.logits.clone()) * weight;
    let loss_b = b.loss.clone() + mutual_kl(a.logits.clone(), b.logits.clone()) * weight;
    let stats = (a.stats(&loss_a), b.stats(&loss_b));
    let mut grads = scaled(loss_a + loss_b).backward();
    let grads_a = match only {
        Some(ids) => GradientsParams::from_params(&mut grads, &main.model, ids),
        None => GradientsParams::from_module(&mut grads, &main.model),
    };
    let grads_b = match peer_only {
        Some(ids) => GradientsParams::from_params(&mut grads, &peer.model, ids),
        None => GradientsParams::from_module(&mut grads, &peer.model),
    };
    if let Some(centers) = centers {
        centers.update(a.features, targets);
    }
    let learning_rate = learning_rate.into();
    let main_model = main
        .optimizer
        .step(learning_rate.clone(), main.model, grads_a);
    let peer_model = peer.optimizer.step(learning_rate, peer.model, grads_b);
    ((main_model, peer_model), stats)
}

/// The model as evaluation needs it: off the autodiff graph, in inference mode.
pub fn for_inference(model: &ReidModel) -> ReidModel {
    model.valid()
}
