//! A run's setup before its first step: the options checked, the devices, the datasets, the
//! sampler and transforms, and the model a fresh run starts from.

use burn::module::Module;
use burn::tensor::{Int, Tensor};

use super::config::{Distributed, MutualConfig, TrainConfig};
use super::loader::{packaged_batch, tracklet_batch};
use super::multilabel_step::MultilabelLoss;
use super::step::Teacher;
use crate::data::classification::{ClassificationDataset, load_classification};
use crate::data::sampler::Sampler;
use crate::data::transforms::Augment;
use crate::data::video::sampling::TrackletSampling;
use crate::data::video::{Tracklet, VIDEO_DATASETS, VideoDataset, load_video_dataset};
use crate::data::{ReidDataset, Sample, combine_train, junk_pids, load_dataset_split};
use crate::error::{Error, Result};
use crate::eval::Metric;
use crate::models::{Arch, ReidModel, Task};
use crate::preprocess::Preprocessing;

/// The seed offset of deep mutual learning's second model.
const PEER_SEED: u64 = 0x5045_4552;

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
    /// Video re-id: the training tracklets (`train_set` holds one sample per tracklet, its
    /// first frame, for the samplers); empty for image training.
    pub tracklets: Vec<Tracklet>,
    /// Video re-id: the evaluation sets.
    pub video_targets: Vec<VideoDataset>,
    /// Augmented copies of each training image in a batch.
    pub packages: usize,
}

impl Setup {
    /// The training batch of the training-set `indices`: their images, or — video re-id —
    /// the frames `video` picks from their tracklets.
    pub fn batch(
        &self,
        indices: &[usize],
        video: &TrackletSampling,
        seed: u64,
        epoch: usize,
    ) -> Result<(Tensor<4>, Tensor<1, Int>)> {
        let (pre, augment, device) = (&self.preprocessing, &self.augment, &self.train_device);
        if self.tracklets.is_empty() {
            let (samples, copies) = (&self.train_set, self.packages);
            packaged_batch(samples, indices, copies, pre, augment, seed, epoch, device)
        } else {
            let t = &self.tracklets;
            tracklet_batch(t, indices, video, pre, augment, seed, epoch, device)
        }
    }

    /// Images a batch keeps together when it is cut into chunks for devices or ranks: an
    /// identity's instances in P × K batches, else 1.
    pub fn group(&self) -> usize {
        match self.sampler {
            Sampler::RandomIdentity { instances } | Sampler::RandomIdentityV3 { instances, .. } => {
                instances
            }
            _ => 1,
        }
    }
}

