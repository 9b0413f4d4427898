//! `TrainConfig`: everything a training run needs, with the one set of training defaults
//! (the YAML reader in `crate::config` takes its defaults from here). Saved with every run
//! (`config.json` beside the checkpoints, and in `last/state.json`).

use std::path::PathBuf;

use burn::module::ParamGroup;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use serde::{Deserialize, Serialize};

use super::layer_groups::{check_layers, open_layer_params};
use super::multilabel_step::MultilabelLoss;
use super::optim::OptimizerConfig;
use super::sam::SamConfig;
use super::schedule::Schedule;
use super::step::LossConfig;
use crate::error::Result;
use crate::models::{ReidModel, Task};

/// Everything a training run needs (what the YAML config sets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Architecture (torchreid name).
    pub arch: String,
    /// Weights to start from (torchreid's or a reid checkpoint); the classifier is replaced
    /// when the number of identities differs.
    pub weights: Option<PathBuf>,
    /// Dataset root.
    pub root: PathBuf,
    /// Training datasets (identities kept apart when several).
    pub sources: Vec<String>,
    /// Evaluation datasets, each evaluated on its own.
    pub targets: Vec<String>,
    /// Which split of datasets with several (VIPeR, GRID, CUHK01, PRID, iLIDS, CUHK03 classic).
    #[serde(default)]
    pub split_id: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Training augmentations (torchreid names).
    pub transforms: Vec<String>,
    /// Images per step.
    pub batch_size: usize,
    /// `RandomSampler`, `SequentialSampler` or `RandomIdentitySampler`.
    pub sampler: String,
    /// Images per identity in a batch (`RandomIdentitySampler`).
    pub num_instances: usize,
    /// Losses and weights.
    pub losses: LossConfig,
    /// Optimizer.
    pub optimizer: OptimizerConfig,
    /// Base learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Warm-up epochs.
    pub warmup: usize,
    /// Epochs.
    pub max_epoch: usize,
    /// Evaluate every this many epochs (0: only after the last).
    pub eval_freq: usize,
    /// Epochs during which only `open_layers` train.
    pub fixbase_epoch: usize,
    /// Top-level layers trained during `fixbase_epoch` (e.g. `classifier`, `fc`).
    pub open_layers: Vec<String>,
    /// torchreid's `staged_lr`: layers other than the new ones learn at a fraction of the rate
    /// (off when `None`).
    #[serde(default)]
    pub staged_lr: Option<StagedLr>,
    /// Stop after this many evaluations without a better mAP (0: never).
    pub early_stop_patience: usize,
    /// `cosine` or `euclidean`.
    pub dist_metric: String,
    /// Seed of initialization, sampling and augmentation.
    pub seed: u64,
    /// Burn device (`flex`, `wgpu:0`, `cuda:0`), or several separated by commas
    /// (`cuda:0,cuda:1`) for data-parallel training.
    pub device: String,
    /// Where checkpoints, logs and exports go.
    pub save_dir: PathBuf,
    /// Export the best model to ONNX at the end.
    pub export_onnx: bool,
    /// Sharpness-aware minimization around the optimizer (off when `None`).
    #[serde(default)]
    pub sam: Option<SamConfig>,
    /// Deep mutual learning with a second model (off when `None`).
    #[serde(default)]
    pub mutual_learning: Option<MutualConfig>,
    /// What the model learns: re-id identities (the default) or image classes, one or
    /// several per image. For classification, `sources` names one training set and
    /// `targets` the evaluation sets (see [`crate::data::classification::load_classification`]).
    #[serde(default)]
    pub task: Task,
    /// The loss of multi-label classification.
    #[serde(default)]
    pub multilabel_loss: MultilabelLoss,
    /// Multi-label: score the classes with the attention head instead of a linear one.
    #[serde(default)]
    pub attention_head: Option<AttentionConfig>,
}

/// torchreid's staged learning rates: the `new_layers` (top-level layer names, e.g.
/// `classifier`, `fc`, `attention`) learn at the scheduled rate, every other layer at
/// `base_lr_mult` times it — for finetuning a pretrained backbone under a new head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedLr {
    /// Layers at the full rate.
    pub new_layers: Vec<String>,
    /// Factor of the other layers' rate.
    pub base_lr_mult: f64,
}

impl Default for StagedLr {
    /// torchreid's: the `classifier` at the full rate, the rest at 0.1×.
    fn default() -> Self {
        Self {
            new_layers: vec!["classifier".into()],
            base_lr_mult: 0.1,
        }
    }
}

impl StagedLr {
    /// Per-parameter learning rates of `model` at the scheduled rate `lr`; an error when one
    /// of `new_layers` names no layer of the model (a typo would otherwise slow every layer).
    pub fn rates(&self, model: &ReidModel, lr: f64) -> Result<ModuleLearningRate> {
        check_layers(model, &self.new_layers, "staged_lr: new_layers")?;
        let new = ParamGroup::from_ids(open_layer_params(model, &self.new_layers));
        Ok(
            ModuleLrScheduler::new(ConstantLr::new(lr * self.base_lr_mult))
                .with_group(new, ConstantLr::new(lr))
                .step(),
        )
    }
}

/// Size of the multi-label attention head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AttentionConfig {
    /// Decoder width.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
}

impl Default for AttentionConfig {
    fn default() -> Self {
        Self { dim: 256, heads: 4 }
    }
}

/// Deep mutual learning's second model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MutualConfig {
    /// The peer's architecture (it starts from the run's weights when the architectures match,
    /// else from a seeded random initialization).
    pub arch: String,
    /// Weight of each model's KL term towards the other.
    pub weight: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            arch: "osnet_x0_25".into(),
            weights: None,
            root: PathBuf::from("reid-data"),
            sources: vec!["market1501".into()],
            targets: vec!["market1501".into()],
            split_id: 0,
            height: 256,
            width: 128,
            transforms: vec!["random_flip".into()],
            batch_size: 32,
            sampler: "RandomSampler".into(),
            num_instances: 4,
            losses: LossConfig::default(),
            optimizer: OptimizerConfig::default(),
            lr: 3e-4,
            schedule: Schedule::SingleStep {
                step: 20,
                gamma: 0.1,
            },
            warmup: 0,
            max_epoch: 60,
            eval_freq: 0,
            fixbase_epoch: 0,
            open_layers: vec!["classifier".into()],
            staged_lr: None,
            early_stop_patience: 0,
            dist_metric: "euclidean".into(),
            seed: 1,
            device: "flex".into(),
            save_dir: PathBuf::from("log"),
            export_onnx: true,
            sam: None,
            mutual_learning: None,
            task: Task::Reid,
            multilabel_loss: MultilabelLoss::default(),
            attention_head: None,
        }
    }
}
