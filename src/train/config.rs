//! `TrainConfig`: everything a training run needs, in sections (model, data, sampler, loss,
//! optimizer, schedule, eval) that each hold the one set of their defaults (the YAML reader in
//! `crate::config` translates torchreid's key names into these sections). Saved with every run
//! (`config.json` beside the checkpoints, and in `last/state.json`).

use std::path::PathBuf;

use burn::module::ParamGroup;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use serde::{Deserialize, Serialize};

use super::ema::EmaConfig;
use super::layer_groups::{check_layers, open_layer_params};
use super::multilabel_step::MultilabelLoss;
use super::optim::{Optimizer, OptimizerConfig};
use super::sam::SamConfig;
use super::schedule::Schedule;
use super::step::LossConfig;
use crate::error::{Error, Result};
use crate::models::{ReidModel, Task};

/// Everything a training run needs, in the sections of torchreid's configs (what the YAML
/// config sets). Every section has its defaults in its own `Default`; change one field with
/// struct-update syntax:
///
/// ```
/// use reid::train::{ModelSection, TrainConfig};
/// let config = TrainConfig {
///     model: ModelSection { arch: "osnet_x1_0".into(), ..Default::default() },
///     ..Default::default()
/// };
/// assert_eq!(config.schedule.max_epoch, 60);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The network and what it learns.
    pub model: ModelSection,
    /// Where the images come from and how they are prepared.
    pub data: DataSection,
    /// How batches are drawn.
    pub sampler: SamplerSection,
    /// What is minimized.
    pub loss: LossSection,
    /// How the weights move.
    pub optimizer: OptimizerSection,
    /// The learning rate and the layers that train over the epochs.
    pub schedule: ScheduleSection,
    /// When and how the run is evaluated.
    pub eval: EvalSection,
    /// Seed of initialization, sampling and augmentation.
    pub seed: u64,
    /// Burn device (`flex`, `wgpu:0`, `cuda:0`), or several separated by commas
    /// (`cuda:0,cuda:1`) for data-parallel training.
    pub device: String,
    /// Several processes as one run (`mpi`: one rank of an MPI job per process, each on its
    /// `device` list; rank 0 writes the run's files).
    pub distributed: Distributed,
    /// Where checkpoints, logs and exports go.
    pub save_dir: PathBuf,
    /// Export the best model to ONNX at the end.
    pub export_onnx: bool,
    /// How video tracklets are sampled and pooled (torchreid's `video:` section).
    #[serde(default)]
    pub video: crate::data::video::sampling::TrackletSampling,
}

/// The network and what it learns (`model:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// Architecture (torchreid name).
    pub arch: String,
    /// Weights to start from (torchreid's or a reid checkpoint); the classifier is replaced
    /// when the number of identities differs.
    pub weights: Option<PathBuf>,
    /// Without `weights`: start the backbone from the ImageNet weights the zoo publishes for
    /// the architecture (torchreid's `pretrained=True`), taken from the zoo's cache or
    /// downloaded into it ([`crate::zoo::Zoo::from_env`]); the classifier starts fresh.
    pub pretrained: bool,
    /// What the model learns: re-id identities (the default) or image classes, one or
    /// several per image. For classification, `data.sources` names one training set and
    /// `data.targets` the evaluation sets (see
    /// [`crate::data::classification::load_classification`]).
    pub task: Task,
    /// Multi-label: score the classes with the attention head instead of a linear one.
    pub attention_head: Option<AttentionConfig>,
    /// Representation self-challenging (deep-object-reid's `model.self_challenging_cfg`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_challenging: Option<super::rsc::RscConfig>,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            arch: "osnet_x0_25".into(),
            weights: None,
            pretrained: false,
            task: Task::Reid,
            attention_head: None,
            self_challenging: None,
        }
    }
}

