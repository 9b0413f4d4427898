//! Evaluation of a classifier on a labelled image set: top-1 / top-5 accuracy, mean
//! per-class accuracy and one-vs-rest mAP for single-label models; mAP and CF1 / OF1 (at
//! probability 0.5) for multi-label ones.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::loader::forward_samples;
use super::multilabel_step::{MultilabelLoss, multilabel_scores};
use crate::data::Sample;
use crate::data::classification::ClassificationDataset;
use crate::error::Result;
use crate::eval::classification::{
    mean_class_accuracy, multilabel_map, multilabel_scores as f1_scores, top_k_accuracy,
};
use crate::models::ReidModel;
use crate::preprocess::Preprocessing;

/// A classifier's scores on one evaluation set (fractions, 0–1).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Mean over classes of the average precision of ranking the images by that class.
    pub map: f64,
    /// Top-1 accuracy (single-label).
    pub top1: f64,
    /// Top-5 accuracy (single-label).
    pub top5: f64,
    /// Mean per-class accuracy (single-label).
    pub mean_class_accuracy: f64,
    /// Per-class F1 (multi-label).
    pub cf1: f64,
    /// Overall F1 (multi-label).
    pub of1: f64,
}

/// How the model's outputs are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Readout {
    /// Softmax classes from the classifier's logits (`cosine`: from cosine scores, for
    /// AM-softmax training).
    SingleLabel {
        /// Read cosine scores.
        cosine: bool,
    },
    /// One decision per class, as the loss reads scores.
    MultiLabel(MultilabelLoss),
}

/// The dataset's images as samples (labels stay in the dataset).
pub fn samples_of(dataset: &ClassificationDataset) -> Vec<Sample> {
    dataset
        .samples
        .iter()
        .enumerate()
        .map(|(i, (path, _))| Sample {
            path: path.clone(),
            pid: i as i64,
            camera: 0,
            dataset: 0,
        })
        .collect()
}

/// Multi-hot `[N, C]` targets of the dataset's images.
pub fn multi_hot(dataset: &ClassificationDataset, classes: usize) -> Vec<u8> {
    let mut targets = vec![0u8; dataset.samples.len() * classes];
    for (i, (_, labels)) in dataset.samples.iter().enumerate() {
        for &l in labels.iter().filter(|&&l| l < classes) {
            targets[i * classes + l] = 1;
        }
    }
    targets
}

/// Scores `model` (in inference mode) on `dataset`.
pub fn evaluate_classifier(
    model: &ReidModel,
    dataset: &ClassificationDataset,
    readout: Readout,
    preprocessing: &Preprocessing,
    batch_size: usize,
    device: &Device,
) -> Result<ClassificationMetrics> {
    let classes = model.num_classes();
    let samples = samples_of(dataset);
    let scores = forward_samples(
        &samples,
        preprocessing,
        batch_size,
        device,
        |images| match readout {
            Readout::SingleLabel { cosine: false } => model.logits(images).logits,
            Readout::SingleLabel { cosine: true } => model.cosine_logits(model.features(images)),
            Readout::MultiLabel(loss) => multilabel_scores(model, images, &loss),
        },
    )?;
    let targets = multi_hot(dataset, classes);
    let map = multilabel_map(&scores, &targets, classes)?;
    match readout {
        Readout::SingleLabel { .. } => {
            let labels: Vec<usize> = dataset.samples.iter().map(|(_, l)| l[0]).collect();
            Ok(ClassificationMetrics {
                map,
                top1: top_k_accuracy(&scores, classes, &labels, 1)?,
                top5: top_k_accuracy(&scores, classes, &labels, 5.min(classes))?,
                mean_class_accuracy: mean_class_accuracy(&scores, classes, &labels)?,
                ..Default::default()
            })
        }
        Readout::MultiLabel(_) => {
            // Score 0 is probability 0.5 for logits; cosines are decided at 0 too.
            let f1 = f1_scores(&scores, &targets, classes, 0.0)?;
            Ok(ClassificationMetrics {
                map,
                cf1: f1.cf1,
                of1: f1.of1,
                ..Default::default()
            })
        }
    }
}
