//! The run's history: one line per epoch with its loss, learning rate and evaluations
//! (`metrics.jsonl`), read by resumption and TensorBoard's event writer.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::classify_eval::ClassificationMetrics;
use crate::error::Result;

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
    /// Steps (batches) the epoch trained.
    #[serde(default)]
    pub steps: usize,
    /// Wall time of the epoch's training.
    pub seconds: f64,
    /// Evaluations after the epoch, if any.
    pub eval: Vec<EvalLog>,
    /// The same evaluations of the moving average of the weights (`optimizer.ema`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ema_eval: Vec<EvalLog>,
    /// Float16 training: the loss scale at the epoch's end and the steps it skipped (gradients
    /// not finite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<ScaleLog>,
}

/// How an epoch of float16 training scaled its loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScaleLog {
    /// The scale after the epoch's last step.
    pub scale: f32,
    /// Steps of the epoch whose update was skipped.
    pub skipped_steps: u64,
}

/// Writes the history as `metrics.jsonl` in `save_dir`, atomically.
pub(crate) fn write_history(save_dir: &Path, history: &[EpochLog]) -> Result<()> {
    let lines: String = history
        .iter()
        .map(|e| serde_json::to_string(e).expect("serializable log") + "\n")
        .collect();
    crate::formats::npy::write_atomically(&save_dir.join("metrics.jsonl"), lines.as_bytes())
}
