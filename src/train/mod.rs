//! Training on Burn: losses, optimizers, learning-rate schedules, batches, evaluation and the
//! training loop with checkpoints and resumption.

pub mod center;
mod checkpoint;
pub mod classify_eval;
pub mod config;
pub mod distributed;
pub mod early_stop;
pub mod ema;
pub mod engine;
pub mod evaluate;
mod flat;
pub mod history;
mod layer_groups;
pub mod loader;
pub mod loss;
pub mod loss_scale;
pub mod lr_find;
pub mod lr_search;
pub mod mixing;
pub mod multilabel_loss;
pub mod multilabel_step;
pub mod optim;
pub mod parallel;
pub mod radam;
pub mod rsc;
pub mod sam;
pub mod schedule;
pub(crate) mod setup;
pub mod step;
mod stepper;
pub mod tensorboard;

pub use config::{
    AttentionConfig, DataSection, DistillConfig, Distributed, EvalSection, LossSection,
    ModelSection, MutualConfig, OptimizerSection, SamplerSection, ScheduleSection, StagedLr,
    TrainConfig, scale_for_classes,
};
pub use ema::EmaConfig;
pub use engine::{Event, TrainReport, train};
pub use history::{EpochLog, EvalLog};
pub use mixing::{MixKind, MixingConfig};
pub use sam::SamConfig;
pub use step::{LossConfig, StepStats, train_step};
