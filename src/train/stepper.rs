//! The `Stepper`: the model under training with everything one step updates (its optimizer,
//! deep mutual learning's peer, the center loss's centers, its part in a distributed run), and
//! the recipe that decides how a step trains — one model on one device, two models learning from
//! each other, one model over several devices or processes, or a multi-label classifier. The training loop calls `step` only.

use burn::module::ParamId;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::tensor::{Int, Tensor, TensorData};

use super::center::CenterLoss;
use super::config::TrainConfig;
use super::distributed::Team;
use super::ema::Ema;
use super::loss_scale::{LossScaler, mixed_step};
use super::mixing::Mix;
use super::multilabel_step::multilabel_step;
use super::optim::Optimizer;
use super::parallel::{Batch, data_parallel_gradients, data_parallel_step};
use super::setup::Setup;
use super::step::{Learner, StepExtras, StepStats, Teacher, mutual_step, train_step_with};
use crate::data::rng::Rng;
use crate::device::Device;
use crate::models::{ReidModel, Task};

/// The second model of deep mutual learning, with its optimizer.
pub(crate) struct Peer {
    /// The peer model.
    pub model: ReidModel,
    /// Its optimizer.
    pub optimizer: Optimizer,
}

/// The draws of one of a step's random techniques (`stream`) for the batch of these
/// training-set `indices`: a function of the seed and the batch alone, so that a resumed run
/// draws for its batches as the uninterrupted run.
fn batch_rng(seed: u64, stream: u64, indices: &[usize]) -> Rng {
    let batch = indices.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &i| {
        (h ^ i as u64).wrapping_mul(0x0100_0000_01b3)
    });
    Rng::derive(seed, &[stream, batch])
}

/// Batch mixing's stream of [`batch_rng`].
const MIX_STREAM: u64 = 0x4d49_5855;
/// Representation self-challenging's stream of [`batch_rng`].
const RSC_STREAM: u64 = 0x5253_4321;

/// How each step trains.
enum Recipe {
    /// One model on one device (with SAM and the center loss when configured).
    Single,
    /// Deep mutual learning: the model and its peer learn from each other.
    Mutual {
        /// Weight of the mutual KL terms.
        weight: f32,
    },
    /// One model, the batch split over the training device and these replicas.
    Parallel {
        /// Autodiff devices of the other replicas.
        replicas: Vec<Device>,
        /// Images kept together in one chunk (an identity's instances).
        group: usize,
    },
    /// One rank of a distributed run: this rank's chunk of the batch over the training device
    /// and these replicas, the gradients then summed over the ranks.
    Distributed {
        /// Autodiff devices of the other local replicas.
        replicas: Vec<Device>,
        /// Images kept together in one chunk (an identity's instances).
        group: usize,
    },
    /// Multi-label classification: multi-hot targets from each image's labels.
    Multilabel {
        /// Each training image's labels.
        labels: Vec<Vec<usize>>,
        /// Number of classes.
        classes: usize,
    },
}

/// One batch and how to learn from it.
pub(crate) struct Lesson<'a> {
    /// Images `[B, 3, H, W]` on the training device.
    pub images: Tensor<4>,
    /// Class (identity) of each image.
    pub labels: Tensor<1, Int>,
    /// The images' positions in the training set.
    pub indices: &'a [usize],
    /// Learning rates of this step.
    pub rates: ModuleLearningRate,
    /// Only these parameters learn (the open layers of `fixbase_epoch`); `None`: all.
    pub only: Option<&'a [ParamId]>,
}

/// The model under training and all that one step updates.
pub(crate) struct Stepper {
    /// The model (on the training device).
    pub model: ReidModel,
    /// Its optimizer.
    pub optimizer: Optimizer,
    /// Deep mutual learning's second model.
    pub peer: Option<Peer>,
    /// The center loss's class centers.
    pub centers: Option<CenterLoss>,
    /// This process's part in a distributed run.
    pub team: Option<Team>,
    /// The moving average of the model's weights, updated after every step.
    pub ema: Option<Ema>,
    /// The teacher the model is distilled from (one model on one device).
    teacher: Option<Teacher>,
    /// The loss scale of float16 training (`None` otherwise).
    pub scaler: Option<LossScaler>,
    recipe: Recipe,
}

impl Stepper {
    /// The stepper of `config`'s recipe (without a moving average: [`Stepper::with_ema`]).
    pub fn new(
        model: ReidModel,
        optimizer: Optimizer,
        peer: Option<Peer>,
        centers: Option<CenterLoss>,
        team: Option<Team>,
        config: &TrainConfig,
        s: &Setup,
    ) -> Self {
        let group = s.group();
        let recipe = if team.is_some() {
            Recipe::Distributed {
                replicas: s.replicas.clone(),
                group,
            }
        } else if config.model.task == Task::Multilabel {
            Recipe::Multilabel {
                labels: s.train_labels.clone(),
                classes: s.classes,
            }
        } else if let (Some(mutual), Some(_)) = (&config.loss.mutual_learning, &peer) {
            Recipe::Mutual {
                weight: mutual.weight,
            }
        } else if !s.replicas.is_empty() {
            Recipe::Parallel {
                replicas: s.replicas.clone(),
                group,
            }
        } else {
            Recipe::Single
        };
        Self {
            model,
            optimizer,
            peer,
            centers,
            team,
            ema: None,
            teacher: None,
            scaler: config
                .optimizer
                .mix_precision
                .filter(|p| p.needs_loss_scaling())
                .map(|_| LossScaler::default()),
            recipe,
        }
    }

