//! YAML training configs with torchreid / deep-object-reid key names, plus `key=value`
//! overrides from the command line. Unknown keys are errors (a typo must not silently train
//! with a default).
//!
//! ```yaml
//! model: {name: osnet_x0_25, load_weights: ""}
//! data: {root: data, sources: [market1501], targets: [market1501], height: 256, width: 128,
//!        transforms: [random_flip, random_crop], save_dir: log/osnet_x0_25}
//! sampler: {train_sampler: RandomSampler, num_instances: 4}
//! loss: {name: softmax, softmax: {label_smooth: true}, triplet: {margin: 0.3, weight_t: 1.0, weight_x: 0.0}}
//! train: {optim: amsgrad, lr: 0.0015, max_epoch: 60, batch_size: 64, lr_scheduler: cosine}
//! test: {dist_metric: euclidean, eval_freq: -1}
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::models::Task;
use crate::models::precision::HalfPrecision;
use crate::train::multilabel_step::MultilabelLoss;
use crate::train::optim::OptimizerConfig;
use crate::train::schedule::{Schedule, Watch};

mod deep_object_reid;
use crate::train::{
    DataSection, EvalSection, LossConfig, LossSection, ModelSection, OptimizerSection,
    SamplerSection, ScheduleSection, StagedLr, TrainConfig,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Model {
    name: String,
    load_weights: String,
    pretrained: bool,
    /// deep-object-reid's `model.type`: `reid` (default), `classification` or `multilabel`.
    #[serde(rename = "type")]
    kind: String,
    /// Classifier head: `linear` (default) or `attention` (multi-label).
    head: String,
    /// Width and heads of the attention head.
    attention: AttentionSection,
    /// Representation self-challenging.
    self_challenging_cfg: SelfChallenging,
}

/// deep-object-reid's `model.self_challenging_cfg`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SelfChallenging {
    enable: bool,
    drop_p: f32,
    drop_batch_p: f32,
}

