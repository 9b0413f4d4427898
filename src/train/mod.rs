//! Training on Burn: losses, optimizers, learning-rate schedules, batches, evaluation and the
//! training loop with checkpoints and resumption.

pub mod center;
pub mod classify_eval;
pub mod engine;
pub mod evaluate;
pub mod finetune;
pub mod loader;
pub mod loss;
pub mod lr_find;
pub mod multilabel_loss;
pub mod multilabel_step;
pub mod optim;
pub mod parallel;
pub mod radam;
pub mod sam;
pub mod schedule;
pub mod step;
pub mod tensorboard;

pub use engine::{AttentionConfig, EpochLog, Event, MutualConfig, TrainConfig, TrainReport, train};
pub use sam::SamConfig;
pub use step::{LossConfig, StepStats, train_step};