    /// The stepper going on with the loss scale a resumed run saved, when it scales its loss
    /// (float16) now; a run resumed without float16 drops it.
    pub fn with_scaler(self, saved: Option<LossScaler>) -> Self {
        let scaler = self.scaler.map(|fresh| saved.unwrap_or(fresh));
        Self { scaler, ..self }
    }

    /// The stepper updating `ema` after every step.
    pub fn with_ema(self, ema: Option<Ema>) -> Self {
        Self { ema, ..self }
    }

    /// The stepper distilling from `teacher` (`train::setup` allows it only for one model on
    /// one device).
    pub fn with_teacher(self, teacher: Option<Teacher>) -> Self {
        Self { teacher, ..self }
    }

    /// One optimization step on `lesson`.
    pub fn step(self, lesson: Lesson, config: &TrainConfig) -> (Self, StepStats) {
        let Self {
            model,
            mut optimizer,
            mut peer,
            mut centers,
            mut team,
            mut ema,
            teacher,
            mut scaler,
            recipe,
        } = self;
        let Lesson {
            images,
            labels,
            indices,
            rates,
            only,
        } = lesson;
        let mix = config.loss.mixing.as_ref().and_then(|mixing| {
            let [batch, _, height, width] = images.dims();
            Mix::draw(
                mixing,
                batch,
                height,
                width,
                &mut batch_rng(config.seed, MIX_STREAM, indices),
            )
        });
        let challenge = config.model.self_challenging.map(|rsc| {
            rsc.draw(
                indices.len(),
                &mut batch_rng(config.seed, RSC_STREAM, indices),
            )
        });
        // deep-object-reid's fixbase opens the same layers of every model it trains.
        let peer_only = only.and(peer.as_ref()).map(|p| {
            super::layer_groups::open_layer_params(&p.model, &config.schedule.open_layers)
        });
        let extras = StepExtras {
            only,
            peer_only: peer_only.as_deref(),
            sam: config.optimizer.sam.as_ref(),
            centers: centers.as_mut(),
            teacher: teacher.as_ref(),
            mix: mix.as_ref(),
            challenge: challenge.as_ref(),
            copies: Some((config.data.packages, config.loss.consistency_weight)),
        };
        let run = || match &recipe {
            Recipe::Multilabel { labels, classes } => {
                let targets = multi_hot(labels, indices, *classes, &images.device());
                multilabel_step(
                    model,
                    &mut optimizer,
                    rates,
                    images,
                    targets,
                    &config.loss.multilabel,
                    only,
                )
            }
            Recipe::Mutual { weight } => {
                let mut p = peer.take().expect("mutual learning has a peer");
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
                    rates,
                    images,
                    labels,
                    &config.loss.reid,
                    *weight,
                    extras,
                );
                peer = Some(Peer {
                    model: next_peer,
                    optimizer: p.optimizer,
                });
                (next, stats)
            }
            Recipe::Parallel { replicas, group } => data_parallel_step(
                model,
                &mut optimizer,
                rates,
                images,
                labels,
                &config.loss.reid,
                only,
                replicas,
                *group,
            ),
            Recipe::Distributed { replicas, group } => {
                let team = team.as_mut().expect("a distributed recipe has a team");
                let batch = Batch {
                    images,
                    targets: labels,
                    total: config.sampler.batch_size,
                };
                let losses = &config.loss.reid;
                let (grads, stats) =
                    data_parallel_gradients(&model, batch, losses, only, replicas, *group);
                let (grads, stats) = team
                    .reduce(&model, grads, stats)
                    .unwrap_or_else(|e| team.fail(&e));
                (optimizer.step(rates, model, grads), stats)
            }
            Recipe::Single => train_step_with(
                model,
                &mut optimizer,
                rates,
                images,
                labels,
                &config.loss.reid,
                extras,
            ),
        };
        let (model, stats) = mixed_step(config.optimizer.mix_precision, scaler.as_mut(), run);
        if let Some(ema) = &mut ema {
            ema.update(&model);
        }
        let next = Self {
            model,
            optimizer,
            peer,
            centers,
            team,
            ema,
            teacher,
            scaler,
            recipe,
        };
        (next, stats)
    }
}

/// `[B, C]` multi-hot targets of the training images `indices`.
fn multi_hot(
    labels: &[Vec<usize>],
    indices: &[usize],
    classes: usize,
    device: &Device,
) -> Tensor<2> {
    let mut hot = vec![0f32; indices.len() * classes];
    for (row, &i) in indices.iter().enumerate() {
        for &c in &labels[i] {
            hot[row * classes + c] = 1.0;
        }
    }
    Tensor::from_data(TensorData::new(hot, [indices.len(), classes]), device)
}