/// Where the images come from and how they are prepared (`data:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Dataset root.
    pub root: PathBuf,
    /// Training datasets (identities kept apart when several).
    pub sources: Vec<String>,
    /// Evaluation datasets, each evaluated on its own.
    pub targets: Vec<String>,
    /// Which split of datasets with several (VIPeR, GRID, CUHK01, PRID, iLIDS, CUHK03 classic).
    pub split_id: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Training augmentations (torchreid names).
    pub transforms: Vec<String>,
    /// Augmented copies of each training image in a batch (deep-object-reid's
    /// `num_sampled_packages`; the copies of an image sit next to each other).
    #[serde(default = "one")]
    pub packages: usize,
    /// deep-object-reid's `data.transforms` sections, which replace `transforms` when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform_sections: Option<crate::data::transform_sections::TransformSections>,
    /// torchreid's `combineall`: each source's query and gallery images train too (as new
    /// identities; re-id sources only).
    pub combineall: bool,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            root: PathBuf::from("reid-data"),
            sources: vec!["market1501".into()],
            targets: vec!["market1501".into()],
            split_id: 0,
            height: 256,
            width: 128,
            transforms: vec!["random_flip".into()],
            packages: 1,
            transform_sections: None,
            combineall: false,
        }
    }
}

impl DataSection {
    /// The preprocessing of evaluation and export: torchreid's at the input size, with
    /// deep-object-reid's test-time centre crop and forced grey when its sections ask for them.
    pub fn test_preprocessing(&self) -> crate::preprocess::Preprocessing {
        let mut p = crate::preprocess::Preprocessing::torchreid(self.height, self.width);
        if let Some(sections) = &self.transform_sections {
            p.crop_margin = sections.test_margin();
            p.grayscale = sections.force_gray_scale.enable;
        }
        p
    }
}

/// How batches are drawn (`sampler:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerSection {
    /// `RandomSampler`, `SequentialSampler`, `RandomIdentitySampler`,
    /// `RandomIdentitySamplerV2`, `RandomIdentitySamplerV3` or `RandomDomainSampler`.
    pub name: String,
    /// Images per step.
    pub batch_size: usize,
    /// Images per identity in a batch (the identity samplers' K).
    pub num_instances: usize,
    /// Cameras per batch (`RandomDomainSampler`; 0: every camera).
    pub num_cams: usize,
    /// Training sets per batch (`RandomDatasetSampler`; 0: every set).
    #[serde(default = "one")]
    pub num_datasets: usize,
    /// Images per identity an epoch (`RandomIdentitySamplerV3`; 0: the median count).
    #[serde(default)]
    pub epoch_num_instances: usize,
    /// Pad each identity to a multiple of K (`RandomIdentitySamplerV2`).
    #[serde(default)]
    pub fill_instances: bool,
}

impl Default for SamplerSection {
    fn default() -> Self {
        Self {
            name: "RandomSampler".into(),
            batch_size: 32,
            num_instances: 4,
            num_cams: 1,
            num_datasets: 1,
            epoch_num_instances: 0,
            fill_instances: false,
        }
    }
}

fn one() -> usize {
    1
}

/// What is minimized (`loss:`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossSection {
    /// The identity losses of re-id and single-label classification, and their weights.
    pub reid: LossConfig,
    /// The loss of multi-label classification.
    pub multilabel: MultilabelLoss,
    /// Deep mutual learning with a second model (off when `None`).
    pub mutual_learning: Option<MutualConfig>,
    /// Knowledge distillation from a trained teacher (off when `None`).
    pub distillation: Option<DistillConfig>,
    /// Batch mixing (MixUp, CutMix, FMix) with the identity loss on both identities (off when
    /// `None`).
    pub mixing: Option<super::mixing::MixingConfig>,
    /// Weight of the consistency of each image's augmented copies (deep-object-reid's
    /// `mixing_loss`, `train::loss::package_consistency`; needs `data.packages` > 1; 0: off).
    #[serde(default)]
    pub consistency_weight: f32,
    /// The cosine scale of AM-softmax and AM-binary from the number of classes C of the
    /// training set instead of its value: clamp(√5 · ln(C − 1), 7, 30) (deep-object-reid's
    /// `loss.softmax.compute_s`; [`LossSection::scaled_for`]).
    #[serde(default)]
    pub scale_from_classes: bool,
}

