//! Training on Burn: losses and the optimization step.

pub mod loss;
pub mod step;

pub use step::{LossConfig, StepStats, train_step};