impl Default for SelfChallenging {
    fn default() -> Self {
        let d = crate::train::rsc::RscConfig::default();
        Self {
            enable: false,
            drop_p: d.drop_p,
            drop_batch_p: d.drop_batch_p,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AttentionSection {
    dim: usize,
    heads: usize,
}

impl Default for AttentionSection {
    fn default() -> Self {
        let d = crate::train::AttentionConfig::default();
        Self {
            dim: d.dim,
            heads: d.heads,
        }
    }
}

impl Default for Model {
    fn default() -> Self {
        Self {
            name: ModelSection::default().arch,
            load_weights: String::new(),
            pretrained: false,
            kind: "reid".into(),
            head: "linear".into(),
            attention: AttentionSection::default(),
            self_challenging_cfg: SelfChallenging::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Data {
    #[serde(rename = "type")]
    kind: String,
    root: PathBuf,
    sources: Vec<String>,
    targets: Vec<String>,
    split_id: usize,
    height: usize,
    width: usize,
    /// torchreid's list of names, or deep-object-reid's mapping of sections.
    transforms: serde_yaml::Value,
    /// deep-object-reid's augmented copies of each image.
    num_sampled_packages: usize,
    save_dir: PathBuf,
    workers: usize,
    combineall: bool,
    norm_mean: Option<Vec<f32>>,
    norm_std: Option<Vec<f32>>,
}

impl Default for Data {
    fn default() -> Self {
        let d = DataSection::default();
        Self {
            kind: "image".into(),
            root: d.root,
            sources: d.sources,
            targets: d.targets,
            split_id: d.split_id,
            height: d.height,
            width: d.width,
            transforms: serde_yaml::to_value(d.transforms).unwrap_or_default(),
            num_sampled_packages: d.packages,
            save_dir: TrainConfig::default().save_dir,
            workers: 4,
            combineall: d.combineall,
            norm_mean: None,
            norm_std: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Sampler {
    train_sampler: String,
    num_instances: usize,
    /// deep-object-reid's name for `num_instances`.
    batch_num_instances: Option<usize>,
    num_cams: usize,
    num_datasets: usize,
    /// deep-object-reid's `RandomIdentitySamplerV3` share per identity (≤ 0: the median).
    epoch_num_instances: i64,
    fill_instances: bool,
}

impl Default for Sampler {
    fn default() -> Self {
        let d = SamplerSection::default();
        Self {
            train_sampler: d.name,
            num_instances: d.num_instances,
            batch_num_instances: None,
            num_cams: d.num_cams,
            num_datasets: d.num_datasets,
            epoch_num_instances: d.epoch_num_instances as i64,
            fill_instances: d.fill_instances,
        }
    }
}

/// `loss.softmax.label_smooth`: torchreid's switch (ε = 0.1) or deep-object-reid's ε.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LabelSmooth {
    Switch(bool),
    Epsilon(f32),
}

impl LabelSmooth {
    fn epsilon(&self) -> Result<f32> {
        match *self {
            LabelSmooth::Switch(on) => Ok(if on { 0.1 } else { 0.0 }),
            LabelSmooth::Epsilon(e) if (0.0..1.0).contains(&e) => Ok(e),
            LabelSmooth::Epsilon(e) => Err(invalid(format!(
                "loss.softmax.label_smooth {e}: expected true / false or a number in [0, 1)"
            ))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Softmax {
    label_smooth: LabelSmooth,
    /// deep-object-reid's cosine scale from the number of classes.
    compute_s: bool,
    /// AM-softmax margin and scale (deep-object-reid's `loss.softmax.m` / `s`).
    m: f32,
    s: f32,
    /// Batch mixing (deep-object-reid's `loss.softmax.augmentations`).
    augmentations: Augmentations,
}

/// deep-object-reid's `loss.softmax.augmentations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Augmentations {
    /// `''` (off), `mixup`, `cutmix` or `fmix`.
    aug_type: String,
    alpha: f32,
    aug_prob: f32,
    fmix: FmixKeys,
}

impl Default for Augmentations {
    fn default() -> Self {
        let d = crate::train::MixingConfig::new(crate::train::MixKind::Mixup);
        Self {
            aug_type: String::new(),
            alpha: d.alpha,
            aug_prob: d.probability,
            fmix: FmixKeys {
                decay_power: d.decay_power,
                max_soft: 0.0,
                reformulate: false,
            },
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct FmixKeys {
    decay_power: f32,
    max_soft: f32,
    reformulate: bool,
}

impl Augmentations {
    /// The mixing these keys ask for; `None` when `aug_type` is empty.
    fn mixing(&self) -> Result<Option<crate::train::MixingConfig>> {
        use crate::train::MixKind;
        let kind = match self.aug_type.as_str() {
            "" => return Ok(None),
            "mixup" => MixKind::Mixup,
            "cutmix" => MixKind::Cutmix,
            "fmix" => MixKind::Fmix,
            other => {
                return Err(invalid(format!(
                    "loss.softmax.augmentations.aug_type: `{other}` is not one of mixup, \
                     cutmix, fmix"
                )));
            }
        };
        if self.fmix.max_soft != 0.0 || self.fmix.reformulate {
            return Err(invalid(
                "loss.softmax.augmentations.fmix: max_soft and reformulate are not supported \
                 (FMix masks are binary, lam ~ Beta(alpha, alpha))"
                    .into(),
            ));
        }
        let config = crate::train::MixingConfig {
            kind,
            alpha: self.alpha,
            probability: self.aug_prob,
            decay_power: self.fmix.decay_power,
        };
        config.validate()?;
        Ok(Some(config))
    }
}

impl Default for Softmax {
    fn default() -> Self {
        let d = LossConfig::default();
        Self {
            label_smooth: LabelSmooth::Switch(d.label_smooth > 0.0),
            compute_s: false,
            // deep-object-reid's AM-softmax margin (the plain softmax loss has none).
            m: 0.35,
            s: d.am_scale,
            augmentations: Augmentations::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Triplet {
    margin: f32,
    weight_t: f32,
    weight_x: f32,
}

impl Default for Triplet {
    fn default() -> Self {
        Self {
            margin: LossConfig::default().margin,
            // torchreid's weights of the triplet and softmax terms when `loss.name: triplet`.
            weight_t: 1.0,
            weight_x: 0.0,
        }
    }
}

/// Center loss, added to whichever loss `loss.name` picks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Center {
    weight: f32,
    alpha: f32,
}

impl Default for Center {
    fn default() -> Self {
        let d = LossConfig::default();
        Self {
            weight: d.center_weight,
            alpha: d.center_alpha,
        }
    }
}

/// The asymmetric multilabel loss.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Asl {
    gamma_pos: f32,
    gamma_neg: f32,
    clip: f32,
}

impl Default for Asl {
    fn default() -> Self {
        let d = crate::train::multilabel_loss::AsymmetricLoss::default();
        Self {
            gamma_pos: d.gamma_pos,
            gamma_neg: d.gamma_neg,
            clip: d.clip,
        }
    }
}

/// The additive-margin binary multilabel loss.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AmBinary {
    m: f32,
    s: f32,
    k: f32,
}

impl Default for AmBinary {
    fn default() -> Self {
        let d = crate::train::multilabel_loss::AmBinaryLoss::default();
        Self {
            m: d.margin,
            s: d.scale,
            k: d.k,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Loss {
    name: Option<String>,
    softmax: Softmax,
    triplet: Triplet,
    center: Center,
    asl: Asl,
    am_binary: AmBinary,
}

/// The multilabel loss `name` names.
fn multilabel_loss(name: &str, loss: &Loss) -> Result<MultilabelLoss> {
    Ok(match name {
        "asl" => MultilabelLoss::Asl {
            gamma_pos: loss.asl.gamma_pos,
            gamma_neg: loss.asl.gamma_neg,
            clip: loss.asl.clip,
        },
        "bce" => MultilabelLoss::Bce,
        "am_binary" => MultilabelLoss::AmBinary {
            margin: loss.am_binary.m,
            scale: loss.am_binary.s,
            k: loss.am_binary.k,
        },
        other => {
            return Err(invalid(format!(
                "loss.name `{other}`: multilabel models train with asl, bce or am_binary"
            )));
        }
    })
}

/// Deep mutual learning's second model (`mutual_learning:`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Mutual {
    arch: Option<String>,
    weight: f32,
}

impl Default for Mutual {
    fn default() -> Self {
        Self {
            arch: None,
            weight: 1.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Train {
    optim: String,
    base_optim: String,
    lr: f64,
    weight_decay: f64,
    max_epoch: usize,
    start_epoch: usize,
    batch_size: usize,
    fixbase_epoch: usize,
    open_layers: Vec<String>,
    staged_lr: bool,
    new_layers: Vec<String>,
    base_lr_mult: f64,
    lr_scheduler: String,
    stepsize: Vec<usize>,
    gamma: f64,
    warmup: usize,
    pct_start: f64,
    patience: usize,
    min_lr: f64,
    early_stop_patience: usize,
    /// deep-object-reid's early stopping: `train_patience` evaluations without a better score,
    /// counted once the rate has dropped below its base after the warm-up.
    early_stopping: bool,
    train_patience: usize,
    /// deep-object-reid's `warmup` scheduler: the schedule after it, and the start rate's divisor.
    base_scheduler: String,
    multiplier: f64,
    /// deep-object-reid's `cosine_cycle`.
    first_cycle_steps: usize,
    cycle_mult: f64,
    max_lr: f64,
    /// deep-object-reid: reduce-on-plateau's floor (lr / this) and one-cycle's last division.
    lr_decay_factor: f64,
    /// deep-object-reid: what reduce-on-plateau watches (`train_loss` or `test_acc`).
    target_metric: String,
    /// deep-object-reid's "no bias decay": weight decay only on weights of 2+ dimensions.
    nbd: bool,
    /// deep-object-reid's batch-size heuristic for small multi-label sets (refused on).
    correct_batch_size: bool,
    seed: u64,
    momentum: f64,
    sgd_dampening: f64,
    sgd_nesterov: bool,
    adam_beta1: f64,
    adam_beta2: f64,
    rmsprop_alpha: f64,
    print_freq: usize,
    clip_grad: f64,
    ema: EmaYaml,
    /// deep-object-reid's automatic mixed precision: `true` (float16, as torch.autocast on
    /// CUDA), `false`, or the half type by name (`f16`, `bf16`).
    mix_precision: MixPrecisionYaml,
    /// deep-object-reid's `cudnn.deterministic` (reid's runs are a function of the seed either
    /// way).
    deterministic: bool,
}

/// `train.mix_precision`: deep-object-reid's flag, or reid's choice of half type.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum MixPrecisionYaml {
    /// `true`: float16, torch.autocast's type on CUDA; `false`: off.
    On(bool),
    /// `f16` or `bf16`.
    Type(String),
}

impl MixPrecisionYaml {
    fn precision(&self) -> Result<Option<HalfPrecision>> {
        match self {
            MixPrecisionYaml::On(on) => Ok(on.then_some(HalfPrecision::F16)),
            MixPrecisionYaml::Type(name) => name
                .parse()
                .map(Some)
                .map_err(|e| invalid(format!("train.mix_precision: {e}; or true / false"))),
        }
    }
}

/// deep-object-reid's `train.ema` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EmaYaml {
    enable: bool,
    ema_decay: f64,
}

impl Default for EmaYaml {
    fn default() -> Self {
        let d = TrainConfig::default().optimizer.ema;
        Self {
            enable: d.is_some(),
            ema_decay: d.unwrap_or_default().decay,
        }
    }
}

impl Default for Train {
    fn default() -> Self {
        let d = TrainConfig::default();
        let o = d.optimizer.algorithm;
        let staged = StagedLr::default();
        let (stepsize, gamma) = match d.schedule.policy {
            Schedule::SingleStep { step, gamma } => (vec![step], gamma),
            _ => unreachable!("the default schedule is single_step"),
        };
        Self {
            optim: o.name.clone(),
            base_optim: o.name,
            lr: d.schedule.lr,
            weight_decay: o.weight_decay,
            max_epoch: d.schedule.max_epoch,
            start_epoch: 0,
            batch_size: d.sampler.batch_size,
            fixbase_epoch: d.schedule.fixbase_epoch,
            open_layers: d.schedule.open_layers,
            staged_lr: d.optimizer.staged_lr.is_some(),
            new_layers: staged.new_layers,
            base_lr_mult: staged.base_lr_mult,
            lr_scheduler: "single_step".into(),
            stepsize,
            gamma,
            warmup: d.schedule.warmup,
            pct_start: 0.3,
            patience: 5,
            min_lr: 1e-5,
            early_stop_patience: d.eval.early_stop_patience,
            early_stopping: false,
            train_patience: 10,
            base_scheduler: String::new(),
            multiplier: 10.0,
            first_cycle_steps: 5,
            cycle_mult: 1.0,
            max_lr: 0.1,
            lr_decay_factor: 100.0,
            target_metric: "train_loss".into(),
            nbd: o.only_matrices_decay,
            correct_batch_size: false,
            seed: d.seed,
            momentum: o.momentum,
            sgd_dampening: o.sgd_dampening,
            sgd_nesterov: o.sgd_nesterov,
            adam_beta1: o.adam_beta1,
            adam_beta2: o.adam_beta2,
            rmsprop_alpha: o.rmsprop_alpha,
            print_freq: 20,
            clip_grad: d.optimizer.clip_grad,
            ema: EmaYaml::default(),
            mix_precision: MixPrecisionYaml::On(false),
            deterministic: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Test {
    batch_size: usize,
    dist_metric: String,
    normalize_feature: bool,
    evaluate: bool,
    eval_freq: i64,
    start_eval: usize,
    rerank: bool,
    ranks: Vec<usize>,
    export_onnx: bool,
}

impl Default for Test {
    fn default() -> Self {
        let d = TrainConfig::default();
        Self {
            batch_size: 100,
            dist_metric: d.eval.dist_metric,
            normalize_feature: false,
            evaluate: false,
            eval_freq: -1,
            start_eval: 0,
            rerank: false,
            ranks: vec![1, 5, 10, 20],
            export_onnx: d.export_onnx,
        }
    }
}

/// torchreid's `sgd:` section (its `default_config.py`): the same settings as
/// `train.momentum`, `train.sgd_dampening` and `train.sgd_nesterov`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct SgdSection {
    momentum: Option<f64>,
    dampening: Option<f64>,
    nesterov: Option<bool>,
}

/// torchreid's `rmsprop:` section: `train.rmsprop_alpha`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RmspropSection {
    alpha: Option<f64>,
}

/// torchreid's `adam:` section: `train.adam_beta1` and `train.adam_beta2`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct AdamSection {
    beta1: Option<f64>,
    beta2: Option<f64>,
}

/// A setting torchreid's files give in a section of its own and `build_optimizer`'s names give
/// under `train:`: the section's value if given; both given (the `train:` one other than its
/// default), they must agree.
fn either<T: PartialEq + std::fmt::Debug>(
    train: T,
    default: T,
    section: Option<T>,
    keys: [&str; 2],
) -> Result<T> {
    match section {
        Some(v) if train != default && train != v => Err(invalid(format!(
            "{} is {v:?} but {} is {train:?}: give one of them",
            keys[0], keys[1]
        ))),
        Some(v) => Ok(v),
        None => Ok(train),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct File {
    model: Model,
    data: Data,
    sampler: Sampler,
    loss: Loss,
    train: Train,
    test: Test,
    sam: Option<crate::train::SamConfig>,
    mutual_learning: Option<Mutual>,
    /// reid's own section (fast-reid's distiller): `{teacher, arch, weight, temperature,
    /// feature_weight}`.
    distillation: Option<crate::train::DistillConfig>,
    use_gpu: bool,
    device: Option<String>,
    /// reid's own key: `mpi` trains as the ranks of an MPI job.
    distributed: crate::train::Distributed,
    sgd: SgdSection,
    rmsprop: RmspropSection,
    adam: AdamSection,
    lr_finder: LrFinderYaml,
    /// torchreid's `video:` section: `{seq_len, sample_method, pooling_method}`.
    video: crate::data::video::sampling::TrackletSampling,
    /// deep-object-reid's consistency of augmented copies.
    mixing_loss: MixingLoss,
}

/// deep-object-reid's `mixing_loss:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MixingLoss {
    enable: bool,
    weight: f32,
}

impl Default for MixingLoss {
    fn default() -> Self {
        Self {
            enable: false,
            weight: 1.0,
        }
    }
}

/// deep-object-reid's `lr_finder:` section: its `fast_ai` mode (the exponential range test of
/// `train::lr_find`), `grid_search` and `TPE` (trial runs, `train::lr_search`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LrFinderYaml {
    enable: bool,
    mode: String,
    min_lr: f64,
    max_lr: f64,
    /// reid's own: the number of rates tried, when `num_epochs` is not given.
    steps: usize,
    num_epochs: Option<usize>,
    smooth_f: f64,
    stop_after: bool,
    epochs_warmup: usize,
    step: Option<f64>,
    n_trials: usize,
}

impl Default for LrFinderYaml {
    fn default() -> Self {
        let d = crate::train::lr_find::LrFindOptions::default();
        Self {
            enable: false,
            mode: "fast_ai".into(),
            min_lr: d.min_lr,
            max_lr: d.max_lr,
            steps: d.steps,
            num_epochs: d.epochs,
            smooth_f: d.smoothing,
            stop_after: false,
            epochs_warmup: d.warmup_epochs,
            step: d.step,
            n_trials: d.trials,
        }
    }
}

impl LrFinderYaml {
    /// The range test a run starts with, if enabled.
    fn options(self) -> Result<Option<crate::train::lr_find::LrFindOptions>> {
        if !self.enable {
            return Ok(None);
        }
        use crate::train::config::LrFindMode;
        let mode = match self.mode.as_str() {
            "fast_ai" | "automatic" => LrFindMode::RangeTest,
            "grid_search" => LrFindMode::GridSearch,
            "TPE" => LrFindMode::Tpe,
            other => {
                return Err(invalid(format!(
                    "lr_finder.mode `{other}`: one of fast_ai (or automatic), grid_search, TPE"
                )));
            }
        };
        if self.stop_after {
            return Err(invalid(
                "lr_finder.stop_after: to find the rate without training, run `reid lr-find`"
                    .into(),
            ));
        }
        Ok(Some(crate::train::lr_find::LrFindOptions {
            mode,
            step: self.step,
            trials: self.n_trials,
            min_lr: self.min_lr,
            max_lr: self.max_lr,
            steps: self.steps,
            epochs: self.num_epochs,
            smoothing: self.smooth_f,
            warmup_epochs: self.epochs_warmup,
        }))
    }
}

/// `train.lr_scheduler` as a schedule, and the epochs of torchreid-style warm-up in front of it
/// (deep-object-reid's schedules use `train.warmup` themselves).
fn schedule_of(t: &Train) -> Result<(Schedule, usize)> {
    if !t.base_scheduler.is_empty() && t.lr_scheduler != "warmup" {
        return Err(invalid(format!(
            "train.base_scheduler `{}` follows only lr_scheduler: warmup",
            t.base_scheduler
        )));
    }
    let watch = match t.target_metric.as_str() {
        "train_loss" => Watch::TrainingLoss,
        "test_acc" => Watch::SmoothedScore,
        other => {
            return Err(invalid(format!(
                "train.target_metric `{other}`: expected train_loss or test_acc"
            )));
        }
    };
    let plateau = || Schedule::ReduceOnPlateau {
        factor: t.gamma,
        patience: t.patience,
        min_lr: 0.0,
        // deep-object-reid's ReduceLROnPlateauV2: relative threshold 2e-4, floor lr /
        // lr_decay_factor, one forced decay after three quarters of the run (less the warm-up).
        threshold: 2e-4,
        watch,
        force_after: Some(((t.max_epoch * 3 / 4).saturating_sub(t.warmup)).max(1)),
        floor_divisor: Some(t.lr_decay_factor),
    };
    let base = |name: &str| -> Result<Schedule> {
        Ok(match name {
            // torchreid and deep-object-reid take the last step size of a list.
            "single_step" => Schedule::SingleStep {
                step: t.stepsize.last().copied().unwrap_or(20),
                gamma: t.gamma,
            },
            "multi_step" => Schedule::MultiStep {
                milestones: t.stepsize.clone(),
                gamma: t.gamma,
            },
            "cosine" => Schedule::Cosine {
                max_epoch: t.max_epoch,
            },
            "reduce_on_plateau" => plateau(),
            "constant" | "none" => Schedule::Constant,
            other => {
                return Err(invalid(format!(
                    "train.lr_scheduler `{other}`: expected single_step, multi_step, cosine, \
                     warmup, cosine_cycle, onecycle, reduce_on_plateau or constant"
                )));
            }
        })
    };
    Ok(match t.lr_scheduler.as_str() {
        "warmup" => {
            if t.base_scheduler.is_empty() {
                return Err(invalid(
                    "train.lr_scheduler warmup needs train.base_scheduler (the schedule after it)"
                        .into(),
                ));
            }
            let schedule = Schedule::Warmup {
                multiplier: t.multiplier,
                epochs: t.warmup,
                then: Box::new(base(&t.base_scheduler)?),
            };
            (schedule, 0)
        }
        "onecycle" => (
            Schedule::OneCycle {
                total: t.max_epoch,
                pct_start: t.pct_start,
                div_factor: 100.0,
                final_div_factor: t.lr_decay_factor,
                per_step: true,
            },
            0,
        ),
        "cosine_cycle" => (
            Schedule::CosineCycle {
                first_cycle_steps: t.first_cycle_steps,
                cycle_mult: t.cycle_mult,
                max_lr: t.max_lr,
                min_lr: t.min_lr,
                warmup_steps: t.warmup,
                gamma: t.gamma,
            },
            0,
        ),
        "reduce_on_plateau" => (plateau(), 0),
        name => (base(name)?, t.warmup),
    })
}

fn invalid(message: String) -> Error {
    Error::InvalidInput(message)
}

/// Sets `dotted.key` in a YAML mapping to `value` (parsed as YAML: numbers, booleans, lists).
fn apply_override(root: &mut serde_yaml::Value, assignment: &str) -> Result<()> {
    let (key, value) = assignment
        .split_once('=')
        .ok_or_else(|| invalid(format!("override `{assignment}` is not key=value")))?;
    let value: serde_yaml::Value = serde_yaml::from_str(value)
        .map_err(|e| invalid(format!("override `{assignment}`: {e}")))?;
    deep_object_reid::put(root, key, value);
    Ok(())
}

/// Reads a YAML config with torchreid's key names (`None`: all defaults), or a `.json` file
/// in [`TrainConfig`]'s own sections (the `config.json` every run saves, to run it again),
/// applies `key=value` overrides in that file's key names, and gives the training
/// configuration. Relative paths stay relative to the working directory.
pub fn load_train_config(path: Option<&Path>, overrides: &[String]) -> Result<TrainConfig> {
    let mut value = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            serde_yaml::from_str(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?
        }
        None => serde_yaml::Value::Mapping(Default::default()),
    };
    if value.is_null() {
        value = serde_yaml::Value::Mapping(Default::default());
    }
    let is_json = path.is_some_and(|p| p.extension().is_some_and(|e| e == "json"));
    if !is_json {
        deep_object_reid::with_bases(&mut value, path.and_then(Path::parent))?;
    }
    for o in overrides {
        apply_override(&mut value, o)?;
    }
    if !is_json {
        deep_object_reid::normalize(&mut value)?;
    }
    let where_ = path.map_or("config".to_string(), |p| p.display().to_string());
    if is_json {
        // JSON is YAML: the same reader and overrides, then serde_json for the enums that
        // serde_yaml only reads from YAML tags.
        let json = serde_json::to_value(value).map_err(|e| invalid(format!("{where_}: {e}")))?;
        return serde_json::from_value(json).map_err(|e| invalid(format!("{where_}: {e}")));
    }
    let file: File =
        serde_yaml::from_value(value).map_err(|e| invalid(format!("{where_}: {e}")))?;
    to_train_config(file)
}

/// `data.transforms`: torchreid's list of names, or deep-object-reid's sections (checked).
fn transforms(
    value: serde_yaml::Value,
) -> Result<(
    Vec<String>,
    Option<crate::data::transform_sections::TransformSections>,
)> {
    use crate::data::transform_sections::TransformSections;
    let refused = |e: serde_yaml::Error| invalid(format!("data.transforms: {e}"));
    if value.is_mapping() {
        let sections: TransformSections = serde_yaml::from_value(value).map_err(refused)?;
        sections.validate()?;
        Ok((Vec::new(), Some(sections)))
    } else {
        Ok((serde_yaml::from_value(value).map_err(refused)?, None))
    }
}

fn to_train_config(f: File) -> Result<TrainConfig> {
    // deep-object-reid's configs spell out ImageNet's values.
    let reference = crate::preprocess::Preprocessing::torchreid(1, 1);
    let imagenet = |given: &Option<Vec<f32>>, want: [f32; 3]| {
        given
            .as_ref()
            .is_none_or(|v| v.len() == 3 && v.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6))
    };
    if !imagenet(&f.data.norm_mean, reference.mean) || !imagenet(&f.data.norm_std, reference.std) {
        return Err(invalid(
            "data.norm_mean / norm_std: only ImageNet normalization is supported".into(),
        ));
    }
    if f.train.correct_batch_size {
        return Err(invalid(
            "train.correct_batch_size: deep-object-reid's batch-size heuristic for small \
             multi-label sets is not implemented; set train.batch_size instead"
                .into(),
        ));
    }
    if f.train.early_stopping && f.train.early_stop_patience > 0 {
        return Err(invalid(
            "train.early_stopping (with train_patience) and train.early_stop_patience say the \
             same thing: keep one"
                .into(),
        ));
    }
    let task: Task = f.model.kind.parse()?;
    let (transforms, transform_sections) = transforms(f.data.transforms.clone())?;
    let data_kind_ok = match f.data.kind.as_str() {
        "image" => true,
        // torchreid's video re-id; the datasets' names say it too.
        "video" => task == Task::Reid,
        "classification" => task == Task::Classification,
        "multilabel" => task == Task::Multilabel,
        _ => false,
    };
    if !data_kind_ok || f.test.rerank || f.test.normalize_feature {
        return Err(invalid(
            "data.type other than image, test.rerank and test.normalize_feature are not \
             supported by `reid train` (use `reid eval --rerank` on exported features)"
                .into(),
        ));
    }
    if f.data.combineall && task != Task::Reid {
        return Err(invalid(
            "data.combineall adds re-id query and gallery images to training (model.type: reid)"
                .into(),
        ));
    }
    let smooth = f.loss.softmax.label_smooth.epsilon()?;
    let base = LossConfig {
        softmax_weight: 1.0,
        label_smooth: smooth,
        triplet_weight: 0.0,
        margin: f.loss.triplet.margin,
        am_margin: 0.0,
        am_scale: f.loss.softmax.s,
        center_weight: f.loss.center.weight,
        center_alpha: f.loss.center.alpha,
    };
    let loss_name = f.loss.name.clone().unwrap_or_else(|| {
        if task == Task::Multilabel {
            "asl"
        } else {
            "softmax"
        }
        .to_string()
    });
    let multilabel = if task == Task::Multilabel {
        multilabel_loss(&loss_name, &f.loss)?
    } else {
        MultilabelLoss::default()
    };
    let losses = match loss_name.as_str() {
        _ if task == Task::Multilabel => base,
        "softmax" => base,
        "am_softmax" => {
            if !(f.loss.softmax.m > 0.0 && f.loss.softmax.s > 0.0) {
                return Err(invalid(
                    "loss.softmax.m and s must be positive for am_softmax".into(),
                ));
            }
            LossConfig {
                am_margin: f.loss.softmax.m,
                ..base
            }
        }
        "triplet" => LossConfig {
            softmax_weight: f.loss.triplet.weight_x,
            triplet_weight: f.loss.triplet.weight_t,
            ..base
        },
        other => {
            return Err(invalid(format!(
                "loss.name `{other}`: expected softmax, am_softmax or triplet"
            )));
        }
    };
    if losses.softmax_weight <= 0.0 && losses.triplet_weight <= 0.0 {
        return Err(invalid("every loss weight is 0".into()));
    }
    let t = &f.train;
    // A `train:` value equal to its default counts as not given.
    let defaults = Train::default();
    let (schedule, warmup) = schedule_of(t)?;
    if t.start_epoch != 0 {
        return Err(invalid(
            "train.start_epoch: runs resume by themselves from save_dir".into(),
        ));
    }
    // deep-object-reid spells SAM as an optimizer wrapping `base_optim`.
    let (optim, sam) = match (t.optim.as_str(), f.sam) {
        ("sam", sam) => (t.base_optim.clone(), Some(sam.unwrap_or_default())),
        (_, Some(_)) => {
            return Err(invalid(
                "a `sam:` section needs train.optim: sam (with train.base_optim)".into(),
            ));
        }
        (name, None) => (name.to_string(), None),
    };
    let mutual_learning = match f.mutual_learning {
        Some(m) => Some(crate::train::MutualConfig {
            arch: m.arch.unwrap_or_else(|| f.model.name.clone()),
            weight: m.weight,
        }),
        None => None,
    };
    let rsc = &f.model.self_challenging_cfg;
    let self_challenging = rsc.enable.then_some(crate::train::rsc::RscConfig {
        drop_p: rsc.drop_p,
        drop_batch_p: rsc.drop_batch_p,
    });
    let attention_head = match f.model.head.as_str() {
        "linear" => None,
        "attention" if task == Task::Multilabel && !multilabel.uses_cosine() => {
            let (dim, heads) = (f.model.attention.dim, f.model.attention.heads);
            if dim == 0 || heads == 0 || dim % heads != 0 {
                return Err(invalid(format!(
                    "model.attention: dim {dim} must be a positive multiple of heads {heads}"
                )));
            }
            Some(crate::train::AttentionConfig { dim, heads })
        }
        "attention" => {
            return Err(invalid(
                "model.head: attention is a multi-label head (model.type: multilabel, \
                 loss asl or bce)"
                    .into(),
            ));
        }
        other => {
            return Err(invalid(format!(
                "model.head `{other}`: expected linear or attention"
            )));
        }
    };
    let device = f
        .device
        .unwrap_or_else(|| if f.use_gpu { "wgpu" } else { "flex" }.into());
    Ok(TrainConfig {
        model: ModelSection {
            arch: f.model.name,
            weights: (!f.model.load_weights.is_empty()).then(|| f.model.load_weights.into()),
            pretrained: f.model.pretrained,
            task,
            attention_head,
            self_challenging,
        },
        data: DataSection {
            root: f.data.root,
            sources: f.data.sources,
            targets: f.data.targets,
            split_id: f.data.split_id,
            height: f.data.height,
            width: f.data.width,
            transforms,
            packages: f.data.num_sampled_packages,
            transform_sections,
            combineall: f.data.combineall,
        },
        sampler: SamplerSection {
            name: f.sampler.train_sampler,
            batch_size: t.batch_size,
            num_instances: either(
                f.sampler.num_instances,
                SamplerSection::default().num_instances,
                f.sampler.batch_num_instances,
                ["sampler.batch_num_instances", "sampler.num_instances"],
            )?,
            num_cams: f.sampler.num_cams,
            num_datasets: f.sampler.num_datasets,
            epoch_num_instances: f.sampler.epoch_num_instances.max(0) as usize,
            fill_instances: f.sampler.fill_instances,
        },
        loss: LossSection {
            reid: losses,
            multilabel,
            mutual_learning,
            distillation: f.distillation,
            mixing: f.loss.softmax.augmentations.mixing()?,
            consistency_weight: if f.mixing_loss.enable {
                f.mixing_loss.weight
            } else {
                0.0
            },
            scale_from_classes: f.loss.softmax.compute_s,
        },
        optimizer: OptimizerSection {
            algorithm: OptimizerConfig {
                name: optim,
                weight_decay: t.weight_decay,
                only_matrices_decay: t.nbd,
                momentum: either(
                    t.momentum,
                    defaults.momentum,
                    f.sgd.momentum,
                    ["sgd.momentum", "train.momentum"],
                )?,
                sgd_dampening: either(
                    t.sgd_dampening,
                    defaults.sgd_dampening,
                    f.sgd.dampening,
                    ["sgd.dampening", "train.sgd_dampening"],
                )?,
                sgd_nesterov: either(
                    t.sgd_nesterov,
                    defaults.sgd_nesterov,
                    f.sgd.nesterov,
                    ["sgd.nesterov", "train.sgd_nesterov"],
                )?,
                adam_beta1: either(
                    t.adam_beta1,
                    defaults.adam_beta1,
                    f.adam.beta1,
                    ["adam.beta1", "train.adam_beta1"],
                )?,
                adam_beta2: either(
                    t.adam_beta2,
                    defaults.adam_beta2,
                    f.adam.beta2,
                    ["adam.beta2", "train.adam_beta2"],
                )?,
                rmsprop_alpha: either(
                    t.rmsprop_alpha,
                    defaults.rmsprop_alpha,
                    f.rmsprop.alpha,
                    ["rmsprop.alpha", "train.rmsprop_alpha"],
                )?,
            },
            staged_lr: t.staged_lr.then(|| StagedLr {
                new_layers: t.new_layers.clone(),
                base_lr_mult: t.base_lr_mult,
            }),
            sam,
            clip_grad: t.clip_grad,
            ema: t.ema.enable.then_some(crate::train::EmaConfig {
                decay: t.ema.ema_decay,
            }),
            mix_precision: t.mix_precision.precision()?,
        },
        schedule: ScheduleSection {
            lr: t.lr,
            policy: schedule,
            warmup,
            max_epoch: t.max_epoch,
            fixbase_epoch: t.fixbase_epoch,
            open_layers: t.open_layers.clone(),
            lr_finder: f.lr_finder.options()?,
        },
        eval: EvalSection {
            eval_freq: f.test.eval_freq.max(0) as usize,
            dist_metric: f.test.dist_metric,
            early_stop_patience: if t.early_stopping {
                t.train_patience
            } else {
                t.early_stop_patience
            },
            early_stop_after_decay: t.early_stopping,
        },
        seed: t.seed,
        device,
        distributed: f.distributed,
        save_dir: f.data.save_dir,
        export_onnx: f.test.export_onnx,
        video: f.video,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchreid_keys_map_and_typos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "model:\n  name: osnet_x1_0\ndata:\n  sources: [market1501]\n  height: 128\n\
             loss:\n  name: triplet\n  triplet: {weight_x: 1.0}\n\
             train:\n  optim: sgd\n  lr: 0.065\n  lr_scheduler: multi_step\n  stepsize: [5, 9]\n",
        )
        .unwrap();
        let c = load_train_config(
            Some(&path),
            &["train.max_epoch=3".into(), "data.width=64".into()],
        )
        .unwrap();
        assert_eq!(
            (
                c.model.arch.as_str(),
                c.data.height,
                c.data.width,
                c.schedule.max_epoch
            ),
            ("osnet_x1_0", 128, 64, 3)
        );
        assert_eq!(c.optimizer.algorithm.name, "sgd");
        assert_eq!(
            (c.loss.reid.softmax_weight, c.loss.reid.triplet_weight),
            (1.0, 1.0)
        );
        assert_eq!(
            c.schedule.policy,
            Schedule::MultiStep {
                milestones: vec![5, 9],
                gamma: 0.1
            }
        );
        let typo = load_train_config(Some(&path), &["train.max_epochs=3".into()]).unwrap_err();
        assert!(typo.to_string().contains("max_epochs"), "{typo}");
        assert!(load_train_config(None, &["loss.name=arcface".into()]).is_err());
        assert!(load_train_config(None, &["train.lr_scheduler=warm".into()]).is_err());
        assert!(load_train_config(None, &["nonsense".into()]).is_err());
        assert_eq!(
            load_train_config(None, &[]).unwrap().model.arch,
            "osnet_x0_25"
        );
    }

    /// torchreid's `default_config.py` gives the optimizers' settings in sections of their own
    /// (its files set `adam.beta2: 0.999`, not `build_optimizer`'s 0.99).
    #[test]
    fn torchreid_optimizer_sections_map() {
        let c = load_train_config(
            None,
            &[
                "adam.beta1=0.8".into(),
                "adam.beta2=0.999".into(),
                "sgd.momentum=0.5".into(),
                "sgd.dampening=0.1".into(),
                "sgd.nesterov=true".into(),
                "rmsprop.alpha=0.9".into(),
            ],
        )
        .unwrap();
        let o = &c.optimizer.algorithm;
        assert_eq!(
            (o.adam_beta1, o.adam_beta2, o.momentum, o.sgd_dampening),
            (0.8, 0.999, 0.5, 0.1)
        );
        assert!(o.sgd_nesterov);
        assert_eq!(o.rmsprop_alpha, 0.9);
        // The same value in both places is fine; two different ones are refused.
        let same = ["adam.beta2=0.999".into(), "train.adam_beta2=0.999".into()];
        assert_eq!(
            load_train_config(None, &same)
                .unwrap()
                .optimizer
                .algorithm
                .adam_beta2,
            0.999
        );
        let both = ["adam.beta2=0.999".into(), "train.adam_beta2=0.98".into()];
        let err = load_train_config(None, &both).unwrap_err().to_string();
        assert!(
            err.contains("adam.beta2") && err.contains("train.adam_beta2"),
            "{err}"
        );
        assert!(load_train_config(None, &["adam.beta3=0.9".into()]).is_err());
    }

    #[test]
    fn distillation_keys() {
        let c = load_train_config(
            None,
            &[
                "distillation.teacher=runs/teacher/best.bpk".into(),
                "distillation.temperature=4".into(),
                "distillation.feature_weight=10000".into(),
            ],
        )
        .unwrap();
        let d = c.loss.distillation.unwrap();
        assert_eq!(d.teacher, PathBuf::from("runs/teacher/best.bpk"));
        assert_eq!((d.temperature, d.weight, d.arch), (4.0, 1.0, None));
        assert_eq!(d.feature_weight, 1e4);
        assert!(load_train_config(None, &["distillation.temp=4".into()]).is_err());
    }

    #[test]
    fn batch_mixing_keys() {
        use crate::train::{MixKind, MixingConfig};
        let load = |extra: &[&str]| {
            let overrides: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            load_train_config(None, &overrides)
        };
        assert_eq!(load(&[]).unwrap().loss.mixing, None);
        let c = load(&[
            "loss.softmax.augmentations.aug_type=fmix",
            "loss.softmax.augmentations.alpha=0.4",
            "loss.softmax.augmentations.aug_prob=0.5",
            "loss.softmax.augmentations.fmix.decay_power=2",
        ])
        .unwrap();
        assert_eq!(
            c.loss.mixing,
            Some(MixingConfig {
                kind: MixKind::Fmix,
                alpha: 0.4,
                probability: 0.5,
                decay_power: 2.0,
            })
        );
        let cutmix = load(&["loss.softmax.augmentations.aug_type=cutmix"]).unwrap();
        assert_eq!(cutmix.loss.mixing, Some(MixingConfig::new(MixKind::Cutmix)));
        for refused in [
            "loss.softmax.augmentations.aug_type=cutout",
            "loss.softmax.augmentations.alph=1",
        ] {
            assert!(load(&[refused]).is_err(), "{refused}");
        }
        for refused in [
            "loss.softmax.augmentations.fmix.max_soft=0.1",
            "loss.softmax.augmentations.fmix.reformulate=true",
            "loss.softmax.augmentations.alpha=0",
        ] {
            assert!(
                load(&["loss.softmax.augmentations.aug_type=fmix", refused]).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn domain_sampler_keys() {
        let c = load_train_config(
            None,
            &[
                "sampler.train_sampler=RandomDomainSampler".into(),
                "sampler.num_cams=2".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            (c.sampler.name.as_str(), c.sampler.num_cams),
            ("RandomDomainSampler", 2)
        );
        assert_eq!(load_train_config(None, &[]).unwrap().sampler.num_cams, 1);
        let sets = load_train_config(
            None,
            &[
                "sampler.train_sampler=RandomDatasetSampler".into(),
                "sampler.num_datasets=2".into(),
            ],
        )
        .unwrap();
        assert_eq!(sets.sampler.num_datasets, 2);
    }

    #[test]
    fn video_keys() {
        let c = load_train_config(
            None,
            &[
                "video.seq_len=4".into(),
                "video.sample_method=all".into(),
                "video.pooling_method=max".into(),
            ],
        )
        .unwrap();
        use crate::data::video::sampling::{FrameSampling, Pooling};
        assert_eq!(
            (
                c.video.seq_len,
                c.video.sample_method,
                c.video.pooling_method
            ),
            (4, FrameSampling::All, Pooling::Max)
        );
        assert!(load_train_config(None, &["video.sample_method=sometimes".into()]).is_err());
        assert!(load_train_config(None, &["data.type=video".into()]).is_ok());
        let classification_video = ["data.type=video".into(), "model.type=classification".into()];
        assert!(load_train_config(None, &classification_video).is_err());
        assert!(load_train_config(None, &["video.seqlen=4".into()]).is_err());
    }

    #[test]
    fn mixed_precision_is_read_and_determinism_accepted() {
        let precision = |value: &str| {
            load_train_config(None, &[format!("train.mix_precision={value}")])
                .map(|c| c.optimizer.mix_precision)
        };
        assert_eq!(precision("true").unwrap(), Some(HalfPrecision::F16));
        assert_eq!(precision("bf16").unwrap(), Some(HalfPrecision::Bf16));
        assert_eq!(precision("f16").unwrap(), Some(HalfPrecision::F16));
        assert_eq!(precision("false").unwrap(), None);
        let wrong = precision("f8").unwrap_err().to_string();
        assert!(
            wrong.contains("train.mix_precision") && wrong.contains("bf16"),
            "{wrong}"
        );
        let keys = [
            "train.mix_precision=false".into(),
            "train.deterministic=true".into(),
        ];
        assert_eq!(
            load_train_config(None, &keys).unwrap(),
            TrainConfig::default()
        );
    }

    #[test]
    fn mixing_loss_keys() {
        let c = load_train_config(
            None,
            &[
                "mixing_loss.enable=true".into(),
                "mixing_loss.weight=0.5".into(),
                "data.num_sampled_packages=3".into(),
            ],
        )
        .unwrap();
        assert_eq!((c.data.packages, c.loss.consistency_weight), (3, 0.5));
        let off = load_train_config(None, &["mixing_loss.weight=0.5".into()]).unwrap();
        assert_eq!((off.data.packages, off.loss.consistency_weight), (1, 0.0));
        assert!(load_train_config(None, &["mixing_loss.wieght=0.5".into()]).is_err());
    }

    #[test]
    fn self_challenging_keys() {
        let c = load_train_config(
            None,
            &[
                "model.self_challenging_cfg.enable=true".into(),
                "model.self_challenging_cfg.drop_p=0.4".into(),
            ],
        )
        .unwrap();
        let rsc = c.model.self_challenging.unwrap();
        assert_eq!((rsc.drop_p, rsc.drop_batch_p), (0.4, 0.33));
        let off = load_train_config(None, &["model.self_challenging_cfg.drop_p=0.4".into()]);
        assert!(off.unwrap().model.self_challenging.is_none());
        assert!(load_train_config(None, &["model.self_challenging_cfg.p=0.4".into()]).is_err());
    }

    #[test]
    fn deep_object_reid_transform_sections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dor.yaml");
        std::fs::write(
            &path,
            "data:\n  transforms:\n    random_flip: {enable: True, p: 0.5}\n    \
             random_rotate:\n      enable: True\n      angle: (-10, 10)\n      values: (0,)\n    \
             random_grid:\n      enable: False\n      color: (-1, -1, -1)\n",
        )
        .unwrap();
        let c = load_train_config(
            Some(&path),
            &["data.transforms.posterize.enable=true".into()],
        )
        .unwrap();
        let s = c.data.transform_sections.clone().unwrap();
        assert!(c.data.transforms.is_empty());
        assert_eq!(s.random_rotate.angle, vec![-10.0, 10.0]);
        assert!(s.posterize.enable && s.random_flip.enable && !s.equalize.enable);
        // The saved config.json reads back the same.
        let json = dir.path().join("config.json");
        std::fs::write(&json, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
        assert_eq!(load_train_config(Some(&json), &[]).unwrap(), c);
        // Overrides alone build the sections too; the list form still works.
        let o = load_train_config(None, &["data.transforms.equalize.enable=true".into()]);
        assert!(o.unwrap().data.transform_sections.unwrap().equalize.enable);
        for refused in [
            "data.transforms.random_background_substitution.enable=true",
            "data.transforms.random_grid.grid_size=(9, 3)",
            "data.transforms.posterize.bitz=2",
            "data.transforms.random_blur.k=4",
        ] {
            assert!(
                load_train_config(None, &[refused.into()]).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn deep_object_reid_sampler_keys() {
        let c = load_train_config(
            None,
            &[
                "sampler.train_sampler=RandomIdentitySamplerV3".into(),
                "sampler.batch_num_instances=2".into(),
                "sampler.epoch_num_instances=6".into(),
                "sampler.fill_instances=true".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            (
                c.sampler.num_instances,
                c.sampler.epoch_num_instances,
                c.sampler.fill_instances
            ),
            (2, 6, true)
        );
        let median = load_train_config(None, &["sampler.epoch_num_instances=-1".into()]).unwrap();
        assert_eq!(median.sampler.epoch_num_instances, 0);
        // The two names of K must agree.
        assert!(
            load_train_config(
                None,
                &[
                    "sampler.batch_num_instances=2".into(),
                    "sampler.num_instances=8".into()
                ]
            )
            .is_err()
        );
    }

    #[test]
    fn combineall_is_a_reid_option() {
        let c = load_train_config(None, &["data.combineall=true".into()]).unwrap();
        assert!(c.data.combineall);
        let classifier = [
            "data.combineall=true".into(),
            "model.type=classification".into(),
        ];
        assert!(load_train_config(None, &classifier).is_err());
    }

    #[test]
    fn lr_finder_keys() {
        assert!(
            load_train_config(None, &[])
                .unwrap()
                .schedule
                .lr_finder
                .is_none()
        );
        let c = load_train_config(
            None,
            &[
                "lr_finder.enable=true".into(),
                "lr_finder.min_lr=0.004".into(),
                "lr_finder.max_lr=0.03".into(),
                "lr_finder.num_epochs=3".into(),
                "lr_finder.smooth_f=0.01".into(),
            ],
        )
        .unwrap();
        let found = c.schedule.lr_finder.unwrap();
        assert_eq!(
            (found.min_lr, found.max_lr, found.epochs, found.smoothing),
            (0.004, 0.03, Some(3), 0.01)
        );
        let searched = load_train_config(
            None,
            &[
                "lr_finder.enable=true".into(),
                "lr_finder.mode=TPE".into(),
                "lr_finder.step=0.002".into(),
                "lr_finder.n_trials=12".into(),
            ],
        )
        .unwrap()
        .schedule
        .lr_finder
        .unwrap();
        assert_eq!(searched.mode, crate::train::config::LrFindMode::Tpe);
        assert_eq!((searched.step, searched.trials), (Some(0.002), 12));
        for refused in ["lr_finder.mode=hyperband", "lr_finder.stop_after=true"] {
            let args = ["lr_finder.enable=true".into(), refused.into()];
            assert!(load_train_config(None, &args).is_err(), "{refused}");
        }
        // deep-object-reid's keys of the modes refused above change nothing; others are errors.
        assert!(load_train_config(None, &["lr_finder.n_trials=3".into()]).is_ok());
        assert!(load_train_config(None, &["lr_finder.trials=3".into()]).is_err());
    }

    #[test]
    fn gradient_clipping_and_moving_average_keys() {
        let plain = load_train_config(None, &[]).unwrap();
        assert_eq!(
            (plain.optimizer.clip_grad, plain.optimizer.ema),
            (0.0, None)
        );
        let c = load_train_config(
            None,
            &["train.clip_grad=2.5".into(), "train.ema.enable=true".into()],
        )
        .unwrap();
        assert_eq!(c.optimizer.clip_grad, 2.5);
        assert_eq!(c.optimizer.ema.unwrap().decay, 0.9999);
        let c = load_train_config(
            None,
            &[
                "train.ema.enable=true".into(),
                "train.ema.ema_decay=0.99".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.optimizer.ema.unwrap().decay, 0.99);
        // A decay without `enable` leaves the average off; unknown keys are refused.
        let off = load_train_config(None, &["train.ema.ema_decay=0.99".into()]).unwrap();
        assert!(off.optimizer.ema.is_none());
        assert!(load_train_config(None, &["train.ema.decay=0.99".into()]).is_err());
    }

    #[test]
    fn sam_center_loss_and_mutual_learning_keys() {
        let c = load_train_config(
            None,
            &[
                "train.optim=sam".into(),
                "train.base_optim=sgd".into(),
                "sam.rho=0.1".into(),
                "loss.center.weight=0.01".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.optimizer.algorithm.name, "sgd");
        let sam = c.optimizer.sam.unwrap();
        assert_eq!((sam.rho, sam.adaptive), (0.1, true));
        assert_eq!(
            (c.loss.reid.center_weight, c.loss.reid.center_alpha),
            (0.01, 0.5)
        );
        assert!(c.loss.mutual_learning.is_none());
        // A sam section without the sam optimizer is a mistake, not silently ignored.
        assert!(load_train_config(None, &["sam.rho=0.1".into()]).is_err());
        assert!(
            load_train_config(None, &["sam.radius=0.1".into(), "train.optim=sam".into()]).is_err()
        );
        let c = load_train_config(None, &["mutual_learning.weight=2".into()]).unwrap();
        let m = c.loss.mutual_learning.unwrap();
        assert_eq!((m.arch.as_str(), m.weight), ("osnet_x0_25", 2.0));
    }

    #[test]
    fn staged_lr_keys() {
        assert!(
            load_train_config(None, &[])
                .unwrap()
                .optimizer
                .staged_lr
                .is_none()
        );
        let c = load_train_config(
            None,
            &[
                "train.staged_lr=true".into(),
                "train.new_layers=[classifier, attention]".into(),
                "train.base_lr_mult=0.2".into(),
            ],
        )
        .unwrap();
        let staged = c.optimizer.staged_lr.unwrap();
        assert_eq!(staged.new_layers, ["classifier", "attention"]);
        assert_eq!(staged.base_lr_mult, 0.2);
        // torchreid's defaults: the classifier at the full rate, the rest at a tenth.
        let c = load_train_config(None, &["train.staged_lr=true".into()]).unwrap();
        let staged = c.optimizer.staged_lr.unwrap();
        assert_eq!(
            (staged.new_layers, staged.base_lr_mult),
            (vec!["classifier".to_string()], 0.1)
        );
    }

    #[test]
    fn a_saved_config_json_reads_back_with_overrides() {
        let c = load_train_config(
            None,
            &["train.max_epoch=7".into(), "loss.name=triplet".into()],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
        assert_eq!(load_train_config(Some(&path), &[]).unwrap(), c);
        let c2 = load_train_config(Some(&path), &["schedule.max_epoch=3".into()]).unwrap();
        assert_eq!(c2.schedule.max_epoch, 3);
        assert_eq!(c2.loss.reid.triplet_weight, 1.0);
        // A partial file takes every missing field from the sections' defaults.
        std::fs::write(&path, r#"{"sampler": {"batch_size": 12}}"#).unwrap();
        let partial = load_train_config(Some(&path), &[]).unwrap();
        assert_eq!(partial.sampler.batch_size, 12);
        assert_eq!(
            TrainConfig {
                sampler: SamplerSection {
                    batch_size: 12,
                    ..Default::default()
                },
                ..Default::default()
            },
            partial
        );
        // torchreid's key names belong to YAML files; here they are typos.
        let err = load_train_config(Some(&path), &["train.max_epoch=3".into()]).unwrap_err();
        assert!(err.to_string().contains("train"), "{err}");
    }

    #[test]
    fn yaml_defaults_are_the_sections_defaults() {
        assert_eq!(
            load_train_config(None, &[]).unwrap(),
            TrainConfig::default()
        );
    }
}