/// deep-object-reid's cosine scale for `classes` classes (`compute_s`).
pub fn scale_for_classes(classes: usize) -> f32 {
    let ln = (classes.max(2) as f64 - 1.0).ln();
    (5f64.sqrt() * ln).clamp(7.0, 30.0) as f32
}

impl LossSection {
    /// These losses with the cosine scale for `classes` classes when it comes from them, or
    /// `None` when it does not.
    pub fn scaled_for(&self, classes: usize) -> Option<LossSection> {
        if !self.scale_from_classes {
            return None;
        }
        let scale = scale_for_classes(classes);
        let mut losses = self.clone();
        losses.scale_from_classes = false;
        losses.reid.am_scale = scale;
        if let MultilabelLoss::AmBinary { scale: s, .. } = &mut losses.multilabel {
            *s = scale;
        }
        Some(losses)
    }
}

/// Knowledge distillation (fast-reid's `Distiller`): a trained teacher's class distribution,
/// softened by the temperature, guides the model through the loss `train::loss::distillation_js`
/// added to its own. The teacher classifies the same identities (it was trained on the same
/// sources); it runs in inference mode and does not learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistillConfig {
    /// The teacher's weights: a reid checkpoint, or torchreid's (`arch` then names it).
    pub teacher: PathBuf,
    /// The teacher's architecture, for torchreid weight files (a reid checkpoint names its own).
    pub arch: Option<String>,
    /// Weight of the distillation term.
    pub weight: f32,
    /// Temperature of the softened distributions (fast-reid's 16).
    pub temperature: f32,
    /// Weight of fast-reid's probabilistic knowledge transfer between the student's and the
    /// teacher's embeddings (`pkt_loss`; its KD trainer weighs it 1e4); 0: off.
    pub feature_weight: f32,
}

impl Default for DistillConfig {
    fn default() -> Self {
        Self {
            teacher: PathBuf::new(),
            arch: None,
            weight: 1.0,
            temperature: 16.0,
            feature_weight: 0.0,
        }
    }
}

/// How the weights move (`optimizer:`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerSection {
    /// The optimizer and its hyper-parameters.
    pub algorithm: OptimizerConfig,
    /// torchreid's `staged_lr`: layers other than the new ones learn at a fraction of the rate
    /// (off when `None`).
    pub staged_lr: Option<StagedLr>,
    /// Sharpness-aware minimization around the optimizer (off when `None`).
    pub sam: Option<SamConfig>,
    /// deep-object-reid's `train.clip_grad`: the gradient is scaled to at most this L2 norm
    /// (of all parameters together) before every step (0: no clipping).
    pub clip_grad: f64,
    /// An exponential moving average of the weights, evaluated beside the model (off when
    /// `None`; deep-object-reid's `train.ema`).
    pub ema: Option<EmaConfig>,
    /// Mixed precision (deep-object-reid's `train.mix_precision`): convolutions compute in
    /// this half precision, the weights, normalizations, losses and updates stay float32;
    /// `f16` with dynamic loss scaling (torch's `GradScaler`), `bf16` without. On GPU devices
    /// only (off when `None`). See [`crate::models::precision`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mix_precision: Option<crate::models::precision::HalfPrecision>,
}

impl OptimizerSection {
    /// The optimizer of this section, with fresh state.
    pub fn build(&self) -> Result<Optimizer> {
        self.algorithm.build()?.with_clip_norm(self.clip_grad)
    }
}

/// The learning rate and the layers that train over the epochs (`schedule:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSection {
    /// Base learning rate.
    pub lr: f64,
    /// How the rate changes from epoch to epoch.
    pub policy: Schedule,
    /// Warm-up epochs.
    pub warmup: usize,
    /// Epochs.
    pub max_epoch: usize,
    /// Epochs during which only `open_layers` train.
    pub fixbase_epoch: usize,
    /// Top-level layers trained during `fixbase_epoch` (e.g. `classifier`, `fc`).
    pub open_layers: Vec<String>,
    /// Find the base rate first with the range test and train at its suggestion instead of
    /// `lr` (deep-object-reid's `lr_finder.enable`; off when `None`). A resumed run keeps the
    /// rate it found when it started.
    pub lr_finder: Option<LrFindOptions>,
}

