//! The training loop: datasets, sampler and transforms; optimizer and schedule; evaluation on
//! the target datasets every `eval_freq` epochs; a checkpoint after every epoch (model,
//! optimizer state, schedule and history, swapped in atomically) from which an interrupted
//! run resumes; the best model kept; early stopping on a plateau; ONNX export at the end.
//! Optional: center loss, sharpness-aware minimization, deep mutual learning of two models;
//! the scalars also go to a TensorBoard event file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ParamGroup, ParamId};
use burn::optim::ModuleOptimizer;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use serde::{Deserialize, Serialize};

use super::center::CenterLoss;
use super::classify_eval::{ClassificationMetrics, Readout, evaluate_classifier};
use super::evaluate::evaluate_dataset;
use super::loader::training_batch;
use super::multilabel_step::{MultilabelLoss, multilabel_step};
use super::optim::OptimizerConfig;
use super::parallel::data_parallel_step;
use super::sam::SamConfig;
use super::schedule::{LrSchedule, Schedule};
use super::step::{Learner, LossConfig, StepExtras, StepStats, mutual_step, train_step_with};
use super::tensorboard::write_events;
use crate::data::classification::{ClassificationDataset, load_classification};
use crate::data::rng::Rng;
use crate::data::sampler::Sampler;
use crate::data::transforms::Augment;
use crate::data::{ReidDataset, Sample, combine_train, load_dataset_split};
use crate::error::{Error, Result};
use crate::eval::{Metric, RankMetrics};
use crate::models::{Arch, ReidModel, Task};
use crate::preprocess::Preprocessing;
use crate::weights::{load_checkpoint, save_checkpoint};

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
            root: PathBuf::from("data"),
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
            open_layers: vec![],
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

/// Evaluation of one target after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalLog {
    /// Target dataset.
    pub target: String,
    /// Mean average precision.
    #[serde(rename = "mAP")]
    pub map: f64,
    /// Rank-1 accuracy.
    pub rank1: f64,
    /// Rank-5 accuracy.
    pub rank5: f64,
    /// Mean inverse negative penalty.
    #[serde(rename = "mINP")]
    pub minp: f64,
    /// Classifiers: every metric (`mAP` is then the classes' mean AP, `rank1` / `rank5` the
    /// top-1 / top-5 accuracy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassificationMetrics>,
}

/// One epoch of the run's history (a line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss.
    pub loss: f64,
    /// Mean training accuracy of the identity classifier.
    pub accuracy: f64,
    /// Wall time of the epoch's training.
    pub seconds: f64,
    /// Evaluations after the epoch, if any.
    pub eval: Vec<EvalLog>,
}

/// What a run leaves to resume from (`last/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    epochs_done: usize,
    schedule: LrSchedule,
    best_map: Option<f64>,
    best_epoch: usize,
    evals_since_best: usize,
    history: Vec<EpochLog>,
    config: TrainConfig,
    /// When the run began (Unix seconds), for the TensorBoard time axis.
    #[serde(default)]
    started: f64,
}

/// The second model of deep mutual learning, with its optimizer.
struct Peer {
    model: ReidModel,
    optimizer: ModuleOptimizer,
}

/// What a checkpoint holds besides the run state.
struct Trained<'a> {
    model: &'a ReidModel,
    optimizer: &'a ModuleOptimizer,
    peer: Option<(&'a ReidModel, &'a ModuleOptimizer)>,
    centers: Option<&'a CenterLoss>,
}

/// Progress reports to the caller, who returns `false` to cancel.
#[derive(Debug)]
pub enum Event<'a> {
    /// Training resumed from a checkpoint after `epochs_done` epochs.
    Resumed {
        /// Completed epochs found.
        epochs_done: usize,
    },
    /// A step finished.
    Step {
        /// Epoch, from 1.
        epoch: usize,
        /// Step in the epoch, from 1.
        step: usize,
        /// Steps per epoch.
        steps: usize,
        /// Learning rate.
        lr: f64,
        /// The step's loss and accuracy.
        stats: StepStats,
    },
    /// An epoch finished (after its evaluation, before its checkpoint).
    Epoch(&'a EpochLog),
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Epochs completed in all (across resumptions).
    pub epochs_done: usize,
    /// History, one entry per epoch.
    pub history: Vec<EpochLog>,
    /// Best mAP on the first target and its epoch, if evaluated.
    pub best: Option<(f64, usize)>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// The best model (or the last, without evaluation), as a reid checkpoint.
    pub model: PathBuf,
    /// The ONNX export of that model, if asked for.
    pub onnx: Option<PathBuf>,
}