/// The techniques `config` turns on beyond one model on one device learning from the
/// identity loss (softmax or AM-softmax, the triplet loss beside it), by name.
fn beyond_one_model(config: &TrainConfig, split: bool) -> Vec<&'static str> {
    let losses = &config.loss.reid;
    [
        (split, "several devices or processes"),
        (config.loss.mutual_learning.is_some(), "mutual learning"),
        (config.loss.distillation.is_some(), "distillation"),
        (config.loss.mixing.is_some(), "batch mixing"),
        (config.model.self_challenging.is_some(), "self-challenging"),
        (config.data.packages > 1, "copies of each image"),
        (
            config.model.task == Task::Multilabel,
            "multi-label training",
        ),
        (losses.center_weight > 0.0, "the center loss"),
        (losses.softmax_weight <= 0.0, "no identity loss"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// Refuses `technique` (the `name` [`beyond_one_model`] gives it) beside anything else
/// [`beyond_one_model`] lists.
fn alone(technique: &str, name: &str, config: &TrainConfig, split: bool) -> Result<()> {
    let others: Vec<&str> = beyond_one_model(config, split)
        .into_iter()
        .filter(|&other| other != name)
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidInput(format!(
        "{technique} trains one model on one device with the identity loss (softmax or \
         AM-softmax, the triplet loss beside it); not with {}",
        others.join(", ")
    )))
}

/// Checks `config` and reads its datasets.
pub(crate) fn setup(config: &TrainConfig) -> Result<Setup> {
    let arch: Arch = config.model.arch.parse()?;
    let devices = crate::device::parse_devices(&config.device)?;
    let device = devices[0].clone();
    let train_device = device.clone().autodiff();
    let replicas: Vec<_> = devices[1..].iter().map(|d| d.clone().autodiff()).collect();
    if let Some(precision) = config.optimizer.mix_precision {
        if devices.iter().any(crate::device::is_cpu) {
            return Err(Error::InvalidInput(format!(
                "mix_precision ({precision}): half precision trains on GPU devices (cuda, \
                 wgpu); on the CPU (`{}`) Burn's flex computes half precision slower than \
                 float32: train in float32 there (mix_precision off)",
                config.device
            )));
        }
        if !devices.iter().all(|d| d.supports_dtype(precision.dtype())) {
            return Err(Error::InvalidInput(format!(
                "mix_precision ({precision}): a device of `{}` does not compute in {precision} \
                 (its driver or adapter lacks the type); try the other half type (f16, bf16) \
                 or mix_precision off",
                config.device
            )));
        }
    }
    // Several devices or processes split each batch: the techniques below need it whole.
    let split = !replicas.is_empty() || config.distributed != Distributed::None;
    if split
        && (config.optimizer.sam.is_some()
            || config.loss.mutual_learning.is_some()
            || config.loss.reid.center_weight > 0.0
            || config.loss.distillation.is_some())
    {
        return Err(Error::InvalidInput(
            "SAM, mutual learning, the center loss and distillation run on one device; \
             several devices or processes train with the other losses"
                .into(),
        ));
    }
    if let Some(distill) = &config.loss.distillation {
        let ok = distill.temperature.is_finite()
            && distill.temperature > 0.0
            && distill.weight.is_finite()
            && distill.weight >= 0.0
            && distill.feature_weight.is_finite()
            && distill.feature_weight >= 0.0;
        if !ok || distill.teacher.as_os_str().is_empty() {
            return Err(Error::InvalidInput(format!(
                "distillation: needs a teacher, a temperature > 0 and weights >= 0 ({distill:?})"
            )));
        }
        if config.loss.mutual_learning.is_some() || config.model.task == Task::Multilabel {
            return Err(Error::InvalidInput(
                "distillation teaches one single-label model: not with mutual learning or \
                 multi-label training"
                    .into(),
            ));
        }
    }
    let weight = config.loss.consistency_weight;
    if config.data.packages == 0
        || (weight > 0.0 && config.data.packages < 2)
        || !weight.is_finite()
        || weight < 0.0
    {
        return Err(Error::InvalidInput(format!(
            "data.packages ({}) must be at least 1, and the consistency of copies (weight {}) \
             needs several: mixing_loss needs data.num_sampled_packages > 1",
            config.data.packages, config.loss.consistency_weight
        )));
    }
    if config.data.packages > 1 {
        alone(
            "data.packages: copies of each image",
            "copies of each image",
            config,
            split,
        )?;
    }
    if let Some(rsc) = &config.model.self_challenging {
        rsc.check()?;
        alone(
            "model.self_challenging_cfg: self-challenging",
            "self-challenging",
            config,
            split,
        )?;
    }
    if let Some(mixing) = &config.loss.mixing {
        mixing.validate()?;
        let losses = &config.loss.reid;
        if split
            || config.loss.mutual_learning.is_some()
            || config.model.task == Task::Multilabel
            || losses.softmax_weight <= 0.0
            || losses.triplet_weight > 0.0
            || losses.center_weight > 0.0
        {
            return Err(Error::InvalidInput(
                "loss.mixing: batch mixing trains one model on one device with the identity \
                 loss (softmax or AM-softmax) alone: not with the triplet or center loss, \
                 mutual learning, multi-label training or several devices or processes"
                    .into(),
            ));
        }
    }
    let augment = match &config.data.transform_sections {
        Some(sections) => Augment::from_sections(sections)?,
        None => Augment::from_names(&config.data.transforms)?,
    };
    let sampler = match config.sampler.name.parse()? {
        Sampler::RandomIdentity { .. } => Sampler::RandomIdentity {
            instances: config.sampler.num_instances,
        },
        Sampler::RandomDomain { .. } => Sampler::RandomDomain {
            domains: config.sampler.num_cams,
        },
        Sampler::RandomDataset { .. } => Sampler::RandomDataset {
            datasets: config.sampler.num_datasets,
        },
        Sampler::RandomIdentityV2 { .. } => Sampler::RandomIdentityV2 {
            instances: config.sampler.num_instances,
            fill: config.sampler.fill_instances,
        },
        Sampler::RandomIdentityV3 { .. } => Sampler::RandomIdentityV3 {
            instances: config.sampler.num_instances,
            per_epoch: config.sampler.epoch_num_instances,
        },
        other => other,
    };
    let metric: Metric = config.eval.dist_metric.parse()?;
    if config.optimizer.sam.is_some() && config.loss.mutual_learning.is_some() {
        return Err(Error::InvalidInput(
            "SAM and mutual learning cannot be combined".into(),
        ));
    }
    if let Some(staged) = &config.optimizer.staged_lr {
        if config.loss.mutual_learning.is_some() {
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
    if let Some(sam) = &config.optimizer.sam
        && !(sam.rho > 0.0 && sam.rho.is_finite())
    {
        return Err(Error::InvalidInput(format!(
            "sam.rho {} must be positive",
            sam.rho
        )));
    }
    if let Some(mutual) = &config.loss.mutual_learning {
        mutual.arch.parse::<Arch>()?;
    }
    if config.loss.reid.center_weight < 0.0 || !(0.0..=1.0).contains(&config.loss.reid.center_alpha)
    {
        return Err(Error::InvalidInput(
            "the center loss weight must be ≥ 0 and its alpha within [0, 1]".into(),
        ));
    }
    if config.sampler.batch_size == 0 || config.schedule.max_epoch == 0 {
        return Err(Error::InvalidInput(
            "batch_size and max_epoch must be at least 1".into(),
        ));
    }
    let preprocessing = config.data.test_preprocessing();
    let video = |names: &[String]| {
        names
            .iter()
            .filter(|n| VIDEO_DATASETS.contains(&n.as_str()))
            .count()
    };
    let (video_sources, video_targets) = (video(&config.data.sources), video(&config.data.targets));
    let data = if video_sources > 0 || video_targets > 0 {
        if video_sources != config.data.sources.len()
            || video_targets != config.data.targets.len()
            || config.model.task != Task::Reid
        {
            return Err(Error::InvalidInput(
                "video re-id trains on video datasets and evaluates on video datasets \
                 (mars, ilidsvid, prid2011, dukemtmcvidreid): not mixed with image datasets"
                    .into(),
            ));
        }
        let mut others: Vec<&str> = beyond_one_model(config, split)
            .into_iter()
            .filter(|&other| other != "no identity loss")
            .collect();
        others.extend(config.data.combineall.then_some("combineall"));
        others.extend(
            config
                .schedule
                .lr_finder
                .is_some()
                .then_some("the LR finder"),
        );
        if !others.is_empty() {
            return Err(Error::InvalidInput(format!(
                "video re-id trains one model on one device with the softmax, AM-softmax and \
                 triplet losses; not with {}",
                others.join(", ")
            )));
        }
        config.video.check()?;
        video_data(config)?
    } else if config.model.task == Task::Reid {
        reid_data(config)?
    } else {
        if split
            || config.optimizer.sam.is_some()
            || config.loss.mutual_learning.is_some()
            || config.loss.reid.center_weight > 0.0
            || config.loss.reid.triplet_weight > 0.0
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
        tracklets: data.tracklets,
        video_targets: data.video_targets,
        packages: config.data.packages,
    })
}

/// The training images and evaluation sets of a run.
#[derive(Default)]
struct TrainData {
    train_set: Vec<Sample>,
    targets: Vec<ReidDataset>,
    classes: usize,
    class_targets: Vec<ClassificationDataset>,
    train_labels: Vec<Vec<usize>>,
    class_names: Vec<String>,
    tracklets: Vec<Tracklet>,
    video_targets: Vec<VideoDataset>,
}

/// Re-id: the sources' training identities (kept apart) and the targets' query / gallery.
fn reid_data(config: &TrainConfig) -> Result<TrainData> {
    let sources = config
        .data
        .sources
        .iter()
        .map(|name| {
            let mut dataset = load_dataset_split(name, &config.data.root, config.data.split_id)?;
            if config.data.combineall {
                dataset.combine_all(junk_pids(name));
            }
            Ok(dataset)
        })
        .collect::<Result<Vec<_>>>()?;
    let train_set: Vec<Sample> = combine_train(&sources);
    let targets: Vec<ReidDataset> = config
        .data
        .targets
        .iter()
        .map(|name| load_dataset_split(name, &config.data.root, config.data.split_id))
        .collect::<Result<_>>()?;
    let classes = train_set.iter().map(|s| s.pid + 1).max().unwrap_or(0) as usize;
    Ok(TrainData {
        train_set,
        targets,
        classes,
        ..Default::default()
    })
}

/// Video re-id: the sources' training tracklets (identities and cameras kept apart, as
/// `combine_train` does for images) and the targets' query / gallery tracklets.
fn video_data(config: &TrainConfig) -> Result<TrainData> {
    let load = |name: &String| load_video_dataset(name, &config.data.root, config.data.split_id);
    let sources = config
        .data
        .sources
        .iter()
        .map(load)
        .collect::<Result<Vec<_>>>()?;
    let mut tracklets = Vec::new();
    let mut train_set = Vec::new();
    let (mut pid_offset, mut camera_offset) = (0i64, 0i32);
    for (index, source) in sources.iter().enumerate() {
        for t in &source.train {
            let t = Tracklet {
                frames: t.frames.clone(),
                pid: t.pid + pid_offset,
                camera: t.camera + camera_offset,
            };
            train_set.push(Sample {
                dataset: index,
                ..t.frame(0)
            });
            tracklets.push(t);
        }
        pid_offset += source.train.iter().map(|t| t.pid + 1).max().unwrap_or(0);
        camera_offset += source.train.iter().map(|t| t.camera + 1).max().unwrap_or(0);
    }
    let video_targets = config
        .data
        .targets
        .iter()
        .map(load)
        .collect::<Result<_>>()?;
    Ok(TrainData {
        classes: pid_offset as usize,
        train_set,
        tracklets,
        video_targets,
        ..Default::default()
    })
}

/// Classification: one source's training split and the targets' evaluation splits, which
/// must name the same classes.
fn classification_data(config: &TrainConfig, sampler: Sampler) -> Result<TrainData> {
    let [source] = config.data.sources.as_slice() else {
        return Err(Error::InvalidInput(
            "classification trains on exactly one source".into(),
        ));
    };
    let train = load_classification(source, &config.data.root, true, config.data.split_id)?;
    if (config.model.task == Task::Multilabel) != train.multilabel {
        return Err(Error::InvalidInput(format!(
            "{source} is a {} dataset but model.type is {}",
            if train.multilabel {
                "multi-label"
            } else {
                "single-label"
            },
            config.model.task.name()
        )));
    }
    if train.multilabel && !matches!(sampler, Sampler::Random | Sampler::Sequential) {
        return Err(Error::InvalidInput(
            "multi-label training samples images at random (RandomSampler)".into(),
        ));
    }
    let class_targets = config
        .data
        .targets
        .iter()
        .map(|name| {
            let set = load_classification(name, &config.data.root, false, config.data.split_id)?;
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
            dataset: 0,
        })
        .collect();
    Ok(TrainData {
        train_set,
        targets: Vec::new(),
        classes: train.classes.len(),
        class_targets,
        train_labels: train.samples.into_iter().map(|(_, l)| l).collect(),
        class_names: train.classes,
        ..Default::default()
    })
}

/// `config` with the cosine scale its training set's classes give, when it comes from them
/// (deep-object-reid's `compute_s`): what a run (and its range test) trains, saves and reports.
pub(crate) fn scaled_for_classes(config: &TrainConfig, s: &Setup) -> Option<TrainConfig> {
    let loss = config.loss.scaled_for(s.classes)?;
    Some(TrainConfig {
        loss,
        ..config.clone()
    })
}

/// The model a fresh run starts from: the configured weights (with a new classifier when the
/// number of identities differs) or a seeded random initialization.
pub(crate) fn initial_model(config: &TrainConfig, s: &Setup) -> Result<ReidModel> {
    crate::models::seeding::seeded(&s.device, config.seed, || {
        let model = seeded_model(config, s)?;
        // A loaded model's parameters that the file did not hold are drawn here, under the seed.
        crate::models::seeding::draw(&model);
        Ok(model)
    })
}

fn seeded_model(config: &TrainConfig, s: &Setup) -> Result<ReidModel> {
    let model = match &config.model.weights {
        Some(path) => {
            let start = crate::weights::load_any(Some(s.arch), path, &s.device)?;
            if start.num_classes() == s.classes {
                start
            } else {
                start.with_classifier(s.classes, &s.device)
            }
        }
        None if config.model.pretrained => imagenet_start(s)?,
        None => ReidModel::new(s.arch, s.classes, &s.device),
    };
    model.check_input_size(config.data.height, config.data.width)?;
    let model = match config.model.attention_head {
        Some(a) => model.with_attention_head(s.classes, a.dim, a.heads, &s.device),
        None => model,
    };
    let mut model = model.with_task(config.model.task, s.class_names.clone());
    model.trained_input = Some((config.data.height, config.data.width));
    // A classifier trained on cosines is read on cosines (scaled as in training).
    model.cosine_scale = match (config.model.task, config.loss.multilabel) {
        (Task::Reid, _) => None,
        (Task::Multilabel, MultilabelLoss::AmBinary { scale, .. }) => Some(scale),
        (Task::Classification, _) if config.loss.reid.am_margin > 0.0 => {
            Some(config.loss.reid.am_scale)
        }
        _ => None,
    };
    Ok(model)
}

/// A fresh model whose backbone holds the zoo's ImageNet weights for its architecture
/// (`model.pretrained`), from the cache or downloaded into it; the classifier stays drawn.
fn imagenet_start(s: &Setup) -> Result<ReidModel> {
    let entry = crate::zoo::imagenet(s.arch).ok_or_else(|| {
        Error::InvalidInput(format!(
            "model.pretrained: the zoo has no ImageNet weights for {} (`reid zoo` lists them); \
             set model.load_weights to a file instead",
            s.arch
        ))
    })?;
    let zoo = crate::zoo::Zoo::from_env();
    let path = zoo.fetch(entry, &mut |_| {})?;
    let dict = crate::weights::StateDict::read(&path)?;
    let (model, report) =
        crate::weights::load_backbone(ReidModel::new(s.arch, s.classes, &s.device), &dict)?;
    log::info!(
        "{}: {} ImageNet tensors loaded from {}; not loaded: {}",
        s.arch,
        report.loaded,
        path.display(),
        report.skipped.join(", ")
    );
    Ok(model)
}

/// The teacher of `config.loss.distillation`, on the training device in inference mode with
/// constant parameters; an error when it classifies another number of identities than the
/// training set has.
pub(crate) fn teacher(config: &TrainConfig, s: &Setup) -> Result<Option<Teacher>> {
    let Some(distill) = &config.loss.distillation else {
        return Ok(None);
    };
    let arch = distill.arch.as_deref().map(str::parse).transpose()?;
    let model = crate::weights::load_any(arch, &distill.teacher, &s.device)?;
    if model.num_classes() != s.classes {
        return Err(Error::InvalidInput(format!(
            "distillation: the teacher {} classifies {} identities, the training set has {}",
            distill.teacher.display(),
            model.num_classes(),
            s.classes
        )));
    }
    Ok(Some(Teacher {
        model: model.valid().fork(&s.train_device).no_grad(),
        weight: distill.weight,
        temperature: distill.temperature,
        feature_weight: distill.feature_weight,
    }))
}

/// Deep mutual learning's second model for a fresh run, seeded apart from the first.
pub(crate) fn initial_peer(
    config: &TrainConfig,
    s: &Setup,
    mutual: &MutualConfig,
) -> Result<ReidModel> {
    let arch: Arch = mutual.arch.parse()?;
    if arch == s.arch {
        let peer_config = TrainConfig {
            seed: config.seed ^ PEER_SEED,
            ..config.clone()
        };
        return initial_model(&peer_config, s);
    }
    let model = crate::models::seeding::seeded(&s.device, config.seed ^ PEER_SEED, || {
        ReidModel::new(arch, s.classes, &s.device)
    });
    model.check_input_size(config.data.height, config.data.width)?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::StagedLr;

    #[test]
    fn half_precision_is_refused_on_the_cpu() {
        for device in ["flex", "cpu"] {
            let config = TrainConfig {
                optimizer: crate::train::OptimizerSection {
                    mix_precision: Some(crate::models::precision::HalfPrecision::Bf16),
                    ..Default::default()
                },
                device: device.into(),
                ..Default::default()
            };
            match setup(&config) {
                Err(Error::InvalidInput(m)) => {
                    assert!(
                        m.contains("mix_precision (bf16)") && m.contains("GPU"),
                        "{m}"
                    )
                }
                other => panic!("{:?}", other.err()),
            }
        }
    }

    #[test]
    fn self_challenging_is_refused_where_it_cannot_run() {
        let rsc = |drop_p: f32, center: f32| TrainConfig {
            model: crate::train::ModelSection {
                self_challenging: Some(crate::train::rsc::RscConfig {
                    drop_p,
                    drop_batch_p: 0.33,
                }),
                ..Default::default()
            },
            loss: crate::train::LossSection {
                reid: crate::train::LossConfig {
                    center_weight: center,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        for refused in [rsc(1.0, 0.0), rsc(0.33, 0.005)] {
            match setup(&refused) {
                Err(Error::InvalidInput(m)) => assert!(m.contains("self_challenging"), "{m}"),
                other => panic!("{:?}", other.err()),
            }
        }
    }

    #[test]
    fn deep_object_reid_sections_carry_test_time_crop_and_grey() {
        let mut sections = crate::data::transform_sections::TransformSections::default();
        sections.center_crop.enable = true;
        sections.center_crop.margin = 4;
        sections.force_gray_scale.enable = true;
        let mut c = TrainConfig::default();
        c.data.transform_sections = Some(sections);
        let p = c.data.test_preprocessing();
        assert_eq!((p.crop_margin, p.grayscale), (4, true));
        let plain = TrainConfig::default().data.test_preprocessing();
        assert_eq!((plain.crop_margin, plain.grayscale), (0, false));
        assert_eq!(plain, Preprocessing::torchreid(256, 128));
    }

    #[test]
    fn staged_rates_need_layers_and_exclude_mutual_learning() {
        let staged = StagedLr {
            new_layers: vec!["classifier".into()],
            base_lr_mult: 0.1,
        };
        let config = |staged: StagedLr, mutual: bool| TrainConfig {
            loss: crate::train::LossSection {
                mutual_learning: mutual.then(|| MutualConfig {
                    arch: "osnet_x0_25".into(),
                    weight: 1.0,
                }),
                ..Default::default()
            },
            optimizer: crate::train::OptimizerSection {
                staged_lr: Some(staged),
                ..Default::default()
            },
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

    /// Distillation needs a teacher and a positive temperature, and teaches one single-label
    /// model on one device.
    #[test]
    fn distillation_settings_are_checked() {
        let config =
            |distill: crate::train::DistillConfig, mutual: bool, device: &str| TrainConfig {
                loss: crate::train::LossSection {
                    distillation: Some(distill),
                    mutual_learning: mutual.then(|| MutualConfig {
                        arch: "osnet_x0_25".into(),
                        weight: 1.0,
                    }),
                    ..Default::default()
                },
                device: device.into(),
                ..Default::default()
            };
        let good = crate::train::DistillConfig {
            teacher: "teacher.bpk".into(),
            ..Default::default()
        };
        let refused = |c: TrainConfig| match setup(&c) {
            Err(Error::InvalidInput(message)) => message.contains("distillation"),
            _ => false,
        };
        let no_teacher = crate::train::DistillConfig::default();
        let cold = crate::train::DistillConfig {
            temperature: 0.0,
            ..good.clone()
        };
        assert!(refused(config(no_teacher, false, "flex")));
        assert!(refused(config(cold, false, "flex")));
        let negative = crate::train::DistillConfig {
            feature_weight: -1.0,
            ..good.clone()
        };
        assert!(refused(config(negative, false, "flex")));
        assert!(refused(config(good.clone(), true, "flex")));
        assert!(refused(config(good, false, "flex,flex")));
    }

    /// `data.combineall` trains each source's query and gallery identities too: a synthetic
    /// set's 6 training identities become 12 classes, its distractors (Market's 0) left out.
    /// (And `sampler.num_cams` reaches the camera-balanced sampler.)
    #[test]
    fn combineall_trains_the_test_identities_too() {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::data::SynthOptions {
            ids: 12,
            cameras: 3,
            distractors: 4,
            height: 32,
            width: 16,
            ..Default::default()
        };
        crate::data::synthesize(&dir.path().join("market1501"), &options).unwrap();
        let config = |combineall| TrainConfig {
            data: crate::train::DataSection {
                root: dir.path().to_path_buf(),
                combineall,
                ..Default::default()
            },
            ..Default::default()
        };
        let plain = setup(&config(false)).unwrap();
        let all = setup(&config(true)).unwrap();
        // The camera-balanced sampler takes its cameras per batch from the sampler section.
        let mut domains = config(false);
        domains.sampler.name = "RandomDomainSampler".into();
        domains.sampler.num_cams = 2;
        let sampler = setup(&domains).unwrap().sampler;
        assert_eq!(sampler, Sampler::RandomDomain { domains: 2 });
        assert_eq!((plain.classes, all.classes), (6, 12));
        let test = &plain.targets[0];
        let junk = test.gallery.iter().filter(|s| s.pid == 0).count();
        assert!(junk > 0);
        assert_eq!(
            all.train_set.len(),
            plain.train_set.len() + test.query.len() + test.gallery.len() - junk
        );
    }
}