impl Default for ScheduleSection {
    fn default() -> Self {
        Self {
            lr: 3e-4,
            policy: Schedule::SingleStep {
                step: 20,
                gamma: 0.1,
            },
            warmup: 0,
            max_epoch: 60,
            fixbase_epoch: 0,
            open_layers: vec!["classifier".into()],
            lr_finder: None,
        }
    }
}

/// When and how the run is evaluated (`eval:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Evaluate every this many epochs (0: only after the last).
    pub eval_freq: usize,
    /// `cosine` or `euclidean`.
    pub dist_metric: String,
    /// Stop after this many evaluations without a better mAP (0: never).
    pub early_stop_patience: usize,
    /// Count those evaluations only once the rate has dropped below its base after the
    /// warm-up (deep-object-reid's `train.early_stopping`).
    pub early_stop_after_decay: bool,
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            eval_freq: 0,
            dist_metric: "euclidean".into(),
            early_stop_patience: 0,
            early_stop_after_decay: false,
        }
    }
}

/// How a run finds its learning rate before training (deep-object-reid's `lr_finder.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrFindMode {
    /// The exponential range test (`train::lr_find`; its `fast_ai`).
    #[default]
    RangeTest,
    /// A trial run at every rate of a grid (`train::lr_search`; its `grid_search`).
    GridSearch,
    /// Trial runs at rates a Tree-structured Parzen Estimator proposes (its `TPE`).
    Tpe,
}

/// The settings of the learning-rate range test (`train::lr_find`) and of the searches by
/// trial runs (`train::lr_search`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrFindOptions {
    /// The range test, or a search by trial runs.
    pub mode: LrFindMode,
    /// Grid spacing of the searches (deep-object-reid's `step`; TPE rounds to it).
    pub step: Option<f64>,
    /// Most trial runs of the searches (deep-object-reid's `n_trials`).
    pub trials: usize,
    /// First rate.
    pub min_lr: f64,
    /// Last rate.
    pub max_lr: f64,
    /// Steps (rates tried).
    pub steps: usize,
    /// When set, this many epochs' worth of steps (the training set's full batches per epoch
    /// times this) instead of `steps`; the searches' epochs per trial, 3 when unset
    /// (deep-object-reid's `lr_finder.num_epochs`).
    pub epochs: Option<usize>,
    /// Weight of each new loss in the smoothed loss (1 − β of the exponential average;
    /// deep-object-reid's `smooth_f`).
    pub smoothing: f64,
    /// Epochs trained at the run's rate before the test starts (deep-object-reid's
    /// `epochs_warmup`); the test then starts from the trained model, and the run itself
    /// still starts from its starting model.
    #[serde(default)]
    pub warmup_epochs: usize,
}

impl Default for LrFindOptions {
    fn default() -> Self {
        Self {
            mode: LrFindMode::RangeTest,
            step: None,
            trials: 100,
            min_lr: 1e-6,
            max_lr: 1.0,
            steps: 100,
            epochs: None,
            smoothing: 0.02,
            warmup_epochs: 0,
        }
    }
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
            model: ModelSection::default(),
            data: DataSection::default(),
            sampler: SamplerSection::default(),
            loss: LossSection::default(),
            optimizer: OptimizerSection::default(),
            schedule: ScheduleSection::default(),
            eval: EvalSection::default(),
            seed: 1,
            device: "flex".into(),
            distributed: Default::default(),
            save_dir: PathBuf::from("log"),
            export_onnx: true,
            video: Default::default(),
        }
    }
}

/// How a run spreads over processes (`distributed:` in the config, `--distributed` on the
/// command line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distributed {
    /// One process (on one or several local devices).
    #[default]
    None,
    /// One rank of an MPI job per process (`mpirun -np N reid train … --distributed mpi`); needs
    /// the `mpi` feature and Open MPI's library at run time.
    Mpi,
}

impl Distributed {
    /// Its name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Mpi => "mpi",
        }
    }
}

impl std::str::FromStr for Distributed {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        [Self::None, Self::Mpi]
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| Error::InvalidInput(format!("distributed `{s}`: expected none or mpi")))
    }
}