const SAMPLER_STREAM: u64 = 0x5341_4d50;
const PEER_SEED: u64 = 0x5045_4552;

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))
}

/// The checkpoint folder to resume from: `last/`, or `last.old/` when a crash came between
/// the two renames of a checkpoint swap.
fn resumable(save_dir: &Path) -> Option<PathBuf> {
    ["last", "last.old"]
        .iter()
        .map(|d| save_dir.join(d))
        .find(|d| d.join("state.json").is_file())
}

fn save_optimizer(optimizer: &ModuleOptimizer, path: &Path) -> Result<()> {
    let bytes = optimizer
        .into_bytes()
        .map_err(|e| Error::InvalidInput(format!("cannot serialize the optimizer: {e:?}")))?;
    crate::npy::write_atomically(path, &bytes)
}

fn load_optimizer(config: &TrainConfig, path: &Path) -> Result<ModuleOptimizer> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    config
        .optimizer
        .build()?
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::InvalidInput(format!("{}: optimizer state: {e:?}", path.display())))
}

/// Writes the checkpoint into `last.new/`, then swaps it for `last/`.
fn write_checkpoint(save_dir: &Path, trained: &Trained, state: &RunState) -> Result<()> {
    let fresh = save_dir.join("last.new");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh).map_err(|e| Error::io(&fresh, e))?;
    save_checkpoint(trained.model, fresh.join("model.bpk"))?;
    save_optimizer(trained.optimizer, &fresh.join("optimizer.bpk"))?;
    if let Some((peer, optimizer)) = trained.peer {
        save_checkpoint(peer, fresh.join("peer.bpk"))?;
        save_optimizer(optimizer, &fresh.join("peer_optimizer.bpk"))?;
    }
    if let Some(centers) = trained.centers {
        centers.save(&fresh.join("centers.npy"))?;
    }
    let json = serde_json::to_vec_pretty(state).expect("serializable state");
    crate::npy::write_atomically(&fresh.join("state.json"), &json)?;
    let (last, old) = (save_dir.join("last"), save_dir.join("last.old"));
    let _ = std::fs::remove_dir_all(&old);
    if last.exists() {
        std::fs::rename(&last, &old).map_err(|e| Error::io(&last, e))?;
    }
    std::fs::rename(&fresh, &last).map_err(|e| Error::io(&last, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn write_history(save_dir: &Path, history: &[EpochLog]) -> Result<()> {
    let lines: String = history
        .iter()
        .map(|e| serde_json::to_string(e).expect("serializable log") + "\n")
        .collect();
    crate::npy::write_atomically(&save_dir.join("metrics.jsonl"), lines.as_bytes())
}

/// Parameters of the top-level layers named in `open` (torchreid names: `classifier`, `fc`, …).
/// An error naming the model's top-level layers when one of `names` is none of them.
fn check_layers(model: &ReidModel, names: &[String], what: &str) -> Result<()> {
    let layers: std::collections::BTreeSet<String> = crate::weights::torch_keys_by_id(model)
        .into_values()
        .filter_map(|key| key.split('.').next().map(str::to_string))
        .collect();
    match names.iter().find(|n| !layers.contains(n.as_str())) {
        Some(name) => Err(Error::InvalidInput(format!(
            "{what}: the model has no layer `{name}`; its layers: {}",
            layers.into_iter().collect::<Vec<_>>().join(", ")
        ))),
        None => Ok(()),
    }
}

fn open_layer_params(model: &ReidModel, open: &[String]) -> Vec<ParamId> {
    crate::weights::torch_keys_by_id(model)
        .into_iter()
        .filter(|(_, key)| {
            open.iter()
                .any(|layer| key.split('.').next() == Some(layer))
        })
        .map(|(id, _)| id)
        .collect()
}

fn eval_log(target: &str, m: &RankMetrics) -> EvalLog {
    EvalLog {
        target: target.to_string(),
        map: m.map,
        rank1: m.rank(1),
        rank5: m.rank(5),
        minp: m.minp,
        classification: None,
    }
}

fn classification_log(target: &str, m: ClassificationMetrics) -> EvalLog {
    EvalLog {
        target: target.to_string(),
        map: m.map,
        rank1: m.top1,
        rank5: m.top5,
        minp: 0.0,
        classification: Some(m),
    }
}

/// How a classifier's outputs are read in evaluation, as it was trained.
fn readout(config: &TrainConfig) -> Readout {
    match config.task {
        Task::Multilabel => Readout::MultiLabel(config.multilabel_loss),
        _ => Readout::SingleLabel {
            cosine: config.losses.am_margin > 0.0,
        },
    }
}

/// The number a run keeps its best model by: top-1 for single-label classifiers, mAP else.
fn selection_score(task: Task, log: &EvalLog) -> f64 {
    match task {
        Task::Classification => log.rank1,
        _ => log.map,
    }
}

/// `[B, C]` multi-hot targets of the training images `indices`.
fn multi_hot_batch(
    labels: &[Vec<usize>],
    indices: &[usize],
    classes: usize,
    device: &crate::device::Device,
) -> burn::tensor::Tensor<2> {
    let mut hot = vec![0f32; indices.len() * classes];
    for (row, &i) in indices.iter().enumerate() {
        for &c in &labels[i] {
            hot[row * classes + c] = 1.0;
        }
    }
    burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(hot, [indices.len(), classes]),
        device,
    )
}

/// What a run needs besides the model: devices, data, sampling and transforms.
pub(crate) struct Setup {
    pub arch: Arch,
    pub device: crate::device::Device,
    pub train_device: crate::device::Device,
    /// Autodiff devices of the other data-parallel replicas (none: one device).
    pub replicas: Vec<crate::device::Device>,
    pub augment: Augment,
    pub sampler: Sampler,
    pub metric: Metric,
    pub preprocessing: Preprocessing,
    pub train_set: Vec<Sample>,
    pub targets: Vec<ReidDataset>,
    pub classes: usize,
    /// Classification: the evaluation sets.
    pub class_targets: Vec<ClassificationDataset>,
    /// Classification: each training image's labels (multi-label runs read these).
    pub train_labels: Vec<Vec<usize>>,
    /// Classification: the class names.
    pub class_names: Vec<String>,
}

/// Checks `config` and reads its datasets.
pub(crate) fn setup(config: &TrainConfig) -> Result<Setup> {
    let arch: Arch = config.arch.parse()?;
    let devices = crate::device::parse_devices(&config.device)?;
    let device = devices[0].clone();
    let train_device = device.clone().autodiff();
    let replicas: Vec<_> = devices[1..].iter().map(|d| d.clone().autodiff()).collect();
    if !replicas.is_empty()
        && (config.sam.is_some()
            || config.mutual_learning.is_some()
            || config.losses.center_weight > 0.0)
    {
        return Err(Error::InvalidInput(
            "SAM, mutual learning and the center loss run on one device; \
             several devices train with the other losses"
                .into(),
        ));
    }
    let augment = Augment::from_names(&config.transforms)?;
    let sampler = match config.sampler.parse()? {
        Sampler::RandomIdentity { .. } => Sampler::RandomIdentity {
            instances: config.num_instances,
        },
        other => other,
    };
    let metric: Metric = config.dist_metric.parse()?;
    if config.sam.is_some() && config.mutual_learning.is_some() {
        return Err(Error::InvalidInput(
            "SAM and mutual learning cannot be combined".into(),
        ));
    }
    if let Some(staged) = &config.staged_lr {
        if config.mutual_learning.is_some() {
            return Err(Error::InvalidInput(
                "staged_lr and mutual learning cannot be combined".into(),
            ));
        }
        if !(staged.base_lr_mult >= 0.0 && staged.base_lr_mult.is_finite())
            || staged.new_layers.is_empty()
        {
            return Err(Error::InvalidInput(format!(
                "staged_lr needs new_layers and a base_lr_mult ≥ 0 (got {:?}, {})",
                staged.new_layers, staged.base_lr_mult
            )));
        }
    }
    if let Some(sam) = &config.sam
        && !(sam.rho > 0.0 && sam.rho.is_finite())
    {
        return Err(Error::InvalidInput(format!(
            "sam.rho {} must be positive",
            sam.rho
        )));
    }
    if let Some(mutual) = &config.mutual_learning {
        mutual.arch.parse::<Arch>()?;
    }
    if config.losses.center_weight < 0.0 || !(0.0..=1.0).contains(&config.losses.center_alpha) {
        return Err(Error::InvalidInput(
            "the center loss weight must be ≥ 0 and its alpha within [0, 1]".into(),
        ));
    }
    if config.batch_size == 0 || config.max_epoch == 0 {
        return Err(Error::InvalidInput(
            "batch_size and max_epoch must be at least 1".into(),
        ));
    }
    let preprocessing = Preprocessing::torchreid(config.height, config.width);
    let data = if config.task == Task::Reid {
        reid_data(config)?
    } else {
        if !replicas.is_empty()
            || config.sam.is_some()
            || config.mutual_learning.is_some()
            || config.losses.center_weight > 0.0
            || config.losses.triplet_weight > 0.0
        {
            return Err(Error::InvalidInput(
                "classification trains on one device with softmax / AM-softmax (single-label) \
                 or a multilabel loss; SAM, mutual learning, center and triplet losses are \
                 re-id options"
                    .into(),
            ));
        }
        classification_data(config, sampler)?
    };
    if data.train_set.is_empty() {
        return Err(Error::InvalidInput("the training set is empty".into()));
    }
    Ok(Setup {
        arch,
        device,
        train_device,
        replicas,
        augment,
        sampler,
        metric,
        preprocessing,
        train_set: data.train_set,
        targets: data.targets,
        classes: data.classes,
        class_targets: data.class_targets,
        train_labels: data.train_labels,
        class_names: data.class_names,
    })
}

/// The training images and evaluation sets of a run.
struct TrainData {
    train_set: Vec<Sample>,
    targets: Vec<ReidDataset>,
    classes: usize,
    class_targets: Vec<ClassificationDataset>,
    train_labels: Vec<Vec<usize>>,
    class_names: Vec<String>,
}

/// Re-id: the sources' training identities (kept apart) and the targets' query / gallery.
fn reid_data(config: &TrainConfig) -> Result<TrainData> {
    let sources = config
        .sources
        .iter()
        .map(|name| load_dataset_split(name, &config.root, config.split_id))
        .collect::<Result<Vec<_>>>()?;
    let train_set: Vec<Sample> = combine_train(&sources);
    let targets: Vec<ReidDataset> = config
        .targets
        .iter()
        .map(|name| load_dataset_split(name, &config.root, config.split_id))
        .collect::<Result<_>>()?;
    let classes = train_set.iter().map(|s| s.pid + 1).max().unwrap_or(0) as usize;
    Ok(TrainData {
        train_set,
        targets,
        classes,
        class_targets: Vec::new(),
        train_labels: Vec::new(),
        class_names: Vec::new(),
    })
}

/// Classification: one source's training split and the targets' evaluation splits, which
/// must name the same classes.
fn classification_data(config: &TrainConfig, sampler: Sampler) -> Result<TrainData> {
    let [source] = config.sources.as_slice() else {
        return Err(Error::InvalidInput(
            "classification trains on exactly one source".into(),
        ));
    };
    let train = load_classification(source, &config.root, true, config.split_id)?;
    if (config.task == Task::Multilabel) != train.multilabel {
        return Err(Error::InvalidInput(format!(
            "{source} is a {} dataset but model.type is {}",
            if train.multilabel {
                "multi-label"
            } else {
                "single-label"
            },
            config.task.name()
        )));
    }
    if train.multilabel && matches!(sampler, Sampler::RandomIdentity { .. }) {
        return Err(Error::InvalidInput(
            "multi-label training samples images at random (RandomSampler)".into(),
        ));
    }
    let class_targets = config
        .targets
        .iter()
        .map(|name| {
            let set = load_classification(name, &config.root, false, config.split_id)?;
            if set.classes != train.classes {
                return Err(Error::InvalidInput(format!(
                    "{name} names other classes than the training set {source}"
                )));
            }
            Ok(set)
        })
        .collect::<Result<Vec<_>>>()?;
    let train_set: Vec<Sample> = train
        .samples
        .iter()
        .enumerate()
        .map(|(i, (path, labels))| Sample {
            path: path.clone(),
            // Single-label: the class; multi-label: the image's index into its labels.
            pid: if train.multilabel { i } else { labels[0] } as i64,
            camera: 0,
        })
        .collect();
    Ok(TrainData {
        train_set,
        targets: Vec::new(),
        classes: train.classes.len(),
        class_targets,
        train_labels: train.samples.into_iter().map(|(_, l)| l).collect(),
        class_names: train.classes,
    })
}

/// The model a fresh run starts from: the configured weights (with a new classifier when the
/// number of identities differs) or a seeded random initialization.
pub(crate) fn initial_model(config: &TrainConfig, s: &Setup) -> Result<ReidModel> {
    s.device.seed(config.seed);
    let model = match &config.weights {
        Some(path) => {
            let start = crate::weights::load_any(Some(s.arch), path, &s.device)?;
            if start.num_classes() == s.classes {
                start
            } else {
                start.with_classifier(s.classes, &s.device)
            }
        }
        None => ReidModel::new(s.arch, s.classes, &s.device),
    };
    model.check_input_size(config.height, config.width)?;
    let model = match config.attention_head {
        Some(a) => model.with_attention_head(s.classes, a.dim, a.heads, &s.device),
        None => model,
    };
    let mut model = model.with_task(config.task, s.class_names.clone());
    model.trained_input = Some((config.height, config.width));
    // A classifier trained on cosines is read on cosines (scaled as in training).
    model.cosine_scale = match (config.task, config.multilabel_loss) {
        (Task::Reid, _) => None,
        (Task::Multilabel, MultilabelLoss::AmBinary { scale, .. }) => Some(scale),
        (Task::Classification, _) if config.losses.am_margin > 0.0 => Some(config.losses.am_scale),
        _ => None,
    };
    Ok(model)
}

/// Deep mutual learning's second model for a fresh run, seeded apart from the first.
fn initial_peer(config: &TrainConfig, s: &Setup, mutual: &MutualConfig) -> Result<ReidModel> {
    let arch: Arch = mutual.arch.parse()?;
    if arch == s.arch {
        let peer_config = TrainConfig {
            seed: config.seed ^ PEER_SEED,
            ..config.clone()
        };
        return initial_model(&peer_config, s);
    }
    s.device.seed(config.seed ^ PEER_SEED);
    let model = ReidModel::new(arch, s.classes, &s.device);
    model.check_input_size(config.height, config.width)?;
    Ok(model)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs (or resumes) training as `config` says, reporting to `progress`.
pub fn train(
    config: &TrainConfig,
    progress: &mut dyn FnMut(&Event) -> bool,
) -> Result<TrainReport> {
    let s = setup(config)?;
    let (device, train_device) = (s.device.clone(), s.train_device.clone());
    let (augment, sampler, metric) = (s.augment, s.sampler, s.metric);
    let preprocessing = s.preprocessing.clone();
    let (train_set, targets) = (&s.train_set, &s.targets);
    std::fs::create_dir_all(&config.save_dir).map_err(|e| Error::io(&config.save_dir, e))?;

    let center_alpha = config.losses.center_alpha;
    let (model, mut optimizer, mut state, peer, centers) = match resumable(&config.save_dir) {
        Some(dir) => {
            let state: RunState = read_json(&dir.join("state.json"))?;
            let model = load_checkpoint(dir.join("model.bpk"), &device)?;
            let optimizer = load_optimizer(config, &dir.join("optimizer.bpk"))?;
            let peer = match &config.mutual_learning {
                Some(_) => Some(Peer {
                    model: load_checkpoint(dir.join("peer.bpk"), &device)?,
                    optimizer: load_optimizer(config, &dir.join("peer_optimizer.bpk"))?,
                }),
                None => None,
            };
            let centers = if config.losses.center_weight > 0.0 {
                let (classes, dim) = (model.num_classes(), model.feature_dim());
                let path = dir.join("centers.npy");
                Some(CenterLoss::load(
                    &path,
                    classes,
                    dim,
                    center_alpha,
                    &device,
                )?)
            } else {
                None
            };
            if !progress(&Event::Resumed {
                epochs_done: state.epochs_done,
            }) {
                return Err(Error::Cancelled);
            }
            (model, optimizer, state, peer, centers)
        }
        None => {
            let model = initial_model(config, &s)?;
            let peer = match &config.mutual_learning {
                Some(mutual) => Some(Peer {
                    model: initial_peer(config, &s, mutual)?,
                    optimizer: config.optimizer.build()?,
                }),
                None => None,
            };
            let centers = (config.losses.center_weight > 0.0)
                .then(|| CenterLoss::new(s.classes, model.feature_dim(), center_alpha, &device));
            let state = RunState {
                epochs_done: 0,
                schedule: LrSchedule::new(config.schedule.clone(), config.lr, config.warmup)?,
                best_map: None,
                best_epoch: 0,
                evals_since_best: 0,
                history: vec![],
                config: config.clone(),
                started: unix_now(),
            };
            (model, config.optimizer.build()?, state, peer, centers)
        }
    };
    model.check_input_size(config.height, config.width)?;
    let mut model = model.fork(&train_device).train();
    let mut peer = peer.map(|p| Peer {
        model: p.model.fork(&train_device).train(),
        optimizer: p.optimizer,
    });
    let mut centers = centers;
    let best_path = config.save_dir.join("best.bpk");
    let mut stopped_early = false;

    if state.epochs_done < config.fixbase_epoch {
        // A misspelt layer would otherwise freeze the whole model for these epochs.
        check_layers(&model, &config.open_layers, "open_layers")?;
    }
    for epoch in state.epochs_done..config.max_epoch {
        let started = Instant::now();
        let lr = state.schedule.lr(epoch);
        let mut rng = Rng::derive(config.seed, &[SAMPLER_STREAM, epoch as u64]);
        let order = sampler.epoch(train_set, config.batch_size, &mut rng)?;
        let batches: Vec<&[usize]> = order.chunks_exact(config.batch_size).collect();
        if batches.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{} training images make no full batch of {}",
                train_set.len(),
                config.batch_size
            )));
        }
        let only = (epoch < config.fixbase_epoch && !config.open_layers.is_empty())
            .then(|| open_layer_params(&model, &config.open_layers));
        let rates: ModuleLearningRate = match &config.staged_lr {
            Some(staged) => staged.rates(&model, lr)?,
            None => lr.into(),
        };
        let (mut loss_sum, mut acc_sum) = (0.0, 0.0);
        for (step, indices) in batches.iter().enumerate() {
            let (images, labels) = training_batch(
                train_set,
                indices,
                &preprocessing,
                &augment,
                config.seed,
                epoch,
                &train_device,
            )?;
            let extras = StepExtras {
                only: only.as_deref(),
                sam: config.sam.as_ref(),
                centers: centers.as_mut(),
            };
            let stats = match (peer.take(), &config.mutual_learning) {
                _ if config.task == Task::Multilabel => {
                    let targets =
                        multi_hot_batch(&s.train_labels, indices, s.classes, &train_device);
                    let (next, stats) = multilabel_step(
                        model,
                        &mut optimizer,
                        rates.clone(),
                        images,
                        targets,
                        &config.multilabel_loss,
                        only.as_deref(),
                    );
                    model = next;
                    stats
                }
                (Some(mut p), Some(mutual)) => {
                    let learners = (
                        Learner {
                            model,
                            optimizer: &mut optimizer,
                        },
                        Learner {
                            model: p.model,
                            optimizer: &mut p.optimizer,
                        },
                    );
                    let ((next, next_peer), (stats, _)) = mutual_step(
                        learners,
                        rates.clone(),
                        images,
                        labels,
                        &config.losses,
                        mutual.weight,
                        extras,
                    );
                    model = next;
                    peer = Some(Peer {
                        model: next_peer,
                        optimizer: p.optimizer,
                    });
                    stats
                }
                _ if !s.replicas.is_empty() => {
                    let group = match sampler {
                        Sampler::RandomIdentity { instances } => instances,
                        _ => 1,
                    };
                    let (next, stats) = data_parallel_step(
                        model,
                        &mut optimizer,
                        rates.clone(),
                        images,
                        labels,
                        &config.losses,
                        only.as_deref(),
                        &s.replicas,
                        group,
                    );
                    model = next;
                    stats
                }
                _ => {
                    let (next, stats) = train_step_with(
                        model,
                        &mut optimizer,
                        rates.clone(),
                        images,
                        labels,
                        &config.losses,
                        extras,
                    );
                    model = next;
                    stats
                }
            };
            if !stats.loss.is_finite() {
                return Err(Error::InvalidInput(format!(
                    "the loss diverged ({}) at epoch {}, step {}: lower the learning rate",
                    stats.loss,
                    epoch + 1,
                    step + 1
                )));
            }
            loss_sum += stats.loss as f64;
            acc_sum += stats.accuracy as f64;
            let event = Event::Step {
                epoch: epoch + 1,
                step: step + 1,
                steps: batches.len(),
                lr,
                stats,
            };
            if !progress(&event) {
                return Err(Error::Cancelled);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let last = epoch + 1 == config.max_epoch;
        let evaluate = last || (config.eval_freq > 0 && (epoch + 1) % config.eval_freq == 0);
        let inference = model.valid();
        let mut eval = Vec::new();
        if evaluate && !(targets.is_empty() && s.class_targets.is_empty()) {
            for (name, dataset) in config.targets.iter().zip(targets) {
                let m = evaluate_dataset(&inference, dataset, &preprocessing, metric, 64, &device)?;
                eval.push(eval_log(name, &m));
            }
            for (name, dataset) in config.targets.iter().zip(&s.class_targets) {
                let m = evaluate_classifier(
                    &inference,
                    dataset,
                    readout(config),
                    &preprocessing,
                    64,
                    &device,
                )?;
                eval.push(classification_log(name, m));
            }
            let map = selection_score(config.task, &eval[0]);
            state.schedule.observe(map);
            if state.best_map.is_none_or(|b| map > b) {
                state.best_map = Some(map);
                state.best_epoch = epoch + 1;
                state.evals_since_best = 0;
                save_checkpoint(&inference, &best_path)?;
            } else {
                state.evals_since_best += 1;
            }
        }
        let log = EpochLog {
            epoch: epoch + 1,
            lr,
            loss: loss_sum / batches.len() as f64,
            accuracy: acc_sum / batches.len() as f64,
            seconds,
            eval,
        };
        state.history.push(log.clone());
        state.epochs_done = epoch + 1;
        write_history(&config.save_dir, &state.history)?;
        write_events(&config.save_dir, &state.history, state.started)?;
        let peer_inference = peer.as_ref().map(|p| p.model.valid());
        let trained = Trained {
            model: &inference,
            optimizer: &optimizer,
            peer: peer_inference
                .as_ref()
                .zip(peer.as_ref().map(|p| &p.optimizer)),
            centers: centers.as_ref(),
        };
        write_checkpoint(&config.save_dir, &trained, &state)?;
        if !progress(&Event::Epoch(&log)) {
            return Err(Error::Cancelled);
        }
        if config.early_stop_patience > 0 && state.evals_since_best >= config.early_stop_patience {
            stopped_early = true;
            break;
        }
    }

    let final_model = if state.best_map.is_some() && best_path.is_file() {
        best_path
    } else {
        let path = config.save_dir.join("model.bpk");
        save_checkpoint(&model.valid(), &path)?;
        path
    };
    let onnx = if config.export_onnx {
        let path = config.save_dir.join("model.onnx");
        let best = load_checkpoint(&final_model, &device)?;
        let options = crate::export::ExportOptions {
            preprocessing: preprocessing.clone(),
            opset: 17,
            normalize: false,
        };
        crate::export::export_onnx_file(&best, &options, &path)?;
        Some(path)
    } else {
        None
    };
    Ok(TrainReport {
        epochs_done: state.epochs_done,
        best: state.best_map.map(|m| (m, state.best_epoch)),
        history: state.history,
        stopped_early,
        model: final_model,
        onnx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_rates_need_layers_and_exclude_mutual_learning() {
        let staged = StagedLr {
            new_layers: vec!["classifier".into()],
            base_lr_mult: 0.1,
        };
        let config = |staged: StagedLr, mutual: bool| TrainConfig {
            staged_lr: Some(staged),
            mutual_learning: mutual.then(|| MutualConfig {
                arch: "osnet_x0_25".into(),
                weight: 1.0,
            }),
            ..Default::default()
        };
        let refused = |c: TrainConfig| match setup(&c) {
            Err(Error::InvalidInput(message)) => message.contains("staged_lr"),
            _ => false,
        };
        assert!(refused(config(staged.clone(), true)));
        let no_layers = StagedLr {
            new_layers: vec![],
            ..staged.clone()
        };
        assert!(refused(config(no_layers, false)));
        let negative = StagedLr {
            base_lr_mult: -1.0,
            ..staged
        };
        assert!(refused(config(negative, false)));
    }

    #[test]
    fn layer_names_are_checked_against_the_model() {
        let device = crate::device::default_device();
        let model = ReidModel::new(Arch::OsnetX0_25, 3, &device);
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_layers(&model, &names(&["classifier", "fc", "conv1"]), "x").is_ok());
        let err = check_layers(&model, &names(&["classifier", "classifer"]), "open_layers")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("open_layers") && err.contains("`classifer`") && err.contains("conv5"),
            "{err}"
        );
    }
}
